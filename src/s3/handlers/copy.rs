//! CopyObject and UploadPartCopy over encrypted objects, as S3 answers them.
//!
//! CopyObject reads the source's HEAD (conditions checked there, every later read
//! pinned to its ETag) and then, by source and destination:
//! - encrypted source, encrypting destination: server-side re-key, no object bytes
//!   through the proxy ([`crate::rekey::server_side`]);
//! - plaintext source, encrypting destination: sealed on its way through;
//! - encrypted source, plaintext destination: opened on its way through;
//! - neither: the request passes through unchanged.
//!
//! UploadPartCopy into an upload the proxy made (`sg1.` upload id) reads the source's
//! plaintext (ranged) and seals it as that part under the upload's data key.
//!
//! What the copy keeps is decided here: metadata directive COPY (the source's user
//! metadata and content headers) or REPLACE (the request's), tagging passed to the
//! backend, the destination keys from the destination policy and the request's SSE
//! headers, exactly as a PutObject would.

pub mod source;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;

use super::RequestContext;
use super::multipart::Upload;
use super::passthrough::passthrough;
use crate::auth::Verified;
use crate::body::{self, BoxBody};
use crate::crypto::{EncryptBody, part_ciphertext_len};
use crate::rekey::{
    self, CopyDone, MAX_COPY_SOURCE_LEN, ObjectRef, SourceObject, backend_request, count_copy,
    count_copy_bytes, read, send_expect_ok,
};
use crate::s3::encryption::{self, add_sse_headers, tampered};
use crate::s3::error::{S3Error, escape_xml};
use crate::s3::headers::is_sse_header;

/// Request headers a copy hands to the backend write besides metadata.
const FORWARDED_WRITE_HEADERS: &[&str] = &[
    "x-amz-storage-class",
    "x-amz-website-redirect-location",
    "x-amz-acl",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];
const X_AMZ_METADATA_DIRECTIVE: &str = "x-amz-metadata-directive";
const X_AMZ_TAGGING_DIRECTIVE: &str = "x-amz-tagging-directive";
const X_AMZ_TAGGING: &str = "x-amz-tagging";

/// CopyObject, for every destination (a plaintext-to-plaintext copy passes through).
pub async fn copy_object(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    let dst = ObjectRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: None,
    };
    let h = &parts.headers;
    let src_ref = source::parse(h)?;
    let dst_encrypts = rc.state.config.policy(bucket).encrypt;
    encryption::refuse_sse_c(rc, bucket, h)?;
    encryption::refuse_reserved_metadata(h)?;
    let replace = metadata_directive_is_replace(h)?;
    let src = rekey::head_source(rc, &src_ref).await?;
    source::check_conditions(h, &src)?;
    if src.envelope.is_none() && !dst_encrypts {
        return passthrough(rc, parts, incoming, verified).await;
    }
    check_source_size(src.plain_len)?;
    let changes_something = replace
        || h.keys().any(|k| {
            let n = k.as_str();
            is_sse_header(n) || n == "x-amz-storage-class" || n == "x-amz-website-redirect-location"
        });
    if src_ref.bucket == dst.bucket && src_ref.key == dst.key && !changes_something {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut dest_headers = if replace {
        rekey::request_metadata(h)
    } else {
        rekey::copied_metadata(&src.headers)
    };
    forward_write_headers(h, &mut dest_headers);
    let done = match (&src.envelope, dst_encrypts) {
        (Some(_), true) => {
            // A server-side copy keeps the backend's own tagging directive semantics.
            for name in [X_AMZ_TAGGING_DIRECTIVE, X_AMZ_TAGGING] {
                if let Some(v) = h.get(name) {
                    dest_headers.insert(name, v.clone());
                }
            }
            rekey::server_side::copy(rc, &src, &dst, h, dest_headers).await?
        }
        (None, _) => {
            with_tagging(h, &mut dest_headers);
            rekey::through::encrypt(rc, &src, &dst, h, dest_headers, None).await?
        }
        (Some(_), false) => {
            with_tagging(h, &mut dest_headers);
            rekey::through::decrypt(rc, &src, &dst, dest_headers).await?
        }
    };
    copy_result(&src, &done)
}

/// UploadPartCopy: the source's plaintext (or a range of it) becomes part
/// `partNumber`, sealed under the upload's data key when the proxy made the upload.
pub async fn upload_part_copy(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
    upload: Upload,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    let h = &parts.headers;
    encryption::refuse_sse_c(rc, bucket, h)?;
    let part_number: u32 = rc
        .target
        .param("partNumber")
        .and_then(|p| p.parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?;
    let (envelope, backend_id) = (upload.envelope, upload.backend_id);
    let src_ref = source::parse(h)?;
    let src = rekey::head_source(rc, &src_ref).await?;
    source::check_conditions(h, &src)?;
    if envelope.is_none() && src.envelope.is_none() {
        return passthrough(rc, parts, incoming, verified).await;
    }
    if envelope.is_none() && rc.state.config.policy(bucket).encrypt {
        return Err(S3Error::new(
            "NoSuchUpload",
            StatusCode::NOT_FOUND,
            "This upload was not started through the encryption proxy; start a new one.",
        ));
    }
    let range = source::parse_range(h, src.plain_len)?;
    let len = match range {
        Some((a, b)) => b - a + 1,
        None => src.plain_len,
    };
    check_source_size(len)?;
    let plain = read::plaintext(rc, &src, range).await?;
    let (body, body_len) = match &envelope {
        Some(env) => {
            let data_key = encryption::open_object_key(rc, bucket, key, env).await?;
            let sealed = EncryptBody::new(plain, &data_key, part_number, len, env.segment_size());
            (
                body::boxed(sealed),
                part_ciphertext_len(len, env.segment_size()),
            )
        }
        None => (plain, len),
    };
    let q = [
        ("partNumber".to_string(), Some(part_number.to_string())),
        ("uploadId".to_string(), Some(backend_id)),
    ];
    let req = backend_request(
        rc,
        Method::PUT,
        bucket,
        key,
        &q,
        HeaderMap::new(),
        Some((count_copy_bytes(rc, "written", body), body_len)),
    )?;
    let head = send_expect_ok(rc, req).await?;
    count_copy(rc, "part");
    let etag = head
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| tampered("the backend answered UploadPart without an ETag"))?;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></CopyPartResult>",
        now_iso8601(),
        escape_xml(etag)
    );
    let mut out = xml_answer(xml);
    if let Some(env) = &envelope {
        add_sse_headers(out.headers_mut(), env);
    }
    add_source_version(&src, out.headers_mut());
    Ok(out)
}

/// `x-amz-metadata-directive`: COPY (the default) or REPLACE; anything else is 400.
fn metadata_directive_is_replace(h: &HeaderMap) -> Result<bool, S3Error> {
    match h.get(X_AMZ_METADATA_DIRECTIVE).map(|v| v.as_bytes()) {
        None | Some(b"COPY") => Ok(false),
        Some(b"REPLACE") => Ok(true),
        Some(_) => Err(S3Error::invalid_argument("Unknown metadata directive.")),
    }
}

fn check_source_size(len: u64) -> Result<(), S3Error> {
    if len > MAX_COPY_SOURCE_LEN {
        return Err(S3Error::invalid_request(
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    Ok(())
}

fn forward_write_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in FORWARDED_WRITE_HEADERS {
        if let Some(v) = from.get(*name) {
            to.insert(*name, v.clone());
        }
    }
}

/// A copy that writes with PUT carries tags only when the client replaces them
/// (`x-amz-tagging-directive: REPLACE` with `x-amz-tagging`); source tags are not read.
fn with_tagging(from: &HeaderMap, to: &mut HeaderMap) {
    let replace = from
        .get(X_AMZ_TAGGING_DIRECTIVE)
        .is_some_and(|v| v.as_bytes() == b"REPLACE");
    if replace && let Some(v) = from.get(X_AMZ_TAGGING) {
        to.insert(X_AMZ_TAGGING, v.clone());
    }
}

/// The `CopyObjectResult` answer with the SSE and version headers S3 sends.
fn copy_result(src: &SourceObject, done: &CopyDone) -> Result<Response<BoxBody>, S3Error> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
        now_iso8601(),
        escape_xml(&done.etag)
    );
    let mut out = xml_answer(xml);
    let headers = out.headers_mut();
    if let Some(env) = &done.envelope {
        add_sse_headers(headers, env);
    }
    if let Some(v) = &done.version_id {
        headers.insert("x-amz-version-id", v.clone());
    }
    add_source_version(src, headers);
    Ok(out)
}

fn add_source_version(src: &SourceObject, headers: &mut HeaderMap) {
    if let Some(v) = src.version_id()
        && v.as_bytes() != b"null"
    {
        headers.insert("x-amz-copy-source-version-id", v.clone());
    }
}

fn xml_answer(xml: String) -> Response<BoxBody> {
    let bytes = Bytes::from(xml);
    let len = bytes.len();
    let mut out = Response::new(body::full(bytes));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    out.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    out
}

/// Now as S3 writes timestamps in XML (`2026-01-02T03:04:05.000Z`).
fn now_iso8601() -> String {
    let now = OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt)
        .or_else(|_| now.format(&Iso8601::DEFAULT))
        .unwrap_or_default()
}
