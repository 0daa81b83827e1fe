//! The bucket-key cache: the S3 Bucket Key model's economy. It owns when KMS is
//! called for object keys and nothing about objects themselves.
//!
//! - Writes: one `GenerateDataKey` per (bucket, KMS key id) per TTL, context
//!   `{"aws:s3:arn": "arn:aws:s3:::BUCKET"}`; the bucket key is also put on the read
//!   side, so reading back fresh objects costs no `Decrypt`.
//! - Reads: one `Decrypt` per distinct (bucket, key id, wrapped blob) per TTL. The
//!   bucket is part of the cache key so a blob is never served for a bucket KMS would
//!   refuse it for.
//! - Single flight: concurrent misses for one entry make exactly one KMS call
//!   (moka's `try_get_with`); an error reaches all of them and is not cached.
//! - Fails closed: while KMS is down, cached entries serve until their TTL ends; after
//!   that, lookups fail until KMS answers again. Entries are never extended.
//! - The per-object path (`bucket-key-enabled: false`) always calls KMS with the
//!   object's context, as S3 does, so both paths' costs show in the metrics.
//!
//! Age is measured on an injectable [`Clock`] (tests advance it instead of sleeping);
//! moka's own TTL with the same length bounds memory in real time.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html>

mod clock;
mod front;
mod metrics;

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::future::Cache;
use moka::ops::compute::Op;

use front::Front;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use metrics::{CacheMetrics, KeyOp, KeyPath, KmsOp, Side};

use crate::kms::{DATA_KEY_LEN, EncryptionContext, GeneratedKey, KeyInfo, Kms, KmsError};

/// A bucket key: the plaintext wrapping key and what is stored beside objects.
pub struct BucketKey {
    /// The 256-bit key; zeroized when the last holder drops it.
    pub plaintext: Zeroizing<[u8; DATA_KEY_LEN]>,
    /// The key as wrapped by KMS; goes into each object's envelope.
    pub ciphertext_blob: Vec<u8>,
    /// The KMS key id as KMS reported it (writes) or as the caller named it (reads).
    pub kms_key_id: String,
    /// When KMS made (or unwrapped) it.
    pub created_at: SystemTime,
    /// End of life on the cache's clock.
    expires_at: Instant,
}

impl BucketKey {
    /// A bucket key from outside the cache (tools, tests); it carries no cache lifetime.
    pub fn new(
        plaintext: Zeroizing<[u8; DATA_KEY_LEN]>,
        ciphertext_blob: Vec<u8>,
        kms_key_id: String,
    ) -> Self {
        BucketKey {
            plaintext,
            ciphertext_blob,
            kms_key_id,
            created_at: SystemTime::now(),
            expires_at: Instant::now(),
        }
    }

    /// The audit log's `bucket_key_id`: see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.ciphertext_blob)
    }
}

impl fmt::Debug for BucketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketKey")
            .field("plaintext", &"<redacted>")
            .field("fingerprint", &self.fingerprint())
            .field("kms_key_id", &self.kms_key_id)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A non-secret id for a wrapped key: hex of the first 8 bytes of SHA-256 of the
/// blob. Safe to log; tells audit readers which objects share a bucket key.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Cache sizing and lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Lifetime of a bucket key from its KMS call; never extended by use.
    pub ttl: Duration,
    /// Most entries per side (write keys, read keys).
    pub max_entries: u64,
}

impl CacheConfig {
    pub fn from_kms_config(config: &crate::config::KmsConfig) -> Self {
        CacheConfig {
            ttl: Duration::from_secs(config.bucket_key_ttl_secs),
            max_entries: config.bucket_key_cache_entries,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct WriteKey {
    bucket: String,
    kms_key_id: String,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ReadKey {
    bucket: String,
    kms_key_id: String,
    blob: Vec<u8>,
}

/// One side's moka cache, and the map in front of it that serves its hits
/// (`front.rs`).
struct Tier<K> {
    cache: Cache<K, Arc<BucketKey>>,
    front: Front<K>,
}

/// The cache. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct BucketKeyCache {
    kms: Arc<dyn Kms>,
    write: Tier<WriteKey>,
    read: Tier<ReadKey>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    metrics: CacheMetrics,
}

impl fmt::Debug for BucketKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketKeyCache")
            .field("kms", &self.kms.name())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl BucketKeyCache {
    /// A cache on the system clock.
    pub fn new(kms: Arc<dyn Kms>, config: CacheConfig, metrics: CacheMetrics) -> Self {
        Self::with_clock(kms, config, metrics, Arc::new(SystemClock))
    }

    /// A cache whose entry ages are measured on `clock`.
    pub fn with_clock(
        kms: Arc<dyn Kms>,
        config: CacheConfig,
        metrics: CacheMetrics,
        clock: Arc<dyn Clock>,
    ) -> Self {
        kms.attach_retry_counter(metrics.kms_retries().clone());
        let now = clock.now();
        BucketKeyCache {
            kms,
            write: build_tier(&config, &metrics, now),
            read: build_tier(&config, &metrics, now),
            ttl: config.ttl,
            clock,
            metrics,
        }
    }

    /// The backend, for callers that need it directly (e.g. its name).
    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }

    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// The bucket key new objects in `bucket` under `kms_key_id` are protected with.
    /// Call once per object key operation: each call counts in
    /// `sealgate_object_key_operations_total` (and in calls saved when it hits).
    pub async fn key_for_write(
        &self,
        bucket: &str,
        kms_key_id: &str,
    ) -> Result<Arc<BucketKey>, KmsError> {
        let cache_key = WriteKey {
            bucket: bucket.to_owned(),
            kms_key_id: kms_key_id.to_owned(),
        };
        let (key, called_kms) = self
            .lookup(&self.write, cache_key, Side::Write, || async {
                let context = EncryptionContext::for_bucket(bucket);
                let generated = self
                    .timed(
                        KmsOp::GenerateDataKey,
                        self.kms.generate_data_key(kms_key_id, &context),
                    )
                    .await?;
                Ok(self.bucket_key(
                    generated.plaintext,
                    generated.ciphertext_blob,
                    generated.key_id,
                ))
            })
            .await?;
        if called_kms {
            self.share_with_read_side(bucket, kms_key_id, &key).await;
        }
        self.metrics
            .record_object_key_op(KeyPath::BucketKey, KeyOp::Encrypt, called_kms);
        Ok(key)
    }

    /// The bucket key wrapped as `blob` under `kms_key_id` for `bucket`, unwrapped.
    /// Counted like [`BucketKeyCache::key_for_write`], once per call.
    pub async fn key_for_read(
        &self,
        bucket: &str,
        kms_key_id: &str,
        blob: &[u8],
    ) -> Result<Arc<BucketKey>, KmsError> {
        let cache_key = ReadKey {
            bucket: bucket.to_owned(),
            kms_key_id: kms_key_id.to_owned(),
            blob: blob.to_vec(),
        };
        let (key, called_kms) = self
            .lookup(&self.read, cache_key, Side::Read, || async {
                let context = EncryptionContext::for_bucket(bucket);
                let plaintext = self
                    .timed(KmsOp::Decrypt, self.kms.decrypt(kms_key_id, blob, &context))
                    .await?;
                Ok(self.bucket_key(plaintext, blob.to_vec(), kms_key_id.to_owned()))
            })
            .await?;
        self.metrics
            .record_object_key_op(KeyPath::BucketKey, KeyOp::Decrypt, called_kms);
        Ok(key)
    }

    /// A fresh KMS data key for one object (`bucket-key-enabled: false`): always one
    /// `GenerateDataKey` with the object's context, never cached.
    pub async fn per_object_key(
        &self,
        bucket: &str,
        key: &str,
        kms_key_id: &str,
    ) -> Result<GeneratedKey, KmsError> {
        self.per_object_key_with(bucket, key, kms_key_id, &EncryptionContext::new())
            .await
    }

    /// Same, with the client's own context pairs (`x-amz-server-side-encryption-context`)
    /// added; `aws:s3:arn` is always the object ARN, whatever `extra` says.
    pub async fn per_object_key_with(
        &self,
        bucket: &str,
        key: &str,
        kms_key_id: &str,
        extra: &EncryptionContext,
    ) -> Result<GeneratedKey, KmsError> {
        let context = object_context(bucket, key, extra);
        let generated = self
            .timed(
                KmsOp::GenerateDataKey,
                self.kms.generate_data_key(kms_key_id, &context),
            )
            .await?;
        self.metrics
            .record_object_key_op(KeyPath::PerObject, KeyOp::Encrypt, true);
        Ok(generated)
    }

    /// Unwraps one object's own KMS data key: always one `Decrypt`, never cached.
    pub async fn per_object_decrypt(
        &self,
        bucket: &str,
        key: &str,
        kms_key_id: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, KmsError> {
        self.per_object_decrypt_with(bucket, key, kms_key_id, blob, &EncryptionContext::new())
            .await
    }

    /// Same, for a key made by [`BucketKeyCache::per_object_key_with`] with `extra`.
    pub async fn per_object_decrypt_with(
        &self,
        bucket: &str,
        key: &str,
        kms_key_id: &str,
        blob: &[u8],
        extra: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, KmsError> {
        let context = object_context(bucket, key, extra);
        let plaintext = self
            .timed(KmsOp::Decrypt, self.kms.decrypt(kms_key_id, blob, &context))
            .await?;
        self.metrics
            .record_object_key_op(KeyPath::PerObject, KeyOp::Decrypt, true);
        Ok(plaintext)
    }

    /// `DescribeKey` through the metrics, for readiness checks.
    pub async fn describe_key(&self, kms_key_id: &str) -> Result<KeyInfo, KmsError> {
        self.timed(KmsOp::DescribeKey, self.kms.describe_key(kms_key_id))
            .await
    }

    /// Runs moka's pending housekeeping (expiry, eviction notices) and refreshes the
    /// entries gauge; call before scraping metrics for exact numbers.
    pub async fn sync_metrics(&self) {
        self.write.cache.run_pending_tasks().await;
        self.read.cache.run_pending_tasks().await;
        self.metrics
            .set_entries(Side::Write, self.write.cache.entry_count());
        self.metrics
            .set_entries(Side::Read, self.read.cache.entry_count());
    }

    /// Finds a live entry or makes one with `fetch`; returns whether this caller
    /// called KMS. A stale entry (by the cache clock) is removed only if it is still
    /// the one we saw, so concurrent callers replacing it still share one KMS call.
    async fn lookup<K, F, Fut>(
        &self,
        tier: &Tier<K>,
        cache_key: K,
        side: Side,
        fetch: F,
    ) -> Result<(Arc<BucketKey>, bool), KmsError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Arc<BucketKey>, KmsError>>,
    {
        let Tier { cache, front } = tier;
        let now = self.clock.now();
        if front.sweep_if_due(now) {
            cache.run_pending_tasks().await;
        }
        if let Some(found) = front.get(&cache_key, now) {
            self.metrics.record_lookup(side, false);
            return Ok((found, false));
        }
        // Two rounds: the first may find a stale entry, the second fetches afresh.
        for _ in 0..2 {
            let mut called_kms = false;
            let found = cache
                .try_get_with(cache_key.clone(), async {
                    called_kms = true;
                    fetch().await
                })
                .await;
            let found = match found {
                Ok(found) => found,
                Err(shared) => {
                    if called_kms {
                        self.metrics.record_lookup(side, true);
                    }
                    return Err(KmsError::clone(&shared));
                }
            };
            let now = self.clock.now();
            if called_kms || now < found.expires_at {
                front.insert(cache_key, Arc::clone(&found), now);
                self.metrics.record_lookup(side, called_kms);
                if called_kms {
                    // Misses are rare; settling moka's counts here keeps the gauge exact.
                    cache.run_pending_tasks().await;
                    self.metrics.set_entries(side, cache.entry_count());
                }
                return Ok((found, called_kms));
            }
            cache
                .entry(cache_key.clone())
                .and_compute_with(|current| {
                    let op = match current {
                        Some(entry) if Arc::ptr_eq(entry.value(), &found) => Op::Remove,
                        _ => Op::Nop,
                    };
                    std::future::ready(op)
                })
                .await;
            front.remove_dead(&cache_key, now);
        }
        // Only reachable if every fresh entry is already stale (a zero TTL): fail closed.
        Err(KmsError::Internal("bucket key expired on arrival".into()))
    }

    /// Writers' keys go on the read side too, under the id the caller used and the id
    /// KMS reported, whichever the envelope records.
    async fn share_with_read_side(&self, bucket: &str, kms_key_id: &str, key: &Arc<BucketKey>) {
        let mut ids = vec![kms_key_id];
        if key.kms_key_id != kms_key_id {
            ids.push(key.kms_key_id.as_str());
        }
        for id in ids {
            let read_key = ReadKey {
                bucket: bucket.to_owned(),
                kms_key_id: id.to_owned(),
                blob: key.ciphertext_blob.clone(),
            };
            self.read
                .cache
                .entry(read_key)
                .or_insert(Arc::clone(key))
                .await;
        }
        self.read.cache.run_pending_tasks().await;
        self.metrics
            .set_entries(Side::Read, self.read.cache.entry_count());
    }

    fn bucket_key(
        &self,
        plaintext: Zeroizing<[u8; DATA_KEY_LEN]>,
        ciphertext_blob: Vec<u8>,
        kms_key_id: String,
    ) -> Arc<BucketKey> {
        Arc::new(BucketKey {
            plaintext,
            ciphertext_blob,
            kms_key_id,
            created_at: SystemTime::now(),
            expires_at: self.clock.now() + self.ttl,
        })
    }

    async fn timed<T>(&self, op: KmsOp, call: crate::kms::KmsFuture<'_, T>) -> Result<T, KmsError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.record_kms_call(op, started.elapsed(), &result);
        if let Err(e) = &result {
            tracing::warn!(kms = self.kms.name(), op = op.as_str(), error = %e, "KMS call failed");
        }
        result
    }
}

/// The object ARN context plus the client's pairs; the ARN cannot be overridden, or a
/// client could make a key that unwraps for another object.
fn object_context(bucket: &str, key: &str, extra: &EncryptionContext) -> EncryptionContext {
    let arn = EncryptionContext::for_object(bucket, key);
    extra
        .iter()
        .chain(arn.iter())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn build_tier<K>(config: &CacheConfig, metrics: &CacheMetrics, now: Instant) -> Tier<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let metrics = metrics.clone();
    let front_capacity = usize::try_from(config.max_entries).unwrap_or(usize::MAX);
    let cache = Cache::builder()
        .max_capacity(config.max_entries)
        .time_to_live(config.ttl)
        .eviction_listener(move |_key, _value, cause| {
            // Replaced is an update, not an eviction; explicit removals are stale
            // entries dropped by `lookup`, i.e. expiry on the cache clock.
            if cause != moka::notification::RemovalCause::Replaced {
                metrics.record_eviction();
            }
        })
        .build();
    Tier {
        cache,
        front: Front::new(front_capacity, now),
    }
}

#[cfg(test)]
mod tests;
