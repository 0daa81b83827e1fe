//! Names of the S3 headers the proxy reads, writes or hides. Header names live here
//! only, so a grep finds every place that touches one. Whole names are `HeaderName`s,
//! so a lookup or insert on the request path does not parse the name each time.

use http::HeaderName;

pub const X_AMZ_SSE: HeaderName = HeaderName::from_static("x-amz-server-side-encryption");
pub const X_AMZ_SSE_KMS_KEY_ID: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-aws-kms-key-id");
pub const X_AMZ_SSE_BUCKET_KEY_ENABLED: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-bucket-key-enabled");
pub const X_AMZ_SSE_CONTEXT: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-context");
pub const X_AMZ_SSE_C_ALGORITHM: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-customer-algorithm");
pub const X_AMZ_SSE_C_KEY: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-customer-key");
pub const X_AMZ_SSE_C_KEY_MD5: HeaderName =
    HeaderName::from_static("x-amz-server-side-encryption-customer-key-md5");
pub const X_AMZ_COPY_SOURCE_SSE_C_ALGORITHM: HeaderName =
    HeaderName::from_static("x-amz-copy-source-server-side-encryption-customer-algorithm");
pub const X_AMZ_CHECKSUM_ALGORITHM: HeaderName =
    HeaderName::from_static("x-amz-checksum-algorithm");
pub const X_AMZ_CHECKSUM_PREFIX: &str = "x-amz-checksum-";
pub const X_AMZ_SDK_CHECKSUM_ALGORITHM: HeaderName =
    HeaderName::from_static("x-amz-sdk-checksum-algorithm");
pub const X_AMZ_CHECKSUM_MODE: HeaderName = HeaderName::from_static("x-amz-checksum-mode");
pub const X_AMZ_META_PREFIX: &str = "x-amz-meta-";
/// The object's envelope (format v1), one user-metadata entry. Never shown to clients,
/// never accepted from them.
pub const X_AMZ_META_ENVELOPE: HeaderName = HeaderName::from_static("x-amz-meta-sealgate-envelope");
/// Every metadata name under this prefix is reserved for the proxy.
pub const RESERVED_META_PREFIX: &str = "x-amz-meta-sealgate-";

pub const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
pub const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
pub const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
pub const X_AMZ_DECODED_CONTENT_LENGTH: HeaderName =
    HeaderName::from_static("x-amz-decoded-content-length");
pub const X_AMZ_TRAILER: HeaderName = HeaderName::from_static("x-amz-trailer");
pub const X_AMZ_TRAILER_SIGNATURE: HeaderName = HeaderName::from_static("x-amz-trailer-signature");
pub const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");
pub const X_AMZ_COPY_SOURCE: HeaderName = HeaderName::from_static("x-amz-copy-source");
pub const X_AMZ_REQUEST_ROUTE: HeaderName = HeaderName::from_static("x-amz-request-route");

/// True for request or response headers that name server-side encryption.
pub fn is_sse_header(name: &str) -> bool {
    name.starts_with(X_AMZ_SSE.as_str())
        || name.starts_with("x-amz-copy-source-server-side-encryption")
}
