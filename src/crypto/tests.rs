//! Streaming round trips, ranges and tamper tests across the whole format.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use proptest::prelude::*;

use super::*;

/// A body that yields the given chunks, then ends, or with `true` stays pending: a
/// backend that has sent this much so far.
struct Chunks(VecDeque<Bytes>, bool);

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.0.pop_front() {
            Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
            None if self.1 => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

/// Returns Pending (after waking) before every frame of the inner body.
struct Stutter<B>(B, bool);

impl<B: Body<Data = Bytes, Error = BoxError> + Unpin> Body for Stutter<B> {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.1 = !self.1;
        if self.1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

/// Splits `data` into chunks of pseudo-random sizes 1..=max drawn from `seed`.
fn chunks(data: &[u8], seed: u64, max: usize) -> Chunks {
    let mut out = VecDeque::new();
    let mut x = seed | 1;
    let mut rest = data;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = usize::try_from(x % max as u64).unwrap() + 1;
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push_back(Bytes::copy_from_slice(a));
        rest = b;
    }
    Chunks(out, false)
}

fn whole(data: &[u8]) -> Chunks {
    Chunks(VecDeque::from([Bytes::copy_from_slice(data)]), false)
}

/// Drains a body (re-polling on Pending); checks size_hint stays exact.
fn collect<B: Body<Data = Bytes, Error = BoxError> + Unpin>(
    mut body: B,
) -> Result<Vec<u8>, BoxError> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        let hint = body.size_hint().exact();
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    out.extend_from_slice(&d);
                    if let Some(h) = hint {
                        assert!(len_u64(d.len()) <= h, "frame larger than size hint");
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(e),
            Poll::Ready(None) => {
                assert!(
                    hint.is_none_or(|h| h == 0),
                    "ended with {hint:?} bytes promised"
                );
                return Ok(out);
            }
            Poll::Pending => {}
        }
    }
}

fn plaintext(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn dk(byte: u8) -> DataKey {
    DataKey::from_bytes([byte; 32])
}

fn encrypt_part(key: &DataKey, part: u32, data: &[u8], s: u32) -> Vec<u8> {
    let out = collect(EncryptBody::new(
        chunks(data, 7, 3000),
        key,
        part,
        len_u64(data.len()),
        s,
    ))
    .unwrap();
    assert_eq!(
        len_u64(out.len()),
        part_ciphertext_len(len_u64(data.len()), s)
    );
    out
}

/// Encrypts `data` as `n` parts of `p` bytes (last part takes the rest).
fn encrypt_object(key: &DataKey, data: &[u8], n: u32, p: usize, s: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for k in 1..=n {
        let start = p * (k as usize - 1);
        let end = if k == n { data.len() } else { start + p };
        out.extend(encrypt_part(key, k, &data[start..end], s));
    }
    out
}

fn decrypt_whole(key: &DataKey, cipher: &[u8], n: u32, s: u32) -> Result<Vec<u8>, BoxError> {
    let t = object_plaintext_len(len_u64(cipher.len()), n, s).ok_or("impossible size")?;
    let plan = DecryptPlan::whole(n, s, t)?;
    collect(DecryptBody::new(
        chunks(cipher, 99, 5000),
        key.clone(),
        plan,
    ))
}

/// Does what a GET handler does for a range: plan, fetch header and range, decrypt.
fn decrypt_range(
    key: &DataKey,
    cipher: &[u8],
    layout: &ObjectLayout,
    a: u64,
    b: u64,
    seed: u64,
) -> Result<Vec<u8>, BoxError> {
    let plan = plan_range(layout, a, b).ok_or("unsatisfiable")?;
    let header = match plan.header_range {
        Some((h0, h1)) => {
            let bytes: [u8; 32] = cipher[h0 as usize..=h1 as usize].try_into()?;
            Some(parse_part_header(&bytes)?)
        }
        None => None,
    };
    let fetched = &cipher[plan.cipher_start as usize..=plan.cipher_end_inclusive as usize];
    let body = DecryptBody::new(
        chunks(fetched, seed, 9000),
        key.clone(),
        DecryptPlan::range(layout, &plan, header)?,
    );
    assert_eq!(body.size_hint().exact(), Some(plan.take));
    collect(body)
}

const S: u32 = 4096;
const SEG: usize = 4096 + 16;

#[test]
fn empty_part_is_one_empty_sealed_segment() {
    let c = encrypt_part(&dk(1), 1, &[], S);
    assert_eq!(c.len(), 48);
    assert_eq!(decrypt_whole(&dk(1), &c, 1, S).unwrap(), b"");
    assert!(decrypt_whole(&dk(1), &c[..32], 1, S).is_err());
}

#[test]
fn encrypt_rejects_bodies_of_the_wrong_length() {
    let data = plaintext(5000, 1);
    let short = EncryptBody::new(whole(&data[..4999]), &dk(1), 1, 5000, S);
    assert!(
        collect(short)
            .unwrap_err()
            .to_string()
            .contains("ended after 4999")
    );
    let long = EncryptBody::new(whole(&data), &dk(1), 1, 4999, S);
    assert!(collect(long).unwrap_err().to_string().contains("longer"));
    // Exactly one segment, then an extra byte: the final segment must not go out.
    let mut body = EncryptBody::new(chunks(&data[..4097], 3, 4096), &dk(1), 1, 4096, S);
    let mut cx = Context::from_waker(Waker::noop());
    let first = Pin::new(&mut body).poll_frame(&mut cx);
    assert!(matches!(first, Poll::Ready(Some(Err(_)))));
    assert!(collect(EncryptBody::new(whole(&data), &dk(1), 1, 5000, 1000)).is_err());
    assert!(collect(EncryptBody::new(whole(&data), &dk(1), 0, 5000, S)).is_err());
}

#[test]
fn bodies_resume_after_pending() {
    let data = plaintext(3 * 4096 + 7, 8);
    let c = collect(EncryptBody::new(
        Stutter(chunks(&data, 5, 1000), false),
        &dk(8),
        1,
        len_u64(data.len()),
        S,
    ))
    .unwrap();
    let plan = DecryptPlan::whole(1, S, len_u64(data.len())).unwrap();
    assert_eq!(
        collect(DecryptBody::new(
            Stutter(chunks(&c, 6, 700), false),
            dk(8),
            plan
        ))
        .unwrap(),
        data
    );
}

#[test]
fn multipart_object_round_trips() {
    let data = plaintext(3 * 8192 + 123, 2);
    let c = encrypt_object(&dk(2), &data, 4, 8192, S);
    assert_eq!(
        len_u64(c.len()),
        object_ciphertext_len(len_u64(data.len()), 4, S)
    );
    assert_eq!(decrypt_whole(&dk(2), &c, 4, S).unwrap(), data);
}

/// A 2.5-segment single-part object and a 3-part object to tamper with.
fn fixtures() -> (Vec<u8>, Vec<u8>) {
    let single = encrypt_object(&dk(3), &plaintext(2 * 4096 + 2048, 3), 1, 0, S);
    let multi = encrypt_object(&dk(3), &plaintext(2 * 4096 + 100, 3), 3, 4096, S);
    (single, multi)
}

#[test]
fn any_flipped_bit_fails() {
    let (single, multi) = fixtures();
    for (c, n) in [(single, 1), (multi, 3)] {
        assert!(decrypt_whole(&dk(3), &c, n, S).is_ok());
        let mut tried = 0;
        for i in 0..c.len() {
            let mut t = c.clone();
            t[i] ^= 1 << (i % 8);
            assert!(
                decrypt_whole(&dk(3), &t, n, S).is_err(),
                "byte {i} of {n}-part object"
            );
            tried += 1;
        }
        assert_eq!(tried, c.len());
    }
}

#[test]
fn truncation_at_and_inside_segment_boundaries_fails() {
    let (single, _) = fixtures();
    let mut cuts = vec![0, 1, 31, 32, 33];
    for k in 1..=3 {
        let boundary = 32 + k * SEG;
        cuts.extend([
            boundary - 17,
            boundary - 16,
            boundary - 1,
            boundary,
            boundary + 1,
        ]);
    }
    for cut in cuts.into_iter().filter(|&c| c < single.len()) {
        // Declared with the true length (the backend lies about the body, not the size)...
        let plan = DecryptPlan::whole(1, S, 2 * 4096 + 2048).unwrap();
        assert!(
            collect(DecryptBody::new(whole(&single[..cut]), dk(3), plan)).is_err(),
            "cut {cut}"
        );
        // ...or with a size recomputed from the truncated body.
        assert!(
            decrypt_whole(&dk(3), &single[..cut], 1, S).is_err(),
            "cut {cut}"
        );
    }
}

#[test]
fn reordered_duplicated_or_appended_segments_fail() {
    let (single, _) = fixtures();
    let (h, s0, s1, s2) = (
        &single[..32],
        &single[32..32 + SEG],
        &single[32 + SEG..32 + 2 * SEG],
        &single[32 + 2 * SEG..],
    );
    for body in [
        [h, s1, s0, s2].concat(),
        [h, s0, s0, s2].concat(),
        [h, s0, s1, s1].concat(),
    ] {
        assert!(decrypt_whole(&dk(3), &body, 1, S).is_err());
    }
    let mut extra = single.clone();
    extra.push(0);
    let plan = DecryptPlan::whole(1, S, 2 * 4096 + 2048).unwrap();
    let err = collect(DecryptBody::new(whole(&extra), dk(3), plan)).unwrap_err();
    assert!(err.to_string().contains("continues"), "{err}");
}

#[test]
fn segments_moved_between_parts_fail() {
    let (_, multi) = fixtures();
    let part = 32 + SEG;
    // Swap whole parts 1 and 2, then only their first segments.
    let swapped = [&multi[part..2 * part], &multi[..part], &multi[2 * part..]].concat();
    assert!(decrypt_whole(&dk(3), &swapped, 3, S).is_err());
    let mut moved = multi.clone();
    moved[32..part].copy_from_slice(&multi[part + 32..2 * part]);
    assert!(decrypt_whole(&dk(3), &moved, 3, S).is_err());
}

#[test]
fn segments_of_two_upload_attempts_do_not_splice() {
    let data = plaintext(3 * 4096, 4);
    let a = encrypt_part(&dk(4), 1, &data, S);
    let b = encrypt_part(&dk(4), 1, &data, S);
    assert_ne!(a, b, "each attempt has its own part salt");
    let spliced = [&a[..32 + SEG], &b[32 + SEG..]].concat();
    assert!(decrypt_whole(&dk(4), &spliced, 1, S).is_err());
}

#[test]
fn bodies_of_two_objects_or_versions_do_not_swap() {
    let (single, _) = fixtures();
    assert!(decrypt_whole(&dk(9), &single, 1, S).is_err());
    // An older version of the same key: each PUT seals a new envelope, so a new DK.
    let w = WrappingKey::from_bytes([1; 32]);
    let (old_env, old_dk) = Envelope::seal_new(&w, "k", b"blob", true, S, "b", "o").unwrap();
    let (new_env, _) = Envelope::seal_new(&w, "k", b"blob", true, S, "b", "o").unwrap();
    let old_body = encrypt_part(&old_dk, 1, b"old contents", S);
    let current = new_env.open(&w, "b", "o").unwrap();
    assert!(decrypt_whole(&current, &old_body, 1, S).is_err());
    assert!(decrypt_whole(&old_env.open(&w, "b", "o").unwrap(), &old_body, 1, S).is_ok());
}

#[test]
fn part_header_length_must_match_the_layout() {
    let (_, multi) = fixtures();
    // Claim 2 parts instead of 3: sizes would differ, so re-plan with a forged total.
    let plan = DecryptPlan::whole(2, S, 2 * 4096 + 100).unwrap();
    assert!(collect(DecryptBody::new(whole(&multi), dk(3), plan)).is_err());
    // A range whose separately fetched header belongs to another part.
    let layout = ObjectLayout::new(S, 3, 4096, 2 * 4096 + 100).unwrap();
    let plan = plan_range(&layout, 8192 + 10, 8192 + 20).unwrap();
    assert_eq!(plan.first_part, 3);
    let wrong: [u8; 32] = multi[..32].try_into().unwrap();
    assert!(DecryptPlan::range(&layout, &plan, Some(parse_part_header(&wrong).unwrap())).is_err());
}

#[test]
fn range_with_a_header_from_another_part_fails() {
    let data = plaintext(2 * 8192 + 500, 5);
    let c = encrypt_object(&dk(5), &data, 3, 8192, S);
    let layout = ObjectLayout::new(S, 3, 8192, len_u64(data.len())).unwrap();
    let plan = plan_range(&layout, 5000, 5010).unwrap();
    let part2 = layout.part_cipher_start(2) as usize;
    let other: [u8; 32] = c[part2..part2 + 32].try_into().unwrap();
    let fetched = &c[plan.cipher_start as usize..=plan.cipher_end_inclusive as usize];
    let dplan =
        DecryptPlan::range(&layout, &plan, Some(parse_part_header(&other).unwrap())).unwrap();
    assert!(collect(DecryptBody::new(whole(fetched), dk(5), dplan)).is_err());
    assert_eq!(
        decrypt_range(&dk(5), &c, &layout, 5000, 5010, 1).unwrap(),
        &data[5000..=5010]
    );
}

fn segment_sizes() -> impl Strategy<Value = u32> {
    (12u32..=20).prop_map(|log| 1u32 << log)
}

proptest! {
    #[test]
    fn seal_open_round_trips_for_any_length_and_segment_size(
        s in segment_sizes(), frac in 0.0f64..5.0, seed in any::<u64>(), part in 1u32..10_000,
    ) {
        let len = (f64::from(s) * frac) as usize;
        let data = plaintext(len, seed as u8);
        let key = dk(seed as u8);
        let body = EncryptBody::new(chunks(&data, seed, 3 * s as usize), &key, part, len_u64(len), s);
        let c = collect(body).unwrap();
        prop_assert_eq!(len_u64(c.len()), part_ciphertext_len(len_u64(len), s));
        let header = parse_part_header(c[..32].try_into().unwrap()).unwrap();
        prop_assert_eq!(header.plain_len(), len_u64(len));
        // Decrypt as the only part of an object when it is part 1.
        if part == 1 {
            let plan = DecryptPlan::whole(1, s, len_u64(len)).unwrap();
            let back = collect(DecryptBody::new(chunks(&c, seed ^ 5, 2 * s as usize), key, plan)).unwrap();
            prop_assert!(back == data);
        }
    }
}

proptest! {
    #[test]
    fn ranges_decrypt_to_exactly_the_slice(
        n in 1u32..4, segs in 1usize..3, last in 1usize..10_000, a in any::<u64>(), b in any::<u64>(), seed in any::<u64>(),
    ) {
        let p = segs * S as usize;
        let len = if n == 1 { last } else { p * (n as usize - 1) + last };
        let data = plaintext(len, seed as u8);
        let c = encrypt_object(&dk(6), &data, n, p, S);
        let layout = ObjectLayout::new(S, n, if n == 1 { len_u64(len) } else { len_u64(p) }, len_u64(len)).unwrap();
        let header: [u8; 32] = c[..32].try_into().unwrap();
        prop_assert_eq!(ObjectLayout::from_ciphertext(len_u64(c.len()), n, S, &parse_part_header(&header).unwrap()).unwrap(), layout);
        let start = a % len_u64(len);
        let end = start + b % 20_000;
        let got = decrypt_range(&dk(6), &c, &layout, start, end, seed).unwrap();
        let end = end.min(len_u64(len) - 1);
        prop_assert!(got == data[start as usize..=end as usize]);
        if n > 1 && seed % 8 == 0 {
            prop_assert!(decrypt_whole(&dk(6), &c, n, S).unwrap() == data);
        }
    }
}

/// One read of a backend connection, at its buffer's bound, holds two whole segments of
/// the default size with their framing, and they come out as one frame: a decrypting
/// GET hands the client two segments per backend read in one write, not one per write.
#[test]
fn one_backend_read_opens_to_one_frame_of_two_default_segments() {
    let s = DEFAULT_SEGMENT_SIZE;
    let data = plaintext(6 * s as usize, 3);
    let cipher = encrypt_part(&dk(4), 1, &data, s);
    let read = crate::upstream::client::MAX_BUF_SIZE;
    let mut body = DecryptBody::new(
        Chunks(
            VecDeque::from([Bytes::copy_from_slice(&cipher[..read])]),
            true,
        ),
        dk(4),
        DecryptPlan::whole(1, s, len_u64(data.len())).unwrap(),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = Vec::new();
    while let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(&mut cx) {
        let frame = frame.expect("more to come").expect("opens");
        frames.push(frame.into_data().expect("data"));
    }
    let lens: Vec<usize> = frames.iter().map(Bytes::len).collect();
    assert_eq!(lens, [2 * s as usize], "frames from one read");
    assert_eq!(frames[0], data[..2 * s as usize]);
}

#[test]
fn constant_time_eq_tells_every_difference() {
    let a = [7u8; 32];
    assert!(constant_time_eq(&a, &a.clone()));
    assert!(constant_time_eq(&[], &[]));
    for i in [0, 15, 31] {
        let mut b = a;
        b[i] ^= 0x80;
        assert!(!constant_time_eq(&a, &b), "byte {i} differs");
    }
    assert!(!constant_time_eq(&a, &a[..31]), "a prefix is not equal");
    assert!(!constant_time_eq(&a[..31], &a), "nor the other way round");
}
