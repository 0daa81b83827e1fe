//! Sealing and opening one segment with AES-256-GCM, in place.
//!
//! Nonce = segment index within the part (u64 BE) || flags (u32 BE, bit 0 = last segment
//! of the part). AAD = the part header (32 bytes) || segment index (u64 BE) || last flag
//! (u8). The key is the part key, unique per (object, part number, upload attempt), so an
//! index never repeats under one key; the last flag in nonce and AAD makes truncation at
//! a segment boundary detectable.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::keys::{DataKey, derive_part_key};
use super::part::{HEADER_LEN, PartHeader};
use super::{CryptoError, TAG_LEN};

/// Tag length as a `usize`, for buffers.
pub const TAG_BYTES: usize = TAG_LEN as usize;
const AAD_LEN: usize = HEADER_LEN + 8 + 1;

/// Why one segment would not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("segment {index} failed authentication")]
    Tampered { index: u64 },
    #[error("segment {index} is shorter than its tag")]
    TooShort { index: u64 },
}

/// The AEAD state of one part stream: its key and its header bytes for the AAD.
struct PartCipher {
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
}

impl PartCipher {
    fn new(dk: &DataKey, header: &PartHeader, part_number: u32) -> Result<Self, CryptoError> {
        let pk = derive_part_key(dk, header.part_salt(), part_number);
        let unbound =
            UnboundKey::new(&AES_256_GCM, pk.as_ref()).map_err(|_| CryptoError::KeySetup)?;
        Ok(PartCipher {
            key: LessSafeKey::new(unbound),
            header: *header.as_bytes(),
        })
    }

    fn nonce_and_aad(&self, index: u64, is_last: bool) -> (Nonce, [u8; AAD_LEN]) {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&index.to_be_bytes());
        nonce[8..].copy_from_slice(&u32::from(is_last).to_be_bytes());
        let mut aad = [0u8; AAD_LEN];
        aad[..HEADER_LEN].copy_from_slice(&self.header);
        aad[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&index.to_be_bytes());
        aad[HEADER_LEN + 8] = u8::from(is_last);
        (Nonce::assume_unique_for_key(nonce), aad)
    }
}

/// Seals the segments of one part stream.
pub struct SegmentSealer(PartCipher);

impl SegmentSealer {
    /// Keys a sealer for part `part_number` of the object whose data key is `dk`.
    pub fn new(dk: &DataKey, header: &PartHeader, part_number: u32) -> Result<Self, CryptoError> {
        PartCipher::new(dk, header, part_number).map(SegmentSealer)
    }

    /// Encrypts `in_out` in place and returns the 16-byte tag to append.
    pub fn seal_in_place(
        &self,
        index: u64,
        is_last: bool,
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], CryptoError> {
        let (nonce, aad) = self.0.nonce_and_aad(index, is_last);
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .map_err(|_| CryptoError::KeySetup)?;
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }
}

/// Opens the segments of one part stream.
pub struct SegmentOpener(PartCipher);

impl SegmentOpener {
    /// Keys an opener for part `part_number` of the object whose data key is `dk`.
    pub fn new(dk: &DataKey, header: &PartHeader, part_number: u32) -> Result<Self, CryptoError> {
        PartCipher::new(dk, header, part_number).map(SegmentOpener)
    }

    /// Decrypts `ciphertext || tag` in place; returns the plaintext length (the plaintext
    /// is the buffer's prefix). On failure the buffer holds no usable plaintext.
    pub fn open_in_place(
        &self,
        index: u64,
        is_last: bool,
        in_out: &mut [u8],
    ) -> Result<usize, OpenError> {
        if in_out.len() < TAG_BYTES {
            return Err(OpenError::TooShort { index });
        }
        let (nonce, aad) = self.0.nonce_and_aad(index, is_last);
        self.0
            .key
            .open_in_place(nonce, Aad::from(aad), in_out)
            .map(|plain| plain.len())
            .map_err(|_| OpenError::Tampered { index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SegmentSealer, SegmentOpener) {
        let dk = DataKey::from_bytes([3; 32]);
        let h = PartHeader::new(100, [4; 16]);
        (
            SegmentSealer::new(&dk, &h, 1).unwrap(),
            SegmentOpener::new(&dk, &h, 1).unwrap(),
        )
    }

    #[test]
    fn seal_then_open_round_trips() {
        let (s, o) = pair();
        let mut buf = b"hello segment".to_vec();
        let tag = s.seal_in_place(7, false, &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        let n = o.open_in_place(7, false, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello segment");
    }

    #[test]
    fn open_rejects_wrong_index_or_last_flag() {
        let (s, o) = pair();
        let mut buf = vec![0u8; 64];
        let tag = s.seal_in_place(2, true, &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        assert!(o.open_in_place(3, true, &mut buf.clone()).is_err());
        assert!(o.open_in_place(2, false, &mut buf.clone()).is_err());
        assert!(o.open_in_place(2, true, &mut buf).is_ok());
    }

    #[test]
    fn open_rejects_other_part_number_and_header() {
        let dk = DataKey::from_bytes([3; 32]);
        let h = PartHeader::new(100, [4; 16]);
        let s = SegmentSealer::new(&dk, &h, 1).unwrap();
        let mut buf = vec![1u8; 10];
        let tag = s.seal_in_place(0, true, &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        let other_part = SegmentOpener::new(&dk, &h, 2).unwrap();
        assert!(other_part.open_in_place(0, true, &mut buf.clone()).is_err());
        let other_len = SegmentOpener::new(&dk, &PartHeader::new(101, [4; 16]), 1).unwrap();
        assert!(other_len.open_in_place(0, true, &mut buf.clone()).is_err());
        assert!(
            SegmentOpener::new(&dk, &h, 1)
                .unwrap()
                .open_in_place(0, true, &mut buf[..15])
                .is_err()
        );
    }
}
