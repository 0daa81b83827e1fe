use super::*;
use crate::kms::local::LocalKms;

fn cache() -> BucketKeyCache {
    let kms = Arc::new(LocalKms::from_master_key(Zeroizing::new([1u8; 32])));
    let metrics = CacheMetrics::register(&prometheus::Registry::new());
    let Ok(metrics) = metrics else {
        panic!("metrics")
    };
    BucketKeyCache::new(
        kms,
        CacheConfig {
            ttl: Duration::from_secs(60),
            max_entries: 100,
        },
        metrics,
    )
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn cache_futures_are_send() {
    let cache = cache();
    let write = cache.key_for_write("b", "k");
    assert_send(&write);
    let Ok(key) = write.await else {
        panic!("write")
    };
    let read = cache.key_for_read("b", "k", &key.ciphertext_blob);
    assert_send(&read);
    assert!(read.await.is_ok());
}

#[test]
fn fingerprint_is_16_hex_digits_of_sha256() {
    // SHA-256("abc") = ba7816bf8f01cfea…
    assert_eq!(fingerprint(b"abc"), "ba7816bf8f01cfea");
}

#[tokio::test]
async fn bucket_key_debug_is_redacted() {
    let cache = cache();
    let Ok(key) = cache.key_for_write("b", "k").await else {
        panic!("write")
    };
    let text = format!("{key:?}");
    assert!(text.contains("<redacted>"));
    assert!(text.contains(&key.fingerprint()));
}

#[test]
fn bucket_keys_can_be_made_outside_the_cache() {
    let key = BucketKey::new(Zeroizing::new([9u8; 32]), b"abc".to_vec(), "k".into());
    assert_eq!(key.fingerprint(), "ba7816bf8f01cfea");
    assert_eq!(*key.plaintext, [9u8; 32]);
}
