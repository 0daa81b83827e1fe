//! The client's plaintext checksum of a single PUT, kept beside the envelope in reserved
//! metadata (`x-amz-meta-sealgate-checksum: ALGORITHM:base64`), hidden from clients like
//! the envelope, and given back as S3 gives it: `x-amz-checksum-*` on whole-object
//! GET/HEAD with `x-amz-checksum-mode: ENABLED`, and `Checksum` in GetObjectAttributes.
//!
//! Only a checksum the client declared in a header is stored: its value is known before
//! the body, so it can travel in the PUT's metadata, and the verifying body fails the
//! upload if the plaintext does not match, so a stored value is always a verified one.
//! Trailer checksums (aws-chunked over HTTPS) are verified and echoed, not stored: they
//! arrive after the backend has the metadata. Multipart objects store none (their
//! composite checksum would need every part's checksum at completion).
//! Checksums the backend computed are over ciphertext and never reach a client.

use http::{HeaderMap, HeaderValue};

use crate::auth::checksum::ChecksumAlgorithm;

/// The reserved metadata name (under `RESERVED_META_PREFIX`, so hidden and refused).
pub const X_AMZ_META_CHECKSUM: http::HeaderName =
    http::HeaderName::from_static("x-amz-meta-sealgate-checksum");

/// A verified plaintext checksum of a whole object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// base64 of the big-endian digest, as in `x-amz-checksum-*`.
    pub value: String,
}

impl StoredChecksum {
    /// The metadata value: `CRC32C:base64`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.algorithm.display_name(), self.value)
    }

    /// Parses the metadata value; anything malformed is treated as absent (it can only
    /// come from the proxy, and a missing checksum is always a safe answer).
    pub fn decode(s: &str) -> Option<StoredChecksum> {
        let (name, value) = s.split_once(':')?;
        let algorithm = ChecksumAlgorithm::from_name(name)?;
        algorithm.decode_value(value)?;
        Some(StoredChecksum {
            algorithm,
            value: value.to_string(),
        })
    }

    /// From a backend answer's metadata.
    pub fn from_headers(headers: &HeaderMap) -> Option<StoredChecksum> {
        StoredChecksum::decode(headers.get(X_AMZ_META_CHECKSUM)?.to_str().ok()?)
    }

    /// The client's checksum header of a PUT whose checksum is declared up front.
    pub fn declared(
        headers: &HeaderMap,
        algorithm: Option<ChecksumAlgorithm>,
        in_trailer: bool,
    ) -> Option<StoredChecksum> {
        let algorithm = algorithm.filter(|_| !in_trailer)?;
        let value = headers.get(algorithm.header())?.to_str().ok()?.trim();
        algorithm.decode_value(value)?;
        Some(StoredChecksum {
            algorithm,
            value: value.to_string(),
        })
    }

    /// Adds `x-amz-checksum-ALGO` and `x-amz-checksum-type: FULL_OBJECT` to a response.
    pub fn add_to(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.value) {
            headers.insert(self.algorithm.header(), v);
            headers.insert(
                "x-amz-checksum-type",
                HeaderValue::from_static("FULL_OBJECT"),
            );
        }
    }
}

/// The GetObjectAttributes element name of an algorithm (`ChecksumCRC32C`…).
pub fn xml_element(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
        ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
        ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
        ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
        ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
    }
}

/// True when a read asked for checksums (`x-amz-checksum-mode: ENABLED`).
pub fn checksum_mode_enabled(headers: &HeaderMap) -> bool {
    headers
        .get(crate::s3::headers::X_AMZ_CHECKSUM_MODE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"ENABLED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_checksum_round_trips_and_rejects_wrong_lengths() {
        let c = StoredChecksum {
            algorithm: ChecksumAlgorithm::Crc32c,
            value: "yZRlqg==".into(),
        };
        assert_eq!(StoredChecksum::decode(&c.encode()), Some(c));
        // A SHA-256 name with a CRC-sized value is not a checksum.
        assert_eq!(StoredChecksum::decode("SHA256:yZRlqg=="), None);
        assert_eq!(StoredChecksum::decode("MD5:yZRlqg=="), None);
        assert_eq!(StoredChecksum::decode("yZRlqg=="), None);
    }

    #[test]
    fn only_header_checksums_are_declared() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-crc32", HeaderValue::from_static("AAAAAA=="));
        let a = Some(ChecksumAlgorithm::Crc32);
        assert!(StoredChecksum::declared(&h, a, false).is_some());
        assert!(StoredChecksum::declared(&h, a, true).is_none());
        assert!(StoredChecksum::declared(&h, None, false).is_none());
    }
}
