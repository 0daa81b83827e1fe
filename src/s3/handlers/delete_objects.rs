//! DeleteObjects, checked as S3 checks it before anything is deleted: an integrity
//! header is required (`Content-MD5` or an `x-amz-checksum-*` value), and the document
//! must be a well-formed `<Delete>` of 1 to 1,000 objects. Backends differ here (some
//! take 1,001 keys, some need no digest), so the proxy holds every client to S3's rules
//! and forwards only what passed, byte for byte; the backend checks the digest again.

use http::Response;
use hyper::body::Incoming;

use super::RequestContext;
use super::passthrough::{build_upstream_request, read_xml_body, relay_response, send};
use crate::auth::Verified;
use crate::auth::body::BodyOutcome;
use crate::body::{self, BoxBody};
use crate::s3::error::S3Error;
use crate::s3::xml::document;

/// The checksum headers S3 takes in place of `Content-MD5`.
const CHECKSUM_HEADERS: &[&str] = &[
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

pub async fn delete_objects(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    if !has_integrity_header(&parts.headers) {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    let doc = read_xml_body(rc, incoming, verified.body).await?;
    document::check(&doc, &document::DELETE)?;
    let len = doc.len() as u64;
    let req = build_upstream_request(rc, &parts, Some(len), body::full(doc))?;
    let resp = send(rc, req, &BodyOutcome::default()).await?;
    Ok(relay_response(rc, resp))
}

/// `Content-MD5`, a checksum header, or a checksum announced as a trailer.
fn has_integrity_header(h: &http::HeaderMap) -> bool {
    h.contains_key("content-md5")
        || CHECKSUM_HEADERS.iter().any(|name| h.contains_key(*name))
        || h.get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                CHECKSUM_HEADERS
                    .iter()
                    .any(|name| t.trim().eq_ignore_ascii_case(name))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn any_digest_or_checksum_counts() {
        assert!(has_integrity_header(&headers(&[("content-md5", "x")])));
        assert!(has_integrity_header(&headers(&[(
            "x-amz-checksum-crc32",
            "x"
        )])));
        assert!(has_integrity_header(&headers(&[(
            "x-amz-checksum-crc64nvme",
            "x"
        )])));
        assert!(has_integrity_header(&headers(&[(
            "x-amz-trailer",
            "x-amz-checksum-crc32c"
        )])));
        assert!(!has_integrity_header(&headers(&[])));
        assert!(!has_integrity_header(&headers(&[(
            "x-amz-sdk-checksum-algorithm",
            "CRC32"
        )])));
        assert!(!has_integrity_header(&headers(&[(
            "x-amz-trailer",
            "x-amz-meta-a"
        )])));
    }
}
