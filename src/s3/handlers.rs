//! Request handlers. [`dispatch`] picks one per operation and bucket policy; each
//! returns `Result<Response, S3Error>` and leaves turning errors into responses to
//! `service`.
//!
//! Reads (GetObject, HeadObject) always go through the decrypting handlers, whatever the
//! policy says today, so objects written under an earlier policy stay readable.
//! Copies always go through [`copy`], which finds out from the source's HEAD whether
//! anything needs re-keying, sealing or opening. Operations that would copy or expose
//! ciphertext as if it were the object answer `501 NotImplemented` instead of passing
//! through.

pub mod attributes;
pub mod bucket_encryption;
pub mod copy;
pub mod delete_objects;
pub mod get;
pub mod list;
pub mod multipart;
pub mod passthrough;
pub mod post;
pub mod put;

use std::sync::Arc;

use http::Response;
use hyper::body::Incoming;

use crate::auth::Verified;
use crate::body::BoxBody;
use crate::s3::error::S3Error;
use crate::s3::op::{Operation, Target};
use crate::service::AppState;
use crate::upstream::BackendIdentity;

/// What a handler knows about the request beyond its parts and body.
pub struct RequestContext {
    pub state: Arc<AppState>,
    pub request_id: String,
    pub target: Target,
    pub operation: Operation,
    /// The access key the client signed with ([`crate::auth::ANONYMOUS`] for requests
    /// without a signature): what logs and audit records name.
    pub identity: String,
    /// Who every backend request made for this request is sent as: the client's own
    /// backend identity, `[backend]`'s, or anonymous (unsigned).
    pub backend: BackendIdentity,
}

/// Routes a verified request to its handler.
///
/// Each handler's future is boxed: inlined, this future would be as large as the largest
/// handler's (several KB), and every request, whatever its handler, would build and move
/// a future that size.
pub async fn dispatch(
    rc: RequestContext,
    parts: http::request::Parts,
    body: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    use Operation::*;
    use multipart::{by_backend_id, complete, upload_part};
    let policy = rc
        .state
        .config
        .policy(rc.target.bucket.as_deref().unwrap_or_default())
        .clone();
    let encrypting = policy.encrypt;
    multipart::refuse_registry_bucket(&rc)?;
    let upload = match rc.operation {
        UploadPart
        | UploadPartCopy
        | CompleteMultipartUpload
        | AbortMultipartUpload
        | ListParts => Some(Box::pin(multipart::resolve(&rc)).await?),
        _ => None,
    };
    let proxy_upload = upload.as_ref().is_some_and(|u| u.envelope.is_some());
    match rc.operation {
        // Reads decrypt whatever the policy says today, parts included.
        GetObject if rc.target.has_param("partNumber") => {
            Box::pin(get::part::get_part(&rc, parts)).await
        }
        HeadObject if rc.target.has_param("partNumber") => {
            Box::pin(get::part::head_part(&rc, parts)).await
        }
        GetObject => Box::pin(get::get_object(&rc, parts)).await,
        HeadObject => Box::pin(get::head_object(&rc, parts)).await,
        PutObject if encrypting => Box::pin(put::put_object(&rc, parts, body, verified)).await,
        CreateMultipartUpload if encrypting => {
            Box::pin(multipart::create(&rc, parts, body, verified)).await
        }
        UploadPart if proxy_upload || encrypting => {
            Box::pin(upload_part(&rc, parts, body, verified, resolved(upload)?)).await
        }
        CompleteMultipartUpload if proxy_upload => {
            Box::pin(complete(&rc, parts, body, verified, resolved(upload)?)).await
        }
        CompleteMultipartUpload if encrypting => Err(multipart::not_started_here()),
        AbortMultipartUpload | ListParts if proxy_upload => {
            Box::pin(by_backend_id(&rc, parts, body, verified, resolved(upload)?)).await
        }
        ListObjects | ListObjectsV2 | ListObjectVersions if encrypting => {
            Box::pin(list::list_objects(&rc, parts, body, verified)).await
        }
        DeleteObjects => Box::pin(delete_objects::delete_objects(&rc, parts, body, verified)).await,
        GetBucketEncryption => bucket_encryption::get(&rc),
        PutBucketEncryption | DeleteBucketEncryption => Err(bucket_encryption::refuse_change()),
        CopyObject => Box::pin(copy::copy_object(&rc, parts, body, verified)).await,
        UploadPartCopy => {
            Box::pin(copy::upload_part_copy(
                &rc,
                parts,
                body,
                verified,
                resolved(upload)?,
            ))
            .await
        }
        // The form carries its own authentication: `service` sends it to `post` first.
        PostObject => Err(S3Error::internal_error(
            "PostObject reached the authenticated dispatch.",
        )),
        // Whatever the policy says today: older objects may be encrypted.
        GetObjectAttributes => {
            Box::pin(attributes::get_object_attributes(
                &rc, parts, body, verified,
            ))
            .await
        }
        SelectObjectContent | WriteGetObjectResponse => {
            Err(not_yet(rc.operation, "this operation over encrypted data"))
        }
        _ => Box::pin(passthrough::passthrough(&rc, parts, body, verified)).await,
    }
}

/// The upload `dispatch` resolved for the multipart operations.
fn resolved(upload: Option<multipart::Upload>) -> Result<multipart::Upload, S3Error> {
    upload.ok_or_else(|| S3Error::internal_error("upload id not resolved before its handler"))
}

/// `501 NotImplemented` naming what the proxy cannot do yet: never a pass-through that
/// would leak plaintext or return ciphertext as data.
fn not_yet(op: Operation, what: &str) -> S3Error {
    S3Error::not_implemented(format!(
        "{} is not implemented by the encryption proxy yet ({what}).",
        op.as_str()
    ))
}
