//! Reproduces the worked example of `docs/FORMAT.md` byte for byte, and checks that every
//! value quoted here also appears verbatim in the document, so the two cannot drift.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::digest::{SHA256, digest};
use bytes::Bytes;
use http_body::{Body, Frame};
use sealgate::crypto::keys::{derive_part_key, envelope_mac_key, key_commitment};
use sealgate::crypto::{
    BoxError, DecryptBody, DecryptPlan, EncryptBody, Envelope, ObjectLayout, WrappingKey,
    object_plaintext_len, parse_part_header, plan_range,
};

const DOC: &str = include_str!("../docs/FORMAT.md");

struct Once(Option<Bytes>);
impl Body for Once {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

fn collect(mut body: impl Body<Data = Bytes, Error = BoxError> + Unpin) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = VecDeque::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => out.extend(f.into_data().unwrap_or_default()),
            Poll::Ready(None) => return out.into(),
            other => panic!(
                "unexpected {:?}",
                other.map(|o| o.map(|r| r.map(|_| ()).map_err(|e| e.to_string())))
            ),
        }
    }
}

fn seq(start: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| start.wrapping_add(i as u8)).collect()
}

/// Computes every value the document quotes, in document order.
fn example() -> Vec<(&'static str, String)> {
    let w = WrappingKey::from_slice(&seq(0x00, 32)).unwrap();
    let salt: [u8; 32] = seq(0x20, 32).try_into().unwrap();
    let part_salt: [u8; 16] = seq(0x40, 16).try_into().unwrap();
    let plaintext: Vec<u8> = (0..10_240usize).map(|i| i as u8).collect();
    let (env, dk) = Envelope::seal_new_with_salt(
        &w,
        "local:example",
        b"example-kms-blob",
        true,
        4096,
        "example-bucket",
        "photos/cat.txt",
        salt,
    )
    .unwrap();
    let mut v = vec![
        ("data key", hex::encode(dk.expose_secret())),
        ("key commitment", hex::encode(key_commitment(&dk))),
        ("envelope MAC key", hex::encode(*envelope_mac_key(&dk))),
        ("envelope bytes", hex::encode(env.to_bytes())),
        ("envelope base64", env.encode()),
        ("bucket key id", env.bucket_key_id()),
    ];
    let body = collect(EncryptBody::with_part_salt(
        Once(Some(plaintext.clone().into())),
        &dk,
        1,
        10_240,
        4096,
        part_salt,
    ));
    v.push((
        "part key",
        hex::encode(*derive_part_key(&dk, &part_salt, 1)),
    ));
    v.push(("part header", hex::encode(&body[..32])));
    for (i, name) in [(0usize, "segment 0"), (1, "segment 1"), (2, "segment 2")] {
        let start = 32 + i * (4096 + 16);
        let end = (start + 4096 + 16).min(body.len());
        let seg = &body[start..end];
        v.push((
            name,
            format!(
                "{}..{}",
                hex::encode(&seg[..16]),
                hex::encode(&seg[seg.len() - 16..])
            ),
        ));
    }
    v.push(("body length", body.len().to_string()));
    v.push(("body sha256", hex::encode(digest(&SHA256, &body))));

    // Round trip through the public read path, whole and ranged.
    let env2 = Envelope::decode(&env.encode()).unwrap();
    let dk2 = env2.open(&w, "example-bucket", "photos/cat.txt").unwrap();
    let t = object_plaintext_len(body.len() as u64, 1, env2.segment_size()).unwrap();
    let plan = DecryptPlan::whole(1, 4096, t).unwrap();
    assert_eq!(
        collect(DecryptBody::new(
            Once(Some(body.clone().into())),
            dk2.clone(),
            plan
        )),
        plaintext
    );
    let layout = ObjectLayout::single(4096, t).unwrap();
    let r = plan_range(&layout, 5000, 9000).unwrap();
    let header = parse_part_header(body[..32].try_into().unwrap()).unwrap();
    let fetched =
        Bytes::copy_from_slice(&body[r.cipher_start as usize..=r.cipher_end_inclusive as usize]);
    let dplan = DecryptPlan::range(&layout, &r, Some(header)).unwrap();
    assert_eq!(
        collect(DecryptBody::new(Once(Some(fetched)), dk2.clone(), dplan)),
        &plaintext[5000..=9000]
    );
    v.push((
        "range 5000-9000",
        format!("bytes={}-{}", r.cipher_start, r.cipher_end_inclusive),
    ));

    // Rewrap: same data key under another wrapping key, for a renamed object.
    let w2 = WrappingKey::from_slice(&seq(0x60, 32)).unwrap();
    let moved = env2
        .rewrap_with_salt(
            &dk2,
            &w2,
            "local:rotated",
            b"rotated-kms-blob",
            false,
            "archive",
            "cat.txt",
            seq(0x80, 32).try_into().unwrap(),
        )
        .unwrap();
    assert_eq!(
        moved
            .open(&w2, "archive", "cat.txt")
            .unwrap()
            .expose_secret(),
        dk.expose_secret()
    );
    v.push(("rewrapped envelope bytes", hex::encode(moved.to_bytes())));
    v
}

const EXPECTED: &[(&str, &str)] = &[
    (
        "data key",
        "370b3d336cd9325829521d67e469b87e222cef557d85083cfa6c16361aeef20f",
    ),
    (
        "key commitment",
        "940363c21c6051796c5e92de6e6907ed3664c8aafca80812a284d34f89bfe066",
    ),
    (
        "envelope MAC key",
        "6f2b4c3c9fa4bf695189095907f67bc33dba4ecbd0f5387202f1765d8449cbd7",
    ),
    (
        "envelope bytes",
        "01010c000d6c6f63616c3a6578616d706c6500106578616d706c652d6b6d732d626c6f62202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f940363c21c6051796c5e92de6e6907ed3664c8aafca80812a284d34f89bfe0666e810af852ddb161c602410f06c825d3e35e39e0d8d4987f900ebf6201956348",
    ),
    (
        "envelope base64",
        "AQEMAA1sb2NhbDpleGFtcGxlABBleGFtcGxlLWttcy1ibG9iICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj+UA2PCHGBReWxekt5uaQftNmTIqvyoCBKihNNPib/gZm6BCvhS3bFhxgJBDwbIJdPjXjng2NSYf5AOv2IBlWNI",
    ),
    ("bucket key id", "b6206eb4de74bd34"),
    (
        "part key",
        "d28a3555a5e18fadeef37f5aa3f3150a65c280a743b43ce991f7607a98bf0fbc",
    ),
    (
        "part header",
        "53475031010000000000000000002800404142434445464748494a4b4c4d4e4f",
    ),
    (
        "segment 0",
        "a4f3574d0c7359a78b3c8ed85a35c87a..97ff1f7a2233c4abfff226419f3cfbf8",
    ),
    (
        "segment 1",
        "b38669fc3afa73cc338dcf52d8a529b1..7b143510a91f4336a09a3c086b4caebe",
    ),
    (
        "segment 2",
        "8f26852aaf5824932b622a7f94ba8d48..9e969d3e4237825baab10beebdfb6fbe",
    ),
    ("body length", "10320"),
    (
        "body sha256",
        "4050adb04db848d5e05429bf9b70f37d4db677dd7e5da32b19cfa875415fc64e",
    ),
    ("range 5000-9000", "bytes=4144-10319"),
    (
        "rewrapped envelope bytes",
        "01020c000d6c6f63616c3a726f74617465640010726f74617465642d6b6d732d626c6f62808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f576dff467a0037ce44db6ca2d0c1773f3495eb670a999f9897292f6b8c028192249be569cb9b1e9b48925d3207c75e19940363c21c6051796c5e92de6e6907ed3664c8aafca80812a284d34f89bfe066a8a1de24138489380297cef5aadf193c3b598c9b43e802a62cbae3f0c7aab26c",
    ),
];

#[test]
fn worked_example_matches_the_document() {
    let got = example();
    for (name, value) in &got {
        println!("{name}: {value}");
    }
    assert_eq!(got.len(), EXPECTED.len(), "EXPECTED is incomplete");
    for ((name, value), (ename, evalue)) in got.iter().zip(EXPECTED) {
        assert_eq!((name, value.as_str()), (ename, *evalue));
        // The document wraps long hex at 64 characters; compare with whitespace removed.
        let doc: String = DOC.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(
            doc.contains(evalue),
            "docs/FORMAT.md lacks the {name} value"
        );
    }
}
