//! Request handlers. [`dispatch`] picks one per operation and bucket policy; each
//! returns `Result<Response, S3Error>` and leaves turning errors into responses to
//! `service`.

pub mod passthrough;

use std::sync::Arc;

use http::Response;
use hyper::body::Incoming;

use crate::auth::Verified;
use crate::body::BoxBody;
use crate::s3::error::S3Error;
use crate::s3::op::{Operation, Target};
use crate::service::AppState;

/// What a handler knows about the request beyond its parts and body.
pub struct RequestContext {
    pub state: Arc<AppState>,
    pub request_id: String,
    pub target: Target,
    pub operation: Operation,
    /// The access key the client signed with.
    pub identity: String,
}

/// Routes a verified request to its handler.
pub async fn dispatch(
    rc: RequestContext,
    parts: http::request::Parts,
    body: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    passthrough::passthrough(&rc, parts, body, verified).await
}
