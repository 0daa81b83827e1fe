//! What `tests/copy.rs` and `tests/migrate.rs` share: sealgate started in-process with
//! per-bucket policies (the common harness's proxy has one policy for all buckets), a
//! config file the `sealgate` binary can read for the same setup, and the Python
//! scenario driver (boto3 and the aws CLI as real clients).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sealgate::config::{BucketPolicy, Config, CredentialEntry, KmsKind};

use crate::common::{Backend, BackendKind};

pub const CLIENT_AK: &str = "SGREKEYCLIENTACCESS1";
pub const CLIENT_SK: &str = "sealgate-rekey-test-client-secret-000001";

/// One bucket's policy for a test.
#[derive(Debug, Clone)]
pub struct Policy {
    pub bucket: String,
    pub encrypt: bool,
    pub kms_key_id: Option<String>,
}

/// The config of a test proxy in front of `backend`, state in `dir`.
pub fn config(backend: &Backend, dir: &Path, policies: &[Policy]) -> Config {
    let mut c = Config::default();
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.shutdown_grace_secs = 2;
    if let Some(endpoint) = &backend.endpoint {
        c.backend.endpoint = Some(endpoint.clone());
        c.backend.access_key = Some(backend.access_key.clone());
        c.backend.secret_key = Some(backend.secret_key.clone());
    }
    c.backend.region = "us-east-1".into();
    c.embedded.data_dir = dir.join("embedded");
    c.credentials = vec![CredentialEntry::new(CLIENT_AK, CLIENT_SK)];
    c.kms.kind = KmsKind::Local;
    c.kms.master_key_file = Some(dir.join("master.key"));
    c.encryption.default.encrypt = true;
    c.encryption.default.allow_plaintext_reads = true;
    for p in policies {
        let policy = BucketPolicy {
            encrypt: p.encrypt,
            kms_key_id: p.kms_key_id.clone(),
            allow_plaintext_reads: true,
            ..c.encryption.default.clone()
        };
        c.encryption.buckets.insert(p.bucket.clone(), policy);
    }
    c.log.level = "warn".into();
    c.validate().expect("test config is valid");
    c
}

/// sealgate serving in-process; shut down on drop.
pub struct Proxy {
    pub endpoint: String,
    pub admin: String,
    pub running: Option<sealgate::Running>,
    pub runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(config: Config) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(sealgate::start(config))
            .expect("sealgate starts");
        let e = running.endpoints.clone();
        Proxy {
            endpoint: format!("http://127.0.0.1:{}", e.s3.port()),
            admin: format!("http://127.0.0.1:{}", e.admin.port()),
            running: Some(running),
            runtime,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), r.shutdown()).await;
            });
        }
    }
}

/// Environment for the Python driver: the proxy, the backend directly (absent for the
/// embedded backend, which has no address outside the proxy), and `extra`.
pub fn driver_env(
    proxy: &Proxy,
    backend: &Backend,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("SG_ENDPOINT".to_string(), proxy.endpoint.clone()),
        ("SG_ACCESS_KEY".to_string(), CLIENT_AK.to_string()),
        ("SG_SECRET_KEY".to_string(), CLIENT_SK.to_string()),
        ("SG_ADMIN".to_string(), proxy.admin.clone()),
    ];
    if let Some(e) = &backend.endpoint {
        env.push(("SG_DIRECT_ENDPOINT".into(), e.clone()));
        env.push(("SG_DIRECT_ACCESS_KEY".into(), backend.access_key.clone()));
        env.push(("SG_DIRECT_SECRET_KEY".into(), backend.secret_key.clone()));
        if backend.kind == BackendKind::Ceph {
            env.push(("SG_DIRECT_CEPH".into(), "1".into()));
        }
    }
    for (k, v) in extra {
        env.push((k.to_string(), v.clone()));
    }
    env
}

/// Runs `scenario` of the driver script; panics with its output unless it succeeds.
/// Returns stdout.
pub fn run_driver(dir: &Path, scenario: &str, env: &[(String, String)]) -> String {
    let script = dir.join("rekey_driver.py");
    std::fs::write(&script, include_str!("driver.py")).expect("write driver");
    std::fs::write(
        dir.join("aws-config"),
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    \
         multipart_threshold = 5MB\n    multipart_chunksize = 5MB\n",
    )
    .expect("aws config");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(scenario)
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SG_WORK_DIR", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "driver scenario {scenario} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    print!("{stdout}");
    stdout
}

/// The test's scratch directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sealgate-rekey-")
        .tempdir()
        .expect("temp dir")
}

pub fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealgate"))
}
