//! The embedded backend on its own (`sealgate::embedded`, the vendored s3s-fs), with
//! boto3 (`tests/common/embedded_backend.py`): whole and ranged reads of small, empty
//! and multi-chunk objects, metadata and content headers on GET and HEAD, a missing
//! key, nested keys, an overwrite, and a PUT refused for a wrong Content-MD5 that must
//! leave the object it would have replaced as it was, and date conditions on reads and
//! copy sources at the whole second of Last-Modified, read conditions before a Range,
//! a file placed in the backend's directory by hand, and aws-chunked bodies that do not
//! add up to their declared length (`IncompleteBody`). Through the proxy these are
//! masked (it checks digests itself and aborts the backend's upload), so they are
//! checked here, against the backend the proxy starts when none is configured. And
//! multipart uploads (`tests/common/embedded_multipart.py`): a part list S3 refuses is
//! refused without harm to the upload, gaps in part numbers are allowed, the ETag is
//! S3's, and nothing of a replaced object carries over. And deletes
//! (`tests/common/embedded_deletes.py`): nothing of a deleted object stays behind,
//! DeleteObjects answers each key on its own, DeleteBucket refuses a bucket holding an
//! object and takes its unfinished uploads, writes into a missing bucket are
//! `NoSuchBucket`, and reads and writes racing deletes (and copies of the key onto
//! itself) see whole objects or none.

mod common;

use common::{ClientEnv, Target, unique_bucket};
use sealgate::embedded::EmbeddedBackend;

const SCRIPT: &str = include_str!("common/embedded_backend.py");
const MULTIPART_SCRIPT: &str = include_str!("common/embedded_multipart.py");
const DELETES_SCRIPT: &str = include_str!("common/embedded_deletes.py");

/// Runs `script` with boto3 against a fresh embedded backend, with a bucket name and
/// the directory of the backend's buckets as arguments; the number of checks it reports.
fn run_against_embedded(name: &str, script: &str) -> u32 {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = runtime
        .block_on(EmbeddedBackend::start(dir.path()))
        .expect("embedded backend starts");
    let env = ClientEnv::new(Target {
        endpoint: backend.endpoint.clone(),
        access_key: backend.access_key.clone(),
        secret_key: backend.secret_key.clone(),
        ca_cert: None,
        client_env: Vec::new(),
        sse_kms: false,
    });
    let objects = backend.objects_dir();
    let root = objects.to_str().expect("objects dir path is UTF-8");
    let out = env.run_python(name, script, &[&unique_bucket("embedded-backend"), root]);
    runtime.block_on(backend.stop());
    out.trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"))
}

#[test]
fn reads_writes_and_refused_writes_of_the_embedded_backend() {
    let checks = run_against_embedded("embedded_backend.py", SCRIPT);
    assert!(checks >= 45, "only {checks} checks ran");
}

#[test]
fn multipart_uploads_of_the_embedded_backend() {
    let checks = run_against_embedded("embedded_multipart.py", MULTIPART_SCRIPT);
    assert!(checks >= 30, "only {checks} checks ran");
}

#[test]
fn deletes_of_the_embedded_backend() {
    let checks = run_against_embedded("embedded_deletes.py", DELETES_SCRIPT);
    assert!(checks >= 25, "only {checks} checks ran");
}
