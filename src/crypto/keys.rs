//! The key hierarchy below the wrapping key: data key, key commitment, envelope MAC
//! key, key-encryption key and part keys, all HKDF-SHA256 (RFC 5869) with labels that
//! are part of format v1.
//!
//! Key bytes live in `Zeroizing` buffers and every key type prints as `[redacted]`.
//! Wrapping keys come from the caller (KMS or the bucket-key cache); this module never
//! sees where they came from.

use std::fmt;

use aws_lc_rs::hmac;
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
    let prk = hmac_sha256(salt, &[ikm]);
    expand_prk(&prk[..], info)
}

fn expand_prk(prk: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut parts: Vec<&[u8]> = info.to_vec();
    parts.push(&[0x01]);
    hmac_sha256(prk, &parts)
}

fn hmac_sha256(key: &[u8], data: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for d in data {
        ctx.update(d);
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(ctx.sign().as_ref());
    out
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
