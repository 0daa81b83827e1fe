//! Every object of a bucket (under a prefix) as the backend lists it: key, ETag and
//! stored size, for the bulk commands. ListObjectsV2 pages of 1,000, followed by
//! continuation token.

use http::Method;
use http::header::HeaderMap;

use super::{first_text, send_for_xml};
use crate::s3::error::S3Error;
use crate::s3::handlers::RequestContext;
use crate::s3::handlers::passthrough::internal;
use crate::s3::xml;
use crate::upstream::sign::canonical_query;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Quoted, as listed.
    pub etag: String,
    pub size: u64,
}

/// Lists `bucket` under `prefix`, every page.
pub async fn all_objects(
    rc: &RequestContext,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Listed>, S3Error> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![
            ("list-type".to_string(), Some("2".to_string())),
            ("max-keys".to_string(), Some("1000".to_string())),
        ];
        if !prefix.is_empty() {
            q.push(("prefix".to_string(), Some(prefix.to_string())));
        }
        if let Some(t) = &token {
            q.push(("continuation-token".to_string(), Some(t.clone())));
        }
        let (uri, host) = rc
            .state
            .backend
            .target(Some(bucket), None, &canonical_query(&q))
            .map_err(internal)?;
        let mut req = http::Request::new(crate::body::empty());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = uri;
        *req.headers_mut() = HeaderMap::new();
        req.headers_mut().insert(http::header::HOST, host);
        let (_, text) = send_for_xml(rc, req).await?;
        for block in xml::element_texts(&text, "Contents") {
            let key = first_text(block, "Key").unwrap_or_default();
            let etag = first_text(block, "ETag").unwrap_or_default();
            let size = first_text(block, "Size")
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            out.push(Listed { key, etag, size });
        }
        let truncated = first_text(&text, "IsTruncated").is_some_and(|v| v.trim() == "true");
        token = first_text(&text, "NextContinuationToken");
        if !truncated || token.is_none() {
            break;
        }
    }
    Ok(out)
}
