//! Object format v1: how sealgate lays out an encrypted object on the backend.
//!
//! This module owns the byte format specified in `docs/FORMAT.md` and nothing else:
//! key derivation below the wrapping key ([`keys`]), the per-object envelope stored in
//! user metadata ([`envelope`]), part headers and AES-256-GCM segments ([`part`],
//! [`segment`]), the size and range arithmetic of the pure ciphertext grid ([`layout`]),
//! and the streaming `http_body::Body` adapters that seal and open part streams
//! ([`encrypt_body`], [`decrypt_body`]).
//!
//! It knows no HTTP beyond `http_body::Body`, no S3 and no KMS: callers hand it a 32-byte
//! wrapping key (a cached bucket key or a per-object KMS data key) and the bucket and
//! object names the envelope is bound to. Mapping its errors to S3 errors is the
//! handlers' job.
//!
//! AES-GCM is aws-lc-rs (`LessSafeKey`, sealed and opened in place); the benchmark that
//! chose it is `benches/crypto.rs`, its figures are in `docs/FORMAT.md`.

pub mod decrypt_body;
pub mod encrypt_body;
pub mod envelope;
pub mod keys;
pub mod layout;
pub mod part;
mod salt;
pub mod segment;

#[cfg(test)]
mod tests;

pub use decrypt_body::{DecryptBody, DecryptError, DecryptPlan};
pub use encrypt_body::{EncryptBody, EncryptError};
pub use envelope::{Envelope, EnvelopeError};
pub use keys::{DataKey, WrappingKey};
pub use layout::{
    ObjectLayout, RangePlan, object_ciphertext_len, object_plaintext_len, part_ciphertext_len,
    plan_range,
};
pub use part::{PartHeader, parse_part_header};
pub(crate) use salt::fill_salt;
pub use segment::{OpenError, SegmentOpener, SegmentSealer};

/// Errors crossing a body boundary are boxed, as `http_body` adapters require.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Object format v1: never change. Length of a part header.
pub const PART_HEADER_LEN: u64 = 32;
/// Object format v1: never change. Length of the AES-GCM tag after every segment.
pub const TAG_LEN: u64 = 16;
/// Smallest allowed segment size (4 KiB).
pub const MIN_SEGMENT_SIZE: u32 = 1 << 12;
/// Largest allowed segment size (1 MiB).
pub const MAX_SEGMENT_SIZE: u32 = 1 << 20;
/// Segment size used for new objects unless configured otherwise (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 16;

/// Everything that can go wrong in this module outside a streaming body.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("segment size {0} is not a power of two between 4 KiB and 1 MiB")]
    BadSegmentSize(u32),
    #[error("{field} is {len} bytes, at most {max} allowed")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the wrapped data key failed authentication (wrong wrapping key, bucket or key)")]
    UnwrapFailed,
    #[error("the data key does not match the envelope's key commitment")]
    KeyCommitmentMismatch,
    #[error("the envelope MAC does not verify for this bucket and key")]
    EnvelopeMacMismatch,
    #[error("bad part header: {0}")]
    BadPartHeader(&'static str),
    #[error("inconsistent object layout: {0}")]
    BadLayout(&'static str),
    #[error("the system random generator failed")]
    Random,
    #[error("AES-GCM key setup failed")]
    KeySetup,
}

/// Checks that `segment_size` is one the format allows and returns its log2.
pub fn segment_size_log2(segment_size: u32) -> Result<u8, CryptoError> {
    if segment_size.is_power_of_two()
        && (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size)
    {
        // trailing_zeros of a u32 is at most 32, always fits a u8.
        u8::try_from(segment_size.trailing_zeros())
            .map_err(|_| CryptoError::BadSegmentSize(segment_size))
    } else {
        Err(CryptoError::BadSegmentSize(segment_size))
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only
/// (aws-lc's `CRYPTO_memcmp`): for signatures, MACs and key commitments, and the
/// digests a client committed to. `subtle`'s slice comparison, used before, passed each
/// byte through a volatile read and write, which cost more than the comparison.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A buffer length as a u64 (lossless on every platform Rust supports today).
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
