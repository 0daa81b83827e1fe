use std::os::unix::fs::PermissionsExt;

use super::*;

fn kms() -> LocalKms {
    LocalKms::from_master_key(Zeroizing::new([7u8; 32]))
}

async fn generate(kms: &LocalKms, id: &str, ctx: &EncryptionContext) -> GeneratedKey {
    match kms.generate_data_key(id, ctx).await {
        Ok(k) => k,
        Err(e) => panic!("generate failed: {e}"),
    }
}

#[tokio::test]
async fn round_trip_returns_the_generated_key() {
    let kms = kms();
    let ctx = EncryptionContext::for_bucket("photos");
    let key = generate(&kms, "alpha", &ctx).await;
    assert_eq!(key.key_id, "alpha");
    let back = kms.decrypt("alpha", &key.ciphertext_blob, &ctx).await;
    assert_eq!(back.ok().map(|k| *k), Some(*key.plaintext));
    // An empty key id means "the key that made the blob", as in AWS.
    let back = kms.decrypt("", &key.ciphertext_blob, &ctx).await;
    assert_eq!(back.ok().map(|k| *k), Some(*key.plaintext));
    assert_eq!((kms.calls_generate(), kms.calls_decrypt()), (1, 2));
}

#[tokio::test]
async fn keys_are_fresh_and_blobs_differ() {
    let kms = kms();
    let ctx = EncryptionContext::for_bucket("b");
    let a = generate(&kms, "k", &ctx).await;
    let b = generate(&kms, "k", &ctx).await;
    assert_ne!(*a.plaintext, *b.plaintext);
    assert_ne!(a.ciphertext_blob, b.ciphertext_blob);
}

#[tokio::test]
async fn wrong_context_is_invalid_ciphertext() {
    let kms = kms();
    let key = generate(&kms, "k", &EncryptionContext::for_bucket("a")).await;
    let err = kms
        .decrypt(
            "k",
            &key.ciphertext_blob,
            &EncryptionContext::for_bucket("b"),
        )
        .await
        .err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
    let err = kms
        .decrypt("k", &key.ciphertext_blob, &EncryptionContext::new())
        .await
        .err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_key_id_is_invalid_ciphertext() {
    let kms = kms();
    let ctx = EncryptionContext::for_bucket("a");
    let key = generate(&kms, "k1", &ctx).await;
    let err = kms.decrypt("k2", &key.ciphertext_blob, &ctx).await.err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
    // Rewriting the key id inside the blob changes the KEK and the AAD: still refused.
    let mut forged = key.ciphertext_blob.clone();
    forged[4] = b'2';
    let err = kms.decrypt("k2", &forged, &ctx).await.err();
    assert!(
        matches!(err, Some(KmsError::InvalidCiphertext(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn any_flipped_blob_byte_or_truncation_is_refused() {
    let kms = kms();
    let ctx = EncryptionContext::for_bucket("a");
    let key = generate(&kms, "k", &ctx).await;
    for i in 0..key.ciphertext_blob.len() {
        let mut blob = key.ciphertext_blob.clone();
        blob[i] ^= 0x01;
        let err = kms.decrypt("", &blob, &ctx).await.err();
        assert!(
            matches!(err, Some(KmsError::InvalidCiphertext(_))),
            "byte {i}: {err:?}"
        );
    }
    for len in 0..key.ciphertext_blob.len() {
        let err = kms
            .decrypt("k", &key.ciphertext_blob[..len], &ctx)
            .await
            .err();
        assert!(
            matches!(err, Some(KmsError::InvalidCiphertext(_))),
            "len {len}: {err:?}"
        );
    }
}

#[tokio::test]
async fn another_master_key_cannot_unwrap() {
    let ctx = EncryptionContext::for_bucket("a");
    let key = generate(&kms(), "k", &ctx).await;
    let other = LocalKms::from_master_key(Zeroizing::new([8u8; 32]));
    assert!(
        other
            .decrypt("k", &key.ciphertext_blob, &ctx)
            .await
            .is_err()
    );
}

#[test]
fn master_key_file_is_created_0600_in_a_0700_dir() {
    let tmp = tempfile::tempdir().ok();
    let Some(tmp) = tmp else { panic!("tempdir") };
    let dir = tmp.path().join("keys");
    let path = dir.join("master.key");
    assert!(LocalKms::open_or_create(&path).is_ok());
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    assert_eq!(mode(&path), Some(0o600));
    assert_eq!(mode(&dir), Some(0o700));
    assert_eq!(std::fs::metadata(&path).map(|m| m.len()).ok(), Some(32));
    // keygen refuses to overwrite.
    assert!(matches!(
        LocalKms::create_master_key_file(&path),
        Err(LocalKmsError::Exists { .. })
    ));
}

#[tokio::test]
async fn reopened_master_key_unwraps_old_blobs() {
    let Ok(tmp) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = tmp.path().join("master.key");
    let Ok(first) = LocalKms::open_or_create(&path) else {
        panic!("create")
    };
    let ctx = EncryptionContext::for_bucket("a");
    let key = generate(&first, "k", &ctx).await;
    let Ok(second) = LocalKms::open_or_create(&path) else {
        panic!("reopen")
    };
    let back = second.decrypt("k", &key.ciphertext_blob, &ctx).await;
    assert_eq!(back.ok().map(|k| *k), Some(*key.plaintext));
}

#[test]
fn loose_permissions_and_wrong_sizes_are_refused() {
    let Ok(tmp) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = tmp.path().join("master.key");
    assert!(LocalKms::create_master_key_file(&path).is_ok());
    for mode in [0o640, 0o604, 0o644] {
        assert!(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).is_ok());
        assert!(
            matches!(
                LocalKms::open(&path),
                Err(LocalKmsError::LoosePermissions { .. })
            ),
            "mode {mode:o}"
        );
    }
    assert!(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).is_ok());
    assert!(LocalKms::open(&path).is_ok());

    let short = tmp.path().join("short.key");
    assert!(std::fs::write(&short, [1u8; 31]).is_ok());
    assert!(std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).is_ok());
    assert!(matches!(
        LocalKms::open(&short),
        Err(LocalKmsError::WrongSize { len: 31, .. })
    ));
    assert!(matches!(
        LocalKms::open(tmp.path()),
        Err(LocalKmsError::NotAFile { .. } | LocalKmsError::LoosePermissions { .. })
    ));
}

#[test]
fn debug_output_hides_the_master_key() {
    let text = format!("{:?}", kms());
    assert!(text.contains("redacted"));
    assert!(!text.contains("7, 7"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let Ok(rt) = rt else { panic!("runtime") };
        rt.block_on(f)
    }

    proptest! {
        #[test]
        fn arbitrary_blobs_are_refused_without_panicking(
            blob in proptest::collection::vec(any::<u8>(), 0..200),
            id in "[a-z0-9/:-]{0,40}",
        ) {
            let kms = kms();
            let ctx = EncryptionContext::for_bucket("b");
            let result = block_on(kms.decrypt(&id, &blob, &ctx));
            prop_assert!(matches!(result, Err(KmsError::InvalidCiphertext(_))));
        }

        #[test]
        fn round_trips_for_any_key_id_and_context(
            id in "[ -~]{1,100}",
            pairs in proptest::collection::btree_map("[ -~]{0,20}", "[ -~]{0,40}", 0..5),
        ) {
            let kms = kms();
            let ctx: EncryptionContext = pairs.into_iter().collect();
            let key = block_on(kms.generate_data_key(&id, &ctx));
            let Ok(key) = key else { panic!("generate") };
            let back = block_on(kms.decrypt(&id, &key.ciphertext_blob, &ctx));
            prop_assert_eq!(back.ok().map(|k| *k), Some(*key.plaintext));
        }
    }
}
