//! S3 flexible checksums: the algorithms, their header names, and incremental digests.
//!
//! S3 carries a checksum either in an `x-amz-checksum-ALGO` header or, with aws-chunked
//! bodies, in a trailer announced by `x-amz-trailer`; the value is the big-endian digest
//! in base64. CRCs run on `crc-fast` (tens of GB/s), SHA-1/SHA-256 on aws-lc.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html>

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderName;

/// A flexible checksum algorithm S3 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The lowercase header carrying the value, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// [`Self::header_name`] as a `HeaderName`, for map lookups that skip parsing it.
    pub fn header(self) -> HeaderName {
        const CRC32: HeaderName = HeaderName::from_static("x-amz-checksum-crc32");
        const CRC32C: HeaderName = HeaderName::from_static("x-amz-checksum-crc32c");
        const CRC64NVME: HeaderName = HeaderName::from_static("x-amz-checksum-crc64nvme");
        const SHA1: HeaderName = HeaderName::from_static("x-amz-checksum-sha1");
        const SHA256: HeaderName = HeaderName::from_static("x-amz-checksum-sha256");
        match self {
            ChecksumAlgorithm::Crc32 => CRC32,
            ChecksumAlgorithm::Crc32c => CRC32C,
            ChecksumAlgorithm::Crc64Nvme => CRC64NVME,
            ChecksumAlgorithm::Sha1 => SHA1,
            ChecksumAlgorithm::Sha256 => SHA256,
        }
    }

    /// The name S3 uses in messages and in `x-amz-sdk-checksum-algorithm`.
    pub fn display_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parses an algorithm name as in `x-amz-sdk-checksum-algorithm` (any case).
    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.display_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Parses a header name such as `x-amz-checksum-crc32c` (any case).
    pub fn from_header_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Decodes a base64 value and checks it has this algorithm's length.
    pub fn decode_value(self, value: &str) -> Option<Vec<u8>> {
        let raw = BASE64.decode(value.trim()).ok()?;
        (raw.len() == self.digest_len()).then_some(raw)
    }
}

/// An incremental digest for one [`ChecksumAlgorithm`].
#[derive(Clone)]
pub struct Checksummer {
    algorithm: ChecksumAlgorithm,
    state: State,
}

// One per request body, never in a collection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum State {
    Crc(crc_fast::Digest),
    /// SHA-1 and SHA-256 on aws-lc: SHA-NI where the CPU has it (as fast as the
    /// pure-Rust crates there, `checksum/1MiB` bench), AVX assembly on CPUs without
    /// it, where the pure-Rust crates fall back to portable code.
    Sha(digest::Context),
}

impl Checksummer {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        use crc_fast::CrcAlgorithm as C;
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc(crc_fast::Digest::new(C::Crc32IsoHdlc)),
            ChecksumAlgorithm::Crc32c => State::Crc(crc_fast::Digest::new(C::Crc32Iscsi)),
            ChecksumAlgorithm::Crc64Nvme => State::Crc(crc_fast::Digest::new(C::Crc64Nvme)),
            ChecksumAlgorithm::Sha1 => {
                State::Sha(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY))
            }
            ChecksumAlgorithm::Sha256 => State::Sha(digest::Context::new(&digest::SHA256)),
        };
        Checksummer { algorithm, state }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc(d) => d.update(data),
            State::Sha(d) => d.update(data),
        }
    }

    /// The raw big-endian digest.
    pub fn finalize(self) -> Vec<u8> {
        match self.state {
            State::Crc(d) => {
                let v = d.finalize();
                match self.algorithm {
                    // The 32-bit CRCs occupy the low half of crc-fast's u64.
                    ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => {
                        let [_, _, _, _, a, b, c, d] = v.to_be_bytes();
                        vec![a, b, c, d]
                    }
                    _ => v.to_be_bytes().to_vec(),
                }
            }
            State::Sha(d) => d.finish().as_ref().to_vec(),
        }
    }

    /// The digest in the base64 form S3 uses in headers and trailers.
    pub fn finalize_base64(self) -> String {
        BASE64.encode(self.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = Checksummer::new(alg);
        c.update(data);
        c.finalize_base64()
    }

    #[test]
    fn known_values_match_s3() {
        // Values S3 returns for "Hello world" / the empty body.
        assert_eq!(b64(ChecksumAlgorithm::Crc32, b"Hello world"), "i9aeUg==");
        assert_eq!(b64(ChecksumAlgorithm::Crc32c, b""), "AAAAAA==");
        assert_eq!(
            b64(ChecksumAlgorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            b64(ChecksumAlgorithm::Sha1, b""),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        // The S3 doc example: 66560 × 'a' has CRC32C sOO8/Q==.
        assert_eq!(
            b64(ChecksumAlgorithm::Crc32c, &vec![b'a'; 66560]),
            "sOO8/Q=="
        );
    }

    #[test]
    fn crc64nvme_is_eight_bytes() {
        let v = b64(ChecksumAlgorithm::Crc64Nvme, b"123456789");
        let raw = ChecksumAlgorithm::Crc64Nvme.decode_value(&v);
        assert_eq!(raw.map(|r| r.len()), Some(8));
        // Check value of CRC-64/NVME for "123456789".
        assert_eq!(
            ChecksumAlgorithm::Crc64Nvme.decode_value(&v),
            Some(0xae8b_1486_0a79_9888u64.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!(
            ChecksumAlgorithm::from_name("crc64nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-SHA1"),
            Some(ChecksumAlgorithm::Sha1)
        );
        assert_eq!(ChecksumAlgorithm::from_name("md5"), None);
        assert_eq!(ChecksumAlgorithm::Crc32.decode_value("AAAA"), None);
        assert_eq!(ChecksumAlgorithm::Crc32.decode_value("!!"), None);
    }
}
