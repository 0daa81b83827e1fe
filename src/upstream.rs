//! Everything that talks to the backend: re-signing ([`sign`]), who a request is sent
//! as ([`identity`]) and the pooled client ([`client`]), plus [`Backend`], which turns a
//! routed client request into a backend request for either addressing style, signed
//! as the request's identity.

pub mod client;
pub mod expect;
pub mod identity;
pub mod sign;

pub use identity::{BackendIdentities, BackendIdentity};

/// An error and its sources on one line: hyper's top-level message alone ("client
/// error (Connect)") does not tell an operator what failed.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;

use crate::config::{AddressingStyle, BackendConfig};
use client::{HttpClient, UpstreamBody};
use sign::BackendSigner;

/// Why a backend call failed before a response head arrived.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("backend request could not be built: {0}")]
    Build(String),
    #[error("backend request failed: {0}")]
    Send(#[source] client::SendError),
    #[error("backend did not answer within {0:?}")]
    Timeout(Duration),
}

/// The configured backend: where it is, how to address it, and `[backend]`'s own
/// signing identity (the default; each request names the identity it is sent as).
#[derive(Debug, Clone)]
pub struct Backend {
    scheme: Scheme,
    authority: Authority,
    /// `authority` as a Host value, for path-style requests.
    host: HeaderValue,
    style: AddressingStyle,
    signer: Arc<BackendSigner>,
    client: HttpClient,
    response_timeout: Duration,
}

impl Backend {
    pub fn new(
        cfg: &BackendConfig,
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Backend, String> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| format!("backend.endpoint: {endpoint:?} is not a URL"))?;
        let scheme = uri.scheme().cloned().ok_or("backend.endpoint: no scheme")?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or("backend.endpoint: no host")?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("backend.endpoint: {endpoint:?} has no valid host"))?;
        let client = client::build_client(
            cfg.ca_bundle.as_deref(),
            Duration::from_secs(cfg.connect_timeout_secs),
            Duration::from_secs(cfg.response_timeout_secs),
            cfg.pool_max_idle_per_host,
        )
        .map_err(|e| e.to_string())?;
        Ok(Backend {
            scheme,
            authority,
            host,
            style: cfg.addressing_style,
            signer: Arc::new(BackendSigner::new(access_key, secret_key, &cfg.region)),
            client,
            response_timeout: Duration::from_secs(cfg.response_timeout_secs),
        })
    }

    /// The backend URI and Host for `bucket`/`key` (key already decoded) and a canonical
    /// query string. Path-style requests reuse the endpoint's parsed authority and Host
    /// value; the path is encoded straight into one buffer.
    pub fn target(
        &self,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &str,
    ) -> Result<(Uri, HeaderValue), UpstreamError> {
        let build = |e: &dyn std::fmt::Display| UpstreamError::Build(e.to_string());
        let mut pq = String::with_capacity(
            2 + bucket.map_or(0, str::len) + key.map_or(0, |k| k.len() + 1) + query.len() + 1,
        );
        pq.push('/');
        let (authority, host) = match (self.style, bucket) {
            (AddressingStyle::Virtual, Some(b)) => {
                if let Some(k) = key {
                    pq.extend(sign::encode_key_parts(k));
                }
                let host = format!("{b}.{}", self.authority);
                let authority = Authority::try_from(host.as_str()).map_err(|e| build(&e))?;
                (
                    authority,
                    HeaderValue::from_str(&host).map_err(|e| build(&e))?,
                )
            }
            (_, Some(b)) => {
                pq.extend(sign::encode_key_parts(b));
                if let Some(k) = key {
                    pq.push('/');
                    pq.extend(sign::encode_key_parts(k));
                }
                (self.authority.clone(), self.host.clone())
            }
            (_, None) => (self.authority.clone(), self.host.clone()),
        };
        if !query.is_empty() {
            pq.push('?');
            pq.push_str(query);
        }
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(authority)
            .path_and_query(pq)
            .build()
            .map_err(|e| build(&e))?;
        Ok((uri, host))
    }

    /// Signs as `identity` (or leaves the request unsigned for the anonymous one) and
    /// sends; the caller has set URI, Host and the forwarded headers.
    pub async fn send(
        &self,
        identity: &BackendIdentity,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match identity {
            BackendIdentity::Signed(signer) => signer
                .sign(&mut req, SystemTime::now())
                .map_err(|e| UpstreamError::Build(e.to_string()))?,
            BackendIdentity::Anonymous => sign::strip_signature(req.headers_mut()),
        }
        if expect::expects_continue(req.headers()) {
            expect::hold_body(&mut req);
        }
        match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(UpstreamError::Send(e)),
            Err(_) => Err(UpstreamError::Timeout(self.response_timeout)),
        }
    }

    /// `[backend]`'s identity: for the proxy's own traffic (readiness, the CLI), and
    /// the default of [`BackendIdentities`].
    pub fn own_identity(&self) -> BackendIdentity {
        BackendIdentity::Signed(self.signer.clone())
    }

    /// The table of identities for client requests, with `[backend]`'s as default.
    pub fn identities(&self, entries: &[crate::config::CredentialEntry]) -> BackendIdentities {
        BackendIdentities::new(self.signer.clone(), entries)
    }

    /// The endpoint, for readiness checks and banners.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(style: AddressingStyle) -> Backend {
        let cfg = BackendConfig {
            addressing_style: style,
            ..BackendConfig::default()
        };
        Backend::new(&cfg, "http://10.0.0.7:7480", "ak", "sk").unwrap_or_else(|e| panic!("{e}"))
    }

    fn target(b: &Backend, bucket: Option<&str>, key: Option<&str>, q: &str) -> (String, String) {
        let (uri, host) = b.target(bucket, key, q).unwrap_or_else(|e| panic!("{e}"));
        (
            uri.to_string(),
            host.to_str().unwrap_or_default().to_string(),
        )
    }

    #[tokio::test]
    async fn path_style_targets() {
        let b = backend(AddressingStyle::Path);
        let host = "10.0.0.7:7480".to_string();
        assert_eq!(
            target(&b, Some("bkt"), Some("a b/ü+c~d"), "uploads="),
            (
                "http://10.0.0.7:7480/bkt/a%20b/%C3%BC%2Bc~d?uploads=".into(),
                host.clone()
            )
        );
        assert_eq!(
            target(&b, Some("bkt"), Some(""), ""),
            ("http://10.0.0.7:7480/bkt/".into(), host.clone())
        );
        assert_eq!(
            target(&b, Some("bkt"), None, "list-type=2"),
            ("http://10.0.0.7:7480/bkt?list-type=2".into(), host.clone())
        );
        assert_eq!(
            target(&b, None, None, ""),
            ("http://10.0.0.7:7480/".into(), host)
        );
    }

    #[tokio::test]
    async fn virtual_style_targets() {
        let b = backend(AddressingStyle::Virtual);
        assert_eq!(
            target(&b, Some("bkt"), Some("dir/k%y"), ""),
            (
                "http://bkt.10.0.0.7:7480/dir/k%25y".into(),
                "bkt.10.0.0.7:7480".into()
            )
        );
        assert_eq!(
            target(&b, Some("bkt"), None, "location="),
            (
                "http://bkt.10.0.0.7:7480/?location=".into(),
                "bkt.10.0.0.7:7480".into()
            )
        );
        assert_eq!(
            target(&b, None, None, ""),
            ("http://10.0.0.7:7480/".into(), "10.0.0.7:7480".into())
        );
    }
}
