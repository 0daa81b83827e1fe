//! sealgate: a transparent encrypting S3 proxy.
//!
//! Map of the crate, in the order a request meets it:
//! - [`server`]: listeners (HTTP, HTTPS), connection limits and timeouts, graceful
//!   shutdown, and the admin endpoints (`/metrics`, `/healthz`, `/readyz`).
//! - [`service`]: one request end to end: classify, authenticate, dispatch to a
//!   handler, and the only place an error becomes an HTTP response.
//! - [`auth`]: client signature verification (SigV4 header and presigned, SigV2,
//!   aws-chunked bodies, checksums); pure functions plus a verifying body.
//! - [`s3`]: operation classification, S3 errors as XML, header names, handlers.
//! - [`crypto`]: object format v1: segments, envelope, key derivation, streaming bodies.
//! - [`kms`] and [`cache`]: the key hierarchy's KMS backends and the bucket-key cache.
//! - [`rekey`]: server-side re-keys and data copies of stored objects, shared by the
//!   copy handlers and the `rewrap`/`migrate` commands.
//! - [`upstream`]: re-signing for the backend and the pooled backend client.
//! - [`embedded`]: the in-process filesystem backend used when no backend is configured.
//! - [`config`], [`metrics`]: leaves every other module may use.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod banner;
pub mod body;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod embedded;
pub mod kms;
pub mod logging;
pub mod metrics;
pub mod rekey;
pub mod s3;
pub mod server;
pub mod service;
pub mod upstream;

pub use server::{Endpoints, Running, StartError, start};

use std::io::Write;

/// Starts the proxy, prints the banner, serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(config: config::Config) -> Result<(), StartError> {
    // Listening before the banner: a SIGTERM sent as soon as the proxy says it is ready
    // must drain it, not kill it with the signal's default action.
    let stop = ShutdownSignals::listen();
    let running = start(config).await?;
    // A closed stdout (a supervisor that never reads it) must not stop the proxy, as
    // `println!` would by panicking.
    if writeln!(std::io::stdout(), "{}", banner::render(&running.endpoints)).is_err() {
        tracing::warn!("stdout is closed: the start-up banner was not printed");
    }
    tracing::info!(
        worker_threads = running.serving_threads(),
        thread_per_core = running.thread_per_core(),
        "serving"
    );
    stop.recv().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment [`ShutdownSignals::listen`] runs.
struct ShutdownSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    #[cfg(unix)]
    fn listen() -> ShutdownSignals {
        use tokio::signal::unix::{SignalKind, signal};
        ShutdownSignals {
            term: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    #[cfg(not(unix))]
    fn listen() -> ShutdownSignals {
        ShutdownSignals {}
    }

    /// Until the first of the signals.
    #[cfg(unix)]
    async fn recv(self) {
        async fn next(signal: Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = next(self.term) => {},
            _ = next(self.interrupt) => {},
        }
    }

    #[cfg(not(unix))]
    async fn recv(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
