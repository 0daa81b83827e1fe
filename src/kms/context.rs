//! The KMS encryption context: non-secret key/value pairs bound to a wrapped key as
//! associated data. S3 uses `{"aws:s3:arn": "arn:aws:s3:::BUCKET"}` for bucket keys
//! and `{"aws:s3:arn": "arn:aws:s3:::BUCKET/KEY"}` for per-object keys; we use the
//! same so a blob unwraps only for the bucket (or object) it was made for.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context>

use std::collections::BTreeMap;

/// The one context key S3 sets.
pub const S3_ARN_KEY: &str = "aws:s3:arn";

/// Ordered string pairs; ordering makes the canonical encoding unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// The empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// `{"aws:s3:arn": "arn:aws:s3:::BUCKET"}`: the context of a bucket key.
    pub fn for_bucket(bucket: &str) -> Self {
        Self::new().with(S3_ARN_KEY, format!("arn:aws:s3:::{bucket}"))
    }

    /// `{"aws:s3:arn": "arn:aws:s3:::BUCKET/KEY"}`: the context of a per-object key.
    pub fn for_object(bucket: &str, key: &str) -> Self {
        Self::new().with(S3_ARN_KEY, format!("arn:aws:s3:::{bucket}/{key}"))
    }

    /// Adds or replaces one pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// An unambiguous byte encoding: pair count, then each key and value with a
    /// 4-byte big-endian length, in key order. Length prefixes stop `{"ab": "c"}`
    /// and `{"a": "bc"}` from encoding alike. Used as AEAD associated data by the
    /// local KMS: changing it makes every stored blob unreadable.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            4 + self
                .0
                .iter()
                .map(|(k, v)| 8 + k.len() + v.len())
                .sum::<usize>(),
        );
        push_len_prefixed_count(&mut out, self.0.len());
        for (k, v) in &self.0 {
            push_len_prefixed(&mut out, k.as_bytes());
            push_len_prefixed(&mut out, v.as_bytes());
        }
        out
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

fn push_len_prefixed_count(out: &mut Vec<u8>, n: usize) {
    // Lengths past u32::MAX cannot come from a request; saturate rather than wrap.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    push_len_prefixed_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_object_contexts_match_s3() {
        assert_eq!(
            EncryptionContext::for_bucket("b").get("aws:s3:arn"),
            Some("arn:aws:s3:::b")
        );
        assert_eq!(
            EncryptionContext::for_object("b", "dir/k").get("aws:s3:arn"),
            Some("arn:aws:s3:::b/dir/k")
        );
    }

    #[test]
    fn canonical_bytes_are_unambiguous_and_order_independent() {
        let a: EncryptionContext = [("ab", "c")].into_iter().collect();
        let b: EncryptionContext = [("a", "bc")].into_iter().collect();
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        let x: EncryptionContext = [("k1", "v1"), ("k2", "v2")].into_iter().collect();
        let y: EncryptionContext = [("k2", "v2"), ("k1", "v1")].into_iter().collect();
        assert_eq!(x.canonical_bytes(), y.canonical_bytes());
    }
}
