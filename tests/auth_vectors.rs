//! Public SigV4 test vectors run against sealgate's verifier: the aws-c-auth signing
//! suite (`tests/vectors/sigv4/v4/`) and the S3 documentation's worked examples
//! (`tests/vectors/sigv4/s3-doc-examples.json`). See `tests/vectors/sigv4/NOTICE`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame};
use sealgate::auth::body::{BodyLimits, BodyOutcome, VerifiedBody};
use sealgate::auth::canonical::uri_encode;
use sealgate::auth::chunked::ChunkedDecoder;
use sealgate::auth::signing::{self, ChunkSigner, SigningKey};
use sealgate::auth::{
    AuthError, AuthMethod, ChecksumAlgorithm, CredentialStore, DEFAULT_MAX_SKEW, VerifyContext,
    date, sigv4, verify,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sigv4")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Percent-encodes what `http::Uri` cannot carry (spaces, non-ASCII), as a client would.
fn encode_raw_target(target: &str) -> String {
    let mut out = String::new();
    for b in target.bytes() {
        if b <= b' ' || b >= 0x7f {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Parses an HTTP/1.1 message of the aws-c-auth suite into request parts and body.
fn parse_http(text: &str) -> (Parts, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = rest.strip_suffix(" HTTP/1.1").expect("version");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: the continuation joins the previous value.
            let last = headers.last_mut().expect("folded line follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut b = http::Request::builder()
        .method(method)
        .uri(encode_raw_target(target));
    for (n, v) in &headers {
        b = b.header(n.as_str(), v.as_str());
    }
    (
        b.body(()).expect("request").into_parts().0,
        body.as_bytes().to_vec(),
    )
}

/// Whether generic SigV4 path normalisation (dot segments, duplicate slashes) would
/// change this path; S3 never normalises, so such `normalize: true` cases expect a
/// canonical URI S3 does not compute.
fn normalization_changes(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    segments
        .iter()
        .enumerate()
        .any(|(i, s)| *s == "." || *s == ".." || (s.is_empty() && i + 1 < segments.len()))
}

fn flip_host_byte(parts: &mut Parts) {
    let host = parts.headers["host"].to_str().expect("host").to_string();
    let mut bytes = host.into_bytes();
    bytes[0] ^= 0x01;
    parts
        .headers
        .insert("host", HeaderValue::from_bytes(&bytes).expect("host"));
}

#[test]
fn aws_c_auth_suite() {
    let dir = vectors_dir().join("v4");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("v4 dir")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 38);
    let (mut checked, mut skipped) = (0, Vec::new());
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let context: Value =
            serde_json::from_str(&read(&case.join("context.json"))).expect("context");
        let secret = context["credentials"]["secret_access_key"]
            .as_str()
            .expect("secret");
        let normalize = context["normalize"].as_bool().unwrap_or(false);
        let sign_body = context["sign_body"].as_bool().unwrap_or(false);
        let omit_token = context["omit_session_token"].as_bool().unwrap_or(false);
        for variant in ["header", "query"] {
            let (mut parts, body) =
                parse_http(&read(&case.join(format!("{variant}-signed-request.txt"))));
            if normalize && normalization_changes(parts.uri.path()) {
                // Generic (non-S3) path normalisation: S3 keeps `.`/`..`/`//` in keys.
                skipped.push(format!("{name}/{variant}"));
                continue;
            }
            if variant == "query" && omit_token {
                // The signer left X-Amz-Security-Token out of the canonical query, which
                // S3 (and this verifier) always includes.
                skipped.push(format!("{name}/{variant}"));
                continue;
            }
            let body_hash = if sign_body {
                signing::sha256_hex(&body)
            } else {
                signing::EMPTY_SHA256_HEX.to_string()
            };
            let details = if variant == "header" {
                sigv4::header_details(&parts, secret, None)
            } else {
                sigv4::presigned_details(&parts, secret, Some(&body_hash))
            };
            let d = details.unwrap_or_else(|e| panic!("{name}/{variant}: {e}"));
            let expected_cr = read(&case.join(format!("{variant}-canonical-request.txt")));
            assert_eq!(
                String::from_utf8_lossy(&d.canonical_request),
                expected_cr,
                "{name}/{variant}: canonical request"
            );
            let expected_sts = read(&case.join(format!("{variant}-string-to-sign.txt")));
            assert_eq!(
                d.string_to_sign, expected_sts,
                "{name}/{variant}: string to sign"
            );
            let expected_sig = read(&case.join(format!("{variant}-signature.txt")));
            assert_eq!(
                hex::encode(d.expected),
                expected_sig.trim(),
                "{name}/{variant}: signature"
            );
            assert!(d.matches(), "{name}/{variant}: provided signature accepted");

            flip_host_byte(&mut parts);
            let d = if variant == "header" {
                sigv4::header_details(&parts, secret, None)
            } else {
                sigv4::presigned_details(&parts, secret, Some(&body_hash))
            }
            .expect("details");
            assert!(
                !d.matches(),
                "{name}/{variant}: accepted after flipping a host byte"
            );
            checked += 1;
        }
    }
    // 38 cases × 2 variants, less 6 normalising cases × 2 and one token-omitting query.
    assert_eq!(skipped.len(), 13, "skipped: {skipped:?}");
    assert_eq!(checked, 63);
}

// --- S3 documentation examples -----------------------------------------------------

fn doc() -> Value {
    serde_json::from_str(&read(&vectors_dir().join("s3-doc-examples.json"))).expect("json")
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn doc_store(doc: &Value) -> CredentialStore {
    let c = &doc["credentials"];
    CredentialStore::new([(
        s(&c["access_key_id"]).to_string(),
        s(&c["secret_access_key"]).to_string(),
    )])
}

fn secret(doc: &Value) -> String {
    s(&doc["credentials"]["secret_access_key"]).to_string()
}

fn time_of(case: &Value) -> SystemTime {
    date::parse_amz_date(s(&case["timestamp"])).expect("timestamp")
}

fn ctx(store: &CredentialStore, now: SystemTime) -> VerifyContext<'_> {
    VerifyContext {
        credentials: store,
        now,
        max_skew: DEFAULT_MAX_SKEW,
        allow_sigv2: false,
        vhost_bucket: None,
    }
}

fn body_of(v: &Value) -> Vec<u8> {
    match s(&v["kind"]) {
        "empty" => Vec::new(),
        "utf8" => s(&v["value"]).as_bytes().to_vec(),
        "repeat" => {
            let byte = s(&v["byte"]).as_bytes()[0];
            vec![byte; usize::try_from(v["count"].as_u64().expect("count")).expect("fits")]
        }
        other => panic!("body kind {other}"),
    }
}

/// Request parts from a case's `request` (decoded path and query) plus extra headers.
fn parts_of(request: &Value, extra: &[(&str, String)]) -> Parts {
    let path = uri_encode(s(&request["path"]).as_bytes(), true).replace("%24", "$");
    let query: Vec<String> = request["query"]
        .as_array()
        .expect("query")
        .iter()
        .map(|kv| {
            let (n, v) = (s(&kv[0]), s(&kv[1]));
            if v.is_empty() {
                uri_encode(n.as_bytes(), false)
            } else {
                format!(
                    "{}={}",
                    uri_encode(n.as_bytes(), false),
                    uri_encode(v.as_bytes(), false)
                )
            }
        })
        .collect();
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let mut b = http::Request::builder()
        .method(s(&request["method"]))
        .uri(target);
    for h in request["headers"].as_array().expect("headers") {
        b = b.header(s(&h[0]), s(&h[1]));
    }
    for (n, v) in extra {
        b = b.header(*n, v.as_str());
    }
    b.body(()).expect("request").into_parts().0
}

fn case<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("case {name}"))
}

struct Frames(VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// Streams `wire`, cut at `cuts`, through a VerifiedBody; returns what it released.
fn stream(
    spec: sealgate::auth::BodySpec,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, BodyOutcome, bool) {
    let mut frames = VecDeque::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&wire.len())) {
        let c = c.min(wire.len()).max(start);
        frames.push_back(Bytes::copy_from_slice(&wire[start..c]));
        start = c;
    }
    let (mut body, outcome) = VerifiedBody::new(Frames(frames), spec, BodyLimits::default());
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return (out, outcome, true),
            Poll::Ready(Some(Ok(f))) => out.extend_from_slice(&f.into_data().unwrap_or_default()),
            Poll::Ready(Some(Err(_))) => return (out, outcome, false),
            Poll::Pending => panic!("never pends"),
        }
    }
}

fn every_byte(len: usize) -> Vec<usize> {
    (1..len).collect()
}

#[test]
fn s3_doc_signing_keys() {
    let doc = doc();
    for (scope, key_hex) in doc["signing_key_hex"].as_object().expect("keys") {
        let parts: Vec<&str> = scope.split('/').collect();
        let key = SigningKey::derive(&secret(&doc), parts[0], parts[1], parts[2]);
        assert_eq!(hex::encode(key.expose_for_tests()), s(key_hex), "{scope}");
    }
}

#[test]
fn s3_doc_authorization_header_cases() {
    let doc = doc();
    let store = doc_store(&doc);
    for name in [
        "get-object-range",
        "put-object-single-chunk",
        "get-bucket-lifecycle",
        "list-objects",
    ] {
        let c = case(&doc, name);
        let auth = s(&c["authorization"]).to_string();
        let parts = parts_of(&c["request"], &[("authorization", auth.clone())]);
        let d = sigv4::header_details(&parts, &secret(&doc), None).expect("details");
        assert_eq!(
            String::from_utf8_lossy(&d.canonical_request),
            s(&c["canonical_request"]),
            "{name}"
        );
        assert_eq!(d.string_to_sign, s(&c["string_to_sign"]), "{name}");
        assert_eq!(hex::encode(d.expected), s(&c["signature"]), "{name}");
        let now = time_of(c);
        let v = verify(&parts, &ctx(&store, now)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.method, AuthMethod::SigV4Header);
        assert_eq!(v.access_key, "AKIAIOSFODNN7EXAMPLE");

        // The AWS page prints the header without spaces after the commas: same result.
        let compact = auth.replace(", ", ",");
        let p = parts_of(&c["request"], &[("authorization", compact)]);
        assert!(
            verify(&p, &ctx(&store, now)).is_ok(),
            "{name}: compact form"
        );

        // The body, whole and one byte at a time.
        let body = body_of(&c["request"]["body"]);
        for cuts in [vec![], every_byte(body.len())] {
            let (out, outcome, clean) = stream(v.body.clone(), &body, &cuts);
            assert!(
                clean && outcome.error().is_none(),
                "{name}: {:?}",
                outcome.error()
            );
            assert_eq!(out, body);
        }
        if !body.is_empty() {
            let mut bad = body.clone();
            bad[0] ^= 1;
            let (out, outcome, clean) = stream(v.body.clone(), &bad, &[]);
            assert!(!clean && out.is_empty(), "{name}: bad body released");
            assert_eq!(outcome.error(), Some(AuthError::ContentSha256Mismatch));
        }

        // One flipped signature digit.
        let sig = s(&c["signature"]);
        let flipped = auth.replace(sig, &flip_hex(sig, 10));
        let p = parts_of(&c["request"], &[("authorization", flipped)]);
        assert_eq!(
            verify(&p, &ctx(&store, now)).err(),
            Some(AuthError::SignatureMismatch),
            "{name}"
        );
    }
}

fn flip_hex(sig: &str, at: usize) -> String {
    let mut b = sig.as_bytes().to_vec();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).expect("hex")
}

#[test]
fn s3_doc_presigned_url() {
    let doc = doc();
    let store = doc_store(&doc);
    let c = case(&doc, "presigned-get-object");
    let url = s(&c["url"]);
    let target = url
        .strip_prefix("https://examplebucket.s3.amazonaws.com")
        .expect("url");
    let build = |target: &str| {
        http::Request::builder()
            .method("GET")
            .uri(target)
            .header("host", "examplebucket.s3.amazonaws.com")
            .body(())
            .expect("request")
            .into_parts()
            .0
    };
    let parts = build(target);
    let d = sigv4::presigned_details(&parts, &secret(&doc), None).expect("details");
    assert_eq!(
        String::from_utf8_lossy(&d.canonical_request),
        s(&c["canonical_request"])
    );
    assert_eq!(d.string_to_sign, s(&c["string_to_sign"]));
    assert_eq!(hex::encode(d.expected), s(&c["signature"]));
    let t = time_of(c);
    let v = verify(&parts, &ctx(&store, t + Duration::from_secs(86_400))).expect("accepted");
    assert_eq!(v.method, AuthMethod::SigV4Presigned);
    assert!(!v.body.has_payload_sha256(), "UNSIGNED-PAYLOAD");
    assert_eq!(
        verify(&parts, &ctx(&store, t + Duration::from_secs(86_401))).err(),
        Some(AuthError::Expired)
    );
    let sig = s(&c["signature"]);
    let p = build(&target.replace(sig, &flip_hex(sig, 63)));
    assert_eq!(
        verify(&p, &ctx(&store, t)).err(),
        Some(AuthError::SignatureMismatch)
    );
    let p = build(&target.replace("test.txt", "test.txT"));
    assert_eq!(
        verify(&p, &ctx(&store, t)).err(),
        Some(AuthError::SignatureMismatch)
    );
}

/// The wire bytes of an aws-chunked case, built from its chunks and trailer.
fn framed(c: &Value) -> Vec<u8> {
    let mut wire = Vec::new();
    for chunk in c["chunks"].as_array().expect("chunks") {
        wire.extend_from_slice(s(&chunk["chunk_header_line"]).as_bytes());
        wire.extend_from_slice(b"\r\n");
        let data = body_of(&chunk["data"]);
        if !data.is_empty() {
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
        }
    }
    if let Some(t) = c.get("trailer") {
        for h in t["headers"].as_array().expect("trailer headers") {
            wire.extend_from_slice(format!("{}:{}\r\n", s(&h[0]), s(&h[1])).as_bytes());
        }
        wire.extend_from_slice(
            format!("x-amz-trailer-signature:{}\r\n", s(&t["signature"])).as_bytes(),
        );
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

#[test]
fn s3_doc_aws_chunked_uploads() {
    let doc = doc();
    let store = doc_store(&doc);
    for name in ["put-object-chunked", "put-object-chunked-with-trailer"] {
        let c = case(&doc, name);
        let wire = framed(c);
        let fb = &c["framed_body"];
        assert_eq!(
            Some(wire.len() as u64),
            fb["length"].as_u64(),
            "{name}: framed length"
        );
        assert_eq!(
            signing::sha256_hex(&wire),
            s(&fb["sha256"]),
            "{name}: framed sha256"
        );
        let mut extra = vec![("authorization", s(&c["seed"]["authorization"]).to_string())];
        let has_length = c["request"]["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h[0] == "Content-Length");
        if !has_length {
            extra.push(("content-length", wire.len().to_string()));
        }
        let parts = parts_of(&c["request"], &extra);
        let d = sigv4::header_details(&parts, &secret(&doc), None).expect("details");
        assert_eq!(
            String::from_utf8_lossy(&d.canonical_request),
            s(&c["seed"]["canonical_request"])
        );
        assert_eq!(d.string_to_sign, s(&c["seed"]["string_to_sign"]));
        assert_eq!(hex::encode(d.expected), s(&c["seed"]["signature"]));
        let now = time_of(c);
        let v = verify(&parts, &ctx(&store, now)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.body.is_aws_chunked());
        assert_eq!(v.body.decoded_length(), Some(66_560));
        let expected = vec![b'a'; 66_560];

        // Whole, one byte at a time, and cut inside the first and second chunk headers.
        let second_header = wire
            .windows(4)
            .position(|w| w == b"400;")
            .expect("second header");
        let splits = [
            vec![],
            every_byte(wire.len()),
            vec![3],
            vec![40, second_header + 2, second_header + 50],
        ];
        for cuts in &splits {
            let (out, outcome, clean) = stream(v.body.clone(), &wire, cuts);
            assert!(clean, "{name} cuts {}: {:?}", cuts.len(), outcome.error());
            assert_eq!(out.len(), expected.len());
            assert!(out == expected);
            if c.get("trailer").is_some() {
                assert_eq!(
                    outcome.checksum(),
                    Some((ChecksumAlgorithm::Crc32c, "sOO8/Q==".to_string()))
                );
            }
        }

        // Mutations: a data byte, each chunk signature, the trailer value and signature.
        let mut mutants: Vec<(String, Vec<u8>)> = Vec::new();
        let mut m = wire.clone();
        let first_data = wire.iter().position(|&b| b == b'\n').expect("header end") + 1;
        m[first_data + 100] = b'b';
        mutants.push(("data byte".into(), m));
        for chunk in c["chunks"].as_array().expect("chunks") {
            let sig = s(&chunk["signature"]);
            mutants.push((
                format!("chunk signature {sig}"),
                replace(&wire, sig, &flip_hex(sig, 5)),
            ));
        }
        if let Some(t) = c.get("trailer") {
            mutants.push((
                "trailer value".into(),
                replace(&wire, "sOO8/Q==", "sOO8/A=="),
            ));
            let sig = s(&t["signature"]);
            mutants.push((
                "trailer signature".into(),
                replace(&wire, sig, &flip_hex(sig, 0)),
            ));
            let errata = s(&c["known_doc_errata"][0]["value_quoted_by_third_parties"]);
            mutants.push(("doc errata signature".into(), replace(&wire, sig, errata)));
        }
        for (what, m) in mutants {
            let (out, outcome, clean) = stream(v.body.clone(), &m, &[]);
            assert!(!clean, "{name}: {what} accepted");
            assert!(
                out.len() < expected.len(),
                "{name}: {what}: final data released"
            );
            assert_eq!(
                outcome.error(),
                Some(AuthError::SignatureMismatch),
                "{name}: {what}"
            );
        }
        // A decoded length that disagrees with the chunks.
        let short = parts_of(&c["request"], &extra);
        let mut lying = short;
        lying.headers.insert(
            HeaderName::from_static("x-amz-decoded-content-length"),
            HeaderValue::from_static("66561"),
        );
        // The header is signed, so the lie is a signature mismatch.
        assert_eq!(
            verify(&lying, &ctx(&store, now)).err(),
            Some(AuthError::SignatureMismatch)
        );
    }
}

fn replace(wire: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = wire
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not found"));
    let mut out = wire[..at].to_vec();
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&wire[at + from.len()..]);
    out
}

#[test]
fn aws_c_auth_trailing_headers_signature() {
    let doc = doc();
    let c = case(&doc, "aws-c-auth-chunked-trailing-headers");
    let key = SigningKey::derive(&secret(&doc), "20130524", "us-east-1", "s3");
    let seed = signing::parse_signature_hex(s(&c["seed"]["signature"])).expect("seed");
    let signer = ChunkSigner::new(
        key,
        s(&c["timestamp"]).into(),
        "20130524/us-east-1/s3/aws4_request".into(),
        seed,
    );
    let trailer = &c["trailer"];
    let canonical: Vec<(String, String)> = trailer["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| (s(&h[0]).to_string(), s(&h[1]).to_string()))
        .collect();
    assert_eq!(
        sealgate::auth::chunked::canonical_trailers(&canonical),
        s(&trailer["canonical_trailers"]).as_bytes()
    );
    let wire = framed(c);
    for cuts in [
        vec![wire.len()],
        vec![1, 2, 3, 65_600, 66_700, wire.len() - 30],
    ] {
        let mut d = ChunkedDecoder::new(Some(signer.clone()), true, 1 << 20);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in &cuts {
            d.decode(Bytes::copy_from_slice(&wire[start..cut]), &mut out)
                .expect("decodes");
            start = cut;
        }
        d.decode(Bytes::copy_from_slice(&wire[start..]), &mut out)
            .expect("decodes");
        d.finish().expect("complete");
        assert_eq!(out.concat().len(), 66_560);
        assert_eq!(d.trailers(), canonical.as_slice());
    }
    let sig = s(&trailer["signature"]);
    let bad = replace(&wire, "2nd", "2ND");
    let mut d = ChunkedDecoder::new(Some(signer.clone()), true, 1 << 20);
    let mut out = Vec::new();
    assert_eq!(
        d.decode(Bytes::from(bad), &mut out),
        Err(AuthError::SignatureMismatch)
    );
    let bad = replace(&wire, sig, &flip_hex(sig, 63));
    let mut d = ChunkedDecoder::new(Some(signer), true, 1 << 20);
    assert_eq!(
        d.decode(Bytes::from(bad), &mut out),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn s3_doc_post_policy_signature() {
    let doc = doc();
    let c = case(&doc, "post-object-policy");
    let key = SigningKey::derive(&secret(&doc), "20151229", "us-east-1", "s3");
    assert_eq!(
        hex::encode(key.expose_for_tests()),
        s(&c["signing_key_hex"])
    );
    let sig = key.sign(s(&c["policy_base64"]).as_bytes());
    assert_eq!(hex::encode(sig), s(&c["signature"]));
    let mut tampered = s(&c["policy_base64"]).to_string();
    tampered.push('=');
    assert_ne!(
        hex::encode(key.sign(tampered.as_bytes())),
        s(&c["signature"])
    );
}
