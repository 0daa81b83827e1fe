//! The KMS and bucket-key cache metrics, registered on the registry the caller passes
//! (never a global one) and updated only by [`super::BucketKeyCache`].

use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::kms::KmsError;

/// Which KMS operation a metric is about (`op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOp {
    GenerateDataKey,
    Decrypt,
    DescribeKey,
}

impl KmsOp {
    pub fn as_str(self) -> &'static str {
        match self {
            KmsOp::GenerateDataKey => "generate_data_key",
            KmsOp::Decrypt => "decrypt",
            KmsOp::DescribeKey => "describe_key",
        }
    }
}

/// Which half of the cache (`side` label): bucket keys made for writes, or blobs
/// unwrapped for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Write,
    Read,
}

impl Side {
    const ALL: [Side; 2] = [Side::Write, Side::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Write => "write",
            Side::Read => "read",
        }
    }
}

/// How an object's data key is protected (`path` label, and the audit log's `key_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPath {
    /// From a cached bucket key (the S3 Bucket Key model).
    BucketKey,
    /// Its own KMS data key under the object's context (`bucket-key-enabled: false`).
    PerObject,
}

impl KeyPath {
    const ALL: [KeyPath; 2] = [KeyPath::BucketKey, KeyPath::PerObject];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyPath::BucketKey => "bucket_key",
            KeyPath::PerObject => "per_object",
        }
    }
}

/// Direction of an object key operation (`op` label of object key operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    Encrypt,
    Decrypt,
}

impl KeyOp {
    const ALL: [KeyOp; 2] = [KeyOp::Encrypt, KeyOp::Decrypt];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyOp::Encrypt => "encrypt",
            KeyOp::Decrypt => "decrypt",
        }
    }
}

/// The metrics. Cloning shares the underlying counters.
///
/// `sealgate_kms_calls_saved_total` is defined as: the number of successful
/// bucket-key object key operations (each would have cost one KMS call without bucket
/// keys, as the per-object path does) minus the KMS calls made for them. Each
/// bucket-key operation makes at most one KMS call (its own cache miss), so the
/// counter grows by one exactly for each bucket-key operation that made none: served
/// from the cache, or by waiting on a concurrent caller's call. Per-object operations
/// never add to it; failed operations count nowhere but in
/// `sealgate_kms_requests_total`. So, over any interval,
/// `saved = object_key_operations{path="bucket_key"} - misses{side=~"write|read"}`
/// counting only misses whose KMS call succeeded.
#[derive(Clone, Debug)]
pub struct CacheMetrics {
    kms_requests: IntCounterVec,
    kms_duration: HistogramVec,
    hits: IntCounterVec,
    misses: IntCounterVec,
    evictions: IntCounter,
    entries: IntGaugeVec,
    object_key_operations: IntCounterVec,
    calls_saved: IntCounter,
    kms_retries: IntCounterVec,
    /// The series every encrypted request updates, resolved once: a label lookup
    /// hashes the values and takes the vector's lock each time.
    hits_by_side: [IntCounter; 2],
    misses_by_side: [IntCounter; 2],
    /// Indexed `[path][op]`.
    object_key_ops: [[IntCounter; 2]; 2],
}

impl CacheMetrics {
    /// Creates the metrics and registers them on `registry`:
    /// - `sealgate_kms_requests_total{op,result}`: KMS calls as the cache saw them
    ///   (a backend's internal retries are one call); `result` is `ok` or
    ///   [`KmsError::metric_result`];
    /// - `sealgate_kms_request_duration_seconds{op}`;
    /// - `sealgate_bucket_key_cache_hits_total{side}` / `..._misses_total{side}`: a miss
    ///   is a lookup that called KMS itself (whether KMS answered or not); callers
    ///   served by another caller's successful call count as hits, callers that shared
    ///   another caller's failure count as neither;
    /// - `sealgate_bucket_key_cache_evictions_total`: entries dropped for age (TTL) or
    ///   capacity;
    /// - `sealgate_bucket_key_cache_entries{side}`;
    /// - `sealgate_object_key_operations_total{path,op}`: successful object key
    ///   operations, `path` = `bucket_key`|`per_object`, `op` = `encrypt`|`decrypt`;
    /// - `sealgate_kms_calls_saved_total`: see [`CacheMetrics`];
    /// - `sealgate_kms_retries_total{op,reason}`: extra attempts a KMS backend made
    ///   inside one call (throttling, 5xx, timeouts), `reason` as the `result` label.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let hits = IntCounterVec::new(
            Opts::new(
                "sealgate_bucket_key_cache_hits_total",
                "Bucket-key lookups served without a KMS call",
            ),
            &["side"],
        )?;
        let misses = IntCounterVec::new(
            Opts::new(
                "sealgate_bucket_key_cache_misses_total",
                "Bucket-key lookups that called KMS",
            ),
            &["side"],
        )?;
        let object_key_operations = IntCounterVec::new(
            Opts::new(
                "sealgate_object_key_operations_total",
                "Object data keys made or recovered, by key path",
            ),
            &["path", "op"],
        )?;
        // Zero series exist from the start, so dashboards show 0 instead of "no data".
        let by_side = |vec: &IntCounterVec| Side::ALL.map(|s| vec.with_label_values(&[s.as_str()]));
        let hits_by_side = by_side(&hits);
        let misses_by_side = by_side(&misses);
        let object_key_ops = KeyPath::ALL.map(|path| {
            KeyOp::ALL
                .map(|op| object_key_operations.with_label_values(&[path.as_str(), op.as_str()]))
        });
        let m = CacheMetrics {
            hits_by_side,
            misses_by_side,
            object_key_ops,
            kms_requests: IntCounterVec::new(
                Opts::new(
                    "sealgate_kms_requests_total",
                    "KMS calls by operation and result",
                ),
                &["op", "result"],
            )?,
            kms_duration: HistogramVec::new(
                HistogramOpts::new(
                    "sealgate_kms_request_duration_seconds",
                    "KMS call latency, retries included",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ]),
                &["op"],
            )?,
            hits,
            misses,
            evictions: IntCounter::new(
                "sealgate_bucket_key_cache_evictions_total",
                "Bucket keys dropped from the cache for age or capacity",
            )?,
            entries: IntGaugeVec::new(
                Opts::new(
                    "sealgate_bucket_key_cache_entries",
                    "Bucket keys held in memory",
                ),
                &["side"],
            )?,
            object_key_operations,
            calls_saved: IntCounter::new(
                "sealgate_kms_calls_saved_total",
                "Object key operations served from a cached bucket key without a KMS call",
            )?,
            kms_retries: IntCounterVec::new(
                Opts::new(
                    "sealgate_kms_retries_total",
                    "KMS attempts retried inside one call, by operation and reason",
                ),
                &["op", "reason"],
            )?,
        };
        registry.register(Box::new(m.kms_requests.clone()))?;
        registry.register(Box::new(m.kms_duration.clone()))?;
        registry.register(Box::new(m.hits.clone()))?;
        registry.register(Box::new(m.misses.clone()))?;
        registry.register(Box::new(m.evictions.clone()))?;
        registry.register(Box::new(m.entries.clone()))?;
        registry.register(Box::new(m.object_key_operations.clone()))?;
        registry.register(Box::new(m.calls_saved.clone()))?;
        registry.register(Box::new(m.kms_retries.clone()))?;
        for side in Side::ALL {
            m.entries.with_label_values(&[side.as_str()]);
        }
        for op in [KmsOp::GenerateDataKey, KmsOp::Decrypt, KmsOp::DescribeKey] {
            for reason in ["throttled", "unavailable", "timeout", "internal"] {
                m.kms_retries.with_label_values(&[op.as_str(), reason]);
            }
        }
        Ok(m)
    }

    pub(super) fn record_kms_call<T>(
        &self,
        op: KmsOp,
        elapsed: Duration,
        result: &Result<T, KmsError>,
    ) {
        let label = match result {
            Ok(_) => "ok",
            Err(e) => e.metric_result(),
        };
        self.kms_requests
            .with_label_values(&[op.as_str(), label])
            .inc();
        self.kms_duration
            .with_label_values(&[op.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    pub(super) fn record_lookup(&self, side: Side, called_kms: bool) {
        let by_side = if called_kms {
            &self.misses_by_side
        } else {
            &self.hits_by_side
        };
        by_side[side as usize].inc();
    }

    /// Counts one successful object key operation, and a saved KMS call when it was a
    /// bucket-key operation that made no KMS call (definition on [`CacheMetrics`]).
    pub(super) fn record_object_key_op(&self, path: KeyPath, op: KeyOp, called_kms: bool) {
        self.object_key_ops[path as usize][op as usize].inc();
        if path == KeyPath::BucketKey && !called_kms {
            self.calls_saved.inc();
        }
    }

    pub(super) fn record_eviction(&self) {
        self.evictions.inc();
    }

    pub(super) fn set_entries(&self, side: Side, n: u64) {
        self.entries
            .with_label_values(&[side.as_str()])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The counter KMS backends add their internal retries to.
    pub fn kms_retries(&self) -> &IntCounterVec {
        &self.kms_retries
    }

    /// Current `sealgate_kms_retries_total{op,reason}`.
    pub fn kms_retry_count(&self, op: &str, reason: &str) -> u64 {
        self.kms_retries.with_label_values(&[op, reason]).get()
    }

    /// Current `sealgate_kms_requests_total{op,result}`.
    pub fn kms_requests(&self, op: KmsOp, result: &str) -> u64 {
        self.kms_requests
            .with_label_values(&[op.as_str(), result])
            .get()
    }

    pub fn hits(&self, side: Side) -> u64 {
        self.hits.with_label_values(&[side.as_str()]).get()
    }

    pub fn misses(&self, side: Side) -> u64 {
        self.misses.with_label_values(&[side.as_str()]).get()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.get()
    }

    pub fn entries(&self, side: Side) -> i64 {
        self.entries.with_label_values(&[side.as_str()]).get()
    }

    pub fn object_key_operations(&self, path: KeyPath, op: KeyOp) -> u64 {
        self.object_key_operations
            .with_label_values(&[path.as_str(), op.as_str()])
            .get()
    }

    pub fn calls_saved(&self) -> u64 {
        self.calls_saved.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pre-resolved series must be the ones the labels name.
    #[test]
    fn each_record_lands_in_the_series_its_labels_name() {
        let Ok(m) = CacheMetrics::register(&Registry::new()) else {
            panic!("register")
        };
        m.record_lookup(Side::Read, false);
        m.record_lookup(Side::Read, true);
        m.record_lookup(Side::Read, true);
        m.record_lookup(Side::Write, false);
        assert_eq!((m.hits(Side::Read), m.misses(Side::Read)), (1, 2));
        assert_eq!((m.hits(Side::Write), m.misses(Side::Write)), (1, 0));
        let mut n = 0;
        for path in KeyPath::ALL {
            for op in KeyOp::ALL {
                n += 1;
                for _ in 0..n {
                    m.record_object_key_op(path, op, true);
                }
            }
        }
        assert_eq!(
            m.object_key_operations(KeyPath::BucketKey, KeyOp::Encrypt),
            1
        );
        assert_eq!(
            m.object_key_operations(KeyPath::BucketKey, KeyOp::Decrypt),
            2
        );
        assert_eq!(
            m.object_key_operations(KeyPath::PerObject, KeyOp::Encrypt),
            3
        );
        assert_eq!(
            m.object_key_operations(KeyPath::PerObject, KeyOp::Decrypt),
            4
        );
    }
}
