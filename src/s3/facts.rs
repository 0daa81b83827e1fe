//! Bounded caches of facts about stored object versions, keyed by (bucket, key, ETag).
//! An ETag names one stored content, so an entry never goes stale: a rewritten object
//! has a new ETag and a new entry. Both caches are bounded in bytes, not entries, so a
//! workload of long keys cannot grow the proxy past its budget; the budget is
//! `limits.metadata_cache_bytes`, split evenly between the caches.
//!
//! - [`SizeCache`]: plaintext sizes for listings (spares one backend HEAD per key).
//! - [`LayoutCache`]: where the parts of an object lie (spares a `partNumber` read the
//!   extra backend read of part 1's header).

use std::time::Duration;

use moka::future::Cache;

use crate::crypto::ObjectLayout;

/// (bucket, key, ETag as the backend sent it).
pub type FactKey = (String, String, String);
pub type SizeCache = Cache<FactKey, u64>;
pub type LayoutCache = Cache<FactKey, ObjectLayout>;

/// moka's bookkeeping per entry beyond the key and value: the hash-table slot, the
/// shared key, the access-order and write-order deque nodes and the timer node. A
/// generous estimate, so the real footprint stays under the budget rather than over it.
const ENTRY_OVERHEAD_BYTES: usize = 384;

/// Idle entries go after an hour, so a deleted object's facts do not linger for ever.
const TIME_TO_IDLE: Duration = Duration::from_secs(3600);

/// The cache of plaintext sizes, with half of `budget_bytes`.
pub fn new_size_cache(budget_bytes: u64) -> SizeCache {
    weighted(budget_bytes / 2)
}

/// The cache of object layouts, with half of `budget_bytes`.
pub fn new_layout_cache(budget_bytes: u64) -> LayoutCache {
    weighted(budget_bytes / 2)
}

/// The cache key of an object version.
pub fn fact_key(bucket: &str, key: &str, etag: &str) -> FactKey {
    (bucket.to_string(), key.to_string(), etag.to_string())
}

/// Bytes an entry is charged: its strings, the value and moka's bookkeeping.
pub fn entry_weight<V>(key: &FactKey) -> u32 {
    let strings = key.0.len() + key.1.len() + key.2.len();
    let fixed = 3 * std::mem::size_of::<String>() + std::mem::size_of::<V>();
    u32::try_from(strings + fixed + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
}

fn weighted<V: Clone + Send + Sync + 'static>(budget_bytes: u64) -> Cache<FactKey, V> {
    Cache::builder()
        .max_capacity(budget_bytes)
        .weigher(|k: &FactKey, _: &V| entry_weight::<V>(k))
        .time_to_idle(TIME_TO_IDLE)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_grows_with_the_key() {
        let short = entry_weight::<u64>(&fact_key("b", "k", "\"e\""));
        let long = entry_weight::<u64>(&fact_key("b", &"k".repeat(1000), "\"e\""));
        assert_eq!(long - short, 999);
        assert!(short as usize > ENTRY_OVERHEAD_BYTES);
    }

    #[tokio::test]
    async fn a_full_cache_stays_within_its_budget() {
        let budget = 256 * 1024;
        let cache = new_size_cache(budget);
        for i in 0..20_000u64 {
            cache
                .insert(
                    fact_key("bucket", &format!("some/key/{i:08}"), "\"etag\""),
                    i,
                )
                .await;
        }
        cache.run_pending_tasks().await;
        assert!(
            cache.weighted_size() <= budget / 2,
            "{}",
            cache.weighted_size()
        );
        // About 128 KiB / ~500 bytes per entry: a few hundred entries stay, not 20,000.
        assert!(cache.entry_count() > 100 && cache.entry_count() < 400);
    }
}
