//! The pooled keep-alive client towards the backend (HTTP or HTTPS via rustls, with
//! the system roots plus an optional CA bundle). TCP_NODELAY is set: without it small
//! requests stall on Nagle's algorithm and delayed ACKs.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::s3::error::BoxError;

/// Request bodies sent upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("backend.ca_bundle: {0}")]
    CaBundle(String),
}

/// Builds the backend client.
pub fn build_client(
    ca_bundle: Option<&Path>,
    connect_timeout: Duration,
    max_idle_per_host: usize,
) -> Result<HttpClient, ClientBuildError> {
    let tls = tls_client_config(ca_bundle)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https))
}

/// rustls client config: system roots plus the configured bundle.
pub fn tls_client_config(
    ca_bundle: Option<&Path>,
) -> Result<rustls::ClientConfig, ClientBuildError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate should not stop the proxy; it is just not trusted.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientBuildError::CaBundle(format!(
                "{}: no PEM certificate found",
                path.display()
            )));
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
