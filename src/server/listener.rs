//! Accept loops: connection limit, TLS handshake (with its own deadline), HTTP/1.1 with
//! a header-read timeout and a socket stall timeout against slow clients, the request
//! gate of [`super::limits`] (URL length, rate per client), and graceful draining on
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::limits::{RequestGate, StallTimeout};
use super::shards::Shards;
use crate::body::BoxBody;
use crate::service::{self, AppState};

/// What a client connection may read ahead and queue for writing: two segments of the
/// default size. hyper takes one bound for both and for the request head, so the head's
/// own limit (`limits.max_header_bytes`) is checked by the request gate instead. Against
/// 64 KiB, uploads cost the proxy 7-12 % less CPU per GiB (half the reads and wake-ups)
/// for ~0.2 MiB more per uploading connection, which holds up to about three reads
/// (docs/PERFORMANCE.md, "Client connection buffers").
const CLIENT_BUFFER_BYTES: usize = 128 * 1024;

/// Serves S3 on `listener` until `stopped` turns true, then drains. With `shards`, each
/// connection is served on the least loaded shard; without, on the calling runtime.
pub async fn serve_s3(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    limit: Arc<Semaphore>,
    shards: Option<Arc<Shards>>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let cfg = state.config.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    // half_close: once a request is read, hyper otherwise keeps a read pending on the
    // socket to notice the client leaving, and the stall timeout below took that read
    // for a client that stopped sending: any request whose backend took longer than the
    // stall timeout to answer lost its connection. The read also cancelled a request
    // whose client merely shut down its sending side. A client that is really gone is
    // noticed when its answer is written.
    let header_timeout = Duration::from_secs(cfg.server.header_timeout_secs);
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .half_close(true)
        .keep_alive(true)
        .max_buf_size(CLIENT_BUFFER_BYTES.max(cfg.limits.max_header_bytes))
        .max_headers(cfg.limits.max_headers);
    let ctx = Arc::new(ConnectionContext {
        gate: RequestGate::new(&cfg),
        stall: Duration::from_secs(cfg.server.stall_timeout_secs),
        header_timeout,
        http,
        tls,
        state,
    });
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
        let open = OpenConnection::new(ctx.state.metrics.connections_open.clone());
        let ctx = ctx.clone();
        let watcher = graceful.watcher();
        match &shards {
            None => {
                tokio::spawn(async move {
                    serve_connection(&ctx, socket, remote, watcher).await;
                    drop((permit, open));
                });
            }
            Some(shards) => {
                // The socket leaves this runtime's I/O driver and joins the shard's.
                let socket = match socket.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%remote, error = %e, "cannot hand the connection over");
                        continue;
                    }
                };
                shards.spawn(move |placed| async move {
                    match TcpStream::from_std(socket) {
                        Ok(socket) => serve_connection(&ctx, socket, remote, watcher).await,
                        Err(e) => {
                            tracing::debug!(%remote, error = %e, "cannot take the connection over");
                        }
                    }
                    drop((permit, open, placed));
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

/// What every connection of one listener shares.
struct ConnectionContext {
    state: Arc<AppState>,
    gate: RequestGate,
    http: hyper::server::conn::http1::Builder,
    tls: Option<TlsAcceptor>,
    stall: Duration,
    header_timeout: Duration,
}

/// One client connection, from the TLS handshake (when the listener speaks HTTPS) to
/// its close.
async fn serve_connection(
    ctx: &Arc<ConnectionContext>,
    socket: TcpStream,
    remote: SocketAddr,
    watcher: Watcher,
) {
    let svc = {
        let ctx = ctx.clone();
        // The request's future lives on the heap for the request only: hyper keeps the
        // service future's slot for the connection's whole life, so a slot the size of
        // the handlers' state machine would cost every idle keep-alive connection.
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            serve_or_refuse(ctx.state.clone(), &ctx.gate, remote.ip(), req)
        })
    };
    let ended = match &ctx.tls {
        None => {
            let io = StallTimeout::new(TokioIo::new(socket), ctx.stall);
            watcher.watch(ctx.http.serve_connection(io, svc)).await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(ctx.header_timeout, acceptor.accept(socket)).await {
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
            let io = StallTimeout::new(TokioIo::new(stream), ctx.stall);
            watcher.watch(ctx.http.serve_connection(io, svc)).await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
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
