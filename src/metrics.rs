//! Every request-level metric, registered once into a [`prometheus::Registry`] that is
//! passed around, never global. Key-cache and KMS metrics live with the cache and are
//! registered into the same registry.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Request, byte, auth and upstream metrics.
pub struct Metrics {
    pub registry: Registry,
    /// `sealgate_requests_total{op,status}`
    pub requests: IntCounterVec,
    /// `sealgate_request_duration_seconds{op}` (time to response head)
    pub request_duration: HistogramVec,
    /// `sealgate_bytes_received_total`: request body bytes from clients (decoded).
    pub bytes_in: IntCounter,
    /// `sealgate_bytes_sent_total`: response body bytes to clients.
    pub bytes_out: IntCounter,
    /// `sealgate_auth_failures_total{reason}`
    pub auth_failures: IntCounterVec,
    /// `sealgate_upstream_errors_total{kind}`: connect/timeout/reset towards the backend.
    pub upstream_errors: IntCounterVec,
    /// `sealgate_errors_total{code,origin}`: S3 errors answered by the proxy itself.
    pub errors: IntCounterVec,
    /// `sealgate_connections_open`
    pub connections_open: IntGauge,
    /// `sealgate_requests_in_flight`
    pub in_flight: IntGauge,
    /// `sealgate_copy_bytes_total{direction}`: object bytes copies moved through the
    /// proxy (`read` from the source, `written` to the destination); a server-side
    /// re-key moves none.
    pub copy_bytes: IntCounterVec,
    /// `sealgate_copies_total{kind}`: finished copies by how they ran.
    pub copies: IntCounterVec,
    /// `sealgate_metadata_cache_entries{cache}`: entries in the object-facts caches
    /// (`sizes`, `layouts`), read when `/metrics` is scraped.
    pub metadata_cache_entries: IntGaugeVec,
    /// `sealgate_metadata_cache_bytes{cache}`: bytes those entries are charged.
    pub metadata_cache_bytes: IntGaugeVec,
    /// `sealgate_log_lines_dropped_total`: brought up to [`crate::logging::dropped_lines`]
    /// at every scrape.
    log_lines_dropped: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "sealgate_requests_total",
                "S3 requests answered, by operation and HTTP status",
            ),
            &["op", "status"],
        )
        .expect("static metric definition");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sealgate_request_duration_seconds",
                "Time from request head to response head, by operation",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["op"],
        )
        .expect("static metric definition");
        let bytes_in = IntCounter::new(
            "sealgate_bytes_received_total",
            "Request body bytes received from clients (after aws-chunked decoding)",
        )
        .expect("static metric definition");
        let bytes_out = IntCounter::new(
            "sealgate_bytes_sent_total",
            "Response body bytes sent to clients",
        )
        .expect("static metric definition");
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "sealgate_auth_failures_total",
                "Requests refused by signature verification, by reason",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "sealgate_upstream_errors_total",
                "Backend requests that failed without an HTTP answer, by kind",
            ),
            &["kind"],
        )
        .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "sealgate_errors_total",
                "S3 errors answered by the proxy itself, by code and origin",
            ),
            &["code", "origin"],
        )
        .expect("static metric definition");
        let connections_open =
            IntGauge::new("sealgate_connections_open", "Open client connections")
                .expect("static metric definition");
        let in_flight = IntGauge::new("sealgate_requests_in_flight", "Requests being served")
            .expect("static metric definition");
        let copy_bytes = IntCounterVec::new(
            Opts::new(
                "sealgate_copy_bytes_total",
                "Object bytes copies moved through the proxy, by direction (read, written)",
            ),
            &["direction"],
        )
        .expect("static metric definition");
        let copies = IntCounterVec::new(
            Opts::new(
                "sealgate_copies_total",
                "Finished copies, by kind (server_side, encrypt, decrypt, part)",
            ),
            &["kind"],
        )
        .expect("static metric definition");
        let metadata_cache_entries = IntGaugeVec::new(
            Opts::new(
                "sealgate_metadata_cache_entries",
                "Entries in the object-facts caches (sizes, layouts)",
            ),
            &["cache"],
        )
        .expect("static metric definition");
        let metadata_cache_bytes = IntGaugeVec::new(
            Opts::new(
                "sealgate_metadata_cache_bytes",
                "Bytes charged to the object-facts caches (sizes, layouts)",
            ),
            &["cache"],
        )
        .expect("static metric definition");
        let log_lines_dropped = IntCounter::new(
            "sealgate_log_lines_dropped_total",
            "Log lines dropped because stderr's reader fell 16,384 lines behind",
        )
        .expect("static metric definition");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
            Box::new(auth_failures.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(errors.clone()),
            Box::new(connections_open.clone()),
            Box::new(in_flight.clone()),
            Box::new(copy_bytes.clone()),
            Box::new(copies.clone()),
            Box::new(metadata_cache_entries.clone()),
            Box::new(metadata_cache_bytes.clone()),
            Box::new(log_lines_dropped.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        // Zero series for the known kinds, so dashboards show 0 rather than no data.
        for kind in ["timeout", "connect", "send", "build"] {
            upstream_errors.with_label_values(&[kind]);
        }
        for direction in ["read", "written"] {
            copy_bytes.with_label_values(&[direction]);
        }
        for kind in ["server_side", "encrypt", "decrypt", "part"] {
            copies.with_label_values(&[kind]);
        }
        Metrics {
            registry,
            requests,
            request_duration,
            bytes_in,
            bytes_out,
            auth_failures,
            upstream_errors,
            errors,
            connections_open,
            in_flight,
            copy_bytes,
            copies,
            metadata_cache_entries,
            metadata_cache_bytes,
            log_lines_dropped,
        }
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        catch_up(&self.log_lines_dropped, crate::logging::dropped_lines());
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Raises `counter` to `total`, a count kept outside the registry (it never falls).
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_drops_are_exposed_and_follow_the_writer_count() {
        let m = Metrics::new();
        assert!(m.render().contains("sealgate_log_lines_dropped_total 0"));
        catch_up(&m.log_lines_dropped, 7);
        catch_up(&m.log_lines_dropped, 7);
        assert_eq!(m.log_lines_dropped.get(), 7);
        catch_up(&m.log_lines_dropped, 3);
        assert_eq!(m.log_lines_dropped.get(), 7, "a counter never goes down");
        catch_up(&m.log_lines_dropped, 12);
        assert!(m.render().contains("sealgate_log_lines_dropped_total 12"));
    }
}
