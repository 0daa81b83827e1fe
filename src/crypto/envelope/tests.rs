use proptest::prelude::*;

use super::*;

const BUCKET: &str = "photos";
const KEY: &str = "2026/cat.jpg";

fn w(byte: u8) -> WrappingKey {
    WrappingKey::from_bytes([byte; 32])
}

fn sealed() -> (Envelope, DataKey) {
    Envelope::seal_new(
        &w(1),
        "arn:aws:kms:eu-west-1:111122223333:key/k1",
        &[0xb1; 184],
        true,
        65536,
        BUCKET,
        KEY,
    )
    .unwrap()
}

#[test]
fn seal_encode_decode_open_round_trips() {
    let (env, dk) = sealed();
    let decoded = Envelope::decode(&env.encode()).unwrap();
    assert_eq!(decoded, env);
    assert!(decoded.bucket_key() && !decoded.is_wrapped() && !decoded.is_customer_key());
    assert_eq!(decoded.segment_size(), 65536);
    assert_eq!(decoded.kms_blob(), &[0xb1; 184]);
    let opened = decoded.open(&w(1), BUCKET, KEY).unwrap();
    assert_eq!(opened.expose_secret(), dk.expose_secret());
    assert_eq!(env.bucket_key_id().len(), 16);
}

#[test]
fn open_rejects_wrong_wrapping_key() {
    let (env, _) = sealed();
    assert!(matches!(
        env.open(&w(2), BUCKET, KEY),
        Err(CryptoError::KeyCommitmentMismatch)
    ));
}

#[test]
fn envelope_moved_to_another_key_or_bucket_fails() {
    let (env, _) = sealed();
    assert!(matches!(
        env.open(&w(1), BUCKET, "2026/dog.jpg"),
        Err(CryptoError::EnvelopeMacMismatch)
    ));
    assert!(matches!(
        env.open(&w(1), "other", KEY),
        Err(CryptoError::EnvelopeMacMismatch)
    ));
    // Length prefixes: moving bytes between bucket and key changes the binding.
    assert!(env.open(&w(1), "photos2", "026/cat.jpg").is_err());
}

#[test]
fn every_bit_of_the_envelope_is_authenticated_or_rejected() {
    let (env, _) = sealed();
    let bytes = env.to_bytes();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            if let Ok(e) = Envelope::from_bytes(&b) {
                assert!(e.open(&w(1), BUCKET, KEY).is_err(), "byte {i} bit {bit:#x}");
            }
        }
    }
}

#[test]
fn rewrap_keeps_the_data_key_under_a_new_wrapping_key_and_name() {
    let (env, dk) = sealed();
    let moved = env
        .rewrap(
            &dk,
            &w(9),
            "key-2",
            &[0xc2; 200],
            false,
            "archive",
            "cat.jpg",
        )
        .unwrap();
    assert!(moved.is_wrapped() && !moved.bucket_key());
    assert_eq!(moved.kms_key_id(), "key-2");
    let moved = Envelope::decode(&moved.encode()).unwrap();
    let dk2 = moved.open(&w(9), "archive", "cat.jpg").unwrap();
    assert_eq!(dk2.expose_secret(), dk.expose_secret());
    assert!(matches!(
        moved.open(&w(1), "archive", "cat.jpg"),
        Err(CryptoError::UnwrapFailed)
    ));
    assert!(matches!(
        moved.open(&w(9), BUCKET, KEY),
        Err(CryptoError::UnwrapFailed)
    ));
    // Rewrapping again (e.g. KMS key rotation) still carries the same key.
    let again = moved
        .rewrap(&dk2, &w(7), "key-3", &[1; 10], true, "archive", "cat.jpg")
        .unwrap();
    assert_eq!(
        again
            .open(&w(7), "archive", "cat.jpg")
            .unwrap()
            .expose_secret(),
        dk.expose_secret()
    );
}

#[test]
fn rewrap_refuses_a_foreign_data_key() {
    let (env, _) = sealed();
    let other = DataKey::from_bytes([5; 32]);
    assert!(matches!(
        env.rewrap(&other, &w(9), "k", &[], true, "b", "k"),
        Err(CryptoError::KeyCommitmentMismatch)
    ));
}

#[test]
fn seal_rejects_bad_sizes() {
    assert!(Envelope::seal_new(&w(1), "k", &[], true, 3000, "b", "k").is_err());
    assert!(Envelope::seal_new(&w(1), "k", &[], true, 1 << 21, "b", "k").is_err());
    assert!(Envelope::seal_new(&w(1), &"k".repeat(257), &[], true, 4096, "b", "k").is_err());
    assert!(Envelope::seal_new(&w(1), "k", &[0; 513], true, 4096, "b", "k").is_err());
}

#[test]
fn largest_envelope_fits_its_documented_bound() {
    let (env, dk) = Envelope::seal_new(
        &w(1),
        &"k".repeat(MAX_KMS_KEY_ID_LEN),
        &[7; MAX_KMS_BLOB_LEN],
        true,
        4096,
        "b",
        "k",
    )
    .unwrap();
    let env = env
        .rewrap(&dk, &w(2), &"k".repeat(256), &[7; 512], true, "b", "k")
        .unwrap();
    assert_eq!(env.to_bytes().len(), MAX_ENVELOPE_LEN);
    assert_eq!(env.encode().len(), MAX_ENCODED_LEN);
    assert_eq!(MAX_ENCODED_LEN, 1228);
    // A typical AWS KMS bucket key: 75-byte key ARN, 184-byte blob, derived mode.
    let (typical, _) =
        Envelope::seal_new(&w(1), &"a".repeat(75), &[7; 184], true, 65536, "b", "k").unwrap();
    assert!(typical.encode().len() <= 1024);
}

#[test]
fn decode_is_strict() {
    let (env, _) = sealed();
    let good = env.to_bytes();
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Envelope::from_bytes(&trailing),
        Err(EnvelopeError::TrailingBytes(1))
    );
    let mut version = good.clone();
    version[0] = 2;
    assert_eq!(
        Envelope::from_bytes(&version),
        Err(EnvelopeError::UnsupportedVersion(2))
    );
    let mut flags = good.clone();
    flags[1] = 0x08;
    assert_eq!(
        Envelope::from_bytes(&flags),
        Err(EnvelopeError::BadFlags(0x08))
    );
    flags[1] = FLAG_BUCKET_KEY | FLAG_CUSTOMER_KEY;
    assert!(Envelope::from_bytes(&flags).is_err());
    let mut seg = good.clone();
    seg[2] = 21;
    assert_eq!(
        Envelope::from_bytes(&seg),
        Err(EnvelopeError::BadSegmentSize(21))
    );
    assert!(Envelope::from_bytes(&good[..good.len() - 1]).is_err());
    let text = env.encode();
    assert!(Envelope::decode(&format!("{text}\n")).is_err());
    assert!(Envelope::decode(text.trim_end_matches('=')).is_err());
    assert!(Envelope::decode(&"A".repeat(MAX_ENCODED_LEN + 4)).is_err());
}

#[test]
fn debug_shows_no_salt_or_mac() {
    let (env, dk) = sealed();
    let s = format!("{env:?} {dk:?}");
    assert!(s.contains("bucket_key_id") && !s.contains("salt") && !s.contains("mac"));
}

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_never_panics_on_arbitrary_text(s in ".{0,1400}") {
        let _ = Envelope::decode(&s);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..1000)) {
        if let Ok(e) = Envelope::from_bytes(&b) {
            // Whatever parses re-encodes to the same bytes (canonical).
            prop_assert_eq!(e.to_bytes(), b);
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_envelopes(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let (env, _) = sealed();
        let mut b = env.to_bytes();
        for (at, byte, kind) in edits {
            let i = at.index(b.len() + 1);
            match kind {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                _ if i < b.len() => { b.remove(i); }
                _ => {}
            }
        }
        if let Ok(e) = Envelope::from_bytes(&b) {
            prop_assert_eq!(e.to_bytes(), b.clone());
            if b != env.to_bytes() {
                prop_assert!(e.open(&w(1), BUCKET, KEY).is_err());
            }
        }
    }

    #[test]
    fn encode_decode_round_trips(
        id in "[ -~]{0,256}", blob in proptest::collection::vec(any::<u8>(), 0..=512),
        bucket_key in any::<bool>(), log in 12u32..=20, wrap in any::<bool>(),
    ) {
        let (mut env, dk) = Envelope::seal_new(&w(3), &id, &blob, bucket_key, 1 << log, "b", "k").unwrap();
        if wrap {
            env = env.rewrap(&dk, &w(4), &id, &blob, bucket_key, "b", "k").unwrap();
        }
        let text = env.encode();
        prop_assert!(text.len() <= MAX_ENCODED_LEN);
        prop_assert_eq!(Envelope::decode(&text).unwrap(), env);
    }
}
