//! Multipart uploads into an encrypting bucket.
//!
//! UploadPart needs the object's data key, and S3 offers no way to read a pending
//! upload's metadata. With an upload registry configured (`crate::s3::uploads`) the
//! proxy records each upload's envelope there and the client gets the backend's own
//! upload id. Without one the proxy keeps no state: the upload id the client receives
//! carries the envelope, `sg1.<base64url(envelope)>.<backend upload id>`. Either way
//! the envelope is authenticated (its MAC is keyed by the data key and binds bucket and
//! key), so a client cannot forge or move one. Each part is its own part stream, sealed under a
//! key bound to its part number. CompleteMultipartUpload checks, before the backend
//! completes anything, that parts run 1..N and that every part but the last has the
//! same size, a multiple of the segment size: that keeps the ciphertext a pure grid.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::RequestContext;
use super::passthrough::{
    build_upstream_request, internal, read_xml_body, relay_response, send, verified_body,
};
use super::put::{plaintext_len, send_sealed};
use crate::auth::Verified;
use crate::auth::body::BodyOutcome;
use crate::body::{self, BoxBody};
use crate::crypto::{Envelope, PART_HEADER_LEN, TAG_LEN};
use crate::s3::encryption::{
    self, add_sse_headers, hide_from_client, strip_for_encrypted_write, tampered,
};
use crate::s3::error::{S3Error, escape_xml};
use crate::s3::headers::X_AMZ_META_ENVELOPE;
use crate::s3::op::Target;
use crate::s3::xml;
use crate::service::AppState;
use crate::upstream::sign::{canonical_query, parse_query};

const UPLOAD_ID_PREFIX: &str = "sg1.";
const MAX_PARTS: u32 = 10_000;
/// S3's smallest part but the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest response document read whole (an InitiateMultipartUpload result, a page of
/// ListParts).
const MAX_RESPONSE_XML: usize = 8 * 1024 * 1024;

/// The client's upload id for a backend upload and its envelope.
pub fn client_upload_id(envelope: &Envelope, backend_id: &str) -> String {
    format!(
        "{UPLOAD_ID_PREFIX}{}.{backend_id}",
        URL_SAFE_NO_PAD.encode(envelope.to_bytes())
    )
}

/// Splits a client upload id; ids without the prefix (listed from the backend) have no
/// envelope and serve only for ListParts and AbortMultipartUpload.
pub fn parse_upload_id(id: &str) -> Result<(Option<Envelope>, String), S3Error> {
    let Some(rest) = id.strip_prefix(UPLOAD_ID_PREFIX) else {
        return Ok((None, id.to_string()));
    };
    let no_such = || {
        S3Error::new(
            "NoSuchUpload",
            StatusCode::NOT_FOUND,
            "The specified upload does not exist.",
        )
    };
    let (env, backend) = rest.split_once('.').ok_or_else(no_such)?;
    let bytes = URL_SAFE_NO_PAD.decode(env).map_err(|_| no_such())?;
    let envelope = Envelope::from_bytes(&bytes).map_err(|_| no_such())?;
    if backend.is_empty() {
        return Err(no_such());
    }
    Ok((Some(envelope), backend.to_string()))
}

/// Rewrites the request's `uploadId` to the backend's.
fn with_backend_upload_id(
    parts: &mut http::request::Parts,
    backend_id: &str,
) -> Result<(), S3Error> {
    let q: Vec<(String, Option<String>)> = parse_query(parts.uri.query().unwrap_or(""))
        .into_iter()
        .map(|(k, v)| {
            if k == "uploadId" {
                (k, Some(backend_id.to_string()))
            } else {
                (k, v)
            }
        })
        .collect();
    let pq = format!("{}?{}", parts.uri.path(), canonical_query(&q));
    let mut uri_parts = parts.uri.clone().into_parts();
    uri_parts.path_and_query = Some(pq.parse().map_err(internal)?);
    parts.uri = http::Uri::from_parts(uri_parts).map_err(internal)?;
    Ok(())
}

/// Parts and completions of an upload the proxy did not start (no envelope) would
/// store plaintext in a bucket whose policy encrypts; for the proxy it does not exist.
/// Such uploads can still be listed and aborted.
pub fn not_started_here() -> S3Error {
    S3Error::new(
        "NoSuchUpload",
        StatusCode::NOT_FOUND,
        "The specified upload does not exist: it was not started through the encryption proxy; start a new one.",
    )
}

/// A client's upload id, resolved.
pub struct Upload {
    /// As the client names it.
    pub client_id: String,
    /// As the backend knows it.
    pub backend_id: String,
    /// The envelope of an upload the proxy started; `None` for uploads started
    /// elsewhere (listed from the backend, or made before encryption was on).
    pub envelope: Option<Envelope>,
    /// The envelope came from the upload registry, whose record goes with the upload.
    pub recorded: bool,
}

/// Finds the backend id and envelope of the request's `uploadId`: from the id itself
/// (`sg1.…`) or from the upload registry.
pub async fn resolve(rc: &RequestContext) -> Result<Upload, S3Error> {
    let client_id = upload_id_param(rc)?.to_string();
    let (envelope, backend_id) = parse_upload_id(&client_id)?;
    if envelope.is_some() {
        return Ok(Upload {
            client_id,
            backend_id,
            envelope,
            recorded: false,
        });
    }
    let envelope = match &rc.state.uploads {
        Some(registry) => {
            let (bucket, key) = rc.target.bucket_and_key()?;
            registry.lookup(&rc.state, bucket, key, &backend_id).await?
        }
        None => None,
    };
    Ok(Upload {
        client_id,
        backend_id,
        recorded: envelope.is_some(),
        envelope,
    })
}

/// Deletes the registry record of a finished upload, in the background: the client's
/// answer does not wait for it.
fn forget_later(state: &Arc<AppState>, target: &Target, upload: &Upload) {
    if !upload.recorded {
        return;
    }
    let Ok((bucket, key)) = target.bucket_and_key() else {
        return;
    };
    let (state, bucket, key, id) = (
        state.clone(),
        bucket.to_string(),
        key.to_string(),
        upload.backend_id.clone(),
    );
    tokio::spawn(async move {
        if let Some(registry) = &state.uploads {
            registry.forget(&state, &bucket, &key, &id).await;
        }
    });
}

/// Client requests never reach the upload registry's bucket: its records are the
/// proxy's own.
pub fn refuse_registry_bucket(rc: &RequestContext) -> Result<(), S3Error> {
    match (&rc.state.uploads, rc.target.bucket.as_deref()) {
        (Some(registry), Some(b)) if registry.bucket() == b => Err(S3Error::access_denied(
            "Access Denied: this bucket holds the encryption proxy's records of pending uploads.",
        )),
        _ => Ok(()),
    }
}

fn upload_id_param(rc: &RequestContext) -> Result<&str, S3Error> {
    rc.target
        .param("uploadId")
        .ok_or_else(|| S3Error::invalid_argument("uploadId is required"))
}

/// CreateMultipartUpload: the envelope is made now and stored as the upload's metadata.
pub async fn create(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    encryption::refuse_reserved_metadata(&parts.headers)?;
    encryption::refuse_sse_c(rc, bucket, &parts.headers)?;
    let keys = encryption::new_object_keys(rc, bucket, key, &parts.headers).await?;
    let (client_body, outcome) = verified_body(rc, incoming, verified.body);
    let mut req = build_upstream_request(rc, &parts, Some(0), client_body)?;
    strip_for_encrypted_write(req.headers_mut());
    req.headers_mut()
        .remove(crate::s3::headers::X_AMZ_CHECKSUM_ALGORITHM);
    req.headers_mut().insert(
        X_AMZ_META_ENVELOPE,
        HeaderValue::from_str(&keys.envelope.encode()).map_err(internal)?,
    );
    let resp = send(rc, req, &outcome).await?;
    if !resp.status().is_success() {
        return Ok(relay_response(rc, resp));
    }
    let (head, incoming) = resp.into_parts();
    let xml_bytes = xml::read_bounded(incoming, MAX_RESPONSE_XML, || {
        S3Error::internal_error("backend answer too large")
    })
    .await?;
    let text = String::from_utf8_lossy(&xml_bytes);
    let backend_id = xml::element_texts(&text, "UploadId")
        .first()
        .map(|s| xml::unescape(s))
        .ok_or_else(|| tampered("no UploadId in the backend's answer"))?;
    let client_id = match &rc.state.uploads {
        Some(registry) => {
            if let Err(e) = registry
                .record(&rc.state, bucket, key, &backend_id, &keys.envelope)
                .await
            {
                // An upload whose envelope is nowhere could never take a part.
                crate::rekey::abort_upload(rc, bucket, key, &backend_id).await;
                return Err(e);
            }
            backend_id.clone()
        }
        None => client_upload_id(&keys.envelope, &backend_id),
    };
    let rewritten = xml::replace_first(&text, "UploadId", &escape_xml(&client_id));
    let mut out = xml_response(head.status, &head.headers, rewritten);
    add_sse_headers(out.headers_mut(), &keys.envelope);
    Ok(out)
}

/// UploadPart: sealed as part `partNumber` under the upload's data key.
pub async fn upload_part(
    rc: &RequestContext,
    mut parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
    upload: Upload,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    encryption::refuse_sse_c(rc, bucket, &parts.headers)?;
    let part_number: u32 = rc
        .target
        .param("partNumber")
        .and_then(|p| p.parse().ok())
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?;
    let envelope = upload.envelope.ok_or_else(not_started_here)?;
    let data_key = encryption::open_object_key(rc, bucket, key, &envelope).await?;
    let len = plaintext_len(&verified)?;
    with_backend_upload_id(&mut parts, &upload.backend_id)?;
    let mut out = send_sealed(
        rc,
        &parts,
        incoming,
        verified,
        &data_key,
        &envelope,
        part_number,
        len,
        &[],
    )
    .await?;
    if out.status().is_success() {
        add_sse_headers(out.headers_mut(), &envelope);
    }
    Ok(out)
}

/// AbortMultipartUpload and ListParts by backend id; ListParts sizes become plaintext.
pub async fn by_backend_id(
    rc: &RequestContext,
    mut parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
    upload: Upload,
) -> Result<Response<BoxBody>, S3Error> {
    with_backend_upload_id(&mut parts, &upload.backend_id)?;
    let content_length = verified.body.decoded_length();
    let (client_body, outcome) = verified_body(rc, incoming, verified.body);
    let req = build_upstream_request(rc, &parts, content_length, client_body)?;
    let resp = send(rc, req, &outcome).await?;
    let is_list = parts.method == http::Method::GET;
    // An abort the backend took, or one of an upload it no longer has: either way the
    // upload is gone.
    if !is_list && (resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND) {
        forget_later(&rc.state, &rc.target, &upload);
    }
    if !is_list || !resp.status().is_success() {
        return Ok(relay_response(rc, resp));
    }
    let (head, incoming) = resp.into_parts();
    let bytes = xml::read_bounded(incoming, MAX_RESPONSE_XML, || {
        S3Error::internal_error("backend answer too large")
    })
    .await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let text = xml::replace_first(&text, "UploadId", &escape_xml(&upload.client_id));
    let text = match &upload.envelope {
        Some(env) => {
            let s = env.segment_size();
            let plain = xml::rewrite_blocks(&text, "Part", |block| {
                let size = xml::element_texts(block, "Size")
                    .first()
                    .and_then(|v| v.parse::<u64>().ok());
                match size.and_then(|c| part_plaintext_len(c, s)) {
                    Some(p) => xml::replace_first(block, "Size", &p.to_string()),
                    None => block.to_string(),
                }
            });
            // S3 lists parts by part number; some backends (the embedded one) do not.
            xml::sort_blocks(&plain, "Part", |block| {
                xml::element_texts(block, "PartNumber")
                    .first()
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            })
        }
        None => text,
    };
    Ok(xml_response(head.status, &head.headers, text))
}

/// CompleteMultipartUpload after the layout checks.
pub async fn complete(
    rc: &RequestContext,
    mut parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
    upload: Upload,
) -> Result<Response<BoxBody>, S3Error> {
    let envelope = upload.envelope.clone();
    let body_bytes = read_xml_body(rc, incoming, verified.body).await?;
    xml::document::check(&body_bytes, &xml::document::COMPLETE)?;
    with_backend_upload_id(&mut parts, &upload.backend_id)?;
    if let Some(env) = &envelope {
        check_layout(rc, &parts, &body_bytes, env.segment_size()).await?;
    }
    let len = body_bytes.len() as u64;
    let mut req = build_upstream_request(rc, &parts, Some(len), body::full(body_bytes))?;
    strip_for_encrypted_write(req.headers_mut());
    let resp = send(rc, req, &BodyOutcome::default()).await?;
    let succeeded = resp.status().is_success();
    let mut out = relay_response(rc, resp);
    if succeeded && upload.recorded {
        // The record goes once the backend's answer has ended without an error in it.
        let (head, body) = out.into_parts();
        let (state, target) = (rc.state.clone(), rc.target.clone());
        let done = move || forget_later(&state, &target, &upload);
        out = Response::from_parts(head, body::boxed(body::OnCleanEnd::new(body, done)));
    }
    hide_from_client(out.headers_mut());
    if let Some(env) = &envelope
        && out.status().is_success()
    {
        add_sse_headers(out.headers_mut(), env);
    }
    Ok(out)
}

/// Parts listed by the client run 1..N; the stored parts but the last are of one
/// plaintext size, a multiple of the segment size, and the last is not larger.
async fn check_layout(
    rc: &RequestContext,
    parts: &http::request::Parts,
    complete_xml: &[u8],
    segment_size: u32,
) -> Result<(), S3Error> {
    let text = std::str::from_utf8(complete_xml)
        .map_err(|_| S3Error::malformed_xml("The XML you provided was not well-formed."))?;
    let numbers: Vec<u32> = xml::element_texts(text, "PartNumber")
        .iter()
        .map(|n| n.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            S3Error::malformed_xml(
                "The XML you provided was not well-formed or did not validate against our published schema.",
            )
        })?;
    if numbers.is_empty() {
        return Err(S3Error::malformed_xml(
            "The XML you provided was not well-formed or did not validate against our published schema.",
        ));
    }
    if numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(S3Error::invalid_part_order(
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    if numbers
        .iter()
        .enumerate()
        .any(|(i, n)| *n as usize != i + 1)
    {
        return Err(S3Error::invalid_part(
            "Through the encryption proxy, part numbers must run 1, 2, …, N without gaps: the object's layout is derived from part positions.",
        ));
    }
    // The ETags the client names, in the order of `numbers` (the checker above made sure
    // every Part has a PartNumber; S3 requires an ETag too).
    let named: Vec<Option<String>> = xml::blocks(text, "Part")
        .iter()
        .map(|b| xml::element_texts(b, "ETag").first().map(|e| bare_etag(e)))
        .collect();
    let stored = list_part_sizes(rc, parts, numbers.len()).await?;
    let s = u64::from(segment_size);
    let mut plain = Vec::with_capacity(numbers.len());
    for (i, n) in numbers.iter().enumerate() {
        let (c, etag) = stored.get(n).ok_or_else(|| missing_part(*n))?;
        // Some backends complete whatever ETags they are given; S3 refuses a mismatch.
        if let (Some(Some(named)), Some(etag)) = (named.get(i), etag)
            && !named.eq_ignore_ascii_case(etag)
        {
            return Err(missing_part(*n));
        }
        plain.push(
            part_plaintext_len(*c, segment_size)
                .ok_or_else(|| tampered(format!("part {n} has an impossible ciphertext size")))?,
        );
    }
    // S3's own minimum comes first: a client that sends small parts learns what S3
    // would tell it, not the proxy's layout rule below.
    if let Some((_, rest)) = plain.split_last()
        && let Some((i, small)) = rest.iter().enumerate().find(|(_, p)| **p < MIN_PART_SIZE)
    {
        return Err(S3Error::new(
            "EntityTooSmall",
            StatusCode::BAD_REQUEST,
            "Your proposed upload is smaller than the minimum allowed size",
        )
        .with_extra("ProposedSize", small.to_string())
        .with_extra("MinSizeAllowed", MIN_PART_SIZE.to_string())
        .with_extra("PartNumber", (i + 1).to_string()));
    }
    if let Some((last, rest)) = plain.split_last()
        && let Some(first) = rest.first()
    {
        let first = *first;
        if rest.iter().any(|p| *p != first) || first % s != 0 || *last > first || *last == 0 {
            return Err(S3Error::invalid_part(format!(
                "Through the encryption proxy every part but the last must have the same size, a multiple of {s} bytes, and the last part must not be larger (got sizes {:?}).",
                plain.iter().take(5).collect::<Vec<_>>()
            )));
        }
    }
    Ok(())
}

/// S3's answer for a part that is not there or not the one named.
fn missing_part(n: u32) -> S3Error {
    S3Error::invalid_part(format!(
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag (part {n})."
    ))
}

/// An ETag as listed or named, without quotes or their XML escapes.
fn bare_etag(text: &str) -> String {
    xml::unescape(text.trim()).trim_matches('"').to_string()
}

/// Ciphertext sizes and ETags of the stored parts, by part number (ListParts,
/// paginated).
async fn list_part_sizes(
    rc: &RequestContext,
    parts: &http::request::Parts,
    expected: usize,
) -> Result<std::collections::HashMap<u32, (u64, Option<String>)>, S3Error> {
    let mut sizes = std::collections::HashMap::new();
    let upload_id = parse_query(parts.uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "uploadId")
        .and_then(|(_, v)| v)
        .unwrap_or_default();
    let mut marker: Option<String> = None;
    for _ in 0..=(expected / 1000 + 1) {
        let mut q = vec![("uploadId".to_string(), Some(upload_id.clone()))];
        if let Some(m) = &marker {
            q.push(("part-number-marker".into(), Some(m.clone())));
        }
        let t = &rc.target;
        let (uri, host) = rc
            .state
            .backend
            .target(t.bucket.as_deref(), t.key.as_deref(), &canonical_query(&q))
            .map_err(internal)?;
        let mut req = Request::new(body::empty());
        *req.uri_mut() = uri;
        req.headers_mut().insert(header::HOST, host);
        let resp = send(rc, req, &BodyOutcome::default()).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let code = xml::element_texts(&String::from_utf8_lossy(&bytes), "Code")
                .first()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "InternalError".into());
            return Err(S3Error::new(
                code,
                status,
                "Listing the upload's parts failed.",
            ));
        }
        let bytes = xml::read_bounded(resp.into_body(), MAX_RESPONSE_XML, || {
            S3Error::internal_error("backend answer too large")
        })
        .await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for block in xml::blocks(&text, "Part") {
            let n = xml::element_texts(block, "PartNumber")
                .first()
                .and_then(|v| v.trim().parse().ok());
            let sz = xml::element_texts(block, "Size")
                .first()
                .and_then(|v| v.trim().parse().ok());
            let etag = xml::element_texts(block, "ETag")
                .first()
                .map(|e| bare_etag(e));
            if let (Some(n), Some(sz)) = (n, sz) {
                sizes.insert(n, (sz, etag));
            }
        }
        let truncated = xml::element_texts(&text, "IsTruncated")
            .first()
            .is_some_and(|v| v.trim() == "true");
        marker = xml::element_texts(&text, "NextPartNumberMarker")
            .first()
            .map(|s| s.to_string());
        if !truncated || marker.is_none() {
            break;
        }
    }
    Ok(sizes)
}

/// Plaintext size of one part stream of `cipher_len` bytes.
pub fn part_plaintext_len(cipher_len: u64, segment_size: u32) -> Option<u64> {
    crate::crypto::object_plaintext_len(cipher_len, 1, segment_size)
        .filter(|_| cipher_len >= PART_HEADER_LEN + TAG_LEN)
}

fn xml_response(status: StatusCode, headers: &http::HeaderMap, text: String) -> Response<BoxBody> {
    let bytes = Bytes::from(text);
    let mut out = Response::new(body::full(bytes.clone()));
    *out.status_mut() = status;
    for (k, v) in headers {
        if k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING || k == header::CONNECTION
        {
            continue;
        }
        out.headers_mut().append(k.clone(), v.clone());
    }
    out.headers_mut()
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    hide_from_client(out.headers_mut());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_without_prefix_pass_through() {
        let (env, id) = parse_upload_id("2~abc.def").unwrap();
        assert!(env.is_none());
        assert_eq!(id, "2~abc.def");
    }

    #[test]
    fn forged_upload_ids_are_unknown_uploads() {
        assert_eq!(
            parse_upload_id("sg1.!!!.x").unwrap_err().code,
            "NoSuchUpload"
        );
        assert_eq!(
            parse_upload_id("sg1.AAAA.x").unwrap_err().code,
            "NoSuchUpload"
        );
        assert_eq!(
            parse_upload_id("sg1.AAAA").unwrap_err().code,
            "NoSuchUpload"
        );
    }

    #[test]
    fn part_sizes_invert() {
        let s = 65536;
        for p in [1u64, 65536, 5 * 1024 * 1024, 5 * 1024 * 1024 + 7] {
            let c = crate::crypto::part_ciphertext_len(p, s);
            assert_eq!(part_plaintext_len(c, s), Some(p));
        }
    }
}
