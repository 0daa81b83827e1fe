//! Forwarding without touching the body: the request is re-signed for the backend and
//! both bodies stream through with backpressure (each side polls the other on demand,
//! so memory per request stays at a frame or two).

use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response};
use hyper::body::Incoming;

use super::RequestContext;
use crate::auth::body::{BodyLimits, BodyOutcome, VerifiedBody};
use crate::auth::{BodySpec, Verified};
use crate::body::{self, BoxBody, Counted};
use crate::s3::error::{ErrorOrigin, S3Error};
use crate::upstream::{
    BackendIdentity, UpstreamError, expect, sign::canonical_query, sign::parse_query,
};

/// Hop-by-hop headers (RFC 9110 §7.6.1), besides `keep-alive` and those `Connection`
/// names.
pub const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers the proxy sets itself on a backend request.
const SET_BY_PROXY: [HeaderName; 3] = [header::HOST, header::EXPECT, header::CONTENT_LENGTH];

/// Forwards the request as it is and relays the answer.
pub async fn passthrough(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let content_length = verified.body.decoded_length();
    let (client_body, outcome) = verified_body(rc, incoming, verified.body);
    // No declared length means no body (hyper refused chunked requests without one):
    // an empty body keeps the backend request free of chunked framing.
    let client_body = if content_length.is_none() {
        body::empty()
    } else {
        client_body
    };
    let upstream = build_upstream_request(rc, &parts, content_length, client_body)?;
    let resp = send(rc, upstream, &outcome).await?;
    Ok(relay_response(rc, resp))
}

/// Wraps the client body in signature, hash and checksum verification and counts it.
pub fn verified_body(
    rc: &RequestContext,
    incoming: Incoming,
    spec: BodySpec,
) -> (BoxBody, BodyOutcome) {
    let limits = BodyLimits {
        max_chunk_bytes: rc.state.config.limits.max_chunk_bytes,
    };
    let (body, outcome) = VerifiedBody::new(incoming, spec, limits);
    (
        body::boxed(Counted::new(body, rc.state.metrics.bytes_in.clone())),
        outcome,
    )
}

/// The whole client body of an XML request (DeleteObjects, CompleteMultipartUpload),
/// verified and at most `limits.max_xml_body_bytes`. A failed signature, digest or
/// checksum is the answer before a size or parse error.
pub async fn read_xml_body(
    rc: &RequestContext,
    incoming: Incoming,
    spec: BodySpec,
) -> Result<bytes::Bytes, S3Error> {
    let (client_body, outcome) = verified_body(rc, incoming, spec);
    let max = rc.state.config.limits.max_xml_body_bytes;
    let read = crate::s3::xml::read_bounded(client_body, max, || {
        S3Error::malformed_xml("The XML you provided was too large.")
    })
    .await;
    if let Some(e) = outcome.error() {
        return Err(e.into());
    }
    read
}

/// Headers a backend request may carry beyond those copied from the client's.
const UPSTREAM_EXTRA_HEADERS: usize = 10;

/// The backend request for this client request: same method, bucket, key and query
/// (put into canonical encoding), forwardable headers, exact Content-Length.
pub fn build_upstream_request(
    rc: &RequestContext,
    parts: &http::request::Parts,
    content_length: Option<u64>,
    body: BoxBody,
) -> Result<Request<BoxBody>, S3Error> {
    let query = canonical_query(&parse_query(parts.uri.query().unwrap_or("")));
    let t = &rc.target;
    let (uri, host) = rc
        .state
        .backend
        .target(t.bucket.as_deref(), t.key.as_deref(), &query)
        .map_err(internal)?;
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    // Room for the client's headers and those added after them (host, length, the
    // signature's three, an encrypted write's envelope and its own), so the map is not
    // rehashed into a larger one as they arrive.
    *req.headers_mut() = HeaderMap::with_capacity(parts.headers.len() + UPSTREAM_EXTRA_HEADERS);
    let headers = req.headers_mut();
    copy_forwardable(&parts.headers, headers);
    headers.insert(header::HOST, host);
    // Only the backend can tell whether it takes an anonymous upload: it is asked
    // before the client's body is read (`upstream::expect`). Signed requests were
    // authenticated here and their bodies go without the extra round trip.
    if matches!(rc.backend, BackendIdentity::Anonymous)
        && content_length.is_some_and(|l| l > 0)
        && expect::expects_continue(&parts.headers)
    {
        expect::ask_for_continue(headers);
    }
    match content_length {
        Some(len) => {
            headers.insert(header::CONTENT_LENGTH, len.into());
        }
        None if has_body(&parts.method) => {
            headers.insert(header::CONTENT_LENGTH, 0u64.into());
        }
        None => {}
    }
    Ok(req)
}

fn has_body(m: &http::Method) -> bool {
    matches!(*m, http::Method::PUT | http::Method::POST)
}

/// Copies every header but the hop-by-hop ones and those named by `Connection`.
pub fn copy_forwardable(from: &HeaderMap, to: &mut HeaderMap) {
    let named_by_connection: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for (name, value) in from {
        if HOP_BY_HOP.contains(name)
            || SET_BY_PROXY.contains(name)
            || name.as_str() == "keep-alive"
            || named_by_connection.iter().any(|n| n == name.as_str())
        {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// Sends upstream; when the client body failed verification, that failure is the answer
/// (the withheld last bytes kept the backend from completing anything).
pub async fn send(
    rc: &RequestContext,
    req: Request<BoxBody>,
    outcome: &BodyOutcome,
) -> Result<Response<Incoming>, S3Error> {
    let result = rc.state.backend.send(&rc.backend, req).await;
    if let Some(err) = outcome.error() {
        return Err(err.into());
    }
    result.map_err(|e| upstream_failure(&rc.state, e))
}

/// A backend request that got no answer, counted by kind: 503 for the client.
pub fn upstream_failure(state: &crate::service::AppState, e: UpstreamError) -> S3Error {
    let kind = match &e {
        UpstreamError::Timeout(_) => "timeout",
        UpstreamError::Send(inner) if inner.is_connect() => "connect",
        UpstreamError::Send(_) => "send",
        UpstreamError::Build(_) => "build",
    };
    state
        .metrics
        .upstream_errors
        .with_label_values(&[kind])
        .inc();
    match e {
        UpstreamError::Build(_) => internal(e),
        _ => S3Error::service_unavailable("The backend storage did not answer; please retry.")
            .with_origin(ErrorOrigin::Backend)
            .with_source(e),
    }
}

/// The backend's answer for the client: status, headers (less hop-by-hop), body streamed.
pub fn relay_response(rc: &RequestContext, resp: Response<Incoming>) -> Response<BoxBody> {
    let _ = rc;
    let (parts, incoming) = resp.into_parts();
    let mut out = Response::new(body::boxed(incoming));
    *out.status_mut() = parts.status;
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        if name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name.as_str() == "keep-alive"
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    out
}

pub fn internal(e: impl Into<crate::s3::error::BoxError>) -> S3Error {
    S3Error::internal_error("We encountered an internal error. Please try again.")
        .with_origin(ErrorOrigin::Internal)
        .with_source(e)
}
