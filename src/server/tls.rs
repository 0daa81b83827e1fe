//! The HTTPS listener's rustls configuration from PEM files.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert: {0}")]
    Cert(String),
    #[error("server.tls_key: {0}")]
    Key(String),
}

/// Loads the certificate chain and key and builds an acceptor offering HTTP/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| TlsError::Cert(format!("{}: {e}", cert.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(format!(
            "{}: no PEM certificate found",
            cert.display()
        )));
    }
    let key_pem =
        std::fs::read(key).map_err(|e| TlsError::Key(format!("{}: {e}", key.display())))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Key(format!("{}: {e}", key.display())))?
        .ok_or_else(|| TlsError::Key(format!("{}: no PEM private key found", key.display())))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::Key(format!(
                "does not match the certificate or is unusable: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
