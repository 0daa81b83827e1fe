//! What a form's fields mean for the object: the headers of the PutObject the form
//! becomes (metadata, ACL, tagging, storage class, SSE requests), and the `tagging`
//! field's XML as the `x-amz-tagging` query-string header.

use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::s3::error::S3Error;

/// Fields copied as the header of the same name.
const AS_HEADERS: [&str; 7] = [
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",
];

/// Field-name prefixes copied as headers: user metadata, storage class, SSE requests.
const PREFIXES_AS_HEADERS: [&str; 3] = [
    "x-amz-meta-",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
];

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// The PutObject headers the form's fields ask for.
pub fn put_headers(fields: &[(String, String)]) -> Result<HeaderMap, S3Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        let lower = name.to_ascii_lowercase();
        let header = if AS_HEADERS.contains(&lower.as_str())
            || PREFIXES_AS_HEADERS.iter().any(|p| lower.starts_with(p))
        {
            lower
        } else if lower == "acl" {
            "x-amz-acl".to_string()
        } else if lower == "tagging" {
            let value = tagging_header(value)?;
            insert(&mut headers, "x-amz-tagging", &value)?;
            continue;
        } else {
            continue;
        };
        insert(&mut headers, &header, value)?;
    }
    Ok(headers)
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), S3Error> {
    let bad = || S3Error::invalid_argument(format!("Invalid value for the form field {name}."));
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value).map_err(|_| bad())?;
    headers.insert(name, value);
    Ok(())
}

fn malformed_tagging() -> S3Error {
    S3Error::malformed_xml(
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
}

/// `<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>…</TagSet></Tagging>` →
/// `k=v&…`, each part percent-encoded. Anything else is MalformedXML, as for
/// PutObjectTagging: no other elements, no attributes, no DTD, at most 10 tags.
pub fn tagging_header(xml: &str) -> Result<String, S3Error> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut key: Option<String> = None;
    let mut value: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|_| malformed_tagging())? {
            Event::Start(e) => {
                if e.attributes().next().is_some() {
                    return Err(malformed_tagging());
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let expected = ["Tagging", "TagSet", "Tag"];
                let ok = match path.len() {
                    0..=2 => name == expected[path.len()],
                    3 => name == "Key" || name == "Value",
                    _ => false,
                };
                if !ok {
                    return Err(malformed_tagging());
                }
                path.push(name);
                text.clear();
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(malformed_tagging());
                };
                match name.as_str() {
                    "Key" if key.is_none() => key = Some(std::mem::take(&mut text)),
                    "Value" if value.is_none() => value = Some(std::mem::take(&mut text)),
                    "Tag" => match (key.take(), value.take()) {
                        (Some(k), Some(v)) => tags.push((k, v)),
                        _ => return Err(malformed_tagging()),
                    },
                    "TagSet" | "Tagging" => {}
                    _ => return Err(malformed_tagging()),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| malformed_tagging())?;
                let s = quick_xml::escape::unescape(&s).map_err(|_| malformed_tagging())?;
                if path.len() == 4 {
                    text.push_str(&s);
                } else if !s.trim().is_empty() {
                    return Err(malformed_tagging());
                }
            }
            Event::GeneralRef(r) => {
                // The five predefined entities and character references only.
                let name = String::from_utf8_lossy(&r).into_owned();
                let resolved = match name.as_str() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => r.resolve_char_ref().ok().flatten(),
                };
                match resolved {
                    Some(c) if path.len() == 4 => text.push(c),
                    _ => return Err(malformed_tagging()),
                }
            }
            Event::Empty(_) | Event::DocType(_) | Event::CData(_) | Event::PI(_) => {
                return Err(malformed_tagging());
            }
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !path.is_empty() || tags.len() > 10 {
        return Err(malformed_tagging());
    }
    Ok(tags
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn fields_become_put_headers() {
        let h = put_headers(&pairs(&[
            ("key", "k"),
            ("Content-Type", "text/plain"),
            ("ACL", "private"),
            ("X-Amz-Meta-Colour", "blue"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("policy", "p"),
            ("success_action_status", "201"),
            ("Tagging", "<Tagging><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag></TagSet></Tagging>"),
        ]))
        .unwrap_or_default();
        assert_eq!(
            h.get("content-type").map(|v| v.as_bytes()),
            Some(&b"text/plain"[..])
        );
        assert_eq!(
            h.get("x-amz-acl").map(|v| v.as_bytes()),
            Some(&b"private"[..])
        );
        assert_eq!(
            h.get("x-amz-meta-colour").map(|v| v.as_bytes()),
            Some(&b"blue"[..])
        );
        assert_eq!(
            h.get("x-amz-tagging").map(|v| v.as_bytes()),
            Some(&b"a%20b=1%262"[..])
        );
        assert!(h.contains_key("x-amz-server-side-encryption"));
        assert_eq!(h.len(), 5, "{h:?}");
        assert!(put_headers(&pairs(&[("x-amz-meta-a", "new\nline")])).is_err());
    }

    #[test]
    fn tagging_must_be_the_tagging_document() {
        let two = "<Tagging><TagSet><Tag><Key>0</Key><Value>0</Value></Tag><Tag><Key>1</Key><Value>1</Value></Tag></TagSet></Tagging>";
        assert_eq!(tagging_header(two).ok().as_deref(), Some("0=0&1=1"));
        assert_eq!(tagging_header("<Tagging><TagSet/></Tagging>").ok(), None);
        for bad in [
            "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
            "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value><Extra/></Tag></TagSet></Tagging>",
            "<Tagging a=\"1\"><TagSet></TagSet></Tagging>",
            "<Other/>",
            "<Tagging><TagSet><Tag><Key>&xxe;</Key><Value>v</Value></Tag></TagSet></Tagging>",
            "<!DOCTYPE x [<!ENTITY y \"z\">]><Tagging><TagSet></TagSet></Tagging>",
            "<Tagging><TagSet>",
            "text",
        ] {
            assert!(tagging_header(bad).is_err(), "{bad}");
        }
        let empty = "<Tagging><TagSet></TagSet></Tagging>";
        assert_eq!(tagging_header(empty).ok().as_deref(), Some(""));
    }
}
