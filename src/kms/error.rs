//! [`KmsError`]: what went wrong in KMS terms, plus the S3 code and status S3 itself
//! answers with when its KMS call fails that way, so the service maps it in one line.
//! Messages carry the KMS's own text for logs; they never hold key material.

use http::StatusCode;

/// A failed KMS operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// The KMS asked us to slow down (`ThrottlingException`, HTTP 429).
    #[error("KMS throttled the request: {0}")]
    Throttled(String),
    /// The KMS could not be reached or answered 5xx other than an internal exception.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// No answer within the per-call timeout.
    #[error("KMS call timed out")]
    Timeout,
    /// The KMS reported an internal failure (`KMSInternalException`, `DependencyTimeoutException`).
    #[error("KMS internal error: {0}")]
    Internal(String),
    /// The key is disabled (`DisabledException`).
    #[error("KMS key is disabled: {0}")]
    Disabled(String),
    /// The key is not in a usable state, e.g. pending deletion (`KMSInvalidStateException`).
    #[error("KMS key is in an invalid state: {0}")]
    InvalidState(String),
    /// The key does not exist (`NotFoundException`).
    #[error("KMS key not found: {0}")]
    NotFound(String),
    /// Our credentials may not use the key (`AccessDeniedException`, 403, bad signature).
    #[error("KMS access denied: {0}")]
    AccessDenied(String),
    /// The blob is not one this key made under this context, or was altered
    /// (`InvalidCiphertextException`, `IncorrectKeyException`).
    #[error("KMS rejected the ciphertext: {0}")]
    InvalidCiphertext(String),
    /// The KMS answered something we cannot use (bad JSON, wrong key length, an
    /// unexpected 4xx): a bug or incompatibility on one side, not the client's fault.
    #[error("unusable KMS response: {0}")]
    Protocol(String),
}

impl KmsError {
    /// The S3 error code S3 answers with for this KMS failure.
    pub fn s3_code(&self) -> &'static str {
        match self {
            KmsError::Throttled(_) => "SlowDown",
            KmsError::Unavailable(_) | KmsError::Timeout => "ServiceUnavailable",
            KmsError::Internal(_) => "KMS.KMSInternalException",
            KmsError::Disabled(_) => "KMS.DisabledException",
            KmsError::InvalidState(_) => "KMS.KMSInvalidStateException",
            KmsError::NotFound(_) => "KMS.NotFoundException",
            KmsError::AccessDenied(_) => "AccessDenied",
            KmsError::InvalidCiphertext(_) => "KMS.InvalidCiphertextException",
            KmsError::Protocol(_) => "InternalError",
        }
    }

    /// The HTTP status that goes with [`KmsError::s3_code`].
    pub fn status(&self) -> StatusCode {
        match self {
            KmsError::Throttled(_)
            | KmsError::Unavailable(_)
            | KmsError::Timeout
            | KmsError::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
            KmsError::Disabled(_)
            | KmsError::InvalidState(_)
            | KmsError::NotFound(_)
            | KmsError::InvalidCiphertext(_) => StatusCode::BAD_REQUEST,
            KmsError::AccessDenied(_) => StatusCode::FORBIDDEN,
            KmsError::Protocol(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `result` label of `sealgate_kms_requests_total` (`ok` is the success value).
    pub fn metric_result(&self) -> &'static str {
        match self {
            KmsError::Throttled(_) => "throttled",
            KmsError::Unavailable(_) => "unavailable",
            KmsError::Timeout => "timeout",
            KmsError::Internal(_) => "internal",
            KmsError::Disabled(_) => "disabled",
            KmsError::InvalidState(_) => "invalid_state",
            KmsError::NotFound(_) => "not_found",
            KmsError::AccessDenied(_) => "access_denied",
            KmsError::InvalidCiphertext(_) => "invalid_ciphertext",
            KmsError::Protocol(_) => "protocol",
        }
    }

    /// Worth another attempt: the same request may succeed a moment later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            KmsError::Throttled(_)
                | KmsError::Unavailable(_)
                | KmsError::Timeout
                | KmsError::Internal(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_as_s3_does() {
        let cases = [
            (KmsError::Throttled(String::new()), "SlowDown", 503),
            (KmsError::Timeout, "ServiceUnavailable", 503),
            (
                KmsError::Disabled(String::new()),
                "KMS.DisabledException",
                400,
            ),
            (
                KmsError::NotFound(String::new()),
                "KMS.NotFoundException",
                400,
            ),
            (KmsError::AccessDenied(String::new()), "AccessDenied", 403),
            (
                KmsError::InvalidCiphertext(String::new()),
                "KMS.InvalidCiphertextException",
                400,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.s3_code(), code);
            assert_eq!(err.status().as_u16(), status);
        }
    }
}
