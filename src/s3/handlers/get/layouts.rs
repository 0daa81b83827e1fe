//! The layout cache: where the parts of an object lie, by (bucket, key, ETag). An ETag
//! names one stored content, so an entry never goes stale; a rewritten object has a new
//! ETag and a new entry. Knowing the layout spares a `partNumber` read of a multipart
//! object the extra backend read of part 1's header, which is the only source of the
//! part size P (see docs/FORMAT.md, "Sizes").

use std::time::Duration;

use crate::crypto::ObjectLayout;

/// (bucket, key, ETag as the backend sent it) → layout.
pub type LayoutCache = moka::future::Cache<(String, String, String), ObjectLayout>;

/// Entries are ~100 bytes; 100,000 of them bound the cache near 10 MiB. Idle entries
/// go after an hour, so a deleted object's layout does not linger for ever.
pub fn new_layout_cache() -> LayoutCache {
    moka::future::Cache::builder()
        .max_capacity(100_000)
        .time_to_idle(Duration::from_secs(3600))
        .build()
}

/// The cache key of an object version.
pub fn cache_key(bucket: &str, key: &str, etag: &str) -> (String, String, String) {
    (bucket.to_string(), key.to_string(), etag.to_string())
}
