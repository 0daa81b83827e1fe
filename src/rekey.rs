//! Re-keying stored objects: the machinery behind CopyObject and UploadPartCopy over
//! encrypted objects and behind the `rewrap` and `migrate` commands.
//!
//! It owns the backend side of a copy: reading the source's head ([`head_source`]),
//! the server-side re-key of an encrypted source ([`server_side::copy`]: the data key is
//! kept and re-wrapped for the destination, the backend copies the ciphertext, no
//! object byte passes through the proxy), and the copies that must move data
//! ([`through`]: a plaintext source sealed on its way to the destination, an encrypted
//! source opened for a plaintext destination), plus reading a source's plaintext
//! ([`read`]) and listing a bucket ([`list`]). Parsing client requests and shaping S3
//! answers is left to `s3::handlers::copy`; progress and concurrency of bulk runs to
//! `cli`.
//!
//! Every read of the source after its HEAD is pinned to the ETag that HEAD returned, so
//! the source cannot change between the checks and the copy: a change answers 412.
//! See `docs/DESIGN.md` ("Encrypted operations") for the behaviour as clients see it.

pub mod list;
pub mod read;
pub mod server_side;
pub mod through;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::auth::body::BodyOutcome;
use crate::body::{self, BoxBody};
use crate::crypto::{Envelope, object_plaintext_len};
use crate::s3::encryption::{envelope_of, tampered};
use crate::s3::error::{ErrorOrigin, S3Error};
use crate::s3::handlers::RequestContext;
use crate::s3::handlers::get::parts_from_etag;
use crate::s3::handlers::passthrough::{internal, send};
use crate::s3::headers::{RESERVED_META_PREFIX, X_AMZ_META_ENVELOPE, X_AMZ_META_PREFIX};
use crate::s3::xml;
use crate::upstream::sign::{canonical_query, encode_key};

/// Largest copy source S3 accepts (5 GiB).
pub const MAX_COPY_SOURCE_LEN: u64 = 5 * 1024 * 1024 * 1024;
/// Largest backend error document read for its code.
const MAX_ERROR_XML: usize = 64 * 1024;
/// Largest backend answer document read whole (copy results, upload ids).
const MAX_RESULT_XML: usize = 1024 * 1024;

/// Headers of a stored object that a metadata-directive COPY carries to the copy.
const CONTENT_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_DISPOSITION,
    header::CONTENT_LANGUAGE,
    header::CACHE_CONTROL,
    header::EXPIRES,
];

/// An object named by a copy source (or by a listing): bucket, key, optional version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

impl ObjectRef {
    /// The `x-amz-copy-source` value for the backend: URL-encoded `bucket/key` and
    /// version, without a leading `/`, as SDKs send it: bucket policies compare
    /// `s3:x-amz-copy-source` with patterns like `bucket/prefix/*`, and the copy is sent
    /// as the client's backend identity, so such a policy must see what a client sends.
    pub fn copy_source_value(&self) -> Result<HeaderValue, S3Error> {
        let mut v = format!("{}/{}", encode_key(&self.bucket), encode_key(&self.key));
        if let Some(id) = &self.version_id {
            v.push_str("?versionId=");
            v.push_str(&encode_key(id));
        }
        HeaderValue::from_str(&v).map_err(internal)
    }

    fn query(&self) -> Vec<(String, Option<String>)> {
        self.version_id
            .iter()
            .map(|v| ("versionId".to_string(), Some(v.clone())))
            .collect()
    }
}

/// What the source's HEAD told: everything a copy decides on.
#[derive(Debug, Clone)]
pub struct SourceObject {
    pub at: ObjectRef,
    /// The backend's HEAD answer headers (envelope included).
    pub headers: HeaderMap,
    /// Pins every later read of the source.
    pub etag: HeaderValue,
    pub envelope: Option<Envelope>,
    /// Size on the backend (ciphertext for an encrypted object).
    pub stored_len: u64,
    /// Size of the object as clients see it.
    pub plain_len: u64,
    /// Part streams (the `-N` ETag suffix, else 1).
    pub parts: u32,
}

impl SourceObject {
    /// The ETag without quotes.
    pub fn etag_str(&self) -> &str {
        self.etag.to_str().unwrap_or_default().trim_matches('"')
    }

    /// `Last-Modified` of the source, as sent.
    pub fn last_modified(&self) -> Option<&str> {
        self.headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
    }

    /// `x-amz-version-id` of the source, when the backend versions it.
    pub fn version_id(&self) -> Option<&HeaderValue> {
        self.headers.get("x-amz-version-id")
    }
}

/// What a finished copy reports.
#[derive(Debug, Clone)]
pub struct CopyDone {
    /// The destination's ETag, quoted as S3 sends it.
    pub etag: String,
    /// The destination's `x-amz-version-id`, when versioned.
    pub version_id: Option<HeaderValue>,
    /// The destination's envelope (`None`: the copy is plaintext).
    pub envelope: Option<Envelope>,
}

/// HEAD of the source on the backend. Missing objects and refusals answer as S3 does.
pub async fn head_source(rc: &RequestContext, at: &ObjectRef) -> Result<SourceObject, S3Error> {
    let req = backend_request(
        rc,
        Method::HEAD,
        &at.bucket,
        &at.key,
        &at.query(),
        HeaderMap::new(),
        None,
    )?;
    let resp = send(rc, req, &BodyOutcome::default()).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(match status {
            StatusCode::NOT_FOUND => S3Error::no_such_key("The specified key does not exist."),
            StatusCode::FORBIDDEN => S3Error::access_denied("Access Denied"),
            s => S3Error::new(
                "InternalError",
                s,
                "The backend storage refused to read the copy source.",
            )
            .with_origin(ErrorOrigin::Backend),
        });
    }
    let headers = resp.headers().clone();
    let etag = headers
        .get(header::ETAG)
        .cloned()
        .ok_or_else(|| tampered("the backend sent no ETag for the copy source"))?;
    let stored_len: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| tampered("the backend sent no size for the copy source"))?;
    let parts = parts_from_etag(etag.to_str().unwrap_or_default());
    let envelope = envelope_of(&headers)?;
    let plain_len = match &envelope {
        None => stored_len,
        Some(env) => object_plaintext_len(stored_len, parts, env.segment_size())
            .ok_or_else(|| tampered("impossible ciphertext size of the copy source"))?,
    };
    Ok(SourceObject {
        at: at.clone(),
        headers,
        etag,
        envelope,
        stored_len,
        plain_len,
        parts,
    })
}

/// The user metadata and content headers of a stored object, as a metadata-directive
/// COPY carries them (the proxy's reserved metadata excluded).
pub fn copied_metadata(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in stored {
        let n = name.as_str();
        let is_user_meta = n.starts_with(X_AMZ_META_PREFIX) && !n.starts_with(RESERVED_META_PREFIX);
        if is_user_meta || CONTENT_HEADERS.contains(name) || n == "x-amz-website-redirect-location"
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The user metadata and content headers of a client's request (metadata-directive
/// REPLACE, or a PutObject).
pub fn request_metadata(request: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in request {
        let n = name.as_str();
        if (n.starts_with(X_AMZ_META_PREFIX) && !n.starts_with(RESERVED_META_PREFIX))
            || CONTENT_HEADERS.contains(name)
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// A backend request for `bucket`/`key` with `query`, `headers` and a body of
/// `content_length` bytes (`None`: no body).
pub(crate) fn backend_request(
    rc: &RequestContext,
    method: Method,
    bucket: &str,
    key: &str,
    query: &[(String, Option<String>)],
    headers: HeaderMap,
    body: Option<(BoxBody, u64)>,
) -> Result<Request<BoxBody>, S3Error> {
    let (uri, host) = rc
        .state
        .backend
        .target(Some(bucket), Some(key), &canonical_query(query))
        .map_err(internal)?;
    let (body, len) = match body {
        Some((b, len)) => (b, Some(len)),
        None => (body::empty(), None),
    };
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req.headers_mut().insert(header::HOST, host);
    match len {
        Some(len) => {
            req.headers_mut().insert(header::CONTENT_LENGTH, len.into());
        }
        None if method == Method::PUT || method == Method::POST => {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, 0u64.into());
        }
        None => {}
    }
    Ok(req)
}

/// Aborts a backend multipart upload nobody will finish, best effort: one left behind
/// shows in ListMultipartUploads and can be aborted there (or by a lifecycle rule).
pub(crate) async fn abort_upload(rc: &RequestContext, bucket: &str, key: &str, upload_id: &str) {
    let q = [("uploadId".to_string(), Some(upload_id.to_string()))];
    let abort = backend_request(rc, Method::DELETE, bucket, key, &q, HeaderMap::new(), None);
    if let Ok(req) = abort
        && let Err(e) = send_expect_ok(rc, req).await
    {
        tracing::warn!(request_id = %rc.request_id, upload_id, error = %e, "aborting a backend upload failed");
    }
}

/// Sends and reads a small XML answer whole; a failure status, or an `<Error>` document
/// in a 200 (which S3 sends for copies that fail after the head), is an [`S3Error`].
pub(crate) async fn send_for_xml(
    rc: &RequestContext,
    req: Request<BoxBody>,
) -> Result<(http::response::Parts, String), S3Error> {
    let resp = send(rc, req, &BodyOutcome::default()).await?;
    let status = resp.status();
    let (head, incoming) = resp.into_parts();
    let limit = if status.is_success() {
        MAX_RESULT_XML
    } else {
        MAX_ERROR_XML
    };
    let bytes = xml::read_bounded(incoming, limit, || {
        S3Error::internal_error("backend answer too large")
    })
    .await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() || text.contains("<Error>") {
        return Err(backend_error(status, &text));
    }
    Ok((head, text))
}

/// Sends and expects a success; the body is dropped.
pub(crate) async fn send_expect_ok(
    rc: &RequestContext,
    req: Request<BoxBody>,
) -> Result<http::response::Parts, S3Error> {
    let resp = send(rc, req, &BodyOutcome::default()).await?;
    if resp.status().is_success() {
        return Ok(resp.into_parts().0);
    }
    let status = resp.status();
    let bytes = xml::read_bounded(resp.into_body(), MAX_ERROR_XML, || {
        S3Error::internal_error("backend answer too large")
    })
    .await
    .unwrap_or_default();
    Err(backend_error(status, &String::from_utf8_lossy(&bytes)))
}

/// A backend error answer as the client's error: its code and status, a fixed message
/// for 412 (which S3 clients expect by code) and the backend's message otherwise.
pub(crate) fn backend_error(status: StatusCode, text: &str) -> S3Error {
    let code = xml::element_texts(text, "Code")
        .first()
        .map(|s| xml::unescape(s))
        .unwrap_or_else(|| match status {
            StatusCode::PRECONDITION_FAILED => "PreconditionFailed".into(),
            StatusCode::NOT_FOUND => "NoSuchKey".into(),
            StatusCode::FORBIDDEN => "AccessDenied".into(),
            _ => "InternalError".into(),
        });
    let status = if status.is_success() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    if code == "PreconditionFailed" {
        return S3Error::precondition_failed(
            "At least one of the pre-conditions you specified did not hold",
        )
        .with_extra("Condition", "x-amz-copy-source-If-Match");
    }
    let message = xml::element_texts(text, "Message")
        .first()
        .map(|s| xml::unescape(s))
        .unwrap_or_else(|| "The backend storage refused the copy.".into());
    let origin = if status.is_server_error() {
        ErrorOrigin::Backend
    } else {
        ErrorOrigin::Client
    };
    S3Error::new(code, status, message).with_origin(origin)
}

/// The envelope as the backend's metadata header.
pub(crate) fn envelope_header(envelope: &Envelope) -> Result<HeaderValue, S3Error> {
    HeaderValue::from_str(&envelope.encode()).map_err(internal)
}

/// Adds `x-amz-meta-sealgate-envelope` to a write's headers.
pub(crate) fn with_envelope(
    mut headers: HeaderMap,
    envelope: &Envelope,
) -> Result<HeaderMap, S3Error> {
    headers.insert(X_AMZ_META_ENVELOPE, envelope_header(envelope)?);
    Ok(headers)
}

/// The first text of `<name>` in a backend answer.
pub(crate) fn first_text(text: &str, name: &str) -> Option<String> {
    xml::element_texts(text, name)
        .first()
        .map(|s| xml::unescape(s))
}

/// Reads a GET answer's status: 200/206 pass; 412 means the source changed since its
/// HEAD (every read is pinned to its ETag).
pub(crate) fn expect_read(resp: Response<Incoming>) -> Result<Response<Incoming>, S3Error> {
    match resp.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(resp),
        StatusCode::PRECONDITION_FAILED => Err(S3Error::precondition_failed(
            "At least one of the pre-conditions you specified did not hold",
        )
        .with_extra("Condition", "x-amz-copy-source-If-Match")),
        StatusCode::NOT_FOUND => Err(S3Error::no_such_key("The specified key does not exist.")),
        s => Err(S3Error::service_unavailable(
            "The backend storage could not read the copy source.",
        )
        .with_origin(ErrorOrigin::Backend)
        .with_source(format!("backend answered {s} to a source read"))),
    }
}

/// Counts object bytes a copy moved through the proxy.
pub(crate) fn count_copy_bytes(rc: &RequestContext, direction: &str, body: BoxBody) -> BoxBody {
    let counter = rc.state.metrics.copy_bytes.with_label_values(&[direction]);
    body::boxed(body::Counted::new(body, counter))
}

/// Counts one finished copy by kind.
pub(crate) fn count_copy(rc: &RequestContext, kind: &str) {
    rc.state.metrics.copies.with_label_values(&[kind]).inc();
}

#[cfg(test)]
mod tests {
    use super::ObjectRef;

    #[test]
    fn copy_source_is_sent_as_sdks_send_it() {
        let at = |version_id: Option<&str>| ObjectRef {
            bucket: "src".into(),
            key: "public/a b+c".into(),
            version_id: version_id.map(str::to_string),
        };
        let value = |r: ObjectRef| {
            r.copy_source_value()
                .map(|v| v.to_str().map(str::to_string))
        };
        assert_eq!(
            value(at(None)).ok().and_then(Result::ok).as_deref(),
            Some("src/public/a%20b%2Bc")
        );
        assert_eq!(
            value(at(Some("3+4"))).ok().and_then(Result::ok).as_deref(),
            Some("src/public/a%20b%2Bc?versionId=3%2B4")
        );
    }
}
