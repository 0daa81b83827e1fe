//! Property tests for SigV4 canonicalisation: URI encoding emits only unreserved
//! characters and `%XX`, decoding inverts it, query pairs survive a round trip, and the
//! canonical query is sorted whatever order pairs arrive in. 1,000 cases unless
//! `PROPTEST_CASES` says otherwise.

use percent_encoding::percent_decode;
use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

fn only_unreserved_or_escapes(s: &str, keep_slash: bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |x: u8| x.is_ascii_digit() || (b'A'..=b'F').contains(&x);
            if i + 2 >= b.len() {
                return false;
            }
            if !(hex(b[i + 1]) && hex(b[i + 2])) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-._~".contains(&c) || (keep_slash && c == b'/')) {
            return false;
        }
        i += 1;
    }
    true
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn uri_encode_is_strict_and_decodes_back(bytes in proptest::collection::vec(any::<u8>(), 0..200), keep_slash in any::<bool>()) {
        let enc = uri_encode(&bytes, keep_slash);
        prop_assert!(only_unreserved_or_escapes(&enc, keep_slash), "{enc}");
        let dec: Vec<u8> = percent_decode(enc.as_bytes()).collect();
        prop_assert_eq!(dec, bytes);
    }

    #[test]
    fn canonical_uri_never_panics_and_keeps_the_decoded_path(path in "/\\PC{0,200}") {
        let c = canonical_uri(&path);
        prop_assert!(only_unreserved_or_escapes(&c, true), "{c}");
        let a: Vec<u8> = percent_decode(c.as_bytes()).collect();
        let b: Vec<u8> = percent_decode(path.as_bytes()).collect();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn query_pairs_round_trip_and_sort(
        pairs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..20)),
            0..10,
        ),
    ) {
        let raw: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", uri_encode(n, false), uri_encode(v, false)))
            .collect();
        let raw = raw.join("&");
        let parsed = parse_query(&raw);
        prop_assert_eq!(parsed.len(), pairs.len());
        for (p, (n, v)) in parsed.iter().zip(&pairs) {
            prop_assert_eq!(&p.name, n);
            prop_assert_eq!(&p.value, v);
        }
        let canonical = canonical_query(&parsed, |_| true);
        let segs: Vec<&str> = if canonical.is_empty() { Vec::new() } else { canonical.split('&').collect() };
        let mut sorted = segs.clone();
        sorted.sort_unstable_by(|a, b| {
            let (an, av) = a.split_once('=').unwrap_or((a, ""));
            let (bn, bv) = b.split_once('=').unwrap_or((b, ""));
            (an, av).cmp(&(bn, bv))
        });
        prop_assert_eq!(segs, sorted);
    }

    #[test]
    fn arbitrary_queries_never_panic(raw in "\\PC{0,300}") {
        let parsed = parse_query(&raw);
        let _ = canonical_query(&parsed, |p| !p.name_is("X-Amz-Signature"));
        for p in &parsed {
            let _ = p.value_str();
        }
    }
}
