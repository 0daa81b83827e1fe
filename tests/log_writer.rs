//! A log reader that stops reading does not stop the proxy: the real binary, logging a
//! JSON line per request to a stderr pipe nobody reads until the end, answers every
//! request, and once stderr is read again every line is there, none dropped. And a
//! pipe gets plain text, without a terminal's colour codes. A closed stdout, where the
//! start-up banner goes, does not stop it either.

mod real_binary;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Stdio};
use std::time::Duration;

use real_binary::{connect, endpoints, exchange, stop};

/// Far more request lines than a pipe buffer (64 KiB) holds: a proxy writing its log
/// from the request path would block on the full pipe after a few hundred.
const REQUESTS: usize = 2_000;

fn start(dir: &std::path::Path, format: &str) -> Child {
    start_on(dir, format, "127.0.0.1:0")
}

fn start_on(dir: &std::path::Path, format: &str, listen: &str) -> Child {
    real_binary::command(dir, listen)
        .env("SEALGATE_LOG__FORMAT", format)
        .env("SEALGATE_LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sealgate starts")
}

#[test]
fn an_unread_stderr_neither_stalls_requests_nor_loses_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), "json");
    let (s3, admin) = endpoints(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();

    let mut conn = connect(&s3);
    for i in 0..REQUESTS {
        // Unsigned: refused with an S3 error, and logged like any request.
        let (status, _) = exchange(&mut conn, &format!("/bucket/key-{i}"));
        assert_eq!(status, 403, "request {i}");
    }
    let (status, metrics) = exchange(&mut connect(&admin), "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("sealgate_log_lines_dropped_total 0"),
        "no line dropped while the queue has room"
    );

    // Read stderr again, then stop the proxy, which writes out what is queued.
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("\"message\":\"request\""))
            .count()
    });
    let exit = stop(&mut child);
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert_eq!(reader.join().unwrap(), REQUESTS, "one line per request");
}

/// SIGTERM, a clean exit, and everything the proxy logged.
fn stop_reading_log(child: &mut Child, stderr: ChildStderr) -> String {
    let exit = stop(child);
    let mut log = String::new();
    BufReader::new(stderr).read_to_string(&mut log).unwrap();
    assert!(
        exit.success(),
        "clean exit on SIGTERM: {exit:?}, log: {log}"
    );
    log
}

#[test]
fn text_lines_into_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), "text");
    let (s3, _) = endpoints(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (status, _) = exchange(&mut connect(&s3), "/bucket/key");
    assert_eq!(status, 403);
    let log = stop_reading_log(&mut child, stderr);
    assert!(log.contains(" request "), "the request line: {log}");
    assert!(!log.contains('\x1b'), "no escape codes: {log:?}");
}

#[test]
fn a_closed_stdout_does_not_stop_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = start_on(dir.path(), "text", &addr);
    // Closed before the proxy prints its banner there.
    drop(child.stdout.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match TcpStream::connect(&addr) {
            Ok(stream) => break BufReader::new(stream),
            Err(e) if std::time::Instant::now() > deadline => panic!("never listened: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = exchange(&mut conn, "/bucket/key");
    assert_eq!(status, 403);
    let stderr = child.stderr.take().unwrap();
    let log = stop_reading_log(&mut child, stderr);
    assert!(log.contains("stdout is closed"), "{log}");
}
