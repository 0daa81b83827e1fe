//! `strip_client_auth`: what reaches the backend after verification.

use super::*;

#[test]
fn strip_removes_presigned_parameters_byte_exact() {
    let store = store();
    let req = request(
        "GET",
        "http://s3.example.com/bucket/key?list-type=2&prefix=a%2Fb+c&weird=%7e",
        &[("host", "s3.example.com")],
    );
    let mut parts = sign_v4(req, b"", at(T), Some(Duration::from_secs(60)));
    let Ok(v) = verify(&parts, &ctx(&store, at(T))) else {
        panic!("valid presigned URL refused")
    };
    strip_client_auth(&mut parts, &v);
    let q = parts.uri.query().unwrap_or_default();
    assert!(!q.contains("X-Amz-"), "{q}");
    // aws-sigv4 re-encodes the original pairs; what remains is exactly what was sent.
    assert_eq!(parts.uri.path(), "/bucket/key");
    assert!(q.starts_with("list-type=2&prefix="), "{q}");
}

#[test]
fn strip_handles_aws_chunked_headers() {
    let mut parts = request(
        "PUT",
        "http://s3.example.com/bucket/key?uploadId=x&partNumber=1",
        &[
            ("authorization", "x"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-date", "20240301T120000Z"),
            ("x-amz-security-token", "t"),
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("content-encoding", "aws-chunked, gzip"),
            ("content-length", "70"),
            ("x-amz-meta-keep", "yes"),
        ],
    )
    .into_parts()
    .0;
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-decoded-content-length",
        HeaderValue::from_static("11"),
    );
    h.insert(
        "x-amz-trailer",
        HeaderValue::from_static("x-amz-checksum-crc32"),
    );
    let body = BodySpec::from_headers(&h, payload::PayloadMode::StreamingUnsignedTrailer, None)
        .expect("spec");
    let v = Verified {
        access_key: AK.into(),
        method: AuthMethod::SigV4Header,
        body,
    };
    strip_client_auth(&mut parts, &v);
    for gone in [
        "authorization",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-decoded-content-length",
        "x-amz-trailer",
    ] {
        assert!(!parts.headers.contains_key(gone), "{gone}");
    }
    assert_eq!(parts.headers["content-encoding"], "gzip");
    assert_eq!(parts.headers["content-length"], "11");
    assert_eq!(parts.headers["x-amz-meta-keep"], "yes");
    assert_eq!(parts.uri.query(), Some("uploadId=x&partNumber=1"));

    let mut parts = request(
        "PUT",
        "http://h/b/k",
        &[("content-encoding", "aws-chunked")],
    )
    .into_parts()
    .0;
    strip_client_auth(&mut parts, &v);
    assert!(!parts.headers.contains_key("content-encoding"));
}

#[test]
fn strip_keeps_raw_query_pairs_for_sigv2() {
    let mut parts = request(
        "GET",
        "http://s3.example.com/b/k?AWSAccessKeyId=AK&response-content-type=a%2Fb&Expires=1&Signature=x%2By&x=%7E",
        &[],
    )
    .into_parts()
    .0;
    let v = Verified {
        access_key: "AK".into(),
        method: AuthMethod::SigV2Presigned,
        body: BodySpec::plain(None),
    };
    strip_client_auth(&mut parts, &v);
    assert_eq!(parts.uri.query(), Some("response-content-type=a%2Fb&x=%7E"));
    let mut parts = request(
        "GET",
        "http://s3.example.com/b/k?AWSAccessKeyId=AK&Expires=1&Signature=x",
        &[],
    )
    .into_parts()
    .0;
    strip_client_auth(&mut parts, &v);
    assert_eq!(parts.uri.query(), None);
    assert_eq!(parts.uri.path(), "/b/k");
}

#[test]
fn strip_keeps_raw_query_pairs_for_sigv4() {
    let mut parts = request(
        "GET",
        "http://s3.example.com/b/k%20x?a=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&b=%2f+&X-Amz-Credential=AK%2F20240301%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240301T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Security-Token=t&c",
        &[],
    )
    .into_parts()
    .0;
    let v = Verified {
        access_key: "AK".into(),
        method: AuthMethod::SigV4Presigned,
        body: BodySpec::plain(None),
    };
    strip_client_auth(&mut parts, &v);
    assert_eq!(parts.uri.path(), "/b/k%20x");
    assert_eq!(parts.uri.query(), Some("a=1&b=%2f+&c"));
    assert_eq!(
        parts.uri.authority().map(|a| a.as_str()),
        Some("s3.example.com")
    );
}
