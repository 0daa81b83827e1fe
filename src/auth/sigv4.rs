//! Signature Version 4: the Authorization header and presigned URLs.
//!
//! Parses what the client sent, rebuilds the canonical request S3's way
//! (`canonical`), recomputes the signature (`signing`) and compares in constant time.
//! The policy checks (service `s3`, scope date = request date, clock skew, presigned
//! expiry bounds) follow S3's answers and error codes. Any region is accepted: the
//! client's scope region only feeds the key derivation, as with a single-region S3.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>

use std::time::{Duration, SystemTime};

use http::HeaderName;
use http::request::Parts;

use super::canonical::{self, CanonicalRequest, QueryPair};
use super::date;
use super::error::AuthError;
use super::payload::{BodySpec, PayloadMode};
use super::signing::{self, ALGORITHM, ChunkSigner, SigningKey};
use super::{AuthMethod, Verified, VerifyContext};
use crate::s3::headers::X_AMZ_CONTENT_SHA256;

/// Longest presigned URL lifetime S3 allows: 7 days.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// The presigned-URL query parameters that belong to the signature.
pub const PRESIGNED_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// `AK/YYYYMMDD/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminal: &'a str,
}

impl<'a> Credential<'a> {
    /// Splits from the right, so access keys containing `/` still parse.
    pub fn parse(s: &'a str) -> Option<Credential<'a>> {
        let mut it = s.rsplitn(5, '/');
        let terminal = it.next()?;
        let service = it.next()?;
        let region = it.next()?;
        let date = it.next()?;
        let access_key = it.next()?;
        if access_key.is_empty() || date.is_empty() || region.is_empty() || service.is_empty() {
            return None;
        }
        Some(Credential {
            access_key,
            date,
            region,
            service,
            terminal,
        })
    }

    /// `YYYYMMDD/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        let mut out = String::with_capacity(
            self.date.len() + self.region.len() + self.service.len() + self.terminal.len() + 3,
        );
        for (i, part) in [self.date, self.region, self.service, self.terminal]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push('/');
            }
            out.push_str(part);
        }
        out
    }
}

/// A parsed `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    pub credential: Credential<'a>,
    pub signed_headers: &'a str,
    pub signature: [u8; 32],
}

/// Parses a SigV4 Authorization header value, tolerating the spacing variants
/// clients send (`,` with or without spaces, runs of spaces after the algorithm).
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, AuthError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or(AuthError::UnsupportedAuthorization)?;
    if !rest.starts_with([' ', '\t']) {
        return Err(AuthError::UnsupportedAuthorization);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let (key, val) = part.split_once('=').ok_or(AuthError::HeaderMalformed(
            "the authorization header requires Credential, SignedHeaders and Signature.",
        ))?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(AuthError::HeaderMalformed(
                    "unknown component in the authorization header.",
                ));
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(AuthError::HeaderMalformed(
                "repeated component in the authorization header.",
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthError::HeaderMalformed(
            "the authorization header requires Credential, SignedHeaders and Signature.",
        ));
    };
    let credential = Credential::parse(credential).ok_or(AuthError::HeaderMalformed(
        "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
    ))?;
    let signature = signing::parse_signature_hex(signature).ok_or(AuthError::HeaderMalformed(
        "the Signature must be 64 hexadecimal digits.",
    ))?;
    Ok(AuthorizationHeader {
        credential,
        signed_headers,
        signature,
    })
}

/// The presigned parameters of a query string, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedParams {
    pub algorithm: String,
    pub credential: String,
    pub date: String,
    pub expires: String,
    pub signed_headers: String,
    pub signature: String,
}

/// Extracts the presigned parameters; each required one exactly once.
pub fn parse_presigned(pairs: &[QueryPair<'_>]) -> Result<PresignedParams, AuthError> {
    const MISSING: AuthError = AuthError::QueryMalformed(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    );
    let get = |name: &str| -> Result<String, AuthError> {
        let mut found = pairs.iter().filter(|p| p.name_is(name));
        let first = found.next().ok_or(MISSING)?;
        if found.next().is_some() {
            return Err(AuthError::QueryMalformed(
                "A presigned-URL parameter was given more than once.",
            ));
        }
        first
            .value_str()
            .map(str::to_string)
            .ok_or(AuthError::QueryMalformed(
                "A presigned-URL parameter is not valid UTF-8.",
            ))
    };
    Ok(PresignedParams {
        algorithm: get("X-Amz-Algorithm")?,
        credential: get("X-Amz-Credential")?,
        date: get("X-Amz-Date")?,
        expires: get("X-Amz-Expires")?,
        signed_headers: get("X-Amz-SignedHeaders")?,
        signature: get("X-Amz-Signature")?,
    })
}

/// Every intermediate of a SigV4 check, for tests and diagnostics. Holds no secret.
#[derive(Debug, Clone)]
pub struct SignatureDetails {
    pub canonical_request: Vec<u8>,
    pub string_to_sign: String,
    pub expected: [u8; 32],
    pub provided: [u8; 32],
}

impl SignatureDetails {
    pub fn matches(&self) -> bool {
        signing::signatures_equal(&self.expected, &self.provided)
    }
}

fn split_signed_headers(list: &str) -> Vec<&str> {
    list.split(';').filter(|h| !h.is_empty()).collect()
}

fn header_str(parts: &Parts, name: HeaderName) -> Option<&str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Computes the header-auth signature intermediates with `secret`. The payload hash is
/// `payload_hash` if given, else the `x-amz-content-sha256` header (else the empty
/// body's hash, generic SigV4's default). No policy check: `verify` applies those.
pub fn header_details(
    parts: &Parts,
    secret: &str,
    payload_hash: Option<&str>,
) -> Result<SignatureDetails, AuthError> {
    let value = header_str(parts, http::header::AUTHORIZATION).ok_or(AuthError::Missing)?;
    let auth = parse_authorization(value)?;
    let timestamp = request_timestamp(parts)?.1;
    let payload = payload_hash
        .or_else(|| header_str(parts, X_AMZ_CONTENT_SHA256))
        .unwrap_or(signing::EMPTY_SHA256_HEX);
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let query = canonical::canonical_query(&pairs, |_| true);
    let c = &auth.credential;
    let key = SigningKey::derive(secret, c.date, c.region, c.service);
    Ok(details(
        parts,
        c,
        auth.signed_headers,
        &query,
        payload,
        &timestamp,
        &key,
        auth.signature,
    ))
}

/// Computes the presigned-URL signature intermediates with `secret`; payload hash as
/// S3 uses it (`x-amz-content-sha256` when signed, else `UNSIGNED-PAYLOAD`) unless
/// `payload_hash` overrides it.
pub fn presigned_details(
    parts: &Parts,
    secret: &str,
    payload_hash: Option<&str>,
) -> Result<SignatureDetails, AuthError> {
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let params = parse_presigned(&pairs)?;
    let credential = Credential::parse(&params.credential).ok_or(AuthError::QueryMalformed(
        "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
    ))?;
    let provided =
        signing::parse_signature_hex(&params.signature).ok_or(AuthError::SignatureMismatch)?;
    let signed = split_signed_headers(&params.signed_headers);
    let payload = match payload_hash {
        Some(p) => p,
        None if signed.contains(&"x-amz-content-sha256") => {
            header_str(parts, X_AMZ_CONTENT_SHA256).unwrap_or("UNSIGNED-PAYLOAD")
        }
        None => "UNSIGNED-PAYLOAD",
    };
    let query = canonical::canonical_query(&pairs, |p| !p.name_is("X-Amz-Signature"));
    let c = &credential;
    let key = SigningKey::derive(secret, c.date, c.region, c.service);
    Ok(details(
        parts,
        c,
        &params.signed_headers,
        &query,
        payload,
        &params.date,
        &key,
        provided,
    ))
}

#[allow(clippy::too_many_arguments)]
fn details(
    parts: &Parts,
    credential: &Credential<'_>,
    signed_headers: &str,
    canonical_query: &str,
    payload_hash: &str,
    timestamp: &str,
    key: &SigningKey,
    provided: [u8; 32],
) -> SignatureDetails {
    let signed = split_signed_headers(signed_headers);
    let headers = canonical::canonical_headers(
        &parts.headers,
        parts.uri.authority().map(|a| a.as_str()),
        &signed,
    );
    let uri = canonical::canonical_uri(parts.uri.path());
    let canonical_request = CanonicalRequest {
        method: parts.method.as_str(),
        uri: &uri,
        query: canonical_query,
        headers: &headers,
        signed_headers,
        payload_hash,
    }
    .to_bytes();
    let scope = credential.scope();
    let string_to_sign = signing::string_to_sign(timestamp, &scope, &canonical_request);
    let expected = key.sign(string_to_sign.as_bytes());
    SignatureDetails {
        canonical_request,
        string_to_sign,
        expected,
        provided,
    }
}

/// The request instant and its `YYYYMMDDTHHMMSSZ` form, from `x-amz-date` or `Date`.
fn request_timestamp(parts: &Parts) -> Result<(SystemTime, String), AuthError> {
    if let Some(v) = parts.headers.get(crate::s3::headers::X_AMZ_DATE) {
        let s = v.to_str().map_err(|_| AuthError::MissingDate)?;
        let t = date::parse_amz_date(s).ok_or(AuthError::MissingDate)?;
        return Ok((t, s.to_string()));
    }
    let s = header_str(parts, http::header::DATE).ok_or(AuthError::MissingDate)?;
    let t = date::parse_http_date(s).ok_or(AuthError::MissingDate)?;
    Ok((t, date::format_amz_date(t)))
}

fn check_scope(
    credential: &Credential<'_>,
    timestamp: &str,
    malformed: fn(&'static str) -> AuthError,
) -> Result<(), AuthError> {
    if credential.service != "s3" {
        return Err(malformed(
            "incorrect service; this endpoint belongs to \"s3\".",
        ));
    }
    if credential.terminal != "aws4_request" {
        return Err(malformed("incorrect terminal; expecting \"aws4_request\"."));
    }
    if timestamp.get(..8) != Some(credential.date) {
        return Err(malformed(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    Ok(())
}

/// `x-amz-*` headers that need not be signed: each is either covered by the
/// signature some other way (`x-amz-date` is the string to sign's timestamp,
/// `x-amz-content-sha256` its payload line), checked by the body itself
/// (`x-amz-decoded-content-length`, `x-amz-trailer`), or never forwarded and
/// without effect here (`x-amz-security-token`, `x-amz-user-agent`).
const UNSIGNED_ALLOWED: [&str; 6] = [
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "x-amz-security-token",
    "x-amz-user-agent",
];

/// S3 refuses `x-amz-*` headers left out of the signature; forwarding them would let
/// anyone on the path add, say, `x-amz-copy-source` to a signed request.
fn require_amz_headers_signed(parts: &Parts, signed_headers: &str) -> Result<(), AuthError> {
    let signed = split_signed_headers(signed_headers);
    let unsigned =
        parts.headers.keys().map(|n| n.as_str()).any(|n| {
            n.starts_with("x-amz-") && !signed.contains(&n) && !UNSIGNED_ALLOWED.contains(&n)
        });
    if unsigned {
        Err(AuthError::UnsignedHeaders)
    } else {
        Ok(())
    }
}

fn require_host_signed(signed_headers: &str, malformed: AuthError) -> Result<(), AuthError> {
    if split_signed_headers(signed_headers).contains(&"host") {
        Ok(())
    } else {
        Err(malformed)
    }
}

fn body_spec(
    parts: &Parts,
    mode: PayloadMode,
    key: SigningKey,
    timestamp: String,
    scope: String,
    seed: [u8; 32],
) -> Result<BodySpec, AuthError> {
    let signer = mode
        .is_chunk_signed()
        .then(|| ChunkSigner::new(key, timestamp, scope, seed));
    BodySpec::from_headers(&parts.headers, mode, signer)
}

/// Verifies `Authorization: AWS4-HMAC-SHA256 …`.
pub(crate) fn verify_header(
    parts: &Parts,
    ctx: &VerifyContext<'_>,
    value: &str,
) -> Result<Verified, AuthError> {
    let auth = parse_authorization(value)?;
    let cred = &auth.credential;
    let (when, timestamp) = request_timestamp(parts)?;
    check_scope(cred, &timestamp, AuthError::HeaderMalformed)?;
    require_host_signed(
        auth.signed_headers,
        AuthError::HeaderMalformed("SignedHeaders must include host."),
    )?;
    require_amz_headers_signed(parts, auth.signed_headers)?;
    let payload = header_str(parts, X_AMZ_CONTENT_SHA256).ok_or(AuthError::MissingContentSha256)?;
    let mode = PayloadMode::parse(payload)?;
    let key = ctx
        .credentials
        .signing_key(cred.access_key, cred.date, cred.region, cred.service)
        .ok_or(AuthError::UnknownAccessKey)?;
    if date::distance(when, ctx.now) > ctx.max_skew {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let query = canonical::canonical_query(&pairs, |_| true);
    let d = details(
        parts,
        cred,
        auth.signed_headers,
        &query,
        payload,
        &timestamp,
        &key,
        auth.signature,
    );
    if !d.matches() {
        return Err(AuthError::SignatureMismatch);
    }
    let body = body_spec(parts, mode, key, timestamp, cred.scope(), d.expected)?;
    Ok(Verified {
        access_key: cred.access_key.to_string(),
        method: AuthMethod::SigV4Header,
        body,
    })
}

/// Verifies a presigned URL (`X-Amz-Algorithm=AWS4-HMAC-SHA256&…`).
pub(crate) fn verify_presigned(
    parts: &Parts,
    ctx: &VerifyContext<'_>,
) -> Result<Verified, AuthError> {
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let params = parse_presigned(&pairs)?;
    if params.algorithm != ALGORITHM {
        return Err(AuthError::QueryMalformed(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let cred = Credential::parse(&params.credential).ok_or(AuthError::QueryMalformed(
        "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
    ))?;
    let when = date::parse_amz_date(&params.date).ok_or(AuthError::QueryMalformed(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    ))?;
    let expires = parse_expires(&params.expires)?;
    check_scope(&cred, &params.date, AuthError::QueryMalformed)?;
    require_host_signed(
        &params.signed_headers,
        AuthError::QueryMalformed("X-Amz-SignedHeaders must include host."),
    )?;
    require_amz_headers_signed(parts, &params.signed_headers)?;
    let signed = split_signed_headers(&params.signed_headers);
    let claimed = header_str(parts, X_AMZ_CONTENT_SHA256);
    let payload = match claimed {
        Some(v) if signed.contains(&"x-amz-content-sha256") => v,
        _ => "UNSIGNED-PAYLOAD",
    };
    // The body is read as the client framed it even when the header is unsigned:
    // an aws-chunked body taken as plain would store its framing as object data,
    // and a claimed hash or chunk chain can only add checks.
    let mode = PayloadMode::parse(claimed.unwrap_or(payload))?;
    let provided =
        signing::parse_signature_hex(&params.signature).ok_or(AuthError::SignatureMismatch)?;
    let key = ctx
        .credentials
        .signing_key(cred.access_key, cred.date, cred.region, cred.service)
        .ok_or(AuthError::UnknownAccessKey)?;
    // A URL may be used up to the skew before its date (clocks differ) and until it expires.
    if ctx
        .now
        .checked_add(ctx.max_skew)
        .is_some_and(|latest| when > latest)
    {
        return Err(AuthError::NotYetValid);
    }
    if when.checked_add(expires).is_none_or(|end| ctx.now > end) {
        return Err(AuthError::Expired);
    }
    let query = canonical::canonical_query(&pairs, |p| !p.name_is("X-Amz-Signature"));
    let d = details(
        parts,
        &cred,
        &params.signed_headers,
        &query,
        payload,
        &params.date,
        &key,
        provided,
    );
    if !d.matches() {
        return Err(AuthError::SignatureMismatch);
    }
    let body = body_spec(
        parts,
        mode,
        key,
        params.date.clone(),
        cred.scope(),
        d.expected,
    )?;
    Ok(Verified {
        access_key: cred.access_key.to_string(),
        method: AuthMethod::SigV4Presigned,
        body,
    })
}

/// `X-Amz-Expires`: whole seconds, 1 to 604800.
pub fn parse_expires(s: &str) -> Result<Duration, AuthError> {
    if s.starts_with('-') {
        return Err(AuthError::QueryMalformed(
            "X-Amz-Expires must be non-negative",
        ));
    }
    let secs: u64 = s
        .parse()
        .map_err(|_| AuthError::QueryMalformed("X-Amz-Expires should be a number"))?;
    if secs == 0 {
        return Err(AuthError::QueryMalformed(
            "X-Amz-Expires must be at least 1",
        ));
    }
    if secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(AuthError::QueryMalformed(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests;
