//! The server-side re-key of an encrypted object: open the source envelope, re-wrap the
//! same data key for the destination (FORMAT.md §1), and let the backend copy the
//! ciphertext with the new envelope in its metadata. No object byte passes through the
//! proxy.
//!
//! A single-part source is one backend CopyObject (metadata directive REPLACE: the
//! envelope must change). A multipart source must stay a grid with a visible part
//! count (the `-N` ETag suffix is how a reader finds the part boundaries), which a
//! backend CopyObject does not promise to keep (AWS's does not), so it is copied as a
//! backend multipart upload: one UploadPartCopy per part with that part's exact
//! ciphertext range, run with bounded concurrency, the upload aborted on any failure.

use futures_util::{StreamExt, stream};
use http::Method;
use http::header::{self, HeaderMap, HeaderValue};

use super::read::part_header_at;
use super::{
    CopyDone, ObjectRef, SourceObject, abort_upload, backend_request, count_copy, first_text,
    send_for_xml, with_envelope,
};
use crate::body;
use crate::crypto::{Envelope, ObjectLayout, part_ciphertext_len};
use crate::s3::encryption::{self, tampered};
use crate::s3::error::S3Error;
use crate::s3::handlers::RequestContext;
use crate::s3::handlers::get::parts_from_etag;
use crate::s3::handlers::passthrough::internal;

/// Part copies in flight at once for one multipart source.
const PART_COPY_CONCURRENCY: usize = 4;

/// Copies the encrypted `src` to `dst` under the keys a PutObject with `sse_headers`
/// would get there; `dest_headers` are the destination's metadata, content headers and
/// whatever else the write carries (tagging, storage class).
pub async fn copy(
    rc: &RequestContext,
    src: &SourceObject,
    dst: &ObjectRef,
    sse_headers: &HeaderMap,
    dest_headers: HeaderMap,
) -> Result<CopyDone, S3Error> {
    let source_env = src
        .envelope
        .as_ref()
        .ok_or_else(|| internal("server-side re-key of a plaintext source"))?;
    let data_key = encryption::open_object_key(rc, &src.at.bucket, &src.at.key, source_env).await?;
    let envelope = encryption::rewrap_object_key(
        rc,
        source_env,
        &data_key,
        &dst.bucket,
        &dst.key,
        sse_headers,
    )
    .await?;
    drop(data_key);
    let done = if src.parts <= 1 {
        single(rc, src, dst, &envelope, dest_headers).await?
    } else {
        multipart(rc, src, source_env, dst, &envelope, dest_headers).await?
    };
    count_copy(rc, "server_side");
    Ok(done)
}

/// One backend CopyObject with the new envelope, conditional on the source's ETag.
async fn single(
    rc: &RequestContext,
    src: &SourceObject,
    dst: &ObjectRef,
    envelope: &Envelope,
    dest_headers: HeaderMap,
) -> Result<CopyDone, S3Error> {
    let mut headers = with_envelope(dest_headers, envelope)?;
    headers.insert("x-amz-copy-source", src.at.copy_source_value()?);
    headers.insert("x-amz-copy-source-if-match", src.etag.clone());
    headers.insert(
        "x-amz-metadata-directive",
        HeaderValue::from_static("REPLACE"),
    );
    let req = backend_request(rc, Method::PUT, &dst.bucket, &dst.key, &[], headers, None)?;
    let (head, text) = send_for_xml(rc, req).await?;
    let etag = first_text(&text, "ETag")
        .or_else(|| {
            head.headers
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .ok_or_else(|| tampered("no ETag in the backend's copy result"))?;
    Ok(CopyDone {
        etag,
        version_id: head.headers.get("x-amz-version-id").cloned(),
        envelope: Some(envelope.clone()),
    })
}

/// A backend multipart upload of the source's part streams, byte for byte.
async fn multipart(
    rc: &RequestContext,
    src: &SourceObject,
    source_env: &Envelope,
    dst: &ObjectRef,
    envelope: &Envelope,
    mut dest_headers: HeaderMap,
) -> Result<CopyDone, S3Error> {
    let part1 = part_header_at(rc, src, 0).await?;
    let layout =
        ObjectLayout::from_ciphertext(src.stored_len, src.parts, source_env.segment_size(), &part1)
            .map_err(tampered)?;
    dest_headers.remove("x-amz-tagging-directive");
    let headers = with_envelope(dest_headers, envelope)?;
    let uploads = [("uploads".to_string(), None)];
    let req = backend_request(
        rc,
        Method::POST,
        &dst.bucket,
        &dst.key,
        &uploads,
        headers,
        None,
    )?;
    let (_, text) = send_for_xml(rc, req).await?;
    let upload_id =
        first_text(&text, "UploadId").ok_or_else(|| tampered("no UploadId from the backend"))?;
    let result = copy_parts_and_complete(rc, src, dst, &layout, &upload_id).await;
    if result.is_err() {
        abort_upload(rc, &dst.bucket, &dst.key, &upload_id).await;
    }
    let (mut etag, version_id) = result?;
    if etag.trim_matches('"').is_empty() {
        // Ceph RGW 16 answers CompleteMultipartUpload with an empty ETag element.
        let at = ObjectRef {
            version_id: None,
            ..dst.clone()
        };
        etag = super::head_source(rc, &at).await?.etag_str().to_string();
        etag = format!("\"{etag}\"");
    }
    if parts_from_etag(&etag) != src.parts {
        // The backend must keep the part count or the copy cannot be read; say so now.
        return Err(tampered(format!(
            "the backend completed the copy with ETag {etag}, not a {}-part ETag",
            src.parts
        )));
    }
    Ok(CopyDone {
        etag,
        version_id,
        envelope: Some(envelope.clone()),
    })
}

async fn copy_parts_and_complete(
    rc: &RequestContext,
    src: &SourceObject,
    dst: &ObjectRef,
    layout: &ObjectLayout,
    upload_id: &str,
) -> Result<(String, Option<HeaderValue>), S3Error> {
    let copy_source = src.at.copy_source_value()?;
    let jobs = (1..=layout.parts).map(|n| {
        let copy_source = copy_source.clone();
        async move {
            let start = layout.part_cipher_start(n);
            let len = part_ciphertext_len(layout.part_len(n), layout.segment_size);
            let end = start + len - 1;
            let mut headers = HeaderMap::new();
            headers.insert("x-amz-copy-source", copy_source);
            headers.insert("x-amz-copy-source-if-match", src.etag.clone());
            headers.insert(
                "x-amz-copy-source-range",
                HeaderValue::from_str(&format!("bytes={start}-{end}")).map_err(internal)?,
            );
            let q = [
                ("partNumber".to_string(), Some(n.to_string())),
                ("uploadId".to_string(), Some(upload_id.to_string())),
            ];
            let req = backend_request(rc, Method::PUT, &dst.bucket, &dst.key, &q, headers, None)?;
            let (_, text) = send_for_xml(rc, req).await?;
            let etag = first_text(&text, "ETag")
                .ok_or_else(|| tampered("no ETag in the backend's part copy result"))?;
            Ok::<_, S3Error>((n, etag))
        }
    });
    let mut etags: Vec<(u32, String)> = stream::iter(jobs)
        .buffer_unordered(PART_COPY_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    etags.sort_by_key(|(n, _)| *n);
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in &etags {
        xml.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            crate::s3::error::escape_xml(etag)
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let len = xml.len() as u64;
    let q = [("uploadId".to_string(), Some(upload_id.to_string()))];
    let req = backend_request(
        rc,
        Method::POST,
        &dst.bucket,
        &dst.key,
        &q,
        HeaderMap::new(),
        Some((body::full(xml), len)),
    )?;
    let (head, text) = send_for_xml(rc, req).await?;
    let etag = first_text(&text, "ETag")
        .ok_or_else(|| tampered("no ETag in the backend's CompleteMultipartUpload result"))?;
    Ok((etag, head.headers.get("x-amz-version-id").cloned()))
}
