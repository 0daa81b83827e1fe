//! GetObject and HeadObject with `?partNumber=N`, answered by the proxy as plaintext
//! ranges on every backend: the stored parts are part streams of ciphertext (and Ceph
//! RGW 16.2 ignores `partNumber` altogether), so the part's plaintext bounds come from
//! the object's layout (`ObjectLayout::part_plain_range`), never from the backend.
//!
//! As S3 answers: 206 with `Content-Range: bytes a-b/T`, `x-amz-mp-parts-count` for
//! multipart objects, part 1 of a single-PUT object is the whole object, a part beyond
//! the count is `416 InvalidPartNumber`, `partNumber` together with `Range` is
//! `400 InvalidRequest`, and a number outside 1..=10000 is `400 InvalidArgument`.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax>

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::{
    ProbeAnswer, Probed, content_length, copy_response_headers, etag_parts, expect_partial, fetch,
    fetch_keeping_part_number, get_whole, plaintext_answer, plaintext_size, read_prefix,
    serve_range,
};
use crate::body::{self, BoxBody};
use crate::crypto::{ObjectLayout, PART_HEADER_LEN, parse_part_header};
use crate::s3::encryption::{add_sse_headers, envelope_of, hide_from_client, tampered};
use crate::s3::error::S3Error;
use crate::s3::facts::fact_key;
use crate::s3::handlers::RequestContext;
use crate::s3::handlers::passthrough::{internal, relay_response};

/// The most parts a multipart upload can have.
const MAX_PART_NUMBER: u32 = 10_000;

/// The header S3 uses to tell how many parts a multipart object has.
pub const X_AMZ_MP_PARTS_COUNT: &str = "x-amz-mp-parts-count";

/// The validated `partNumber` of a read, before anything reaches the backend.
pub fn requested_part(rc: &RequestContext, parts: &http::request::Parts) -> Result<u32, S3Error> {
    parse_part_number(
        rc.target.param("partNumber"),
        parts.headers.contains_key(header::RANGE),
    )
}

/// S3's checks, in S3's order: the number first, then the clash with `Range`.
pub fn parse_part_number(raw: Option<&str>, has_range: bool) -> Result<u32, S3Error> {
    let raw = raw.unwrap_or_default();
    let number = raw
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
            .with_extra("ArgumentName", "partNumber")
            .with_extra("ArgumentValue", raw.to_string())
        })?;
    if has_range {
        return Err(S3Error::invalid_request(
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    Ok(number)
}

/// `416 InvalidPartNumber` for a part the object does not have.
fn part_not_satisfiable(requested: u32, count: u32) -> S3Error {
    S3Error::new(
        "InvalidPartNumber",
        StatusCode::RANGE_NOT_SATISFIABLE,
        "The requested partnumber is not satisfiable",
    )
    .with_extra("PartNumberRequested", requested.to_string())
    .with_extra("ActualPartCount", count.to_string())
}

/// GetObject `?partNumber=N`: one probe (`bytes=0-31`, which carries the metadata, the
/// ETag, the size and part 1's header), then exactly the part's segments.
pub async fn get_part(
    rc: &RequestContext,
    parts: http::request::Parts,
) -> Result<Response<BoxBody>, S3Error> {
    let number = requested_part(rc, &parts)?;
    let probed = match Probed::probe(rc, &parts).await? {
        ProbeAnswer::Sealed(probed) => probed,
        ProbeAnswer::Refused(out) => return Ok(out),
        ProbeAnswer::Plaintext => {
            let resp = fetch_keeping_part_number(rc, &parts, http::Method::GET).await?;
            return plaintext_answer(rc, relay_response(rc, resp));
        }
    };
    let layout = probed.layout;
    if number > layout.parts {
        return Err(part_not_satisfiable(number, layout.parts));
    }
    let Some((start, end)) = layout.part_plain_range(number) else {
        // Part 1 of an empty object: the (empty) object itself.
        return get_whole(rc, &parts, Some(&probed.etag)).await;
    };
    let mut out = serve_range(rc, &parts, &probed, start, end).await?;
    add_parts_count(&mut out, &layout);
    Ok(out)
}

/// HeadObject `?partNumber=N`: the backend's HEAD, plus part 1's header for a multipart
/// object unless its layout is cached.
pub async fn head_part(
    rc: &RequestContext,
    parts: http::request::Parts,
) -> Result<Response<BoxBody>, S3Error> {
    let number = requested_part(rc, &parts)?;
    let resp = fetch(rc, &parts, http::Method::HEAD, None, None).await?;
    let (head, incoming) = resp.into_parts();
    let Some(envelope) = envelope_of(&head.headers)? else {
        drop(incoming);
        let resp = fetch_keeping_part_number(rc, &parts, http::Method::HEAD).await?;
        return plaintext_answer(rc, relay_response(rc, resp));
    };
    if !head.status.is_success() {
        let mut out = relay_response(rc, Response::from_parts(head, incoming));
        hide_from_client(out.headers_mut());
        return Ok(out);
    }
    drop(incoming);
    let cipher_len =
        content_length(&head.headers).ok_or_else(|| tampered("backend sent no Content-Length"))?;
    let etag = head
        .headers
        .get(header::ETAG)
        .cloned()
        .ok_or_else(|| tampered("backend sent no ETag"))?;
    let count = etag_parts(&head.headers);
    let layout = if count == 1 {
        let total = plaintext_size(&head.headers, &envelope, cipher_len)?;
        ObjectLayout::single(envelope.segment_size(), total).map_err(tampered)?
    } else {
        multipart_layout(
            rc,
            &parts,
            &etag,
            cipher_len,
            count,
            envelope.segment_size(),
        )
        .await?
    };
    if number > layout.parts {
        return Err(part_not_satisfiable(number, layout.parts));
    }
    let mut out = Response::new(body::empty());
    copy_response_headers(&head.headers, out.headers_mut());
    match layout.part_plain_range(number) {
        Some((start, end)) => {
            *out.status_mut() = StatusCode::PARTIAL_CONTENT;
            let range = format!("bytes {start}-{end}/{}", layout.total_plain_len);
            out.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&range).map_err(internal)?,
            );
            out.headers_mut()
                .insert(header::CONTENT_LENGTH, layout.part_len(number).into());
        }
        None => {
            *out.status_mut() = StatusCode::OK;
            out.headers_mut().remove(header::CONTENT_RANGE);
            out.headers_mut().insert(header::CONTENT_LENGTH, 0.into());
        }
    }
    hide_from_client(out.headers_mut());
    add_sse_headers(out.headers_mut(), &envelope);
    add_parts_count(&mut out, &layout);
    Ok(out)
}

/// The layout of a multipart object: from the cache, or from part 1's header (32 bytes,
/// pinned to the ETag the HEAD saw).
pub(crate) async fn multipart_layout(
    rc: &RequestContext,
    parts: &http::request::Parts,
    etag: &HeaderValue,
    cipher_len: u64,
    count: u32,
    segment_size: u32,
) -> Result<ObjectLayout, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    let cache_key = fact_key(bucket, key, etag.to_str().map_err(tampered)?);
    if let Some(layout) = rc.state.layouts.get(&cache_key).await {
        return Ok(layout);
    }
    let resp = fetch(
        rc,
        parts,
        http::Method::GET,
        Some(format!("bytes=0-{}", PART_HEADER_LEN - 1)),
        Some(etag),
    )
    .await?;
    let bytes = read_prefix(expect_partial(resp)?.into_body(), PART_HEADER_LEN as usize).await?;
    let header_bytes: [u8; 32] = bytes
        .get(..32)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| tampered("object shorter than its part header"))?;
    let part1 = parse_part_header(&header_bytes).map_err(tampered)?;
    let layout =
        ObjectLayout::from_ciphertext(cipher_len, count, segment_size, &part1).map_err(tampered)?;
    rc.state.layouts.insert(cache_key, layout).await;
    Ok(layout)
}

/// S3 names the part count only for multipart objects.
fn add_parts_count(out: &mut Response<BoxBody>, layout: &ObjectLayout) {
    if layout.parts > 1 {
        out.headers_mut()
            .insert(X_AMZ_MP_PARTS_COUNT, layout.parts.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_outside_one_to_ten_thousand_are_invalid_arguments() {
        for raw in [
            None,
            Some(""),
            Some("0"),
            Some("10001"),
            Some("abc"),
            Some("-1"),
            Some("1.5"),
        ] {
            let e = parse_part_number(raw, false).unwrap_err();
            assert_eq!(e.code, "InvalidArgument", "{raw:?}");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(parse_part_number(Some("1"), false).unwrap(), 1);
        assert_eq!(parse_part_number(Some("10000"), false).unwrap(), 10000);
    }

    #[test]
    fn part_number_with_a_range_is_an_invalid_request() {
        let e = parse_part_number(Some("2"), true).unwrap_err();
        assert_eq!(e.code, "InvalidRequest");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_missing_part_is_416_invalid_part_number() {
        let e = part_not_satisfiable(4, 3);
        assert_eq!(e.code, "InvalidPartNumber");
        assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE);
    }
}
