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

    /// The fast path (a path of unreserved bytes and `/` is its own canonical form)
    /// agrees with decoding and encoding again, for paths made mostly of those bytes.
    #[test]
    fn canonical_uri_fast_path_agrees_with_decode_and_encode(path in "/[A-Za-z0-9._~/%+ -]{0,60}") {
        let slow = uri_encode(&percent_decode(path.as_bytes()).collect::<Vec<u8>>(), true);
        prop_assert_eq!(canonical_uri(&path), slow);
    }

    /// Header values normalise as SigV4's trimall says, byte for byte like the plain
    /// one-byte-at-a-time rule.
    #[test]
    fn header_values_normalise_like_the_byte_rule(value in proptest::collection::vec(
        prop_oneof![Just(b' '), Just(b'\t'), Just(b'\n'), Just(b'a'), Just(b','), any::<u8>()], 0..80)) {
        let mut fast = Vec::new();
        push_normalized_value(&mut fast, &value);
        let mut by_byte = Vec::new();
        let mut previous_blank = false;
        for &b in value.trim_ascii() {
            let blank = b == b' ' || b == b'\t';
            if !(blank && previous_blank) {
                by_byte.push(if blank { b' ' } else { b });
            }
            previous_blank = blank;
        }
        prop_assert_eq!(fast, by_byte);
    }
}
