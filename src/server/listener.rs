//! Accept loops: connection limit, TLS handshake (with its own deadline), HTTP/1.1 with
//! a header-read timeout and a socket stall timeout against slow clients, the request
//! gate of [`super::limits`] (URL length, rate per client), and graceful draining on
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::limits::{RequestGate, StallTimeout};
use crate::body::BoxBody;
use crate::service::{self, AppState};

/// What a client connection may read ahead and queue for writing: two segments of the
/// default size. hyper takes one bound for both and for the request head, so the head's
/// own limit (`limits.max_header_bytes`) is checked by the request gate instead. Against
/// 64 KiB, uploads cost the proxy 7-12 % less CPU per GiB (half the reads and wake-ups)
/// for ~0.2 MiB more per uploading connection, which holds up to about three reads
/// (docs/PERFORMANCE.md, "Client connection buffers").
const CLIENT_BUFFER_BYTES: usize = 128 * 1024;

/// Serves S3 on `listener` until `stopped` turns true, then drains.
pub async fn serve_s3(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    limit: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let cfg = state.config.clone();
    let header_timeout = Duration::from_secs(cfg.server.header_timeout_secs);
    let stall = Duration::from_secs(cfg.server.stall_timeout_secs);
    let gate = Arc::new(RequestGate::new(&cfg));
    let mut http = hyper::server::conn::http1::Builder::new();
    // half_close: once a request is read, hyper otherwise keeps a read pending on the
    // socket to notice the client leaving, and the stall timeout below took that read
    // for a client that stopped sending: any request whose backend took longer than the
    // stall timeout to answer lost its connection. The read also cancelled a request
    // whose client merely shut down its sending side. A client that is really gone is
    // noticed when its answer is written.
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .half_close(true)
        .keep_alive(true)
        .max_buf_size(CLIENT_BUFFER_BYTES.max(cfg.limits.max_header_bytes))
        .max_headers(cfg.limits.max_headers);
    loop {
        // Waiting for a permit before accepting makes the kernel backlog, not memory,
        // absorb a connection flood.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped.changed() => break,
        };
        let (socket, remote) = tokio::select! {
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = socket.set_nodelay(true);
        let open = OpenConnection::new(state.metrics.connections_open.clone());
        let state = state.clone();
        let gate = gate.clone();
        // The request's future lives on the heap for the request only: hyper keeps the
        // service future's slot for the connection's whole life, so a slot the size of
        // the handlers' state machine would cost every idle keep-alive connection.
        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            serve_or_refuse(state.clone(), &gate, remote.ip(), req)
        });
        match &tls {
            None => {
                let conn = graceful.watch(
                    http.serve_connection(StallTimeout::new(TokioIo::new(socket), stall), svc),
                );
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    drop((permit, open));
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(socket)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = watcher.watch(
                        http.serve_connection(StallTimeout::new(TokioIo::new(stream), stall), svc),
                    );
                    if let Err(e) = conn.await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    drop((permit, open));
                });
            }
        }
    }
    drop(listener);
    let grace = crate::server::grace(&cfg);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "shutdown grace period over; closing the remaining connections"
        );
    }
}

/// Counts a connection in the open-connections gauge for as long as it lives.
struct OpenConnection(prometheus::IntGauge);

impl OpenConnection {
    fn new(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The future that answers one request: the service's, boxed, or the gate's refusal.
fn serve_or_refuse(
    state: Arc<AppState>,
    gate: &RequestGate,
    client: IpAddr,
    req: Request<Incoming>,
) -> impl Future<Output = Result<Response<BoxBody>, Infallible>> + Send + use<> {
    match gate.admit(client, &req) {
        Ok(()) => Either::Left(Box::pin(service::handle(state, req))),
        Err(err) => Either::Right(std::future::ready(Ok(service::refuse(&state, err, &req)))),
    }
}
