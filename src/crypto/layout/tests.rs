use proptest::prelude::*;

use super::*;

const S: u32 = 4096;

#[test]
fn part_sizes_follow_the_grid() {
    assert_eq!(part_ciphertext_len(0, S), 32 + 16);
    assert_eq!(part_ciphertext_len(1, S), 32 + 1 + 16);
    assert_eq!(part_ciphertext_len(4096, S), 32 + 4096 + 16);
    assert_eq!(part_ciphertext_len(4097, S), 32 + 4097 + 32);
    assert_eq!(part_ciphertext_len(10, 1000), u64::MAX);
    assert_eq!(
        object_ciphertext_len(3 * 4096 + 5, 2, S),
        64 + 3 * 4096 + 5 + 4 * 16
    );
    assert_eq!(object_ciphertext_len(1, 0, S), u64::MAX);
}

#[test]
fn plaintext_len_rejects_impossible_sizes() {
    assert_eq!(object_plaintext_len(48, 1, S), Some(0));
    assert_eq!(object_plaintext_len(47, 1, S), None);
    // Between one full segment and a second non-empty one there is a gap of 16 sizes.
    let full = part_ciphertext_len(4096, S);
    assert_eq!(object_plaintext_len(full, 1, S), Some(4096));
    for c in full + 1..=full + 16 {
        assert_eq!(object_plaintext_len(c, 1, S), None, "{c}");
    }
    assert_eq!(object_plaintext_len(full + 17, 1, S), Some(4097));
    // Two parts cannot hold an empty or one-segment object.
    assert_eq!(object_plaintext_len(96, 2, S), None);
    assert_eq!(object_plaintext_len(64 + 4096 + 16, 2, S), None);
    assert_eq!(object_plaintext_len(100, 1, 3000), None);
}

#[test]
fn layout_rejects_inconsistent_parts() {
    assert!(ObjectLayout::new(S, 1, 5, 5).is_ok());
    assert!(ObjectLayout::new(S, 1, 5, 6).is_err());
    assert!(ObjectLayout::new(S, 0, 0, 0).is_err());
    assert!(ObjectLayout::new(S, 2, 4096, 4097).is_ok());
    assert!(
        ObjectLayout::new(S, 2, 4096, 4096).is_err(),
        "empty last part"
    );
    assert!(
        ObjectLayout::new(S, 2, 4000, 9000).is_err(),
        "part not a segment multiple"
    );
    assert!(ObjectLayout::new(S, 2, 0, 10).is_err());
    assert!(ObjectLayout::new(S, u32::MAX, u64::MAX / 2, u64::MAX).is_err());
}

#[test]
fn range_inside_one_segment_fetches_that_segment_and_its_header() {
    let l = ObjectLayout::single(S, 10_000).unwrap();
    let p = plan_range(&l, 5000, 5009).unwrap();
    assert_eq!(p.first_segment, 1);
    assert_eq!(p.cipher_start, 32 + 4096 + 16);
    assert_eq!(p.cipher_end_inclusive, 32 + 2 * (4096 + 16) - 1);
    assert_eq!(p.header_range, Some((0, 31)));
    assert_eq!((p.skip, p.take), (5000 - 4096, 10));
}

#[test]
fn plan_range_refuses_hand_built_invalid_layouts() {
    for l in [
        ObjectLayout {
            segment_size: 0,
            parts: 1,
            part_plain_len: 10,
            total_plain_len: 10,
        },
        ObjectLayout {
            segment_size: S,
            parts: 3,
            part_plain_len: 0,
            total_plain_len: 10,
        },
        ObjectLayout {
            segment_size: S,
            parts: 0,
            part_plain_len: 10,
            total_plain_len: 10,
        },
    ] {
        assert!(plan_range(&l, 0, 5).is_none());
    }
}

#[test]
fn range_in_first_segment_starts_at_the_header() {
    let l = ObjectLayout::single(S, 10_000).unwrap();
    let p = plan_range(&l, 0, 20_000).unwrap();
    assert_eq!((p.cipher_start, p.header_range), (0, None));
    assert_eq!(p.cipher_end_inclusive + 1, l.ciphertext_len());
    assert_eq!(p.plain_end_inclusive, 9_999);
    assert!(plan_range(&l, 10_000, 10_001).is_none());
    assert!(plan_range(&l, 5, 4).is_none());
    assert!(plan_range(&ObjectLayout::single(S, 0).unwrap(), 0, 0).is_none());
}

#[test]
fn range_across_parts_covers_the_later_header() {
    let l = ObjectLayout::new(S, 3, 8192, 8192 * 2 + 100).unwrap();
    let part_len = part_ciphertext_len(8192, S);
    let p = plan_range(&l, 8000, 8200).unwrap();
    assert_eq!(
        (p.first_part, p.first_segment, p.last_part, p.last_segment),
        (1, 1, 2, 0)
    );
    assert_eq!(p.cipher_start, 32 + 4096 + 16);
    assert_eq!(p.cipher_end_inclusive, part_len + 32 + 4096 + 16 - 1);
    assert_eq!(l.part_plain_range(3), Some((16384, 16483)));
    assert_eq!(l.part_plain_range(4), None);
    assert_eq!(l.part_cipher_start(3), 2 * part_len);
}

fn segment_sizes() -> impl Strategy<Value = u32> {
    (12u32..=20).prop_map(|log| 1u32 << log)
}

proptest! {
    #[test]
    fn sizes_invert_for_any_single_part(s in segment_sizes(), t in 0u64..(1 << 34)) {
        let c = object_ciphertext_len(t, 1, s);
        prop_assert_eq!(object_plaintext_len(c, 1, s), Some(t));
        prop_assert_eq!(c, part_ciphertext_len(t, s));
    }

    #[test]
    fn sizes_invert_for_any_multipart(s in segment_sizes(), n in 2u32..10_000, segs in 1u64..64, last in 1u64..(1 << 24)) {
        let p = segs * u64::from(s);
        let t = p * u64::from(n - 1) + last;
        let l = ObjectLayout::new(s, n, p, t).unwrap();
        let sum: u64 = (1..=n).map(|k| part_ciphertext_len(l.part_len(k), s)).sum();
        prop_assert_eq!(sum, object_ciphertext_len(t, n, s));
        prop_assert_eq!(object_plaintext_len(sum, n, s), Some(t));
    }

    #[test]
    fn plaintext_len_only_accepts_grid_sizes(s in segment_sizes(), n in 1u32..4, c in 0u64..(1 << 22)) {
        if let Some(t) = object_plaintext_len(c, n, s) {
            prop_assert_eq!(object_ciphertext_len(t, n, s), c);
        }
    }

    #[test]
    fn range_plans_stay_on_the_grid(n in 1u32..5, segs in 1u64..4, last in 1u64..20_000, a in any::<u64>(), b in any::<u64>()) {
        let p = segs * u64::from(S);
        let t = if n == 1 { last } else { p * u64::from(n - 1) + last };
        let l = ObjectLayout::new(S, n, if n == 1 { t } else { p }, t).unwrap();
        let (start, end) = (a % t, b % (t + 10));
        match plan_range(&l, start, end) {
            None => prop_assert!(start > end),
            Some(plan) => {
                prop_assert_eq!(plan.take, end.min(t - 1) - start + 1);
                prop_assert!(plan.cipher_end_inclusive < l.ciphertext_len());
                prop_assert!(plan.cipher_start <= plan.cipher_end_inclusive);
                prop_assert!(plan.skip < u64::from(S));
            }
        }
    }
}
