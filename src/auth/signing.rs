//! SigV4 cryptography: signing-key derivation, the three strings to sign (request,
//! aws-chunked chunk, trailer) and constant-time signature comparison.
//!
//! Pure functions over bytes; canonicalisation lives in `canonical`, header parsing in
//! `sigv4`. Derived keys are secrets: kept in [`Zeroizing`], `Debug` redacted.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The only SigV4 algorithm S3 accepts with symmetric keys.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty string; part of every chunk string to sign.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// HMAC-SHA256 (the crate's one implementation, `crypto::keys::hmac_sha256`).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    *crate::crypto::keys::hmac_sha256(key, [data])
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// `AWS4-HMAC-SHA256` key for one day, region and service (the "signing key"), with
/// its HMAC state prepared: signing starts from the hash states that have absorbed the
/// key's inner and outer pads, instead of hashing both pads again for every signature
/// (two of the six SHA-256 blocks of a request's signature; each request is signed
/// twice, verified and re-signed for the backend).
#[derive(Clone)]
pub struct SigningKey {
    key: Zeroizing<[u8; 32]>,
    mac: Hmac<Sha256>,
}

impl SigningKey {
    /// The HMAC chain `kSecret → kDate → kRegion → kService → kSigning`.
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.as_bytes());
        let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
        let k_region = Zeroizing::new(hmac_sha256(&*k_date, region.as_bytes()));
        let k_service = Zeroizing::new(hmac_sha256(&*k_region, service.as_bytes()));
        let key = Zeroizing::new(hmac_sha256(&*k_service, b"aws4_request"));
        let mac = crate::crypto::keys::hmac_sha256_state(&*key);
        SigningKey { key, mac }
    }

    /// The raw signature of `string_to_sign`.
    pub fn sign(&self, string_to_sign: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(string_to_sign);
        mac.finalize().into_bytes().into()
    }

    /// Exposes the key bytes, for the test vectors' `signing_key_hex` only.
    #[doc(hidden)]
    pub fn expose_for_tests(&self) -> [u8; 32] {
        *self.key
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    // Built by hand: every request (verified, and re-signed for the backend) makes one,
    // and `format!` cost as much as hashing the canonical request.
    let mut hash_hex = [0u8; 64];
    // 32 bytes are exactly 64 hex digits, so this cannot fail.
    let _ = hex::encode_to_slice(sha256(canonical_request), &mut hash_hex);
    let mut out = String::with_capacity(ALGORITHM.len() + timestamp.len() + scope.len() + 67);
    for part in [ALGORITHM, "\n", timestamp, "\n", scope, "\n"] {
        out.push_str(part);
    }
    out.push_str(std::str::from_utf8(&hash_hex).unwrap_or_default());
    out
}

/// The string to sign for one aws-chunked chunk, chained on the previous signature.
pub fn chunk_string_to_sign(
    timestamp: &str,
    scope: &str,
    previous_signature: &[u8; 32],
    chunk_sha256: &[u8; 32],
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{}\n{EMPTY_SHA256_HEX}\n{}",
        hex::encode(previous_signature),
        hex::encode(chunk_sha256)
    )
}

/// The string to sign for the trailer, chained on the final chunk's signature.
pub fn trailer_string_to_sign(
    timestamp: &str,
    scope: &str,
    previous_signature: &[u8; 32],
    canonical_trailers: &[u8],
) -> String {
    format!(
        "AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{}\n{}",
        hex::encode(previous_signature),
        sha256_hex(canonical_trailers)
    )
}

/// Decodes a 64-digit hex signature (either case).
pub fn parse_signature_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Constant-time equality of two signatures.
pub fn signatures_equal(a: &[u8], b: &[u8]) -> bool {
    crate::crypto::constant_time_eq(a, b)
}

/// Everything needed to check the signatures of an aws-chunked body, chained from the
/// request's (seed) signature. The signing key makes this a secret.
#[derive(Clone)]
pub struct ChunkSigner {
    key: SigningKey,
    timestamp: String,
    scope: String,
    previous: [u8; 32],
}

impl ChunkSigner {
    pub fn new(key: SigningKey, timestamp: String, scope: String, seed: [u8; 32]) -> Self {
        ChunkSigner {
            key,
            timestamp,
            scope,
            previous: seed,
        }
    }

    /// Checks one chunk's signature and, when it matches, advances the chain.
    pub fn verify_chunk(&mut self, chunk_sha256: &[u8; 32], provided: &[u8; 32]) -> bool {
        let sts = chunk_string_to_sign(&self.timestamp, &self.scope, &self.previous, chunk_sha256);
        let expected = self.key.sign(sts.as_bytes());
        let ok = signatures_equal(&expected, provided);
        if ok {
            self.previous = expected;
        }
        ok
    }

    /// Checks the trailer signature over `canonical_trailers` (`name:value\n`, sorted).
    pub fn verify_trailer(&self, canonical_trailers: &[u8], provided: &[u8; 32]) -> bool {
        let sts = trailer_string_to_sign(
            &self.timestamp,
            &self.scope,
            &self.previous,
            canonical_trailers,
        );
        signatures_equal(&self.key.sign(sts.as_bytes()), provided)
    }
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn signing_key_matches_the_s3_documentation() {
        let key = SigningKey::derive(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            hex::encode(key.expose_for_tests()),
            "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378"
        );
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }

    #[test]
    fn chunk_chain_advances_only_on_match() {
        let key = SigningKey::derive(SECRET, "20130524", "us-east-1", "s3");
        let seed =
            parse_signature_hex("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
        let Some(seed) = seed else {
            panic!("seed parses")
        };
        let mut signer = ChunkSigner::new(
            key,
            "20130524T000000Z".into(),
            "20130524/us-east-1/s3/aws4_request".into(),
            seed,
        );
        let data = sha256(&[b'a'; 65536]);
        let good =
            parse_signature_hex("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
                .unwrap_or_default();
        let mut bad = good;
        bad[0] ^= 1;
        assert!(!signer.verify_chunk(&data, &bad));
        assert!(signer.verify_chunk(&data, &good));
        assert!(!signer.verify_chunk(&data, &good), "chain moved on");
    }

    #[test]
    fn signature_hex_must_be_64_digits() {
        assert!(parse_signature_hex("abc").is_none());
        assert!(parse_signature_hex(&"g".repeat(64)).is_none());
        assert!(parse_signature_hex(&"A".repeat(64)).is_some());
    }
}
