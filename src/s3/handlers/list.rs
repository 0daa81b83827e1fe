//! ListObjects, ListObjectsV2 and ListObjectVersions with plaintext sizes.
//!
//! In a bucket that holds only encrypted objects (policy `allow_plaintext_reads =
//! false`) a size is pure arithmetic on the listed ciphertext size, the part count of
//! the ETag and the policy's segment size. Where plaintext objects may live beside
//! encrypted ones, a listed size alone cannot tell them apart, so each entry is looked
//! up with a HEAD (16 at a time) and remembered per (bucket, key, ETag): exact, at the
//! cost of one backend request per new object listed.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header;
use http::{Request, Response};
use hyper::body::Incoming;

use super::RequestContext;
use super::get::{parts_from_etag, plaintext_size};
use super::passthrough::{build_upstream_request, relay_response, send, verified_body};
use crate::auth::Verified;
use crate::body::{self, BoxBody};
use crate::crypto::object_plaintext_len;
use crate::s3::encryption::envelope_of;
use crate::s3::error::S3Error;
use crate::s3::xml;
use crate::service::AppState;
use crate::upstream::BackendIdentity;
use crate::upstream::sign::canonical_query;

/// A page of 1,000 keys with long names is well under this.
const MAX_LIST_XML: usize = 32 * 1024 * 1024;
const HEAD_CONCURRENCY: usize = 16;

/// Forwards the listing and rewrites every `<Size>` to the plaintext size.
pub async fn list_objects(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let content_length = verified.body.decoded_length();
    let (client_body, outcome) = verified_body(rc, incoming, verified.body);
    let req = build_upstream_request(rc, &parts, content_length, client_body)?;
    let resp = send(rc, req, &outcome).await?;
    if !resp.status().is_success() {
        return Ok(relay_response(rc, resp));
    }
    let (head, incoming) = resp.into_parts();
    let bytes = xml::read_bounded(incoming, MAX_LIST_XML, || {
        S3Error::internal_error("backend listing too large")
    })
    .await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let bucket = rc.target.bucket.clone().unwrap_or_default();
    let policy = rc.state.config.policy(&bucket).clone();
    let block = if rc.target.has_param("versions") {
        "Version"
    } else {
        "Contents"
    };
    let url_encoded = xml::element_texts(&text, "EncodingType")
        .first()
        .is_some_and(|e| e.trim() == "url");
    // Pure arithmetic where it is exact; a HEAD (cached per ETag) where the bucket may
    // hold plaintext objects, where the backend lists no ETag (so the part count is
    // unknown), or where the listed size is impossible for the grid.
    let mut pure: Vec<Option<u64>> = Vec::new();
    for b in xml::blocks(&text, block) {
        let etag = xml::element_texts(b, "ETag")
            .first()
            .map(|e| xml::unescape(e));
        let size = xml::element_texts(b, "Size")
            .first()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let computed = match (etag, size) {
            (Some(etag), Some(c)) if !policy.allow_plaintext_reads => {
                object_plaintext_len(c, parts_from_etag(&etag), policy.segment_size)
            }
            _ => None,
        };
        pure.push(computed);
    }
    let looked_up = if pure.iter().any(Option::is_none) {
        head_sizes(rc, &bucket, &text, block, url_encoded, &pure).await
    } else {
        Vec::new()
    };
    let mut i = 0;
    let rewritten = xml::rewrite_blocks(&text, block, |b| {
        let size = pure
            .get(i)
            .copied()
            .flatten()
            .or_else(|| looked_up.get(i).copied().flatten());
        i += 1;
        match size {
            Some(p) => xml::replace_first(b, "Size", &p.to_string()),
            None => b.to_string(),
        }
    });
    let bytes = Bytes::from(rewritten);
    let mut out = Response::new(body::full(bytes.clone()));
    *out.status_mut() = head.status;
    for (k, v) in &head.headers {
        if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING && k != header::CONNECTION
        {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out.headers_mut()
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    Ok(out)
}

/// Plaintext size of every entry by HEAD (cached per ETag); `None` keeps the listed size.
async fn head_sizes(
    rc: &RequestContext,
    bucket: &str,
    text: &str,
    block: &str,
    url_encoded: bool,
    known: &[Option<u64>],
) -> Vec<Option<u64>> {
    let mut entries = Vec::new();
    for b in xml::blocks(text, block) {
        let key = xml::element_texts(b, "Key")
            .first()
            .map(|k| xml::unescape(k))
            .unwrap_or_default();
        let key = if url_encoded {
            percent_encoding::percent_decode_str(&key)
                .decode_utf8_lossy()
                .into_owned()
        } else {
            key
        };
        let etag = content_identity(b);
        let version = xml::element_texts(b, "VersionId")
            .first()
            .map(|v| v.to_string());
        entries.push((key, etag, version));
    }
    let known = known.to_vec();
    let state = rc.state.clone();
    let identity = rc.backend.clone();
    let bucket = bucket.to_string();
    stream::iter(entries.into_iter().zip(known))
        .map(move |((key, etag, version), known)| {
            let (state, identity, bucket) = (state.clone(), identity.clone(), bucket.clone());
            async move {
                match known {
                    Some(size) => Some(size),
                    None => head_cached(state, identity, bucket, key, etag, version).await,
                }
            }
        })
        .buffered(HEAD_CONCURRENCY)
        .collect()
        .await
}

/// What names one content of a listed entry for the size cache: its ETag, or, where the
/// backend lists none, its listed size and modification time. A bare key would keep
/// answering the size of the first content it was seen with after an overwrite.
fn content_identity(block: &str) -> String {
    let first = |name: &str| {
        xml::element_texts(block, name)
            .first()
            .map(|e| xml::unescape(e))
            .unwrap_or_default()
    };
    let etag = first("ETag");
    if etag.is_empty() {
        format!("size={} modified={}", first("Size"), first("LastModified"))
    } else {
        etag
    }
}

// Owned arguments only: the futures run concurrently inside a request's future, which
// must stay `Send` for every lifetime.
async fn head_cached(
    state: Arc<AppState>,
    identity: BackendIdentity,
    bucket: String,
    key: String,
    etag: String,
    version: Option<String>,
) -> Option<u64> {
    let id = crate::s3::facts::fact_key(&bucket, &key, &etag);
    if let Some(s) = state.size_cache.get(&id).await {
        return Some(s);
    }
    let size = head_plaintext_size(&state, &identity, &bucket, &key, version.as_deref()).await?;
    state.size_cache.insert(id, size).await;
    Some(size)
}

/// The HEAD is sent as the listing request's identity, like every backend call made
/// for a request, never as `[backend]`'s.
async fn head_plaintext_size(
    state: &AppState,
    identity: &BackendIdentity,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Option<u64> {
    let query = match version {
        Some(v) if v != "null" => canonical_query(&[("versionId".into(), Some(v.to_string()))]),
        _ => String::new(),
    };
    let (uri, host) = state.backend.target(Some(bucket), Some(key), &query).ok()?;
    let mut req = Request::new(body::empty());
    *req.method_mut() = http::Method::HEAD;
    *req.uri_mut() = uri;
    req.headers_mut().insert(header::HOST, host);
    let resp = state.backend.send(identity, req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let h = resp.headers();
    let cipher: u64 = h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?;
    match envelope_of(h).ok()? {
        None => Some(cipher),
        Some(env) => plaintext_size(h, &env, cipher).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::content_identity;

    #[test]
    fn entries_without_an_etag_are_told_apart_by_size_and_time() {
        let with_etag = "<Key>k</Key><ETag>&quot;abc-2&quot;</ETag><Size>10</Size>";
        assert_eq!(content_identity(with_etag), "\"abc-2\"");
        let old =
            "<Key>k</Key><Size>3717</Size><LastModified>2026-11-23T19:00:00.000Z</LastModified>";
        let new =
            "<Key>k</Key><Size>33339</Size><LastModified>2026-11-23T19:00:01.000Z</LastModified>";
        assert_ne!(content_identity(old), content_identity(new));
        assert_ne!(content_identity(old), "");
    }
}
