use super::*;
use crate::config::{KmsConfig, KmsKind};

#[tokio::test]
async fn local_backend_from_config_creates_its_master_key() {
    let Ok(tmp) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let config = KmsConfig {
        master_key_file: Some(tmp.path().join("kms/master.key")),
        ..KmsConfig::default()
    };
    let Ok(kms) = from_config(&config, &aws::AwsEnv::default()) else {
        panic!("local from config")
    };
    assert_eq!(kms.name(), "local");
    let ctx = EncryptionContext::for_bucket("b");
    let Ok(key) = kms.generate_data_key(&config.key_id, &ctx).await else {
        panic!("generate")
    };
    assert!(
        kms.decrypt(&config.key_id, &key.ciphertext_blob, &ctx)
            .await
            .is_ok()
    );
}

#[test]
fn local_backend_needs_a_master_key_path() {
    let err = from_config(&KmsConfig::default(), &aws::AwsEnv::default()).err();
    assert!(err.is_some_and(|e| e.to_string().starts_with("kms.master_key_file")));
}

#[test]
fn aws_credentials_come_from_config_then_from_the_callers_env() {
    let base = KmsConfig {
        kind: KmsKind::Aws,
        region: Some("eu-west-1".into()),
        ..KmsConfig::default()
    };
    let env = aws::AwsEnv {
        access_key_id: Some("ENVKEY".into()),
        secret_access_key: Some(Zeroizing::new("envsecret".into())),
        session_token: Some(Zeroizing::new("token".into())),
    };
    let Ok(from_env) = aws::AwsKmsConfig::from_kms_config(&base, &env) else {
        panic!("env credentials")
    };
    assert_eq!(from_env.credentials.access_key_id, "ENVKEY");
    assert!(from_env.credentials.session_token.is_some());
    assert_eq!(from_env.region, "eu-west-1");

    let explicit = KmsConfig {
        access_key: Some("CFGKEY".into()),
        secret_key: Some("cfgsecret".into()),
        timeout_ms: 750,
        max_retries: 2,
        ..base.clone()
    };
    let Ok(from_cfg) = aws::AwsKmsConfig::from_kms_config(&explicit, &env) else {
        panic!("config credentials")
    };
    assert_eq!(from_cfg.credentials.access_key_id, "CFGKEY");
    assert!(from_cfg.credentials.session_token.is_none());
    assert_eq!(from_cfg.timeout, std::time::Duration::from_millis(750));
    assert_eq!(from_cfg.max_retries, 2);

    let none = aws::AwsKmsConfig::from_kms_config(&base, &aws::AwsEnv::default()).err();
    assert!(none.is_some_and(|e| e.to_string().starts_with("kms.access_key")));
    let half = KmsConfig {
        access_key: Some("CFGKEY".into()),
        ..base
    };
    assert!(aws::AwsKmsConfig::from_kms_config(&half, &env).is_err());
    assert!(from_config(&explicit, &env).is_ok_and(|k| k.name() == "aws"));
}
