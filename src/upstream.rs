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
    Send(#[source] hyper_util::client::legacy::Error),
    #[error("backend did not answer within {0:?}")]
    Timeout(Duration),
}

/// The configured backend: where it is, how to address it, and `[backend]`'s own
/// signing identity (the default; each request names the identity it is sent as).
#[derive(Debug, Clone)]
pub struct Backend {
    scheme: Scheme,
    authority: Authority,
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
        let client = client::build_client(
            cfg.ca_bundle.as_deref(),
            Duration::from_secs(cfg.connect_timeout_secs),
            cfg.pool_max_idle_per_host,
        )
        .map_err(|e| e.to_string())?;
        Ok(Backend {
            scheme,
            authority,
            style: cfg.addressing_style,
            signer: Arc::new(BackendSigner::new(access_key, secret_key, &cfg.region)),
            client,
            response_timeout: Duration::from_secs(cfg.response_timeout_secs),
        })
    }

    /// The backend URI and Host for `bucket`/`key` (key already decoded) and a canonical
    /// query string.
    pub fn target(
        &self,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &str,
    ) -> Result<(Uri, HeaderValue), UpstreamError> {
        let key_path = key.map(sign::encode_key).unwrap_or_default();
        let (host, path) = match (self.style, bucket) {
            (AddressingStyle::Virtual, Some(b)) => {
                (format!("{b}.{}", self.authority), format!("/{key_path}"))
            }
            (_, Some(b)) => {
                let b = sign::encode_key(b);
                if key.is_some() {
                    (self.authority.to_string(), format!("/{b}/{key_path}"))
                } else {
                    (self.authority.to_string(), format!("/{b}"))
                }
            }
            (_, None) => (self.authority.to_string(), "/".to_string()),
        };
        let pq = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(host.as_str())
            .path_and_query(pq)
            .build()
            .map_err(|e| UpstreamError::Build(e.to_string()))?;
        let host = HeaderValue::from_str(&host).map_err(|e| UpstreamError::Build(e.to_string()))?;
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
