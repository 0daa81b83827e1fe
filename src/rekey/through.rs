//! Copies that must move the data through the proxy: a plaintext source sealed under a
//! fresh envelope for an encrypting destination (the S3 way to bring existing objects
//! under a bucket key, and what `sealgate migrate` does in place), and an encrypted
//! source opened for a destination that does not encrypt (ciphertext must never be
//! stored as if it were the object). One backend PUT with an exact Content-Length,
//! streamed with backpressure, so memory stays at a segment or two.

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};

use super::{
    CopyDone, ObjectRef, SourceObject, backend_request, count_copy, count_copy_bytes, read,
    send_expect_ok, with_envelope,
};
use crate::crypto::{EncryptBody, part_ciphertext_len};
use crate::s3::encryption;
use crate::s3::encryption::tampered;
use crate::s3::error::S3Error;
use crate::s3::handlers::RequestContext;

/// Seals the plaintext `src` into `dst` under a fresh envelope. `write_if_match` makes
/// the write conditional on the destination's current ETag (an in-place migration),
/// where the backend supports conditional writes.
pub async fn encrypt(
    rc: &RequestContext,
    src: &SourceObject,
    dst: &ObjectRef,
    sse_headers: &HeaderMap,
    dest_headers: HeaderMap,
    write_if_match: Option<&HeaderValue>,
) -> Result<CopyDone, S3Error> {
    let keys = encryption::new_object_keys(rc, &dst.bucket, &dst.key, sse_headers).await?;
    let plain = read::plaintext(rc, src, None).await?;
    let segment_size = keys.envelope.segment_size();
    let sealed = EncryptBody::new(plain, &keys.data_key, 1, src.plain_len, segment_size);
    let cipher_len = part_ciphertext_len(src.plain_len, segment_size);
    let mut headers = with_envelope(dest_headers, &keys.envelope)?;
    if let Some(etag) = write_if_match {
        // Unquoted: Ceph RGW compares a write's If-Match with its stored ETag as raw
        // text (a quoted value never matches); AWS S3 accepts either form.
        let bare = etag.to_str().unwrap_or_default().trim_matches('"');
        headers.insert(
            header::IF_MATCH,
            HeaderValue::from_str(bare).map_err(crate::s3::handlers::passthrough::internal)?,
        );
    }
    let body = count_copy_bytes(rc, "written", crate::body::boxed(sealed));
    let req = backend_request(
        rc,
        Method::PUT,
        &dst.bucket,
        &dst.key,
        &[],
        headers,
        Some((body, cipher_len)),
    )?;
    let head = send_expect_ok(rc, req).await?;
    count_copy(rc, "encrypt");
    done(head, Some(keys.envelope))
}

/// Writes the plaintext of the encrypted `src` to `dst` as a plaintext object.
pub async fn decrypt(
    rc: &RequestContext,
    src: &SourceObject,
    dst: &ObjectRef,
    dest_headers: HeaderMap,
) -> Result<CopyDone, S3Error> {
    let plain = read::plaintext(rc, src, None).await?;
    let body = count_copy_bytes(rc, "written", plain);
    let req = backend_request(
        rc,
        Method::PUT,
        &dst.bucket,
        &dst.key,
        &[],
        dest_headers,
        Some((body, src.plain_len)),
    )?;
    let head = send_expect_ok(rc, req).await?;
    count_copy(rc, "decrypt");
    done(head, None)
}

fn done(
    head: http::response::Parts,
    envelope: Option<crate::crypto::Envelope>,
) -> Result<CopyDone, S3Error> {
    let etag = head
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| tampered("the backend answered the copy's PUT without an ETag"))?;
    Ok(CopyDone {
        etag,
        version_id: head.headers.get("x-amz-version-id").cloned(),
        envelope,
    })
}
