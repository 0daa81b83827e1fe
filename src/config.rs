//! The configuration tree: built-in defaults < TOML file < `SEALGATE_SECTION__KEY`
//! environment variables, layered with figment, then checked by [`Config::validate`],
//! whose errors name the offending key. Every field is documented again in
//! `config.example.toml`; a test keeps the two in step.
//!
//! Modules receive their own section at construction and never read the environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::Provider;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub backend: BackendConfig,
    pub embedded: EmbeddedConfig,
    pub auth: AuthConfig,
    /// Access keys clients may sign with. Empty: clients sign with the backend's own
    /// credentials (the sidecar case).
    pub credentials: Vec<CredentialEntry>,
    pub kms: KmsConfig,
    pub encryption: EncryptionConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
    pub uploads: UploadsConfig,
}

/// Upper bound of `server.worker_threads`: far above any useful count, low enough that a
/// typo (an extra digit or two) is refused instead of spawning thousands of threads.
pub const MAX_WORKER_THREADS: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// S3 listener address (HTTP, or HTTPS when `tls_cert`/`tls_key` are set).
    pub listen: SocketAddr,
    /// Admin listener: `/metrics`, `/healthz`, `/readyz`.
    pub admin_listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, the S3 listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// An extra plain-HTTP S3 listener beside the HTTPS one (off when unset).
    pub http_listen: Option<SocketAddr>,
    /// Domains for virtual-hosted-style requests: `BUCKET.DOMAIN` names a bucket.
    pub virtual_host_domains: Vec<String>,
    /// Seconds a client has to send a request head; also how long an idle keep-alive
    /// connection waits for its next request.
    pub header_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    pub shutdown_grace_secs: u64,
    /// Seconds a connection may wait with neither a byte read nor a byte written while
    /// a read or write is pending: a request body that stalls this long gets 400
    /// `RequestTimeout`, a client that stops reading its response loses the connection.
    /// Waiting for the backend does not count (see `response_timeout_secs`).
    pub stall_timeout_secs: u64,
    /// Threads that serve requests. Unset: one per CPU the process may use (affinity
    /// and cgroup quota).
    pub worker_threads: Option<usize>,
    /// Serve each client connection, and the backend connections its requests use, on
    /// one of `worker_threads` single-threaded runtimes (the least loaded when it
    /// arrives), as nginx pins a connection to one worker. A transfer's bytes then stay
    /// on one thread: lone large GETs cost 24-40 % less CPU per byte. `false`: one shared
    /// work-stealing runtime, which evens out connections of very unequal weight.
    pub thread_per_core: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Backend S3 endpoint URL (`http://` or `https://`). Unset: the embedded backend.
    pub endpoint: Option<String>,
    /// Region used to sign requests to the backend.
    pub region: String,
    /// Backend access key; also what clients sign with when `[[credentials]]` is empty.
    pub access_key: Option<String>,
    /// Backend secret key.
    pub secret_key: Option<String>,
    /// `path` (`http://host/bucket/key`) or `virtual` (`http://bucket.host/key`).
    pub addressing_style: AddressingStyle,
    /// PEM CA bundle trusted for an `https://` backend, in addition to the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for a TCP/TLS connection to the backend.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the backend's response head; also how long a backend
    /// connection may sit with nothing moving while a read or write waits (a body that
    /// stops mid-way).
    pub response_timeout_secs: u64,
    /// Idle pooled connections kept per backend host and serving thread.
    pub pool_max_idle_per_host: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AddressingStyle {
    Path,
    Virtual,
}

/// The embedded filesystem backend, used when `backend.endpoint` is unset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Directory holding the embedded backend's objects and generated credentials.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accept legacy Signature Version 2 (header and query) from clients.
    pub allow_sigv2: bool,
    /// Largest accepted difference between a request's date and the proxy clock.
    pub max_clock_skew_secs: u64,
    /// What becomes of requests that carry no signature at all.
    pub anonymous: AnonymousRequests,
}

/// Requests without any signature (no Authorization, no presigned query, a form
/// without signature and policy). A request with a signature that fails is never
/// anonymous: it is refused either way.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousRequests {
    /// 403 `AccessDenied`, before anything reaches the backend.
    Refuse,
    /// Sent to the backend unsigned, so its bucket ACLs and policies decide; objects
    /// are sealed and opened as for signed requests.
    Forward,
}

/// One key pair clients may sign requests with, and optionally the backend key pair
/// the proxy signs their requests with (else `[backend]`'s).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    pub access_key: String,
    pub secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_secret_key: Option<String>,
}

impl CredentialEntry {
    /// A client key pair whose requests reach the backend as `[backend]`'s identity.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> CredentialEntry {
        CredentialEntry {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            backend_access_key: None,
            backend_secret_key: None,
        }
    }

    /// The backend key pair this client's requests are signed with, when it has its own.
    pub fn backend_pair(&self) -> Option<(&str, &str)> {
        match (&self.backend_access_key, &self.backend_secret_key) {
            (Some(a), Some(s)) => Some((a.as_str(), s.as_str())),
            _ => None,
        }
    }
}

impl std::fmt::Debug for CredentialEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialEntry")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("backend_access_key", &self.backend_access_key)
            .field(
                "backend_secret_key",
                &self.backend_secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// `local` (master key file) or `aws` (AWS KMS JSON API).
    pub kind: KmsKind,
    /// Default KMS key id for buckets whose policy names none.
    pub key_id: String,
    /// `local`: path of the 256-bit master key, created with mode 0600 on first start.
    pub master_key_file: Option<PathBuf>,
    /// `aws`: endpoint URL; unset means `https://kms.REGION.amazonaws.com`.
    pub endpoint: Option<String>,
    /// `aws`: region used to sign KMS requests.
    pub region: Option<String>,
    /// `aws`: access key; unset falls back to AWS_ACCESS_KEY_ID.
    pub access_key: Option<String>,
    /// `aws`: secret key; unset falls back to AWS_SECRET_ACCESS_KEY.
    pub secret_key: Option<String>,
    /// `aws`: per-call timeout in milliseconds.
    pub timeout_ms: u64,
    /// `aws`: retries on throttling and 5xx answers.
    pub max_retries: u32,
    /// Lifetime of a cached bucket key, in seconds.
    pub bucket_key_ttl_secs: u64,
    /// Most bucket keys (write side) and unwrapped blobs (read side) kept in memory.
    pub bucket_key_cache_entries: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KmsKind {
    Local,
    Aws,
}

/// How objects of a bucket are protected. `default` applies to every bucket not named
/// in `buckets`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    pub default: BucketPolicy,
    pub buckets: BTreeMap<String, BucketPolicy>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BucketPolicy {
    /// Encrypt new objects. Off: objects pass through as plaintext.
    pub encrypt: bool,
    /// KMS key id; unset uses `kms.key_id`.
    pub kms_key_id: Option<String>,
    /// Protect data keys with a cached bucket key (the S3 Bucket Key model).
    pub bucket_key: bool,
    /// Plaintext segment size in bytes: a power of two from 4 KiB to 1 MiB.
    pub segment_size: u32,
    /// Serve objects that carry no envelope (written before the proxy) as they are.
    pub allow_plaintext_reads: bool,
    /// Accept SSE-C requests and emulate SSE-C in the proxy.
    pub allow_sse_c: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most request header bytes (request line included).
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Most bytes in a request URL.
    pub max_url_bytes: usize,
    /// Most bytes in an XML request body (DeleteObjects, CompleteMultipartUpload, …).
    pub max_xml_body_bytes: usize,
    /// Largest aws-chunked chunk accepted.
    pub max_chunk_bytes: usize,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Requests a second one client address may make (token bucket); 0 = no limit.
    /// Over the limit: 503 `SlowDown`.
    pub requests_per_second_per_client: u32,
    /// Requests a client may make at once above the steady rate (the bucket's size);
    /// values below `requests_per_second_per_client` mean one second's worth.
    pub request_burst_per_client: u32,
    /// Memory for the caches of facts about stored objects (plaintext sizes for
    /// listings, part layouts for `partNumber` reads), split evenly between them.
    pub metadata_cache_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// tracing filter directive, e.g. `info` or `sealgate=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write one JSON line per object key operation.
    pub enabled: bool,
    /// File to append to; unset writes to stdout.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// A backend bucket where the proxy records the envelope of each multipart upload
    /// it starts, so clients get the backend's own upload ids (as ListMultipartUploads
    /// shows them). Unset: upload ids carry the envelope (`sg1.…`).
    pub registry_bucket: Option<String>,
    /// Key prefix of the records in `registry_bucket`.
    pub registry_prefix: String,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            registry_bucket: None,
            registry_prefix: "pending-uploads/".to_string(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8333)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9333)),
            tls_cert: None,
            tls_key: None,
            http_listen: None,
            virtual_host_domains: Vec::new(),
            header_timeout_secs: 30,
            shutdown_grace_secs: 30,
            stall_timeout_secs: 60,
            worker_threads: None,
            thread_per_core: true,
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            access_key: None,
            secret_key: None,
            addressing_style: AddressingStyle::Path,
            ca_bundle: None,
            connect_timeout_secs: 10,
            response_timeout_secs: 300,
            pool_max_idle_per_host: 64,
        }
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".sealgate-data"),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            allow_sigv2: true,
            max_clock_skew_secs: 15 * 60,
            anonymous: AnonymousRequests::Refuse,
        }
    }
}

impl Default for KmsConfig {
    fn default() -> Self {
        Self {
            kind: KmsKind::Local,
            key_id: "sealgate-default".into(),
            master_key_file: None,
            endpoint: None,
            region: None,
            access_key: None,
            secret_key: None,
            timeout_ms: 5_000,
            max_retries: 4,
            bucket_key_ttl_secs: 300,
            bucket_key_cache_entries: 10_000,
        }
    }
}

impl Default for BucketPolicy {
    fn default() -> Self {
        Self {
            encrypt: true,
            kms_key_id: None,
            bucket_key: true,
            segment_size: 64 * 1024,
            allow_plaintext_reads: false,
            allow_sse_c: false,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_url_bytes: 16 * 1024,
            max_xml_body_bytes: 2 * 1024 * 1024,
            max_chunk_bytes: 16 * 1024 * 1024,
            max_connections: 4096,
            requests_per_second_per_client: 0,
            request_burst_per_client: 0,
            metadata_cache_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A configuration problem, always naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("{0}")]
    Parse(String),
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

impl Config {
    /// Layers defaults, the optional TOML file and the given environment variables
    /// (`SEALGATE_SECTION__KEY`), then validates. The environment is passed in, not
    /// read, so tests stay independent of the process environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{}: no such file", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let vars: Vec<(String, String)> = env
            .into_iter()
            // Every key lives in a section, so an override always has a `__`; other
            // SEALGATE_* names (SEALGATE_CONFIG, or the SEALGATE_PORT_8333_TCP… variables
            // Kubernetes injects for a Service named sealgate) are not config.
            .filter(|(k, _)| k.starts_with("SEALGATE_") && k.contains("__"))
            .collect();
        let env_toml = env_as_toml(&vars)?;
        figment = figment.merge(Toml::string(&env_toml));
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads with the real process environment.
    pub fn load_from_process(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, std::env::vars())
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        match (&s.tls_cert, &s.tls_key) {
            (Some(_), None) => {
                return Err(invalid("server.tls_key", "required with server.tls_cert"));
            }
            (None, Some(_)) => {
                return Err(invalid("server.tls_cert", "required with server.tls_key"));
            }
            _ => {}
        }
        if s.http_listen.is_some() && s.tls_cert.is_none() {
            return Err(invalid(
                "server.http_listen",
                "only meaningful with server.tls_cert (HTTPS on server.listen)",
            ));
        }
        if s.stall_timeout_secs == 0 {
            return Err(invalid("server.stall_timeout_secs", "must be at least 1"));
        }
        if s.header_timeout_secs == 0 {
            return Err(invalid("server.header_timeout_secs", "must be at least 1"));
        }
        if let Some(n) = s.worker_threads
            && !(1..=MAX_WORKER_THREADS).contains(&n)
        {
            return Err(invalid(
                "server.worker_threads",
                format!("must be between 1 and {MAX_WORKER_THREADS}"),
            ));
        }
        for (i, d) in s.virtual_host_domains.iter().enumerate() {
            if d.is_empty() || d.contains('/') || d.contains(':') {
                return Err(invalid(
                    format!("server.virtual_host_domains[{i}]"),
                    "must be a bare host name",
                ));
            }
        }
        let b = &self.backend;
        if let Some(ep) = &b.endpoint {
            let uri: http::Uri = ep
                .parse()
                .map_err(|_| invalid("backend.endpoint", format!("{ep:?} is not a URL")))?;
            match uri.scheme_str() {
                Some("http") | Some("https") => {}
                _ => {
                    return Err(invalid(
                        "backend.endpoint",
                        "must start with http:// or https://",
                    ));
                }
            }
            if uri.host().is_none() {
                return Err(invalid("backend.endpoint", "has no host"));
            }
            if uri.path() != "/" && !uri.path().is_empty() {
                return Err(invalid("backend.endpoint", "must not have a path"));
            }
            if b.access_key.is_none() {
                return Err(invalid(
                    "backend.access_key",
                    "required with backend.endpoint",
                ));
            }
            if b.secret_key.is_none() {
                return Err(invalid(
                    "backend.secret_key",
                    "required with backend.endpoint",
                ));
            }
        }
        if b.region.is_empty() {
            return Err(invalid("backend.region", "must not be empty"));
        }
        if let Some(ca) = &b.ca_bundle
            && !ca.is_file()
        {
            return Err(invalid(
                "backend.ca_bundle",
                format!("{}: no such file", ca.display()),
            ));
        }
        for (i, c) in self.credentials.iter().enumerate() {
            if c.access_key.is_empty() {
                return Err(invalid(
                    format!("credentials[{i}].access_key"),
                    "must not be empty",
                ));
            }
            if c.secret_key.is_empty() {
                return Err(invalid(
                    format!("credentials[{i}].secret_key"),
                    "must not be empty",
                ));
            }
            if self.credentials[..i]
                .iter()
                .any(|o| o.access_key == c.access_key)
            {
                return Err(invalid(
                    format!("credentials[{i}].access_key"),
                    "listed twice",
                ));
            }
            validate_backend_pair(i, c, b.endpoint.is_some())?;
        }
        validate_uploads(&self.uploads)?;
        if self.auth.max_clock_skew_secs == 0 {
            return Err(invalid("auth.max_clock_skew_secs", "must be at least 1"));
        }
        let k = &self.kms;
        if k.key_id.is_empty() {
            return Err(invalid("kms.key_id", "must not be empty"));
        }
        if k.bucket_key_ttl_secs == 0 {
            return Err(invalid("kms.bucket_key_ttl_secs", "must be at least 1"));
        }
        if k.kind == KmsKind::Aws && k.region.is_none() && k.endpoint.is_none() {
            return Err(invalid(
                "kms.region",
                "required for kind = \"aws\" (or set kms.endpoint)",
            ));
        }
        if let Some(ep) = &k.endpoint {
            let ok = ep
                .parse::<http::Uri>()
                .ok()
                .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")));
            if !ok {
                return Err(invalid(
                    "kms.endpoint",
                    format!("{ep:?} is not an http(s) URL"),
                ));
            }
        }
        validate_policy("encryption.default", &self.encryption.default)?;
        for (name, p) in &self.encryption.buckets {
            validate_policy(&format!("encryption.buckets.{name}"), p)?;
        }
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if self.limits.max_header_bytes < 1024 {
            return Err(invalid("limits.max_header_bytes", "must be at least 1024"));
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(invalid(
                "log.level",
                format!("{:?} is not a tracing filter", self.log.level),
            ));
        }
        Ok(())
    }

    /// True when no backend is configured and the embedded one serves.
    pub fn uses_embedded_backend(&self) -> bool {
        self.backend.endpoint.is_none()
    }

    /// The policy for `bucket`.
    pub fn policy(&self, bucket: &str) -> &BucketPolicy {
        self.encryption
            .buckets
            .get(bucket)
            .unwrap_or(&self.encryption.default)
    }

    /// Time limits as durations.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.server.header_timeout_secs)
    }
}

/// A client's own backend key pair: both halves or neither (half a pair would silently
/// sign as `[backend]`), and only towards a configured backend (the embedded one has a
/// single generated identity).
fn validate_backend_pair(
    i: usize,
    c: &CredentialEntry,
    external_backend: bool,
) -> Result<(), ConfigError> {
    let (access, secret) = (&c.backend_access_key, &c.backend_secret_key);
    match (access, secret) {
        (None, None) => return Ok(()),
        (Some(_), None) => {
            return Err(invalid(
                format!("credentials[{i}].backend_secret_key"),
                "required with backend_access_key",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                format!("credentials[{i}].backend_access_key"),
                "required with backend_secret_key",
            ));
        }
        (Some(_), Some(_)) => {}
    }
    for (name, value) in [
        ("backend_access_key", access),
        ("backend_secret_key", secret),
    ] {
        if value.as_deref().is_some_and(str::is_empty) {
            return Err(invalid(
                format!("credentials[{i}].{name}"),
                "must not be empty",
            ));
        }
    }
    if !external_backend {
        return Err(invalid(
            format!("credentials[{i}].backend_access_key"),
            "only with backend.endpoint (the embedded backend has one identity)",
        ));
    }
    Ok(())
}

/// The registry bucket follows S3's naming rules for new buckets (the proxy may have to
/// address it virtual-host style), and records stay under their prefix.
fn validate_uploads(u: &UploadsConfig) -> Result<(), ConfigError> {
    if let Some(b) = &u.registry_bucket {
        let ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
            && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(invalid(
                "uploads.registry_bucket",
                format!("{b:?} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')"),
            ));
        }
    }
    if u.registry_prefix.len() > 512 {
        return Err(invalid("uploads.registry_prefix", "longer than 512 bytes"));
    }
    Ok(())
}

fn validate_policy(key: &str, p: &BucketPolicy) -> Result<(), ConfigError> {
    let s = p.segment_size;
    if !(4096..=1 << 20).contains(&s) || !s.is_power_of_two() {
        return Err(invalid(
            format!("{key}.segment_size"),
            format!("{s} is not a power of two from 4096 to 1048576"),
        ));
    }
    if let Some(id) = &p.kms_key_id
        && id.is_empty()
    {
        return Err(invalid(format!("{key}.kms_key_id"), "must not be empty"));
    }
    Ok(())
}

/// Turns `SEALGATE_SECTION__KEY=value` pairs into a TOML document. Values are parsed as
/// TOML when they parse (numbers, booleans, arrays), else taken as strings; this is what
/// lets `SEALGATE_SERVER__LISTEN=0.0.0.0:8333` and `SEALGATE_KMS__TIMEOUT_MS=100` both work.
fn env_as_toml(vars: &[(String, String)]) -> Result<String, ConfigError> {
    let mut root = toml_table();
    for (name, value) in vars {
        let path: Vec<String> = name["SEALGATE_".len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(invalid(name.clone(), "expected SEALGATE_SECTION__KEY"));
        }
        let parsed = parse_env_value(value);
        insert_path(&mut root, &path, parsed).map_err(|p| invalid(name.clone(), p))?;
    }
    Ok(render_toml(&root))
}

// A tiny TOML tree: enough to render environment overrides without a toml dependency.
enum TomlNode {
    Table(BTreeMap<String, TomlNode>),
    Value(String),
}

fn toml_table() -> TomlNode {
    TomlNode::Table(BTreeMap::new())
}

fn parse_env_value(value: &str) -> String {
    let probe = format!("v = {value}");
    if Toml::string(&probe).data().is_ok() && !value.trim().is_empty() {
        value.to_string()
    } else {
        let escaped: String = value
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

fn insert_path(node: &mut TomlNode, path: &[String], value: String) -> Result<(), String> {
    let TomlNode::Table(map) = node else {
        return Err("conflicts with another variable".into());
    };
    match path {
        [] => Err("empty key".into()),
        [last] => {
            map.insert(last.clone(), TomlNode::Value(value));
            Ok(())
        }
        [first, rest @ ..] => insert_path(
            map.entry(first.clone()).or_insert_with(toml_table),
            rest,
            value,
        ),
    }
}

fn render_toml(root: &TomlNode) -> String {
    fn walk(out: &mut String, prefix: &str, node: &TomlNode) {
        let TomlNode::Table(map) = node else { return };
        for (k, v) in map {
            if let TomlNode::Value(val) = v {
                out.push_str(&format!("{k} = {val}\n"));
            }
        }
        for (k, v) in map {
            if let TomlNode::Table(_) = v {
                let name = if prefix.is_empty() {
                    format!("\"{k}\"")
                } else {
                    format!("{prefix}.\"{k}\"")
                };
                out.push_str(&format!("[{name}]\n"));
                walk(out, &name, v);
            }
        }
    }
    let mut out = String::new();
    walk(&mut out, "", root);
    out
}

fn describe_figment_error(e: figment::Error) -> ConfigError {
    let mut parts = Vec::new();
    for err in e {
        let key = if err.path.is_empty() {
            "config".to_string()
        } else {
            err.path.join(".")
        };
        parts.push(format!("{key}: {}", err.kind));
    }
    ConfigError::Parse(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate_and_use_embedded_backend() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.uses_embedded_backend());
        assert_eq!(c.encryption.default.segment_size, 65536);
        assert!(c.encryption.default.encrypt && c.encryption.default.bucket_key);
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[server]\nlisten = \"127.0.0.1:1000\"\n[kms]\ntimeout_ms = 7\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("SEALGATE_SERVER__LISTEN", "0.0.0.0:2000"),
                ("SEALGATE_KMS__KIND", "aws"),
                ("SEALGATE_KMS__REGION", "eu-west-1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:2000");
        assert_eq!(c.kms.timeout_ms, 7);
        assert_eq!(c.kms.kind, KmsKind::Aws);
        assert_eq!(c.kms.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::load(None, env(&[("SEALGATE_BACKEND__ENDPOINT", "ftp://x")])).unwrap_err();
        assert!(e.to_string().starts_with("backend.endpoint:"), "{e}");
        let e = Config::load(None, env(&[("SEALGATE_SERVER__LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = Config::load(
            None,
            env(&[("SEALGATE_ENCRYPTION__DEFAULT__SEGMENT_SIZE", "1000")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("encryption.default.segment_size:"),
            "{e}"
        );
        let e = Config::load(None, env(&[("SEALGATE_SERVER__NO_SUCH_KEY", "1")])).unwrap_err();
        assert!(e.to_string().contains("no_such_key"), "{e}");
    }

    #[test]
    fn worker_threads_is_unset_or_between_one_and_the_bound() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.worker_threads, None);
        for ok in ["1", "2", "256"] {
            let c = Config::load(None, env(&[("SEALGATE_SERVER__WORKER_THREADS", ok)])).unwrap();
            assert_eq!(c.server.worker_threads, ok.parse().ok());
        }
        for bad in ["0", "257", "10000"] {
            let e =
                Config::load(None, env(&[("SEALGATE_SERVER__WORKER_THREADS", bad)])).unwrap_err();
            assert!(
                e.to_string().starts_with("server.worker_threads:"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn upload_registry_bucket_must_be_a_bucket_name() {
        for bad in [
            "ab",
            "Upper",
            "under_score",
            "-dash",
            "dot.",
            &"x".repeat(64),
        ] {
            let e =
                Config::load(None, env(&[("SEALGATE_UPLOADS__REGISTRY_BUCKET", bad)])).unwrap_err();
            assert!(
                e.to_string().starts_with("uploads.registry_bucket:"),
                "{bad}: {e}"
            );
        }
        let c = Config::load(
            None,
            env(&[("SEALGATE_UPLOADS__REGISTRY_BUCKET", "sealgate-uploads.1")]),
        )
        .unwrap();
        assert_eq!(
            c.uploads.registry_bucket.as_deref(),
            Some("sealgate-uploads.1")
        );
        assert_eq!(c.uploads.registry_prefix, "pending-uploads/");
    }

    #[test]
    fn backend_endpoint_requires_credentials() {
        let e = Config::load(
            None,
            env(&[("SEALGATE_BACKEND__ENDPOINT", "http://127.0.0.1:9000")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "backend.access_key: required with backend.endpoint"
        );
    }

    #[test]
    fn service_link_variables_are_not_config() {
        let c = Config::load(
            None,
            env(&[
                ("SEALGATE_PORT", "tcp://10.0.0.1:8333"),
                ("SEALGATE_SERVICE_HOST", "10.0.0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn credentials_debug_redacts_secret() {
        let mut c = CredentialEntry::new("AK", "very-secret");
        c.backend_access_key = Some("BACKENDAK".into());
        c.backend_secret_key = Some("backend-very-secret".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("AK") && shown.contains("BACKENDAK"),
            "{shown}"
        );
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    fn with_credentials(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let text = format!(
            "[backend]\nendpoint = \"http://127.0.0.1:7480\"\naccess_key = \"B\"\nsecret_key = \"b\"\n{toml}"
        );
        std::fs::write(&f, text).unwrap();
        Config::load(Some(&f), env(&[]))
    }

    #[test]
    fn client_backend_pair_is_both_or_neither() {
        let c = with_credentials(
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"a\"\n\
             backend_access_key = \"BA\"\nbackend_secret_key = \"ba\"\n\
             [[credentials]]\naccess_key = \"C\"\nsecret_key = \"c\"\n",
        )
        .unwrap();
        assert_eq!(c.credentials[0].backend_pair(), Some(("BA", "ba")));
        assert_eq!(c.credentials[1].backend_pair(), None);
        let e = with_credentials(
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"a\"\nbackend_access_key = \"BA\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "credentials[0].backend_secret_key: required with backend_access_key"
        );
        let e = with_credentials(
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"a\"\nbackend_secret_key = \"ba\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "credentials[0].backend_access_key: required with backend_secret_key"
        );
        let e = with_credentials(
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"a\"\n\
             backend_access_key = \"BA\"\nbackend_secret_key = \"\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "credentials[0].backend_secret_key: must not be empty"
        );
    }

    #[test]
    fn client_backend_pair_needs_an_external_backend() {
        let mut c = Config::default();
        let mut entry = CredentialEntry::new("A", "a");
        entry.backend_access_key = Some("BA".into());
        entry.backend_secret_key = Some("ba".into());
        c.credentials = vec![entry];
        let e = c.validate().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("credentials[0].backend_access_key: only with backend.endpoint"),
            "{e}"
        );
    }

    #[test]
    fn anonymous_requests_are_refused_unless_forwarding_is_asked_for() {
        assert_eq!(Config::default().auth.anonymous, AnonymousRequests::Refuse);
        let c = Config::load(None, env(&[("SEALGATE_AUTH__ANONYMOUS", "forward")])).unwrap();
        assert_eq!(c.auth.anonymous, AnonymousRequests::Forward);
        let e = Config::load(None, env(&[("SEALGATE_AUTH__ANONYMOUS", "allow")])).unwrap_err();
        assert!(e.to_string().contains("auth.anonymous"), "{e}");
    }
}
