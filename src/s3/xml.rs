//! Small, bounded XML work on S3 documents: reading a request body with a size cap,
//! pulling element texts, and rewriting `<Size>` and `<UploadId>` inside list results.
//!
//! S3 list documents are flat (no element nests inside itself, every text is escaped),
//! so block-wise scanning is exact for them; nothing here builds a tree, and every
//! input is bounded before it is scanned.

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;

use super::error::{BoxError, S3Error};

/// Reads a whole body of at most `max` bytes; a larger one is an S3 error, not a
/// growing buffer.
pub async fn read_bounded<B>(
    body: B,
    max: usize,
    too_large: impl FnOnce() -> S3Error,
) -> Result<Bytes, S3Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            S3Error::incomplete_body("The request body could not be read completely.")
                .with_source(e)
        })?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(buf.freeze())
}

/// Texts of every `<name>…</name>` in document order.
pub fn element_texts<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// Replaces the text of the first `<name>` element.
#[must_use]
pub fn replace_first(xml: &str, name: &str, new_text: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    if let Some(i) = xml.find(&open)
        && let Some(j) = xml[i + open.len()..].find(&close)
    {
        let start = i + open.len();
        return format!("{}{}{}", &xml[..start], new_text, &xml[start + j..]);
    }
    xml.to_string()
}

/// Calls `f` on every `<block>…</block>` and replaces the block with its result.
#[must_use]
pub fn rewrite_blocks(xml: &str, block: &str, mut f: impl FnMut(&str) -> String) -> String {
    let open = format!("<{block}>");
    let close = format!("</{block}>");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let Some(j) = rest[i..].find(&close) else {
            break;
        };
        let end = i + j + close.len();
        out.push_str(&rest[..i]);
        out.push_str(&f(&rest[i..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Puts the `<block>…</block>` elements in the order of `key` (stable), each sorted
/// block taking the place of one of the originals; the text around them stays.
#[must_use]
pub fn sort_blocks<K: Ord>(xml: &str, block: &str, key: impl Fn(&str) -> K) -> String {
    let mut sorted = blocks(xml, block);
    sorted.sort_by_key(|b| key(b));
    let mut sorted = sorted.into_iter();
    rewrite_blocks(xml, block, |b| sorted.next().unwrap_or(b).to_string())
}

/// Every `<block>…</block>` element, tags included, in document order (the blocks
/// [`rewrite_blocks`] visits).
pub fn blocks<'a>(xml: &'a str, block: &str) -> Vec<&'a str> {
    let open = format!("<{block}>");
    let close = format!("</{block}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let Some(j) = rest[i..].find(&close) else {
            break;
        };
        let end = i + j + close.len();
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

/// Unescapes the five XML entities (enough for S3's element texts).
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

pub mod document;
#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blocks_are_rewritten_in_place() {
        let xml = "<R><Contents><Key>a</Key><Size>10</Size></Contents><Contents><Key>b</Key><Size>20</Size></Contents></R>";
        let out = rewrite_blocks(xml, "Contents", |b| replace_first(b, "Size", "1"));
        assert_eq!(
            out,
            "<R><Contents><Key>a</Key><Size>1</Size></Contents><Contents><Key>b</Key><Size>1</Size></Contents></R>"
        );
        assert_eq!(element_texts(xml, "Key"), vec!["a", "b"]);
    }

    #[test]
    fn blocks_are_sorted_in_place() {
        let xml = "<L><Id>u</Id><Part><N>3</N></Part>\n<Part><N>1</N></Part><Part><N>2</N></Part><More/></L>";
        let n = |b: &str| {
            element_texts(b, "N")
                .first()
                .and_then(|t| t.parse::<u32>().ok())
        };
        assert_eq!(
            sort_blocks(xml, "Part", n),
            "<L><Id>u</Id><Part><N>1</N></Part>\n<Part><N>2</N></Part><Part><N>3</N></Part><More/></L>"
        );
        assert_eq!(sort_blocks("<L/>", "Part", n), "<L/>");
    }

    #[test]
    fn unescape_handles_entities() {
        assert_eq!(unescape("&quot;abc&quot; &amp;lt;"), "\"abc\" &lt;");
    }

    proptest! {
        #[test]
        fn rewriting_never_panics_and_identity_keeps_text(s in "\\PC{0,200}") {
            let out = rewrite_blocks(&s, "Contents", |b| b.to_string());
            prop_assert_eq!(out, s.clone());
            // Sorting keeps every byte, only reordering whole blocks.
            let sorted = sort_blocks(&s, "Contents", |b| b.len());
            let mut a: Vec<char> = sorted.chars().collect();
            let mut b: Vec<char> = s.chars().collect();
            a.sort_unstable();
            b.sort_unstable();
            prop_assert_eq!(a, b);
            let _ = element_texts(&s, "Size");
            let _ = replace_first(&s, "Size", "1");
        }
    }
}
