//! Property tests for the `Range` header: structured near-valid headers built from the
//! grammar's own tokens (so mutations hit the interesting corners: overflowing numbers,
//! reversed bounds, multi-range, stray spaces), plus exact answers for valid forms.
//! 1,000 cases unless `PROPTEST_CASES` says otherwise.

use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("bytes=".to_string()),
        Just("bytes".to_string()),
        Just("=".to_string()),
        Just("-".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("+1".to_string()),
        Just("0x10".to_string()),
        Just("\u{0661}".to_string()),
        "[0-9]{1,6}",
        "\\PC{0,3}",
    ]
}

fn check_invariants(h: &str, size: u64) -> Result<(), TestCaseError> {
    match resolve(Some(h), size) {
        ByteRange::Part { start, end } => {
            prop_assert!(start <= end, "{h:?} on {size}: {start} > {end}");
            prop_assert!(end < size, "{h:?} on {size}: end {end} outside");
            prop_assert!(!h.contains(','), "multi-range {h:?} served as a part");
        }
        ByteRange::Unsatisfiable => prop_assert!(!h.contains(','), "multi-range {h:?} refused"),
        ByteRange::Whole => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_soup_headers_resolve_inside_the_object(
        parts in proptest::collection::vec(token(), 0..8),
        size in prop_oneof![Just(0u64), Just(1u64), 0u64..10_000, Just(u64::MAX)],
    ) {
        let h = parts.concat();
        check_invariants(&h, size)?;
        check_invariants(&format!("bytes={h}"), size)?;
    }

    #[test]
    fn mutated_valid_headers_resolve_inside_the_object(
        a in 0u64..5000, b in 0u64..5000, size in 0u64..5000,
        at in any::<prop::sample::Index>(), byte in any::<u8>(), delete in any::<bool>(),
    ) {
        let mut h = format!("bytes={a}-{b}").into_bytes();
        let i = at.index(h.len());
        if delete { h.remove(i); } else { h.insert(i, byte); }
        let h = String::from_utf8_lossy(&h).into_owned();
        check_invariants(&h, size)?;
    }

    #[test]
    fn suffix_ranges_take_the_last_bytes(n in 0u64..u64::MAX, size in 0u64..1_000_000) {
        let got = resolve(Some(&format!("bytes=-{n}")), size);
        let want = if n == 0 || size == 0 {
            ByteRange::Unsatisfiable
        } else {
            ByteRange::Part { start: size - n.min(size), end: size - 1 }
        };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn open_ended_ranges_run_to_the_end(a in 0u64..u64::MAX, size in 0u64..1_000_000) {
        let got = resolve(Some(&format!("bytes={a}-")), size);
        let want = if a >= size {
            ByteRange::Unsatisfiable
        } else {
            ByteRange::Part { start: a, end: size - 1 }
        };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn reversed_ranges_are_ignored(a in 1u64..u64::MAX, d in 1u64..1000, size in 0u64..1_000_000) {
        let b = a.saturating_sub(d);
        prop_assume!(b < a);
        prop_assert_eq!(resolve(Some(&format!("bytes={a}-{b}")), size), ByteRange::Whole);
    }

    #[test]
    fn multi_ranges_serve_the_whole_object(
        ranges in proptest::collection::vec((0u64..1000, 0u64..1000), 2..5), size in 0u64..2000,
    ) {
        let spec: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        prop_assert_eq!(resolve(Some(&format!("bytes={}", spec.join(","))), size), ByteRange::Whole);
    }
}
