//! 1,000 clients that disconnect in the middle of an upload — single PUTs (signed
//! payload and UNSIGNED-PAYLOAD), UploadPart, and CompleteMultipartUpload bodies — at
//! random offsets, by reset or by half-close. None of those objects may become
//! visible: not on the backend's disk, not to HEAD, not in a listing; and the proxy
//! keeps serving.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime};

mod raw;

use raw::*;

const BUCKET: &str = "disconnects";

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if n == 0 { 0 } else { (self.0 >> 33) % n }
    }
}

/// Sends `bytes[..cut]` and leaves: an abrupt close of both directions or a half-close.
fn send_and_vanish(p: &Proxy, bytes: &[u8], cut: usize, reset: bool) {
    let Ok(mut s) = TcpStream::connect(p.addr) else {
        return;
    };
    let _ = s.write_all(&bytes[..cut.min(bytes.len())]);
    let _ = s.flush();
    if reset {
        // Gone at once, both directions (std has no stable SO_LINGER for a true RST).
        let _ = s.shutdown(Shutdown::Both);
    } else {
        let _ = s.shutdown(Shutdown::Write);
        // Give the server a moment to see the end before the socket goes.
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut b = [0u8; 256];
        let _ = std::io::Read::read(&mut s, &mut b);
    }
}

fn put_bytes(p: &Proxy, path: &str, body: &[u8], unsigned: bool) -> Vec<u8> {
    let host = p.addr.to_string();
    let payload = if unsigned {
        "UNSIGNED-PAYLOAD".to_string()
    } else {
        sha256_hex(body)
    };
    sign_header(
        Req::new("PUT", path, body),
        &host,
        &p.ak,
        &p.sk,
        SystemTime::now(),
        &payload,
    )
    .raw(&host, true)
}

fn head_len(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4)
}

fn start_upload(p: &Proxy, key: &str) -> String {
    let r = request(
        p.addr,
        &signed_request(p, "POST", &format!("/{BUCKET}/{key}?uploads"), b"", &[]),
    )
    .expect("create multipart upload");
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(r.status, 200, "{body}");
    let s = body.find("<UploadId>").expect("upload id") + 10;
    let e = body.find("</UploadId>").expect("upload id end");
    body[s..e].to_string()
}

#[test]
fn uploads_cut_short_never_become_visible() {
    let started = Instant::now();
    let p = Proxy::start();
    let mk = request(
        p.addr,
        &signed_request(&p, "PUT", &format!("/{BUCKET}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200);
    let mut rng = Lcg(0xD15C0);
    let total = 1000u64;
    let mut keys = Vec::new();
    let (mut singles, mut parts, mut completes) = (0, 0, 0);
    for i in 0..total {
        let key = format!("cut-{i:04}");
        let reset = rng.below(2) == 0;
        let kind = rng.below(10);
        if kind < 7 {
            // A single PUT cut inside its body.
            let len = 1 + rng.below(200_000) as usize;
            let body = vec![b'x'; len];
            let bytes = put_bytes(&p, &format!("/{BUCKET}/{key}"), &body, rng.below(2) == 0);
            let h = head_len(&bytes);
            let cut = h + rng.below(len as u64) as usize;
            send_and_vanish(&p, &bytes, cut, reset);
            singles += 1;
        } else {
            // Multipart: part 1 complete, part 2 cut, then a complete request cut.
            let upload = start_upload(&p, &key);
            let part1 = vec![b'p'; 1024];
            let ok = request(
                p.addr,
                &signed_request(
                    &p,
                    "PUT",
                    &format!("/{BUCKET}/{key}?partNumber=1&uploadId={upload}"),
                    &part1,
                    &[],
                ),
            )
            .expect("part 1");
            assert_eq!(ok.status, 200, "part 1");
            let etag = ok.header("etag").unwrap_or_default().to_string();
            let part2 = vec![b'q'; 1 + rng.below(100_000) as usize];
            let bytes = put_bytes(
                &p,
                &format!("/{BUCKET}/{key}?partNumber=2&uploadId={upload}"),
                &part2,
                rng.below(2) == 0,
            );
            let cut = head_len(&bytes) + rng.below(part2.len() as u64) as usize;
            send_and_vanish(&p, &bytes, cut, reset);
            parts += 1;
            let xml = format!(
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
            );
            let bytes = signed_request(
                &p,
                "POST",
                &format!("/{BUCKET}/{key}?uploadId={upload}"),
                xml.as_bytes(),
                &[],
            );
            let cut = head_len(&bytes) + rng.below(xml.len() as u64) as usize;
            send_and_vanish(&p, &bytes, cut, reset);
            completes += 1;
        }
        keys.push(key);
    }
    // Let the proxy finish whatever it was doing with the broken requests.
    std::thread::sleep(Duration::from_secs(2));
    let mut visible = Vec::new();
    for key in &keys {
        if p.object_exists(BUCKET, key) {
            visible.push(format!("{key}: on disk"));
        }
        let head = request(
            p.addr,
            &signed_request(&p, "HEAD", &format!("/{BUCKET}/{key}"), b"", &[]),
        );
        if head.as_ref().map(|r| r.status) != Some(404) {
            visible.push(format!("{key}: HEAD answered {:?}", head.map(|r| r.status)));
        }
    }
    let list = request(
        p.addr,
        &signed_request(&p, "GET", &format!("/{BUCKET}?list-type=2"), b"", &[]),
    )
    .expect("list");
    let listing = String::from_utf8_lossy(&list.body).to_string();
    assert_eq!(list.status, 200, "{listing}");
    let listed = listing.matches("<Key>").count();
    // Still serving, and a full upload still works.
    let good = request(
        p.addr,
        &put_bytes(&p, &format!("/{BUCKET}/after"), b"fine", false),
    )
    .expect("put after");
    assert_eq!(good.status, 200);
    println!(
        "disconnects: {total} cut uploads ({singles} PUT, {parts} UploadPart + {completes} Complete) in {:.1?}; {} visible, {listed} listed",
        started.elapsed(),
        visible.len()
    );
    assert!(visible.is_empty(), "{}", visible.join("\n"));
    assert_eq!(listed, 0, "listing shows objects: {listing}");
}
