//! Audit log sink: file mode, append across reopen, whole lines under concurrency,
//! and the cost of one record (printed; run with `--nocapture` to see it).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Instant;

use sealgate::audit::{AuditLog, AuditRecord, AuditResult, KeyPath};
use sealgate::config::AuditConfig;

fn record<'a>(request_id: &'a str, key: &'a str) -> AuditRecord<'a> {
    AuditRecord {
        request_id,
        identity: "AKIDEXAMPLE",
        bucket: "bucket",
        key,
        operation: "PutObject",
        kms_key_id: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        bucket_key_id: Some("0123456789abcdef"),
        key_path: KeyPath::BucketKey,
        result: AuditResult::Ok,
    }
}

#[test]
fn file_is_0600_and_appended_across_reopen() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = dir.path().join("audit.jsonl");
    let config = AuditConfig {
        enabled: true,
        path: Some(path.clone()),
    };
    for i in 0..2 {
        let Ok(Some(log)) = AuditLog::from_config(&config) else {
            panic!("open")
        };
        assert!(log.record(&record(&format!("r{i}"), "k")).is_ok());
    }
    let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("\"request_id\":\"r0\"") && text.contains("\"request_id\":\"r1\""));

    let off = AuditConfig {
        enabled: false,
        path: Some(path),
    };
    assert!(matches!(AuditLog::from_config(&off), Ok(None)));
}

#[test]
fn concurrent_writers_produce_whole_lines_and_cost_microseconds() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = dir.path().join("audit.jsonl");
    for threads in [1, 4] {
        write_concurrently(&path.with_extension(format!("{threads}")), threads);
    }
    // The part done under the lock: one append write of a ready line.
    let line = [b'x'; 323];
    let Ok(mut raw) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path.with_extension("raw"))
    else {
        panic!("open raw")
    };
    let started = Instant::now();
    for _ in 0..5_000 {
        assert!(std::io::Write::write_all(&mut raw, &line).is_ok());
    }
    eprintln!(
        "audit: one 323-byte append write (time under the lock): {:.2} µs",
        started.elapsed().as_secs_f64() * 1e6 / 5_000.0
    );
}

fn write_concurrently(path: &std::path::Path, threads: usize) {
    let Ok(log) = AuditLog::to_file(path) else {
        panic!("open")
    };
    let log = Arc::new(log);
    const PER_THREAD: usize = 5_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let id = format!("t{t}-{i}");
                    if log.record(&record(&id, "some/object/key.bin")).is_err() {
                        return false;
                    }
                }
                true
            })
        })
        .collect();
    for h in handles {
        assert!(matches!(h.join(), Ok(true)));
    }
    let elapsed = started.elapsed();
    let total = threads * PER_THREAD;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut count = 0;
    for line in text.lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        assert!(parsed.is_ok(), "torn line: {line}");
        count += 1;
    }
    assert_eq!(count, total);
    eprintln!(
        "audit: {total} records from {threads} threads in {elapsed:?}: {:.2} µs/record wall, {} bytes/line",
        elapsed.as_secs_f64() * 1e6 / total as f64,
        text.len() / total
    );
}
