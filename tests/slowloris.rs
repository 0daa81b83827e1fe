//! Slow clients against a normal one.
//!
//! - Slowloris: 500 connections trickle request-head bytes (one byte per connection
//!   every 300 ms, reconnecting when the proxy drops them) while a normal client makes
//!   200 signed GETs. Its p50/p99 with and without the attack are printed; p99 under
//!   attack must stay below max(10 × baseline p99, 250 ms) with 0 failures.
//! - A request body that stalls gets 400 `RequestTimeout` after
//!   `server.stall_timeout_secs`, and nothing is stored.
//! - `limits.requests_per_second_per_client` answers 503 `SlowDown` past the rate.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod raw;

use raw::*;

const BUCKET: &str = "slowloris";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `n` signed GETs of a small object, one connection each; latencies and failures.
fn normal_client(p: &Proxy, n: usize, want: &[u8]) -> (Vec<Duration>, usize) {
    let mut lat = Vec::with_capacity(n);
    let mut failures = 0;
    for _ in 0..n {
        let bytes = signed_request(p, "GET", &format!("/{BUCKET}/small"), b"", &[]);
        let t = Instant::now();
        let r = request(p.addr, &bytes);
        lat.push(t.elapsed());
        if r.as_ref().map(|r| (r.status, r.body.as_slice())) != Some((200, want)) {
            failures += 1;
        }
    }
    lat.sort_unstable();
    (lat, failures)
}

#[test]
fn slowloris_does_not_starve_a_normal_client() {
    let p = Proxy::start_with(|c| {
        c.server.header_timeout_secs = 3;
    });
    let mk = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200);
    let want = b"small object for latency".to_vec();
    let put = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}/small"), &want, &[]),
    )
    .unwrap();
    assert_eq!(put.status, 200);

    let (base, base_fail) = normal_client(&p, 200, &want);
    let (b50, b99) = (percentile(&base, 0.5), percentile(&base, 0.99));

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, opened, dropped, addr) = (stop.clone(), opened.clone(), dropped.clone(), p.addr);
        std::thread::spawn(move || {
            let head = format!("GET /{BUCKET}/small HTTP/1.1\r\nhost: {addr}\r\nx-amz-meta-pad: ");
            let head = head.as_bytes().to_vec();
            let connect = || {
                let s = TcpStream::connect(addr).ok()?;
                s.set_nonblocking(true).ok()?;
                Some((s, 0usize))
            };
            let mut conns: Vec<Option<(TcpStream, usize)>> = (0..500).map(|_| connect()).collect();
            opened.fetch_add(
                conns.iter().filter(|c| c.is_some()).count() as u64,
                Ordering::SeqCst,
            );
            while !stop.load(Ordering::SeqCst) {
                for c in conns.iter_mut() {
                    let alive = match c {
                        Some((s, sent)) => {
                            let b = head.get(*sent).copied().unwrap_or(b'a');
                            match s.write(&[b]) {
                                Ok(n) => {
                                    *sent += n;
                                    true
                                }
                                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                            }
                        }
                        None => false,
                    };
                    if !alive {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        *c = connect();
                        if c.is_some() {
                            opened.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    // Let the attack build up past one header timeout, so the proxy is also busy
    // dropping and accepting slow connections while the normal client runs.
    std::thread::sleep(Duration::from_secs(4));
    let (attacked, attacked_fail) = normal_client(&p, 200, &want);
    stop.store(true, Ordering::SeqCst);
    let _ = attacker.join();
    let (a50, a99) = (percentile(&attacked, 0.5), percentile(&attacked, 0.99));
    let bound = (b99 * 10).max(Duration::from_millis(250));
    println!(
        "slowloris: baseline p50 {b50:?} p99 {b99:?} ({base_fail} failures); under 500 trickling connections p50 {a50:?} p99 {a99:?} ({attacked_fail} failures); bound {bound:?}; attacker opened {} connections, {} dropped by the proxy",
        opened.load(Ordering::SeqCst),
        dropped.load(Ordering::SeqCst)
    );
    assert_eq!(base_fail + attacked_fail, 0, "normal requests failed");
    assert!(a99 <= bound, "p99 under attack {a99:?} above {bound:?}");
    assert!(
        dropped.load(Ordering::SeqCst) >= 100,
        "the header timeout must drop the trickling connections"
    );
}

#[test]
fn a_stalled_body_gets_request_timeout_and_stores_nothing() {
    let p = Proxy::start_with(|c| {
        c.server.stall_timeout_secs = 2;
    });
    let mk = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200);
    let body = vec![b's'; 10_000];
    let bytes = signed_request(&p, "PUT", &format!("/{BUCKET}/stalled"), &body, &[]);
    let cut = bytes.len() - 5000;
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t = Instant::now();
    s.write_all(&bytes[..cut]).unwrap();
    // ... and nothing more: the body stalls with 5,000 bytes to go.
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!("stalled body answered {status} after {took:?}");
    assert_eq!(status, 400, "{text}");
    assert_eq!(code_of(&text).as_deref(), Some("RequestTimeout"), "{text}");
    assert!(
        text.contains("not read from or written to within the timeout period"),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(!p.object_exists(BUCKET, "stalled"));
    // A body that trickles but keeps moving is not cut off.
    let bytes = signed_request(&p, "PUT", &format!("/{BUCKET}/trickled"), &body, &[]);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    s.write_all(&bytes[..head]).unwrap();
    for piece in bytes[head..].chunks(2500) {
        std::thread::sleep(Duration::from_millis(1000));
        s.write_all(piece).unwrap();
    }
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(p.object_exists(BUCKET, "trickled"));
}

#[test]
fn requests_over_the_per_client_rate_slow_down() {
    let p = Proxy::start_with(|c| {
        c.limits.requests_per_second_per_client = 5;
        c.limits.request_burst_per_client = 10;
    });
    let mk = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200);
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = request(
            p.addr,
            &signed_request(&p, "GET", &format!("/{BUCKET}?list-type=2"), b"", &[]),
        )
        .unwrap();
        if r.status == 503 {
            let text = String::from_utf8_lossy(&r.body).to_string();
            assert_eq!(code_of(&text).as_deref(), Some("SlowDown"), "{text}");
            assert_eq!(r.header("retry-after"), Some("1"));
        }
        statuses.push(r.status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let slow = statuses.iter().filter(|s| **s == 503).count();
    println!("rate limit: {ok} served, {slow} SlowDown of 30 back-to-back requests");
    assert_eq!(ok + slow, 30, "{statuses:?}");
    // The burst (10, the bucket creation took one) plus what refilled meanwhile.
    assert!((9..=20).contains(&ok), "{statuses:?}");
    // After a pause the client is served again.
    std::thread::sleep(Duration::from_millis(1200));
    let r = request(
        p.addr,
        &signed_request(&p, "GET", &format!("/{BUCKET}?list-type=2"), b"", &[]),
    )
    .unwrap();
    assert_eq!(r.status, 200);
}
