//! CopyObject and UploadPartCopy through the proxy against Ceph RGW, moto and the
//! embedded backend, with boto3 and the aws CLI: server-side re-keys between buckets
//! under different KMS keys move no object bytes (the proxy's copy byte counter), the
//! copy's envelope names the destination key and a tampered one fails the read,
//! metadata directives, the four copy-source conditions, plaintext sources sealed on
//! copy, multipart sources copied as a grid (ranges read), rotation by copy to itself
//! and its S3 error when nothing changes, UploadPartCopy with ranges, `aws s3 cp`
//! between buckets (UploadPartCopy above its threshold).
//! The scenario itself is `rekey_support/driver.py` (`copy`).

mod common;
mod rekey_support;

use common::{Backend, unique_bucket};
use rekey_support::{Policy, Proxy, config, driver_env, run_driver, scratch};

fn copy_matrix(backend: &Backend) {
    let dir = scratch();
    let (a, b, plain) = (
        unique_bucket("copy-a"),
        unique_bucket("copy-b"),
        unique_bucket("copy-plain"),
    );
    let (key_a, key_b) = ("copy-test-key-a", "copy-test-key-b");
    let policies = [
        Policy {
            bucket: a.clone(),
            encrypt: true,
            kms_key_id: Some(key_a.into()),
        },
        Policy {
            bucket: b.clone(),
            encrypt: true,
            kms_key_id: Some(key_b.into()),
        },
        Policy {
            bucket: plain.clone(),
            encrypt: false,
            kms_key_id: None,
        },
    ];
    let proxy = Proxy::start(config(backend, dir.path(), &policies));
    let env = driver_env(
        &proxy,
        backend,
        &[
            ("SG_BUCKET_A", a),
            ("SG_BUCKET_B", b),
            ("SG_BUCKET_PLAIN", plain),
            ("SG_KEY_A", key_a.into()),
            ("SG_KEY_B", key_b.into()),
        ],
    );
    run_driver(dir.path(), "copy", &env);
}

#[test]
fn copies_on_ceph() {
    let backend = require!(Backend::ceph());
    copy_matrix(&backend);
}

#[test]
fn copies_on_moto() {
    let backend = require!(Backend::moto());
    copy_matrix(&backend);
}

#[test]
fn copies_on_embedded() {
    let backend = require!(Backend::embedded());
    copy_matrix(&backend);
}
