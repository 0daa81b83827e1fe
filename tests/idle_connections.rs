//! An idle keep-alive connection costs the proxy little memory: the real binary, after
//! one request on each of 1,000 connections that then stay open, has grown by less than
//! 18 KiB of resident memory per connection. hyper keeps a slot for the service's
//! request future for a connection's whole life; with the handlers' state machine in
//! that slot each connection held 22 KiB, with the future boxed per request 14 KiB.

// The memory reader of the in-process harness, without the rest of it.
#[allow(dead_code)]
#[path = "common/proc_status.rs"]
mod proc_status;
mod real_binary;

use std::process::Stdio;
use std::time::Duration;

use real_binary::{connect, endpoints, exchange, stop};

const CONNECTIONS: usize = 1_000;
const MAX_BYTES_PER_CONNECTION: u64 = 18 * 1024;

/// A process's resident memory in bytes.
fn rss(pid: u32) -> u64 {
    proc_status::process_status_bytes(&pid.to_string(), "VmRSS")
}

#[test]
fn an_idle_keep_alive_connection_costs_under_18_kib() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = real_binary::command(dir.path(), "127.0.0.1:0")
        .env("SEALGATE_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sealgate starts");
    let (s3, _) = endpoints(child.stdout.take().unwrap());

    // Unsigned requests, refused with an S3 error: the whole request path runs, no
    // backend is involved. A first round builds whatever is built lazily.
    let request = |i: usize| {
        let mut conn = connect(&s3);
        let (status, body) = exchange(&mut conn, &format!("/bucket/key-{i}"));
        assert_eq!(status, 403, "request {i}: {body}");
        conn
    };
    let warm: Vec<_> = (0..100).map(request).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss(child.id());
    let open: Vec<_> = (0..CONNECTIONS).map(request).collect();
    std::thread::sleep(Duration::from_millis(300));
    let after = rss(child.id());

    let per_connection = after.saturating_sub(before) / CONNECTIONS as u64;
    println!(
        "{CONNECTIONS} idle connections: RSS {} -> {} KiB, {per_connection} bytes each",
        before / 1024,
        after / 1024
    );
    // Still open and still served.
    let mut last = open.into_iter().last().expect("connections");
    assert_eq!(exchange(&mut last, "/bucket/again").0, 403);
    assert!(stop(&mut child).success(), "clean exit on SIGTERM");
    assert!(
        per_connection < MAX_BYTES_PER_CONNECTION,
        "{per_connection} bytes of RSS per idle connection, limit {MAX_BYTES_PER_CONNECTION}"
    );
}
