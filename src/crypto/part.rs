//! The 32-byte header at the start of every part stream.
//!
//! It carries the part's plaintext length (so a reader learns the multipart part size
//! from part 1 without asking the backend) and a random salt per upload attempt (so
//! re-uploading a part number under the same data key never reuses a GCM nonce, and
//! segments of two attempts cannot be spliced). Every segment's AAD contains the whole
//! header, which authenticates it.

use super::{CryptoError, fill_salt};

/// Object format v1: never change. Magic bytes of a part header.
pub const PART_MAGIC: [u8; 4] = *b"SGP1";
/// Object format v1: never change. Part header version.
pub const PART_VERSION: u8 = 1;
/// Object format v1: never change. Length of the part salt.
pub const PART_SALT_LEN: usize = 16;
/// Header length as a `usize`, for buffers.
pub const HEADER_LEN: usize = 32;

/// A parsed (or freshly made) part header; keeps its exact bytes for the AAD.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PartHeader {
    bytes: [u8; HEADER_LEN],
}

impl std::fmt::Debug for PartHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartHeader")
            .field("plain_len", &self.plain_len())
            .finish_non_exhaustive()
    }
}

impl PartHeader {
    /// A header for a part of `plain_len` bytes with a given salt.
    pub fn new(plain_len: u64, part_salt: [u8; PART_SALT_LEN]) -> PartHeader {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&PART_MAGIC);
        bytes[4] = PART_VERSION;
        // bytes[5] flags and bytes[6..8] reserved stay zero in v1.
        bytes[8..16].copy_from_slice(&plain_len.to_be_bytes());
        bytes[16..32].copy_from_slice(&part_salt);
        PartHeader { bytes }
    }

    /// A header with a fresh random salt.
    pub fn random(plain_len: u64) -> Result<PartHeader, CryptoError> {
        let mut salt = [0u8; PART_SALT_LEN];
        fill_salt(&mut salt)?;
        Ok(PartHeader::new(plain_len, salt))
    }

    /// Plaintext length of this part.
    pub fn plain_len(&self) -> u64 {
        let mut len = [0u8; 8];
        len.copy_from_slice(&self.bytes[8..16]);
        u64::from_be_bytes(len)
    }

    /// The part salt (HKDF salt of the part key).
    pub fn part_salt(&self) -> &[u8] {
        &self.bytes[16..32]
    }

    /// The exact 32 bytes, as written and as bound into every segment's AAD.
    pub fn as_bytes(&self) -> &[u8; HEADER_LEN] {
        &self.bytes
    }
}

/// Parses a part header strictly: wrong magic, version, flags or reserved bytes fail.
/// The header is only trusted once the first segment under it opens.
pub fn parse_part_header(bytes: &[u8; 32]) -> Result<PartHeader, CryptoError> {
    if bytes[0..4] != PART_MAGIC {
        return Err(CryptoError::BadPartHeader("wrong magic"));
    }
    if bytes[4] != PART_VERSION {
        return Err(CryptoError::BadPartHeader("unsupported version"));
    }
    if bytes[5] != 0 {
        return Err(CryptoError::BadPartHeader("unknown flags"));
    }
    if bytes[6..8] != [0, 0] {
        return Err(CryptoError::BadPartHeader("reserved bytes not zero"));
    }
    Ok(PartHeader { bytes: *bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = PartHeader::new(123_456, [9; 16]);
        let parsed = parse_part_header(h.as_bytes()).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.plain_len(), 123_456);
        assert_eq!(parsed.part_salt(), &[9; 16]);
    }

    #[test]
    fn parse_rejects_every_fixed_byte_change() {
        let h = PartHeader::new(5, [1; 16]);
        for i in 0..8 {
            let mut b = *h.as_bytes();
            b[i] ^= 0x01;
            assert!(parse_part_header(&b).is_err(), "byte {i}");
        }
    }
}
