//! Re-signing requests for the backend with SigV4 and the backend's own credentials
//! ([`BackendSigner`], the proxy's own SigV4 code), and signing KMS requests
//! ([`sign_headers`], aws-sigv4). The path and query are put into AWS's canonical
//! percent-encoding *before* signing and sent exactly so, which is why any backend (Ceph
//! RGW is the strictest) computes the same canonical request we signed.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::auth::canonical;
use crate::auth::date::format_amz_date;
use crate::auth::signing::{ALGORITHM, SigningKey, string_to_sign};
use crate::s3::headers::{X_AMZ_CONTENT_SHA256, X_AMZ_DATE};

/// Everything but the unreserved characters of RFC 3986, as SigV4 requires.
pub const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Same, keeping `/` (object keys in paths).
pub const SIGV4_PATH_ENCODE: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// Headers never signed towards the backend: the signature itself, and headers that
/// intermediaries may change (the same set aws-sigv4 leaves out).
const UNSIGNED_HEADERS: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Backend signing identity and region, and the day's signing key.
///
/// Every proxied request is re-signed, so this is on the hot path of small requests:
/// it builds the canonical request with the verifier's own canonicalisation
/// (`auth::canonical`) and reuses the signing key for the day instead of deriving it
/// (four HMACs) and allocating aws-sigv4's intermediate structures per request.
/// `tests` check that it produces exactly aws-sigv4's Authorization header.
#[derive(Clone)]
pub struct BackendSigner {
    access_key: String,
    secret_key: Zeroizing<String>,
    region: String,
    /// (date `YYYYMMDD`, key for that date).
    day_key: Arc<Mutex<Option<(String, SigningKey)>>>,
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
        BackendSigner {
            access_key: access_key.to_string(),
            secret_key: Zeroizing::new(secret_key.to_string()),
            region: region.to_string(),
            day_key: Arc::new(Mutex::new(None)),
        }
    }

    /// The access key requests are signed with.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether this signer signs as `access_key` with `secret_key` (one signer per
    /// distinct pair, see `upstream::identity`).
    pub fn has_credentials(&self, access_key: &str, secret_key: &str) -> bool {
        self.access_key == access_key && self.secret_key.as_str() == secret_key
    }

    /// Signs `req` in place (headers only). The body is sent as `UNSIGNED-PAYLOAD`:
    /// the proxy has already verified the client's payload hash or checksums, and hashing
    /// the body a second time would halve throughput for nothing. The URI is already in
    /// canonical encoding (`build_upstream_request`), so canonicalising it again is the
    /// identity and the backend computes the same canonical request.
    pub fn sign<B>(&self, req: &mut http::Request<B>, now: SystemTime) -> Result<(), SignError> {
        let timestamp = format_amz_date(now);
        let date = timestamp.get(..8).unwrap_or_default().to_string();
        let headers = req.headers_mut();
        headers.remove(http::header::AUTHORIZATION);
        let stamp = HeaderValue::from_str(&timestamp).map_err(|e| SignError(e.to_string()))?;
        headers.insert(X_AMZ_DATE, stamp);
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        // One pass over the headers, sorted by name; the sort is stable, so a repeated
        // header's values keep their order, as SigV4 joins them.
        let mut entries: Vec<(&str, &HeaderValue)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v))
            .filter(|(n, _)| !UNSIGNED_HEADERS.contains(n))
            .collect();
        entries.sort_by_key(|(n, _)| *n);
        let mut signed_headers = String::with_capacity(entries.len() * 20);
        let mut canonical_headers = Vec::with_capacity(entries.len() * 64);
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            let Some((name, _)) = group.first() else {
                continue;
            };
            // Values that are not visible ASCII are sent but not signed.
            if group.iter().any(|(_, v)| v.to_str().is_err()) {
                continue;
            }
            if !signed_headers.is_empty() {
                signed_headers.push(';');
            }
            signed_headers.push_str(name);
            canonical::push_header_line(
                &mut canonical_headers,
                name,
                group.iter().map(|(_, v)| v.as_bytes()),
            );
        }
        let uri = canonical::canonical_uri(req.uri().path());
        let pairs = canonical::parse_query(req.uri().query().unwrap_or(""));
        let query = canonical::canonical_query(&pairs, |_| true);
        let request = canonical::CanonicalRequest {
            method: req.method().as_str(),
            uri: &uri,
            query: &query,
            headers: &canonical_headers,
            signed_headers: &signed_headers,
            payload_hash: UNSIGNED_PAYLOAD,
        }
        .to_bytes();
        let mut scope = String::with_capacity(date.len() + self.region.len() + 20);
        for piece in [date.as_str(), "/", &self.region, "/s3/aws4_request"] {
            scope.push_str(piece);
        }
        let to_sign = string_to_sign(&timestamp, &scope, &request);
        let mut signature = [0u8; 64];
        // 32 bytes are exactly 64 hex digits, so neither step can fail.
        let _ = hex::encode_to_slice(self.key_for(&date).sign(to_sign.as_bytes()), &mut signature);
        let signature = std::str::from_utf8(&signature).unwrap_or_default();
        let mut authorization = String::with_capacity(
            80 + self.access_key.len() + scope.len() + signed_headers.len() + signature.len(),
        );
        for piece in [
            ALGORITHM,
            " Credential=",
            &self.access_key,
            "/",
            &scope,
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
            signature,
        ] {
            authorization.push_str(piece);
        }
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(authorization))
            .map_err(|e| SignError(e.to_string()))?;
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
        Ok(())
    }

    /// The signing key for `date`, derived once a day.
    fn key_for(&self, date: &str) -> SigningKey {
        let mut cached = self
            .day_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((d, key)) = cached.as_ref()
            && d == date
        {
            return key.clone();
        }
        let key = SigningKey::derive(&self.secret_key, date, &self.region, "s3");
        *cached = Some((date.to_string(), key.clone()));
        key
    }
}

/// Headers that would make a backend treat a request as signed, or refuse it as
/// half-signed: an anonymous backend request carries none of them.
const SIGNATURE_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// Leaves a backend request unsigned, for the anonymous identity. The client's own
/// signing headers are already gone (`auth::strip_client_auth`); this makes sure
/// nothing else added one.
pub fn strip_signature(headers: &mut http::HeaderMap) {
    for name in SIGNATURE_HEADERS {
        headers.remove(name);
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
    encode_key_parts(key).collect()
}

/// [`encode_key`] as pieces, to append to a buffer without formatting.
pub fn encode_key_parts(key: &str) -> impl Iterator<Item = &str> {
    utf8_percent_encode(key, SIGV4_PATH_ENCODE)
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
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, UriPathNormalizationMode,
    };

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
    fn anonymous_requests_carry_no_signature_headers() {
        let mut req = upstream(
            "PUT",
            "/b/k",
            &[
                ("authorization", b"AWS4-HMAC-SHA256 stale"),
                ("x-amz-date", b"20240101T000000Z"),
                ("x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
                ("x-amz-security-token", b"t"),
                ("x-amz-meta-note", b"kept"),
            ],
        );
        strip_signature(req.headers_mut());
        let names: Vec<&str> = req.headers().keys().map(http::HeaderName::as_str).collect();
        assert_eq!(names, ["host", "x-amz-meta-note"]);
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

    /// The reference: aws-sigv4 with the settings the proxy used before it signed
    /// backend requests itself.
    fn reference_authorization(req: &http::Request<()>, now: SystemTime) -> String {
        let mut req = req.clone();
        let identity: Identity = Credentials::new("AK", "SK/secret", None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        sign_headers(
            &mut req,
            &identity,
            "eu-west-3",
            "s3",
            settings,
            SignableBody::UnsignedPayload,
            now,
        )
        .unwrap();
        req.headers()["authorization"].to_str().unwrap().to_string()
    }

    fn own_authorization(req: &http::Request<()>, now: SystemTime) -> String {
        let mut req = req.clone();
        BackendSigner::new("AK", "SK/secret", "eu-west-3")
            .sign(&mut req, now)
            .unwrap();
        req.headers()["authorization"].to_str().unwrap().to_string()
    }

    /// A backend request as `build_upstream_request` makes them: canonical path and
    /// query, Host, forwarded headers.
    fn upstream(
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &[u8])],
    ) -> http::Request<()> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://10.0.0.7:7480{path_and_query}"))
            .header("host", "10.0.0.7:7480");
        for (n, v) in headers {
            b = b.header(*n, HeaderValue::from_bytes(v).unwrap());
        }
        b.body(()).unwrap()
    }

    #[test]
    fn own_signature_is_aws_sigv4s() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_800_000);
        let cases = [
            upstream("GET", "/b/k", &[]),
            upstream("GET", "/b?list-type=2&prefix=a%2Fb%20c&max-keys=2", &[]),
            upstream("POST", "/b/k?uploads", &[("content-type", b"text/plain")]),
            upstream(
                "PUT",
                "/b/dir/a%20b%28c%29%E2%82%AC?partNumber=3&uploadId=2~x.y_z",
                &[
                    ("content-length", b"1048576"),
                    ("x-amz-meta-note", b"  two   spaces  "),
                    ("x-amz-meta-a", b"1"),
                    ("x-amz-meta-a", b"2"),
                    ("user-agent", b"aws-cli/2"),
                    ("x-amzn-trace-id", b"Root=1"),
                    ("range", b"bytes=0-31"),
                ],
            ),
            upstream(
                "DELETE",
                "/b/k?versionId=3%2B4",
                &[("x-amz-meta-raw", b"caf\xc3\xa9")],
            ),
            upstream(
                "HEAD",
                "/",
                &[("authorization", b"stale"), ("x-amz-date", b"stale")],
            ),
        ];
        for req in &cases {
            assert_eq!(
                own_authorization(req, now),
                reference_authorization(req, now),
                "{} {}",
                req.method(),
                req.uri()
            );
        }
    }

    fn config() -> proptest::prelude::ProptestConfig {
        let mut c = proptest::prelude::ProptestConfig::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            c.cases = 256;
        }
        c
    }

    proptest::proptest! {
        #![proptest_config(config())]

        /// Any canonical key, query and header set signs exactly as aws-sigv4 signs it.
        #[test]
        fn own_signature_matches_aws_sigv4_for_any_request(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            query in proptest::collection::vec(("[a-zA-Z0-9-]{1,8}", proptest::option::of(".{0,12}")), 0..4),
            // As an HTTP parser hands them over: no whitespace around a value.
            metas in proptest::collection::vec(("[a-z0-9-]{1,10}", "([!-~]([ -~]{0,18}[!-~])?)?"), 0..4),
            secs in 0u64..4_000_000_000,
        ) {
            let path = format!("/bucket/{}", percent_encoding::percent_encode(&key, SIGV4_PATH_ENCODE));
            let pairs: Vec<(String, Option<String>)> = query;
            let q = canonical_query(&pairs);
            let pq = if q.is_empty() { path } else { format!("{path}?{q}") };
            let headers: Vec<(String, Vec<u8>)> = metas
                .iter()
                .map(|(n, v)| (format!("x-amz-meta-{n}"), v.as_bytes().to_vec()))
                .collect();
            let refs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            let req = upstream("PUT", &pq, &refs);
            let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            proptest::prop_assert_eq!(own_authorization(&req, now), reference_authorization(&req, now));
        }
    }
}
