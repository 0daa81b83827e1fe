//! A TCP proxy that sits between sealgate and its backend and breaks answers on
//! purpose. It reads each connection's request head, forwards it, and applies the
//! [`Fault`] its chooser picks for that request to the backend's answer: reset or
//! truncate the body at an offset, stall, answer 500/503 itself, lie in
//! `Content-Length`, or flip a body byte. Tests run the proxy with
//! `backend.pool_max_idle_per_host = 0`, so every upstream request has its own
//! connection and a per-connection fault is a per-request fault.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to one backend answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward untouched.
    Pass,
    /// Forward the head and this many body bytes, then reset the connection (RST).
    ResetAt(usize),
    /// Forward the head and this many body bytes, then close cleanly (FIN).
    TruncateAt(usize),
    /// Forward the head and this many body bytes, stall for the duration, then close.
    StallAt(usize, Duration),
    /// Answer this status (500, 503) without asking the backend.
    Status(u16),
    /// Rewrite Content-Length to the real length minus this many bytes and forward
    /// only that many body bytes: a shorter body that looks complete.
    ShortLength(usize),
    /// Rewrite Content-Length to the real length plus this many bytes, forward the real
    /// body, then close: a body that ends early.
    LongLength(usize),
    /// Flip one bit of the body byte at this offset.
    FlipAt(usize),
    /// Forward the answer whole, but only after this long: a slow backend.
    DelayAnswer(Duration),
}

/// The request line of the request being answered, for choosers that fault only
/// some requests (object GETs, say).
pub type Chooser = dyn Fn(&str) -> Fault + Send + Sync;

pub struct FaultProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Faults applied, by kind name.
    applied: Arc<Mutex<std::collections::BTreeMap<&'static str, u64>>>,
    pub connections: Arc<AtomicU64>,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::ResetAt(_) => "reset",
            Fault::TruncateAt(_) => "truncate",
            Fault::StallAt(..) => "stall",
            Fault::Status(_) => "status",
            Fault::ShortLength(_) => "short-length",
            Fault::LongLength(_) => "long-length",
            Fault::FlipAt(_) => "flip",
            Fault::DelayAnswer(_) => "delay",
        }
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (host:port).
    pub fn start(upstream: &str, chooser: Arc<Chooser>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy binds");
        let addr = listener.local_addr().expect("fault proxy address");
        listener
            .set_nonblocking(true)
            .expect("fault proxy listener non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let applied = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_string();
        {
            let (stop, applied, connections) = (stop.clone(), applied.clone(), connections.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            let (upstream, chooser, applied) =
                                (upstream.clone(), chooser.clone(), applied.clone());
                            std::thread::spawn(move || {
                                let _ = serve(client, &upstream, &*chooser, &applied);
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        FaultProxy {
            addr,
            stop,
            applied,
            connections,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many answers got each fault.
    pub fn applied(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.applied.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads up to the end of an HTTP head; returns the head and any bytes after it.
fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn set_content_length(head: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        let is_cl = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"));
        if is_cl {
            out.push_str(&format!("content-length: {n}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    chooser: &Chooser,
    applied: &Mutex<std::collections::BTreeMap<&'static str, u64>>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, early_body) = read_head(&mut client)?;
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let fault = chooser(&line);
    if let Ok(mut m) = applied.lock() {
        *m.entry(fault.name()).or_insert(0) += 1;
    }
    if let Fault::Status(code) = fault {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>injected</Message></Error>",
            if code == 503 {
                "SlowDown"
            } else {
                "InternalError"
            }
        );
        let resp = format!(
            "HTTP/1.1 {code} Injected\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(resp.as_bytes())?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    up.write_all(&head)?;
    up.write_all(&early_body)?;
    // Client → backend: the rest of the request body, as it comes.
    {
        let mut c = client.try_clone()?;
        let mut u = up.try_clone()?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut c, &mut u);
            let _ = u.shutdown(Shutdown::Write);
        });
    }
    let (resp_head, mut body) = read_head(&mut up)?;
    let is_head_request = line.starts_with("HEAD ");
    let len = if is_head_request {
        None
    } else {
        content_length(&resp_head)
    };
    // Without a known body length (HEAD, chunked) only pass-through is meaningful.
    let Some(len) = len else {
        client.write_all(&resp_head)?;
        client.write_all(&body)?;
        std::io::copy(&mut up, &mut client)?;
        return Ok(());
    };
    let mut chunk = vec![0u8; 65536];
    while body.len() < len {
        let n = up.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if let Fault::DelayAnswer(d) = fault {
        std::thread::sleep(d);
    }
    match fault {
        Fault::Pass | Fault::Status(_) | Fault::DelayAnswer(_) => {
            client.write_all(&resp_head)?;
            client.write_all(&body)?;
        }
        Fault::ResetAt(at) => {
            client.write_all(&resp_head)?;
            client.write_all(&body[..at.min(body.len())])?;
            client.flush()?;
            // An abrupt close in the middle of the body (std has no stable SO_LINGER
            // to force a reset; the peer sees the connection end mid-body either way).
            let _ = client.shutdown(Shutdown::Both);
            drop(client);
            return Ok(());
        }
        Fault::TruncateAt(at) => {
            client.write_all(&resp_head)?;
            client.write_all(&body[..at.min(body.len())])?;
        }
        Fault::StallAt(at, d) => {
            client.write_all(&resp_head)?;
            client.write_all(&body[..at.min(body.len())])?;
            client.flush()?;
            std::thread::sleep(d);
        }
        Fault::ShortLength(k) => {
            let n = body.len().saturating_sub(k);
            client.write_all(&set_content_length(&resp_head, n))?;
            client.write_all(&body[..n])?;
        }
        Fault::LongLength(k) => {
            client.write_all(&set_content_length(&resp_head, body.len() + k))?;
            client.write_all(&body)?;
        }
        Fault::FlipAt(at) => {
            client.write_all(&resp_head)?;
            let mut b = body;
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= 0x01;
            }
            client.write_all(&b)?;
        }
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
