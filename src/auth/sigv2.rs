//! Signature Version 2 (legacy): `Authorization: AWS AK:sig` and presigned
//! `AWSAccessKeyId`/`Signature`/`Expires` query parameters, HMAC-SHA1 over S3's
//! string to sign. Still sent by old s3cmd setups and some appliances; off unless
//! the operator allows it.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit as _, Mac as _};
use http::request::Parts;

use super::canonical::{self, QueryPair};
use super::date;
use super::error::AuthError;
use super::payload::{BodySpec, PayloadMode};
use super::signing;
use super::{AuthMethod, Verified, VerifyContext};

/// Query parameters that make up a SigV2 presigned URL.
pub const PRESIGNED_PARAMS: [&str; 3] = ["AWSAccessKeyId", "Signature", "Expires"];

/// Sub-resources that are part of the canonicalized resource (S3's list).
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// `/bucket` (virtual-hosted) + the raw path + sorted sub-resources (decoded values).
pub fn canonical_resource(
    raw_path: &str,
    query: &[QueryPair<'_>],
    vhost_bucket: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(bucket) = vhost_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(if raw_path.is_empty() { "/" } else { raw_path });
    let mut subs: Vec<(String, Option<String>)> = query
        .iter()
        .filter_map(|p| {
            let name = std::str::from_utf8(&p.name).ok()?;
            if !SUB_RESOURCES.contains(&name) {
                return None;
            }
            let value = p
                .raw
                .contains('=')
                .then(|| String::from_utf8_lossy(&p.value).into_owned());
            Some((name.to_string(), value))
        })
        .collect();
    subs.sort();
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// `x-amz-*` headers: lowercase names, sorted, values trimmed and joined with `,`.
fn canonical_amz_headers(parts: &Parts) -> String {
    let mut names: Vec<&str> = parts
        .headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| n.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// S3's SigV2 string to sign. `date_line` is the `Date` header (empty when
/// `x-amz-date` is sent) for header auth, the `Expires` value for query auth.
pub fn string_to_sign(parts: &Parts, date_line: &str, vhost_bucket: Option<&str>) -> String {
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default()
    };
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        parts.method.as_str(),
        header("content-md5"),
        header("content-type"),
        date_line,
        canonical_amz_headers(parts),
        canonical_resource(parts.uri.path(), &pairs, vhost_bucket)
    )
}

/// Base64 HMAC-SHA1 of `string_to_sign` with the secret key.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    BASE64.encode(raw_sign(secret, string_to_sign))
}

/// Raw HMAC-SHA1 of `string_to_sign` with the secret key (also a form policy's).
pub(crate) fn raw_sign(secret: &str, string_to_sign: &str) -> [u8; 20] {
    match hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().into()
        }
        // HMAC accepts keys of any length.
        Err(_) => [0; 20],
    }
}

fn check(secret: &str, sts: &str, provided_b64: &str) -> Result<(), AuthError> {
    // A presigned Signature with an unencoded '+' reaches us as a space (query
    // strings are form-decoded); base64 has no spaces, so the '+' is restored.
    let provided = BASE64
        .decode(provided_b64.trim().replace(' ', "+"))
        .map_err(|_| AuthError::SignatureMismatch)?;
    if signing::signatures_equal(&raw_sign(secret, sts), &provided) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

/// Parses `AWS AccessKey:Signature`.
pub fn parse_authorization(value: &str) -> Result<(&str, &str), AuthError> {
    const MALFORMED: AuthError = AuthError::InvalidArgument(
        "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
    );
    let rest = value
        .strip_prefix("AWS ")
        .ok_or(AuthError::UnsupportedAuthorization)?;
    let (ak, sig) = rest.trim().rsplit_once(':').ok_or(MALFORMED)?;
    if ak.is_empty() || sig.is_empty() {
        return Err(MALFORMED);
    }
    Ok((ak, sig))
}

fn body_spec(parts: &Parts) -> Result<BodySpec, AuthError> {
    // SigV2 signs no payload; Content-MD5 and flexible checksums are still checked.
    BodySpec::from_headers(&parts.headers, PayloadMode::Unsigned, None)
}

/// Verifies `Authorization: AWS AK:sig`.
pub(crate) fn verify_header(
    parts: &Parts,
    ctx: &VerifyContext<'_>,
    value: &str,
) -> Result<Verified, AuthError> {
    let (access_key, signature) = parse_authorization(value)?;
    let secret = ctx
        .credentials
        .secret(access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok());
    let http_date = parts.headers.get("date").and_then(|v| v.to_str().ok());
    let when = amz_date
        .or(http_date)
        .and_then(|d| date::parse_http_date(d).or_else(|| date::parse_amz_date(d)))
        .ok_or(AuthError::MissingDate)?;
    if date::distance(when, ctx.now) > ctx.max_skew {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    // With x-amz-date the Date line is empty: the date is signed among the x-amz- headers.
    let date_line = if amz_date.is_some() {
        ""
    } else {
        http_date.unwrap_or("")
    };
    check(
        secret,
        &string_to_sign(parts, date_line, ctx.vhost_bucket),
        signature,
    )?;
    Ok(Verified {
        access_key: access_key.to_string(),
        method: AuthMethod::SigV2Header,
        body: body_spec(parts)?,
    })
}

/// Verifies a SigV2 presigned URL.
pub(crate) fn verify_presigned(
    parts: &Parts,
    ctx: &VerifyContext<'_>,
) -> Result<Verified, AuthError> {
    let pairs = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let get = |name: &str| -> Result<String, AuthError> {
        let mut found = pairs.iter().filter(|p| p.name_is(name));
        let first = found.next().ok_or(AuthError::QueryMalformed(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ))?;
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
    let access_key = get("AWSAccessKeyId")?;
    let signature = get("Signature")?;
    let expires_raw = get("Expires")?;
    let expires_secs: u64 = expires_raw
        .parse()
        .map_err(|_| AuthError::QueryMalformed("Invalid date (should be seconds since epoch)"))?;
    let secret = ctx
        .credentials
        .secret(&access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let expires = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(expires_secs));
    if expires.is_none_or(|e| ctx.now > e) {
        return Err(AuthError::Expired);
    }
    check(
        secret,
        &string_to_sign(parts, &expires_raw, ctx.vhost_bucket),
        &signature,
    )?;
    Ok(Verified {
        access_key,
        method: AuthMethod::SigV2Presigned,
        body: body_spec(parts)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_resource_keeps_sub_resources_only_sorted() {
        let pairs = canonical::parse_query(
            "uploadId=abc&prefix=x&acl&versionId=3&response-content-type=text%2Fplain",
        );
        assert_eq!(
            canonical_resource("/photos/a%20b.jpg", &pairs, Some("bucket")),
            "/bucket/photos/a%20b.jpg?acl&response-content-type=text/plain&uploadId=abc&versionId=3"
        );
        assert_eq!(canonical_resource("/", &[], None), "/");
    }

    #[test]
    fn authorization_must_have_key_and_signature() {
        assert_eq!(parse_authorization("AWS AK:c2ln"), Ok(("AK", "c2ln")));
        assert!(parse_authorization("AWS AK").is_err());
        assert!(parse_authorization("AWS :sig").is_err());
        assert_eq!(
            parse_authorization("Bearer x"),
            Err(AuthError::UnsupportedAuthorization)
        );
    }
}
