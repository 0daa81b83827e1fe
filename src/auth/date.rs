//! Request timestamps: the ISO 8601 basic form SigV4 uses (`20130524T000000Z`), the
//! HTTP date of `Date` headers (SigV2 and SigV4 without `x-amz-date`), and the skew
//! check that stops replay of captured requests outside a short window.

use std::time::{Duration, SystemTime};

use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Parses `YYYYMMDDTHHMMSSZ`. Read by hand (every signed request carries one); the
/// calendar checks are the `time` crate's, and a test holds the result to its
/// format-description parser.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u16> {
        b.get(from..to)?.iter().try_fold(0u16, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
        })
    };
    let small = |from: usize| number(from, from + 2).and_then(|n| u8::try_from(n).ok());
    let month = Month::try_from(small(4)?).ok()?;
    let date = Date::from_calendar_date(i32::from(number(0, 4)?), month, small(6)?).ok()?;
    let time = Time::from_hms(small(9)?, small(11)?, small(13)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().into())
}

/// Parses an RFC 1123 HTTP date, `Fri, 24 May 2013 00:00:00 GMT` (the only form S3
/// clients send; `+0000` is accepted too since some SigV2 clients use it).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let gmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    if let Ok(t) = PrimitiveDateTime::parse(s, gmt) {
        return Some(t.assume_utc().into());
    }
    let offset = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s, offset).ok().map(Into::into)
}

/// Formats as `YYYYMMDDTHHMMSSZ`. Every signed request formats one (the backend
/// signature, the verifier's request date), so digits are written directly rather than
/// through a format description.
pub fn format_amz_date(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    let Ok(year) = u32::try_from(t.year()) else {
        return String::new();
    };
    if year > 9999 {
        return String::new();
    }
    let mut out = String::with_capacity(16);
    for (value, width) in [
        (year, 4),
        (u32::from(u8::from(t.month())), 2),
        (u32::from(t.day()), 2),
    ] {
        push_digits(&mut out, value, width);
    }
    out.push('T');
    for value in [t.hour(), t.minute(), t.second()] {
        push_digits(&mut out, u32::from(value), 2);
    }
    out.push('Z');
    out
}

/// `value` as exactly `width` decimal digits (zero-padded; `value` < 10^width).
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Absolute difference between two instants.
pub fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_instant() {
        let a = parse_amz_date("20130524T000000Z");
        let b = parse_http_date("Fri, 24 May 2013 00:00:00 GMT");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(parse_http_date("Fri, 24 May 2013 00:00:00 +0000"), a);
        assert_eq!(a.map(format_amz_date).as_deref(), Some("20130524T000000Z"));
    }

    /// The direct formatting agrees with the `time` crate's format description on any
    /// instant from 1970 to 9999, and round-trips through the parser.
    #[test]
    fn formatting_matches_the_format_description() {
        let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
        const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        let picks = (0..10_000u64).map(|i| i.wrapping_mul(2_654_435_761) % (LAST + 1));
        for secs in picks.chain([0, 1, 59, 86_399, 951_782_400, LAST]) {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let expected = OffsetDateTime::from(t).format(fmt).unwrap_or_default();
            assert_eq!(format_amz_date(t), expected, "{secs}");
            assert_eq!(parse_amz_date(&expected), Some(t), "{secs}");
        }
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "20130524",
            "20130524T000000",
            "2013-05-24T00:00:00Z",
            "20131324T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }

    fn parse_with_format_description(s: &str) -> Option<SystemTime> {
        let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
        PrimitiveDateTime::parse(s, fmt)
            .ok()
            .map(|t| t.assume_utc().into())
    }

    proptest::proptest! {
        /// The hand parser accepts and refuses exactly what the format description
        /// does: well-formed shapes with any digits (invalid months, days, hours,
        /// leap seconds), and arbitrary strings.
        #[test]
        fn parsing_matches_the_format_description(
            s in proptest::prop_oneof![
                "[0-9]{8}T[0-9]{6}Z",
                "(19|20)[0-9]{2}(0[0-9]|1[0-3])[0-3][0-9]T[0-2][0-9][0-6][0-9][0-6][0-9]Z",
                ".{0,18}",
            ]
        ) {
            proptest::prop_assert_eq!(parse_amz_date(&s), parse_with_format_description(&s));
        }
    }

    #[test]
    fn distance_is_symmetric() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let u = SystemTime::UNIX_EPOCH + Duration::from_secs(40);
        assert_eq!(distance(t, u), Duration::from_secs(60));
        assert_eq!(distance(u, t), Duration::from_secs(60));
    }
}
