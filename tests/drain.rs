//! Graceful shutdown of the real binary: a long GET is in flight (the client reads it
//! slowly), SIGTERM arrives, new connections are refused at once, the GET still
//! completes with every byte right, and the process exits 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod raw;

use raw::*;

const AK: &str = "DRAINTESTACCESSKEY01";
const SK: &str = "drain-test-secret-key-000000000000000001";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn signed(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let host = addr.to_string();
    sign_header(
        Req::new(method, path, body),
        &host,
        AK,
        SK,
        std::time::SystemTime::now(),
        &sha256_hex(body),
    )
    .raw(&host, true)
}

#[test]
fn sigterm_drains_in_flight_requests_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\nshutdown_grace_secs = 30\n\n\
         [embedded]\ndata_dir = \"{data}\"\n\n[kms]\nmaster_key_file = \"{key}\"\n\n\
         [log]\nlevel = \"warn\"\n\n[[credentials]]\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n",
        data = dir.path().join("data").display(),
        key = dir.path().join("master.key").display(),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sealgate starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "sealgate did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mk = request(addr, &signed(addr, "PUT", "/drain", b"")).expect("create bucket");
    assert_eq!(mk.status, 200);
    let content: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let put = request(addr, &signed(addr, "PUT", "/drain/big", &content)).expect("put");
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));

    // The long GET: read 64 KiB every 20 ms (about 2.6 s for 8 MiB).
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&signed(addr, "GET", "/drain/big", b""))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).unwrap();
    got.extend_from_slice(&buf[..n]);

    let pid = child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let t = Instant::now();
    // New connections are refused soon after the signal.
    let mut refused = false;
    while t.elapsed() < Duration::from_secs(5) {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(_) => {
                refused = true;
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let refused_after = t.elapsed();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the in-flight GET broke after {:?}: {e}", t.elapsed()),
        }
    }
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&got[..split]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &got[split..];
    let status = child.wait().expect("sealgate exits");
    println!(
        "drain: new connections refused {refused_after:?} after SIGTERM; the in-flight GET finished {:?} after it with {} bytes; exit {status}",
        t.elapsed(),
        body.len()
    );
    assert!(
        refused,
        "new connections were still accepted 5 s after SIGTERM"
    );
    assert_eq!(body.len(), content.len(), "the in-flight GET was cut short");
    assert!(
        body == content.as_slice(),
        "the in-flight GET returned wrong bytes"
    );
    assert!(status.success(), "exit status {status}");
}
