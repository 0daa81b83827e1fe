//! `sealgate migrate` and `sealgate rewrap` as subprocesses against Ceph RGW: 1,000
//! plaintext objects (a few of 3 MiB) written directly to the backend; a first migrate
//! run killed after it reported progress, a second run to completion: every object
//! then has an envelope, reads back byte-identical through the proxy with its
//! metadata, and the objects the first run encrypted were not encrypted again (same
//! envelope; counted as skipped). Then the bucket's KMS key changes in the config:
//! `rewrap` moves every object to it by metadata only, and a second run rewraps nothing.

mod common;
mod rekey_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Backend, unique_bucket};
use rekey_support::{CLIENT_AK, CLIENT_SK, Proxy, bin, driver_env, run_driver, scratch};
use sealgate::config::Config;

const COUNT: usize = 1000;

fn write_config(dir: &Path, backend: &Backend, bucket: &str, kms_key: &str) -> std::path::PathBuf {
    let path = dir.join("sealgate.toml");
    let toml = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace_secs = 2

[backend]
endpoint = "{endpoint}"
access_key = "{ak}"
secret_key = "{sk}"
region = "us-east-1"

[embedded]
data_dir = "{data}"

[[credentials]]
access_key = "{cak}"
secret_key = "{csk}"

[kms]
kind = "local"
master_key_file = "{master}"

[log]
level = "warn"

[encryption.default]
encrypt = true

[encryption.buckets."{bucket}"]
encrypt = true
kms_key_id = "{kms_key}"
allow_plaintext_reads = true
"#,
        endpoint = backend.endpoint.as_deref().unwrap_or_default(),
        ak = backend.access_key,
        sk = backend.secret_key,
        data = dir.join("embedded").display(),
        cak = CLIENT_AK,
        csk = CLIENT_SK,
        master = dir.join("master.key").display(),
    );
    std::fs::write(&path, toml).expect("write config");
    path
}

fn load(path: &Path) -> Config {
    Config::load(Some(path), std::iter::empty::<(String, String)>()).expect("test config loads")
}

/// Runs a command to completion; returns (success, stderr).
fn run(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SEALGATE_CONFIG")
        .output()
        .expect("sealgate runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    (out.status.success(), stderr)
}

/// `(examined, done, skipped, failed)` from the final summary line.
fn summary(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("examined"))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

fn envelopes(dir: &Path, env: &[(String, String)], name: &str) -> BTreeMap<String, Option<String>> {
    let mut env = env.to_vec();
    env.push(("SG_OUT".into(), name.into()));
    run_driver(dir, "envelopes", &env);
    let text = std::fs::read_to_string(dir.join(name)).expect("envelopes written");
    serde_json::from_str(&text).expect("envelopes JSON")
}

#[test]
fn migrate_survives_a_kill_and_rewrap_moves_keys() {
    let backend = require!(Backend::ceph());
    let dir = scratch();
    let bucket = unique_bucket("migrate");
    let cfg = write_config(dir.path(), &backend, &bucket, "migrate-key-1");
    let proxy = Proxy::start(load(&cfg));
    let base = driver_env(
        &proxy,
        &backend,
        &[
            ("SG_BUCKET", bucket.clone()),
            ("SG_COUNT", COUNT.to_string()),
        ],
    );
    run_driver(dir.path(), "fill", &base);

    // First run: one job at a time, killed once it reported progress.
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["migrate", "--bucket", &bucket, "--jobs", "1"])
        .env_remove("SEALGATE_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("sealgate migrate starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut progressed = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        eprintln!("first run: {line}");
        assert!(
            !line.contains("examined"),
            "the first run finished before it could be killed"
        );
        if let Some(n) = line
            .strip_prefix("sealgate migrate: ")
            .and_then(|l| l.split_once('/'))
            .and_then(|(n, _)| n.parse::<u64>().ok())
            && n > 0
        {
            progressed = true;
            break;
        }
    }
    assert!(progressed, "the first run reported progress");
    child.kill().expect("kill migrate");
    let _ = child.wait();

    let first = envelopes(dir.path(), &base, "first.json");
    let sealed_first = first.values().filter(|e| e.is_some()).count();
    assert_eq!(first.len(), COUNT);
    assert!(
        sealed_first > 0 && sealed_first < COUNT,
        "the killed run sealed some but not all objects ({sealed_first})"
    );

    let (ok, stderr) = run(&cfg, &["migrate", "--bucket", &bucket]);
    assert!(ok, "second migrate run succeeds");
    assert_eq!(
        summary(&stderr),
        (
            COUNT as u64,
            (COUNT - sealed_first) as u64,
            sealed_first as u64,
            0
        ),
        "the second run skips exactly what the first sealed"
    );
    let second = envelopes(dir.path(), &base, "second.json");
    assert!(
        second.values().all(|e| e.is_some()),
        "every object has an envelope"
    );
    for (key, env) in first.iter().filter(|(_, e)| e.is_some()) {
        assert_eq!(&second[key], env, "{key} was not encrypted again");
    }
    let mut verify = base.clone();
    verify.push(("SG_EXPECT_KEY".into(), "migrate-key-1".into()));
    run_driver(dir.path(), "verify", &verify);
    drop(proxy);

    // Rewrap: the policy now names another key.
    let cfg = write_config(dir.path(), &backend, &bucket, "migrate-key-2");
    let (ok, stderr) = run(&cfg, &["rewrap", "--bucket", &bucket, "--dry-run"]);
    assert!(ok);
    assert_eq!(
        summary(&stderr),
        (COUNT as u64, COUNT as u64, 0, 0),
        "dry run counts all"
    );
    let (ok, stderr) = run(&cfg, &["rewrap", "--bucket", &bucket, "--jobs", "16"]);
    assert!(ok, "rewrap succeeds");
    assert_eq!(summary(&stderr), (COUNT as u64, COUNT as u64, 0, 0));
    let proxy = Proxy::start(load(&cfg));
    let mut verify = driver_env(
        &proxy,
        &backend,
        &[
            ("SG_BUCKET", bucket.clone()),
            ("SG_COUNT", COUNT.to_string()),
        ],
    );
    verify.push(("SG_EXPECT_KEY".into(), "migrate-key-2".into()));
    run_driver(dir.path(), "verify", &verify);
    let (ok, stderr) = run(&cfg, &["rewrap", "--bucket", &bucket]);
    assert!(ok);
    assert_eq!(
        summary(&stderr),
        (COUNT as u64, 0, COUNT as u64, 0),
        "second rewrap does nothing"
    );
}
