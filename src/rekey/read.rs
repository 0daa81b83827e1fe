//! The plaintext of a copy source, whole or a range, as a streaming body: raw bytes of
//! a plaintext object, or only the ciphertext segments the range needs, opened under
//! the source's data key. Every backend read is pinned to the source's ETag.

use bytes::{Bytes, BytesMut};
use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use http_body::Body;
use http_body_util::BodyExt;

use super::{SourceObject, backend_request, count_copy_bytes, expect_read};
use crate::auth::body::BodyOutcome;
use crate::body::{self, BoxBody};
use crate::crypto::{
    DecryptBody, DecryptPlan, Envelope, ObjectLayout, PART_HEADER_LEN, PartHeader,
    parse_part_header, plan_range,
};
use crate::s3::encryption::{self, tampered};
use crate::s3::error::{BoxError, S3Error};
use crate::s3::handlers::RequestContext;
use crate::s3::handlers::passthrough::{internal, send};

/// The source's plaintext bytes `range` (inclusive, already checked against its size;
/// `None`: all of it). The body fails, never ends short, if the source does not
/// authenticate.
pub async fn plaintext(
    rc: &RequestContext,
    src: &SourceObject,
    range: Option<(u64, u64)>,
) -> Result<BoxBody, S3Error> {
    let whole = match range {
        None => true,
        Some((a, b)) => a == 0 && b.checked_add(1) == Some(src.plain_len),
    };
    let body = match &src.envelope {
        None => {
            let r = (!whole)
                .then(|| range.map(|(a, b)| format!("bytes={a}-{b}")))
                .flatten();
            body::boxed(fetch(rc, src, r).await?)
        }
        Some(env) if whole => {
            let data_key = open(rc, src, env).await?;
            let plan = DecryptPlan::whole(src.parts, env.segment_size(), src.plain_len)
                .map_err(tampered)?;
            let incoming = fetch(rc, src, None).await?;
            body::boxed(DecryptBody::new(incoming, data_key, plan))
        }
        Some(env) => {
            let (a, b) = range.unwrap_or((0, 0));
            ranged(rc, src, env, a, b).await?
        }
    };
    Ok(count_copy_bytes(rc, "read", body))
}

async fn ranged(
    rc: &RequestContext,
    src: &SourceObject,
    env: &Envelope,
    start: u64,
    end: u64,
) -> Result<BoxBody, S3Error> {
    let part1 = part_header_at(rc, src, 0).await?;
    let layout =
        ObjectLayout::from_ciphertext(src.stored_len, src.parts, env.segment_size(), &part1)
            .map_err(tampered)?;
    let plan = plan_range(&layout, start, end)
        .ok_or_else(|| S3Error::invalid_range("The requested range is not satisfiable"))?;
    let first_header = match plan.header_range {
        None => None,
        Some(_) if plan.first_part == 1 => Some(part1),
        Some((a, _)) => Some(part_header_at(rc, src, a).await?),
    };
    let data_key = open(rc, src, env).await?;
    let decrypt = DecryptPlan::range(&layout, &plan, first_header).map_err(tampered)?;
    let incoming = fetch(
        rc,
        src,
        Some(format!(
            "bytes={}-{}",
            plan.cipher_start, plan.cipher_end_inclusive
        )),
    )
    .await?;
    Ok(body::boxed(DecryptBody::new(incoming, data_key, decrypt)))
}

async fn open(
    rc: &RequestContext,
    src: &SourceObject,
    env: &Envelope,
) -> Result<crate::crypto::DataKey, S3Error> {
    encryption::open_object_key(rc, &src.at.bucket, &src.at.key, env).await
}

/// The 32-byte part header at ciphertext offset `at`.
pub(crate) async fn part_header_at(
    rc: &RequestContext,
    src: &SourceObject,
    at: u64,
) -> Result<PartHeader, S3Error> {
    let incoming = fetch(
        rc,
        src,
        Some(format!("bytes={at}-{}", at + PART_HEADER_LEN - 1)),
    )
    .await?;
    let bytes = read_prefix(incoming, 32).await?;
    let hb: [u8; 32] = bytes
        .get(..32)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| tampered("copy source shorter than its part header"))?;
    parse_part_header(&hb).map_err(tampered)
}

/// GET of the source (optionally a range), pinned to its ETag.
async fn fetch(
    rc: &RequestContext,
    src: &SourceObject,
    range: Option<String>,
) -> Result<hyper::body::Incoming, S3Error> {
    let mut headers = HeaderMap::new();
    headers.insert(header::IF_MATCH, src.etag.clone());
    if let Some(r) = range {
        headers.insert(header::RANGE, HeaderValue::from_str(&r).map_err(internal)?);
    }
    let req = backend_request(
        rc,
        Method::GET,
        &src.at.bucket,
        &src.at.key,
        &src.at.query(),
        headers,
        None,
    )?;
    let resp = expect_read(send(rc, req, &BodyOutcome::default()).await?)?;
    Ok(resp.into_body())
}

async fn read_prefix<B>(mut body: B, n: usize) -> Result<Bytes, S3Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut buf = BytesMut::with_capacity(n);
    while buf.len() < n {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                let e: BoxError = e.into();
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
