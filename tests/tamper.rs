//! The tamper matrix: objects written through the proxy are altered on the backend's
//! disk (the embedded backend keeps bodies as files and metadata as JSON beside them),
//! then read back through the proxy. Every read of a tampered object must fail — a 5xx
//! before the body, or a body cut short — and never end as a complete 200. Untampered
//! controls must still read back byte-identical, so the test can tell the difference.

mod raw;

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::{Rng, RngExt, SeedableRng};
use raw::*;

const BUCKET: &str = "tamper";
const S: usize = 4096;
const OBJECTS_PER_MUTATION: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    FlipSegmentByte,
    FlipTag,
    FlipPartHeader,
    FlipEnvelopeByte,
    TruncateAtSegmentBoundary,
    TruncateInsideSegment,
    ReorderSegments,
    DuplicateSegment,
    AppendBytes,
    SwapBodies,
    SwapEnvelopes,
    ReplayOlderBody,
    DropEnvelope,
}

const ALL: [Mutation; 13] = [
    Mutation::FlipSegmentByte,
    Mutation::FlipTag,
    Mutation::FlipPartHeader,
    Mutation::FlipEnvelopeByte,
    Mutation::TruncateAtSegmentBoundary,
    Mutation::TruncateInsideSegment,
    Mutation::ReorderSegments,
    Mutation::DuplicateSegment,
    Mutation::AppendBytes,
    Mutation::SwapBodies,
    Mutation::SwapEnvelopes,
    Mutation::ReplayOlderBody,
    Mutation::DropEnvelope,
];

fn body_path(p: &Proxy, key: &str) -> PathBuf {
    p.data.join("objects").join(BUCKET).join(key)
}

fn meta_path(p: &Proxy, key: &str) -> PathBuf {
    let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
    p.data.join("objects").join(format!(
        ".bucket-{}.object-{}.metadata.json",
        enc(BUCKET),
        enc(key)
    ))
}

fn put(p: &Proxy, key: &str, data: &[u8]) {
    let r = request(
        p.addr,
        &signed_request(p, "PUT", &format!("/{BUCKET}/{key}"), data, &[]),
    )
    .expect("answer");
    assert_eq!(
        r.status,
        200,
        "PUT {key}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

fn get(p: &Proxy, key: &str) -> Option<RawResponse> {
    request(
        p.addr,
        &signed_request(p, "GET", &format!("/{BUCKET}/{key}"), b"", &[]),
    )
}

fn envelope_bytes(p: &Proxy, key: &str) -> (serde_json::Value, Vec<u8>) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta_path(p, key)).unwrap()).unwrap();
    let env = meta["user_metadata"]["sealgate-envelope"]
        .as_str()
        .expect("envelope stored")
        .to_string();
    (meta, STANDARD.decode(env).unwrap())
}

fn write_envelope(p: &Proxy, key: &str, mut meta: serde_json::Value, env: &[u8]) {
    meta["user_metadata"]["sealgate-envelope"] = serde_json::Value::String(STANDARD.encode(env));
    std::fs::write(meta_path(p, key), serde_json::to_vec(&meta).unwrap()).unwrap();
}

/// Segment `i` of a single-part object: its byte range in the stored body.
fn segment_range(i: usize, plain_len: usize) -> std::ops::Range<usize> {
    let start = 32 + i * (S + 16);
    let len = (plain_len - i * S).min(S) + 16;
    start..start + len
}

fn segments(plain_len: usize) -> usize {
    plain_len.div_ceil(S).max(1)
}

/// A size whose object has at least `min_segments` segments (at most 5).
fn size_for(rng: &mut impl Rng, min_segments: usize) -> usize {
    let lo = (min_segments - 1) * S + 1;
    rng.random_range(lo..=5 * S)
}

#[test]
fn every_tampered_object_fails_to_read_and_controls_read_back() {
    let p = Proxy::start_with(|c| c.encryption.default.segment_size = S as u32);
    let mk = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5ea1_6a7e);
    let mut tampered: Vec<(String, Mutation)> = Vec::new();

    for (m_index, m) in ALL.iter().copied().enumerate() {
        for n in 0..OBJECTS_PER_MUTATION {
            let key = format!("m{m_index:02}-{n:03}");
            let min_segments = match m {
                Mutation::ReorderSegments
                | Mutation::DuplicateSegment
                | Mutation::TruncateAtSegmentBoundary => 2,
                _ => 1,
            };
            let len = if m == Mutation::FlipSegmentByte && n == 0 {
                0
            } else {
                size_for(&mut rng, min_segments)
            };
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            put(&p, &key, &data);
            let path = body_path(&p, &key);
            let mut body = std::fs::read(&path).unwrap();
            match m {
                Mutation::FlipSegmentByte => {
                    let seg = rng.random_range(0..segments(len));
                    let r = segment_range(seg, len);
                    // The ciphertext bytes before the tag (an empty segment has only its tag).
                    let i = if r.len() > 16 {
                        rng.random_range(r.start..r.end - 16)
                    } else {
                        r.start
                    };
                    body[i] ^= 1 << rng.random_range(0..8);
                }
                Mutation::FlipTag => {
                    let r = segment_range(rng.random_range(0..segments(len)), len);
                    let i = rng.random_range(r.end - 16..r.end);
                    body[i] ^= 1 << rng.random_range(0..8);
                }
                Mutation::FlipPartHeader => {
                    let i = rng.random_range(0..32);
                    body[i] ^= 1 << rng.random_range(0..8);
                }
                Mutation::FlipEnvelopeByte => {
                    let (meta, mut env) = envelope_bytes(&p, &key);
                    let i = n % env.len();
                    env[i] ^= 1 << rng.random_range(0..8);
                    write_envelope(&p, &key, meta, &env);
                }
                Mutation::TruncateAtSegmentBoundary => {
                    let keep = rng.random_range(1..segments(len));
                    body.truncate(segment_range(keep, len).start);
                }
                Mutation::TruncateInsideSegment => {
                    let r = segment_range(rng.random_range(0..segments(len)), len);
                    body.truncate(rng.random_range(r.start + 1..r.end));
                }
                Mutation::ReorderSegments => {
                    let a = segment_range(0, len);
                    let b = segment_range(1, len);
                    if b.len() == a.len() {
                        let first: Vec<u8> = body[a.clone()].to_vec();
                        let second: Vec<u8> = body[b.clone()].to_vec();
                        body[a].copy_from_slice(&second);
                        body[b].copy_from_slice(&first);
                    } else {
                        // The last segment is short: move it first instead.
                        let first: Vec<u8> = body[a.clone()].to_vec();
                        let second: Vec<u8> = body[b.clone()].to_vec();
                        let mut out = body[..32].to_vec();
                        out.extend_from_slice(&second);
                        out.extend_from_slice(&first);
                        out.extend_from_slice(&body[b.end..]);
                        body = out;
                    }
                }
                Mutation::DuplicateSegment => {
                    let a = segment_range(0, len);
                    let b = segment_range(1, len);
                    let first: Vec<u8> = body[a].to_vec();
                    let mut out = body[..b.start].to_vec();
                    out.extend_from_slice(&first);
                    out.extend_from_slice(&body[b.end.min(body.len())..]);
                    body = out;
                }
                Mutation::AppendBytes => {
                    body.extend_from_slice(&vec![0u8; rng.random_range(1..64)])
                }
                Mutation::SwapBodies | Mutation::SwapEnvelopes => {}
                Mutation::ReplayOlderBody => {
                    // Same key, same size, newer content: the older body under the newer envelope.
                    let older = body.clone();
                    let mut newer = vec![0u8; len];
                    rng.fill_bytes(&mut newer);
                    put(&p, &key, &newer);
                    body = older;
                }
                Mutation::DropEnvelope => {
                    let (mut meta, _) = envelope_bytes(&p, &key);
                    meta["user_metadata"] = serde_json::json!({});
                    std::fs::write(meta_path(&p, &key), serde_json::to_vec(&meta).unwrap())
                        .unwrap();
                }
            }
            std::fs::write(&path, &body).unwrap();
            tampered.push((key, m));
        }
        if matches!(m, Mutation::SwapBodies | Mutation::SwapEnvelopes) {
            // Pairs of same-size objects written just above: swap within each pair.
            let keys: Vec<String> = (0..OBJECTS_PER_MUTATION)
                .map(|n| format!("m{m_index:02}-{n:03}"))
                .collect();
            for pair in keys.chunks(2) {
                let [a, b] = pair else { continue };
                let len = size_for(&mut rng, 1);
                for k in [a, b] {
                    let mut d = vec![0u8; len];
                    rng.fill_bytes(&mut d);
                    put(&p, k, &d);
                }
                let (pa, pb) = if m == Mutation::SwapBodies {
                    (body_path(&p, a), body_path(&p, b))
                } else {
                    (meta_path(&p, a), meta_path(&p, b))
                };
                let (x, y) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
                std::fs::write(&pa, y).unwrap();
                std::fs::write(&pb, x).unwrap();
            }
        }
    }

    // Controls: untampered objects of every size read back exactly.
    let mut controls = Vec::new();
    for n in 0..20 {
        let len = if n == 0 { 0 } else { size_for(&mut rng, 1) };
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        let key = format!("control-{n:02}");
        put(&p, &key, &data);
        controls.push((key, data));
    }
    for (key, data) in &controls {
        let r = get(&p, key).expect("control answered");
        assert_eq!(r.status, 200, "control {key}");
        assert!(r.is_complete(), "control {key} incomplete");
        assert_eq!(&r.body, data, "control {key} altered");
    }

    assert!(
        tampered.len() >= 1000,
        "{} tampered objects",
        tampered.len()
    );
    let mut clean_reads = Vec::new();
    let mut by_outcome = std::collections::BTreeMap::<String, usize>::new();
    for (key, m) in &tampered {
        // A connection closed before a complete answer is a failed read too: the body
        // failed after the head was queued and hyper aborted the connection.
        let Some(r) = get(&p, key) else {
            *by_outcome.entry("connection aborted".into()).or_default() += 1;
            continue;
        };
        let outcome = if r.status == 200 && r.is_complete() {
            clean_reads.push(format!("{key} ({m:?})"));
            "complete 200".to_string()
        } else if r.status == 200 {
            let _ = m;
            "200 cut short".to_string()
        } else {
            format!("{}", r.status)
        };
        *by_outcome.entry(outcome).or_default() += 1;
    }
    println!(
        "tamper matrix: {} objects, outcomes {:?}",
        tampered.len(),
        by_outcome
    );
    assert!(
        clean_reads.is_empty(),
        "tampered objects read as a complete 200: {clean_reads:?}"
    );
}
