use http::{HeaderMap, HeaderValue};

use super::*;
use crate::auth::checksum::ChecksumAlgorithm;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

fn all() -> Wanted {
    Wanted {
        etag: true,
        checksum: true,
        object_parts: true,
        storage_class: true,
        object_size: true,
    }
}

#[test]
fn attribute_list_is_parsed_and_unknown_names_refused() {
    let w = Wanted::parse(&headers(&[("x-amz-object-attributes", "ETag, ObjectSize")])).unwrap();
    assert!(w.etag && w.object_size && !w.checksum && !w.object_parts);
    let e = Wanted::parse(&headers(&[("x-amz-object-attributes", "ETag,Size")])).unwrap_err();
    assert_eq!(e.code, "InvalidArgument");
    let e = Wanted::parse(&headers(&[])).unwrap_err();
    assert_eq!(e.code, "InvalidRequest");
}

#[test]
fn multipart_answer_pages_plaintext_part_sizes() {
    // 3 parts of 8 MiB and a last part of 100 bytes, 64 KiB segments.
    let p = 8 * 1024 * 1024;
    let layout = ObjectLayout::new(65536, 4, p, 3 * p + 100).unwrap();
    let attrs = Attributes {
        etag: "abc-4",
        layout,
        storage_class: "STANDARD",
        checksum: None,
    };
    let page = PartPage {
        max_parts: 2,
        marker: 2,
    };
    let x = response_xml(&attrs, all(), page);
    assert!(x.contains("<ETag>abc-4</ETag>"), "{x}");
    assert!(x.contains("<PartsCount>4</PartsCount>"), "{x}");
    assert!(x.contains("<IsTruncated>false</IsTruncated>"), "{x}");
    assert!(x.contains(&format!(
        "<Part><PartNumber>3</PartNumber><Size>{p}</Size></Part>"
    )));
    assert!(x.contains("<Part><PartNumber>4</PartNumber><Size>100</Size></Part>"));
    assert!(!x.contains("<PartNumber>2</PartNumber>"), "{x}");
    assert!(x.contains(&format!("<ObjectSize>{}</ObjectSize>", 3 * p + 100)));
    assert!(
        !x.contains("<Checksum>"),
        "no stored checksum, none shown: {x}"
    );

    let first = PartPage {
        max_parts: 1,
        marker: 0,
    };
    let x = response_xml(&attrs, all(), first);
    assert!(x.contains("<IsTruncated>true</IsTruncated>"), "{x}");
    assert!(
        x.contains("<NextPartNumberMarker>1</NextPartNumberMarker>"),
        "{x}"
    );
}

#[test]
fn single_put_answer_has_no_parts_and_shows_the_stored_checksum() {
    let attrs = Attributes {
        etag: "d41d8cd98f00b204e9800998ecf8427e",
        layout: ObjectLayout::single(65536, 11).unwrap(),
        storage_class: "STANDARD",
        checksum: Some(StoredChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            value: "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=".into(),
        }),
    };
    let x = response_xml(&attrs, all(), PartPage::parse(&HeaderMap::new()).unwrap());
    assert!(!x.contains("<ObjectParts>"), "{x}");
    assert!(
        x.contains("<ChecksumSHA256>uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=</ChecksumSHA256>")
    );
    assert!(x.contains("<ObjectSize>11</ObjectSize>"));
}
