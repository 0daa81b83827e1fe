//! GetObject and HeadObject of encrypted objects. Sizes, ranges and `Content-Range` are
//! in plaintext terms; only the ciphertext segments a range needs are fetched. A range
//! read first fetches the object's first 32 bytes (part 1's header, with the metadata
//! and the total size), then exactly the segments, pinned to the same ETag.
//!
//! Integrity: anything that fails authentication before the response head is a 500;
//! after it, the body ends in an error, so hyper aborts the connection and the client
//! never sees a clean short or altered body.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::RequestContext;
use super::passthrough::{copy_forwardable, internal, relay_response, send};
use crate::auth::body::BodyOutcome;
use crate::body::{self, BoxBody};
use crate::crypto::{
    DataKey, DecryptBody, DecryptPlan, Envelope, ObjectLayout, PART_HEADER_LEN, PartHeader,
    object_plaintext_len, parse_part_header, plan_range,
};
use crate::s3::checksum_meta::{StoredChecksum, checksum_mode_enabled};
use crate::s3::encryption::{self, add_sse_headers, envelope_of, hide_from_client, tampered};
use crate::s3::error::S3Error;
use crate::s3::range::{self, ByteRange};
use crate::upstream::sign::canonical_query;

pub mod part;

/// Conditional headers that apply to the client's read.
const CONDITIONALS: &[header::HeaderName] = &[
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// HeadObject: the backend's answer with plaintext size and SSE headers.
pub async fn head_object(
    rc: &RequestContext,
    parts: http::request::Parts,
) -> Result<Response<BoxBody>, S3Error> {
    let resp = fetch(rc, &parts, http::Method::HEAD, None, None).await?;
    let mut out = relay_response(rc, resp);
    let Some(envelope) = envelope_of(out.headers())? else {
        return plaintext_answer(rc, out);
    };
    if out.status().is_success() {
        let cipher_len = content_length(out.headers())
            .ok_or_else(|| tampered("backend sent no Content-Length"))?;
        let plain = plaintext_size(out.headers(), &envelope, cipher_len)?;
        out.headers_mut()
            .insert(header::CONTENT_LENGTH, plain.into());
    }
    // Read the stored checksum, then hide every stored header: the SSE headers added
    // next describe the envelope, not the backend.
    let checksum = StoredChecksum::from_headers(out.headers());
    hide_from_client(out.headers_mut());
    if out.status().is_success() {
        add_sse_headers(out.headers_mut(), &envelope);
        if checksum_mode_enabled(&parts.headers)
            && let Some(c) = checksum
        {
            c.add_to(out.headers_mut());
        }
    }
    Ok(out)
}

/// GetObject, whole or ranged.
pub async fn get_object(
    rc: &RequestContext,
    parts: http::request::Parts,
) -> Result<Response<BoxBody>, S3Error> {
    let client_range = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match client_range.as_deref() {
        Some(r) if r.trim_start().starts_with("bytes=") => get_range(rc, parts, r).await,
        _ => get_whole(rc, &parts, None).await,
    }
}

/// The whole object; `pinned_etag` when a range read found the range covers everything.
async fn get_whole(
    rc: &RequestContext,
    parts: &http::request::Parts,
    pinned_etag: Option<&HeaderValue>,
) -> Result<Response<BoxBody>, S3Error> {
    let resp = fetch(rc, parts, http::Method::GET, None, pinned_etag).await?;
    let status = resp.status();
    let (head, incoming) = resp.into_parts();
    let Some(envelope) = envelope_of(&head.headers)? else {
        return plaintext_answer(rc, relay_response(rc, Response::from_parts(head, incoming)));
    };
    if status != StatusCode::OK {
        let mut out = relay_response(rc, Response::from_parts(head, incoming));
        hide_from_client(out.headers_mut());
        return Ok(out);
    }
    let cipher_len =
        content_length(&head.headers).ok_or_else(|| tampered("backend sent no Content-Length"))?;
    let plain_len = plaintext_size(&head.headers, &envelope, cipher_len)?;
    let data_key = open_key(rc, &envelope).await?;
    let plan = DecryptPlan::whole(
        etag_parts(&head.headers),
        envelope.segment_size(),
        plain_len,
    )
    .map_err(tampered)?;
    let decrypted = body::prime(DecryptBody::new(incoming, data_key, plan))
        .await
        .map_err(tampered)?;
    let mut out = Response::new(body::boxed(decrypted));
    *out.status_mut() = StatusCode::OK;
    copy_response_headers(&head.headers, out.headers_mut());
    out.headers_mut()
        .insert(header::CONTENT_LENGTH, plain_len.into());
    out.headers_mut().remove(header::CONTENT_RANGE);
    hide_from_client(out.headers_mut());
    add_sse_headers(out.headers_mut(), &envelope);
    // S3 returns the object's checksum on whole-object reads only.
    if checksum_mode_enabled(&parts.headers)
        && let Some(c) = StoredChecksum::from_headers(&head.headers)
    {
        c.add_to(out.headers_mut());
    }
    Ok(out)
}

async fn get_range(
    rc: &RequestContext,
    parts: http::request::Parts,
    client_range: &str,
) -> Result<Response<BoxBody>, S3Error> {
    let probed = match Probed::probe(rc, &parts).await? {
        ProbeAnswer::Sealed(probed) => probed,
        ProbeAnswer::Refused(out) => return Ok(out),
        ProbeAnswer::Plaintext => {
            // Ask again with the client's own range.
            let resp = fetch(
                rc,
                &parts,
                http::Method::GET,
                Some(client_range.to_string()),
                None,
            )
            .await?;
            return plaintext_answer(rc, relay_response(rc, resp));
        }
    };
    let total = probed.layout.total_plain_len;
    let (start, end) = match range::resolve(Some(client_range), total) {
        ByteRange::Whole => return get_whole(rc, &parts, Some(&probed.etag)).await,
        ByteRange::Unsatisfiable => {
            return Err(
                S3Error::invalid_range("The requested range is not satisfiable")
                    .with_extra("ActualObjectSize", total.to_string())
                    .with_header(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{total}")).map_err(internal)?,
                    ),
            );
        }
        ByteRange::Part { start, end } => (start, end),
    };
    serve_range(rc, &parts, &probed, start, end).await
}

/// What the first read of a ranged GET learned: enough to plan any plaintext range.
pub(crate) struct Probed {
    pub envelope: Envelope,
    pub layout: ObjectLayout,
    pub etag: HeaderValue,
    /// Part 1's header, when it was read (the probe reads it; a cached layout does not).
    pub part1: Option<PartHeader>,
}

/// How the probe of a ranged or part read came back.
pub(crate) enum ProbeAnswer {
    /// The object is plaintext: the caller asks again with its own request.
    Plaintext,
    /// The backend's refusal (a failed condition, no such key), ready to relay.
    Refused(Response<BoxBody>),
    /// An encrypted object, its layout learned.
    Sealed(Probed),
}

impl Probed {
    /// Reads the object's first bytes with the client's conditions: they carry the
    /// metadata, the ETag, the total size and part 1's header.
    pub(crate) async fn probe(
        rc: &RequestContext,
        parts: &http::request::Parts,
    ) -> Result<ProbeAnswer, S3Error> {
        let resp = fetch(
            rc,
            parts,
            http::Method::GET,
            Some(format!("bytes=0-{}", PART_HEADER_LEN - 1)),
            None,
        )
        .await?;
        let (head, incoming) = resp.into_parts();
        let Some(envelope) = envelope_of(&head.headers)? else {
            return Ok(ProbeAnswer::Plaintext);
        };
        if !head.status.is_success() {
            let mut out = relay_response(rc, Response::from_parts(head, incoming));
            hide_from_client(out.headers_mut());
            return Ok(ProbeAnswer::Refused(out));
        }
        Probed::from_probe(rc, &head.headers, envelope, incoming)
            .await
            .map(ProbeAnswer::Sealed)
    }

    /// From the answer to `bytes=0-31`: total size, ETag and part 1's header. The
    /// layout goes into the cache for later `partNumber` HEADs.
    async fn from_probe(
        rc: &RequestContext,
        headers: &HeaderMap,
        envelope: Envelope,
        incoming: Incoming,
    ) -> Result<Probed, S3Error> {
        let cipher_len =
            total_size(headers).ok_or_else(|| tampered("backend sent no object size"))?;
        let etag = headers
            .get(header::ETAG)
            .cloned()
            .ok_or_else(|| tampered("backend sent no ETag"))?;
        let prefix = read_prefix(incoming, PART_HEADER_LEN as usize).await?;
        let header_bytes: [u8; 32] = prefix
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| tampered("object shorter than its part header"))?;
        let part1 = parse_part_header(&header_bytes).map_err(tampered)?;
        let layout = ObjectLayout::from_ciphertext(
            cipher_len,
            etag_parts(headers),
            envelope.segment_size(),
            &part1,
        )
        .map_err(tampered)?;
        if let (Ok((bucket, key)), Ok(tag)) = (rc.target.bucket_and_key(), etag.to_str()) {
            rc.state
                .layouts
                .insert(crate::s3::facts::fact_key(bucket, key, tag), layout)
                .await;
        }
        Ok(Probed {
            envelope,
            layout,
            etag,
            part1: Some(part1),
        })
    }
}

/// Serves plaintext bytes `start..=end` (already clamped to the object) as a 206,
/// fetching only the segments they need, pinned to the probed ETag.
pub(crate) async fn serve_range(
    rc: &RequestContext,
    parts: &http::request::Parts,
    probed: &Probed,
    start: u64,
    end: u64,
) -> Result<Response<BoxBody>, S3Error> {
    let Probed {
        envelope,
        layout,
        etag,
        part1,
    } = probed;
    let total = layout.total_plain_len;
    let plan = plan_range(layout, start, end)
        .ok_or_else(|| S3Error::invalid_range("The requested range is not satisfiable"))?;
    let first_header = match plan.header_range {
        None => None,
        Some(_) if plan.first_part == 1 && part1.is_some() => *part1,
        Some((a, b)) => {
            let resp = fetch(
                rc,
                parts,
                http::Method::GET,
                Some(format!("bytes={a}-{b}")),
                Some(etag),
            )
            .await?;
            let resp = expect_partial(resp)?;
            let bytes = read_prefix(resp.into_body(), PART_HEADER_LEN as usize).await?;
            let hb: [u8; 32] = bytes
                .get(..32)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| tampered("short part header"))?;
            Some(parse_part_header(&hb).map_err(tampered)?)
        }
    };
    let data_key = open_key(rc, envelope).await?;
    let decrypt_plan = DecryptPlan::range(layout, &plan, first_header).map_err(tampered)?;
    let resp = fetch(
        rc,
        parts,
        http::Method::GET,
        Some(format!(
            "bytes={}-{}",
            plan.cipher_start, plan.cipher_end_inclusive
        )),
        Some(etag),
    )
    .await?;
    let resp = expect_partial(resp)?;
    let (head, incoming) = resp.into_parts();
    let decrypted = body::prime(DecryptBody::new(incoming, data_key, decrypt_plan))
        .await
        .map_err(tampered)?;
    let mut out = Response::new(body::boxed(decrypted));
    *out.status_mut() = StatusCode::PARTIAL_CONTENT;
    copy_response_headers(&head.headers, out.headers_mut());
    out.headers_mut()
        .insert(header::CONTENT_LENGTH, plan.take.into());
    let content_range = format!(
        "bytes {}-{}/{}",
        plan.plain_start, plan.plain_end_inclusive, total
    );
    out.headers_mut().insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(&content_range).map_err(internal)?,
    );
    hide_from_client(out.headers_mut());
    add_sse_headers(out.headers_mut(), envelope);
    Ok(out)
}

/// One backend read: the client's headers but Range (replaced by `range`), with the
/// client's conditions unless pinned to an ETag. `partNumber` is dropped: the proxy
/// answers it from the layout.
pub(crate) async fn fetch(
    rc: &RequestContext,
    parts: &http::request::Parts,
    method: http::Method,
    range: Option<String>,
    pinned_etag: Option<&HeaderValue>,
) -> Result<Response<Incoming>, S3Error> {
    fetch_query(rc, parts, method, range, pinned_etag, false).await
}

/// The client's read as it is, `partNumber` included: for objects the proxy did not
/// encrypt, whose parts the backend knows.
async fn fetch_keeping_part_number(
    rc: &RequestContext,
    parts: &http::request::Parts,
    method: http::Method,
) -> Result<Response<Incoming>, S3Error> {
    fetch_query(rc, parts, method, None, None, true).await
}

async fn fetch_query(
    rc: &RequestContext,
    parts: &http::request::Parts,
    method: http::Method,
    range: Option<String>,
    pinned_etag: Option<&HeaderValue>,
    keep_part_number: bool,
) -> Result<Response<Incoming>, S3Error> {
    let t = &rc.target;
    let query: Vec<(String, Option<String>)> =
        crate::upstream::sign::parse_query(parts.uri.query().unwrap_or(""))
            .into_iter()
            .filter(|(k, _)| (keep_part_number || k != "partNumber") && k != "attributes")
            .collect();
    let (uri, host) = rc
        .state
        .backend
        .target(
            t.bucket.as_deref(),
            t.key.as_deref(),
            &canonical_query(&query),
        )
        .map_err(internal)?;
    let mut req = Request::new(body::empty());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    copy_forwardable(&parts.headers, headers);
    headers.insert(header::HOST, host);
    headers.remove(header::RANGE);
    headers.remove(crate::s3::headers::X_AMZ_CHECKSUM_MODE);
    if let Some(r) = range {
        headers.insert(header::RANGE, HeaderValue::from_str(&r).map_err(internal)?);
    } else if keep_part_number && let Some(r) = parts.headers.get(header::RANGE) {
        headers.insert(header::RANGE, r.clone());
    }
    if let Some(etag) = pinned_etag {
        for c in CONDITIONALS {
            headers.remove(c);
        }
        headers.insert(header::IF_MATCH, etag.clone());
    }
    send(rc, req, &BodyOutcome::default()).await
}

/// A follow-up read must be the 206 we asked for; a 412 means the object changed under
/// us between reads.
fn expect_partial(resp: Response<Incoming>) -> Result<Response<Incoming>, S3Error> {
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => Ok(resp),
        StatusCode::PRECONDITION_FAILED => Err(S3Error::service_unavailable(
            "The object changed while it was being read; please retry.",
        )),
        s => Err(tampered(format!("backend answered {s} to a ranged read"))),
    }
}

/// Reads the first `n` bytes of a body and drops the rest.
async fn read_prefix<B>(mut body: B, n: usize) -> Result<Bytes, S3Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::s3::error::BoxError>,
{
    let mut buf = BytesMut::with_capacity(n);
    while buf.len() < n {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                let e: crate::s3::error::BoxError = e.into();
                return Err(S3Error::service_unavailable(
                    "The backend storage did not answer; please retry.",
                )
                .with_source(e));
            }
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    buf.extend_from_slice(d);
                }
            }
        }
    }
    Ok(buf.freeze())
}

async fn open_key(rc: &RequestContext, envelope: &Envelope) -> Result<DataKey, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    encryption::open_object_key(rc, bucket, key, envelope).await
}

/// Objects without an envelope: served as they are where the policy allows it.
pub(crate) fn plaintext_answer(
    rc: &RequestContext,
    mut out: Response<BoxBody>,
) -> Result<Response<BoxBody>, S3Error> {
    let bucket = rc.target.bucket.as_deref().unwrap_or_default();
    if out.status().is_success() && !rc.state.config.policy(bucket).allow_plaintext_reads {
        return Err(S3Error::access_denied(
            "This object is not encrypted and the bucket policy refuses plaintext objects.",
        ));
    }
    hide_from_client(out.headers_mut());
    Ok(out)
}

fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if k == header::CONNECTION || k == header::TRANSFER_ENCODING || k.as_str() == "keep-alive" {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

pub(crate) fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The object size from `Content-Range: bytes a-b/TOTAL`, or Content-Length of a 200.
fn total_size(h: &HeaderMap) -> Option<u64> {
    match h.get(header::CONTENT_RANGE) {
        Some(v) => v.to_str().ok()?.rsplit_once('/')?.1.trim().parse().ok(),
        None => content_length(h),
    }
}

/// Plaintext size of a whole stored object from its ciphertext size.
pub fn plaintext_size(h: &HeaderMap, envelope: &Envelope, cipher_len: u64) -> Result<u64, S3Error> {
    object_plaintext_len(cipher_len, etag_parts(h), envelope.segment_size())
        .ok_or_else(|| tampered("impossible ciphertext size"))
}

/// Part count from a multipart ETag (`"…-N"`), 1 otherwise.
pub fn etag_parts(h: &HeaderMap) -> u32 {
    h.get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(parts_from_etag)
        .unwrap_or(1)
}

pub fn parts_from_etag(etag: &str) -> u32 {
    etag.trim_matches('"')
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}
