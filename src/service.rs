//! One request, end to end: limits → route and classify → authenticate → handler →
//! response. This is the only place an error becomes an HTTP response, and where each
//! request is counted, timed and logged with its request id.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use rand::RngExt;

use crate::audit::AuditLog;
use crate::auth::{self, CredentialStore, VerifyContext};
use crate::body::{self, BoxBody};
use crate::cache::BucketKeyCache;
use crate::config::{AnonymousRequests, Config};
use crate::metrics::Metrics;
use crate::s3::error::{ErrorOrigin, S3Error};
use crate::s3::facts::SizeCache;
use crate::s3::handlers::{self, RequestContext};
use crate::s3::op;
use crate::upstream::{Backend, BackendIdentities, BackendIdentity, expect};

/// Everything a request may need, shared by all connections.
pub struct AppState {
    pub config: Arc<Config>,
    pub backend: Backend,
    pub credentials: CredentialStore,
    /// The backend identity each client access key's requests are sent as.
    pub backend_identities: BackendIdentities,
    pub metrics: Arc<Metrics>,
    /// Bucket keys and per-object KMS keys, through the KMS.
    pub keys: Arc<BucketKeyCache>,
    /// Plaintext sizes by (bucket, key, ETag) for listings of mixed buckets.
    pub size_cache: Arc<SizeCache>,
    /// Object layouts by (bucket, key, ETag) for `partNumber` reads.
    pub layouts: Arc<crate::s3::facts::LayoutCache>,
    /// One JSON line per object key operation, when enabled.
    pub audit: Option<AuditLog>,
    /// Where pending multipart uploads' envelopes are recorded, when configured.
    pub uploads: Option<crate::s3::uploads::UploadRegistry>,
}

pub const X_AMZ_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amz-request-id");
pub const X_AMZ_ID_2: http::HeaderName = http::HeaderName::from_static("x-amz-id-2");

/// Serves one request; never fails at the HTTP level (errors are S3 XML responses).
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    let started = Instant::now();
    let request_id = new_request_id();
    // A guard, not inc/dec: a client that disconnects drops this future mid-request,
    // and the gauge must still come down.
    let in_flight = InFlight::enter(&state.metrics.in_flight);
    let method = req.method().clone();
    let close_after = expects_continue_without_body(&req);
    let mut op_name = "Unknown";
    let mut resource = req.uri().path().to_string();
    let mut identity = String::new();
    let result = serve(
        &state,
        req,
        &request_id,
        &mut op_name,
        &mut resource,
        &mut identity,
    )
    .await;
    let mut resp = match result {
        Ok(resp) => resp,
        Err(err) => error_response(&state.metrics, err, &request_id, &resource, &method),
    };
    let status = resp.status();
    let headers = resp.headers_mut();
    if close_after {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    // A backend error relayed as it came names the backend's request id in its XML
    // body; the header keeps that id so the two agree, as S3 clients expect, and the
    // log line ties it to the proxy's own.
    let upstream_request_id = relayed_error_request_id(status, headers);
    if upstream_request_id.is_none()
        && let Ok(v) = HeaderValue::from_str(&request_id)
    {
        headers.insert(X_AMZ_REQUEST_ID, v.clone());
        headers.insert(X_AMZ_ID_2, v);
    }
    state
        .metrics
        .requests
        .with_label_values(&[op_name, status.as_str()])
        .inc();
    state
        .metrics
        .request_duration
        .with_label_values(&[op_name])
        .observe(started.elapsed().as_secs_f64());
    drop(in_flight);
    tracing::info!(request_id = %request_id, op = op_name, %method, resource = %resource, identity = %identity, status = status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        upstream_request_id = upstream_request_id.as_deref().unwrap_or(""), "request");
    let (parts, body) = resp.into_parts();
    let counted = body::Counted::new(body, state.metrics.bytes_out.clone());
    Ok(Response::from_parts(parts, body::boxed(counted)))
}

/// The backend's request id of an error answer relayed from the backend (the proxy's
/// own errors carry no request id header until `handle` adds one).
fn relayed_error_request_id(status: http::StatusCode, headers: &http::HeaderMap) -> Option<String> {
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let id = headers.get(X_AMZ_REQUEST_ID)?.to_str().ok()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// Counts one request in `sealgate_requests_in_flight` for as long as it lives.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    request_id: &str,
    op_name: &mut &'static str,
    resource: &mut String,
    identity: &mut String,
) -> Result<Response<BoxBody>, S3Error> {
    let (mut parts, incoming) = req.into_parts();
    let target = op::route(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &state.config.server.virtual_host_domains,
    )?;
    *resource = target.resource();
    let operation = op::classify(&parts.method, &target, &parts.headers);
    *op_name = operation.as_str();
    check_framing(&parts, operation)?;
    if operation == op::Operation::PostObject {
        // A browser form: its signature and policy are in the body, checked there,
        // which is where identity and backend identity are chosen. Until then the
        // least privileged one stands in (no backend request is made before).
        let mut rc = RequestContext {
            state: state.clone(),
            request_id: request_id.to_string(),
            target,
            operation,
            identity: String::new(),
            backend: BackendIdentity::Anonymous,
        };
        let result = Box::pin(handlers::post::post_object(&mut rc, parts, incoming)).await;
        identity.clone_from(&rc.identity);
        return result;
    }
    let vhost_bucket = if target.virtual_hosted {
        target.bucket.as_deref()
    } else {
        None
    };
    let ctx = VerifyContext {
        credentials: &state.credentials,
        now: SystemTime::now(),
        max_skew: Duration::from_secs(state.config.auth.max_clock_skew_secs),
        allow_sigv2: state.config.auth.allow_sigv2,
        vhost_bucket,
    };
    let forward_anonymous = state.config.auth.anonymous == AnonymousRequests::Forward;
    let verified = auth::verify_or_anonymous(&parts, &ctx, forward_anonymous).inspect_err(|e| {
        state
            .metrics
            .auth_failures
            .with_label_values(&[e.reason()])
            .inc();
    })?;
    auth::strip_client_auth(&mut parts, &verified);
    identity.clone_from(&verified.access_key);
    let rc = RequestContext {
        state: state.clone(),
        request_id: request_id.to_string(),
        target,
        operation,
        identity: verified.access_key.clone(),
        backend: backend_identity(state, &verified),
    };
    handlers::dispatch(rc, parts, incoming, verified).await
}

/// Who the backend requests made for a verified request are sent as: unsigned for an
/// anonymous one, else the identity configured for its access key.
fn backend_identity(state: &AppState, verified: &auth::Verified) -> BackendIdentity {
    match verified.method {
        auth::AuthMethod::Anonymous => BackendIdentity::Anonymous,
        _ => state.backend_identities.for_client(&verified.access_key),
    }
}

/// A request that asked for `100 Continue` but has an empty body gets its final answer
/// without one (hyper sends `100 Continue` only when a body is read). botocore keeps
/// state from such an exchange on the connection and then misreads the next
/// `Expect: 100-continue` answer on it (its headers are lost, so an UploadPart seems to
/// have no ETag). Closing the connection after such answers avoids that at the cost of
/// one reconnect per empty upload.
fn expects_continue_without_body<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let empty = h
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    expect::expects_continue(h) && empty
}

/// Refuses requests whose body framing S3 would refuse, before anything else looks at
/// them. hyper already enforces RFC 9112 §6.3: a request with both Transfer-Encoding and
/// Content-Length loses the Content-Length and its connection is closed after the
/// answer, and a non-chunked transfer coding is a 400; what is left to refuse here is a
/// chunked body S3 would not take.
fn check_framing(parts: &http::request::Parts, operation: op::Operation) -> Result<(), S3Error> {
    let h = &parts.headers;
    let chunked = h.contains_key(http::header::TRANSFER_ENCODING);
    let has_length = h.contains_key(http::header::CONTENT_LENGTH);
    let aws_chunked_with_length = h.contains_key(crate::s3::headers::X_AMZ_DECODED_CONTENT_LENGTH);
    let needs_length = matches!(
        operation,
        op::Operation::PutObject
            | op::Operation::UploadPart
            | op::Operation::PutObjectSubresource
            | op::Operation::PutBucketSubresource
            | op::Operation::PostObject
    );
    if chunked && !aws_chunked_with_length {
        if needs_length {
            return Err(S3Error::missing_content_length(
                "You must provide the Content-Length HTTP header.",
            )
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
        }
        return Err(S3Error::invalid_request(
            "Transfer-Encoding: chunked is not supported; send Content-Length.",
        )
        .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
    }
    if needs_length && !has_length && !chunked {
        return Err(S3Error::missing_content_length(
            "You must provide the Content-Length HTTP header.",
        ));
    }
    Ok(())
}

/// The S3 XML answer for an error; logged with its source, counted by code and origin.
pub fn error_response(
    metrics: &Metrics,
    err: S3Error,
    request_id: &str,
    resource: &str,
    method: &http::Method,
) -> Response<BoxBody> {
    metrics
        .errors
        .with_label_values(&[&err.code, err.origin.as_str()])
        .inc();
    if err.origin == ErrorOrigin::Client {
        tracing::debug!(request_id, code = %err.code, message = %err.message, source = ?err.source, "client error");
    } else {
        tracing::warn!(request_id, code = %err.code, message = %err.message, source = ?err.source, "error");
    }
    let xml = err.to_xml(request_id, resource);
    let len = xml.len();
    let body = if *method == http::Method::HEAD {
        body::empty()
    } else {
        body::full(xml)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = err.status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if *method != http::Method::HEAD {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    for (name, value) in err.headers {
        headers.insert(name, value);
    }
    if err.status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// The answer to a request the listener's gate refused before it reached [`handle`]
/// (URL too long, over the client's rate): counted like any other request.
pub fn refuse<B>(state: &AppState, err: S3Error, req: &Request<B>) -> Response<BoxBody> {
    let request_id = new_request_id();
    let mut resp = error_response(
        &state.metrics,
        err,
        &request_id,
        req.uri().path(),
        req.method(),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(X_AMZ_REQUEST_ID, v.clone());
        resp.headers_mut().insert(X_AMZ_ID_2, v);
    }
    state
        .metrics
        .requests
        .with_label_values(&["Refused", resp.status().as_str()])
        .inc();
    resp
}

fn new_request_id() -> String {
    let bytes: [u8; 8] = rand::rng().random();
    hex::encode_upper(bytes)
}

impl From<auth::AuthError> for S3Error {
    fn from(e: auth::AuthError) -> S3Error {
        S3Error::new(e.s3_code(), e.status(), e.to_string()).with_origin(ErrorOrigin::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::{InFlight, X_AMZ_REQUEST_ID, relayed_error_request_id};
    use http::{HeaderMap, HeaderValue, StatusCode};

    #[test]
    fn only_relayed_errors_keep_the_backend_request_id() {
        let mut relayed = HeaderMap::new();
        relayed.insert(X_AMZ_REQUEST_ID, HeaderValue::from_static("tx000-backend"));
        assert_eq!(
            relayed_error_request_id(StatusCode::NOT_FOUND, &relayed).as_deref(),
            Some("tx000-backend")
        );
        assert_eq!(
            relayed_error_request_id(StatusCode::SERVICE_UNAVAILABLE, &relayed).as_deref(),
            Some("tx000-backend")
        );
        // Successes carry the proxy's id, and so do the proxy's own errors (no header).
        assert_eq!(relayed_error_request_id(StatusCode::OK, &relayed), None);
        assert_eq!(
            relayed_error_request_id(StatusCode::NOT_FOUND, &HeaderMap::new()),
            None
        );
    }

    #[tokio::test]
    async fn a_cancelled_request_leaves_the_in_flight_gauge() {
        let gauge = prometheus::IntGauge::new("g", "g").unwrap_or_else(|_| unreachable!());
        let g = gauge.clone();
        let request = async move {
            let _in_flight = InFlight::enter(&g);
            std::future::pending::<()>().await;
        };
        // The client goes away: the request's future is dropped while it waits.
        let cut = tokio::time::timeout(std::time::Duration::from_millis(10), request).await;
        assert!(cut.is_err());
        assert_eq!(gauge.get(), 0);
    }
}
