//! SigV2: the S3 documentation examples and strings to sign computed from the
//! documented layout.

use super::*;

const DOC_AK: &str = "AKIAIOSFODNN7EXAMPLE";
const DOC_SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn doc_store() -> CredentialStore {
    CredentialStore::new([(DOC_AK.to_string(), DOC_SK.to_string())])
}

fn hmac_sha1_b64(secret: &str, sts: &str) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(sts.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// 2007-03-27T19:36:42Z, the date of the S3 documentation's SigV2 examples.
const DOC_T: u64 = 1_175_024_202;

#[test]
fn sigv2_documentation_examples_verify() {
    let store = doc_store();
    let mut c = ctx(&store, at(DOC_T));
    c.vhost_bucket = Some("johnsmith");
    // "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg"
    let get = request(
        "GET",
        "http://johnsmith.s3.amazonaws.com/photos/puppy.jpg",
        &[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
        ],
    )
    .into_parts()
    .0;
    let v = verify(&get, &c);
    assert_eq!(
        v.as_ref().map(|v| v.method).ok(),
        Some(AuthMethod::SigV2Header),
        "{:?}",
        v.err()
    );
    // "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg"
    let put = request(
        "PUT",
        "http://johnsmith.s3.amazonaws.com/photos/puppy.jpg",
        &[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("content-type", "image/jpeg"),
            ("content-length", "94328"),
            ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg=",
            ),
        ],
    )
    .into_parts()
    .0;
    let c_put = VerifyContext {
        now: at(DOC_T + 6183),
        ..c
    };
    assert_eq!(code(verify(&put, &c_put)), "ok");
    // Query string: "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg"
    let uri = "http://johnsmith.s3.amazonaws.com/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620";
    let q = request("GET", uri, &[("host", "johnsmith.s3.amazonaws.com")])
        .into_parts()
        .0;
    let v = verify(&q, &c);
    assert_eq!(
        v.as_ref().map(|v| v.method).ok(),
        Some(AuthMethod::SigV2Presigned),
        "{:?}",
        v.err()
    );
    // The same URL with the '+' of the signature left unencoded, as some tools send it.
    let raw_plus = uri.replace("%2B", "+");
    let q2 = request("GET", &raw_plus, &[("host", "johnsmith.s3.amazonaws.com")])
        .into_parts()
        .0;
    assert_eq!(code(verify(&q2, &c)), "ok");
    let late = VerifyContext {
        now: at(1_175_139_621),
        ..c
    };
    assert_eq!(verify(&q, &late).err(), Some(AuthError::Expired));

    // Negative: each signed element changed.
    let mut p = clone_parts(&get);
    p.uri = "http://johnsmith.s3.amazonaws.com/photos/puppy.jpG"
        .parse()
        .expect("uri");
    assert_eq!(code(verify(&p, &c)), "SignatureDoesNotMatch");
    let wrong_bucket = VerifyContext {
        vhost_bucket: Some("johnsmitH"),
        ..c
    };
    assert_eq!(code(verify(&get, &wrong_bucket)), "SignatureDoesNotMatch");
    let mut p = clone_parts(&put);
    p.headers
        .insert("content-type", HeaderValue::from_static("image/png"));
    assert_eq!(code(verify(&p, &c_put)), "SignatureDoesNotMatch");
    let mut p = clone_parts(&get);
    p.headers
        .insert("x-amz-meta-a", HeaderValue::from_static("1"));
    assert_eq!(code(verify(&p, &c)), "SignatureDoesNotMatch");
    let mut p = clone_parts(&get);
    p.headers.insert(
        "authorization",
        HeaderValue::from_static("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMV="),
    );
    assert_eq!(code(verify(&p, &c)), "SignatureDoesNotMatch");
    let mut p = clone_parts(&get);
    p.headers.insert(
        "authorization",
        HeaderValue::from_static("AWS AKIAIOSFODNN7EXAMPLF:bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
    );
    assert_eq!(code(verify(&p, &c)), "InvalidAccessKeyId");
    let skewed = VerifyContext {
        now: at(DOC_T + 15 * 60 + 1),
        ..c
    };
    assert_eq!(code(verify(&get, &skewed)), "RequestTimeTooSkewed");
    let disabled = VerifyContext {
        allow_sigv2: false,
        ..c
    };
    assert_eq!(
        verify(&get, &disabled).err(),
        Some(AuthError::SigV2Disabled)
    );
    assert_eq!(code(verify(&q, &disabled)), "InvalidRequest");
}

#[test]
fn sigv2_amz_headers_and_sub_resources_are_signed() {
    let store = doc_store();
    let c = ctx(&store, at(DOC_T));
    // Computed here from the documented layout: x-amz-date replaces the Date line,
    // x-amz- headers sorted and lowercased with repeated values joined by ','.
    let sts = "PUT\n1B2M2Y8AsgTpgAmY7PhCfg==\ntext/plain\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-a:1,2\nx-amz-meta-b:x y\n/bucket/key?acl&versionId=7";
    let sig = hmac_sha1_b64(DOC_SK, sts);
    let auth = format!("AWS {DOC_AK}:{sig}");
    let parts = request(
        "PUT",
        "http://s3.example.com/bucket/key?versionId=7&acl&foo=bar",
        &[
            ("host", "s3.example.com"),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("content-type", "text/plain"),
            ("X-Amz-Meta-B", "  x y "),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "2"),
            ("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ("date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("authorization", &auth),
        ],
    )
    .into_parts()
    .0;
    let v = verify(&parts, &c);
    let Ok(v) = v else { panic!("{:?}", v.err()) };
    assert!(v.body.has_content_md5());
    // A signed sub-resource changed; an unsigned query parameter changed.
    let mut p = clone_parts(&parts);
    p.uri = "http://s3.example.com/bucket/key?versionId=8&acl&foo=bar"
        .parse()
        .expect("uri");
    assert_eq!(code(verify(&p, &c)), "SignatureDoesNotMatch");
    let mut p = clone_parts(&parts);
    p.uri = "http://s3.example.com/bucket/key?versionId=7&acl&foo=baz"
        .parse()
        .expect("uri");
    assert_eq!(code(verify(&p, &c)), "ok");
}
