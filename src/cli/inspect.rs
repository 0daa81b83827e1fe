//! `sealgate inspect s3://BUCKET/KEY`: what the backend holds for one object, read
//! with a HEAD and (for multipart objects) a 32-byte range read of part 1's header.
//! It shows the envelope's public fields and the layout arithmetic; it calls no KMS
//! and shows no key material (the bucket key appears only as its fingerprint).

use http::HeaderMap;
use serde::Serialize;

use super::decrypt::{meta_from_headers, parts_from_etag};
use super::store::Store;
use super::{InspectArgs, ToolError};
use crate::config::Config;
use crate::crypto::envelope::ENVELOPE_VERSION;
use crate::crypto::{PART_HEADER_LEN, object_plaintext_len, parse_part_header};

/// What `inspect` reports; also its `--json` shape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub bucket: String,
    pub key: String,
    pub encrypted: bool,
    pub etag: Option<String>,
    pub ciphertext_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EnvelopeReport>,
}

/// The envelope part of a [`Report`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvelopeReport {
    pub format_version: u8,
    /// `derived` (the data key comes from the wrapping key and salt) or `wrapped`
    /// (carried wrapped, after a rewrap).
    pub mode: &'static str,
    pub kms_key_id: String,
    pub bucket_key: bool,
    /// Fingerprint of the wrapped bucket key (or per-object KMS key): SHA-256 prefix.
    pub bucket_key_id: String,
    pub customer_key: bool,
    pub segment_size: u32,
    pub parts: u32,
    /// Plaintext bytes of every part but the last; `None` if part 1's header could
    /// not be read.
    pub part_size: Option<u64>,
    /// `None` when the stored size is impossible for the format (truncated/padded).
    pub plaintext_size: Option<u64>,
}

/// Builds the report from a HEAD answer; `part1_len` is part 1's plaintext length
/// from its header (only needed for multipart objects).
pub fn report(
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    part1_len: Option<u64>,
) -> Result<Report, ToolError> {
    let ciphertext_size = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ToolError::Backend("the backend sent no Content-Length".into()))?;
    let meta = meta_from_headers(headers)?;
    let etag = headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let envelope = meta.map(|m| {
        let e = &m.envelope;
        let parts = etag.as_deref().map_or(1, parts_from_etag);
        let plaintext_size = object_plaintext_len(ciphertext_size, parts, e.segment_size());
        EnvelopeReport {
            format_version: ENVELOPE_VERSION,
            mode: if e.is_wrapped() { "wrapped" } else { "derived" },
            kms_key_id: e.kms_key_id().to_string(),
            bucket_key: e.bucket_key(),
            bucket_key_id: e.bucket_key_id(),
            customer_key: e.is_customer_key(),
            segment_size: e.segment_size(),
            parts,
            part_size: if parts == 1 {
                plaintext_size
            } else {
                part1_len
            },
            plaintext_size,
        }
    });
    Ok(Report {
        bucket: bucket.to_string(),
        key: key.to_string(),
        encrypted: envelope.is_some(),
        etag,
        ciphertext_size,
        envelope,
    })
}

/// The report as aligned `name: value` lines.
pub fn render_text(r: &Report) -> String {
    let mut out = format!("object:           s3://{}/{}\n", r.bucket, r.key);
    out.push_str(&format!(
        "etag:             {}\n",
        r.etag.as_deref().unwrap_or("-")
    ));
    let Some(e) = &r.envelope else {
        out.push_str("encrypted:        no (plaintext: no sealgate envelope)\n");
        out.push_str(&format!("size:             {} bytes\n", r.ciphertext_size));
        return out;
    };
    let opt = |v: Option<u64>| v.map_or("unknown".to_string(), |n| format!("{n} bytes"));
    out.push_str("encrypted:        yes\n");
    out.push_str(&format!("format version:   {}\n", e.format_version));
    out.push_str(&format!("mode:             {}\n", e.mode));
    out.push_str(&format!("kms key id:       {}\n", e.kms_key_id));
    out.push_str(&format!(
        "bucket key:       {}\n",
        if e.bucket_key { "on" } else { "off" }
    ));
    out.push_str(&format!("bucket key id:    {}\n", e.bucket_key_id));
    if e.customer_key {
        out.push_str("customer key:     yes (SSE-C)\n");
    }
    out.push_str(&format!("segment size:     {} bytes\n", e.segment_size));
    out.push_str(&format!("ciphertext size:  {} bytes\n", r.ciphertext_size));
    out.push_str(&format!("plaintext size:   {}\n", opt(e.plaintext_size)));
    out.push_str(&format!("parts:            {}\n", e.parts));
    out.push_str(&format!("part size:        {}\n", opt(e.part_size)));
    if e.plaintext_size.is_none() {
        out.push_str("warning:          the stored size is impossible for this envelope: truncated or padded\n");
    }
    out
}

/// `sealgate inspect`.
pub async fn run(config: &Config, args: &InspectArgs) -> Result<(), ToolError> {
    let (bucket, key) = super::parse_s3_url(&args.object)?;
    let store = Store::open(config).await?;
    let result = inspect(&store, &bucket, &key).await;
    store.close().await;
    let report = result?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| ToolError::Other(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", render_text(&report));
    }
    Ok(())
}

async fn inspect(store: &Store, bucket: &str, key: &str) -> Result<Report, ToolError> {
    let headers = store.head_object(bucket, key).await?;
    let multipart = headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| parts_from_etag(e) > 1);
    let part1_len = if multipart && headers.contains_key(crate::s3::headers::X_AMZ_META_ENVELOPE) {
        part1_plain_len(store, bucket, key).await.ok()
    } else {
        None
    };
    report(bucket, key, &headers, part1_len)
}

/// Part 1's plaintext length, from its 32-byte header.
async fn part1_plain_len(store: &Store, bucket: &str, key: &str) -> Result<u64, ToolError> {
    use http_body_util::BodyExt;
    let range = format!("bytes=0-{}", PART_HEADER_LEN - 1);
    let resp = store.get_object(bucket, key, Some(&range)).await?;
    let bytes = http_body_util::Limited::new(resp.into_body(), 64)
        .collect()
        .await
        .map_err(|e| ToolError::Backend(e.to_string()))?
        .to_bytes();
    let header: [u8; 32] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| ToolError::Backend("short read of part 1's header".into()))?;
    Ok(parse_part_header(&header)?.plain_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Envelope, WrappingKey};
    use http::HeaderValue;

    fn headers(len: u64, etag: &str, envelope: Option<&Envelope>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(http::header::ETAG, HeaderValue::from_str(etag).unwrap());
        if let Some(e) = envelope {
            h.insert(
                crate::s3::headers::X_AMZ_META_ENVELOPE,
                HeaderValue::from_str(&e.encode()).unwrap(),
            );
        }
        h
    }

    #[test]
    fn encrypted_object_report_shows_envelope_and_sizes() {
        let w = WrappingKey::from_bytes([3; 32]);
        let (env, _) = Envelope::seal_new(&w, "alias/k", b"blob", true, 4096, "b", "k").unwrap();
        // 10000 plaintext bytes in segments of 4096: 3 segments, 32 + 10000 + 48 bytes.
        let r = report("b", "k", &headers(10080, "\"e\"", Some(&env)), None).unwrap();
        let e = r.envelope.clone().unwrap();
        assert!(r.encrypted);
        assert_eq!(e.plaintext_size, Some(10000));
        assert_eq!(e.part_size, Some(10000));
        assert_eq!((e.parts, e.segment_size, e.bucket_key), (1, 4096, true));
        assert_eq!(e.mode, "derived");
        assert_eq!(e.bucket_key_id, env.bucket_key_id());
        let text = render_text(&r);
        assert!(text.contains("kms key id:       alias/k"), "{text}");
        assert!(!text.contains("blob"), "{text}");
    }

    #[test]
    fn plaintext_object_says_so() {
        let r = report("b", "k", &headers(5, "\"e\"", None), None).unwrap();
        assert!(!r.encrypted);
        assert!(render_text(&r).contains("encrypted:        no"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["encrypted"], false);
        assert!(json.get("envelope").is_none());
    }

    #[test]
    fn impossible_size_is_flagged() {
        let w = WrappingKey::from_bytes([3; 32]);
        let (env, _) = Envelope::seal_new(&w, "k", b"b", true, 4096, "b", "k").unwrap();
        let r = report("b", "k", &headers(20, "\"e\"", Some(&env)), None).unwrap();
        assert_eq!(r.envelope.as_ref().unwrap().plaintext_size, None);
        assert!(render_text(&r).contains("truncated or padded"));
    }
}
