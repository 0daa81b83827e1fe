//! The S3 flavour of the SigV4 canonical request: URI, query string and headers.
//!
//! S3 differs from generic SigV4 in that the path is encoded once and never
//! normalised (`a//b/../c` is a valid key). Every component is decoded from what the
//! client sent and re-encoded with the AWS rules, so clients that encode more or less
//! than strictly needed still verify. Canonical strings are bytes, not `String`,
//! because header values may carry non-UTF-8 octets that the client signed as they are.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// One `name=value` pair of a query string, raw and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPair<'a> {
    /// The pair exactly as sent, for rebuilding the query byte for byte.
    pub raw: &'a str,
    /// Percent-decoded name.
    pub name: Vec<u8>,
    /// Percent-decoded value (empty when the pair had no `=`).
    pub value: Vec<u8>,
}

impl QueryPair<'_> {
    pub fn name_is(&self, name: &str) -> bool {
        self.name == name.as_bytes()
    }

    /// The decoded value, when it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Splits a raw query string into pairs; empty segments (`a=1&&b=2`) are skipped.
/// `+` decodes to a space, as S3 reads query strings (form encoding).
pub fn parse_query(raw: &str) -> Vec<QueryPair<'_>> {
    raw.split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| {
            let (n, v) = seg.split_once('=').unwrap_or((seg, ""));
            QueryPair {
                raw: seg,
                name: decode_query_component(n),
                value: decode_query_component(v),
            }
        })
        .collect()
}

fn decode_query_component(s: &str) -> Vec<u8> {
    if s.contains('+') {
        percent_decode(s.replace('+', " ").as_bytes()).collect()
    } else {
        percent_decode(s.as_bytes()).collect()
    }
}

/// Everything but the unreserved characters (`A-Za-z0-9-._~`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, keeping `/` (paths).
const ENCODE_PATH: &AsciiSet = &ENCODE.remove(b'/');

/// Percent-encodes every byte but the unreserved ones, and `/` when `keep_slash`
/// (paths); uppercase hex, as AWS requires.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let set = if keep_slash { ENCODE_PATH } else { ENCODE };
    percent_encode(bytes, set).to_string()
}

/// The canonical URI: the raw path decoded, then encoded once; no dot-segment or
/// slash normalisation (S3 keys may contain both).
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    // Most paths are unreserved characters and `/` only: decoding and encoding them
    // again gives them back unchanged, so skip both (two per request: the client's
    // signature and the backend's).
    if raw_path.bytes().all(|b| is_unreserved(b) || b == b'/') {
        return raw_path.to_owned();
    }
    let decoded: Vec<u8> = percent_decode(raw_path.as_bytes()).collect();
    uri_encode(&decoded, true)
}

/// `A-Za-z0-9-._~`: the bytes SigV4 never percent-encodes (`ENCODE` leaves them out).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The canonical query string of the pairs `keep` accepts: names and values encoded,
/// sorted by name then value, joined with `&`.
pub fn canonical_query<'a>(
    pairs: &'a [QueryPair<'a>],
    keep: impl Fn(&QueryPair<'a>) -> bool,
) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|p| keep(p))
        .map(|p| (uri_encode(&p.name, false), uri_encode(&p.value, false)))
        .collect();
    encoded.sort_unstable();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A header value as SigV4 signs it: outer whitespace trimmed, inner runs of spaces
/// collapsed to one.
///
/// Copies the runs between blanks whole: values are mostly one run (a signed envelope
/// is ~300 bytes of base64), which a byte at a time made the costliest line of the
/// backend's canonical request.
fn push_normalized_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let mut rest = value.trim_ascii();
    while let Some(start) = rest.iter().position(is_blank) {
        out.extend_from_slice(&rest[..start]);
        out.push(b' ');
        let blanks = rest[start..].iter().take_while(|b| is_blank(b)).count();
        rest = &rest[start + blanks..];
    }
    out.extend_from_slice(rest);
}

/// `name:value\n` for every signed header, in the order given. Repeated headers are
/// joined with `,` in order of appearance; `host` falls back to the URI authority
/// (HTTP/2 carries it there).
pub fn canonical_headers(headers: &HeaderMap, authority: Option<&str>, signed: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(signed.len() * 48);
    for name in signed {
        let mut values = headers
            .get_all(*name)
            .iter()
            .map(|v| v.as_bytes())
            .peekable();
        if values.peek().is_none()
            && *name == "host"
            && let Some(a) = authority
        {
            push_header_line(&mut out, name, std::iter::once(a.as_bytes()));
        } else {
            push_header_line(&mut out, name, values);
        }
    }
    out
}

/// Appends one canonical header line, `name:value[,value...]\n`, values normalised.
pub fn push_header_line<'v>(out: &mut Vec<u8>, name: &str, values: impl Iterator<Item = &'v [u8]>) {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_normalized_value(out, value);
    }
    out.push(b'\n');
}

/// The parts of a canonical request, joined with `\n`.
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    pub headers: &'a [u8],
    pub signed_headers: &'a str,
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.uri.len() + self.query.len() + self.headers.len() + self.signed_headers.len() + 96,
        );
        for (i, part) in [
            self.method.as_bytes(),
            self.uri.as_bytes(),
            self.query.as_bytes(),
            self.headers,
            self.signed_headers.as_bytes(),
            self.payload_hash.as_bytes(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(part);
        }
        out
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_encoded_once_and_not_normalised() {
        assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/test%24file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("//example//../a"), "//example//../a");
        assert_eq!(canonical_uri("/example%20space/"), "/example%20space/");
        assert_eq!(canonical_uri("/%E1%88%B4"), "/%E1%88%B4");
        assert_eq!(canonical_uri("/a+b"), "/a%2Bb");
        assert_eq!(canonical_uri(""), "/");
        // A stray '%' is taken literally.
        assert_eq!(canonical_uri("/100%"), "/100%25");
    }

    #[test]
    fn query_is_decoded_sorted_and_reencoded() {
        let pairs = parse_query("prefix=J&max-keys=2&lifecycle&&b=%2f");
        assert_eq!(
            canonical_query(&pairs, |_| true),
            "b=%2F&lifecycle=&max-keys=2&prefix=J"
        );
        assert_eq!(pairs[2].raw, "lifecycle");
        let pairs = parse_query("q=a+b%2Bc");
        assert_eq!(canonical_query(&pairs, |_| true), "q=a%20b%2Bc");
        let pairs = parse_query("a=2&a=1&A=3");
        assert_eq!(canonical_query(&pairs, |_| true), "A=3&a=1&a=2");
        assert_eq!(canonical_query(&pairs, |p| !p.name_is("a")), "A=3");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut h = HeaderMap::new();
        h.append("my-header1", http::HeaderValue::from_static("  a   b  "));
        h.append("my-header1", http::HeaderValue::from_static("c"));
        h.insert(
            "x-amz-date",
            http::HeaderValue::from_static("20150830T123600Z"),
        );
        let got = canonical_headers(
            &h,
            Some("example.com"),
            &["host", "my-header1", "x-amz-date"],
        );
        assert_eq!(
            got,
            b"host:example.com\nmy-header1:a b,c\nx-amz-date:20150830T123600Z\n"
        );
    }
}
