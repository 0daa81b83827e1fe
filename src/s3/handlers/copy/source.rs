//! The copy source as a client names it: the `x-amz-copy-source` header, its
//! conditional headers, and `x-amz-copy-source-range`, parsed and checked as S3 does.

use http::header::HeaderMap;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::rekey::{ObjectRef, SourceObject};
use crate::s3::error::S3Error;
use crate::s3::headers::X_AMZ_COPY_SOURCE;

pub const X_AMZ_COPY_SOURCE_RANGE: &str = "x-amz-copy-source-range";
const IF_MATCH: &str = "x-amz-copy-source-if-match";
const IF_NONE_MATCH: &str = "x-amz-copy-source-if-none-match";
const IF_MODIFIED_SINCE: &str = "x-amz-copy-source-if-modified-since";
const IF_UNMODIFIED_SINCE: &str = "x-amz-copy-source-if-unmodified-since";

/// Parses `x-amz-copy-source`: URL-encoded `bucket/key`, with or without a leading
/// `/`, optionally `?versionId=…`. Access point and Outposts ARNs are refused: the
/// proxy addresses one backend by bucket name.
pub fn parse(headers: &HeaderMap) -> Result<ObjectRef, S3Error> {
    let raw = headers
        .get(X_AMZ_COPY_SOURCE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        })?;
    parse_value(raw)
}

pub fn parse_value(raw: &str) -> Result<ObjectRef, S3Error> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| S3Error::invalid_argument("Invalid copy source encoding"))?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    if decoded.starts_with("arn:") {
        return Err(S3Error::invalid_argument(
            "Copy sources given as access point or Outposts ARNs are not supported by the encryption proxy; name the source as bucket/key.",
        ));
    }
    let (bucket, key) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        })?;
    let version_id = match query {
        None => None,
        Some(q) => {
            let v = q
                .split('&')
                .find_map(|p| p.strip_prefix("versionId="))
                .ok_or_else(|| S3Error::invalid_argument("Invalid copy source version id"))?;
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| S3Error::invalid_argument("Invalid copy source version id"))?;
            if v.is_empty() {
                return Err(S3Error::invalid_argument("Invalid copy source version id"));
            }
            Some(v.into_owned())
        }
    };
    Ok(ObjectRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

/// The four `x-amz-copy-source-if-*` conditions against the source's HEAD, with S3's
/// precedence: a matching If-Match overrides If-Unmodified-Since, a passing
/// If-None-Match overrides If-Modified-Since. Any failure is 412.
pub fn check_conditions(headers: &HeaderMap, src: &SourceObject) -> Result<(), S3Error> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = src.etag_str();
    let modified = src.last_modified().and_then(parse_http_date);
    let failed = |condition: &'static str| {
        S3Error::precondition_failed(
            "At least one of the pre-conditions you specified did not hold",
        )
        .with_extra("Condition", condition)
    };
    match text(IF_MATCH) {
        Some(m) => {
            if !etag_list_matches(m, etag) {
                return Err(failed("x-amz-copy-source-If-Match"));
            }
        }
        None => {
            if let (Some(since), Some(modified)) = (
                text(IF_UNMODIFIED_SINCE).and_then(parse_http_date),
                modified,
            ) && modified > since
            {
                return Err(failed("x-amz-copy-source-If-Unmodified-Since"));
            }
        }
    }
    match text(IF_NONE_MATCH) {
        Some(m) => {
            if etag_list_matches(m, etag) {
                return Err(failed("x-amz-copy-source-If-None-Match"));
            }
        }
        None => {
            if let (Some(since), Some(modified)) =
                (text(IF_MODIFIED_SINCE).and_then(parse_http_date), modified)
                && modified <= since
            {
                return Err(failed("x-amz-copy-source-If-Modified-Since"));
            }
        }
    }
    Ok(())
}

/// True when `etag` is in the comma-separated list (or the list is `*`).
fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|m| m == "*" || m.trim_start_matches("W/").trim_matches('"') == etag)
}

/// An HTTP date (IMF-fixdate, which RFC 2822 parsing accepts with `GMT`).
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc2822).ok()
}

/// `x-amz-copy-source-range: bytes=first-last` against a source of `size` bytes.
/// Malformed → `InvalidArgument`; outside the object → `InvalidRange`.
pub fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(v) = headers.get(X_AMZ_COPY_SOURCE_RANGE) else {
        return Ok(None);
    };
    let malformed = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
        .ok_or_else(malformed)?;
    let (a, b) = spec.split_once('-').ok_or_else(malformed)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(malformed());
    }
    let (a, b): (u64, u64) = match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(malformed()),
    };
    if a > b {
        return Err(malformed());
    }
    if b >= size {
        return Err(S3Error::invalid_range(format!(
            "Range specified is not valid for source object of size: {size}"
        )));
    }
    Ok(Some((a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_parse_with_and_without_slash_and_version() {
        let r = parse_value("/src-bucket/dir/a%20b.txt?versionId=v%2B1").unwrap();
        assert_eq!(r.bucket, "src-bucket");
        assert_eq!(r.key, "dir/a b.txt");
        assert_eq!(r.version_id.as_deref(), Some("v+1"));
        let r = parse_value("b/k").unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_str(), r.version_id),
            ("b", "k", None)
        );
    }

    #[test]
    fn access_point_arns_and_incomplete_sources_are_refused() {
        let arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/k";
        assert_eq!(parse_value(arn).unwrap_err().code, "InvalidArgument");
        assert!(parse_value(arn).unwrap_err().message.contains("ARN"));
        for bad in ["bucket", "/bucket/", "/", "b/k?versionId=", "%ff/k"] {
            assert_eq!(
                parse_value(bad).unwrap_err().code,
                "InvalidArgument",
                "{bad}"
            );
        }
    }

    #[test]
    fn copy_ranges_follow_s3() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(X_AMZ_COPY_SOURCE_RANGE, v.parse().unwrap());
            m
        };
        assert_eq!(parse_range(&h("bytes=0-9"), 10).unwrap(), Some((0, 9)));
        assert_eq!(parse_range(&HeaderMap::new(), 10).unwrap(), None);
        for bad in ["bytes=5-", "bytes=-5", "0-9", "bytes=9-1", "bytes=a-b"] {
            assert_eq!(
                parse_range(&h(bad), 10).unwrap_err().code,
                "InvalidArgument",
                "{bad}"
            );
        }
        assert_eq!(
            parse_range(&h("bytes=0-10"), 10).unwrap_err().code,
            "InvalidRange"
        );
    }

    #[test]
    fn http_dates_parse() {
        let d = parse_http_date("Mon, 23 Nov 2026 19:24:57 GMT").unwrap();
        assert_eq!(d.unix_timestamp(), 1795461897);
    }
}
