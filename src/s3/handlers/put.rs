//! PutObject and UploadPart into an encrypting bucket: the verified plaintext body is
//! sealed segment by segment on its way to the backend, which receives an exact
//! ciphertext Content-Length. Client checksums are checked on the plaintext (by the
//! verifying body, which holds back the last bytes until they pass) and never sent to
//! the backend, which would check them against ciphertext.

use http::{HeaderValue, Response};
use hyper::body::Incoming;

use super::RequestContext;
use super::passthrough::{build_upstream_request, relay_response, send, verified_body};
use crate::auth::Verified;
use crate::body::{self, BoxBody};
use crate::crypto::{DataKey, EncryptBody, Envelope, part_ciphertext_len};
use crate::s3::checksum_meta::{StoredChecksum, X_AMZ_META_CHECKSUM};
use crate::s3::encryption::{self, add_sse_headers, hide_from_client, strip_for_encrypted_write};
use crate::s3::error::S3Error;
use crate::s3::headers::X_AMZ_META_ENVELOPE;

/// Largest single PUT or part S3 accepts.
const MAX_PUT_LEN: u64 = 5 * 1024 * 1024 * 1024;

/// PutObject with a fresh envelope.
pub async fn put_object(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    encryption::refuse_reserved_metadata(&parts.headers)?;
    encryption::refuse_sse_c(rc, bucket, &parts.headers)?;
    let len = plaintext_len(&verified)?;
    let keys = encryption::new_object_keys(rc, bucket, key, &parts.headers).await?;
    let envelope_value =
        HeaderValue::from_str(&keys.envelope.encode()).map_err(super::passthrough::internal)?;
    let mut metadata = vec![(X_AMZ_META_ENVELOPE, envelope_value)];
    // The client's checksum, once the verifying body has checked it, is the object's
    // plaintext checksum: keep it for reads with x-amz-checksum-mode.
    if let Some(c) = StoredChecksum::declared(
        &parts.headers,
        verified.body.checksum_algorithm(),
        verified.body.checksum_in_trailer(),
    ) && let Ok(v) = HeaderValue::from_str(&c.encode())
    {
        metadata.push((X_AMZ_META_CHECKSUM, v));
    }
    let mut resp = send_sealed(
        rc,
        &parts,
        incoming,
        verified,
        &keys.data_key,
        &keys.envelope,
        1,
        len,
        &metadata,
    )
    .await?;
    if resp.status().is_success() {
        add_sse_headers(resp.headers_mut(), &keys.envelope);
    }
    Ok(resp)
}

/// The plaintext length the client declared (decoded length for aws-chunked).
pub fn plaintext_len(verified: &Verified) -> Result<u64, S3Error> {
    let len = verified.body.decoded_length().ok_or_else(|| {
        S3Error::missing_content_length("You must provide the Content-Length HTTP header.")
    })?;
    if len > MAX_PUT_LEN {
        return Err(S3Error::entity_too_large(
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with_extra("ProposedSize", len.to_string())
        .with_extra("MaxSizeAllowed", MAX_PUT_LEN.to_string()));
    }
    Ok(len)
}

/// Seals the body as part `part_number` and sends it; the answer keeps the verified
/// checksum the client sent (S3 echoes it) and loses what the backend computed.
#[allow(clippy::too_many_arguments)]
pub async fn send_sealed(
    rc: &RequestContext,
    parts: &http::request::Parts,
    incoming: Incoming,
    verified: Verified,
    data_key: &DataKey,
    envelope: &Envelope,
    part_number: u32,
    len: u64,
    metadata: &[(http::HeaderName, HeaderValue)],
) -> Result<Response<BoxBody>, S3Error> {
    let segment_size = envelope.segment_size();
    let (plain, outcome) = verified_body(rc, incoming, verified.body);
    let sealed = EncryptBody::new(plain, data_key, part_number, len, segment_size);
    let cipher_len = part_ciphertext_len(len, segment_size);
    let mut req = build_upstream_request(rc, parts, Some(cipher_len), body::boxed(sealed))?;
    strip_for_encrypted_write(req.headers_mut());
    for (name, value) in metadata {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    let resp = send(rc, req, &outcome).await?;
    if resp.status().is_success() && !resp.headers().contains_key(http::header::ETAG) {
        tracing::warn!(request_id = %rc.request_id, status = %resp.status(), headers = ?resp.headers(), "backend answered an upload without an ETag");
    }
    let mut out = relay_response(rc, resp);
    hide_from_client(out.headers_mut());
    if out.status().is_success()
        && let Some((algorithm, value)) = outcome.checksum()
        && let Ok(v) = HeaderValue::from_str(&value)
    {
        out.headers_mut().insert(algorithm.header(), v);
    }
    Ok(out)
}
