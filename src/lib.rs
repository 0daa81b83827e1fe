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
pub mod metrics;
pub mod rekey;
pub mod s3;
pub mod server;
pub mod service;
pub mod upstream;

pub use server::{Endpoints, Running, StartError, start};

/// Starts the proxy, prints the banner, serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(config: config::Config) -> Result<(), StartError> {
    let running = start(config).await?;
    println!("{}", banner::render(&running.endpoints));
    tracing::info!(
        worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "serving"
    );
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
