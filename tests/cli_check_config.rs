//! `sealgate check-config` run as a process: each of the failures an operator meets
//! (unreachable backend, wrong backend credentials, unreachable KMS, missing KMS key,
//! unreadable master key, invalid TLS files) gives exit code 1 and a FAIL line with
//! its cause; a working configuration gives exit code 0; a config that does not
//! parse gives 2. Ceph RGW and moto cases skip without `./scripts/test.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Backend;

struct Outcome {
    code: i32,
    stdout: String,
}

fn check_config(config: &Path, extra: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .arg("--config")
        .arg(config)
        .arg("check-config")
        .args(extra)
        .env_remove("SEALGATE_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("run sealgate");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout,
    }
}

/// The FAIL line of `check`, asserting there is exactly one.
fn fail_line<'a>(o: &'a Outcome, check: &str) -> &'a str {
    let lines: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(lines.len(), 1, "one FAIL line expected:\n{}", o.stdout);
    assert!(
        lines[0].contains(check),
        "FAIL is not about {check}: {}",
        lines[0]
    );
    lines[0]
}

/// A config directory with a valid master key; `body` is appended to the
/// `[kms]`/`[embedded]` basics.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        sealgate::kms::local::LocalKms::create_master_key_file(&dir.path().join("master.key"))
            .unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the config: embedded data dir and local master key unless `toml`
    /// overrides the sections.
    fn config(&self, toml: &str) -> PathBuf {
        let mut text = String::new();
        if !toml.contains("[embedded]") {
            text.push_str(&format!(
                "[embedded]\ndata_dir = {:?}\n",
                self.path("data").display().to_string()
            ));
        }
        if !toml.contains("[kms]") {
            text.push_str(&format!(
                "[kms]\nmaster_key_file = {:?}\n",
                self.path("master.key").display().to_string()
            ));
        }
        text.push_str(toml);
        let f = self.path("config.toml");
        std::fs::write(&f, text).unwrap();
        f
    }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn passing_embedded_config_exits_zero() {
    let s = Setup::new();
    let o = check_config(&s.config(""), &[]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(!o.stdout.contains("FAIL"));
    assert!(o.stdout.contains("kms master key"), "{}", o.stdout);
    assert!(o.stdout.contains("fingerprint"), "{}", o.stdout);
    assert!(o.stdout.contains("0 failed"), "{}", o.stdout);
}

#[test]
fn config_that_does_not_parse_exits_two() {
    let s = Setup::new();
    let o = check_config(&s.config("[server]\nlisten = \"nowhere\"\n"), &[]);
    assert_eq!(o.code, 2);
    assert!(o.stdout.contains("server.listen"), "{}", o.stdout);
}

#[test]
fn unreachable_backend_fails() {
    let s = Setup::new();
    let port = closed_port();
    let f = s.config(&format!(
        "[backend]\nendpoint = \"http://127.0.0.1:{port}\"\naccess_key = \"a\"\nsecret_key = \"b\"\n"
    ));
    let o = check_config(&f, &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "backend reachable");
    assert!(
        line.contains("backend unreachable: connection refused by 127.0.0.1"),
        "{line}"
    );
    // --offline skips the network and passes.
    let o = check_config(&f, &["--offline"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains("skip  backend reachable"), "{}", o.stdout);
}

#[test]
fn config_only_checks_the_configuration_alone() {
    let s = Setup::new();
    // Files and hosts that exist only where the config is deployed.
    let f = s.config(
        "[backend]\nendpoint = \"http://no-such-host.invalid:7480\"\naccess_key = \"a\"\nsecret_key = \"b\"\n\
         [server]\ntls_cert = \"/nonexistent/tls.crt\"\ntls_key = \"/nonexistent/tls.key\"\n",
    );
    let o = check_config(&f, &["--config-only"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains("configuration only"), "{}", o.stdout);
    // The full check fails on the same file; a broken config still fails with 2.
    assert_eq!(check_config(&f, &[]).code, 1);
    let broken = s.config("[server]\nlisten = \"nowhere\"\n");
    assert_eq!(check_config(&broken, &["--config-only"]).code, 2);
}

#[test]
fn unresolvable_backend_host_fails() {
    let s = Setup::new();
    let f = s.config(
        "[backend]\nendpoint = \"http://no-such-host.invalid:7480\"\naccess_key = \"a\"\nsecret_key = \"b\"\n",
    );
    let o = check_config(&f, &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "backend reachable");
    assert!(
        line.contains("cannot resolve no-such-host.invalid"),
        "{line}"
    );
}

#[test]
fn wrong_backend_credentials_fail() {
    let ceph = require!(Backend::ceph());
    let s = Setup::new();
    let endpoint = ceph.endpoint.clone().unwrap();
    let good = s.config(&format!(
        "[backend]\nendpoint = {endpoint:?}\naccess_key = {:?}\nsecret_key = {:?}\n",
        ceph.access_key, ceph.secret_key
    ));
    let o = check_config(&good, &[]);
    assert_eq!(o.code, 0, "the right credentials pass: {}", o.stdout);
    assert!(o.stdout.contains("ListBuckets accepted"), "{}", o.stdout);

    let bad_secret = s.config(&format!(
        "[backend]\nendpoint = {endpoint:?}\naccess_key = {:?}\nsecret_key = \"not-the-secret\"\n",
        ceph.access_key
    ));
    let o = check_config(&bad_secret, &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "backend credentials");
    assert!(
        line.contains("wrong backend credentials: backend answered SignatureDoesNotMatch"),
        "{line}"
    );

    let bad_key = s.config(&format!(
        "[backend]\nendpoint = {endpoint:?}\naccess_key = \"NOSUCHACCESSKEY\"\nsecret_key = \"x\"\n"
    ));
    let o = check_config(&bad_key, &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "backend credentials");
    assert!(
        line.contains("wrong backend credentials: backend answered InvalidAccessKeyId"),
        "{line}"
    );
}

#[test]
fn unreachable_kms_fails() {
    let s = Setup::new();
    let port = closed_port();
    let o = check_config(
        &s.config(&format!(
            "[kms]\nkind = \"aws\"\nendpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\"\n\
             access_key = \"test\"\nsecret_key = \"test\"\n"
        )),
        &[],
    );
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "kms reachable");
    assert!(
        line.contains("KMS unreachable: connection refused by 127.0.0.1"),
        "{line}"
    );
}

fn moto_kms_section(endpoint: &str, key_id: &str) -> String {
    format!(
        "[kms]\nkind = \"aws\"\nendpoint = {endpoint:?}\nregion = \"us-east-1\"\n\
         access_key = \"test\"\nsecret_key = \"test\"\nkey_id = {key_id:?}\n"
    )
}

#[test]
fn missing_kms_key_fails_and_an_existing_one_passes() {
    let moto = require!(Backend::moto());
    let endpoint = moto.endpoint.clone().unwrap();
    let s = Setup::new();
    let missing = "00000000-0000-4000-8000-00000000dead";
    let o = check_config(&s.config(&moto_kms_section(&endpoint, missing)), &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "kms keys");
    assert!(
        line.contains(&format!("KMS key not found: {missing}")),
        "{line}"
    );

    let key_id = create_moto_key(&endpoint);
    let o = check_config(&s.config(&moto_kms_section(&endpoint, &key_id)), &[]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!("usable: {key_id}")),
        "{}",
        o.stdout
    );
}

fn create_moto_key(endpoint: &str) -> String {
    use sealgate::kms::aws::{AwsCredentials, AwsKms, AwsKmsConfig};
    let mut config = AwsKmsConfig::new(
        "us-east-1",
        AwsCredentials {
            access_key_id: "test".into(),
            secret_access_key: zeroize::Zeroizing::new("test".into()),
            session_token: None,
        },
    );
    config.endpoint = Some(endpoint.to_string());
    sealgate::server::install_crypto_provider();
    let kms = AwsKms::new(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt
        .block_on(kms.call_json("CreateKey", &serde_json::json!({})))
        .unwrap();
    answer["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

#[test]
fn unreadable_master_key_fails() {
    let s = Setup::new();
    // A directory where the key file should be (mode 000 would not do: tests may run
    // as root, who reads anything).
    let dir_key = s.path("key-dir");
    std::fs::create_dir(&dir_key).unwrap();
    let o = check_config(
        &s.config(&format!(
            "[kms]\nmaster_key_file = {:?}\n",
            dir_key.display().to_string()
        )),
        &[],
    );
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "kms master key");
    assert!(
        line.contains(&format!(
            "unreadable master key: {}: not a regular file",
            dir_key.display()
        )),
        "{line}"
    );
    // A parent that is a file: the key can neither be read nor created.
    let under_file = s.path("master.key").join("master.key");
    let o = check_config(
        &s.config(&format!(
            "[kms]\nmaster_key_file = {:?}\n",
            under_file.display().to_string()
        )),
        &[],
    );
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "kms master key");
    assert!(line.contains("unreadable master key: "), "{line}");
    assert!(line.contains("is not a directory"), "{line}");
    // A key file of the wrong size.
    let short = s.path("short.key");
    std::fs::write(&short, b"too short").unwrap();
    std::fs::set_permissions(&short, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = check_config(
        &s.config(&format!(
            "[kms]\nmaster_key_file = {:?}\n",
            short.display().to_string()
        )),
        &[],
    );
    assert_eq!(o.code, 1);
    assert!(
        fail_line(&o, "kms master key").contains("9 bytes"),
        "{}",
        o.stdout
    );
}

fn tls_config(s: &Setup, cert: &Path, key: &Path) -> PathBuf {
    s.config(&format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
}

#[test]
fn invalid_tls_files_fail() {
    let s = Setup::new();
    let make = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            s.path(&format!("{name}.pem")),
            s.path(&format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let (cert_a, key_a) = make("a");
    let (_cert_b, key_b) = make("b");

    let o = check_config(&tls_config(&s, &cert_a, &key_a), &[]);
    assert_eq!(o.code, 0, "a matching pair passes: {}", o.stdout);

    let o = check_config(&tls_config(&s, &cert_a, &key_b), &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "tls files");
    assert!(line.contains("invalid TLS files: server.tls_key"), "{line}");

    let garbage = s.path("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = check_config(&tls_config(&s, &garbage, &key_a), &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "tls files");
    assert!(
        line.contains("invalid TLS files: server.tls_cert"),
        "{line}"
    );

    let empty = s.path("empty.pem");
    std::fs::write(&empty, "hello\n").unwrap();
    let o = check_config(&tls_config(&s, &cert_a, &empty), &[]);
    assert_eq!(o.code, 1);
    let line = fail_line(&o, "tls files");
    assert!(line.contains("no PEM private key found"), "{line}");
}
