//! Client authentication: proves that a request was signed by a known access key,
//! and describes what its body must satisfy.
//!
//! This module owns every way an S3 client signs — SigV4 in the Authorization header
//! or a presigned URL, the aws-chunked streaming payloads (chunk and trailer
//! signatures), and legacy SigV2 — plus the body checks a signature implies
//! (`x-amz-content-sha256`, Content-MD5, flexible checksums, declared lengths).
//! Everything is pure except [`body::VerifiedBody`], which wraps the request body.
//! It leaves to others the S3 error XML (`s3::error`), operation routing (`s3::op`)
//! and re-signing for the backend (`upstream::sign`).
//!
//! Layout: `credentials` (secrets), `canonical` (canonical request), `signing`
//! (HMAC chains and strings to sign), `sigv4`, `sigv2` (header parsing and policy),
//! `payload` ([`BodySpec`]), `checksum`, `chunked` (aws-chunked decoder), `body`
//! (streaming enforcement), `error` ([`AuthError`] with S3 codes).
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>

use std::time::{Duration, SystemTime};

use crate::s3::headers;
use http::request::Parts;

pub mod body;
pub mod canonical;
pub mod checksum;
pub mod chunked;
pub mod credentials;
pub mod date;
pub mod error;
pub mod payload;
pub mod post_form;
pub mod signing;
pub mod sigv2;
pub mod sigv4;

pub use checksum::{ChecksumAlgorithm, Checksummer};
pub use credentials::CredentialStore;
pub use error::AuthError;
pub use payload::{BodySpec, Framing};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a request is verified against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    pub credentials: &'a CredentialStore,
    pub now: SystemTime,
    /// Largest accepted distance between the request date and `now` (S3: 15 min).
    pub max_skew: Duration,
    pub allow_sigv2: bool,
    /// Bucket taken from the Host header for virtual-hosted-style requests
    /// (SigV2's canonical resource needs it); None for path style.
    pub vhost_bucket: Option<&'a str>,
}

/// Default `max_skew`, as S3.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// How the client signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SigV4Header,
    SigV4Presigned,
    SigV2Header,
    SigV2Presigned,
    /// Not at all: no Authorization and no presigned query (accepted only when
    /// anonymous requests are forwarded).
    Anonymous,
}

/// The identity logs and audit records name for requests without a signature.
pub const ANONYMOUS: &str = "anonymous";

/// Proof that a request's signature was checked, or that it carries none at all;
/// only [`verify`] and [`verify_or_anonymous`] make one.
#[derive(Debug)]
pub struct Verified {
    /// The client's access key; [`ANONYMOUS`] for [`AuthMethod::Anonymous`].
    pub access_key: String,
    pub method: AuthMethod,
    /// How the body must be decoded and checked.
    pub body: BodySpec,
}

/// Which scheme the request claims, before any of it is checked.
enum Claim<'a> {
    V4Header(&'a str),
    V2Header(&'a str),
    V4Query,
    V2Query,
}

fn claim(parts: &Parts) -> Result<Claim<'_>, AuthError> {
    let header = match parts.headers.get(http::header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| AuthError::UnsupportedAuthorization)?,
        ),
        None => None,
    };
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let v4_query = pairs.iter().any(|p| {
        p.name_is("X-Amz-Algorithm")
            || p.name_is("X-Amz-Signature")
            || p.name_is("X-Amz-Credential")
    });
    let v2_query = pairs
        .iter()
        .any(|p| p.name_is("AWSAccessKeyId") || p.name_is("Signature"));
    let count = usize::from(header.is_some()) + usize::from(v4_query) + usize::from(v2_query);
    if count > 1 {
        return Err(AuthError::MultipleAuth);
    }
    Ok(match header {
        Some(h) if h.starts_with("AWS4-HMAC-SHA256") => Claim::V4Header(h),
        Some(h) if h.starts_with("AWS ") => Claim::V2Header(h),
        Some(_) => return Err(AuthError::UnsupportedAuthorization),
        None if v4_query => Claim::V4Query,
        None if v2_query => Claim::V2Query,
        None => return Err(AuthError::Missing),
    })
}

/// Verifies the request's signature (not its body: see [`body::VerifiedBody`]).
pub fn verify(parts: &Parts, ctx: &VerifyContext) -> Result<Verified, AuthError> {
    verify_claimed(parts, ctx, claim(parts)?)
}

fn verify_claimed(
    parts: &Parts,
    ctx: &VerifyContext,
    claimed: Claim<'_>,
) -> Result<Verified, AuthError> {
    match claimed {
        Claim::V4Header(v) => sigv4::verify_header(parts, ctx, v),
        Claim::V4Query => sigv4::verify_presigned(parts, ctx),
        Claim::V2Header(_) | Claim::V2Query if !ctx.allow_sigv2 => Err(AuthError::SigV2Disabled),
        Claim::V2Header(v) => sigv2::verify_header(parts, ctx, v),
        Claim::V2Query => sigv2::verify_presigned(parts, ctx),
    }
}

/// As [`verify`], except that a request carrying no signature at all is accepted as
/// anonymous when `forward_anonymous` is set. A request that claims a signature is
/// always verified: a bad signature is refused, never downgraded to anonymous.
pub fn verify_or_anonymous(
    parts: &Parts,
    ctx: &VerifyContext,
    forward_anonymous: bool,
) -> Result<Verified, AuthError> {
    match claim(parts) {
        Err(AuthError::Missing) if forward_anonymous => anonymous(parts),
        claimed => verify_claimed(parts, ctx, claimed?),
    }
}

/// The proof for an unsigned request. Its body is checked as a signed request's is
/// where the client committed to something (`x-amz-content-sha256` as a hash,
/// Content-MD5, flexible checksums); aws-chunked chunk signatures cannot be checked
/// without a seed signature, so such a body is refused.
fn anonymous(parts: &Parts) -> Result<Verified, AuthError> {
    let mode = match parts
        .headers
        .get(headers::X_AMZ_CONTENT_SHA256)
        .map(|v| v.to_str().map_err(|_| AuthError::InvalidContentSha256))
        .transpose()?
    {
        Some(v) => payload::PayloadMode::parse(v)?,
        None => payload::PayloadMode::Unsigned,
    };
    if mode.is_chunk_signed() {
        return Err(AuthError::Missing);
    }
    Ok(Verified {
        access_key: ANONYMOUS.to_string(),
        method: AuthMethod::Anonymous,
        body: BodySpec::from_headers(&parts.headers, mode, None)?,
    })
}

/// Headers that belong to the client's signature and never go upstream.
const CLIENT_AUTH_HEADERS: [http::HeaderName; 7] = [
    http::header::AUTHORIZATION,
    headers::X_AMZ_CONTENT_SHA256,
    headers::X_AMZ_DATE,
    headers::X_AMZ_SECURITY_TOKEN,
    headers::X_AMZ_DECODED_CONTENT_LENGTH,
    headers::X_AMZ_TRAILER,
    // Only present with aws-chunked; its meaning ends with the decoding here.
    headers::X_AMZ_TRAILER_SIGNATURE,
];

/// Removes everything that belongs to the client's signature so the request can be
/// re-signed for the backend: Authorization; presigned query parameters (X-Amz-Algorithm,
/// -Credential, -Date, -Expires, -SignedHeaders, -Signature, -Security-Token; SigV2
/// AWSAccessKeyId, Signature, Expires) — rebuilding the query string from the *raw*
/// remaining pairs, byte-exact otherwise; x-amz-content-sha256, x-amz-date, x-amz-security-token,
/// x-amz-decoded-content-length, x-amz-trailer; the `aws-chunked` token of
/// Content-Encoding (drop the header when nothing is left); and for aws-chunked bodies
/// sets Content-Length to the decoded length.
pub fn strip_client_auth(parts: &mut Parts, verified: &Verified) {
    for name in &CLIENT_AUTH_HEADERS {
        parts.headers.remove(name);
    }
    strip_aws_chunked_encoding(&mut parts.headers);
    if verified.body.is_aws_chunked()
        && let Some(len) = verified.body.decoded_length()
    {
        parts.headers.remove(http::header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    }
    strip_auth_query(parts, verified.method);
}

fn strip_aws_chunked_encoding(headers: &mut http::HeaderMap) {
    let values: Vec<http::HeaderValue> = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .cloned()
        .collect();
    if values.is_empty() {
        return;
    }
    let mut kept: Vec<String> = Vec::new();
    let mut changed = false;
    for v in &values {
        let Ok(s) = v.to_str() else {
            // Not text: not ours to rewrite, keep it as it is.
            kept.push(String::from_utf8_lossy(v.as_bytes()).into_owned());
            continue;
        };
        for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case("aws-chunked") {
                changed = true;
            } else {
                kept.push(token.to_string());
            }
        }
    }
    if !changed {
        return;
    }
    headers.remove(http::header::CONTENT_ENCODING);
    if !kept.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(&kept.join(","))
    {
        headers.insert(http::header::CONTENT_ENCODING, v);
    }
}

fn strip_auth_query(parts: &mut Parts, method: AuthMethod) {
    let Some(query) = parts.uri.query() else {
        return;
    };
    let names: &[&str] = match method {
        AuthMethod::SigV4Presigned | AuthMethod::SigV4Header => &sigv4::PRESIGNED_PARAMS,
        AuthMethod::SigV2Presigned | AuthMethod::SigV2Header => &sigv2::PRESIGNED_PARAMS,
        // Nothing signed, so nothing to strip: every parameter is the request's own.
        AuthMethod::Anonymous => return,
    };
    let pairs = canonical::parse_query(query);
    if !pairs.iter().any(|p| names.iter().any(|n| p.name_is(n))) {
        return;
    }
    let kept: Vec<&str> = pairs
        .iter()
        .filter(|p| !names.iter().any(|n| p.name_is(n)))
        .map(|p| p.raw)
        .collect();
    let path_and_query = if kept.is_empty() {
        parts.uri.path().to_string()
    } else {
        format!("{}?{}", parts.uri.path(), kept.join("&"))
    };
    let mut uri_parts = parts.uri.clone().into_parts();
    match http::uri::PathAndQuery::try_from(path_and_query) {
        Ok(pq) => uri_parts.path_and_query = Some(pq),
        Err(_) => return,
    }
    if let Ok(uri) = http::Uri::from_parts(uri_parts) {
        parts.uri = uri;
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
