//! The embedded backend on its own (`sealgate::embedded`, the vendored s3s-fs), with
//! boto3 (`tests/common/embedded_backend.py`): whole and ranged reads of small, empty
//! and multi-chunk objects, metadata and content headers on GET and HEAD, a missing
//! key, nested keys, an overwrite, and a PUT refused for a wrong Content-MD5 that must
//! leave the object it would have replaced as it was. Through the proxy these are
//! masked (it checks digests itself and aborts the backend's upload), so they are
//! checked here, against the backend the proxy starts when none is configured.

mod common;

use common::{ClientEnv, Target, unique_bucket};
use sealgate::embedded::EmbeddedBackend;

const SCRIPT: &str = include_str!("common/embedded_backend.py");

#[test]
fn reads_writes_and_refused_writes_of_the_embedded_backend() {
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
    let out = env.run_python(
        "embedded_backend.py",
        SCRIPT,
        &[&unique_bucket("embedded-backend")],
    );
    let checks: u32 = out
        .trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    assert!(checks >= 40, "only {checks} checks ran");
    runtime.block_on(backend.stop());
}
