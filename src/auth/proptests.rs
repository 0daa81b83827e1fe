//! Property tests: the parsers and the aws-chunked decoder never panic on arbitrary or
//! mutated input, and any valid aws-chunked encoding, cut anywhere, decodes to its data.
//! 1,000 cases unless `PROPTEST_CASES` says otherwise.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use proptest::prelude::*;

use super::body::tests::{Frames, drain};
use super::body::{BodyLimits, VerifiedBody};
use super::checksum::{ChecksumAlgorithm, Checksummer};
use super::chunked::ChunkedDecoder;
use super::payload::{BodySpec, PayloadMode};
use super::signing::{self, ChunkSigner, SigningKey};
use super::{CredentialStore, VerifyContext, sigv2, sigv4, verify};

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

/// Feeds `wire` cut at `cuts` (positions, any order) and finishes.
fn decode(mut d: ChunkedDecoder, wire: &[u8], cuts: &[usize]) -> Result<Vec<u8>, super::AuthError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(wire.len())) {
        d.decode(Bytes::copy_from_slice(&wire[start..c]), &mut out)?;
        start = c;
    }
    d.finish()?;
    Ok(out.concat())
}

/// Encodes `data` in chunks of the given sizes (the rest in one last chunk).
fn encode_unsigned(data: &[u8], sizes: &[usize], trailer: Option<&str>) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut rest = data;
    for &s in sizes {
        if rest.is_empty() {
            break;
        }
        let n = s.clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
        rest = tail;
    }
    if !rest.is_empty() {
        wire.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
        wire.extend_from_slice(rest);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n");
    if let Some(t) = trailer {
        wire.extend_from_slice(t.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

const TS: &str = "20240301T120000Z";
const SCOPE: &str = "20240301/us-east-1/s3/aws4_request";

fn signer() -> ChunkSigner {
    let key = SigningKey::derive("secret", "20240301", "us-east-1", "s3");
    ChunkSigner::new(key, TS.into(), SCOPE.into(), [7; 32])
}

/// Encodes `data` as STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signing each chunk in turn.
fn encode_signed(data: &[u8], size: usize) -> Vec<u8> {
    let key = SigningKey::derive("secret", "20240301", "us-east-1", "s3");
    let mut previous = [7u8; 32];
    let mut wire = Vec::new();
    let mut chunks: Vec<&[u8]> = data.chunks(size.max(1)).collect();
    chunks.push(&[]);
    for chunk in chunks {
        let sts = signing::chunk_string_to_sign(TS, SCOPE, &previous, &signing::sha256(chunk));
        previous = key.sign(sts.as_bytes());
        wire.extend_from_slice(
            format!(
                "{:x};chunk-signature={}\r\n",
                chunk.len(),
                hex::encode(previous)
            )
            .as_bytes(),
        );
        if !chunk.is_empty() {
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        wire in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        signed in any::<bool>(),
        trailer in any::<bool>(),
    ) {
        let d = ChunkedDecoder::new(signed.then(signer), trailer, 256);
        let _ = decode(d, &wire, &cuts);
    }

    #[test]
    fn decoder_never_panics_on_mutated_encodings(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        size in 1usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        signed in any::<bool>(),
    ) {
        let mut wire = if signed {
            encode_signed(&data, size)
        } else {
            encode_unsigned(&data, &[size], Some("x-amz-checksum-crc32:AAAAAA=="))
        };
        for (pos, byte, op) in edits {
            let at = pos % (wire.len() + 1);
            match op {
                0 if at < wire.len() => wire[at] = byte,
                1 => wire.insert(at, byte),
                _ if at < wire.len() => { wire.remove(at); }
                _ => {}
            }
        }
        let d = ChunkedDecoder::new(signed.then(signer), !signed, 1024);
        let _ = decode(d, &wire, &[7, 50, 101]);
    }

    #[test]
    fn any_valid_unsigned_encoding_round_trips(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        sizes in proptest::collection::vec(1usize..300, 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        with_trailer in any::<bool>(),
    ) {
        let trailer = with_trailer.then_some("x-amz-checksum-crc32c:AAAAAA==");
        let wire = encode_unsigned(&data, &sizes, trailer);
        let d = ChunkedDecoder::new(None, true, 4096);
        prop_assert_eq!(decode(d, &wire, &cuts), Ok(data));
    }

    #[test]
    fn any_valid_signed_encoding_round_trips(
        data in proptest::collection::vec(any::<u8>(), 0..1024),
        size in 1usize..400,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let wire = encode_signed(&data, size);
        let d = ChunkedDecoder::new(Some(signer()), false, 4096);
        prop_assert_eq!(decode(d, &wire, &cuts), Ok(data));
    }

    #[test]
    fn verified_body_releases_all_or_withholds_the_end(
        data in proptest::collection::vec(any::<u8>(), 1..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        flip in proptest::option::of(any::<usize>()),
    ) {
        let mut crc = Checksummer::new(ChecksumAlgorithm::Crc32c);
        crc.update(&data);
        let mut headers = http::HeaderMap::new();
        headers.insert("content-length", data.len().into());
        headers.insert(
            "x-amz-checksum-crc32c",
            http::HeaderValue::from_str(&crc.finalize_base64()).map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        let spec = BodySpec::from_headers(&headers, PayloadMode::Sha256(signing::sha256(&data)), None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut sent = data.clone();
        if let Some(f) = flip {
            let at = f % sent.len();
            sent[at] ^= 0x20;
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (sent.len() + 1)).collect();
        cuts.sort_unstable();
        let mut frames = std::collections::VecDeque::new();
        let mut start = 0;
        for c in cuts.into_iter().chain(std::iter::once(sent.len())) {
            frames.push_back(Bytes::copy_from_slice(&sent[start..c]));
            start = c;
        }
        let (body, outcome) = VerifiedBody::new(Frames(frames), spec, BodyLimits::default());
        let (out, err) = drain(body);
        let released = out.concat();
        if flip.is_some() {
            prop_assert!(err.is_some());
            prop_assert!(outcome.error().is_some());
            prop_assert!(released.len() < data.len());
        } else {
            prop_assert_eq!(err, None);
            prop_assert_eq!(released, data);
        }
    }

    #[test]
    fn authorization_parsers_never_panic(s in "\\PC{0,200}") {
        let _ = sigv4::parse_authorization(&s);
        let _ = sigv2::parse_authorization(&s);
        let _ = sigv4::Credential::parse(&s);
        let _ = sigv4::parse_expires(&s);
        let _ = super::date::parse_amz_date(&s);
        let _ = super::date::parse_http_date(&s);
    }

    #[test]
    fn mutated_authorization_headers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<char>()), 1..8),
    ) {
        let mut s: Vec<char> = "AWS4-HMAC-SHA256 Credential=AK/20240301/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41".chars().collect();
        for (pos, c) in edits {
            let at = pos % s.len();
            s[at] = c;
        }
        let s: String = s.into_iter().collect();
        let _ = sigv4::parse_authorization(&s);
        verify_never_panics(&s, "");
    }

    #[test]
    fn verify_never_panics_on_arbitrary_queries(
        pairs in proptest::collection::vec(
            (prop_oneof![
                Just("X-Amz-Algorithm".to_string()), Just("X-Amz-Credential".to_string()),
                Just("X-Amz-Date".to_string()), Just("X-Amz-Expires".to_string()),
                Just("X-Amz-SignedHeaders".to_string()), Just("X-Amz-Signature".to_string()),
                Just("AWSAccessKeyId".to_string()), Just("Signature".to_string()),
                Just("Expires".to_string()), "[a-zA-Z%+=._~-]{0,12}",
            ], "[a-zA-Z0-9%+=/;._~-]{0,40}"),
            0..10,
        ),
    ) {
        let query: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        verify_never_panics("", &query.join("&"));
    }
}

fn verify_never_panics(authorization: &str, query: &str) {
    let store = CredentialStore::new([("AK".to_string(), "secret".to_string())]);
    let ctx = VerifyContext {
        credentials: &store,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_294_400),
        max_skew: Duration::from_secs(u64::MAX / 4),
        allow_sigv2: true,
        vhost_bucket: Some("b"),
    };
    let uri = if query.is_empty() {
        "/b/k".to_string()
    } else {
        format!("/b/k?{query}")
    };
    let Ok(mut req) = http::Request::builder().uri(uri).body(()) else {
        return;
    };
    req.headers_mut()
        .insert("host", http::HeaderValue::from_static("s3.example.com"));
    req.headers_mut().insert(
        "x-amz-date",
        http::HeaderValue::from_static("20240301T120000Z"),
    );
    req.headers_mut().insert(
        "x-amz-content-sha256",
        http::HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    if !authorization.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(authorization)
    {
        req.headers_mut().insert("authorization", v);
    }
    let (parts, ()) = req.into_parts();
    let _ = verify(&parts, &ctx);
}
