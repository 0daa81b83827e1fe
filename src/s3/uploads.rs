//! The upload registry: where the proxy records the envelope of each multipart upload
//! it starts, when `[uploads] registry_bucket` is set.
//!
//! UploadPart needs the upload's data key, and S3 offers no way to read a pending
//! upload's metadata. Without a registry the client's upload id carries the envelope
//! (`sg1.…`, see `handlers::multipart`), so ListMultipartUploads, which shows the
//! backend's ids, names uploads by ids the client never received. With a registry the
//! client gets the backend's own upload id and the proxy finds the envelope in one small
//! object per pending upload, `<prefix><hex SHA-256 of bucket, key and upload id>`,
//! written before the id is returned and deleted when the upload completes or is
//! aborted. Records are written and read as `[backend]`'s identity and cached. An
//! envelope is authenticated and bound to its bucket and key, so a record altered or
//! moved inside the registry fails to open instead of decrypting anything.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use super::error::S3Error;
use super::handlers::passthrough::{internal, upstream_failure};
use crate::body;
use crate::config::UploadsConfig;
use crate::crypto::Envelope;
use crate::crypto::envelope::MAX_ENCODED_LEN;
use crate::service::AppState;

/// Records remembered by one proxy; an envelope never changes for its upload, so a
/// remembered one is right for as long as the upload exists.
const KNOWN_CAPACITY: u64 = 100_000;
const KNOWN_IDLE: Duration = Duration::from_secs(24 * 3600);
/// An id with no record is remembered briefly: a record is written before its id is
/// handed out, so "no record" only changes if an operator restores one.
const UNKNOWN_CAPACITY: u64 = 10_000;
const UNKNOWN_TTL: Duration = Duration::from_secs(60);

/// The pending uploads' envelopes, in a backend bucket of their own.
pub struct UploadRegistry {
    bucket: String,
    prefix: String,
    known: Cache<String, Arc<Envelope>>,
    unknown: Cache<String, ()>,
}

impl UploadRegistry {
    /// The registry `cfg` names, if any.
    pub fn from_config(cfg: &UploadsConfig) -> Option<UploadRegistry> {
        let bucket = cfg.registry_bucket.clone()?;
        Some(UploadRegistry {
            bucket,
            prefix: cfg.registry_prefix.clone(),
            known: Cache::builder()
                .max_capacity(KNOWN_CAPACITY)
                .time_to_idle(KNOWN_IDLE)
                .build(),
            unknown: Cache::builder()
                .max_capacity(UNKNOWN_CAPACITY)
                .time_to_live(UNKNOWN_TTL)
                .build(),
        })
    }

    /// The bucket holding the records: the proxy's own, not served to clients.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The record's key for an upload. Hashed: bucket, key and id together may be longer
    /// than an object key may be, and records need no listing order.
    pub fn record_key(&self, bucket: &str, key: &str, upload_id: &str) -> String {
        let mut h = Sha256::new();
        for part in [bucket, key, upload_id] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        format!("{}{}", self.prefix, hex::encode(h.finalize()))
    }

    /// Writes the record of a new upload; the upload id goes to the client only after.
    pub async fn record(
        &self,
        state: &AppState,
        bucket: &str,
        key: &str,
        upload_id: &str,
        envelope: &Envelope,
    ) -> Result<(), S3Error> {
        let record = self.record_key(bucket, key, upload_id);
        let body = Bytes::from(envelope.encode());
        let mut resp = self
            .call(state, Method::PUT, Some(&record), Some(body.clone()))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            // The first record made: the bucket is created on demand.
            self.create_bucket(state).await?;
            resp = self
                .call(state, Method::PUT, Some(&record), Some(body))
                .await?;
        }
        if !resp.status().is_success() {
            return Err(registry_refused(
                "write its record of this upload",
                resp.status(),
            ));
        }
        self.known.insert(record, Arc::new(envelope.clone())).await;
        Ok(())
    }

    /// The envelope recorded for an upload; `None` when the proxy did not start it.
    pub async fn lookup(
        &self,
        state: &AppState,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Envelope>, S3Error> {
        let record = self.record_key(bucket, key, upload_id);
        if let Some(env) = self.known.get(&record).await {
            return Ok(Some(env.as_ref().clone()));
        }
        if self.unknown.contains_key(&record) {
            return Ok(None);
        }
        let resp = self.call(state, Method::GET, Some(&record), None).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                self.unknown.insert(record, ()).await;
                return Ok(None);
            }
            s => return Err(registry_refused("read its record of this upload", s)),
        }
        // A record is one encoded envelope; anything longer is not one.
        let limit = MAX_ENCODED_LEN + 64;
        let bytes = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                S3Error::service_unavailable(
                    "The record of this upload could not be read; please retry.",
                )
                .with_origin(super::error::ErrorOrigin::Backend)
                .with_source(e)
            })?
            .to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        let envelope = Envelope::decode(text.trim()).map_err(|e| {
            super::encryption::tampered(format!("upload record {record} is not an envelope: {e}"))
        })?;
        self.known.insert(record, Arc::new(envelope.clone())).await;
        Ok(Some(envelope))
    }

    /// Deletes the record of an upload that completed or was aborted. A record left
    /// behind (the delete failed) harms nothing: its upload is gone from the backend.
    pub async fn forget(&self, state: &AppState, bucket: &str, key: &str, upload_id: &str) {
        let record = self.record_key(bucket, key, upload_id);
        self.known.invalidate(&record).await;
        match self.call(state, Method::DELETE, Some(&record), None).await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::warn!(
                record = %record,
                status = resp.status().as_u16(),
                "upload registry: record of a finished upload not deleted"
            ),
            Err(e) => tracing::warn!(
                record = %record,
                error = %e.message,
                "upload registry: record of a finished upload not deleted"
            ),
        }
    }

    /// Creates the registry bucket; one that exists already (another proxy made it
    /// first) is fine.
    async fn create_bucket(&self, state: &AppState) -> Result<(), S3Error> {
        let resp = self.call(state, Method::PUT, None, None).await?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::CONFLICT {
            tracing::info!(bucket = %self.bucket, "upload registry: bucket created");
            return Ok(());
        }
        Err(registry_refused(
            "create its upload registry bucket",
            status,
        ))
    }

    /// One request on a record (or on the bucket), as `[backend]`'s identity.
    async fn call(
        &self,
        state: &AppState,
        method: Method,
        record: Option<&str>,
        payload: Option<Bytes>,
    ) -> Result<http::Response<hyper::body::Incoming>, S3Error> {
        let backend = &state.backend;
        let (uri, host) = backend
            .target(Some(&self.bucket), record, "")
            .map_err(internal)?;
        let len = payload.as_ref().map(Bytes::len);
        let mut req = Request::new(match payload {
            Some(b) => body::full(b),
            None => body::empty(),
        });
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        req.headers_mut().insert(header::HOST, host);
        if let Some(len) = len {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            req.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        backend
            .send(&backend.own_identity(), req)
            .await
            .map_err(|e| upstream_failure(state, e))
    }
}

/// The backend refused a registry request: the operator must fix the registry bucket
/// (missing, or `[backend]`'s user may not write it), so the client is told to retry.
fn registry_refused(what: &str, status: StatusCode) -> S3Error {
    tracing::error!(
        status = status.as_u16(),
        "upload registry: the backend refused to {what} (may [backend]'s user write uploads.registry_bucket?)"
    );
    S3Error::service_unavailable(format!(
        "The encryption proxy could not {what}; please retry."
    ))
    .with_origin(super::error::ErrorOrigin::Backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(prefix: &str) -> UploadRegistry {
        UploadRegistry::from_config(&UploadsConfig {
            registry_bucket: Some("reg".into()),
            registry_prefix: prefix.into(),
        })
        .unwrap()
    }

    #[test]
    fn no_bucket_no_registry() {
        assert!(UploadRegistry::from_config(&UploadsConfig::default()).is_none());
    }

    #[test]
    fn record_keys_are_prefixed_hashes_that_keep_fields_apart() {
        let r = registry("p/");
        let k = r.record_key("b", "k", "id");
        assert!(k.starts_with("p/"));
        assert_eq!(k.len(), 2 + 64);
        assert_eq!(k, r.record_key("b", "k", "id"));
        // Moving a byte from one field to the next names another record.
        assert_ne!(r.record_key("b", "kid", ""), r.record_key("b", "k", "id"));
        assert_ne!(r.record_key("bk", "", "id"), r.record_key("b", "k", "id"));
        assert_ne!(r.record_key("b", "k", "id2"), k);
    }
}
