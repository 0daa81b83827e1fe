//! The AWS KMS backend: `GenerateDataKey`, `Decrypt` and `DescribeKey` over the KMS
//! JSON API, SigV4-signed (service `kms`), through a pooled hyper client (HTTP or
//! HTTPS with the system roots). Works with AWS KMS and compatible servers (moto).
//!
//! It owns transport concerns: per-attempt timeout, bounded retries with exponential
//! backoff and full jitter on throttling, 5xx and timeouts (AWS's recommended
//! schedule, <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>),
//! and mapping KMS error types to [`KmsError`]. Credentials come in a struct: this
//! module never reads the environment. The wire format lives in `wire`.

mod wire;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use zeroize::Zeroizing;

use super::{DATA_KEY_LEN, EncryptionContext, GeneratedKey, KeyInfo, Kms, KmsError, KmsFuture};

/// Largest KMS answer read; real ones are well under 8 KiB.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Static credentials for signing KMS calls.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The caller's view of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`, used where the config sets no credentials.
#[derive(Clone, Default)]
pub struct AwsEnv {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Zeroizing<String>>,
    pub session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsEnv")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Everything [`AwsKms`] needs.
#[derive(Debug, Clone)]
pub struct AwsKmsConfig {
    /// `http(s)://host[:port]`; `None` means `https://kms.REGION.amazonaws.com`.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: AwsCredentials,
    /// Limit for one attempt, connection and answer included.
    pub timeout: Duration,
    /// Extra attempts after the first, on retryable errors only.
    pub max_retries: u32,
    /// First backoff ceiling; doubles per retry up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Extra trusted roots (PEM) beside the system's, for a KMS behind a private CA.
    pub ca_bundle: Option<PathBuf>,
}

impl AwsKmsConfig {
    /// Defaults for timing: 5 s per attempt, 4 retries, backoff 50 ms doubling to 2 s.
    pub fn new(region: impl Into<String>, credentials: AwsCredentials) -> Self {
        AwsKmsConfig {
            endpoint: None,
            region: region.into(),
            credentials,
            timeout: Duration::from_secs(5),
            max_retries: 4,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            ca_bundle: None,
        }
    }

    /// From the `[kms]` config section; config values win over `env`, and a session
    /// token is taken from `env` only along with `env`'s own key pair.
    pub fn from_kms_config(
        config: &crate::config::KmsConfig,
        env: &AwsEnv,
    ) -> Result<Self, AwsKmsConfigError> {
        let credentials = match (&config.access_key, &config.secret_key) {
            (Some(id), Some(secret)) => AwsCredentials {
                access_key_id: id.clone(),
                secret_access_key: Zeroizing::new(secret.clone()),
                session_token: None,
            },
            (None, None) => match (&env.access_key_id, &env.secret_access_key) {
                (Some(id), Some(secret)) => AwsCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.clone(),
                    session_token: env.session_token.clone(),
                },
                _ => {
                    return Err(AwsKmsConfigError::Invalid {
                        key: "kms.access_key",
                        problem: "unset, and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not given"
                            .into(),
                    });
                }
            },
            _ => {
                return Err(AwsKmsConfigError::Invalid {
                    key: "kms.secret_key",
                    problem: "kms.access_key and kms.secret_key must be set together".into(),
                });
            }
        };
        let region = config
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string());
        let mut out = AwsKmsConfig::new(region, credentials);
        out.endpoint = config.endpoint.clone();
        out.timeout = Duration::from_millis(config.timeout_ms.max(1));
        out.max_retries = config.max_retries;
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AwsKmsConfigError {
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The AWS KMS client.
pub struct AwsKms {
    client: HttpClient,
    endpoint: Uri,
    identity: Identity,
    region: String,
    timeout: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    attempts: AtomicU64,
    /// `sealgate_kms_retries_total`, once the bucket-key cache has attached it.
    retries: std::sync::OnceLock<prometheus::IntCounterVec>,
}

impl fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKms")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl AwsKms {
    pub fn new(config: AwsKmsConfig) -> Result<Self, AwsKmsConfigError> {
        let endpoint_text = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com", config.region));
        let endpoint: Uri = endpoint_text
            .parse()
            .ok()
            .filter(|u: &Uri| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
            .ok_or_else(|| AwsKmsConfigError::Invalid {
                key: "kms.endpoint",
                problem: format!("{endpoint_text:?} is not an http(s) URL"),
            })?;
        let c = config.credentials;
        let creds = Credentials::new(
            c.access_key_id,
            c.secret_access_key.as_str(),
            c.session_token.as_ref().map(|t| t.to_string()),
            None,
            "sealgate-kms-config",
        );
        Ok(AwsKms {
            client: build_client(config.ca_bundle.as_deref())?,
            endpoint,
            identity: creds.into(),
            region: config.region,
            timeout: config.timeout,
            max_retries: config.max_retries,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max,
            attempts: AtomicU64::new(0),
            retries: std::sync::OnceLock::new(),
        })
    }

    /// HTTP attempts made so far, retries included.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// One KMS operation by name (`CreateKey`, `DisableKey`, …) with a JSON body, with
    /// the same signing, timeout and retries as the built-in operations. For admin
    /// tooling and tests; the answer is returned as JSON.
    pub async fn call_json(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, KmsError> {
        let body = serde_json::to_vec(body).map_err(|e| KmsError::Protocol(e.to_string()))?;
        let answer = self
            .call(&format!("TrentService.{operation}"), body)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| KmsError::Protocol(format!("response: {e}")))
    }

    /// Sends with retries; returns the 2xx body in a buffer zeroized on drop.
    async fn call(&self, target: &str, body: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let body = Bytes::from(body);
        let mut retries = 0u32;
        loop {
            let outcome =
                match tokio::time::timeout(self.timeout, self.attempt(target, &body)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(KmsError::Timeout),
                };
            match outcome {
                Err(e) if e.is_retryable() && retries < self.max_retries => {
                    let delay = full_jitter(self.backoff_base, self.backoff_max, retries);
                    tracing::debug!(target_op = target, error = %e, retry = retries + 1, ?delay, "retrying KMS call");
                    if let Some(counter) = self.retries.get() {
                        counter
                            .with_label_values(&[op_label(target), e.metric_result()])
                            .inc();
                    }
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, target: &str, body: &Bytes) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(Full::new(body.clone()))
            .map_err(|e| KmsError::Protocol(format!("request: {e}")))?;
        self.sign(&mut req, body, SystemTime::now())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| KmsError::Unavailable(crate::upstream::error_chain(&e)))?;
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = read_limited(resp.into_body()).await?;
        if status.is_success() {
            Ok(answer)
        } else {
            Err(wire::map_error(status, error_type.as_deref(), &answer))
        }
    }

    fn sign(
        &self,
        req: &mut Request<Full<Bytes>>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), KmsError> {
        crate::upstream::sign::sign_headers(
            req,
            &self.identity,
            &self.region,
            "kms",
            SigningSettings::default(),
            SignableBody::Bytes(body),
            now,
        )
        .map_err(|e| KmsError::Protocol(format!("signing: {e}")))
    }
}

/// Reads the answer into a zeroized buffer, refusing anything over the limit.
async fn read_limited(body: hyper::body::Incoming) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut body = body;
    let mut out = Zeroizing::new(Vec::new());
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| KmsError::Unavailable(format!("reading answer: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > MAX_RESPONSE_BYTES {
                return Err(KmsError::Protocol("answer too large".into()));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

/// The `op` label of an `x-amz-target`, as `sealgate_kms_requests_total` names it.
fn op_label(target: &str) -> &'static str {
    match target.strip_prefix("TrentService.") {
        Some("GenerateDataKey") => "generate_data_key",
        Some("Decrypt") => "decrypt",
        Some("DescribeKey") => "describe_key",
        _ => "other",
    }
}

/// Full jitter: uniform in `[0, min(max, base * 2^retry)]`.
fn full_jitter(base: Duration, max: Duration, retry: u32) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(0..=ceiling_us))
}

fn build_client(ca_bundle: Option<&Path>) -> Result<HttpClient, AwsKmsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // One broken system certificate must not disable KMS; it is just not trusted.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        add_pem_roots(&mut roots, path).map_err(|problem| AwsKmsConfigError::Invalid {
            key: "kms.ca_bundle",
            problem: format!("{}: {problem}", path.display()),
        })?;
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

fn add_pem_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        added += 1;
    }
    if added == 0 {
        return Err("no PEM certificate found".into());
    }
    Ok(())
}

impl Kms for AwsKms {
    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, GeneratedKey> {
        Box::pin(async move {
            let body = wire::generate_data_key_body(key_id, context)?;
            let answer = self.call(wire::TARGET_GENERATE_DATA_KEY, body).await?;
            wire::parse_generate_data_key(&answer)
        })
    }

    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, Zeroizing<[u8; DATA_KEY_LEN]>> {
        Box::pin(async move {
            let body = wire::decrypt_body(key_id, blob, context)?;
            let answer = self.call(wire::TARGET_DECRYPT, body).await?;
            wire::parse_decrypt(&answer)
        })
    }

    fn describe_key<'a>(&'a self, key_id: &'a str) -> KmsFuture<'a, KeyInfo> {
        Box::pin(async move {
            let body = wire::describe_key_body(key_id)?;
            let answer = self.call(wire::TARGET_DESCRIBE_KEY, body).await?;
            wire::parse_describe_key(&answer)
        })
    }

    fn attach_retry_counter(&self, retries: prometheus::IntCounterVec) {
        let _ = self.retries.set(retries);
    }

    fn name(&self) -> &'static str {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_under_the_doubling_ceiling() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        for retry in 0..40 {
            let d = full_jitter(base, max, retry);
            let ceiling = (base * 2u32.saturating_pow(retry.min(20))).min(max);
            assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: Zeroizing::new("very-secret".into()),
            session_token: Some(Zeroizing::new("tok-secret".into())),
        };
        let text = format!("{c:?}");
        assert!(
            text.contains("AKID") && !text.contains("very-secret") && !text.contains("tok-secret")
        );
    }
}
