//! `server.worker_threads` and `server.thread_per_core` reach the real binary: started
//! with 1 and with 3 threads, the proxy reports that many in its "serving" log line and
//! runs that many shard threads (thread per core, the default), or none when
//! `thread_per_core` is off and the shared runtime's workers serve instead.

mod real_binary;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// What the binary reports with these settings: the "serving" line's fields (JSON logs)
/// and how many of its threads are shards (`sealgate-shard-N`), given a second to reach
/// `expected_shards`.
fn serving(env: &[(&str, &str)], expected_shards: usize) -> (serde_json::Value, usize) {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the kernel picks free ports; nothing here connects to them.
    let mut command = real_binary::command(dir.path(), "127.0.0.1:0");
    command
        .env("SEALGATE_LOG__FORMAT", "json")
        .env("SEALGATE_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("sealgate starts");
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
    // A new thread takes its name once it first runs, so the count may lag the line.
    let count_shards = || {
        std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .filter(|name| name.starts_with("sealgate-shard"))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut shards = count_shards();
    for _ in 0..50 {
        if shards == expected_shards {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        shards = count_shards();
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a \"serving\" log line within 30 s");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    (json["fields"].clone(), shards)
}

#[test]
fn the_setting_decides_how_many_threads_serve() {
    for threads in [1u64, 3] {
        let setting = threads.to_string();
        let expected = usize::try_from(threads).unwrap();
        let (fields, shards) = serving(&[("SEALGATE_SERVER__WORKER_THREADS", &setting)], expected);
        assert_eq!(fields["worker_threads"].as_u64(), Some(threads), "{fields}");
        assert_eq!(fields["thread_per_core"].as_bool(), Some(true), "{fields}");
        assert_eq!(shards, expected, "one shard thread per serving thread");
    }
}

#[test]
fn without_thread_per_core_the_shared_runtime_serves() {
    let (fields, shards) = serving(
        &[
            ("SEALGATE_SERVER__WORKER_THREADS", "3"),
            ("SEALGATE_SERVER__THREAD_PER_CORE", "false"),
        ],
        0,
    );
    assert_eq!(fields["worker_threads"].as_u64(), Some(3), "{fields}");
    assert_eq!(fields["thread_per_core"].as_bool(), Some(false), "{fields}");
    assert_eq!(shards, 0);
}
