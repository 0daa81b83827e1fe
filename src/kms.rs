//! The top of the key hierarchy: KMS backends behind one dyn-compatible trait.
//!
//! This module owns talking to a key management service and nothing else: it hands
//! out 32-byte data keys and unwraps them again, under an [`EncryptionContext`]
//! that binds each wrapped key to the bucket (or object) it protects, exactly as S3
//! does with SSE-KMS. It knows no client requests and no object format; caching the
//! keys is [`crate::cache`]'s job, and turning a [`KmsError`] into an S3 error
//! response is the service's, using [`KmsError::s3_code`] and [`KmsError::status`].
//!
//! Backends:
//! - [`local::LocalKms`]: a master key file on local disk, so the proxy runs with no
//!   external service;
//! - [`aws::AwsKms`]: the AWS KMS JSON API (AWS KMS or any compatible server),
//!   signed with SigV4.
//!
//! AWS reference: <https://docs.aws.amazon.com/kms/latest/APIReference/>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context>.

pub mod aws;
mod context;
mod error;
pub mod local;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use zeroize::Zeroizing;

pub use context::EncryptionContext;
pub use error::KmsError;

/// Length of every data key handed out: AES-256.
pub const DATA_KEY_LEN: usize = 32;

/// What every [`Kms`] method returns: a boxed future, so the trait stays
/// dyn-compatible and backends can be chosen at run time.
pub type KmsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KmsError>> + Send + 'a>>;

/// A key management service that makes and unwraps 256-bit data keys.
pub trait Kms: Send + Sync {
    /// A fresh random data key, in plaintext and wrapped under `key_id`, bound to
    /// `context` (AWS `GenerateDataKey` with `KeySpec: AES_256`).
    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, GeneratedKey>;

    /// Unwraps `blob`, which must have been made under `key_id` with exactly
    /// `context` (AWS `Decrypt`); anything else is [`KmsError::InvalidCiphertext`].
    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, Zeroizing<[u8; DATA_KEY_LEN]>>;

    /// Whether `key_id` exists and is usable (AWS `DescribeKey`); `/readyz` uses it.
    fn describe_key<'a>(&'a self, key_id: &'a str) -> KmsFuture<'a, KeyInfo>;

    /// Short backend name for logs and metrics: `local`, `aws`.
    fn name(&self) -> &'static str;

    /// Hands the backend the counter for its own retries
    /// (`sealgate_kms_retries_total{op,reason}`); backends that never retry ignore it.
    fn attach_retry_counter(&self, _retries: prometheus::IntCounterVec) {}
}

/// A data key as [`Kms::generate_data_key`] returns it.
pub struct GeneratedKey {
    /// The key itself; zeroized on drop, never logged.
    pub plaintext: Zeroizing<[u8; DATA_KEY_LEN]>,
    /// The key wrapped by the KMS; safe to store next to the data.
    pub ciphertext_blob: Vec<u8>,
    /// The KMS key id as the KMS reports it (for AWS the full key ARN).
    pub key_id: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("plaintext", &"<redacted>")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// What [`Kms::describe_key`] learns about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id as the KMS reports it (for AWS the key ARN).
    pub key_id: String,
    /// The key can be used for cryptographic operations now.
    pub is_enabled: bool,
    /// The KMS's own state name (`Enabled`, `Disabled`, `PendingDeletion`, …).
    pub state: String,
}

/// Why a KMS backend could not be built from configuration; names the config key.
#[derive(Debug, thiserror::Error)]
pub enum KmsBuildError {
    #[error("kms.master_key_file: {0}")]
    Local(#[from] local::LocalKmsError),
    #[error("{0}")]
    Aws(#[from] aws::AwsKmsConfigError),
    #[error("{key}: {problem}")]
    Missing {
        key: &'static str,
        problem: &'static str,
    },
}

/// Builds the configured backend. `env` carries the caller's view of the AWS
/// credential variables (this module never reads the environment itself); they are
/// used only where the config leaves a value unset.
pub fn from_config(
    config: &crate::config::KmsConfig,
    env: &aws::AwsEnv,
) -> Result<Arc<dyn Kms>, KmsBuildError> {
    match config.kind {
        crate::config::KmsKind::Local => {
            let path = config
                .master_key_file
                .as_deref()
                .ok_or(KmsBuildError::Missing {
                    key: "kms.master_key_file",
                    problem: "required for kind = \"local\"",
                })?;
            Ok(Arc::new(local::LocalKms::open_or_create(path)?))
        }
        crate::config::KmsKind::Aws => {
            let aws_config = aws::AwsKmsConfig::from_kms_config(config, env)?;
            Ok(Arc::new(aws::AwsKms::new(aws_config)?))
        }
    }
}

#[cfg(test)]
mod tests;
