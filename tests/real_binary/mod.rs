//! The real `sealgate` binary as a child process, for what only a whole process shows
//! (its log pipe, its memory): started on its embedded backend in a temporary
//! directory, its endpoints read from the start-up banner, and plain HTTP/1.1
//! exchanges with it. Each test binary uses part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command};
use std::time::Duration;

/// The binary, configured to listen on `listen` (port 0: the kernel picks) with its data
/// and master key under `dir`; the caller adds the log settings and the pipes.
pub fn command(dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealgate"));
    cmd.env("SEALGATE_SERVER__LISTEN", listen)
        .env("SEALGATE_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env("SEALGATE_EMBEDDED__DATA_DIR", dir.join("data"))
        .env("SEALGATE_KMS__MASTER_KEY_FILE", dir.join("master.key"));
    cmd
}

/// The S3 and admin addresses from the banner on stdout, which is read to its end
/// meanwhile.
pub fn endpoints(stdout: ChildStdout) -> (String, String) {
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
pub fn exchange(conn: &mut BufReader<TcpStream>, path: &str) -> (u16, String) {
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

/// A connection with a read timeout, so a proxy that stops answering fails the test.
pub fn connect(addr: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    BufReader::new(stream)
}

/// SIGTERM, and how the proxy exited.
pub fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().expect("sealgate exits")
}
