//! The object surface around encrypted objects, through the proxy with real boto3
//! (`tests/common/object_surface.py`, one scenario per run):
//! - `partNumber` edge cases: part 1 of a single PUT is the whole object (206), part 2
//!   is `416 InvalidPartNumber`, 0 / 10001 / `abc` are `400 InvalidArgument`, with a
//!   Range `400 InvalidRequest`;
//! - GetObjectAttributes in plaintext terms (size, ETag, parts with paging, the stored
//!   plaintext checksum);
//! - flexible checksums CRC32, CRC32C, CRC64NVME, SHA1, SHA256 and Content-MD5 verified
//!   on the plaintext of PutObject and UploadPart (wrong values refused, nothing
//!   stored), returned with `x-amz-checksum-mode: ENABLED` on whole-object reads of
//!   single PUTs, never a backend checksum of ciphertext;
//! - conditional writes (`If-None-Match: *`, `If-Match`) on PutObject and
//!   CompleteMultipartUpload, and conditional reads (`If-Match`, `If-None-Match` and the
//!   two dates, with S3's precedence) on whole, ranged and `partNumber` GETs and HEADs;
//! - tagging and DeleteObjects.
//!
//! Backends: Ceph RGW 16.2 and the embedded one run every scenario but tagging, which
//! runs on Ceph and moto (s3s-fs has none). Ceph RGW 16.2 refuses `If-Match` on PUT even
//! with the current ETag (without the proxy too), so that one step is skipped there.

mod common;

use common::{Backend, Client, ClientEnv, ProxyOptions, TestProxy, unique_bucket};

const SCRIPT: &str = include_str!("common/object_surface.py");

fn run(backend: Option<Backend>, scenario: &str) {
    let Some(backend) = backend else { return };
    let started = std::time::Instant::now();
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket(&format!("surface-{scenario}"));
    env.run(Client::AwsCli, &["s3", "mb", &format!("s3://{bucket}")]);
    env.run_python(
        "object_surface.py",
        SCRIPT,
        &[scenario, &bucket, backend.name()],
    );
    env.run(
        Client::AwsCli,
        &["s3", "rb", "--force", &format!("s3://{bucket}")],
    );
    println!(
        "{scenario} on {}: {:.1}s",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
}

fn all_backends() -> Vec<Option<Backend>> {
    vec![Backend::ceph(), Backend::embedded()]
}

#[test]
fn part_number_edge_cases() {
    for b in all_backends() {
        run(b, "part-edges");
    }
}

#[test]
fn get_object_attributes_in_plaintext_terms() {
    for b in all_backends() {
        run(b, "attributes");
    }
}

#[test]
fn checksums_are_verified_and_returned_on_plaintext() {
    for b in all_backends() {
        run(b, "checksums");
    }
}

#[test]
fn conditional_writes_give_412() {
    for b in all_backends() {
        run(b, "conditional");
    }
}

#[test]
fn tagging_and_delete_objects() {
    // The embedded backend (s3s-fs) has no object tagging.
    for b in [Backend::ceph(), Backend::moto()] {
        run(b, "tagging");
    }
}
