//! AES-256-GCM throughput of the three candidate crates (raw in-place loops), and the
//! format's own segment seal/open, streaming bodies and envelope open.
//!
//! Run once with short times: `cargo bench --bench crypto -- --measurement-time 2
//! --warm-up-time 1`. Figures are recorded in docs/FORMAT.md (implementation notes).

use std::collections::VecDeque;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http_body::{Body, Frame};
use sealgate::crypto::{
    BoxError, DataKey, DecryptBody, DecryptPlan, EncryptBody, Envelope, PartHeader, SegmentOpener,
    SegmentSealer, WrappingKey,
};

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
const KEY: [u8; 32] = [7; 32];
const NONCE: [u8; 12] = [1; 12];

fn awslc_key() -> aws_lc_rs::aead::LessSafeKey {
    use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap())
}

fn ring_key() -> ring::aead::LessSafeKey {
    use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap())
}

fn raw(c: &mut Criterion) {
    let rc = aes_gcm::Aes256Gcm::new_from_slice(&KEY).unwrap();
    let (al, rg) = (awslc_key(), ring_key());
    for (size, name) in SIZES {
        let mut g = c.benchmark_group(format!("seal/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size];
        g.bench_function("aws-lc-rs", |b| {
            b.iter(|| {
                let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
                black_box(
                    al.seal_in_place_separate_tag(n, aws_lc_rs::aead::Aad::empty(), &mut buf)
                        .unwrap(),
                )
            })
        });
        g.bench_function("ring", |b| {
            b.iter(|| {
                let n = ring::aead::Nonce::assume_unique_for_key(NONCE);
                black_box(
                    rg.seal_in_place_separate_tag(n, ring::aead::Aad::empty(), &mut buf)
                        .unwrap(),
                )
            })
        });
        g.bench_function("aes-gcm", |b| {
            b.iter(|| {
                black_box(
                    rc.encrypt_in_place_detached((&NONCE).into(), b"", &mut buf)
                        .unwrap(),
                )
            })
        });
        g.finish();

        // Opening decrypts in place, so each iteration gets a fresh ciphertext copy
        // (made outside the timed section).
        let mut sealed = vec![0u8; size];
        let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
        let tag = al
            .seal_in_place_separate_tag(n, aws_lc_rs::aead::Aad::empty(), &mut sealed)
            .unwrap();
        let ct_only = sealed.clone();
        sealed.extend_from_slice(tag.as_ref());
        let mut g = c.benchmark_group(format!("open/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("aws-lc-rs", |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
                    al.open_in_place(n, aws_lc_rs::aead::Aad::empty(), buf)
                        .unwrap()
                        .len()
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("ring", |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    let n = ring::aead::Nonce::assume_unique_for_key(NONCE);
                    rg.open_in_place(n, ring::aead::Aad::empty(), buf)
                        .unwrap()
                        .len()
                },
                BatchSize::LargeInput,
            )
        });
        let tag_arr = aes_gcm::Tag::clone_from_slice(tag.as_ref());
        g.bench_function("aes-gcm", |b| {
            b.iter_batched_ref(
                || ct_only.clone(),
                |buf| {
                    rc.decrypt_in_place_detached((&NONCE).into(), b"", buf, &tag_arr)
                        .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

struct Chunks(VecDeque<Bytes>);
impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn drain(mut body: impl Body<Data = Bytes, Error = BoxError> + Unpin) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut n = 0;
    while let Poll::Ready(Some(f)) = Pin::new(&mut body).poll_frame(&mut cx) {
        n += f.unwrap().into_data().map(|d| d.len()).unwrap_or(0);
    }
    n
}

fn format(c: &mut Criterion) {
    const SEG: usize = 64 << 10;
    let dk = DataKey::from_bytes(KEY);
    let header = PartHeader::new(1 << 20, [3; 16]);
    let sealer = SegmentSealer::new(&dk, &header, 1).unwrap();
    let opener = SegmentOpener::new(&dk, &header, 1).unwrap();
    let al = awslc_key();

    let mut g = c.benchmark_group("format-seal/64KiB");
    g.throughput(Throughput::Bytes(SEG as u64));
    let mut buf = vec![0u8; SEG];
    g.bench_function("raw aws-lc-rs", |b| {
        b.iter(|| {
            let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
            black_box(
                al.seal_in_place_separate_tag(n, aws_lc_rs::aead::Aad::from([0u8; 41]), &mut buf)
                    .unwrap(),
            )
        })
    });
    g.bench_function("segment", |b| {
        b.iter(|| black_box(sealer.seal_in_place(5, false, &mut buf).unwrap()))
    });
    g.finish();

    let mut sealed = vec![0u8; SEG];
    let tag = sealer.seal_in_place(5, false, &mut sealed).unwrap();
    sealed.extend_from_slice(&tag);
    let mut g = c.benchmark_group("format-open/64KiB");
    g.throughput(Throughput::Bytes(SEG as u64));
    let mut raw_sealed = vec![0u8; SEG];
    let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
    let raw_tag = al
        .seal_in_place_separate_tag(n, aws_lc_rs::aead::Aad::from([0u8; 41]), &mut raw_sealed)
        .unwrap();
    raw_sealed.extend_from_slice(raw_tag.as_ref());
    g.bench_function("raw aws-lc-rs", |b| {
        b.iter_batched_ref(
            || raw_sealed.clone(),
            |buf| {
                let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE);
                al.open_in_place(n, aws_lc_rs::aead::Aad::from([0u8; 41]), buf)
                    .unwrap()
                    .len()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("segment", |b| {
        b.iter_batched_ref(
            || sealed.clone(),
            |buf| opener.open_in_place(5, false, buf).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Streaming bodies: 1 MiB part in 64 KiB frames, 64 KiB segments (includes the copy
    // into the segment buffer, part-key derivation and frame handling).
    const PART: usize = 1 << 20;
    let plain = Bytes::from(vec![9u8; PART]);
    let frames = || Chunks(plain.chunks(SEG).map(|c| plain.slice_ref(c)).collect());
    let cipher = Bytes::from({
        let mut out = Vec::new();
        let mut body = EncryptBody::new(frames(), &dk, 1, PART as u64, SEG as u32);
        let mut cx = Context::from_waker(Waker::noop());
        while let Poll::Ready(Some(f)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(&f.unwrap().into_data().unwrap());
        }
        out
    });
    let mut g = c.benchmark_group("format-body/1MiB");
    g.throughput(Throughput::Bytes(PART as u64));
    g.bench_function("EncryptBody", |b| {
        b.iter(|| drain(EncryptBody::new(frames(), &dk, 1, PART as u64, SEG as u32)))
    });
    g.bench_function("DecryptBody", |b| {
        b.iter(|| {
            let frames = Chunks(
                cipher
                    .chunks(SEG + 16)
                    .map(|c| cipher.slice_ref(c))
                    .collect(),
            );
            drain(DecryptBody::new(
                frames,
                dk.clone(),
                DecryptPlan::whole(1, SEG as u32, PART as u64).unwrap(),
            ))
        })
    });
    g.finish();

    let w = WrappingKey::from_bytes([1; 32]);
    let (env, dk) = Envelope::seal_new(
        &w,
        "arn:aws:kms:eu-west-1:111122223333:key/abc",
        &[5; 184],
        true,
        65536,
        "bucket",
        "key",
    )
    .unwrap();
    let text = env.encode();
    let wrapped = env
        .rewrap(&dk, &w, "k", &[5; 184], true, "bucket", "key")
        .unwrap()
        .encode();
    let mut g = c.benchmark_group("envelope");
    g.bench_function("seal_new", |b| {
        b.iter(|| Envelope::seal_new(&w, "k", &[5; 184], true, 65536, "bucket", "key").unwrap())
    });
    g.bench_function("decode+open (derived)", |b| {
        b.iter(|| {
            Envelope::decode(&text)
                .unwrap()
                .open(&w, "bucket", "key")
                .unwrap()
        })
    });
    g.bench_function("decode+open (wrapped)", |b| {
        b.iter(|| {
            Envelope::decode(&wrapped)
                .unwrap()
                .open(&w, "bucket", "key")
                .unwrap()
        })
    });
    g.finish();
}

/// The key-schedule HMACs of the format (HKDF steps, commitment, envelope MAC): a
/// 32-byte key and a short message, a fresh key every call, as `crypto::keys` uses them.
fn short_hmac(c: &mut Criterion) {
    use hmac::{KeyInit as _, Mac as _};
    let key = [7u8; 32];
    let msg = [9u8; 48];
    let mut g = c.benchmark_group("hmac-sha256/32B-key-48B-message");
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, black_box(&key));
            let mut ctx = aws_lc_rs::hmac::Context::with_key(&k);
            ctx.update(black_box(&msg));
            ctx.sign()
        })
    });
    g.bench_function("aws-lc-rs (one-shot sign)", |b| {
        b.iter(|| {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, black_box(&key));
            aws_lc_rs::hmac::sign(&k, black_box(&msg))
        })
    });
    g.bench_function("hmac + sha2 (RustCrypto)", |b| {
        b.iter(|| {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(black_box(&key))
                .expect("any key length");
            m.update(black_box(&msg));
            m.finalize().into_bytes()
        })
    });
    g.finish();
}

criterion_group!(benches, raw, format, short_hmac);
criterion_main!(benches);
