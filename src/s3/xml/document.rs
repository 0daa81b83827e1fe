//! Strict checking of the small XML documents clients send whole (DeleteObjects,
//! CompleteMultipartUpload) before the proxy acts on them or forwards them.
//!
//! What S3 accepts is narrow, so this refuses anything outside it with `MalformedXML`:
//! a document that is not UTF-8 or not well-formed, a DTD (so no entity of any kind is
//! ever defined, let alone expanded), references to entities other than the five
//! predefined ones, a root of another name, attributes other than namespace
//! declarations, text outside the root, and more items than the operation allows.
//! The reader keeps only a depth counter, so nesting costs nothing however deep.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::s3::error::S3Error;

/// What one kind of request document looks like.
pub struct Shape {
    /// The root element's name.
    pub root: &'static str,
    /// The repeated child of the root that carries the request's items.
    pub item: &'static str,
    /// A child every item must have.
    pub item_requires: &'static str,
    /// The most items allowed.
    pub max_items: usize,
}

/// DeleteObjects: at most 1,000 keys per request.
pub const DELETE: Shape = Shape {
    root: "Delete",
    item: "Object",
    item_requires: "Key",
    max_items: 1000,
};

/// CompleteMultipartUpload: at most 10,000 parts.
pub const COMPLETE: Shape = Shape {
    root: "CompleteMultipartUpload",
    item: "Part",
    item_requires: "PartNumber",
    max_items: 10_000,
};

const SCHEMA: &str =
    "The XML you provided was not well-formed or did not validate against our published schema.";

fn malformed() -> S3Error {
    S3Error::malformed_xml(SCHEMA)
}

/// Root, item, field: S3 request documents go no deeper.
const MAX_DEPTH: usize = 3;

/// Checks `doc` against `shape`; returns the number of items.
pub fn check(doc: &[u8], shape: &Shape) -> Result<usize, S3Error> {
    std::str::from_utf8(doc).map_err(|_| malformed())?;
    let mut reader = Reader::from_reader(doc);
    // Open elements; 0 outside the root.
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut items = 0usize;
    // Inside an item: whether its required child has been seen.
    let mut item_has_required = false;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => {
                open(&e, depth, &mut seen_root, shape)?;
                if depth == 1 && e.local_name().as_ref() == shape.item.as_bytes() {
                    items += 1;
                    if items > shape.max_items {
                        return Err(malformed());
                    }
                    item_has_required = false;
                } else if depth == 2 && e.local_name().as_ref() == shape.item_requires.as_bytes() {
                    item_has_required = true;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                open(&e, depth, &mut seen_root, shape)?;
                let name = e.local_name();
                // An item with no children lacks its required one.
                if depth == 1 && name.as_ref() == shape.item.as_bytes() {
                    return Err(malformed());
                }
                if depth == 2 && name.as_ref() == shape.item_requires.as_bytes() {
                    item_has_required = true;
                }
            }
            Event::End(e) => {
                // quick-xml has already matched the name against its start tag.
                depth = depth.checked_sub(1).ok_or_else(malformed)?;
                if depth == 1
                    && e.local_name().as_ref() == shape.item.as_bytes()
                    && !item_has_required
                {
                    return Err(malformed());
                }
            }
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(malformed());
                }
            }
            Event::GeneralRef(r) => {
                let name: &[u8] = &r;
                let predefined = matches!(name, b"amp" | b"lt" | b"gt" | b"quot" | b"apos");
                let char_ref = r.is_char_ref() && matches!(r.resolve_char_ref(), Ok(Some(_)));
                if depth == 0 || !(predefined || char_ref) {
                    return Err(malformed());
                }
            }
            Event::CData(_) if depth == 0 => return Err(malformed()),
            Event::Decl(_) if seen_root => return Err(malformed()),
            Event::DocType(_) | Event::PI(_) => return Err(malformed()),
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    // Both operations need at least one item; S3 calls an empty list malformed.
    if !seen_root || depth != 0 || items == 0 {
        return Err(malformed());
    }
    Ok(items)
}

/// An element opening at `depth`: the one root, of the right name; nothing deeper
/// than [`MAX_DEPTH`]; namespace attributes only.
fn open(e: &BytesStart, depth: usize, seen_root: &mut bool, shape: &Shape) -> Result<(), S3Error> {
    if depth == 0 {
        if *seen_root || e.local_name().as_ref() != shape.root.as_bytes() {
            return Err(malformed());
        }
        *seen_root = true;
    } else if depth >= MAX_DEPTH {
        return Err(malformed());
    }
    only_namespace_attributes(e)
}

/// S3 documents carry namespace declarations and nothing else as attributes.
fn only_namespace_attributes(e: &BytesStart) -> Result<(), S3Error> {
    for attr in e.attributes() {
        let attr = attr.map_err(|_| malformed())?;
        let key = attr.key.as_ref();
        if key != b"xmlns" && !key.starts_with(b"xmlns:") {
            return Err(malformed());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete_doc(n: usize) -> String {
        let mut x = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        for i in 0..n {
            x.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
        }
        x.push_str("<Quiet>true</Quiet></Delete>");
        x
    }

    #[test]
    fn accepts_what_clients_send() {
        assert_eq!(check(delete_doc(3).as_bytes(), &DELETE).ok(), Some(3));
        assert_eq!(check(delete_doc(1000).as_bytes(), &DELETE).ok(), Some(1000));
        let with_decl = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
            delete_doc(1)
        );
        assert_eq!(check(with_decl.as_bytes(), &DELETE).ok(), Some(1));
        let escaped = "<Delete><Object><Key>a&amp;b&#x41;&lt;</Key><VersionId>v</VersionId></Object></Delete>";
        assert_eq!(check(escaped.as_bytes(), &DELETE).ok(), Some(1));
        let complete = "<CompleteMultipartUpload><Part><ETag>\"e\"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(check(complete.as_bytes(), &COMPLETE).ok(), Some(1));
    }

    #[test]
    fn refuses_everything_else() {
        let bad: &[&[u8]] = &[
            b"",
            b"hello",
            b"\xff\xfe",
            b"<Delete><Object><Key>\xff</Key></Object></Delete>",
            b"<Other><Object><Key>k</Key></Object></Other>",
            b"<Delete><Object><Key>k</Key></Object>",
            b"<Delete><Object><Key>k</Key></Object></Delete><Delete/>",
            b"<Delete><Object><Key>k</Key></Object></Delete>trailing",
            b"<Delete a=\"1\"><Object><Key>k</Key></Object></Delete>",
            b"<Delete><Object x=\"1\"><Key>k</Key></Object></Delete>",
            b"<Delete><Object><VersionId>v</VersionId></Object></Delete>",
            b"<Delete><Object/></Delete>",
            b"<Delete><Object><Key>k</Key></Obj></Delete>",
            b"<!DOCTYPE d [<!ENTITY e \"x\">]><Delete><Object><Key>&e;</Key></Object></Delete>",
            b"<Delete><Object><Key>&e;</Key></Object></Delete>",
            b"<?pi x?><Delete><Object><Key>k</Key></Object></Delete>",
            b"<Delete><Object><Key>&#0;</Key></Object></Delete>",
        ];
        for doc in bad {
            assert!(
                check(doc, &DELETE).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(doc)
            );
        }
        assert!(check(delete_doc(1001).as_bytes(), &DELETE).is_err());
    }

    #[test]
    fn nesting_stops_below_the_fields() {
        let ok = "<Delete><Object><Key>k</Key></Object><Quiet>true</Quiet></Delete>";
        assert_eq!(check(ok.as_bytes(), &DELETE).ok(), Some(1));
        let too_deep = "<Delete><Object><Key><b>k</b></Key></Object></Delete>";
        assert!(check(too_deep.as_bytes(), &DELETE).is_err());
        let mut bomb = String::from("<Delete>");
        bomb.push_str(&"<a>".repeat(100_000));
        bomb.push_str(&"</a>".repeat(100_000));
        bomb.push_str("</Delete>");
        assert!(check(bomb.as_bytes(), &DELETE).is_err());
        assert!(check(b"<Delete/>", &DELETE).is_err());
        assert!(check(b"<Delete><Quiet>true</Quiet></Delete>", &DELETE).is_err());
    }
}
