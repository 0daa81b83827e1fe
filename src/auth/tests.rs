//! `verify` and `strip_client_auth` end to end. SigV4 requests are signed with the
//! `aws-sigv4` crate (an independent implementation); SigV2 expectations come from
//! the AWS documentation examples or are computed here from the documented string
//! to sign.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use http::{HeaderValue, Method};

use super::body::tests::{Frames, drain};
use super::body::{BodyLimits, VerifiedBody};
use super::*;

const AK: &str = "AKIDTEST";
const SK: &str = "test/Secret+Key0123456789";
/// 2024-03-01T12:00:00Z
const T: u64 = 1_709_294_400;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn store() -> CredentialStore {
    CredentialStore::new([(AK.to_string(), SK.to_string())])
}

fn ctx(store: &CredentialStore, now: SystemTime) -> VerifyContext<'_> {
    VerifyContext {
        credentials: store,
        now,
        max_skew: DEFAULT_MAX_SKEW,
        allow_sigv2: true,
        vhost_bucket: None,
    }
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(()).expect("test request")
}

/// Signs with aws-sigv4 as an S3 SDK does; `presign` puts the signature in the query.
fn sign_v4(
    mut req: http::Request<()>,
    body: &[u8],
    time: SystemTime,
    presign: Option<Duration>,
) -> Parts {
    let identity: Identity = Credentials::new(AK, SK, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let signable_body = match presign {
        Some(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
            SignableBody::UnsignedPayload
        }
        None => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::Bytes(body)
        }
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-3")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().expect("ascii").to_string(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        signable_body,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(&mut req);
    req.into_parts().0
}

fn base_put() -> (http::Request<()>, &'static [u8]) {
    let req = request(
        "PUT",
        "http://s3.example.com/bucket/dir/key.txt?acl=&versionId=3",
        &[
            ("host", "s3.example.com"),
            ("content-type", "text/plain"),
            ("x-amz-meta-colour", "blue"),
            ("content-length", "5"),
        ],
    );
    (req, b"hello")
}

fn code(r: Result<Verified, AuthError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.s3_code(),
    }
}

#[test]
fn sdk_signed_header_request_is_accepted() {
    let (req, body) = base_put();
    let parts = sign_v4(req, body, at(T), None);
    let store = store();
    let v = verify(&parts, &ctx(&store, at(T + 60)));
    let Ok(v) = v else { panic!("{:?}", v.err()) };
    assert_eq!(v.access_key, AK);
    assert_eq!(v.method, AuthMethod::SigV4Header);
    assert_eq!(v.body.decoded_length(), Some(5));
    assert!(v.body.has_payload_sha256());
    let (body_out, outcome) = VerifiedBody::new(
        Frames([bytes::Bytes::from_static(b"hello")].into()),
        v.body,
        BodyLimits::default(),
    );
    assert_eq!(drain(body_out).0.concat(), b"hello");
    assert_eq!(outcome.error(), None);
}

/// Every signed element, mutated after signing, must be refused.
#[test]
fn mutation_table_header_auth() {
    let store = store();
    let (req, body) = base_put();
    let signed = sign_v4(req, body, at(T), None);
    type Mutation = (&'static str, fn(&mut Parts), &'static str);
    let table: Vec<Mutation> = vec![
        (
            "method",
            |p| p.method = Method::POST,
            "SignatureDoesNotMatch",
        ),
        (
            "path",
            |p| {
                p.uri = "http://s3.example.com/bucket/dir/key.txT?acl=&versionId=3"
                    .parse()
                    .expect("uri")
            },
            "SignatureDoesNotMatch",
        ),
        (
            "query value",
            |p| {
                p.uri = "http://s3.example.com/bucket/dir/key.txt?acl=&versionId=4"
                    .parse()
                    .expect("uri")
            },
            "SignatureDoesNotMatch",
        ),
        (
            "query name",
            |p| {
                p.uri = "http://s3.example.com/bucket/dir/key.txt?acl=&versionid=3"
                    .parse()
                    .expect("uri")
            },
            "SignatureDoesNotMatch",
        ),
        (
            "query dropped",
            |p| {
                p.uri = "http://s3.example.com/bucket/dir/key.txt?versionId=3"
                    .parse()
                    .expect("uri")
            },
            "SignatureDoesNotMatch",
        ),
        (
            "query added",
            |p| {
                p.uri = "http://s3.example.com/bucket/dir/key.txt?acl=&versionId=3&x=1"
                    .parse()
                    .expect("uri")
            },
            "SignatureDoesNotMatch",
        ),
        (
            "host",
            |p| {
                p.headers
                    .insert("host", HeaderValue::from_static("s4.example.com"));
            },
            "SignatureDoesNotMatch",
        ),
        (
            "content-type",
            |p| {
                p.headers
                    .insert("content-type", HeaderValue::from_static("text/html"));
            },
            "SignatureDoesNotMatch",
        ),
        (
            "x-amz-meta",
            |p| {
                p.headers
                    .insert("x-amz-meta-colour", HeaderValue::from_static("bluE"));
            },
            "SignatureDoesNotMatch",
        ),
        (
            "unsigned x-amz header added",
            |p| {
                p.headers.insert(
                    "x-amz-copy-source",
                    HeaderValue::from_static("/other/secret"),
                );
            },
            "AccessDenied",
        ),
        (
            "content-length",
            |p| {
                p.headers
                    .insert("content-length", HeaderValue::from_static("6"));
            },
            "SignatureDoesNotMatch",
        ),
        (
            "date +1s",
            |p| {
                p.headers
                    .insert("x-amz-date", HeaderValue::from_static("20240301T120001Z"));
            },
            "SignatureDoesNotMatch",
        ),
        (
            "date unparsable",
            |p| {
                p.headers
                    .insert("x-amz-date", HeaderValue::from_static("2024-03-01"));
            },
            "AccessDenied",
        ),
        (
            "date missing",
            |p| {
                p.headers.remove("x-amz-date");
            },
            "AccessDenied",
        ),
        (
            "payload hash",
            |p| {
                p.headers.insert(
                    "x-amz-content-sha256",
                    HeaderValue::from_static(
                        "0000000000000000000000000000000000000000000000000000000000000000",
                    ),
                );
            },
            "SignatureDoesNotMatch",
        ),
        (
            "payload hash missing",
            |p| {
                p.headers.remove("x-amz-content-sha256");
            },
            "InvalidRequest",
        ),
        (
            "payload hash garbage",
            |p| {
                p.headers.insert(
                    "x-amz-content-sha256",
                    HeaderValue::from_static("STREAMING-NOPE"),
                );
            },
            "InvalidArgument",
        ),
        (
            "signature digit",
            |p| flip_in_header(p, "Signature=", 0),
            "SignatureDoesNotMatch",
        ),
        (
            "signature short",
            |p| replace_in_auth(p, "Signature=", "Signature=ab"),
            "AuthorizationHeaderMalformed",
        ),
        (
            "access key",
            |p| replace_in_auth(p, "Credential=AKIDTEST", "Credential=AKIDTESX"),
            "InvalidAccessKeyId",
        ),
        (
            "scope region",
            |p| replace_in_auth(p, "/eu-west-3/", "/eu-west-1/"),
            "SignatureDoesNotMatch",
        ),
        (
            "scope service",
            |p| replace_in_auth(p, "/s3/", "/s4/"),
            "AuthorizationHeaderMalformed",
        ),
        (
            "scope date",
            |p| replace_in_auth(p, "/20240301/", "/20240302/"),
            "AuthorizationHeaderMalformed",
        ),
        (
            "signed headers",
            |p| replace_in_auth(p, "SignedHeaders=content-length;", "SignedHeaders="),
            "SignatureDoesNotMatch",
        ),
        (
            "host unsigned",
            |p| replace_in_auth(p, "host;", ""),
            "AuthorizationHeaderMalformed",
        ),
        (
            "scheme",
            |p| replace_in_auth(p, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
            "InvalidArgument",
        ),
        (
            "presigned too",
            |p| {
                p.uri =
                    "http://s3.example.com/bucket/dir/key.txt?acl=&versionId=3&X-Amz-Signature=00"
                        .parse()
                        .expect("uri")
            },
            "InvalidArgument",
        ),
    ];
    assert_eq!(code(verify(&signed, &ctx(&store, at(T)))), "ok");
    for (what, mutate, expected) in table {
        let mut p = clone_parts(&signed);
        mutate(&mut p);
        assert_eq!(
            code(verify(&p, &ctx(&store, at(T)))),
            expected,
            "mutation: {what}"
        );
    }
}

#[test]
fn body_byte_mutation_is_caught_by_the_body() {
    let store = store();
    let (req, body) = base_put();
    let parts = sign_v4(req, body, at(T), None);
    let Ok(v) = verify(&parts, &ctx(&store, at(T))) else {
        panic!("valid request refused")
    };
    let (b, outcome) = VerifiedBody::new(
        Frames([bytes::Bytes::from_static(b"hellO")].into()),
        v.body,
        BodyLimits::default(),
    );
    let (out, err) = drain(b);
    assert!(out.is_empty() && err.is_some());
    assert_eq!(
        outcome.error().map(|e| e.s3_code()),
        Some("XAmzContentSHA256Mismatch")
    );
}

fn clone_parts(p: &Parts) -> Parts {
    let mut b = http::Request::builder()
        .method(p.method.clone())
        .uri(p.uri.clone());
    for (n, v) in &p.headers {
        b = b.header(n, v);
    }
    b.body(()).expect("clone").into_parts().0
}

fn replace_in_auth(p: &mut Parts, from: &str, to: &str) {
    let v = p.headers["authorization"]
        .to_str()
        .expect("ascii")
        .replacen(from, to, 1);
    p.headers
        .insert("authorization", HeaderValue::from_str(&v).expect("header"));
}

fn flip_in_header(p: &mut Parts, marker: &str, offset: usize) {
    let v = p.headers["authorization"]
        .to_str()
        .expect("ascii")
        .to_string();
    let i = v.find(marker).expect("marker") + marker.len() + offset;
    let mut bytes = v.into_bytes();
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    p.headers.insert(
        "authorization",
        HeaderValue::from_bytes(&bytes).expect("header"),
    );
}

#[test]
fn clock_skew_is_bounded_both_ways() {
    let store = store();
    let (req, body) = base_put();
    let parts = sign_v4(req, body, at(T), None);
    assert_eq!(code(verify(&parts, &ctx(&store, at(T + 15 * 60)))), "ok");
    assert_eq!(code(verify(&parts, &ctx(&store, at(T - 15 * 60)))), "ok");
    assert_eq!(
        code(verify(&parts, &ctx(&store, at(T + 15 * 60 + 1)))),
        "RequestTimeTooSkewed"
    );
    assert_eq!(
        code(verify(&parts, &ctx(&store, at(T - 15 * 60 - 1)))),
        "RequestTimeTooSkewed"
    );
    assert_eq!(
        verify(&parts, &ctx(&store, at(T + 3600)))
            .err()
            .map(|e| e.status()),
        Some(http::StatusCode::FORBIDDEN)
    );
}

#[test]
fn presigned_url_is_accepted_until_it_expires() {
    let store = store();
    let req = request(
        "GET",
        "http://s3.example.com/bucket/key?response-content-type=text%2Fplain",
        &[("host", "s3.example.com")],
    );
    let parts = sign_v4(req, b"", at(T), Some(Duration::from_secs(600)));
    assert!(
        parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="))
    );
    let v = verify(&parts, &ctx(&store, at(T + 600)));
    let Ok(v) = v else { panic!("{:?}", v.err()) };
    assert_eq!(v.method, AuthMethod::SigV4Presigned);
    let expired = verify(&parts, &ctx(&store, at(T + 601)));
    assert_eq!(expired.as_ref().err(), Some(&AuthError::Expired));
    assert_eq!(
        expired.err().map(|e| e.to_string()).as_deref(),
        Some("Request has expired")
    );
    // Issued in the future: usable within the skew, refused beyond it.
    assert_eq!(code(verify(&parts, &ctx(&store, at(T - 15 * 60)))), "ok");
    assert_eq!(
        verify(&parts, &ctx(&store, at(T - 15 * 60 - 1))).err(),
        Some(AuthError::NotYetValid)
    );
}

#[test]
fn presigned_mutations_are_refused() {
    let store = store();
    let req = request(
        "GET",
        "http://s3.example.com/bucket/key?partNumber=2",
        &[("host", "s3.example.com")],
    );
    let parts = sign_v4(req, b"", at(T), Some(Duration::from_secs(600)));
    let q = parts.uri.query().expect("query").to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            q.replace("partNumber=2", "partNumber=3"),
            "SignatureDoesNotMatch",
        ),
        (
            q.replace("X-Amz-Expires=600", "X-Amz-Expires=601"),
            "SignatureDoesNotMatch",
        ),
        (
            q.replace("X-Amz-Expires=600", "X-Amz-Expires=0"),
            "AuthorizationQueryParametersError",
        ),
        (
            q.replace("X-Amz-Expires=600", "X-Amz-Expires=604801"),
            "AuthorizationQueryParametersError",
        ),
        (
            q.replace("X-Amz-Expires=600", "X-Amz-Expires=-1"),
            "AuthorizationQueryParametersError",
        ),
        (
            q.replace("X-Amz-Date=20240301T120000Z", "X-Amz-Date=20240301T120001Z"),
            "SignatureDoesNotMatch",
        ),
        (
            q.replace("X-Amz-Date=20240301T120000Z", "X-Amz-Date=yesterday"),
            "AuthorizationQueryParametersError",
        ),
        (
            q.replace(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-HMAC-SHA1",
            ),
            "AuthorizationQueryParametersError",
        ),
        (q.replace("AKIDTEST", "AKIDTESX"), "InvalidAccessKeyId"),
        (
            q.replace("%2Feu-west-3%2F", "%2Feu-west-1%2F"),
            "SignatureDoesNotMatch",
        ),
        (
            q.replace("%2F20240301%2F", "%2F20240302%2F"),
            "AuthorizationQueryParametersError",
        ),
        (
            q.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range"),
            "AuthorizationQueryParametersError",
        ),
        (flip_query_signature(&q), "SignatureDoesNotMatch"),
        (
            q.split('&')
                .filter(|kv| !kv.starts_with("X-Amz-Expires"))
                .collect::<Vec<_>>()
                .join("&"),
            "AuthorizationQueryParametersError",
        ),
        (
            format!("{q}&X-Amz-Date=20240301T120000Z"),
            "AuthorizationQueryParametersError",
        ),
        (format!("{q}&AWSAccessKeyId=x"), "InvalidArgument"),
    ];
    for (query, expected) in cases {
        let mut p = clone_parts(&parts);
        p.uri = format!("http://s3.example.com/bucket/key?{query}")
            .parse()
            .expect("uri");
        assert_eq!(code(verify(&p, &ctx(&store, at(T)))), expected, "{query}");
    }
    let mut p = clone_parts(&parts);
    p.headers
        .insert("x-amz-acl", HeaderValue::from_static("public-read"));
    assert_eq!(
        verify(&p, &ctx(&store, at(T))).err(),
        Some(AuthError::UnsignedHeaders)
    );
    let mut p = clone_parts(&parts);
    p.method = Method::PUT;
    assert_eq!(
        code(verify(&p, &ctx(&store, at(T)))),
        "SignatureDoesNotMatch"
    );
    let mut p = clone_parts(&parts);
    p.headers
        .insert("host", HeaderValue::from_static("evil.example.com"));
    assert_eq!(
        code(verify(&p, &ctx(&store, at(T)))),
        "SignatureDoesNotMatch"
    );
}

fn flip_query_signature(q: &str) -> String {
    let i = q.find("X-Amz-Signature=").expect("sig") + "X-Amz-Signature=".len();
    let mut b = q.as_bytes().to_vec();
    b[i] = if b[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(b).expect("ascii")
}

#[test]
fn no_auth_is_access_denied_and_unknown_schemes_are_refused() {
    let store = store();
    let p = request(
        "GET",
        "http://s3.example.com/bucket/key",
        &[("host", "s3.example.com")],
    )
    .into_parts()
    .0;
    let e = verify(&p, &ctx(&store, at(T))).err();
    assert_eq!(e, Some(AuthError::Missing));
    assert_eq!(
        e.map(|e| (e.s3_code(), e.status().as_u16(), e.reason())),
        Some(("AccessDenied", 403, "missing"))
    );
    let p = request(
        "GET",
        "http://s3.example.com/b/k",
        &[("authorization", "Bearer abc")],
    )
    .into_parts()
    .0;
    assert_eq!(code(verify(&p, &ctx(&store, at(T)))), "InvalidArgument");
    let p = request(
        "GET",
        "http://s3.example.com/b/k",
        &[("authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")],
    )
    .into_parts()
    .0;
    assert_eq!(code(verify(&p, &ctx(&store, at(T)))), "InvalidArgument");
}

#[test]
fn only_requests_without_any_signature_become_anonymous() {
    let store = store();
    let unsigned = request(
        "PUT",
        "http://s3.example.com/bucket/key?acl",
        &[("host", "s3.example.com"), ("content-length", "5")],
    )
    .into_parts()
    .0;
    // Refused unless forwarding is asked for.
    assert_eq!(
        verify_or_anonymous(&unsigned, &ctx(&store, at(T)), false).err(),
        Some(AuthError::Missing)
    );
    let v = verify_or_anonymous(&unsigned, &ctx(&store, at(T)), true);
    let Ok(v) = v else { panic!("{:?}", v.err()) };
    assert_eq!(v.method, AuthMethod::Anonymous);
    assert_eq!(v.access_key, ANONYMOUS);
    assert_eq!(v.body.decoded_length(), Some(5));
    // Nothing to strip from an anonymous request's query: `acl` stays.
    let mut stripped = clone_parts(&unsigned);
    strip_client_auth(&mut stripped, &v);
    assert_eq!(stripped.uri.query(), Some("acl"));

    // A signature that fails is refused, never downgraded to anonymous.
    let (req, body) = base_put();
    let mut bad = sign_v4(req, body, at(T), None);
    bad.method = Method::POST;
    assert_eq!(
        code(verify_or_anonymous(&bad, &ctx(&store, at(T)), true)),
        "SignatureDoesNotMatch"
    );
    let (req, _) = base_put();
    let presigned = sign_v4(req, b"", at(T), Some(Duration::from_secs(60)));
    let mut bad = clone_parts(&presigned);
    let q = flip_query_signature(bad.uri.query().unwrap_or_default());
    bad.uri = format!("http://s3.example.com{}?{q}", bad.uri.path())
        .parse()
        .expect("uri");
    assert_eq!(
        code(verify_or_anonymous(&bad, &ctx(&store, at(T)), true)),
        "SignatureDoesNotMatch"
    );
    let sigv2_query = request(
        "GET",
        "http://s3.example.com/bucket/key?AWSAccessKeyId=AKIDTEST&Expires=1&Signature=x",
        &[("host", "s3.example.com")],
    )
    .into_parts()
    .0;
    assert_ne!(
        code(verify_or_anonymous(&sigv2_query, &ctx(&store, at(T)), true)),
        "ok"
    );
    let bad_header = request(
        "GET",
        "http://s3.example.com/b/k",
        &[("authorization", "Bearer abc")],
    )
    .into_parts()
    .0;
    assert_eq!(
        code(verify_or_anonymous(&bad_header, &ctx(&store, at(T)), true)),
        "InvalidArgument"
    );
}

#[test]
fn anonymous_bodies_are_checked_where_the_client_committed_to_something() {
    let store = store();
    let with = |headers: &[(&str, &str)]| {
        let mut all = vec![("host", "s3.example.com"), ("content-length", "5")];
        all.extend_from_slice(headers);
        let p = request("PUT", "http://s3.example.com/bucket/key", &all)
            .into_parts()
            .0;
        verify_or_anonymous(&p, &ctx(&store, at(T)), true)
    };
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"hello"));
    let v = with(&[("x-amz-content-sha256", &hash)]).expect("hashed payload");
    assert!(v.body.has_payload_sha256());
    let v = with(&[("content-md5", "XUFAKrxLKna5cZ2REBfFkg==")]).expect("md5");
    assert!(v.body.has_content_md5());
    // Chunk signatures need a seed signature the request does not have.
    assert_eq!(
        code(with(&[
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "5"),
        ])),
        "AccessDenied"
    );
    assert_eq!(
        code(with(&[("x-amz-content-sha256", "not-a-hash")])),
        "InvalidArgument"
    );
}

mod sigv2;
mod strip;

#[test]
fn presigned_upload_with_unsigned_streaming_header_is_decoded() {
    let store = store();
    let req = request(
        "PUT",
        "http://s3.example.com/bucket/key",
        &[("host", "s3.example.com")],
    );
    let mut parts = sign_v4(req, b"", at(T), Some(Duration::from_secs(600)));
    parts.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
    );
    parts.headers.insert(
        "x-amz-decoded-content-length",
        HeaderValue::from_static("5"),
    );
    let v = verify(&parts, &ctx(&store, at(T)));
    let Ok(v) = v else { panic!("{:?}", v.err()) };
    assert!(v.body.is_aws_chunked());
    let wire = bytes::Bytes::from_static(b"5\r\nhello\r\n0\r\n\r\n");
    let (b, outcome) = VerifiedBody::new(Frames([wire].into()), v.body, BodyLimits::default());
    assert_eq!(drain(b).0.concat(), b"hello");
    assert_eq!(outcome.error(), None);
}

/// Rough costs, printed; run with `cargo test --lib auth::tests::timing -- --ignored
/// --nocapture`. Debug build of this crate (dependencies at opt-level 2), so only the
/// hashing-bound numbers mean much.
#[test]
#[ignore]
fn timing_report() {
    use std::time::Instant;
    let store = store();
    let (req, body) = base_put();
    let parts = sign_v4(req, body, at(T), None);
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        assert!(verify(&parts, &ctx(&store, at(T))).is_ok());
    }
    let per = start.elapsed() / n;
    println!("verify(SigV4 header, 5 signed headers): {per:?} per request");

    let data = vec![0x5au8; 32 << 20];
    let frames = |wire: &[u8]| -> std::collections::VecDeque<bytes::Bytes> {
        wire.chunks(64 << 10)
            .map(bytes::Bytes::copy_from_slice)
            .collect()
    };
    let mut h = http::HeaderMap::new();
    h.insert("content-length", data.len().into());
    let spec = BodySpec::from_headers(
        &h,
        payload::PayloadMode::Sha256(signing::sha256(&data)),
        None,
    )
    .expect("spec");
    let input = frames(&data);
    let start = Instant::now();
    let (b, _) = VerifiedBody::new(Frames(input), spec, BodyLimits::default());
    assert_eq!(drain(b).1, None);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "plain body + x-amz-content-sha256: {:.0} MB/s",
        32.0 * 1.048_576 / secs
    );

    // Signed aws-chunked, 64 KiB chunks.
    let key = signing::SigningKey::derive(SK, "20240301", "eu-west-3", "s3");
    let scope = "20240301/eu-west-3/s3/aws4_request";
    let mut previous = [1u8; 32];
    let mut wire = Vec::with_capacity(data.len() + 4096);
    let mut chunks: Vec<&[u8]> = data.chunks(64 << 10).collect();
    chunks.push(&[]);
    for chunk in chunks {
        let sts = signing::chunk_string_to_sign(
            "20240301T120000Z",
            scope,
            &previous,
            &signing::sha256(chunk),
        );
        previous = key.sign(sts.as_bytes());
        wire.extend_from_slice(
            format!(
                "{:x};chunk-signature={}\r\n",
                chunk.len(),
                hex::encode(previous)
            )
            .as_bytes(),
        );
        if !chunk.is_empty() {
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
    }
    wire.extend_from_slice(b"\r\n");
    let signer = signing::ChunkSigner::new(key, "20240301T120000Z".into(), scope.into(), [1u8; 32]);
    let spec = BodySpec {
        framing: Framing::AwsChunked {
            signed: true,
            trailer: false,
        },
        chunk_signer: Some(signer),
        ..BodySpec::plain(Some(data.len() as u64))
    };
    let input = frames(&wire);
    let start = Instant::now();
    let (b, outcome) = VerifiedBody::new(Frames(input), spec, BodyLimits::default());
    let (out, err) = drain(b);
    assert_eq!((err, outcome.error()), (None, None));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "signed aws-chunked (64 KiB chunks, {} frames out): {:.0} MB/s",
        out.len(),
        32.0 * 1.048_576 / secs
    );

    let mut h = http::HeaderMap::new();
    h.insert("content-length", data.len().into());
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
    c.update(&data);
    h.insert(
        "x-amz-checksum-crc32c",
        HeaderValue::from_str(&c.finalize_base64()).expect("b64"),
    );
    let spec = BodySpec::from_headers(&h, payload::PayloadMode::Unsigned, None).expect("spec");
    let start = Instant::now();
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
    c.update(&data);
    let _ = c.finalize();
    println!(
        "  (CRC32C alone: {:.0} MB/s; SHA-256 alone: {:.0} MB/s)",
        32.0 * 1.048_576 / start.elapsed().as_secs_f64(),
        {
            let s = Instant::now();
            let _ = signing::sha256(&data);
            32.0 * 1.048_576 / s.elapsed().as_secs_f64()
        }
    );
    let start = Instant::now();
    let (b, _) = VerifiedBody::new(Frames(frames(&data)), spec, BodyLimits::default());
    assert_eq!(drain(b).1, None);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "UNSIGNED-PAYLOAD + CRC32C: {:.0} MB/s",
        32.0 * 1.048_576 / secs
    );
}
