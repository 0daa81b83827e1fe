//! `server.worker_threads` reaches the real binary's runtime: started with 1 and with
//! 3, the proxy reports that many worker threads in its "serving" log line.

mod real_binary;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// The `worker_threads` field of the binary's "serving" line (JSON logs).
fn reported_workers(setting: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the kernel picks free ports; nothing here connects to them.
    let mut child = real_binary::command(dir.path(), "127.0.0.1:0")
        .env("SEALGATE_SERVER__WORKER_THREADS", setting)
        .env("SEALGATE_LOG__FORMAT", "json")
        .env("SEALGATE_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sealgate starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"serving\"") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a \"serving\" log line within 30 s");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    json["fields"]["worker_threads"]
        .as_u64()
        .unwrap_or_else(|| panic!("no worker_threads in {line}"))
}

#[test]
fn the_setting_decides_the_runtime_worker_count() {
    assert_eq!(reported_workers("1"), 1);
    assert_eq!(reported_workers("3"), 3);
}
