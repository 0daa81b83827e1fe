//! Property tests for request routing: any path, query and Host a client can put on
//! the wire routes to a bucket and key or to an S3 error, never a panic; routed keys
//! are the percent-decoded path, bounded and UTF-8. 1,000 cases unless
//! `PROPTEST_CASES` says otherwise.

use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2F".to_string()),
        Just("%FF".to_string()),
        Just("%00".to_string()),
        Just("%".to_string()),
        Just("//".to_string()),
        Just("bucket".to_string()),
        "[a-z0-9.-]{1,10}",
        "[!-~]{1,10}",
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::PUT),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::HEAD),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn routing_never_panics(
        pieces in proptest::collection::vec(path_piece(), 0..8),
        query in "[a-zA-Z0-9=&%+.-]{0,60}",
        host in prop_oneof![Just("b.s3.example.com".to_string()), Just("s3.example.com:443".to_string()), "[!-~]{0,30}"],
        m in method(),
    ) {
        let path = format!("/{}", pieces.concat());
        let uri_text = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let Ok(uri) = uri_text.parse::<http::Uri>() else { return Ok(()) };
        let mut headers = HeaderMap::new();
        if let Ok(h) = HeaderValue::from_str(&host) {
            headers.insert(http::header::HOST, h);
        }
        let domains = vec!["s3.example.com".to_string()];
        if let Ok(t) = route(&m, &uri, &headers, &domains) {
            if let Some(k) = &t.key {
                prop_assert!(k.len() <= 1024);
                prop_assert!(!k.is_empty());
            }
            let _ = classify(&m, &t, &headers);
            let _ = t.resource();
        }
    }

    #[test]
    fn keys_are_the_decoded_path(key in "[a-zA-Z0-9/._ -]{1,100}") {
        let encoded = crate::auth::canonical::uri_encode(key.as_bytes(), true);
        let uri: http::Uri = format!("/bucket/{encoded}").parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let t = route(&Method::GET, &uri, &HeaderMap::new(), &[]);
        let t = t.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.bucket.as_deref(), Some("bucket"));
        prop_assert_eq!(t.key.as_deref(), Some(key.as_str()));
    }
}
