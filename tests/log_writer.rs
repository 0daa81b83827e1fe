//! A log reader that stops reading does not stop the proxy: the real binary, logging a
//! JSON line per request to a stderr pipe nobody reads until the end, answers every
//! request, and once stderr is read again every line is there, none dropped. And a
//! pipe gets plain text, without a terminal's colour codes. A closed stdout, where the
//! start-up banner goes, does not stop it either.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Far more request lines than a pipe buffer (64 KiB) holds: a proxy writing its log
/// from the request path would block on the full pipe after a few hundred.
const REQUESTS: usize = 2_000;

fn start(dir: &std::path::Path, format: &str) -> Child {
    start_on(dir, format, "127.0.0.1:0")
}

fn start_on(dir: &std::path::Path, format: &str, listen: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .env("SEALGATE_SERVER__LISTEN", listen)
        .env("SEALGATE_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env("SEALGATE_EMBEDDED__DATA_DIR", dir.join("data"))
        .env("SEALGATE_KMS__MASTER_KEY_FILE", dir.join("master.key"))
        .env("SEALGATE_LOG__FORMAT", format)
        .env("SEALGATE_LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sealgate starts")
}

/// The S3 and admin addresses from the banner on stdout, which is read to its end
/// meanwhile (a closed stdout is a case of its own, below).
fn endpoints(stdout: ChildStdout) -> (String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s3, mut admin) = (None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let addr = |l: &str| {
                l.split("http://")
                    .nth(1)
                    .and_then(|rest| rest.split(['/', ' ']).next())
                    .map(str::to_string)
            };
            if line.contains("S3 endpoint:") {
                s3 = addr(&line);
            } else if line.contains("admin:") {
                admin = addr(&line);
            }
            if let (Some(s3), Some(admin)) = (&s3, &admin) {
                let _ = tx.send((s3.clone(), admin.clone()));
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the endpoints in the banner")
}

/// One request on a keep-alive connection; the status code and the body.
fn exchange(conn: &mut BufReader<TcpStream>, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    conn.get_mut()
        .write_all(req.as_bytes())
        .expect("request sent");
    let mut status_line = String::new();
    conn.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut len = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("header line");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = value.trim().parse().expect("a Content-Length");
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn connect(addr: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    BufReader::new(stream)
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

/// SIGTERM, and how the proxy exited.
fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().expect("sealgate exits")
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
