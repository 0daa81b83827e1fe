use super::*;

const SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

#[test]
fn authorization_spacing_variants_parse() {
    for v in [
        format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature={SIG}"
        ),
        format!(
            "AWS4-HMAC-SHA256   Credential=AK/20130524/us-east-1/s3/aws4_request ,  SignedHeaders=host;x-amz-date ,Signature={SIG} "
        ),
        format!(
            "AWS4-HMAC-SHA256 Signature={SIG}, SignedHeaders=host;x-amz-date, Credential=AK/20130524/us-east-1/s3/aws4_request"
        ),
    ] {
        let a = parse_authorization(&v);
        let Ok(a) = a else { panic!("{v}: {a:?}") };
        assert_eq!(a.credential.access_key, "AK");
        assert_eq!(a.credential.region, "us-east-1");
        assert_eq!(a.signed_headers, "host;x-amz-date");
    }
}

#[test]
fn malformed_authorization_is_refused() {
    let bad = [
        "AWS4-HMAC-SHA256".to_string(),
        "AWS4-HMAC-SHA256Credential=x".to_string(),
        format!("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, Signature={SIG}"),
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"
            .to_string(),
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={SIG}"
        ),
    ];
    for v in bad {
        assert!(parse_authorization(&v).is_err(), "{v}");
    }
    assert_eq!(
        parse_authorization("AWS4-ECDSA-P256-SHA256 Credential=x"),
        Err(AuthError::UnsupportedAuthorization)
    );
}

#[test]
fn expires_bounds() {
    assert!(parse_expires("1").is_ok());
    assert!(parse_expires("604800").is_ok());
    for bad in ["0", "604801", "-1", "", "1.5", "abc"] {
        assert_eq!(
            parse_expires(bad).map_err(|e| e.s3_code()),
            Err("AuthorizationQueryParametersError"),
            "{bad}"
        );
    }
}

#[test]
fn access_keys_may_contain_slashes() {
    let c = Credential::parse("a/b/20130524/us-east-1/s3/aws4_request");
    assert_eq!(c.map(|c| c.access_key), Some("a/b"));
}
