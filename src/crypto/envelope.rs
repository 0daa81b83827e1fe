//! The per-object envelope: one compact binary record, base64 in one user-metadata value,
//! holding everything needed to recover the object's data key from its wrapping key.
//!
//! The envelope is bound to its bucket and object key by an HMAC under a key derived
//! from the data key, so it cannot be edited or moved to another object, and it carries
//! a key commitment because AES-GCM alone is not key-committing. Decoding is strict and
//! canonical: one byte string per envelope, anything else is an error.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::keys::{
    DataKey, KEY_LEN, WrappingKey, derive_data_key, derive_wrap_key, envelope_mac_key, hmac_sha256,
    key_commitment,
};
use super::{CryptoError, constant_time_eq, fill_salt, segment_size_log2};

/// Object format v1: never change. Envelope version byte.
pub const ENVELOPE_VERSION: u8 = 1;
/// Flag bit 0: W is a cached bucket key (else a per-object KMS data key).
pub const FLAG_BUCKET_KEY: u8 = 0x01;
/// Flag bit 1: the data key is carried wrapped (else derived from W and the salt).
pub const FLAG_WRAPPED: u8 = 0x02;
/// Flag bit 2: W is a customer-provided key (SSE-C emulation); exclusive with bit 0.
pub const FLAG_CUSTOMER_KEY: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_BUCKET_KEY | FLAG_WRAPPED | FLAG_CUSTOMER_KEY;
/// Longest KMS key id accepted (bytes of UTF-8).
pub const MAX_KMS_KEY_ID_LEN: usize = 256;
/// Longest KMS ciphertext blob accepted.
pub const MAX_KMS_BLOB_LEN: usize = 512;
/// Envelope salt length.
pub const SALT_LEN: usize = 32;
/// Wrapped data key length: 32 bytes of ciphertext and a 16-byte tag.
pub const WRAPPED_DK_LEN: usize = 48;
const FIXED_LEN: usize = 3 + 2 + 2 + SALT_LEN + KEY_LEN + KEY_LEN;
/// Longest envelope in bytes before base64 (919).
pub const MAX_ENVELOPE_LEN: usize =
    FIXED_LEN + MAX_KMS_KEY_ID_LEN + MAX_KMS_BLOB_LEN + WRAPPED_DK_LEN;
/// Longest envelope as a metadata value (1228 base64 characters).
pub const MAX_ENCODED_LEN: usize = MAX_ENVELOPE_LEN.div_ceil(3) * 4;

/// Why an envelope string is not a well-formed v1 envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not canonical base64")]
    Base64,
    #[error("longer than any v1 envelope")]
    TooLong,
    #[error("ends inside the {0} field")]
    Truncated(&'static str),
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown or contradictory flags {0:#04x}")]
    BadFlags(u8),
    #[error("segment size 2^{0} not allowed")]
    BadSegmentSize(u8),
    #[error("{0} longer than allowed")]
    FieldTooLong(&'static str),
    #[error("KMS key id is not UTF-8")]
    KeyIdNotUtf8,
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// One object's envelope. Fields are read through getters so an envelope can only be
/// made by sealing, rewrapping or strict decoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    flags: u8,
    segment_log2: u8,
    kms_key_id: String,
    kms_blob: Vec<u8>,
    salt: [u8; SALT_LEN],
    wrapped_dk: Option<[u8; WRAPPED_DK_LEN]>,
    commitment: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("kms_key_id", &self.kms_key_id)
            .field("bucket_key_id", &self.bucket_key_id())
            .field("bucket_key", &self.bucket_key())
            .field("is_wrapped", &self.is_wrapped())
            .field("segment_size", &self.segment_size())
            .finish_non_exhaustive()
    }
}

/// The names an envelope is bound to, length-prefixed so ("ab","c") ≠ ("a","bc").
fn binding(bucket: &str, key: &str) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(8 + bucket.len() + key.len());
    for (field, s) in [("bucket name", bucket), ("object key", key)] {
        let len = u32::try_from(s.len()).map_err(|_| CryptoError::FieldTooLong {
            field,
            len: s.len(),
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    Ok(out)
}

fn wrap_cipher(w: &WrappingKey, salt: &[u8]) -> Result<LessSafeKey, CryptoError> {
    let kek = derive_wrap_key(w, salt);
    let unbound = UnboundKey::new(&AES_256_GCM, kek.as_ref()).map_err(|_| CryptoError::KeySetup)?;
    Ok(LessSafeKey::new(unbound))
}

/// The wrap nonce is fixed: the KEK is unique per random salt and wraps one key.
fn wrap_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; 12])
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), CryptoError> {
    if len > max {
        return Err(CryptoError::FieldTooLong { field, len, max });
    }
    Ok(())
}

impl Envelope {
    /// New object: random salt, derived DK. Returns the envelope (MAC'd for bucket/key)
    /// and the DK to encrypt the body with.
    pub fn seal_new(
        w: &WrappingKey,
        kms_key_id: &str,
        kms_blob: &[u8],
        bucket_key: bool,
        segment_size: u32,
        bucket: &str,
        key: &str,
    ) -> Result<(Envelope, DataKey), CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        fill_salt(&mut salt)?;
        Envelope::seal_new_with_salt(
            w,
            kms_key_id,
            kms_blob,
            bucket_key,
            segment_size,
            bucket,
            key,
            salt,
        )
    }

    /// [`Envelope::seal_new`] with a caller-chosen salt, for the documented worked example
    /// and test vectors. Production code must use `seal_new`: a repeated salt under the
    /// same W repeats the data key.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn seal_new_with_salt(
        w: &WrappingKey,
        kms_key_id: &str,
        kms_blob: &[u8],
        bucket_key: bool,
        segment_size: u32,
        bucket: &str,
        key: &str,
        salt: [u8; SALT_LEN],
    ) -> Result<(Envelope, DataKey), CryptoError> {
        let segment_log2 = segment_size_log2(segment_size)?;
        check_len("KMS key id", kms_key_id.len(), MAX_KMS_KEY_ID_LEN)?;
        check_len("KMS blob", kms_blob.len(), MAX_KMS_BLOB_LEN)?;
        let dk = derive_data_key(w, &salt);
        let mut env = Envelope {
            flags: if bucket_key { FLAG_BUCKET_KEY } else { 0 },
            segment_log2,
            kms_key_id: kms_key_id.to_owned(),
            kms_blob: kms_blob.to_vec(),
            salt,
            wrapped_dk: None,
            commitment: key_commitment(&dk),
            mac: [0; KEY_LEN],
        };
        env.mac = env.compute_mac(&dk, bucket, key)?;
        Ok((env, dk))
    }

    /// Re-key without touching the body: the same DK carried wrapped under `new_w`, bound
    /// to a new bucket/key name and KMS key. Fails if `dk` is not this envelope's key.
    #[allow(clippy::too_many_arguments)]
    pub fn rewrap(
        &self,
        dk: &DataKey,
        new_w: &WrappingKey,
        kms_key_id: &str,
        kms_blob: &[u8],
        bucket_key: bool,
        bucket: &str,
        key: &str,
    ) -> Result<Envelope, CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        fill_salt(&mut salt)?;
        self.rewrap_with_salt(
            dk, new_w, kms_key_id, kms_blob, bucket_key, bucket, key, salt,
        )
    }

    /// [`Envelope::rewrap`] with a caller-chosen salt, for the worked example only: the
    /// wrap nonce is fixed, so a salt must never repeat under one W.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn rewrap_with_salt(
        &self,
        dk: &DataKey,
        new_w: &WrappingKey,
        kms_key_id: &str,
        kms_blob: &[u8],
        bucket_key: bool,
        bucket: &str,
        key: &str,
        salt: [u8; SALT_LEN],
    ) -> Result<Envelope, CryptoError> {
        if !constant_time_eq(&key_commitment(dk), &self.commitment) {
            return Err(CryptoError::KeyCommitmentMismatch);
        }
        check_len("KMS key id", kms_key_id.len(), MAX_KMS_KEY_ID_LEN)?;
        check_len("KMS blob", kms_blob.len(), MAX_KMS_BLOB_LEN)?;
        let mut wrapped = [0u8; WRAPPED_DK_LEN];
        wrapped[..KEY_LEN].copy_from_slice(dk.expose_secret());
        let tag = wrap_cipher(new_w, &salt)?
            .seal_in_place_separate_tag(
                wrap_nonce(),
                Aad::from(binding(bucket, key)?),
                &mut wrapped[..KEY_LEN],
            )
            .map_err(|_| CryptoError::KeySetup)?;
        wrapped[KEY_LEN..].copy_from_slice(tag.as_ref());
        let mut env = Envelope {
            flags: FLAG_WRAPPED | if bucket_key { FLAG_BUCKET_KEY } else { 0 },
            segment_log2: self.segment_log2,
            kms_key_id: kms_key_id.to_owned(),
            kms_blob: kms_blob.to_vec(),
            salt,
            wrapped_dk: Some(wrapped),
            commitment: self.commitment,
            mac: [0; KEY_LEN],
        };
        env.mac = env.compute_mac(dk, bucket, key)?;
        Ok(env)
    }

    /// Recovers the DK with the unwrapped W, then checks the key commitment and the MAC for
    /// this bucket and key, both in constant time, before anyone opens a segment.
    pub fn open(&self, w: &WrappingKey, bucket: &str, key: &str) -> Result<DataKey, CryptoError> {
        let dk = match &self.wrapped_dk {
            None => derive_data_key(w, &self.salt),
            Some(wrapped) => {
                let mut buf = zeroize::Zeroizing::new(*wrapped);
                let plain = wrap_cipher(w, &self.salt)?
                    .open_in_place(wrap_nonce(), Aad::from(binding(bucket, key)?), buf.as_mut())
                    .map_err(|_| CryptoError::UnwrapFailed)?;
                DataKey::from_slice(plain).ok_or(CryptoError::UnwrapFailed)?
            }
        };
        if !constant_time_eq(&key_commitment(&dk), &self.commitment) {
            return Err(CryptoError::KeyCommitmentMismatch);
        }
        if !constant_time_eq(&self.compute_mac(&dk, bucket, key)?, &self.mac) {
            return Err(CryptoError::EnvelopeMacMismatch);
        }
        Ok(dk)
    }

    /// HMAC-SHA256 over the encoded envelope up to the MAC, then the bound names.
    fn compute_mac(
        &self,
        dk: &DataKey,
        bucket: &str,
        key: &str,
    ) -> Result<[u8; KEY_LEN], CryptoError> {
        let mac_key = envelope_mac_key(dk);
        let mac = hmac_sha256(
            mac_key.as_ref(),
            [&self.to_bytes_without_mac()[..], &binding(bucket, key)?[..]],
        );
        Ok(*mac)
    }

    fn to_bytes_without_mac(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_ENVELOPE_LEN);
        out.extend_from_slice(&[ENVELOPE_VERSION, self.flags, self.segment_log2]);
        // Lengths are bounded by MAX_KMS_*_LEN on every constructor, far below u16::MAX.
        for field in [self.kms_key_id.as_bytes(), &self.kms_blob] {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.salt);
        if let Some(w) = &self.wrapped_dk {
            out.extend_from_slice(w);
        }
        out.extend_from_slice(&self.commitment);
        out
    }

    /// The binary envelope (what the base64 value decodes to).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.to_bytes_without_mac();
        out.extend_from_slice(&self.mac);
        out
    }

    /// The metadata value: standard base64 with padding, no newlines.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }

    /// Parses a metadata value. Structure only: nothing is authenticated until
    /// [`Envelope::open`].
    pub fn decode(s: &str) -> Result<Envelope, EnvelopeError> {
        if s.len() > MAX_ENCODED_LEN {
            return Err(EnvelopeError::TooLong);
        }
        let bytes = STANDARD.decode(s).map_err(|_| EnvelopeError::Base64)?;
        Envelope::from_bytes(&bytes)
    }

    /// Parses the binary envelope strictly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let mut r = Reader(bytes);
        let version = r.byte("version")?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let flags = r.byte("flags")?;
        if flags & !KNOWN_FLAGS != 0
            || (flags & FLAG_BUCKET_KEY != 0 && flags & FLAG_CUSTOMER_KEY != 0)
        {
            return Err(EnvelopeError::BadFlags(flags));
        }
        let segment_log2 = r.byte("segment size")?;
        if !(12..=20).contains(&segment_log2) {
            return Err(EnvelopeError::BadSegmentSize(segment_log2));
        }
        let key_id = r.prefixed("KMS key id", MAX_KMS_KEY_ID_LEN)?;
        let kms_key_id = std::str::from_utf8(key_id)
            .map_err(|_| EnvelopeError::KeyIdNotUtf8)?
            .to_owned();
        let kms_blob = r.prefixed("KMS blob", MAX_KMS_BLOB_LEN)?.to_vec();
        let salt = r.array::<SALT_LEN>("salt")?;
        let wrapped_dk = if flags & FLAG_WRAPPED != 0 {
            Some(r.array::<WRAPPED_DK_LEN>("wrapped data key")?)
        } else {
            None
        };
        let commitment = r.array::<KEY_LEN>("key commitment")?;
        let mac = r.array::<KEY_LEN>("MAC")?;
        if !r.0.is_empty() {
            return Err(EnvelopeError::TrailingBytes(r.0.len()));
        }
        Ok(Envelope {
            flags,
            segment_log2,
            kms_key_id,
            kms_blob,
            salt,
            wrapped_dk,
            commitment,
            mac,
        })
    }

    /// KMS key id W came from (empty for SSE-C emulation).
    pub fn kms_key_id(&self) -> &str {
        &self.kms_key_id
    }

    /// KMS ciphertext of W (the bucket key or per-object KMS data key).
    pub fn kms_blob(&self) -> &[u8] {
        &self.kms_blob
    }

    /// True when W is a cached bucket key rather than a per-object KMS data key.
    pub fn bucket_key(&self) -> bool {
        self.flags & FLAG_BUCKET_KEY != 0
    }

    /// True when W is a customer-provided key (SSE-C emulation).
    pub fn is_customer_key(&self) -> bool {
        self.flags & FLAG_CUSTOMER_KEY != 0
    }

    /// True when the DK is carried wrapped (after a rewrap) rather than derived.
    pub fn is_wrapped(&self) -> bool {
        self.wrapped_dk.is_some()
    }

    /// Segment size S of the body, in bytes.
    pub fn segment_size(&self) -> u32 {
        1u32 << self.segment_log2
    }

    /// Fingerprint of the KMS blob for audit logs and cache keys: hex of the first 8 bytes
    /// of its SHA-256.
    pub fn bucket_key_id(&self) -> String {
        let d = digest::digest(&digest::SHA256, &self.kms_blob);
        hex::encode(d.as_ref().get(..8).unwrap_or_default())
    }
}

/// A cursor that fails instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn prefixed(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], EnvelopeError> {
        let len = usize::from(u16::from_be_bytes(self.array::<2>(field)?));
        if len > max {
            return Err(EnvelopeError::FieldTooLong(field));
        }
        self.take(field, len)
    }
}

#[cfg(test)]
mod tests;
