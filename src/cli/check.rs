//! `sealgate check-config`: the configuration parses (main has done that), and what it
//! names actually works: TLS files, the backend (reachable, credentials accepted), the
//! KMS (reachable, every configured key usable; for the local kind, the master key
//! file). One line per check with its cause, so a failed deployment says why before
//! the first client request does.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri};
use tokio::net::TcpStream;

use super::store::{self, Store};
use super::{CheckArgs, keygen, keys};
use crate::config::{Config, KmsKind};
use crate::kms::{Kms, KmsError};

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth knowing, but the proxy will run.
    Warn,
    Fail,
    /// Not run (`--offline`, or a check it depends on failed).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<5} {:<20} {}",
            self.status.label(),
            self.name,
            self.detail
        )
    }
}

/// `sealgate check-config`: prints every check and a summary; true when none failed.
pub async fn run(config: &Config, args: &CheckArgs) -> bool {
    if args.config_only {
        // Files and hosts named by the config may exist only where it is deployed.
        println!("{}", Check::new("config", Status::Ok, "valid"));
        println!("check-config: configuration only");
        return true;
    }
    let checks = run_checks(config, args.offline).await;
    for c in &checks {
        println!("{c}");
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let failed = count(Status::Fail);
    println!(
        "check-config: {} ok, {} warnings, {} failed{}",
        count(Status::Ok),
        count(Status::Warn),
        failed,
        if args.offline { " (offline)" } else { "" }
    );
    failed == 0
}

/// Every check, in the order an operator fixes things.
pub async fn run_checks(config: &Config, offline: bool) -> Vec<Check> {
    let mut out = vec![Check::new("config", Status::Ok, "valid")];
    out.push(check_tls(config));
    out.extend(check_backend(config, offline).await);
    out.extend(check_kms(config, offline).await);
    out
}

fn check_tls(config: &Config) -> Check {
    const NAME: &str = "tls files";
    let s = &config.server;
    let mut notes = Vec::new();
    if let (Some(cert), Some(key)) = (&s.tls_cert, &s.tls_key) {
        if let Err(e) = crate::server::tls::acceptor(cert, key) {
            return Check::new(NAME, Status::Fail, format!("invalid TLS files: {e}"));
        }
        notes.push(format!("{} + {}", cert.display(), key.display()));
    }
    if let Some(ca) = &config.backend.ca_bundle {
        if let Err(e) = crate::upstream::client::tls_client_config(Some(ca)) {
            return Check::new(NAME, Status::Fail, format!("invalid TLS files: {e}"));
        }
        notes.push(format!("backend CA {}", ca.display()));
    }
    if notes.is_empty() {
        Check::new(
            NAME,
            Status::Ok,
            "none configured (S3 listener speaks plain HTTP)",
        )
    } else {
        Check::new(NAME, Status::Ok, notes.join(", "))
    }
}

async fn check_backend(config: &Config, offline: bool) -> Vec<Check> {
    const REACH: &str = "backend reachable";
    const CREDS: &str = "backend credentials";
    let Some(endpoint) = &config.backend.endpoint else {
        let dir = &config.embedded.data_dir;
        let detail = if dir.is_dir() {
            format!("embedded backend, data in {}", dir.display())
        } else {
            format!("embedded backend, {} created at first start", dir.display())
        };
        return vec![
            Check::new(REACH, Status::Ok, detail),
            Check::new(
                CREDS,
                Status::Ok,
                "embedded backend (generated credentials)",
            ),
        ];
    };
    if offline {
        return vec![
            Check::new(REACH, Status::Skip, "--offline"),
            Check::new(CREDS, Status::Skip, "--offline"),
        ];
    }
    let timeout = Duration::from_secs(config.backend.connect_timeout_secs.max(1));
    if let Err(cause) = probe_endpoint(endpoint, config.backend.ca_bundle.as_deref(), timeout).await
    {
        return vec![
            Check::new(REACH, Status::Fail, format!("backend unreachable: {cause}")),
            Check::new(CREDS, Status::Skip, "backend unreachable"),
        ];
    }
    let mut out = vec![Check::new(REACH, Status::Ok, endpoint.clone())];
    out.push(match backend_credentials(config).await {
        Ok(c) => c,
        Err(e) => Check::new(CREDS, Status::Fail, e),
    });
    out
}

/// A signed ListBuckets, then a HeadBucket of every bucket with its own policy.
async fn backend_credentials(config: &Config) -> Result<Check, String> {
    const CREDS: &str = "backend credentials";
    let store = Store::open(config).await.map_err(|e| e.to_string())?;
    let result = async {
        let resp = store
            .send(Method::GET, None, None, &[])
            .await
            .map_err(|e| format!("backend unreachable: {e}"))?;
        let first = if resp.status().is_success() {
            Check::new(CREDS, Status::Ok, "ListBuckets accepted")
        } else {
            let r = store::refusal(resp).await;
            match r.code.as_deref() {
                Some(code @ ("InvalidAccessKeyId" | "SignatureDoesNotMatch")) => {
                    return Err(format!("wrong backend credentials: backend answered {code}"));
                }
                Some("AccessDenied") => Check::new(
                    CREDS,
                    Status::Warn,
                    "credentials accepted, but ListBuckets is denied (fine if they are bucket-scoped)",
                ),
                _ => return Err(format!("backend refused ListBuckets: {r}")),
            }
        };
        let mut missing = Vec::new();
        for bucket in config.encryption.buckets.keys() {
            let resp = store
                .send(Method::HEAD, Some(bucket), None, &[])
                .await
                .map_err(|e| format!("backend unreachable: {e}"))?;
            match resp.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND => missing.push(bucket.clone()),
                StatusCode::FORBIDDEN => {
                    return Err(format!(
                        "wrong backend credentials: HeadBucket {bucket} answered 403"
                    ));
                }
                s => return Err(format!("HeadBucket {bucket} answered HTTP {}", s.as_u16())),
            }
        }
        if missing.is_empty() {
            Ok(first)
        } else {
            Ok(Check::new(
                CREDS,
                Status::Warn,
                format!(
                    "credentials accepted; buckets with a policy do not exist yet: {}",
                    missing.join(", ")
                ),
            ))
        }
    }
    .await;
    store.close().await;
    result
}

/// Resolves, connects and (for https) completes a TLS handshake, with the cause an
/// operator acts on: a name that does not resolve, a refused or silent port, a
/// certificate the CA bundle does not trust.
pub async fn probe_endpoint(
    endpoint: &str,
    ca_bundle: Option<&Path>,
    timeout: Duration,
) -> Result<(), String> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|_| format!("{endpoint:?} is not a URL"))?;
    let host = uri.host().ok_or("no host in the URL")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<_> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((bare_host.as_str(), port)))
            .await
        {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err(format!("cannot resolve {host}: {e}")),
            Err(_) => return Err(format!("cannot resolve {host}: timed out")),
        };
    let Some(addr) = addrs.first().copied() else {
        return Err(format!("cannot resolve {host}: no address"));
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(format!("connection refused by {host}:{port}"));
        }
        Ok(Err(e)) => return Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => {
            return Err(format!(
                "no answer from {host}:{port} within {}s",
                timeout.as_secs()
            ));
        }
    };
    if https {
        let tls =
            crate::upstream::client::tls_client_config(ca_bundle).map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(bare_host.clone())
            .map_err(|e| format!("{host}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("TLS handshake with {host}:{port} failed: {e}")),
            Err(_) => return Err(format!("TLS handshake with {host}:{port} timed out")),
        }
    }
    Ok(())
}

async fn check_kms(config: &Config, offline: bool) -> Vec<Check> {
    match config.kms.kind {
        KmsKind::Local => vec![check_master_key(&keys::master_key_path(config))],
        KmsKind::Aws => check_aws_kms(config, offline).await,
    }
}

fn check_master_key(path: &Path) -> Check {
    const NAME: &str = "kms master key";
    if path.exists() {
        return match keygen::file_fingerprint(path) {
            Ok(fp) => Check::new(
                NAME,
                Status::Ok,
                format!("{} (fingerprint {fp})", path.display()),
            ),
            Err(e) => Check::new(NAME, Status::Fail, format!("unreadable master key: {e}")),
        };
    }
    // Missing: the proxy creates it at first start, if the nearest existing ancestor
    // is a directory it can write into.
    let mut ancestor = path.parent();
    while let Some(a) = ancestor {
        if a.as_os_str().is_empty() || a.exists() {
            break;
        }
        ancestor = a.parent();
    }
    match ancestor {
        Some(a) if !a.as_os_str().is_empty() && !a.is_dir() => Check::new(
            NAME,
            Status::Fail,
            format!(
                "unreadable master key: {}: {} is not a directory",
                path.display(),
                a.display()
            ),
        ),
        _ => Check::new(
            NAME,
            Status::Warn,
            format!(
                "{} does not exist; a new key is created at first start (it cannot read \
                 objects written under another key)",
                path.display()
            ),
        ),
    }
}

async fn check_aws_kms(config: &Config, offline: bool) -> Vec<Check> {
    const REACH: &str = "kms reachable";
    const KEYS: &str = "kms keys";
    if offline {
        return vec![
            Check::new(REACH, Status::Skip, "--offline"),
            Check::new(KEYS, Status::Skip, "--offline"),
        ];
    }
    let endpoint = config.kms.endpoint.clone().unwrap_or_else(|| {
        format!(
            "https://kms.{}.amazonaws.com",
            config.kms.region.as_deref().unwrap_or("us-east-1")
        )
    });
    let timeout = Duration::from_millis(config.kms.timeout_ms.max(1)).max(Duration::from_secs(1));
    if let Err(cause) = probe_endpoint(&endpoint, None, timeout).await {
        return vec![
            Check::new(REACH, Status::Fail, format!("KMS unreachable: {cause}")),
            Check::new(KEYS, Status::Skip, "KMS unreachable"),
        ];
    }
    let mut out = vec![Check::new(REACH, Status::Ok, endpoint)];
    let kms = match keys::open_kms(config) {
        Ok(k) => k,
        Err(e) => {
            out.push(Check::new(KEYS, Status::Fail, e.to_string()));
            return out;
        }
    };
    out.push(describe_keys(kms.as_ref(), &configured_key_ids(config)).await);
    out
}

/// `kms.key_id` and every bucket policy's `kms_key_id`, once each.
pub fn configured_key_ids(config: &Config) -> BTreeSet<String> {
    std::iter::once(&config.encryption.default)
        .chain(config.encryption.buckets.values())
        .map(|p| {
            p.kms_key_id
                .clone()
                .unwrap_or_else(|| config.kms.key_id.clone())
        })
        .collect()
}

async fn describe_keys(kms: &dyn Kms, ids: &BTreeSet<String>) -> Check {
    const KEYS: &str = "kms keys";
    let mut usable = Vec::new();
    for id in ids {
        match kms.describe_key(id).await {
            Ok(info) if info.is_enabled => usable.push(id.clone()),
            Ok(info) => {
                return Check::new(
                    KEYS,
                    Status::Fail,
                    format!("KMS key {id} is not usable: state {}", info.state),
                );
            }
            Err(KmsError::NotFound(m)) => {
                return Check::new(KEYS, Status::Fail, format!("KMS key not found: {id} ({m})"));
            }
            Err(KmsError::AccessDenied(m)) => {
                return Check::new(
                    KEYS,
                    Status::Fail,
                    format!("KMS refused the credentials for {id}: {m}"),
                );
            }
            Err(e @ (KmsError::Unavailable(_) | KmsError::Timeout)) => {
                return Check::new(KEYS, Status::Fail, format!("KMS unreachable: {e}"));
            }
            Err(e) => return Check::new(KEYS, Status::Fail, format!("KMS key {id}: {e}")),
        }
    }
    Check::new(KEYS, Status::Ok, format!("usable: {}", usable.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_under_a_file_fails_with_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let c = check_master_key(&file.join("master.key"));
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.starts_with("unreadable master key: "),
            "{}",
            c.detail
        );
        assert!(c.detail.contains("is not a directory"), "{}", c.detail);
    }

    #[test]
    fn master_key_that_is_a_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        let c = check_master_key(dir.path());
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("not a regular file"), "{}", c.detail);
    }

    #[test]
    fn missing_master_key_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let c = check_master_key(&dir.path().join("new/master.key"));
        assert_eq!(c.status, Status::Warn, "{}", c.detail);
    }

    #[test]
    fn key_ids_are_collected_once() {
        let mut config = Config::default();
        let p = crate::config::BucketPolicy {
            kms_key_id: Some("alias/other".into()),
            ..Default::default()
        };
        config.encryption.buckets.insert("b1".into(), p);
        config
            .encryption
            .buckets
            .insert("b2".into(), crate::config::BucketPolicy::default());
        let ids: Vec<_> = configured_key_ids(&config).into_iter().collect();
        assert_eq!(ids, ["alias/other", "sealgate-default"]);
    }

    #[tokio::test]
    async fn closed_port_is_refused_with_the_cause() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = probe_endpoint(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
    }
}
