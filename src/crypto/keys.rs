//! The key hierarchy below the wrapping key: data key, key commitment, envelope MAC
//! key, key-encryption key and part keys, all HKDF-SHA256 (RFC 5869) with labels that
//! are part of format v1.
//!
//! Key bytes live in `Zeroizing` buffers and every key type prints as `[redacted]`.
//! Wrapping keys come from the caller (KMS or the bucket-key cache); this module never
//! sees where they came from.

use std::fmt;

use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Object format v1: never change. HKDF info of the data key (derived mode).
pub const INFO_DATA_KEY: &[u8] = b"sealgate/v1/data-key";
/// Object format v1: never change. HKDF info of the key that wraps a data key.
pub const INFO_WRAP: &[u8] = b"sealgate/v1/wrap";
/// Object format v1: never change. HKDF-Expand info of the key commitment.
pub const INFO_COMMIT: &[u8] = b"sealgate/v1/commit";
/// Object format v1: never change. HKDF-Expand info of the envelope MAC key.
pub const INFO_ENVELOPE_MAC: &[u8] = b"sealgate/v1/envelope-mac";
/// Object format v1: never change. HKDF info prefix of a part key (part number follows).
pub const INFO_PART: &[u8] = b"sealgate/v1/part";

/// Length of every key in the hierarchy.
pub const KEY_LEN: usize = 32;

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<[u8; KEY_LEN]>);

        impl $name {
            /// Takes ownership of raw key bytes.
            pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                $name(Zeroizing::new(bytes))
            }

            /// Copies a key out of a slice (e.g. a KMS plaintext); `None` unless 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                if bytes.len() != KEY_LEN {
                    return None;
                }
                key.copy_from_slice(bytes);
                Some($name(key))
            }

            /// The raw key. Only for handing to a cipher or to a test vector; never log it.
            pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_key!(
    /// The 32-byte key the caller wraps an object's data key with: a bucket key, a
    /// per-object KMS data key, or (SSE-C emulation) a customer key.
    WrappingKey
);
secret_key!(
    /// An object's data key: fixed for the life of the object's body, whatever wraps it.
    DataKey
);

/// HKDF-SHA256 (RFC 5869) with 32 bytes of output, which is one HMAC block:
/// PRK = HMAC(salt, ikm); OKM = HMAC(PRK, info || 0x01). Written out because at this
/// length HKDF cannot fail, so no error path (or silent fallback key) exists.
fn hkdf(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let prk = hmac_sha256(salt, [ikm]);
    expand_prk(&prk[..], info)
}

fn expand_prk(prk: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    hmac_sha256(prk, info.iter().copied().chain([&[0x01u8][..]]))
}

/// HMAC-SHA256 over the concatenation of `data`: the one HMAC of the proxy (the format's
/// key schedule and MACs here, SigV4 in `auth::signing`).
///
/// RustCrypto's `hmac` + `sha2` (SHA-NI when the CPU has it), not aws-lc-rs: for the
/// format's short inputs and fresh keys it takes 201 ns per HMAC against 375 ns
/// (`cargo bench --bench crypto -- hmac-sha256`), aws-lc's per-key context set-up being
/// most of its time, and an object open or seal runs five to eight of them.
pub(crate) fn hmac_sha256<'a>(
    key: &[u8],
    data: impl IntoIterator<Item = &'a [u8]>,
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut mac = hmac_sha256_state(key);
    for d in data {
        mac.update(d);
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The HMAC-SHA256 state with `key` absorbed: a clone of it signs a message without
/// hashing the key's pads again (`auth::signing::SigningKey` keeps one). The key is
/// zero-padded to the SHA-256 block, which is HMAC's own key rule (RFC 2104) and makes
/// the constructor infallible; a key longer than the block is hashed first, as the rule
/// also says.
pub(crate) fn hmac_sha256_state(key: &[u8]) -> hmac::Hmac<Sha256> {
    const BLOCK: usize = 64;
    let mut block = Zeroizing::new([0u8; BLOCK]);
    if key.len() > BLOCK {
        block[..KEY_LEN].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    hmac::Hmac::<Sha256>::new(&(*block).into())
}

/// HKDF-Expand only, with the data key as the pseudorandom key: the data key is already
/// uniformly random, so an extract step would add nothing.
fn expand(prk: &DataKey, info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    expand_prk(prk.expose_secret(), &[info])
}

/// DK = HKDF(ikm = W, salt = envelope salt, info = "sealgate/v1/data-key").
pub fn derive_data_key(w: &WrappingKey, salt: &[u8]) -> DataKey {
    DataKey(hkdf(w.expose_secret(), salt, &[INFO_DATA_KEY]))
}

/// KEK = HKDF(ikm = W, salt = envelope salt, info = "sealgate/v1/wrap").
pub fn derive_wrap_key(w: &WrappingKey, salt: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    hkdf(w.expose_secret(), salt, &[INFO_WRAP])
}

/// Key commitment = HKDF-Expand(DK, "sealgate/v1/commit"): AES-GCM is not key-committing,
/// so without it two wrapping keys could open one envelope to two different data keys.
pub fn key_commitment(dk: &DataKey) -> [u8; KEY_LEN] {
    *expand(dk, INFO_COMMIT)
}

/// Envelope MAC key = HKDF-Expand(DK, "sealgate/v1/envelope-mac").
pub fn envelope_mac_key(dk: &DataKey) -> Zeroizing<[u8; KEY_LEN]> {
    expand(dk, INFO_ENVELOPE_MAC)
}

/// PK = HKDF(ikm = DK, salt = part salt, info = "sealgate/v1/part" || part number u32 BE).
/// The part number in the key means a segment cannot move to another part.
pub fn derive_part_key(
    dk: &DataKey,
    part_salt: &[u8],
    part_number: u32,
) -> Zeroizing<[u8; KEY_LEN]> {
    hkdf(
        dk.expose_secret(),
        part_salt,
        &[INFO_PART, &part_number.to_be_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = WrappingKey::from_bytes([0xab; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "WrappingKey([redacted])");
        assert!(!format!("{:?}", DataKey::from_bytes([0xab; 32])).contains("ab"));
    }

    #[test]
    fn from_slice_requires_32_bytes() {
        assert!(WrappingKey::from_slice(&[0; 31]).is_none());
        assert!(WrappingKey::from_slice(&[0; 33]).is_none());
        assert!(WrappingKey::from_slice(&[0; 32]).is_some());
    }

    #[test]
    fn labels_separate_keys() {
        let w = WrappingKey::from_bytes([7; 32]);
        let dk = derive_data_key(&w, &[1; 32]);
        assert_ne!(dk.expose_secret(), &*derive_wrap_key(&w, &[1; 32]));
        assert_ne!(key_commitment(&dk), *envelope_mac_key(&dk));
        assert_ne!(
            *derive_part_key(&dk, &[0; 16], 1),
            *derive_part_key(&dk, &[0; 16], 2)
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_3_and_the_hkdf_crate() {
        // RFC 5869 A.3 (empty salt and info), first 32 bytes of the 42-byte OKM.
        let okm = hkdf(&[0x0b; 22], &[], &[]);
        assert_eq!(
            hex::encode(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
        let mut other = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&[7u8; 32]), &[9; 32])
            .expand_multi_info(&[b"a", b"bc"], &mut other)
            .unwrap();
        assert_eq!(*hkdf(&[9; 32], &[7; 32], &[b"a", b"bc"]), other);
    }

    /// RFC 4231 cases 2 (a key shorter than the block, data in two pieces) and 6 (a key
    /// longer than the block, which HMAC hashes first).
    #[test]
    fn hmac_matches_rfc4231() {
        let short = hmac_sha256(b"Jefe", [b"what do ya want ".as_slice(), b"for nothing?"]);
        assert_eq!(
            hex::encode(*short),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = hmac_sha256(
            &[0xaa; 131],
            [b"Test Using Larger Than Block-Size Key - Hash Key First".as_slice()],
        );
        assert_eq!(
            hex::encode(*long),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        // RFC 5869 A.1, truncated to 32 bytes of output.
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = hkdf(&ikm, &salt, &[&info]);
        assert_eq!(
            hex::encode(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }
}
