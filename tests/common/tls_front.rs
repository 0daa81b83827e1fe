//! A byte-level TLS terminator in front of a plain-HTTP backend, for
//! `SEALGATE_TEST_TARGET=direct` runs: it lets the HTTPS half of the client matrix
//! (each client's CA option) be proven against the backends before the proxy can
//! forward. The Host header passes through unchanged, so SigV4 still verifies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// A running terminator; dropping it stops it.
pub struct TlsFront {
    addr: SocketAddr,
    ca: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    /// Listens on `127.0.0.1:0` with a per-run certificate and forwards every
    /// connection to `backend` (`http://HOST:PORT`).
    pub fn start(backend: &str) -> TlsFront {
        let upstream: SocketAddr = backend
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("backend {backend} is not http://IP:PORT: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("sealgate-tlsfront-")
            .tempdir()
            .expect("temp dir");
        let files = super::proxy::write_certificates(dir.path());
        let config = server_config(&files.cert, &files.key);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind TLS front");
        let addr = listener.local_addr().expect("local addr");
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut back) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = back.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                });
            }
        });
        TlsFront {
            addr,
            ca: files.ca,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    pub fn endpoint_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn ca_cert_path(&self) -> &Path {
        &self.ca
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn server_config(cert: &Path, key: &Path) -> rustls::ServerConfig {
    let cert_pem = std::fs::read(cert).expect("read certificate");
    let key_pem = std::fs::read(key).expect("read key");
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .expect("parse certificate");
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .expect("parse key")
        .expect("a private key");
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate")
}
