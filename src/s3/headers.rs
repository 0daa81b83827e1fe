//! Names of the S3 headers the proxy reads, writes or hides. Header names live here
//! only, so a grep finds every place that touches one.

pub const X_AMZ_SSE: &str = "x-amz-server-side-encryption";
pub const X_AMZ_SSE_KMS_KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
pub const X_AMZ_SSE_BUCKET_KEY_ENABLED: &str = "x-amz-server-side-encryption-bucket-key-enabled";
pub const X_AMZ_SSE_CONTEXT: &str = "x-amz-server-side-encryption-context";
pub const X_AMZ_SSE_C_ALGORITHM: &str = "x-amz-server-side-encryption-customer-algorithm";
pub const X_AMZ_SSE_C_KEY: &str = "x-amz-server-side-encryption-customer-key";
pub const X_AMZ_SSE_C_KEY_MD5: &str = "x-amz-server-side-encryption-customer-key-md5";
pub const X_AMZ_COPY_SOURCE_SSE_C_ALGORITHM: &str =
    "x-amz-copy-source-server-side-encryption-customer-algorithm";
pub const X_AMZ_CHECKSUM_PREFIX: &str = "x-amz-checksum-";
pub const X_AMZ_SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";
pub const X_AMZ_CHECKSUM_MODE: &str = "x-amz-checksum-mode";
pub const X_AMZ_META_PREFIX: &str = "x-amz-meta-";
/// The object's envelope (format v1), one user-metadata entry. Never shown to clients,
/// never accepted from them.
pub const X_AMZ_META_ENVELOPE: &str = "x-amz-meta-sealgate-envelope";
/// Every metadata name under this prefix is reserved for the proxy.
pub const RESERVED_META_PREFIX: &str = "x-amz-meta-sealgate-";

/// True for request or response headers that name server-side encryption.
pub fn is_sse_header(name: &str) -> bool {
    name.starts_with(X_AMZ_SSE) || name.starts_with("x-amz-copy-source-server-side-encryption")
}
