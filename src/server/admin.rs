//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process serves)
//! and `/readyz` (the backend answers). Kept off the S3 port so it can be firewalled
//! separately and never needs S3 credentials.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{self, BoxBody};
use crate::service::AppState;

pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let (socket, _) = tokio::select! {
            res = listener.accept() => match res { Ok(c) => c, Err(_) => continue },
            _ = stopped.changed() => break,
        };
        let _ = socket.set_nodelay(true);
        let state = state.clone();
        let svc = service_fn(move |req| answer(state.clone(), req));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(socket), svc));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}

async fn answer(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            sample_metadata_caches(&state);
            let mut resp = text(StatusCode::OK, state.metrics.render());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match ready(&state).await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

/// Ready when the backend answers and the default KMS key is usable.
async fn ready(state: &AppState) -> Result<(), String> {
    backend_reachable(state).await?;
    let key_id = &state.config.kms.key_id;
    match tokio::time::timeout(Duration::from_secs(3), state.keys.describe_key(key_id)).await {
        Ok(Ok(info)) if info.is_enabled => Ok(()),
        Ok(Ok(info)) => Err(format!("KMS key {key_id} is {}", info.state)),
        Ok(Err(e)) => Err(format!("KMS: {e}")),
        Err(_) => Err("KMS: no answer within 3 s".into()),
    }
}

/// Any HTTP answer from the backend counts: readiness is about reaching it, and a
/// 403 on the service root still proves the path works.
async fn backend_reachable(state: &AppState) -> Result<(), String> {
    let (uri, host) = state
        .backend
        .target(None, None, "")
        .map_err(|e| e.to_string())?;
    let mut req = Request::new(body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    req.headers_mut().insert(http::header::HOST, host);
    match tokio::time::timeout(
        Duration::from_secs(3),
        state.backend.send(&state.backend.own_identity(), req),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("backend {}: {e}", state.backend.endpoint())),
        Err(_) => Err(format!(
            "backend {}: no answer within 3 s",
            state.backend.endpoint()
        )),
    }
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<BoxBody> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    resp
}

/// The object-facts caches are sampled when scraped rather than on every insert.
fn sample_metadata_caches(state: &AppState) {
    let m = &state.metrics;
    for (name, entries, bytes) in [
        (
            "sizes",
            state.size_cache.entry_count(),
            state.size_cache.weighted_size(),
        ),
        (
            "layouts",
            state.layouts.entry_count(),
            state.layouts.weighted_size(),
        ),
    ] {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        m.metadata_cache_entries
            .with_label_values(&[name])
            .set(gauge(entries));
        m.metadata_cache_bytes
            .with_label_values(&[name])
            .set(gauge(bytes));
    }
}
