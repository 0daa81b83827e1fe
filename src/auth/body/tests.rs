use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};

use super::*;
use crate::auth::payload::PayloadMode;

/// A body that yields the given frames, then ends.
pub(crate) struct Frames(pub VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// Drains `body`: the data frames until the first error, and that error.
pub(crate) fn drain<B: Body<Data = Bytes> + Unpin>(mut body: B) -> (Vec<Bytes>, Option<String>) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return (frames, None),
            Poll::Ready(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    frames.push(d);
                }
            }
            Poll::Ready(Some(Err(_))) => return (frames, Some("error".into())),
            Poll::Pending => panic!("test bodies never pend"),
        }
    }
}

fn spec(pairs: &[(&'static str, &'static str)], mode: PayloadMode) -> BodySpec {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, HeaderValue::from_static(v));
    }
    match BodySpec::from_headers(&h, mode, None) {
        Ok(s) => s,
        Err(e) => panic!("spec refused: {e}"),
    }
}

fn run(spec: BodySpec, frames: &[&[u8]]) -> (Vec<Bytes>, Option<String>, BodyOutcome) {
    let inner = Frames(frames.iter().map(|f| Bytes::copy_from_slice(f)).collect());
    let (body, outcome) = VerifiedBody::new(inner, spec, BodyLimits::default());
    let (out, err) = drain(body);
    (out, err, outcome)
}

fn sha(data: &[u8]) -> [u8; 32] {
    crate::auth::signing::sha256(data)
}

#[test]
fn plain_body_passes_through_in_its_own_frames() {
    let data = [b"hello ".as_slice(), b"wor", b"ld"];
    let s = spec(
        &[("content-length", "11")],
        PayloadMode::Sha256(sha(b"hello world")),
    );
    let (out, err, outcome) = run(s, &data);
    assert_eq!(err, None);
    assert_eq!(
        out.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![6, 3, 2]
    );
    assert_eq!(out.concat(), b"hello world");
    assert_eq!(outcome.error(), None);
}

#[test]
fn hash_mismatch_withholds_the_last_frame() {
    let s = spec(
        &[("content-length", "11")],
        PayloadMode::Sha256(sha(b"hello WORLD")),
    );
    let (out, err, outcome) = run(s, &[b"hello ", b"world"]);
    assert_eq!(
        out.concat(),
        b"hello ",
        "the final frame must never be released"
    );
    assert!(err.is_some());
    assert_eq!(outcome.error(), Some(AuthError::ContentSha256Mismatch));
    assert_eq!(
        outcome.error().map(|e| e.s3_code()),
        Some("XAmzContentSHA256Mismatch")
    );
}

#[test]
fn content_md5_is_checked() {
    // MD5("hello world") = XrY7u+Ae7tCTyyK7j1rNww==
    let good = spec(
        &[
            ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
            ("content-length", "11"),
        ],
        PayloadMode::Unsigned,
    );
    let (out, err, _) = run(good, &[b"hello world"]);
    assert_eq!((out.concat(), err), (b"hello world".to_vec(), None));
    let bad = spec(
        &[
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("content-length", "11"),
        ],
        PayloadMode::Unsigned,
    );
    let (out, err, outcome) = run(bad, &[b"hello world"]);
    assert!(out.is_empty() && err.is_some());
    assert_eq!(outcome.error(), Some(AuthError::ContentMd5Mismatch));
}

/// RFC 1321's test suite (appendix A.5), through the MD5 the verifying body uses.
#[test]
fn md5_matches_the_rfc_1321_test_suite() {
    let suite: [(&str, &str); 7] = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, want) in suite {
        assert_eq!(
            hex::encode(Md5::digest(input.as_bytes())),
            want,
            "MD5({input:?})"
        );
    }
}

proptest::proptest! {
    /// Fed in any pieces, the MD5 equals an independent implementation's (RustCrypto
    /// md-5) of the whole input: block boundaries, partial blocks and empty updates.
    #[test]
    fn md5_in_any_pieces_matches_an_independent_implementation(
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
        cuts in proptest::collection::vec(0usize..4096, 0..8),
    ) {
        use md5::Digest as _;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut h = Md5::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            h.update(&data[from..cut]);
            from = cut;
        }
        let want: [u8; 16] = md5::Md5::digest(&data).into();
        proptest::prop_assert_eq!(h.finalize(), want);
    }
}

#[test]
fn header_checksum_is_checked_and_reported() {
    let good = spec(
        &[
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("content-length", "11"),
        ],
        PayloadMode::Unsigned,
    );
    let (_, err, outcome) = run(good, &[b"hello", b" world"]);
    assert_eq!(err, None);
    assert_eq!(
        outcome.checksum(),
        Some((ChecksumAlgorithm::Crc32, "DUoRhQ==".to_string()))
    );
    let bad = spec(
        &[
            ("x-amz-checksum-crc32", "DUoRhA=="),
            ("content-length", "11"),
        ],
        PayloadMode::Unsigned,
    );
    let (out, _, outcome) = run(bad, &[b"hello", b" world"]);
    assert_eq!(out.concat(), b"hello");
    assert_eq!(
        outcome.error(),
        Some(AuthError::ChecksumMismatch(ChecksumAlgorithm::Crc32))
    );
    assert_eq!(outcome.checksum(), None);
}

#[test]
fn plain_length_must_match_content_length() {
    let short = spec(&[("content-length", "12")], PayloadMode::Unsigned);
    let (out, _, outcome) = run(short, &[b"hello ", b"world"]);
    assert_eq!(out.concat(), b"hello ");
    assert_eq!(outcome.error(), Some(AuthError::IncompleteBody));
    let long = spec(&[("content-length", "10")], PayloadMode::Unsigned);
    let (out, _, outcome) = run(long, &[b"hello ", b"world"]);
    assert_eq!(out.concat(), b"");
    assert_eq!(outcome.error(), Some(AuthError::IncompleteBody));
}

const CHUNKED: [(&str, &str); 3] = [
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "11"),
    ("x-amz-trailer", "x-amz-checksum-crc32"),
];

#[test]
fn unsigned_trailer_checksum_is_verified() {
    let wire = b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    let s = spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer);
    assert_eq!(s.decoded_length(), Some(11));
    let inner = Frames(wire.chunks(7).map(Bytes::copy_from_slice).collect());
    let (body, outcome) = VerifiedBody::new(inner, s, BodyLimits::default());
    assert_eq!(body.size_hint().exact(), Some(11));
    let (out, err) = drain(body);
    assert_eq!((out.concat(), err), (b"hello world".to_vec(), None));
    assert_eq!(
        outcome.checksum(),
        Some((ChecksumAlgorithm::Crc32, "DUoRhQ==".to_string()))
    );

    let bad = b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhA==\r\n\r\n";
    let (out, err, outcome) = run(
        spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer),
        &[bad],
    );
    // Both chunks arrive in one frame: the first is released, the last withheld.
    assert_eq!(out.concat(), b"hello ");
    assert!(err.is_some());
    assert_eq!(
        outcome.error(),
        Some(AuthError::ChecksumMismatch(ChecksumAlgorithm::Crc32))
    );
}

#[test]
fn announced_trailer_must_arrive_and_unannounced_is_refused() {
    let missing = b"b\r\nhello world\r\n0\r\n\r\n";
    let (_, _, outcome) = run(
        spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer),
        &[missing],
    );
    assert!(matches!(
        outcome.error(),
        Some(AuthError::ChecksumRequest(_))
    ));
    let other = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-meta-a:b\r\n\r\n";
    let (_, _, outcome) = run(
        spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer),
        &[other],
    );
    assert!(matches!(
        outcome.error(),
        Some(AuthError::ChecksumRequest(_))
    ));
}

#[test]
fn decoded_length_mismatch_is_incomplete_body() {
    let short = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    let (_, _, outcome) = run(
        spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer),
        &[short],
    );
    assert_eq!(outcome.error(), Some(AuthError::IncompleteBody));
    let long = b"c\r\nhello world!\r\n0\r\n\r\n";
    let (out, _, outcome) = run(
        spec(&CHUNKED, PayloadMode::StreamingUnsignedTrailer),
        &[long],
    );
    assert!(out.is_empty());
    assert_eq!(outcome.error(), Some(AuthError::IncompleteBody));
}

#[test]
fn transport_errors_are_recorded() {
    struct Broken;
    impl Body for Broken {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(Some(Err(std::io::Error::other("reset"))))
        }
    }
    let (body, outcome) =
        VerifiedBody::new(Broken, BodySpec::plain(Some(3)), BodyLimits::default());
    let (_, err) = drain(body);
    assert!(err.is_some());
    assert_eq!(outcome.error(), Some(AuthError::BodyRead));
}

#[test]
fn sdk_algorithm_alone_checks_the_trailer_when_sent() {
    const SDK: [(&str, &str); 3] = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "11"),
        ("x-amz-sdk-checksum-algorithm", "CRC32"),
    ];
    let good = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    let (out, _, outcome) = run(spec(&SDK, PayloadMode::StreamingUnsignedTrailer), &[good]);
    assert_eq!(out.concat(), b"hello world");
    assert_eq!(
        outcome.checksum(),
        Some((ChecksumAlgorithm::Crc32, "DUoRhQ==".to_string()))
    );
    let bad = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhA==\r\n\r\n";
    let (_, _, outcome) = run(spec(&SDK, PayloadMode::StreamingUnsignedTrailer), &[bad]);
    assert_eq!(
        outcome.error(),
        Some(AuthError::ChecksumMismatch(ChecksumAlgorithm::Crc32))
    );
    let none = b"b\r\nhello world\r\n0\r\n\r\n";
    let (out, err, outcome) = run(spec(&SDK, PayloadMode::StreamingUnsignedTrailer), &[none]);
    assert_eq!(
        (out.concat(), err, outcome.checksum()),
        (b"hello world".to_vec(), None, None)
    );
}
