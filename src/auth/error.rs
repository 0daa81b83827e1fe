//! Why a request failed authentication, in terms the pipeline can answer with.
//!
//! This module owns the mapping from an authentication failure to the exact S3 error
//! code, HTTP status and client-safe message S3 itself sends (so clients and their retry
//! logic behave as against S3), plus a short `reason` label for the
//! `sealgate_auth_failures_total{reason}` metric. It never carries secrets, signatures
//! or canonical requests: `Display` is shown to clients as is.
//! `s3/error.rs` turns an [`AuthError`] into S3 XML; this module knows no XML.

use http::StatusCode;

use super::checksum::ChecksumAlgorithm;

/// An authentication or body-verification failure. `Display` is the S3 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an Authorization header nor presigned query parameters.
    #[error("Access Denied")]
    Missing,
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    UnknownAccessKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureMismatch,
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    #[error("Request has expired")]
    Expired,
    /// A presigned URL whose X-Amz-Date lies in the future beyond the allowed skew.
    #[error("Request is not valid yet")]
    NotYetValid,
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    MissingDate,
    /// A malformed SigV4 or SigV2 Authorization header; the text says which part.
    #[error("The authorization header is malformed; {0}")]
    HeaderMalformed(&'static str),
    /// Malformed or incomplete presigned (query string) authentication.
    #[error("{0}")]
    QueryMalformed(&'static str),
    #[error("Missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
    )]
    InvalidContentSha256,
    /// An Authorization scheme that is neither SigV4 nor SigV2 (SigV4a included).
    #[error("Unsupported Authorization Type")]
    UnsupportedAuthorization,
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"
    )]
    MultipleAuth,
    /// SigV2 while the proxy accepts SigV4 only (S3's answer in SigV4-only regions).
    #[error(
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
    )]
    SigV2Disabled,
    /// An `x-amz-*` header the signature does not cover (it could have been added by
    /// anyone on the path: a copy source, an SSE key id, metadata…).
    #[error("There were headers present in the request which were not signed")]
    UnsignedHeaders,
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidContentMd5,
    #[error("The Content-MD5 you specified did not match what we received.")]
    ContentMd5Mismatch,
    #[error("The {} you specified did not match the calculated checksum.", .0.display_name())]
    ChecksumMismatch(ChecksumAlgorithm),
    #[error("Value for {} header is invalid.", .0.header_name())]
    ChecksumMalformed(ChecksumAlgorithm),
    /// A checksum request S3 refuses: several algorithms, an unknown one, a trailer
    /// that was announced but not sent or sent but not announced.
    #[error("{0}")]
    ChecksumRequest(&'static str),
    /// aws-chunked without `x-amz-decoded-content-length`.
    #[error("You must provide the Content-Length HTTP header.")]
    MissingDecodedLength,
    /// A header that must hold a number or a known token does not.
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// The body ended before, or went on after, its declared length.
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header")]
    IncompleteBody,
    /// The aws-chunked framing is broken (bad hex, missing CRLF, data after the end…).
    #[error("The aws-chunked request body is malformed: {0}.")]
    ChunkMalformed(&'static str),
    /// A chunk larger than the proxy accepts in one piece.
    #[error("Your proposed upload exceeds the maximum allowed size")]
    ChunkTooLarge,
    /// The client's body could not be read (disconnect, transport error).
    #[error("The request body terminated unexpectedly")]
    BodyRead,
    /// The client stopped sending its body for longer than `server.stall_timeout_secs`.
    #[error(
        "Your socket connection to the server was not read from or written to within the timeout period."
    )]
    BodyStalled,
}

impl AuthError {
    /// The S3 error code, exactly as S3 spells it.
    pub fn s3_code(&self) -> &'static str {
        use AuthError::*;
        match self {
            Missing | Expired | NotYetValid | MissingDate | UnsignedHeaders => "AccessDenied",
            UnknownAccessKey => "InvalidAccessKeyId",
            SignatureMismatch => "SignatureDoesNotMatch",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            HeaderMalformed(_) => "AuthorizationHeaderMalformed",
            QueryMalformed(_) => "AuthorizationQueryParametersError",
            MissingContentSha256 | SigV2Disabled | ChecksumMalformed(_) | ChecksumRequest(_)
            | ChunkMalformed(_) => "InvalidRequest",
            InvalidContentSha256 | UnsupportedAuthorization | MultipleAuth | InvalidArgument(_) => {
                "InvalidArgument"
            }
            ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            InvalidContentMd5 => "InvalidDigest",
            ContentMd5Mismatch | ChecksumMismatch(_) => "BadDigest",
            MissingDecodedLength => "MissingContentLength",
            IncompleteBody | BodyRead => "IncompleteBody",
            ChunkTooLarge => "EntityTooLarge",
            BodyStalled => "RequestTimeout",
        }
    }

    /// The HTTP status S3 answers this error with.
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            Missing | Expired | NotYetValid | MissingDate | UnknownAccessKey
            | SignatureMismatch | RequestTimeTooSkewed | UnsignedHeaders => StatusCode::FORBIDDEN,
            MissingDecodedLength => StatusCode::LENGTH_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        use AuthError::*;
        match self {
            Missing => "missing",
            UnknownAccessKey => "unknown_key",
            SignatureMismatch => "bad_signature",
            RequestTimeTooSkewed | NotYetValid => "skew",
            Expired => "expired",
            MissingDate | HeaderMalformed(_) | QueryMalformed(_) | MissingContentSha256
            | InvalidContentSha256 | MultipleAuth | InvalidArgument(_) => "malformed",
            UnsupportedAuthorization | SigV2Disabled => "unsupported",
            UnsignedHeaders => "unsigned_header",
            ContentSha256Mismatch => "payload_hash",
            InvalidContentMd5 | ContentMd5Mismatch | ChecksumMismatch(_) | ChecksumMalformed(_)
            | ChecksumRequest(_) => "checksum",
            MissingDecodedLength | IncompleteBody | ChunkMalformed(_) | ChunkTooLarge
            | BodyRead | BodyStalled => "body",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_mismatch_names_the_algorithm_like_s3() {
        let e = AuthError::ChecksumMismatch(ChecksumAlgorithm::Crc32);
        assert_eq!(
            e.to_string(),
            "The CRC32 you specified did not match the calculated checksum."
        );
        assert_eq!(e.s3_code(), "BadDigest");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn auth_failures_are_forbidden_and_length_is_required() {
        assert_eq!(AuthError::SignatureMismatch.status(), StatusCode::FORBIDDEN);
        assert_eq!(AuthError::Expired.s3_code(), "AccessDenied");
        assert_eq!(
            AuthError::MissingDecodedLength.status(),
            StatusCode::LENGTH_REQUIRED
        );
        assert_eq!(
            AuthError::HeaderMalformed("x").s3_code(),
            "AuthorizationHeaderMalformed"
        );
    }
}
