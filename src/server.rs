//! Listeners, connection handling and the lifecycle of a running proxy.
//!
//! [`start`] binds every listener and returns a [`Running`] handle; tests call it
//! in-process with port 0 and read the bound addresses back.

use std::net::SocketAddr;

use crate::config::Config;

/// What a started proxy tells its caller.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The S3 listener (HTTPS when TLS is configured).
    pub s3: SocketAddr,
    /// The extra plain-HTTP S3 listener, when configured beside HTTPS.
    pub s3_http: Option<SocketAddr>,
    /// The admin listener.
    pub admin: SocketAddr,
    /// True when `s3` speaks HTTPS.
    pub tls: bool,
    /// Credentials clients may sign with (the first configured pair, or the backend's).
    pub client_access_key: String,
    pub client_secret_key: String,
    /// Data directory of the embedded backend, when it serves.
    pub embedded_data_dir: Option<std::path::PathBuf>,
}

/// A running proxy.
pub struct Running {
    pub endpoints: Endpoints,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("not implemented yet")]
    NotYet,
}

/// Binds every listener and starts serving.
pub async fn start(_config: Config) -> Result<Running, StartError> {
    Err(StartError::NotYet)
}

impl Running {
    /// Stops accepting, drains in-flight requests within the configured grace period.
    pub async fn shutdown(self) {}
}
