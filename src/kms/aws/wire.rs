//! The AWS KMS JSON protocol (`application/x-amz-json-1.1`, `X-Amz-Target:
//! TrentService.<Operation>`): request bodies, response bodies, and error answers
//! mapped to [`KmsError`] from their `__type` field.
//! <https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html>

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::kms::{DATA_KEY_LEN, EncryptionContext, KmsError};

pub const TARGET_GENERATE_DATA_KEY: &str = "TrentService.GenerateDataKey";
pub const TARGET_DECRYPT: &str = "TrentService.Decrypt";
pub const TARGET_DESCRIBE_KEY: &str = "TrentService.DescribeKey";

fn context_map(context: &EncryptionContext) -> Option<std::collections::BTreeMap<&str, &str>> {
    (!context.is_empty()).then(|| context.iter().collect())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyRequest<'a> {
    key_id: &'a str,
    key_spec: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest<'a> {
    ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyRequest<'a> {
    key_id: &'a str,
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, KmsError> {
    serde_json::to_vec(value).map_err(|e| KmsError::Protocol(format!("request encoding: {e}")))
}

pub fn generate_data_key_body(
    key_id: &str,
    context: &EncryptionContext,
) -> Result<Vec<u8>, KmsError> {
    to_json(&GenerateDataKeyRequest {
        key_id,
        key_spec: "AES_256",
        encryption_context: context_map(context),
    })
}

pub fn decrypt_body(
    key_id: &str,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<Vec<u8>, KmsError> {
    to_json(&DecryptRequest {
        ciphertext_blob: B64.encode(blob),
        // As in the AWS API, no KeyId lets KMS pick the key recorded in the blob.
        key_id: (!key_id.is_empty()).then_some(key_id),
        encryption_context: context_map(context),
    })
}

pub fn describe_key_body(key_id: &str) -> Result<Vec<u8>, KmsError> {
    to_json(&DescribeKeyRequest { key_id })
}

/// Plaintext fields are borrowed from the response buffer (itself zeroized on drop)
/// rather than copied into a `String` that would linger in freed memory.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyResponse<'a> {
    ciphertext_blob: &'a str,
    plaintext: &'a str,
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptResponse<'a> {
    plaintext: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyResponse {
    key_metadata: KeyMetadata,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadata {
    key_id: String,
    arn: Option<String>,
    enabled: bool,
    key_state: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, KmsError> {
    serde_json::from_slice(body).map_err(|e| KmsError::Protocol(format!("response: {e}")))
}

fn decode_key(b64: &str) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, KmsError> {
    let bytes = Zeroizing::new(
        B64.decode(b64)
            .map_err(|_| KmsError::Protocol("Plaintext is not base64".into()))?,
    );
    let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    if bytes.len() != DATA_KEY_LEN {
        return Err(KmsError::Protocol(format!(
            "Plaintext is {} bytes, expected {DATA_KEY_LEN}",
            bytes.len()
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

pub fn parse_generate_data_key(body: &[u8]) -> Result<crate::kms::GeneratedKey, KmsError> {
    let r: GenerateDataKeyResponse<'_> = parse(body)?;
    let ciphertext_blob = B64
        .decode(r.ciphertext_blob)
        .map_err(|_| KmsError::Protocol("CiphertextBlob is not base64".into()))?;
    Ok(crate::kms::GeneratedKey {
        plaintext: decode_key(r.plaintext)?,
        ciphertext_blob,
        key_id: r.key_id,
    })
}

pub fn parse_decrypt(body: &[u8]) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, KmsError> {
    let r: DecryptResponse<'_> = parse(body)?;
    decode_key(r.plaintext)
}

pub fn parse_describe_key(body: &[u8]) -> Result<crate::kms::KeyInfo, KmsError> {
    let r: DescribeKeyResponse = parse(body)?;
    let m = r.key_metadata;
    let state = m
        .key_state
        .unwrap_or_else(|| if m.enabled { "Enabled" } else { "Disabled" }.into());
    Ok(crate::kms::KeyInfo {
        key_id: m.arn.unwrap_or(m.key_id),
        is_enabled: m.enabled && state == "Enabled",
        state,
    })
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    error_type: String,
    #[serde(alias = "Message", default)]
    message: String,
}

/// Maps a non-2xx answer. The type comes from `__type` (`com.amazonaws.kms#NotFoundException`
/// or bare), else from the `x-amzn-ErrorType` header; the status decides when neither helps.
pub fn map_error(status: StatusCode, header_type: Option<&str>, body: &[u8]) -> KmsError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let raw_type = if parsed.error_type.is_empty() {
        header_type.unwrap_or_default()
    } else {
        parsed.error_type.as_str()
    };
    let error_type = raw_type
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default();
    let detail = if parsed.message.is_empty() {
        format!("HTTP {} {error_type}", status.as_u16())
    } else {
        format!("{error_type}: {}", parsed.message)
    };
    match error_type {
        "ThrottlingException" | "RequestLimitExceeded" => KmsError::Throttled(detail),
        "KMSInternalException" | "DependencyTimeoutException" => KmsError::Internal(detail),
        "KeyUnavailableException" | "ServiceUnavailable" | "ServiceUnavailableException" => {
            KmsError::Unavailable(detail)
        }
        "DisabledException" => KmsError::Disabled(detail),
        "KMSInvalidStateException" => KmsError::InvalidState(detail),
        "NotFoundException" => KmsError::NotFound(detail),
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredTokenException" => KmsError::AccessDenied(detail),
        "InvalidCiphertextException" | "IncorrectKeyException" => {
            KmsError::InvalidCiphertext(detail)
        }
        _ if status == StatusCode::TOO_MANY_REQUESTS => KmsError::Throttled(detail),
        _ if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => {
            KmsError::AccessDenied(detail)
        }
        _ if status.is_server_error() => KmsError::Unavailable(detail),
        _ => KmsError::Protocol(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_map_with_or_without_namespace() {
        let cases: [(&str, u16, &str); 8] = [
            (
                r#"{"__type":"ThrottlingException","message":"x"}"#,
                400,
                "throttled",
            ),
            (
                r#"{"__type":"com.amazonaws.kms#NotFoundException"}"#,
                400,
                "not_found",
            ),
            (r#"{"__type":"DisabledException"}"#, 400, "disabled"),
            (
                r#"{"__type":"InvalidCiphertextException"}"#,
                400,
                "invalid_ciphertext",
            ),
            (r#"{"__type":"KMSInternalException"}"#, 500, "internal"),
            (
                r#"{"__type":"AccessDeniedException"}"#,
                400,
                "access_denied",
            ),
            ("<html>bad gateway</html>", 502, "unavailable"),
            ("", 429, "throttled"),
        ];
        for (body, status, want) in cases {
            let Ok(status) = StatusCode::from_u16(status) else {
                panic!("status")
            };
            assert_eq!(
                map_error(status, None, body.as_bytes()).metric_result(),
                want,
                "{body}"
            );
        }
        let e = map_error(
            StatusCode::BAD_REQUEST,
            Some("NotFoundException:http://internal.amazon.com/"),
            b"",
        );
        assert_eq!(e.metric_result(), "not_found");
    }

    #[test]
    fn short_plaintext_is_a_protocol_error() {
        let body = br#"{"Plaintext":"AAAA","KeyId":"k"}"#;
        assert!(matches!(parse_decrypt(body), Err(KmsError::Protocol(_))));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_answers(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            status in 100u16..600,
        ) {
            let _ = parse_generate_data_key(&body);
            let _ = parse_decrypt(&body);
            let _ = parse_describe_key(&body);
            if let Ok(status) = StatusCode::from_u16(status) {
                let _ = map_error(status, std::str::from_utf8(&body).ok(), &body);
            }
        }
    }
}
