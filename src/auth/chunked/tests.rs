use bytes::Bytes;

use super::*;

fn unsigned(chunks: &[&[u8]], trailer: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailer.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn decode_split(
    wire: &[u8],
    split: usize,
    trailer: bool,
) -> Result<(Vec<u8>, ChunkedDecoder), AuthError> {
    let mut d = ChunkedDecoder::new(None, trailer, 1 << 20);
    let mut out = Vec::new();
    for piece in wire.chunks(split.max(1)) {
        d.decode(Bytes::copy_from_slice(piece), &mut out)?;
    }
    d.finish()?;
    Ok((out.concat(), d))
}

#[test]
fn decodes_with_any_split() {
    let wire = unsigned(&[b"hello ", b"world"], "x-amz-checksum-crc32:DUoRhQ==\r\n");
    for split in 1..wire.len() {
        let r = decode_split(&wire, split, true);
        let Ok((data, d)) = r else {
            panic!("split {split}: {r:?}", r = r.err())
        };
        assert_eq!(data, b"hello world");
        assert_eq!(
            d.trailers(),
            &[("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
        );
    }
}

#[test]
fn payload_slices_share_the_input_frame() {
    let wire = Bytes::from(unsigned(&[&[7u8; 1000]], ""));
    let mut d = ChunkedDecoder::new(None, true, 1 << 20);
    let mut out = Vec::new();
    assert!(d.decode(wire.clone(), &mut out).is_ok());
    assert_eq!(out.len(), 1);
    // Zero copy: the slice points into the input buffer.
    let base = wire.as_ptr() as usize;
    let slice = out[0].as_ptr() as usize;
    assert!(slice > base && slice < base + wire.len());
}

#[test]
fn extra_blank_line_before_trailers_is_tolerated() {
    let wire = b"5\r\nhello\r\n0\r\n\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    let r = decode_split(wire, 3, true);
    assert!(r.is_ok(), "{:?}", r.err());
    // And an empty trailer section after the 0 chunk is fine at EOF.
    assert!(decode_split(b"5\r\nhello\r\n0\r\n\r\n", 2, true).is_ok());
    assert!(decode_split(b"5\r\nhello\r\n0\r\n\r\n", 2, false).is_ok());
}

#[test]
fn framing_errors_are_refused() {
    let cases: &[(&[u8], bool)] = &[
        (b"zz\r\nhello\r\n0\r\n\r\n", true),     // bad hex
        (b"\r\nhello\r\n0\r\n\r\n", true),       // empty size
        (b"5\nhello\r\n0\r\n\r\n", true),        // LF only
        (b"5\r\nhelloXX0\r\n\r\n", true),        // missing CRLF after data
        (b"5\r\nhello\r\n0\r\n\r\nextra", true), // data after the end
        (b"5\r\nhello\r\n", true),               // no final chunk
        (b"5\r\nhel", true),                     // truncated data
        (
            b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
            false,
        ), // trailer not allowed
        (b"5\r\nhello\r\n0\r\nno-colon\r\n\r\n", true), // trailer without ':'
        (b"11111111111111111\r\n", true),        // 17 hex digits
    ];
    for (wire, trailer) in cases {
        let r = decode_split(wire, 4, *trailer);
        assert!(r.is_err(), "accepted {:?}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn limits_bound_memory() {
    let mut d = ChunkedDecoder::new(None, true, 1024);
    let mut out = Vec::new();
    assert_eq!(
        d.decode(Bytes::from_static(b"401\r\n"), &mut out),
        Err(AuthError::ChunkTooLarge)
    );
    let mut d = ChunkedDecoder::new(None, true, 1024);
    let long_header = vec![b'1'; MAX_HEADER_LINE + 10];
    assert!(d.decode(Bytes::from(long_header), &mut out).is_err());
    let mut d = ChunkedDecoder::new(None, true, 1024);
    let mut wire = b"0\r\n".to_vec();
    for i in 0..2000 {
        wire.extend_from_slice(format!("x-h{i}:vvvvvvvvvvvv\r\n").as_bytes());
    }
    assert_eq!(
        d.decode(Bytes::from(wire), &mut out),
        Err(AuthError::ChunkMalformed("trailer too long"))
    );
}

#[test]
fn truncation_is_incomplete_body() {
    let mut d = ChunkedDecoder::new(None, true, 1024);
    let mut out = Vec::new();
    assert!(d.decode(Bytes::from_static(b"5\r\nhe"), &mut out).is_ok());
    assert_eq!(d.finish(), Err(AuthError::IncompleteBody));
}

#[test]
fn canonical_trailers_are_sorted_lines() {
    let t = vec![
        ("second".to_string(), "2nd".to_string()),
        ("first".to_string(), "1st".to_string()),
    ];
    assert_eq!(canonical_trailers(&t), b"first:1st\nsecond:2nd\n");
}
