//! Re-signing requests for the backend with SigV4 (aws-sigv4) and the backend's own
//! credentials. The path and query are put into AWS's canonical percent-encoding
//! *before* signing and sent exactly so, which is why any backend (Ceph RGW is the
//! strictest) computes the same canonical request we signed.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but the unreserved characters of RFC 3986, as SigV4 requires.
pub const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Same, keeping `/` (object keys in paths).
pub const SIGV4_PATH_ENCODE: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// Backend signing identity and region.
#[derive(Clone)]
pub struct BackendSigner {
    identity: Identity,
    region: String,
}

impl std::fmt::Debug for BackendSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendSigner")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the backend request: {0}")]
pub struct SignError(String);

impl BackendSigner {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> BackendSigner {
        let creds = Credentials::new(access_key, secret_key, None, None, "sealgate-config");
        BackendSigner {
            identity: creds.into(),
            region: region.to_string(),
        }
    }

    /// Signs `req` in place (headers only). The body is sent as `UNSIGNED-PAYLOAD`:
    /// the proxy has already verified the client's payload hash or checksums, and hashing
    /// the body a second time would halve throughput for nothing.
    pub fn sign<B>(&self, req: &mut http::Request<B>, now: SystemTime) -> Result<(), SignError> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        sign_headers(
            req,
            &self.identity,
            &self.region,
            "s3",
            settings,
            SignableBody::UnsignedPayload,
            now,
        )
    }
}

/// Signs `req`'s headers in place with SigV4 for `service`: every outgoing request of the
/// proxy (to the backend and to KMS) goes through here.
pub fn sign_headers<B>(
    req: &mut http::Request<B>,
    identity: &Identity,
    region: &str,
    service: &str,
    settings: SigningSettings,
    body: SignableBody<'_>,
    now: SystemTime,
) -> Result<(), SignError> {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(req.method().as_str(), uri, headers.into_iter(), body)
        .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    let signed: Vec<(http::HeaderName, HeaderValue)> = instructions
        .headers()
        .map(|(name, value)| {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| SignError(e.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|e| SignError(e.to_string()))?;
            Ok((name, value))
        })
        .collect::<Result<_, SignError>>()?;
    drop(instructions);
    for (name, value) in signed {
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

/// Re-encodes a raw request path (as the client sent it) in SigV4's canonical form:
/// percent-decoded, then every byte but unreserved characters and `/` encoded.
pub fn canonical_path(raw_path: &str) -> String {
    let decoded = percent_decode_str(raw_path).collect::<Vec<u8>>();
    percent_encoding::percent_encode(&decoded, SIGV4_PATH_ENCODE).to_string()
}

/// Encodes an object key for a path (keeps `/`).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, SIGV4_PATH_ENCODE).to_string()
}

/// Re-encodes raw query pairs canonically; a parameter sent without `=` stays without it.
/// `+` is a space, as S3 decodes it.
pub fn canonical_query(pairs: &[(String, Option<String>)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&utf8_percent_encode(name, SIGV4_ENCODE).to_string());
        if let Some(v) = value {
            out.push('=');
            out.push_str(&utf8_percent_encode(v, SIGV4_ENCODE).to_string());
        }
    }
    out
}

/// Splits a raw query string into decoded pairs, remembering which had no `=`.
pub fn parse_query(raw: &str) -> Vec<(String, Option<String>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode_component(k), Some(decode_component(v))),
            None => (decode_component(p), None),
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_reencoded_canonically() {
        assert_eq!(canonical_path("/b/a%20b(c)"), "/b/a%20b%28c%29");
        assert_eq!(canonical_path("/b/a b"), "/b/a%20b");
        assert_eq!(canonical_path("/b/%E2%82%AC"), "/b/%E2%82%AC");
        assert_eq!(canonical_path("/b/x/../y"), "/b/x/../y");
    }

    #[test]
    fn query_keeps_bare_names_and_encodes_values() {
        let q = parse_query("uploads&prefix=a%2Fb+c&max-keys=2");
        assert_eq!(canonical_query(&q), "uploads&prefix=a%2Fb%20c&max-keys=2");
    }

    #[test]
    fn signing_adds_authorization_and_payload_headers() {
        let s = BackendSigner::new("AK", "SK", "us-east-1");
        let mut req = http::Request::get("http://127.0.0.1:9000/b/k")
            .header("host", "127.0.0.1:9000")
            .body(())
            .unwrap();
        s.sign(
            &mut req,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/20231114/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert_eq!(req.headers()["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    }
}
