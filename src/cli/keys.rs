//! Keys for the operator tools: the configured KMS, opened without side effects (a tool
//! never creates a master key), and an object's data key recovered from its envelope
//! exactly as the proxy's read path does (same KMS key id, blob and encryption
//! context), then checked against the envelope's commitment and MAC.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::ToolError;
use crate::config::{Config, KmsKind};
use crate::crypto::{DataKey, Envelope, WrappingKey};
use crate::kms::{EncryptionContext, Kms, aws::AwsEnv, local::LocalKms};

/// The local master key path the proxy uses: `kms.master_key_file`, else
/// `master.key` in the embedded data directory.
pub fn master_key_path(config: &Config) -> PathBuf {
    config
        .kms
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.embedded.data_dir.join("master.key"))
}

/// The AWS credential variables of this process, for an `aws` KMS without keys in
/// the config (the proxy reads the same ones at start).
pub fn aws_env() -> AwsEnv {
    AwsEnv {
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
            .ok()
            .map(Zeroizing::new),
        session_token: std::env::var("AWS_SESSION_TOKEN").ok().map(Zeroizing::new),
    }
}

/// The configured KMS. The local kind opens the existing master key file only.
pub fn open_kms(config: &Config) -> Result<Arc<dyn Kms>, ToolError> {
    match config.kms.kind {
        KmsKind::Local => {
            let path = master_key_path(config);
            let kms = LocalKms::open(&path)
                .map_err(|e| ToolError::Other(format!("unreadable master key: {e}")))?;
            Ok(Arc::new(kms))
        }
        KmsKind::Aws => {
            let mut kms_config = config.kms.clone();
            kms_config.master_key_file = None;
            Ok(crate::kms::from_config(&kms_config, &aws_env())?)
        }
    }
}

/// The object's data key: the wrapping key from the KMS (bucket key under the
/// bucket's context, or the object's own KMS data key under the object's context),
/// then the envelope opened for exactly this bucket and key.
pub async fn object_data_key(
    kms: &dyn Kms,
    bucket: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<DataKey, ToolError> {
    if envelope.is_customer_key() {
        return Err(ToolError::Other(
            "the object is protected by a customer-provided key (SSE-C); \
             this tool cannot decrypt it"
                .into(),
        ));
    }
    let context = if envelope.bucket_key() {
        EncryptionContext::for_bucket(bucket)
    } else {
        EncryptionContext::for_object(bucket, key)
    };
    let w = kms
        .decrypt(envelope.kms_key_id(), envelope.kms_blob(), &context)
        .await?;
    let w = WrappingKey::from_bytes(*w);
    Ok(envelope.open(&w, bucket, key)?)
}
