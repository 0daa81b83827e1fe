//! The `Range` request header as S3 reads it (RFC 9110 byte ranges, one range only):
//! a syntactically invalid header is ignored and the whole object is served; a valid
//! range that starts past the end is `416 InvalidRange` with `Content-Range: bytes */N`.

/// What to serve for a `Range` header and an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: the whole object, 200.
    Whole,
    /// `start..=end`, both inside the object: 206.
    Part { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Resolves `header` against `size`.
pub fn resolve(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        // S3 serves multi-range requests as the whole object.
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Overflowing numbers are still valid syntax: they just lie past any object.
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => ByteRange::Whole,
        (true, false) => match num(last) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        (false, true) => match num(first) {
            None => ByteRange::Whole,
            Some(start) if start >= size => ByteRange::Unsatisfiable,
            Some(start) => ByteRange::Part {
                start,
                end: size - 1,
            },
        },
        (false, false) => match (num(first), num(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Part {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            _ => ByteRange::Whole,
        },
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_resolve_like_s3() {
        let r = |h: &str| resolve(Some(h), 100);
        assert_eq!(r("bytes=0-9"), ByteRange::Part { start: 0, end: 9 });
        assert_eq!(r("bytes=90-"), ByteRange::Part { start: 90, end: 99 });
        assert_eq!(r("bytes=-10"), ByteRange::Part { start: 90, end: 99 });
        assert_eq!(r("bytes=-1000"), ByteRange::Part { start: 0, end: 99 });
        assert_eq!(r("bytes=50-1000"), ByteRange::Part { start: 50, end: 99 });
        assert_eq!(r("bytes=100-"), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=100-200"), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=-0"), ByteRange::Unsatisfiable);
        assert_eq!(
            r("bytes=99999999999999999999999-"),
            ByteRange::Unsatisfiable
        );
        assert_eq!(r("bytes=9-3"), ByteRange::Whole);
        assert_eq!(r("bytes=a-b"), ByteRange::Whole);
        assert_eq!(r("bytes=--1"), ByteRange::Whole);
        assert_eq!(r("items=0-1"), ByteRange::Whole);
        assert_eq!(r("bytes=0-1,3-4"), ByteRange::Whole);
        assert_eq!(resolve(None, 100), ByteRange::Whole);
        assert_eq!(resolve(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), ByteRange::Unsatisfiable);
    }

    proptest! {
        #[test]
        fn any_header_resolves_inside_the_object(h in "\\PC{0,40}", size in 0u64..1_000_000) {
            match resolve(Some(&h), size) {
                ByteRange::Part { start, end } => prop_assert!(start <= end && end < size),
                ByteRange::Whole | ByteRange::Unsatisfiable => {}
            }
        }

        #[test]
        fn valid_ranges_are_exact(size in 1u64..1_000_000, a in 0u64..1_000_000, len in 1u64..1000) {
            let h = format!("bytes={}-{}", a, a + len - 1);
            match resolve(Some(&h), size) {
                ByteRange::Part { start, end } => { prop_assert_eq!(start, a); prop_assert_eq!(end, (a + len - 1).min(size - 1)); }
                ByteRange::Unsatisfiable => prop_assert!(a >= size),
                ByteRange::Whole => prop_assert!(false, "valid range ignored"),
            }
        }
    }
}
