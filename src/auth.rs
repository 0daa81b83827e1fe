//! TEMPORARY stand-in with the agreed API, replaced wholesale by the auth change.
//! It checks nothing and must never ship.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct CredentialStore(std::collections::HashMap<String, String>);
impl CredentialStore {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        CredentialStore(pairs.into_iter().collect())
    }
    pub fn contains(&self, access_key: &str) -> bool {
        self.0.contains_key(access_key)
    }
}

pub struct VerifyContext<'a> {
    pub credentials: &'a CredentialStore,
    pub now: SystemTime,
    pub max_skew: Duration,
    pub allow_sigv2: bool,
    pub vhost_bucket: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub enum AuthError {
    Missing,
}
impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Access Denied")
    }
}
impl std::error::Error for AuthError {}
impl AuthError {
    pub fn s3_code(&self) -> &'static str {
        "AccessDenied"
    }
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::FORBIDDEN
    }
    pub fn reason(&self) -> &'static str {
        "missing"
    }
}

#[derive(Debug, Clone, Copy)]
pub enum AuthMethod {
    SigV4Header,
}

#[derive(Debug, Clone)]
pub struct BodySpec {
    len: Option<u64>,
}
impl BodySpec {
    pub fn decoded_length(&self) -> Option<u64> {
        self.len
    }
}

pub struct Verified {
    pub access_key: String,
    pub method: AuthMethod,
    pub body: BodySpec,
}

pub fn verify(parts: &http::request::Parts, _ctx: &VerifyContext) -> Result<Verified, AuthError> {
    let len = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if parts.headers.contains_key("authorization")
        || parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"))
    {
        Ok(Verified {
            access_key: "stub".into(),
            method: AuthMethod::SigV4Header,
            body: BodySpec { len },
        })
    } else {
        Err(AuthError::Missing)
    }
}

pub fn strip_client_auth(parts: &mut http::request::Parts, _verified: &Verified) {
    parts.headers.remove("authorization");
    parts.headers.remove("x-amz-content-sha256");
    parts.headers.remove("x-amz-date");
}

pub mod body {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct BodyLimits {
        pub max_chunk_bytes: usize,
    }
    #[derive(Clone, Default)]
    pub struct BodyOutcome;
    impl BodyOutcome {
        pub fn error(&self) -> Option<AuthError> {
            None
        }
        pub fn checksum(&self) -> Option<(String, String)> {
            None
        }
    }
    pin_project_lite::pin_project! {
        pub struct VerifiedBody<B> { #[pin] inner: B }
    }
    impl<B> VerifiedBody<B> {
        pub fn new(inner: B, _spec: BodySpec, _limits: BodyLimits) -> (Self, BodyOutcome) {
            (VerifiedBody { inner }, BodyOutcome)
        }
    }
    impl<B> http_body::Body for VerifiedBody<B>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
            self.project()
                .inner
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(Into::into)))
        }
        fn size_hint(&self) -> http_body::SizeHint {
            self.inner.size_hint()
        }
    }
}
