//! Bucket-key cache behaviour against a counting, switchable stub KMS: single flight,
//! TTL on an injected clock, fail-closed outages and recovery, metric deltas.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sealgate::cache::{
    BucketKey, BucketKeyCache, CacheConfig, CacheMetrics, KeyOp, KeyPath, KmsOp, ManualClock, Side,
};
use sealgate::kms::local::LocalKms;
use sealgate::kms::{
    DATA_KEY_LEN, EncryptionContext, GeneratedKey, KeyInfo, Kms, KmsError, KmsFuture,
};
use zeroize::Zeroizing;

/// LocalKms behind a switch that makes every call fail as an unreachable KMS would,
/// with a delay so concurrent callers really overlap.
struct StubKms {
    inner: LocalKms,
    is_down: AtomicBool,
    delay: Duration,
    generate_calls: AtomicU64,
    decrypt_calls: AtomicU64,
}

impl StubKms {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(StubKms {
            inner: LocalKms::from_master_key(Zeroizing::new([3u8; 32])),
            is_down: AtomicBool::new(false),
            delay,
            generate_calls: AtomicU64::new(0),
            decrypt_calls: AtomicU64::new(0),
        })
    }
    fn set_down(&self, down: bool) {
        self.is_down.store(down, Ordering::SeqCst);
    }
    fn generates(&self) -> u64 {
        self.generate_calls.load(Ordering::SeqCst)
    }
    fn decrypts(&self) -> u64 {
        self.decrypt_calls.load(Ordering::SeqCst)
    }
    async fn gate(&self) -> Result<(), KmsError> {
        tokio::time::sleep(self.delay).await;
        if self.is_down.load(Ordering::SeqCst) {
            Err(KmsError::Unavailable("stub is down".into()))
        } else {
            Ok(())
        }
    }
}

impl Kms for StubKms {
    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, GeneratedKey> {
        Box::pin(async move {
            self.generate_calls.fetch_add(1, Ordering::SeqCst);
            self.gate().await?;
            let mut key = self.inner.generate_data_key(key_id, context).await?;
            // Report a longer id, as AWS reports the ARN for an alias or bare id.
            key.key_id = format!("arn:stub:{key_id}");
            Ok(key)
        })
    }
    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, Zeroizing<[u8; DATA_KEY_LEN]>> {
        Box::pin(async move {
            self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
            self.gate().await?;
            let id = key_id.strip_prefix("arn:stub:").unwrap_or(key_id);
            self.inner.decrypt(id, blob, context).await
        })
    }
    fn describe_key<'a>(&'a self, key_id: &'a str) -> KmsFuture<'a, KeyInfo> {
        self.inner.describe_key(key_id)
    }
    fn name(&self) -> &'static str {
        "stub"
    }
}

const TTL: Duration = Duration::from_secs(300);
const REPORTED_ID: &str = "arn:stub:key-1";

struct Fixture {
    kms: Arc<StubKms>,
    clock: Arc<ManualClock>,
    cache: Arc<BucketKeyCache>,
    metrics: CacheMetrics,
}

fn fixture(delay: Duration) -> Fixture {
    let kms = StubKms::new(delay);
    let clock = Arc::new(ManualClock::new());
    let Ok(metrics) = CacheMetrics::register(&prometheus::Registry::new()) else {
        panic!("metrics")
    };
    let cache = Arc::new(BucketKeyCache::with_clock(
        kms.clone(),
        CacheConfig {
            ttl: TTL,
            max_entries: 1000,
        },
        metrics.clone(),
        clock.clone(),
    ));
    Fixture {
        kms,
        clock,
        cache,
        metrics,
    }
}

async fn write_key(cache: &BucketKeyCache, bucket: &str) -> Arc<BucketKey> {
    match cache.key_for_write(bucket, "key-1").await {
        Ok(k) => k,
        Err(e) => panic!("key_for_write: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_writes_make_one_generate_call() {
    let f = fixture(Duration::from_millis(50));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let cache = f.cache.clone();
        tasks.push(tokio::spawn(async move {
            cache.key_for_write("bucket-a", "key-1").await
        }));
    }
    let mut blobs = std::collections::HashSet::new();
    for t in tasks {
        let Ok(Ok(key)) = t.await else {
            panic!("writer failed")
        };
        blobs.insert(key.ciphertext_blob.clone());
    }
    assert_eq!(f.kms.generates(), 1);
    assert_eq!(blobs.len(), 1, "all writers share one bucket key");
    let m = &f.metrics;
    assert_eq!(m.misses(Side::Write), 1);
    assert_eq!(m.hits(Side::Write), 199);
    assert_eq!(m.kms_requests(KmsOp::GenerateDataKey, "ok"), 1);
    assert_eq!(
        m.object_key_operations(KeyPath::BucketKey, KeyOp::Encrypt),
        200
    );
    assert_eq!(m.calls_saved(), 199);
}

#[tokio::test]
async fn keys_are_per_bucket_and_per_kms_key() {
    let f = fixture(Duration::ZERO);
    let a = write_key(&f.cache, "a").await;
    let b = write_key(&f.cache, "b").await;
    let Ok(a2) = f.cache.key_for_write("a", "key-2").await else {
        panic!("key-2")
    };
    assert_eq!(f.kms.generates(), 3);
    assert_ne!(*a.plaintext, *b.plaintext);
    assert_ne!(*a.plaintext, *a2.plaintext);
    assert_eq!(a.kms_key_id, REPORTED_ID);
}

#[tokio::test]
async fn ttl_expiry_makes_a_new_generate_call() {
    let f = fixture(Duration::ZERO);
    let first = write_key(&f.cache, "b").await;
    f.clock.advance(TTL - Duration::from_secs(1));
    let same = write_key(&f.cache, "b").await;
    assert!(Arc::ptr_eq(&first, &same));
    assert_eq!(f.kms.generates(), 1);
    f.clock.advance(Duration::from_secs(1));
    let fresh = write_key(&f.cache, "b").await;
    assert_eq!(f.kms.generates(), 2);
    assert_ne!(first.ciphertext_blob, fresh.ciphertext_blob);
    f.cache.sync_metrics().await;
    assert_eq!(f.metrics.evictions(), 1);
    assert_eq!(f.metrics.misses(Side::Write), 2);
    assert_eq!(f.metrics.hits(Side::Write), 1);
}

#[tokio::test]
async fn outage_serves_until_ttl_then_fails_closed_then_recovers() {
    let f = fixture(Duration::ZERO);
    let warm = write_key(&f.cache, "b").await;
    let blob = warm.ciphertext_blob.clone();
    f.kms.set_down(true);

    // Inside the TTL: both sides keep serving without KMS.
    f.clock.advance(TTL / 2);
    assert!(f.cache.key_for_write("b", "key-1").await.is_ok());
    assert!(f.cache.key_for_read("b", "key-1", &blob).await.is_ok());
    assert_eq!((f.kms.generates(), f.kms.decrypts()), (1, 0));

    // Past it: fail closed, and failures are not cached.
    f.clock.advance(TTL);
    let err = f.cache.key_for_write("b", "key-1").await.err();
    assert!(matches!(err, Some(KmsError::Unavailable(_))), "{err:?}");
    let err = f.cache.key_for_read("b", "key-1", &blob).await.err();
    assert!(matches!(err, Some(KmsError::Unavailable(_))), "{err:?}");
    assert!(f.cache.key_for_write("b", "key-1").await.is_err());
    assert_eq!((f.kms.generates(), f.kms.decrypts()), (3, 1));
    assert_eq!(
        f.metrics
            .kms_requests(KmsOp::GenerateDataKey, "unavailable"),
        2
    );
    assert_eq!(f.metrics.kms_requests(KmsOp::Decrypt, "unavailable"), 1);
    assert_eq!(f.metrics.misses(Side::Write), 3);
    assert_eq!(f.metrics.misses(Side::Read), 1);
    assert_eq!(f.metrics.hits(Side::Write), 1);

    // KMS is back: the next call succeeds and is cached again.
    f.kms.set_down(false);
    let back = write_key(&f.cache, "b").await;
    assert_ne!(back.ciphertext_blob, blob);
    let Ok(read) = f.cache.key_for_read("b", "key-1", &blob).await else {
        panic!("old blob unwraps again")
    };
    assert_eq!(*read.plaintext, *warm.plaintext);
    write_key(&f.cache, "b").await;
    assert_eq!((f.kms.generates(), f.kms.decrypts()), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_one_blob_make_one_decrypt() {
    let f = fixture(Duration::from_millis(20));
    // A blob made elsewhere (another replica): not in this cache yet.
    let other = fixture(Duration::ZERO);
    let made = write_key(&other.cache, "b").await;

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let cache = f.cache.clone();
        let blob = made.ciphertext_blob.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .key_for_read("b", REPORTED_ID, &blob)
                .await
                .map(|k| *k.plaintext)
        }));
    }
    for t in tasks {
        let Ok(Ok(key)) = t.await else {
            panic!("read task")
        };
        assert_eq!(key, *made.plaintext);
    }
    assert_eq!(f.kms.decrypts(), 1);
    assert_eq!(f.metrics.misses(Side::Read), 1);
    assert_eq!(f.metrics.hits(Side::Read), 49);
    assert_eq!(f.metrics.kms_requests(KmsOp::Decrypt, "ok"), 1);
    assert_eq!(
        f.metrics
            .object_key_operations(KeyPath::BucketKey, KeyOp::Decrypt),
        50
    );
    assert_eq!(f.metrics.calls_saved(), 49);
}

#[tokio::test]
async fn written_keys_are_read_without_decrypt_under_either_id() {
    let f = fixture(Duration::ZERO);
    let key = write_key(&f.cache, "b").await;
    for id in ["key-1", REPORTED_ID] {
        let Ok(read) = f.cache.key_for_read("b", id, &key.ciphertext_blob).await else {
            panic!("read {id}")
        };
        assert!(Arc::ptr_eq(&key, &read));
    }
    assert_eq!(f.kms.decrypts(), 0);
    f.cache.sync_metrics().await;
    assert_eq!(f.metrics.entries(Side::Write), 1);
    assert_eq!(f.metrics.entries(Side::Read), 2);
    // 1 write (miss) + 2 reads (hits): the two reads saved a KMS call each.
    assert_eq!(f.metrics.calls_saved(), 2);
}

#[tokio::test]
async fn a_blob_is_not_served_for_another_bucket() {
    let f = fixture(Duration::ZERO);
    let key = write_key(&f.cache, "b").await;
    let err = f
        .cache
        .key_for_read("other", "key-1", &key.ciphertext_blob)
        .await
        .err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
    assert_eq!(
        f.metrics.kms_requests(KmsOp::Decrypt, "invalid_ciphertext"),
        1
    );
}

#[tokio::test]
async fn per_object_path_always_calls_kms_with_the_object_context() {
    let f = fixture(Duration::ZERO);
    let Ok(k1) = f.cache.per_object_key("b", "dir/o", "key-1").await else {
        panic!("per-object key")
    };
    assert!(f.cache.per_object_key("b", "dir/o", "key-1").await.is_ok());
    assert_eq!(f.kms.generates(), 2);
    for _ in 0..2 {
        let Ok(p) = f
            .cache
            .per_object_decrypt("b", "dir/o", "key-1", &k1.ciphertext_blob)
            .await
        else {
            panic!("per-object decrypt")
        };
        assert_eq!(*p, *k1.plaintext);
    }
    assert_eq!(f.kms.decrypts(), 2);
    // The bucket context does not open an object-context blob.
    assert!(
        f.cache
            .key_for_read("b", "key-1", &k1.ciphertext_blob)
            .await
            .is_err()
    );
    let m = &f.metrics;
    assert_eq!(
        m.object_key_operations(KeyPath::PerObject, KeyOp::Encrypt),
        2
    );
    assert_eq!(
        m.object_key_operations(KeyPath::PerObject, KeyOp::Decrypt),
        2
    );
    assert_eq!(m.calls_saved(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refresh_of_a_stale_key_and_shared_failures_make_one_call_each() {
    // Long enough that all 100 tasks are waiting before the one call ends.
    let f = fixture(Duration::from_millis(250));
    write_key(&f.cache, "b").await;
    f.clock.advance(TTL);
    let run = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let cache = f.cache.clone();
                tokio::spawn(async move { cache.key_for_write("b", "key-1").await.is_ok() })
            })
            .collect();
        async move {
            let mut ok = 0;
            for t in tasks {
                if matches!(t.await, Ok(true)) {
                    ok += 1;
                }
            }
            ok
        }
    };
    assert_eq!(run(100).await, 100);
    assert_eq!(f.kms.generates(), 2);

    f.clock.advance(TTL);
    f.kms.set_down(true);
    assert_eq!(run(100).await, 0);
    assert_eq!(
        f.kms.generates(),
        3,
        "one failing call shared by all waiters"
    );
}

#[tokio::test]
async fn hit_path_cost_is_printed() {
    let f = fixture(Duration::ZERO);
    let key = write_key(&f.cache, "b").await;
    const N: u32 = 20_000;
    let started = std::time::Instant::now();
    for _ in 0..N {
        assert!(f.cache.key_for_write("b", "key-1").await.is_ok());
    }
    let write_hit = started.elapsed() / N;
    let started = std::time::Instant::now();
    for _ in 0..N {
        assert!(
            f.cache
                .key_for_read("b", "key-1", &key.ciphertext_blob)
                .await
                .is_ok()
        );
    }
    let read_hit = started.elapsed() / N;
    assert_eq!(f.kms.generates(), 1);
    eprintln!("cache hit: key_for_write {write_hit:?}, key_for_read {read_hit:?} (debug build)");
}

#[tokio::test]
async fn capacity_bounds_entries_and_counts_evictions() {
    let kms = StubKms::new(Duration::ZERO);
    let Ok(metrics) = CacheMetrics::register(&prometheus::Registry::new()) else {
        panic!("metrics")
    };
    let cache = BucketKeyCache::new(
        kms.clone(),
        CacheConfig {
            ttl: TTL,
            max_entries: 2,
        },
        metrics.clone(),
    );
    for i in 0..6 {
        write_key(&cache, &format!("bucket-{i}")).await;
    }
    cache.sync_metrics().await;
    assert!(
        metrics.entries(Side::Write) <= 2,
        "{}",
        metrics.entries(Side::Write)
    );
    assert!(
        metrics.entries(Side::Read) <= 2,
        "{}",
        metrics.entries(Side::Read)
    );
    // 12 inserts (6 per side) into 4 slots.
    assert!(metrics.evictions() >= 8, "{}", metrics.evictions());
    assert_eq!(kms.generates(), 6);
}

#[tokio::test]
async fn client_context_is_bound_but_cannot_replace_the_object_arn() {
    let f = fixture(Duration::ZERO);
    let extra = EncryptionContext::new()
        .with("department", "finance")
        .with("aws:s3:arn", "arn:aws:s3:::other/object");
    let Ok(made) = f.cache.per_object_key_with("b", "o", "key-1", &extra).await else {
        panic!("per-object key with context")
    };
    let ok = f
        .cache
        .per_object_decrypt_with("b", "o", "key-1", &made.ciphertext_blob, &extra)
        .await;
    assert_eq!(ok.map(|k| *k).ok(), Some(*made.plaintext));
    // Without the client's pair it fails; the forged ARN did not take effect either.
    assert!(
        f.cache
            .per_object_decrypt("b", "o", "key-1", &made.ciphertext_blob)
            .await
            .is_err()
    );
    let err = f
        .cache
        .per_object_decrypt_with("other", "object", "key-1", &made.ciphertext_blob, &extra)
        .await
        .err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
}
