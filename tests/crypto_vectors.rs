//! Wycheproof AES-GCM vectors against the AES-GCM sealgate uses in production
//! (aws-lc-rs `LessSafeKey`, sealed and opened in place exactly as `crypto::segment` does).
//!
//! Every 96-bit-IV, 128-bit-tag case with a 128- or 256-bit key is run (the format uses
//! 256-bit keys; 128-bit keys go through the same code path). Cases with other IV sizes
//! must be refused by the nonce constructor, never truncated or padded.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    #[serde(rename = "testGroups")]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(rename = "keySize")]
    key_size: u32,
    #[serde(rename = "ivSize")]
    iv_size: u32,
    #[serde(rename = "tagSize")]
    tag_size: u32,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

const VECTORS: &str = include_str!("vectors/aes-gcm/aes_gcm_test.json");

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

fn key(case: &Case) -> LessSafeKey {
    let k = h(&case.key);
    let alg = if k.len() == 32 {
        &AES_256_GCM
    } else {
        &AES_128_GCM
    };
    LessSafeKey::new(UnboundKey::new(alg, &k).expect("key"))
}

#[test]
fn wycheproof_aes_gcm() {
    let file: File = serde_json::from_str(VECTORS).expect("vector file");
    let (mut valid, mut invalid, mut refused) = (0, 0, 0);
    for group in &file.groups {
        if group.tag_size != 128 || !matches!(group.key_size, 128 | 256) {
            continue;
        }
        for case in &group.tests {
            let iv = h(&case.iv);
            if group.iv_size != 96 {
                assert!(
                    Nonce::try_assume_unique_for_key(&iv).is_err(),
                    "tc {} iv {}",
                    case.id,
                    group.iv_size
                );
                refused += 1;
                continue;
            }
            let k = key(case);
            let aad = h(&case.aad);
            let expected = [h(&case.ct), h(&case.tag)].concat();
            let nonce = || Nonce::try_assume_unique_for_key(&iv).expect("96-bit nonce");
            if case.result == "valid" {
                let mut buf = h(&case.msg);
                let tag = k
                    .seal_in_place_separate_tag(nonce(), Aad::from(&aad), &mut buf)
                    .expect("seal");
                buf.extend_from_slice(tag.as_ref());
                assert_eq!(
                    hex::encode(&buf),
                    hex::encode(&expected),
                    "tc {} seal",
                    case.id
                );
                let plain = k
                    .open_in_place(nonce(), Aad::from(&aad), &mut buf)
                    .expect("open");
                assert_eq!(hex::encode(plain), case.msg, "tc {} open", case.id);
                valid += 1;
            } else {
                let mut buf = expected;
                assert!(
                    k.open_in_place(nonce(), Aad::from(&aad), &mut buf).is_err(),
                    "tc {} accepted",
                    case.id
                );
                invalid += 1;
            }
        }
    }
    // 256-bit: 66 cases with 96-bit IVs; 128-bit: 67. Every one must have run.
    assert_eq!(valid + invalid, 66 + 67);
    assert!(invalid > 0 && refused > 0);
}
