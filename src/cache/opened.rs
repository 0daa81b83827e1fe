//! Data keys of envelopes opened recently, so reading an object again skips the
//! envelope's key derivations and MAC (five HMACs, ~3 µs: after the SigV4 work, the
//! largest fixed cost of a small encrypted GET).
//!
//! Opening an envelope is a pure function of the wrapping key, the envelope's bytes and
//! the bucket and key it is bound to, so the memo is keyed by a SHA-256 over exactly
//! those (length-prefixed); a tampered or moved envelope is a different entry and
//! fails to open as before. It is consulted only once this request has obtained its
//! wrapping key from the bucket-key cache or KMS, so whether an object may be read now
//! is still decided on every read (an expired or refused bucket key fails the read).
//! Entries live at most one bucket-key TTL, so a data key stays in memory no longer
//! than the bucket key that opened it, and only successful opens are kept.

use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::crypto::CryptoError;
use crate::crypto::envelope::Envelope;
use crate::crypto::keys::{DataKey, WrappingKey};

/// Data keys kept at most (~150 bytes each with the cache's bookkeeping).
pub const MAX_OPENED_KEYS: u64 = 8192;

pub struct OpenedKeys {
    cache: Cache<[u8; 32], DataKey>,
}

impl std::fmt::Debug for OpenedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedKeys")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl OpenedKeys {
    pub fn new(max_entries: u64, ttl: Duration) -> OpenedKeys {
        OpenedKeys {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// `envelope.open(w, bucket, key)`, remembered.
    pub async fn open(
        &self,
        w: &WrappingKey,
        envelope: &Envelope,
        bucket: &str,
        key: &str,
    ) -> Result<DataKey, CryptoError> {
        let id = fingerprint(w, envelope, bucket, key);
        if let Some(dk) = self.cache.get(&id).await {
            return Ok(dk);
        }
        let dk = envelope.open(w, bucket, key)?;
        self.cache.insert(id, dk.clone()).await;
        Ok(dk)
    }
}

fn fingerprint(w: &WrappingKey, envelope: &Envelope, bucket: &str, key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sealgate opened-key memo\0");
    h.update(w.expose_secret());
    for part in [
        envelope.to_bytes().as_slice(),
        bucket.as_bytes(),
        key.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(w: &WrappingKey, bucket: &str, key: &str) -> Envelope {
        Envelope::seal_new(w, "k", &[5; 184], true, 65536, bucket, key)
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn remembers_exactly_what_opening_gives() {
        let memo = OpenedKeys::new(16, Duration::from_secs(60));
        let w = WrappingKey::from_bytes([7; 32]);
        let env = sealed(&w, "bucket", "key");
        let direct = env.open(&w, "bucket", "key").unwrap();
        for _ in 0..3 {
            let got = memo.open(&w, &env, "bucket", "key").await.unwrap();
            assert_eq!(got.expose_secret(), direct.expose_secret());
        }
        memo.cache.run_pending_tasks().await;
        assert_eq!(memo.cache.entry_count(), 1);
    }

    #[tokio::test]
    async fn a_remembered_key_never_opens_a_moved_or_tampered_envelope() {
        let memo = OpenedKeys::new(16, Duration::from_secs(60));
        let w = WrappingKey::from_bytes([7; 32]);
        let env = sealed(&w, "bucket", "key");
        memo.open(&w, &env, "bucket", "key").await.unwrap();
        // Same envelope, other object: the binding still fails, memo or not.
        assert!(memo.open(&w, &env, "bucket", "other").await.is_err());
        assert!(memo.open(&w, &env, "other", "key").await.is_err());
        // The names run together differently but must not meet in one fingerprint.
        assert!(memo.open(&w, &env, "bucketk", "ey").await.is_err());
        // Another wrapping key.
        let other = WrappingKey::from_bytes([8; 32]);
        assert!(memo.open(&other, &env, "bucket", "key").await.is_err());
        // Every single-byte change of the envelope.
        let bytes = env.to_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(t) = Envelope::from_bytes(&b) {
                assert!(
                    memo.open(&w, &t, "bucket", "key").await.is_err(),
                    "byte {i}"
                );
            }
        }
    }

    #[tokio::test]
    async fn stays_within_its_bound() {
        let memo = OpenedKeys::new(8, Duration::from_secs(60));
        let w = WrappingKey::from_bytes([7; 32]);
        for i in 0..64 {
            let key = format!("k{i}");
            let env = sealed(&w, "bucket", &key);
            memo.open(&w, &env, "bucket", &key).await.unwrap();
        }
        memo.cache.run_pending_tasks().await;
        assert!(
            memo.cache.entry_count() <= 8,
            "{}",
            memo.cache.entry_count()
        );
    }
}
