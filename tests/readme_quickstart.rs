//! The README's quick start, run as written: the `sealgate` binary with no
//! configuration in an empty directory, then the shell blocks of the "Quick start"
//! section in order, with only the printed keys pasted in (and the two ports moved off
//! the defaults, so the test can run beside anything). The assertions are the ones the
//! README's comments promise: the marker is in the plaintext and not in the stored file,
//! the stored file starts with the part header and is 48 bytes longer, the object reads
//! back identical, `inspect` shows the envelope, the saved-KMS-calls counter grows by 3,
//! and the offline decryptor restores the file once the proxy is stopped.
//!
//! A README edit that breaks the walkthrough fails this test.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::run_command;

const SEALGATE: &str = env!("CARGO_BIN_EXE_sealgate");

/// The fenced `sh` blocks of the README section headed `heading`, in order.
fn shell_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?} section"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("README: an unclosed code block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    blocks
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The proxy as the README starts it: no config, the current directory as home.
fn start(dir: &Path, port: u16, admin: u16) -> (Child, String, String) {
    let mut cmd = Command::new(SEALGATE);
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Every SEALGATE_* variable is configuration; the test harness's are not.
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SEALGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SEALGATE_SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        );
    let mut child = cmd.spawn().expect("start sealgate");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut ak, mut sk) = (None, None);
    let mut banner = String::new();
    while ak.is_none() || sk.is_none() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("sealgate printed no keys within 60 s; it printed:\n{banner}");
        };
        banner.push_str(&line);
        banner.push('\n');
        if let Some(v) = line.trim().strip_prefix("access key:") {
            ak = Some(v.trim().to_string());
        }
        if let Some(v) = line.trim().strip_prefix("secret key:") {
            sk = Some(v.trim().to_string());
        }
    }
    // Keep draining the banner so the proxy never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, ak.unwrap_or_default(), sk.unwrap_or_default())
}

/// Runs one README block with bash in `dir`; returns its stdout. Commands in the block
/// may fail on purpose (`grep -c` of an absent marker exits 1), so no `set -e`: the
/// assertions are on what the block printed.
fn run_block(dir: &Path, block: &str) -> String {
    let out = run_command(
        Command::new("bash").arg("-c").arg(block).current_dir(dir),
        "a README block",
    );
    format!("{}\n{}", out.stdout, out.stderr)
}

/// The README's commands with the printed keys pasted in and the ports moved.
fn adapt(block: &str, ak: &str, sk: &str, port: u16, admin: u16) -> String {
    block
        .replace("<printed access key>", ak)
        .replace("<printed secret key>", sk)
        .replace("127.0.0.1:8333", &format!("127.0.0.1:{port}"))
        .replace("localhost:9333", &format!("127.0.0.1:{admin}"))
        .replace("cargo run --release --", SEALGATE)
}

fn saved_counter(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with("sealgate_kms_calls_saved_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let blocks = shell_blocks(&readme, "## Quick start");
    assert!(
        blocks.len() >= 5,
        "the quick start has {} blocks",
        blocks.len()
    );
    assert_eq!(
        blocks[0].trim(),
        "cargo run --release",
        "step 1 starts the proxy"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, admin) = (free_port(), free_port());
    let (mut proxy, ak, sk) = start(dir.path(), port, admin);
    assert!(
        !ak.is_empty() && !sk.is_empty(),
        "the banner names both keys"
    );
    let env = adapt(&blocks[1], &ak, &sk, port, admin);
    // Steps 3 to 5 need step 2's environment: each later block runs after it.
    let with_env = |n: usize| {
        let exports: String = env.lines().filter(|l| l.starts_with("export ")).collect();
        format!("{exports}\n{}", adapt(&blocks[n], &ak, &sk, port, admin))
    };

    let upload = run_block(dir.path(), &env);
    assert!(
        dir.path()
            .join(".sealgate-data/objects/demo/secret.txt")
            .is_file(),
        "step 2 stored the object: {upload}"
    );

    let disk = run_block(dir.path(), &with_env(2));
    let mut lines = disk.lines();
    assert_eq!(
        lines.next(),
        Some("1"),
        "the plaintext has the marker: {disk}"
    );
    assert_eq!(
        lines.next(),
        Some("0"),
        "the stored file has no marker: {disk}"
    );
    assert!(
        disk.contains("SGP1"),
        "xxd shows the part header magic: {disk}"
    );
    assert!(
        disk.contains(" 18000 ") && disk.contains(" 18048 "),
        "18000 vs 18048 bytes: {disk}"
    );

    let back = run_block(dir.path(), &with_env(3));
    assert!(back.contains("identical"), "the object reads back: {back}");
    assert!(
        back.to_lowercase().contains("bucket key"),
        "inspect shows the envelope: {back}"
    );

    let metrics = run_block(dir.path(), &with_env(4));
    let counts = saved_counter(&metrics);
    assert_eq!(counts.len(), 2, "two readings of the counter: {metrics}");
    assert_eq!(
        counts[1] - counts[0],
        3.0,
        "three more objects, three saved calls"
    );

    // The paragraph after step 5: stop the proxy, decrypt offline.
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(proxy.id().to_string())
        .status();
    let _ = proxy.wait();
    let decrypt = readme
        .lines()
        .find_map(|l| {
            let i = l.find("cargo run --release -- decrypt ")?;
            let rest = &l[i..];
            Some(rest[..rest.find('`')?].to_string())
        })
        .expect("README: the offline decrypt command");
    let offline = run_block(
        dir.path(),
        &format!(
            "{} && cmp secret.txt offline.txt && echo identical",
            adapt(&decrypt, &ak, &sk, port, admin)
        ),
    );
    assert!(
        offline.contains("identical"),
        "the offline decryptor restores the file: {offline}"
    );
}
