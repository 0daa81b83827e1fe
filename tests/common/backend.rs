//! Which backend a test talks to, read from the environment `scripts/test.sh` sets,
//! and [`Target`]: the endpoint and keys a client program is pointed at.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Ceph RGW 16.2: the strictest SigV4 checks, no trailers, no flexible checksums.
    Ceph,
    /// moto 5.2.1: accepts any signature.
    Moto,
    /// The proxy's own embedded filesystem backend (no external process).
    Embedded,
}

/// A backend S3 service the proxy (or a client, directly) can use.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: BackendKind,
    /// `None` for the embedded backend.
    pub endpoint: Option<String>,
    pub access_key: String,
    pub secret_key: String,
}

impl Backend {
    /// Ceph RGW from `SEALGATE_TEST_CEPH_{ENDPOINT,ACCESS_KEY,SECRET_KEY}`.
    pub fn ceph() -> Option<Backend> {
        let endpoint = env_or_skip("SEALGATE_TEST_CEPH_ENDPOINT", "Ceph RGW")?;
        let access_key = env_or_skip("SEALGATE_TEST_CEPH_ACCESS_KEY", "Ceph RGW")?;
        let secret_key = env_or_skip("SEALGATE_TEST_CEPH_SECRET_KEY", "Ceph RGW")?;
        Some(Backend {
            kind: BackendKind::Ceph,
            endpoint: Some(endpoint),
            access_key,
            secret_key,
        })
    }

    /// A second Ceph RGW user on the same cluster, from
    /// `SEALGATE_TEST_CEPH_ALT_{ACCESS_KEY,SECRET_KEY}` (`scripts/test.sh` creates it):
    /// for tests of what separates backend users. Required like the backends themselves
    /// under `SEALGATE_TEST_REQUIRE_BACKENDS=1`: an older harness must not turn those
    /// tests into silent passes.
    pub fn ceph_alt() -> Option<Backend> {
        let main = Backend::ceph()?;
        let what = "second Ceph user";
        let access_key = env_or_skip("SEALGATE_TEST_CEPH_ALT_ACCESS_KEY", what)?;
        let secret_key = env_or_skip("SEALGATE_TEST_CEPH_ALT_SECRET_KEY", what)?;
        Some(Backend {
            access_key,
            secret_key,
            ..main
        })
    }

    /// moto from `SEALGATE_TEST_MOTO_ENDPOINT`; moto accepts any key pair.
    pub fn moto() -> Option<Backend> {
        let endpoint = env_or_skip("SEALGATE_TEST_MOTO_ENDPOINT", "moto")?;
        Some(Backend {
            kind: BackendKind::Moto,
            endpoint: Some(endpoint),
            access_key: "sealgatemotoaccess".into(),
            secret_key: "sealgatemotosecret".into(),
        })
    }

    /// The proxy's embedded backend: always available, needs nothing.
    pub fn embedded() -> Option<Backend> {
        Some(Backend {
            kind: BackendKind::Embedded,
            endpoint: None,
            access_key: String::new(),
            secret_key: String::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            BackendKind::Ceph => "ceph",
            BackendKind::Moto => "moto",
            BackendKind::Embedded => "embedded",
        }
    }

    /// The backend itself as a client target (no proxy); `None` for the embedded one.
    pub fn direct_target(&self) -> Option<Target> {
        Some(Target {
            endpoint: self.endpoint.clone()?,
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            ca_cert: None,
            client_env: match self.kind {
                // Ceph RGW 16.2 rejects the aws-chunked bodies with checksum trailers
                // that botocore sends over HTTPS; a user of Ceph turns them off so.
                // (The proxy must accept them: through it, clients keep defaults.)
                BackendKind::Ceph => vec![(
                    "AWS_REQUEST_CHECKSUM_CALCULATION".into(),
                    "when_required".into(),
                )],
                _ => Vec::new(),
            },
            sse_kms: false,
        })
    }
}

/// Reads a backend variable. Missing: a panic when `SEALGATE_TEST_REQUIRE_BACKENDS=1`
/// (CI must not go green by skipping), else a `skipped:` line and `None`.
fn env_or_skip(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("SEALGATE_TEST_REQUIRE_BACKENDS").is_ok_and(|v| v == "1") => {
            panic!(
                "{var} is not set but SEALGATE_TEST_REQUIRE_BACKENDS=1: \
                 {what} is required (run the tests with ./scripts/test.sh)"
            )
        }
        _ => {
            println!("skipped: no {what} (run ./scripts/test.sh)");
            None
        }
    }
}

/// Where a client program sends its requests: the proxy or a backend directly.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, no trailing slash.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// PEM CA certificate that signed the proxy's certificate, for HTTPS.
    pub ca_cert: Option<PathBuf>,
    /// Extra environment for every client process (a backend's known quirks).
    pub client_env: Vec<(String, String)>,
    /// Objects are stored SSE-KMS style (the encrypting proxy): ETags are not MD5s.
    pub sse_kms: bool,
}

impl Target {
    pub fn is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// `127.0.0.1:PORT`: the endpoint without its scheme (s3cmd wants it so).
    pub fn host_port(&self) -> &str {
        self.endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
    }
}
