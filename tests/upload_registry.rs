//! Multipart uploads with an upload registry (`[uploads] registry_bucket`), on Ceph RGW
//! and the embedded backend, driven by boto3 (`common/upload_registry.py`):
//! - clients get the backend's own upload ids, and ListMultipartUploads lists exactly
//!   the ids CreateMultipartUpload returned; parts, ListParts (plaintext sizes, in
//!   part-number order even where the backend lists them unordered), completion and
//!   the read back work as without a registry;
//! - the registry bucket is created on first use, holds one record per pending upload,
//!   and loses it when the upload completes or is aborted; clients cannot reach it;
//! - uploads survive a proxy restart (the new proxy's caches are empty, so the
//!   envelopes come from the registry) and complete byte-identical;
//! - a record swapped with another upload's on the backend makes UploadPart fail (500,
//!   nothing stored) instead of sealing under the wrong envelope.

mod common;

use std::path::Path;

use common::{Backend, ClientEnv, ProxyOptions, TestProxy, unique_bucket};
use sealgate::config::Config;

const SCRIPT: &str = include_str!("common/upload_registry.py");

fn run(backend: Option<Backend>) {
    let Some(backend) = backend else { return };
    let shared = tempfile::Builder::new()
        .prefix("sealgate-registry-")
        .tempdir()
        .expect("temp dir");
    let bucket = unique_bucket("uploads");
    let registry = unique_bucket("registry");
    let state_file = shared.path().join("state.json");
    let embedded_dir = shared.path().join("embedded");
    // Both proxies share the master key and, on the embedded backend, its data.
    let configure = |c: &mut Config| {
        c.uploads.registry_bucket = Some(registry.clone());
        c.kms.master_key_file = Some(shared.path().join("master.key"));
        c.embedded.data_dir = embedded_dir.clone();
    };
    let records_env = |records_dir: &Path| -> Vec<(String, String)> {
        match backend.direct_target() {
            Some(direct) => vec![
                ("SG_DIRECT_ENDPOINT".into(), direct.endpoint),
                ("SG_DIRECT_ACCESS_KEY".into(), direct.access_key),
                ("SG_DIRECT_SECRET_KEY".into(), direct.secret_key),
            ],
            None => vec![("SG_REGISTRY_DIR".into(), records_dir.display().to_string())],
        }
    };
    let records_dir = embedded_dir.join("objects").join(&registry);
    let phase = |name: &str| {
        let proxy = TestProxy::start_with(&backend, ProxyOptions::http(), configure);
        let mut target = proxy.target();
        target.client_env.extend(records_env(&records_dir));
        let env = ClientEnv::new(target);
        if name == "before-restart" {
            env.run(
                common::Client::AwsCli,
                &["s3", "mb", &format!("s3://{bucket}")],
            );
        }
        let out = env.run_python(
            "upload_registry.py",
            SCRIPT,
            &[name, &bucket, &registry, &state_file.display().to_string()],
        );
        assert!(
            out.contains(&format!("{}: ok", name.replace('-', " "))),
            "{out}"
        );
        if name == "after-restart" {
            env.run(
                common::Client::AwsCli,
                &["s3", "rb", "--force", &format!("s3://{bucket}")],
            );
        }
        // The proxy stops here, with its caches.
    };
    phase("before-restart");
    phase("after-restart");
    println!("upload registry on {}: ok", backend.name());
}

#[test]
fn uploads_keep_backend_ids_and_survive_a_restart() {
    for b in [Backend::ceph(), Backend::embedded()] {
        run(b);
    }
}
