//! The live bucket keys in a plain map in front of moka, for the hit that every
//! encrypted request makes once its bucket key is cached.
//!
//! A moka hit costs ~0.5 µs alone and 1-1.6 µs per request under load (epoch pinning,
//! recording the read for its eviction policy, housekeeping); a read lock on a small
//! map costs a tenth of that. moka stays the cache that decides: misses, single-flight
//! KMS calls and failures go through it, and only an entry it returned goes in front.
//! The front serves an entry only while it is alive on the cache's clock, like moka's
//! own path, and drops dead ones at least once a second (on the next lookup), so no
//! expired plaintext bucket key outlives its TTL by more than that.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::BucketKey;

/// How often dead entries are dropped (on a lookup, not by a timer).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Front<K> {
    entries: RwLock<HashMap<K, Arc<BucketKey>>>,
    /// As many entries as the moka cache behind it holds; zero turns the front off.
    capacity: usize,
    /// Sweep times are kept as milliseconds since this instant, in an atomic.
    origin: Instant,
    next_sweep_ms: AtomicU64,
}

impl<K: Hash + Eq> Front<K> {
    pub(super) fn new(capacity: usize, now: Instant) -> Self {
        Front {
            entries: RwLock::new(HashMap::new()),
            capacity,
            origin: now,
            next_sweep_ms: AtomicU64::new(millis(SWEEP_EVERY)),
        }
    }

    /// The entry for `key` if it is alive at `now`.
    pub(super) fn get(&self, key: &K, now: Instant) -> Option<Arc<BucketKey>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|found| now < found.expires_at)
            .map(Arc::clone)
    }

    /// Remembers an entry moka returned. When full, the dead entries go first, and if
    /// that frees nothing, all of them (moka still has the live ones).
    pub(super) fn insert(&self, key: K, value: Arc<BucketKey>, now: Instant) {
        if self.capacity == 0 || now >= value.expires_at {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, v| now < v.expires_at);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, value);
    }

    /// Drops the entry for `key` if it is dead at `now`.
    pub(super) fn remove_dead(&self, key: &K, now: Instant) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.get(key).is_some_and(|v| now >= v.expires_at) {
            entries.remove(key);
        }
    }

    /// Drops every dead entry if a sweep is due; returns whether one ran, so the
    /// caller can let moka do its own housekeeping at the same pace.
    pub(super) fn sweep_if_due(&self, now: Instant) -> bool {
        let now_ms = millis(now.saturating_duration_since(self.origin));
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms < due
            || self
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now_ms + millis(SWEEP_EVERY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return false;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, v| now < v.expires_at);
        true
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    fn key_until(expires_at: Instant) -> Arc<BucketKey> {
        let mut key = BucketKey::new(Zeroizing::new([3u8; 32]), b"blob".to_vec(), "k".into());
        key.expires_at = expires_at;
        Arc::new(key)
    }

    #[test]
    fn serves_an_entry_only_while_it_is_alive() {
        let t0 = Instant::now();
        let front = Front::new(4, t0);
        let key = key_until(t0 + Duration::from_secs(10));
        front.insert("a", Arc::clone(&key), t0);
        let Some(found) = front.get(&"a", t0 + Duration::from_secs(9)) else {
            panic!("a live entry is served")
        };
        assert!(Arc::ptr_eq(&found, &key));
        assert!(front.get(&"a", t0 + Duration::from_secs(10)).is_none());
        assert!(front.get(&"b", t0).is_none());
    }

    #[test]
    fn a_dead_entry_is_not_remembered_and_is_removed() {
        let t0 = Instant::now();
        let front = Front::new(4, t0);
        front.insert("dead", key_until(t0), t0);
        assert_eq!(front.len(), 0);
        front.insert("a", key_until(t0 + Duration::from_secs(1)), t0);
        front.remove_dead(&"a", t0);
        assert_eq!(front.len(), 1, "alive: kept");
        front.remove_dead(&"a", t0 + Duration::from_secs(1));
        assert_eq!(front.len(), 0);
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let t0 = Instant::now();
        let front = Front::new(2, t0);
        front.insert(1, key_until(t0 + Duration::from_secs(5)), t0);
        front.insert(2, key_until(t0 + Duration::from_secs(50)), t0);
        // Full: the dead entry makes room and the live one stays.
        let t1 = t0 + Duration::from_secs(6);
        front.insert(3, key_until(t1 + Duration::from_secs(50)), t1);
        assert_eq!(front.len(), 2);
        assert!(front.get(&2, t1).is_some());
        // Full of live entries: everything goes, then the new one is in.
        front.insert(4, key_until(t1 + Duration::from_secs(50)), t1);
        assert_eq!(front.len(), 1);
        assert!(front.get(&4, t1).is_some());
        // Replacing an entry of a full front keeps the others.
        front.insert(5, key_until(t1 + Duration::from_secs(50)), t1);
        front.insert(5, key_until(t1 + Duration::from_secs(60)), t1);
        assert_eq!(front.len(), 2);
    }

    #[test]
    fn capacity_zero_is_off() {
        let t0 = Instant::now();
        let front = Front::new(0, t0);
        front.insert("a", key_until(t0 + Duration::from_secs(5)), t0);
        assert!(front.get(&"a", t0).is_none());
    }

    #[test]
    fn sweeps_dead_entries_once_a_second() {
        let t0 = Instant::now();
        let front = Front::new(8, t0);
        front.insert("short", key_until(t0 + Duration::from_millis(500)), t0);
        front.insert("long", key_until(t0 + Duration::from_secs(60)), t0);
        assert!(!front.sweep_if_due(t0 + Duration::from_millis(900)));
        assert_eq!(front.len(), 2);
        assert!(front.sweep_if_due(t0 + Duration::from_millis(1000)));
        assert_eq!(front.len(), 1, "the dead entry is gone, the live one stays");
        assert!(
            !front.sweep_if_due(t0 + Duration::from_millis(1500)),
            "not again before a second"
        );
        assert!(front.sweep_if_due(t0 + Duration::from_millis(2000)));
    }
}
