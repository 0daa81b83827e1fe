//! Object keys at the S3 edge: which KMS key and key path a write uses (bucket policy
//! plus the client's SSE request headers), making and opening envelopes through the
//! bucket-key cache, the SSE response headers, and what of all this is hidden from
//! clients and from the backend.

use http::{HeaderMap, HeaderValue};

use crate::audit::{AuditRecord, AuditResult, KeyPath};
use crate::crypto::{DataKey, Envelope, WrappingKey};
use crate::kms::KmsError;
use crate::s3::error::{ErrorOrigin, S3Error};
use crate::s3::handlers::RequestContext;
use crate::s3::headers::{
    RESERVED_META_PREFIX, X_AMZ_META_ENVELOPE, X_AMZ_SSE, X_AMZ_SSE_BUCKET_KEY_ENABLED,
    X_AMZ_SSE_C_ALGORITHM, X_AMZ_SSE_KMS_KEY_ID, is_sse_header,
};

/// The keys of an object being written.
pub struct WriteKeys {
    pub envelope: Envelope,
    pub data_key: DataKey,
}

/// How the client asked for the object to be protected, within the bucket policy.
struct WriteChoice {
    kms_key_id: String,
    bucket_key: bool,
    segment_size: u32,
}

fn write_choice(
    rc: &RequestContext,
    bucket: &str,
    headers: &HeaderMap,
) -> Result<WriteChoice, S3Error> {
    let config = &rc.state.config;
    let policy = config.policy(bucket);
    if let Some(v) = headers.get(X_AMZ_SSE) {
        match v.as_bytes() {
            b"aws:kms" | b"AES256" | b"aws:kms:dsse" => {}
            _ => {
                return Err(S3Error::invalid_argument(
                    "The encryption method specified is not supported",
                ));
            }
        }
    }
    let kms_key_id = match headers.get(X_AMZ_SSE_KMS_KEY_ID) {
        Some(v) => v
            .to_str()
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                S3Error::invalid_argument("Invalid x-amz-server-side-encryption-aws-kms-key-id")
            })?
            .to_string(),
        None => policy
            .kms_key_id
            .clone()
            .unwrap_or_else(|| config.kms.key_id.clone()),
    };
    let bucket_key = match headers.get(X_AMZ_SSE_BUCKET_KEY_ENABLED) {
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"true") => true,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"false") => false,
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "x-amz-server-side-encryption-bucket-key-enabled must be true or false",
            ));
        }
        None => policy.bucket_key,
    };
    Ok(WriteChoice {
        kms_key_id,
        bucket_key,
        segment_size: policy.segment_size,
    })
}

/// A fresh envelope and data key for `bucket`/`key`: from the cached bucket key, or
/// from a KMS data key of its own when the client turned bucket keys off.
pub async fn new_object_keys(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> Result<WriteKeys, S3Error> {
    let choice = write_choice(rc, bucket, headers)?;
    let result = make_object_keys(rc, bucket, key, &choice).await;
    let envelope = result.as_ref().ok().map(|k| &k.envelope);
    audit(
        rc,
        bucket,
        key,
        &choice.kms_key_id,
        choice.bucket_key,
        envelope,
        result.as_ref().err(),
    );
    result
}

async fn make_object_keys(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    choice: &WriteChoice,
) -> Result<WriteKeys, S3Error> {
    let (w, blob, reported_id) = wrapping_key_for_write(rc, bucket, key, choice).await?;
    let (envelope, data_key) = Envelope::seal_new(
        &w,
        &reported_id,
        &blob,
        choice.bucket_key,
        choice.segment_size,
        bucket,
        key,
    )
    .map_err(crypto_internal)?;
    Ok(WriteKeys { envelope, data_key })
}

/// The wrapping key of a new envelope, its KMS blob and the key id KMS reported.
async fn wrapping_key_for_write(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    choice: &WriteChoice,
) -> Result<(WrappingKey, Vec<u8>, String), S3Error> {
    let keys = &rc.state.keys;
    if choice.bucket_key {
        let bk = keys
            .key_for_write(bucket, &choice.kms_key_id)
            .await
            .map_err(kms_error)?;
        Ok((
            WrappingKey::from_bytes(*bk.plaintext),
            bk.ciphertext_blob.clone(),
            bk.kms_key_id.clone(),
        ))
    } else {
        let gk = keys
            .per_object_key(bucket, key, &choice.kms_key_id)
            .await
            .map_err(kms_error)?;
        Ok((
            WrappingKey::from_bytes(*gk.plaintext),
            gk.ciphertext_blob.clone(),
            gk.key_id.clone(),
        ))
    }
}

/// The data key of a stored object, after the envelope's commitment and MAC checked out
/// for this bucket and key.
pub async fn open_object_key(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<DataKey, S3Error> {
    let result = unwrap_object_key(rc, bucket, key, envelope).await;
    let (kms_key_id, bucket_key) = (envelope.kms_key_id(), envelope.bucket_key());
    audit(
        rc,
        bucket,
        key,
        kms_key_id,
        bucket_key,
        Some(envelope),
        result.as_ref().err(),
    );
    result
}

async fn unwrap_object_key(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<DataKey, S3Error> {
    let keys = &rc.state.keys;
    let w = if envelope.bucket_key() {
        let bk = keys
            .key_for_read(bucket, envelope.kms_key_id(), envelope.kms_blob())
            .await
            .map_err(kms_error)?;
        WrappingKey::from_bytes(*bk.plaintext)
    } else {
        let pk = keys
            .per_object_decrypt(bucket, key, envelope.kms_key_id(), envelope.kms_blob())
            .await
            .map_err(kms_error)?;
        WrappingKey::from_bytes(*pk)
    };
    envelope.open(&w, bucket, key).map_err(tampered)
}

/// The envelope of a backend answer, if the object has one.
pub fn envelope_of(headers: &HeaderMap) -> Result<Option<Envelope>, S3Error> {
    match headers.get(X_AMZ_META_ENVELOPE) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(tampered)?;
            Envelope::decode(s).map(Some).map_err(tampered)
        }
    }
}

/// One audit record per object key operation: the per-object trail that bucket keys
/// remove from KMS logs.
fn audit(
    rc: &RequestContext,
    bucket: &str,
    key: &str,
    kms_key_id: &str,
    bucket_key: bool,
    envelope: Option<&Envelope>,
    error: Option<&S3Error>,
) {
    let Some(log) = &rc.state.audit else { return };
    let bucket_key_id = envelope
        .filter(|e| e.bucket_key())
        .map(|e| e.bucket_key_id());
    let record = AuditRecord {
        request_id: &rc.request_id,
        identity: &rc.identity,
        bucket,
        key,
        operation: rc.operation.as_str(),
        kms_key_id: envelope.map(|e| e.kms_key_id()).unwrap_or(kms_key_id),
        bucket_key_id: bucket_key_id.as_deref(),
        key_path: if bucket_key {
            KeyPath::BucketKey
        } else {
            KeyPath::PerObject
        },
        result: match error {
            None => AuditResult::Ok,
            Some(e) => AuditResult::Error(&e.code),
        },
    };
    if let Err(e) = log.record(&record) {
        tracing::error!(error = %e, "audit record could not be written");
    }
}

/// Refuses client attempts to set metadata reserved for the proxy.
pub fn refuse_reserved_metadata(headers: &HeaderMap) -> Result<(), S3Error> {
    if headers
        .keys()
        .any(|k| k.as_str().starts_with(RESERVED_META_PREFIX))
    {
        return Err(S3Error::invalid_argument(format!(
            "Metadata names starting with {RESERVED_META_PREFIX} are reserved by the encryption proxy."
        )));
    }
    Ok(())
}

/// SSE-C is refused unless the bucket policy enables its emulation, with the answer S3
/// gives on buckets where SSE-C is disabled.
pub fn refuse_sse_c(rc: &RequestContext, bucket: &str, headers: &HeaderMap) -> Result<(), S3Error> {
    let customer_key_headers = headers.keys().any(|k| {
        k.as_str()
            .starts_with("x-amz-server-side-encryption-customer-")
    });
    if customer_key_headers && !headers.contains_key(X_AMZ_SSE_C_ALGORITHM) {
        // A key without its algorithm must never be ignored (the object would be stored
        // under the bucket policy while the client believes it holds the key).
        return Err(S3Error::invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        ));
    }
    let uses_sse_c = customer_key_headers
        || headers.keys().any(|k| {
            k.as_str()
                .starts_with("x-amz-copy-source-server-side-encryption-customer")
        });
    if uses_sse_c && !rc.state.config.policy(bucket).allow_sse_c {
        return Err(S3Error::new(
            "InvalidRequest",
            http::StatusCode::BAD_REQUEST,
            "Requests specifying Server Side Encryption with Customer provided keys are not allowed for this bucket.",
        ));
    }
    if uses_sse_c {
        return Err(S3Error::not_implemented(
            "SSE-C emulation is not implemented yet.",
        ));
    }
    Ok(())
}

/// Headers that must not reach the backend on an encrypted write: the SSE request
/// headers (the proxy encrypts; the backend must not try to) and checksums of the
/// plaintext (the backend would check them against ciphertext).
pub fn strip_for_encrypted_write(headers: &mut HeaderMap) {
    let drop: Vec<_> = headers
        .keys()
        .filter(|k| {
            let n = k.as_str();
            is_sse_header(n)
                || n.starts_with("x-amz-checksum-")
                || n == "x-amz-sdk-checksum-algorithm"
                || n == "content-md5"
        })
        .cloned()
        .collect();
    for k in drop {
        headers.remove(k);
    }
}

/// Removes what clients must not see of a stored object: the envelope, and checksums
/// the backend computed over ciphertext.
pub fn hide_from_client(headers: &mut HeaderMap) {
    let drop: Vec<_> = headers
        .keys()
        .filter(|k| {
            let n = k.as_str();
            n.starts_with(RESERVED_META_PREFIX)
                || n.starts_with("x-amz-checksum-")
                || is_sse_header(n)
        })
        .cloned()
        .collect();
    for k in drop {
        headers.remove(k);
    }
}

/// The SSE response headers of an encrypted object.
pub fn add_sse_headers(headers: &mut HeaderMap, envelope: &Envelope) {
    headers.insert(X_AMZ_SSE, HeaderValue::from_static("aws:kms"));
    if let Ok(v) = HeaderValue::from_str(envelope.kms_key_id()) {
        headers.insert(X_AMZ_SSE_KMS_KEY_ID, v);
    }
    headers.insert(
        X_AMZ_SSE_BUCKET_KEY_ENABLED,
        HeaderValue::from_static(if envelope.bucket_key() {
            "true"
        } else {
            "false"
        }),
    );
}

/// KMS failures answer as S3 answers them (throttling → 503 SlowDown, disabled key → 400…).
pub fn kms_error(e: KmsError) -> S3Error {
    S3Error::new(e.s3_code(), e.status(), e.to_string()).with_origin(ErrorOrigin::Kms)
}

/// An object that fails authentication: a server error, with the cause kept for the log.
pub fn tampered(e: impl Into<crate::s3::error::BoxError>) -> S3Error {
    S3Error::internal_error("The object's stored encryption data failed verification.")
        .with_source(e)
}

fn crypto_internal(e: impl Into<crate::s3::error::BoxError>) -> S3Error {
    S3Error::internal_error("We encountered an internal error. Please try again.").with_source(e)
}

/// The envelope a re-key gives an object's unchanged body at `bucket`/`key`: the same
/// data key, wrapped under the key a PutObject with `headers` would use there (bucket
/// policy plus the client's SSE headers), with a fresh salt. No object bytes move.
pub async fn rewrap_object_key(
    rc: &RequestContext,
    source: &Envelope,
    data_key: &DataKey,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> Result<Envelope, S3Error> {
    let choice = write_choice(rc, bucket, headers)?;
    let result = async {
        let (w, blob, reported_id) = wrapping_key_for_write(rc, bucket, key, &choice).await?;
        source
            .rewrap(
                data_key,
                &w,
                &reported_id,
                &blob,
                choice.bucket_key,
                bucket,
                key,
            )
            .map_err(crypto_internal)
    }
    .await;
    audit(
        rc,
        bucket,
        key,
        &choice.kms_key_id,
        choice.bucket_key,
        result.as_ref().ok(),
        result.as_ref().err(),
    );
    result
}

/// The KMS key id and key path a PutObject with `headers` would use in `bucket`.
pub fn write_target(
    rc: &RequestContext,
    bucket: &str,
    headers: &HeaderMap,
) -> Result<(String, bool), S3Error> {
    let choice = write_choice(rc, bucket, headers)?;
    Ok((choice.kms_key_id, choice.bucket_key))
}
