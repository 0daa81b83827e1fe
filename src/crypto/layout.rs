//! Size and range arithmetic of the pure ciphertext grid (format v1).
//!
//! A part of p plaintext bytes takes `32 + p + 16 * max(1, ceil(p / S))` bytes. When every
//! part but the last holds the same multiple P of S bytes (CompleteMultipartUpload
//! enforces it) and the last part is non-empty, an object of N parts and T plaintext
//! bytes takes `32 N + T + 16 max(1, ceil(T / S))` bytes, so sizes convert both ways
//! without metadata and ranges map to whole segments arithmetically. Everything here is
//! pure and never panics; callers validate client ranges (S3 semantics) first.

use super::part::PartHeader;
use super::{CryptoError, PART_HEADER_LEN, TAG_LEN, segment_size_log2};

/// Segments in a part of `plain_len` bytes: an empty part still has one (empty) segment.
fn segment_count(plain_len: u64, segment_size: u64) -> u64 {
    if plain_len == 0 {
        1
    } else {
        (plain_len - 1) / segment_size + 1
    }
}

fn valid_segment_size(segment_size: u32) -> Option<u64> {
    segment_size_log2(segment_size)
        .ok()
        .map(|_| u64::from(segment_size))
}

fn checked_part_len(plain_len: u64, segment_size: u32) -> Option<u64> {
    let s = valid_segment_size(segment_size)?;
    TAG_LEN
        .checked_mul(segment_count(plain_len, s))?
        .checked_add(plain_len)?
        .checked_add(PART_HEADER_LEN)
}

fn checked_object_len(plain_len: u64, parts: u32, segment_size: u32) -> Option<u64> {
    if parts == 0 {
        return None;
    }
    let extra_headers = PART_HEADER_LEN.checked_mul(u64::from(parts) - 1)?;
    checked_part_len(plain_len, segment_size)?.checked_add(extra_headers)
}

/// Ciphertext length of one part stream of `plain_len` bytes. `u64::MAX` if the segment
/// size is not one the format allows or the result would overflow.
pub fn part_ciphertext_len(plain_len: u64, segment_size: u32) -> u64 {
    checked_part_len(plain_len, segment_size).unwrap_or(u64::MAX)
}

/// Ciphertext length of a whole object of `parts` grid-aligned parts. `u64::MAX` on
/// invalid input (zero parts, bad segment size, overflow).
pub fn object_ciphertext_len(plain_len: u64, parts: u32, segment_size: u32) -> u64 {
    checked_object_len(plain_len, parts, segment_size).unwrap_or(u64::MAX)
}

/// Plaintext length of an object from its ciphertext length; `None` for any size the
/// grid cannot produce (which means the object was truncated, padded or is not ours).
pub fn object_plaintext_len(cipher_len: u64, parts: u32, segment_size: u32) -> Option<u64> {
    let s = valid_segment_size(segment_size)?;
    if parts == 0 {
        return None;
    }
    let body = cipher_len.checked_sub(PART_HEADER_LEN.checked_mul(u64::from(parts))?)?;
    // Each full segment is S + 16 bytes; the last one carries between 0 and S bytes.
    let segments = body.div_ceil(s + TAG_LEN).max(1);
    let plain = body.checked_sub(TAG_LEN.checked_mul(segments)?)?;
    if plain > s * segments || (plain <= s * (segments - 1) && !(plain == 0 && segments == 1)) {
        return None;
    }
    // N > 1 parts need N - 1 parts of at least one segment and a non-empty last part.
    if parts > 1 && plain <= (u64::from(parts) - 1).checked_mul(s)? {
        return None;
    }
    (checked_object_len(plain, parts, segment_size) == Some(cipher_len)).then_some(plain)
}

/// Where the parts of one object lie: everything a reader needs to map ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLayout {
    /// Segment size S from the envelope.
    pub segment_size: u32,
    /// Number of part streams N (1 for a single PUT).
    pub parts: u32,
    /// Plaintext size P of every part but the last (equals the total when N = 1).
    pub part_plain_len: u64,
    /// Plaintext size T of the object.
    pub total_plain_len: u64,
}

impl ObjectLayout {
    /// Checks that the four numbers describe a grid the format can produce.
    pub fn new(
        segment_size: u32,
        parts: u32,
        part_plain_len: u64,
        total_plain_len: u64,
    ) -> Result<ObjectLayout, CryptoError> {
        let s = u64::from(segment_size);
        segment_size_log2(segment_size)?;
        match parts {
            0 => return Err(CryptoError::BadLayout("zero parts")),
            1 if part_plain_len != total_plain_len => {
                return Err(CryptoError::BadLayout(
                    "single part size differs from object size",
                ));
            }
            1 => {}
            _ => {
                if part_plain_len == 0 || !part_plain_len.is_multiple_of(s) {
                    return Err(CryptoError::BadLayout(
                        "part size is not a positive multiple of the segment size",
                    ));
                }
                let before_last = part_plain_len
                    .checked_mul(u64::from(parts) - 1)
                    .ok_or(CryptoError::BadLayout("part sizes overflow"))?;
                if before_last >= total_plain_len {
                    return Err(CryptoError::BadLayout("last part is empty or missing"));
                }
            }
        }
        checked_object_len(total_plain_len, parts, segment_size)
            .ok_or(CryptoError::BadLayout("object too large"))?;
        Ok(ObjectLayout {
            segment_size,
            parts,
            part_plain_len,
            total_plain_len,
        })
    }

    /// The layout of a single-part object, known from sizes alone.
    pub fn single(segment_size: u32, total_plain_len: u64) -> Result<ObjectLayout, CryptoError> {
        ObjectLayout::new(segment_size, 1, total_plain_len, total_plain_len)
    }

    /// The layout from the backend's size, the part count (ETag `-N` suffix, else 1) and
    /// the header of part 1 (bytes 0..32 of the object).
    pub fn from_ciphertext(
        cipher_len: u64,
        parts: u32,
        segment_size: u32,
        part1: &PartHeader,
    ) -> Result<ObjectLayout, CryptoError> {
        let total = object_plaintext_len(cipher_len, parts, segment_size)
            .ok_or(CryptoError::BadLayout("impossible ciphertext size"))?;
        ObjectLayout::new(segment_size, parts, part1.plain_len(), total)
    }

    /// Ciphertext length of the whole object.
    pub fn ciphertext_len(&self) -> u64 {
        object_ciphertext_len(self.total_plain_len, self.parts, self.segment_size)
    }

    /// Plaintext length of part `part_number` (1-based); 0 outside 1..=N.
    pub fn part_len(&self, part_number: u32) -> u64 {
        if part_number == 0 || part_number > self.parts {
            0
        } else if part_number < self.parts {
            self.part_plain_len
        } else {
            // Layout invariant: (N - 1) P < T, so this cannot underflow.
            self.total_plain_len.saturating_sub(
                self.part_plain_len
                    .saturating_mul(u64::from(self.parts) - 1),
            )
        }
    }

    /// Offset of part `part_number`'s header in the ciphertext (1-based).
    pub fn part_cipher_start(&self, part_number: u32) -> u64 {
        let full = part_ciphertext_len(self.part_plain_len, self.segment_size);
        full.saturating_mul(u64::from(part_number.saturating_sub(1)))
    }

    /// Inclusive plaintext range of part `part_number`, for serving `partNumber` reads
    /// as ranges; `None` outside 1..=N or for an empty object.
    pub fn part_plain_range(&self, part_number: u32) -> Option<(u64, u64)> {
        let len = self.part_len(part_number);
        if len == 0 {
            return None;
        }
        let start = self
            .part_plain_len
            .checked_mul(u64::from(part_number - 1))?;
        Some((start, start.checked_add(len - 1)?))
    }

    /// Part (1-based), segment index within it, and offset within that segment of
    /// plaintext byte `offset` (which must be < T).
    fn locate(&self, offset: u64) -> (u32, u64, u64) {
        let s = u64::from(self.segment_size);
        let part = if self.parts == 1 {
            1
        } else {
            let k = offset / self.part_plain_len + 1;
            u32::try_from(k).unwrap_or(u32::MAX).min(self.parts)
        };
        let within = offset - self.part_plain_len * u64::from(part - 1);
        (part, within / s, within % s)
    }

    /// Offset in the ciphertext of segment `index` of part `part_number`.
    fn segment_cipher_start(&self, part_number: u32, index: u64) -> u64 {
        let s = u64::from(self.segment_size);
        self.part_cipher_start(part_number) + PART_HEADER_LEN + index * (s + TAG_LEN)
    }
}

/// What to fetch from the backend for a plaintext range, and what to keep of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangePlan {
    /// First ciphertext byte to fetch: a segment start, or the part header just before it
    /// when the range starts in a part's first segment.
    pub cipher_start: u64,
    /// Last ciphertext byte to fetch (the end of a segment's tag).
    pub cipher_end_inclusive: u64,
    /// Part holding the first plaintext byte (1-based).
    pub first_part: u32,
    /// Segment index within `first_part` where the fetched range starts.
    pub first_segment: u64,
    /// The 32 bytes to fetch separately as the header of `first_part`, when the fetched
    /// range does not start with it (later part headers arrive inline).
    pub header_range: Option<(u64, u64)>,
    /// Part holding the last plaintext byte.
    pub last_part: u32,
    /// Segment index within `last_part` holding the last plaintext byte.
    pub last_segment: u64,
    /// Plaintext bytes of the first segment to drop.
    pub skip: u64,
    /// Plaintext bytes to return in total.
    pub take: u64,
    /// The satisfied plaintext range (for `Content-Range`).
    pub plain_start: u64,
    /// Last plaintext byte returned.
    pub plain_end_inclusive: u64,
}

/// Plans the plaintext range `[start, end_inclusive]`; `end_inclusive` past the end is
/// clamped to the last byte, as S3 does. `None` when the range is unsatisfiable
/// (`start` at or past the end, or `start > end_inclusive`): answer 416.
pub fn plan_range(layout: &ObjectLayout, start: u64, end_inclusive: u64) -> Option<RangePlan> {
    // The fields are public, so re-check the invariants the arithmetic below relies on
    // (no zero divisors, no overflow) instead of trusting how the layout was built.
    let layout = &ObjectLayout::new(
        layout.segment_size,
        layout.parts,
        layout.part_plain_len,
        layout.total_plain_len,
    )
    .ok()?;
    let last_byte = layout.total_plain_len.checked_sub(1)?;
    let end = end_inclusive.min(last_byte);
    if start > end {
        return None;
    }
    let s = u64::from(layout.segment_size);
    let (first_part, first_segment, skip) = layout.locate(start);
    let (last_part, last_segment, _) = layout.locate(end);
    let last_seg_plain = (layout.part_len(last_part) - last_segment * s).min(s);
    let cipher_end_inclusive =
        layout.segment_cipher_start(last_part, last_segment) + last_seg_plain + TAG_LEN - 1;
    let header_start = layout.part_cipher_start(first_part);
    let (cipher_start, header_range) = if first_segment == 0 {
        (header_start, None)
    } else {
        (
            layout.segment_cipher_start(first_part, first_segment),
            Some((header_start, header_start + PART_HEADER_LEN - 1)),
        )
    };
    Some(RangePlan {
        cipher_start,
        cipher_end_inclusive,
        first_part,
        first_segment,
        header_range,
        last_part,
        last_segment,
        skip,
        take: end - start + 1,
        plain_start: start,
        plain_end_inclusive: end,
    })
}

#[cfg(test)]
mod tests;
