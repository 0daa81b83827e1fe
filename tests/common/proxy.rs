//! sealgate running in-process for a test: a config built from a [`Backend`] and
//! [`ProxyOptions`], a per-run CA and server certificate for HTTPS, and a tokio runtime
//! owned by the [`TestProxy`] so that plain `#[test]` functions can drive client
//! programs while the proxy serves on its own threads. Dropping it shuts sealgate down.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealgate::config::{Config, CredentialEntry, KmsKind};

use super::backend::{Backend, Target};

/// The key pair test clients sign with; the proxy re-signs with the backend's.
pub const CLIENT_ACCESS_KEY: &str = "SGTESTCLIENTACCESS01";
pub const CLIENT_SECRET_KEY: &str = "sealgate-test-client-secret-key-000000001";

/// How a test wants its proxy.
#[derive(Debug, Clone, Copy)]
pub struct ProxyOptions {
    /// Serve S3 over HTTPS with a per-run certificate for 127.0.0.1 and localhost.
    pub tls: bool,
    /// Encrypt new objects (off: plaintext pass-through).
    pub encrypt: bool,
    /// Bucket-key lifetime; `None` keeps the default. Short values test expiry
    /// without long sleeps.
    pub bucket_key_ttl: Option<Duration>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            tls: false,
            encrypt: true,
            bucket_key_ttl: None,
        }
    }
}

impl ProxyOptions {
    pub fn http() -> Self {
        Self::default()
    }

    pub fn https() -> Self {
        ProxyOptions {
            tls: true,
            ..Self::default()
        }
    }
}

/// A running in-process sealgate.
pub struct TestProxy {
    // Field order matters on drop: the proxy is shut down (in Drop) before the runtime
    // goes, and the temp dir (data, keys, certificates) is removed last.
    running: Option<sealgate::Running>,
    runtime: Option<tokio::runtime::Runtime>,
    endpoints: sealgate::Endpoints,
    ca_cert: Option<PathBuf>,
    encrypts: bool,
    dir: tempfile::TempDir,
}

impl TestProxy {
    /// Starts sealgate in front of `backend`; panics (failing the test) if it cannot.
    pub fn start(backend: &Backend, options: ProxyOptions) -> TestProxy {
        Self::start_with(backend, options, |_| {})
    }

    /// As [`Self::start`], with `customize` applied to the config last (extra client
    /// credentials, `auth.anonymous`, …).
    pub fn start_with(
        backend: &Backend,
        options: ProxyOptions,
        customize: impl FnOnce(&mut Config),
    ) -> TestProxy {
        let dir = tempfile::Builder::new()
            .prefix("sealgate-proxy-")
            .tempdir()
            .expect("temp dir for the proxy");
        let mut config = Config::default();
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.shutdown_grace_secs = 2;
        let ca_cert = if options.tls {
            let tls = write_certificates(dir.path());
            config.server.tls_cert = Some(tls.cert);
            config.server.tls_key = Some(tls.key);
            Some(tls.ca)
        } else {
            None
        };
        if let Some(endpoint) = &backend.endpoint {
            config.backend.endpoint = Some(endpoint.clone());
            config.backend.access_key = Some(backend.access_key.clone());
            config.backend.secret_key = Some(backend.secret_key.clone());
        }
        config.backend.region = "us-east-1".into();
        config.embedded.data_dir = dir.path().join("embedded");
        config.credentials = vec![CredentialEntry::new(CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)];
        config.kms.kind = KmsKind::Local;
        config.kms.master_key_file = Some(dir.path().join("master.key"));
        if let Some(ttl) = options.bucket_key_ttl {
            config.kms.bucket_key_ttl_secs = ttl.as_secs().max(1);
        }
        config.encryption.default.encrypt = options.encrypt;
        config.log.level = "warn".into();
        customize(&mut config);
        if let Err(e) = config.validate() {
            panic!("test proxy config is invalid: {e}");
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sealgate-test")
            .enable_all()
            .build()
            .expect("tokio runtime for the proxy");
        let running = match runtime.block_on(sealgate::start(config)) {
            Ok(r) => r,
            Err(e) => panic!("sealgate::start failed in front of {}: {e}", backend.name()),
        };
        let endpoints = running.endpoints.clone();
        assert_eq!(
            endpoints.tls, options.tls,
            "proxy TLS state differs from the request"
        );
        TestProxy {
            running: Some(running),
            runtime: Some(runtime),
            endpoints,
            ca_cert,
            encrypts: options.encrypt,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        let scheme = if self.endpoints.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.endpoints.s3.port())
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.endpoints.admin.port())
    }

    pub fn access_key(&self) -> &str {
        &self.endpoints.client_access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.endpoints.client_secret_key
    }

    /// The CA certificate clients must trust for HTTPS (`None` over HTTP).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    pub fn endpoints(&self) -> &sealgate::Endpoints {
        &self.endpoints
    }

    /// Scratch space that lives as long as the proxy.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What a client program needs to reach this proxy.
    pub fn target(&self) -> Target {
        Target {
            endpoint: self.endpoint_url(),
            access_key: self.access_key().to_string(),
            secret_key: self.secret_key().to_string(),
            ca_cert: self.ca_cert.clone(),
            client_env: Vec::new(),
            sse_kms: self.encrypts,
        }
    }

    /// The Prometheus text from the admin listener's `/metrics`.
    pub fn metrics_text(&self) -> String {
        let (status, body) = http_get(self.endpoints.admin, "/metrics");
        assert_eq!(status, 200, "GET /metrics answered {status}: {body}");
        body
    }

    /// The sum of every sample of `metric` whose labels contain all of `labels`
    /// (`("op", "PutObject")` pairs), from [`Self::metrics_text`]; 0 when absent.
    pub fn metric_sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics_text(), metric, labels)
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let (Some(running), Some(runtime)) = (self.running.take(), self.runtime.as_ref()) {
            runtime.block_on(async {
                // A proxy that cannot drain must not hang the test binary.
                let _ = tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await;
            });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Sums the samples of `metric` that carry every label pair in `labels`.
pub fn metric_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, label_text) = match name_labels.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (name_labels, ""),
            };
            if name != metric {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// A minimal HTTP/1.0 GET on loopback (no client dependency for one admin call).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("socket timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

pub(super) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A per-run CA and a server certificate it signs for `127.0.0.1` and `localhost`.
/// A separate CA (rather than one self-signed leaf) is what every client's verifier
/// accepts: Go (s5cmd, rclone), OpenSSL (Python clients, curl) and rustls alike.
pub(super) fn write_certificates(dir: &Path) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sealgate test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "sealgate test server");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server certificate");

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&files.ca, ca.pem()).expect("write CA");
    std::fs::write(&files.cert, cert.pem()).expect("write certificate");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");
    files
}
