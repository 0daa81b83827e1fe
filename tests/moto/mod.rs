//! A moto server (S3 and the AWS KMS JSON API) started for one test binary with the
//! project's `scripts/backends/moto.sh` on a free port, its request recorder for
//! counting KMS calls, and a KMS key made in it. Stopped on drop.
//! Each test binary uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sealgate::kms::aws::{AwsCredentials, AwsKms, AwsKmsConfig};
use zeroize::Zeroizing;

const MOTO_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/backends/moto.sh");

/// A moto server for this test; stopped on drop.
pub struct Moto {
    dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Option<Moto> {
        if std::env::var("SEALGATE_SKIP_MOTO").as_deref() == Ok("1") {
            eprintln!("NOTICE: SEALGATE_SKIP_MOTO=1, skipping the moto KMS tests");
            return None;
        }
        let has_moto = Command::new("python3")
            .args(["-c", "import moto"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_moto {
            let installed = Command::new("pip")
                .args(["install", "-q", "moto[server]==5.2.1"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(installed, "pip install moto[server]==5.2.1 failed");
        }
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        // Two tries: another process may take the free port between probe and start.
        for _ in 0..2 {
            let port = free_port();
            let out = Command::new(MOTO_SH)
                .arg("start")
                .arg(dir.path())
                .env("PORT", port.to_string())
                .output();
            let Ok(out) = out else {
                panic!("cannot run {MOTO_SH}")
            };
            if !out.status.success() {
                eprintln!(
                    "moto start failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let endpoint = stdout
                .lines()
                .find_map(|l| l.strip_prefix("endpoint="))
                .map(str::to_owned)
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
            return Some(Moto { dir, endpoint });
        }
        panic!("moto did not start")
    }

    pub fn kms(&self) -> AwsKms {
        let creds = AwsCredentials {
            access_key_id: "test".into(),
            secret_access_key: Zeroizing::new("test".into()),
            session_token: None,
        };
        let mut config = AwsKmsConfig::new("us-east-1", creds);
        config.endpoint = Some(self.endpoint.clone());
        config.timeout = Duration::from_secs(10);
        match AwsKms::new(config) {
            Ok(k) => k,
            Err(e) => panic!("AwsKms::new: {e}"),
        }
    }

    /// moto's request recorder: reset and start, or stop and count KMS operations.
    pub fn recorder(&self, action: &str) -> String {
        let method = if action == "download-recording" {
            "GET"
        } else {
            "POST"
        };
        let url = format!("{}/moto-api/recorder/{action}", self.endpoint);
        let out = Command::new("curl")
            .args(["-sf", "-X", method, &url])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new(MOTO_SH).arg("stop").arg(self.dir()).status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(15_000)
}

pub async fn create_key(kms: &AwsKms) -> (String, String) {
    let created = kms
        .call_json(
            "CreateKey",
            &serde_json::json!({"Description": "sealgate test"}),
        )
        .await;
    let Ok(created) = created else {
        panic!("CreateKey: {created:?}")
    };
    let meta = &created["KeyMetadata"];
    let id = meta["KeyId"].as_str().unwrap_or_default().to_string();
    let arn = meta["Arn"].as_str().unwrap_or_default().to_string();
    assert!(
        !id.is_empty() && arn.starts_with("arn:aws:kms:"),
        "{created}"
    );
    (id, arn)
}

/// KMS operations named `TrentService.OP` in a downloaded recording.
pub fn count_calls(recording: &str, op: &str) -> usize {
    recording.matches(&format!("TrentService.{op}")).count()
}
