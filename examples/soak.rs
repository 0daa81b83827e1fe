//! The soak tool of `scripts/soak.sh`: `concurrency` workers mix PUT, GET (whole and
//! ranged), LIST, COPY, multipart uploads and DELETE against one S3 endpoint for
//! `duration` seconds. Each worker owns its key prefix and remembers the SHA-256 of
//! what it last wrote under each key, so every byte read back is checked. A sampler
//! reads the proxy's RSS and open descriptors from `/proc/PID` every few seconds.
//! The summary: operations by type, errors, mismatches, RSS and fd first/max/last and
//! RSS slope; the exit status is non-zero on any mismatch, unexpected error, or growth
//! past the bounds (`--max-rss-growth-mib`, `--max-fd-growth`). Descriptors are judged
//! once the load has stopped and the proxy's pools have closed their idle connections
//! (`--settle-secs`, default 60: the backend pool's idle timeout is 30 s, checked every
//! 15 s), against the count before the load: under load the count moves with the number
//! of pooled backend connections, up to the pool's bound per host, so a count taken
//! while it runs says little about a leak.
//!
//! ```text
//! soak --endpoint http://127.0.0.1:8333 --access-key AK --secret-key SK --pid PID \
//!      [--duration 300] [--concurrency 32] [--bucket soak] [--copy] [--copy-required]
//!      [--strict-list]
//! ```
//! COPY of encrypted objects may answer 501 while it is being built: `--copy` puts it in
//! the mix and tolerates 501 (counted apart); `--copy-required` makes 501 an error.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use sha2::{Digest, Sha256};

struct Args {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    pid: Option<u32>,
    duration: Duration,
    concurrency: usize,
    bucket: String,
    copy: bool,
    copy_required: bool,
    strict_list: bool,
    max_rss_growth_mib: f64,
    max_fd_growth: i64,
    sample_every: Duration,
    settle: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut flags = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a}"));
        };
        if matches!(name, "copy" | "copy-required" | "strict-list") {
            flags.push(name.to_string());
        } else {
            let v = it.next().ok_or(format!("--{name} needs a value"))?;
            m.insert(name.to_string(), v);
        }
    }
    let get = |k: &str| m.get(k).cloned().ok_or(format!("--{k} is required"));
    let num = |k: &str, d: u64| -> Result<u64, String> {
        m.get(k).map_or(Ok(d), |v| {
            v.parse().map_err(|_| format!("--{k}: not a number"))
        })
    };
    let endpoint = get("endpoint")?;
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    Ok(Args {
        addr: hostport
            .parse()
            .map_err(|_| format!("--endpoint: {endpoint} is not http://IP:PORT"))?,
        access_key: get("access-key")?,
        secret_key: get("secret-key")?,
        pid: m.get("pid").and_then(|p| p.parse().ok()),
        duration: Duration::from_secs(num("duration", 300)?),
        concurrency: usize::try_from(num("concurrency", 32)?).unwrap_or(32),
        bucket: m.get("bucket").cloned().unwrap_or_else(|| "soak".into()),
        copy: flags.iter().any(|f| f == "copy" || f == "copy-required"),
        copy_required: flags.iter().any(|f| f == "copy-required"),
        strict_list: flags.iter().any(|f| f == "strict-list"),
        max_rss_growth_mib: num("max-rss-growth-mib", 64)? as f64,
        max_fd_growth: i64::try_from(num("max-fd-growth", 64)?).unwrap_or(64),
        sample_every: Duration::from_secs(num("sample-secs", 5)?),
        settle: Duration::from_secs(num("settle-secs", 60)?),
    })
}

struct Client {
    addr: SocketAddr,
    host: String,
    identity: Identity,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    complete: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn new(a: &Args) -> Client {
        Client {
            addr: a.addr,
            host: a.addr.to_string(),
            identity: Credentials::new(&a.access_key, &a.secret_key, None, None, "soak").into(),
        }
    }

    /// One signed request on its own connection; `None` when the connection failed.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        extra: &[(&str, String)],
    ) -> Option<Answer> {
        let payload = hex::encode(Sha256::digest(body));
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), payload.clone()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        settings.signature_location = SignatureLocation::Headers;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .ok()?
            .into();
        let uri = format!("http://{}{path}", self.host);
        let signable = SignableRequest::new(
            method,
            uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Precomputed(payload),
        )
        .ok()?;
        let (instructions, _) = sign(signable, &params).ok()?.into_parts();
        let mut raw = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
        for (k, v) in &headers {
            raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        for (k, v) in instructions.headers() {
            raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        raw.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        raw.extend_from_slice(body);
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        s.write_all(&raw).ok()?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let body = buf.get(split + 4..).unwrap_or_default().to_vec();
        let complete = method == "HEAD"
            || headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .is_none_or(|n| n == body.len());
        Some(Answer {
            status,
            headers,
            body,
            complete,
        })
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let seed = self.next();
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }
}

#[derive(Default)]
struct Stats {
    ops: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    mismatches: Vec<String>,
    list_sizes: Vec<String>,
    copy_unsupported: u64,
}

impl Stats {
    fn op(&mut self, name: &'static str) {
        *self.ops.entry(name).or_insert(0) += 1;
    }
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_insert(0) += 1;
    }
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// One worker: its own keys, its own record of what they hold.
fn worker(id: usize, a: &Args, stop: &AtomicBool, stats: &Mutex<Stats>) {
    let c = Client::new(a);
    let mut rng = Lcg(0x50A4 + id as u64);
    let mut held: HashMap<String, (usize, [u8; 32])> = HashMap::new();
    let bucket = &a.bucket;
    let mut local = Stats::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("w{id:02}/k{:03}", rng.below(50));
        let dice = rng.below(100);
        let check = |local: &mut Stats,
                     what: &'static str,
                     r: Option<Answer>,
                     ok: &[u16]|
         -> Option<Answer> {
            match r {
                None => {
                    local.error(format!("{what}: connection failed"));
                    None
                }
                Some(r) if ok.contains(&r.status) && r.complete => Some(r),
                Some(r) => {
                    local.error(format!(
                        "{what}: {}{}",
                        r.status,
                        if r.complete { "" } else { " (incomplete)" }
                    ));
                    None
                }
            }
        };
        if dice < 30 || held.is_empty() {
            local.op("put");
            let len = match rng.below(10) {
                0 => 0,
                1..=6 => rng.below(64 * 1024) as usize,
                _ => rng.below(1024 * 1024) as usize,
            };
            let body = rng.bytes(len);
            if check(
                &mut local,
                "put",
                c.call("PUT", &format!("/{bucket}/{key}"), &body, &[]),
                &[200],
            )
            .is_some()
            {
                held.insert(key, (len, sha(&body)));
            }
        } else if dice < 65 {
            local.op("get");
            let Some((k, (len, hash))) = held.iter().nth(rng.below(held.len() as u64) as usize)
            else {
                continue;
            };
            let ranged = *len > 1 && rng.below(3) == 0;
            if ranged {
                local.op("get-range");
                let start = rng.below(*len as u64) as usize;
                let end = start + rng.below((*len - start) as u64) as usize;
                let r = c.call(
                    "GET",
                    &format!("/{bucket}/{k}"),
                    b"",
                    &[("range", format!("bytes={start}-{end}"))],
                );
                if let Some(r) = check(&mut local, "get-range", r, &[206]) {
                    // The slice is checked against a full read below when both agree on
                    // length; a wrong length is a mismatch on its own.
                    if r.body.len() != end - start + 1 {
                        local
                            .mismatches
                            .push(format!("{k} bytes={start}-{end}: {} bytes", r.body.len()));
                    } else if let Some(full) = check(
                        &mut local,
                        "get",
                        c.call("GET", &format!("/{bucket}/{k}"), b"", &[]),
                        &[200],
                    ) && sha(&full.body) == *hash
                        && full.body.get(start..=end) != Some(r.body.as_slice())
                    {
                        local
                            .mismatches
                            .push(format!("{k} bytes={start}-{end}: wrong bytes"));
                    }
                }
            } else if let Some(r) = check(
                &mut local,
                "get",
                c.call("GET", &format!("/{bucket}/{k}"), b"", &[]),
                &[200],
            ) && (r.body.len() != *len || sha(&r.body) != *hash)
            {
                local.mismatches.push(format!(
                    "{k}: {} bytes read, {len} written, hash differs",
                    r.body.len()
                ));
            }
        } else if dice < 75 {
            local.op("list");
            let r = c.call(
                "GET",
                &format!("/{bucket}?list-type=2&prefix=w{id:02}/&max-keys=1000"),
                b"",
                &[],
            );
            if let Some(r) = check(&mut local, "list", r, &[200]) {
                let text = String::from_utf8_lossy(&r.body);
                for (k, (len, _)) in &held {
                    let entry = format!("<Key>{k}</Key>");
                    let Some(i) = text.find(&entry) else {
                        local.mismatches.push(format!("list: {k} missing"));
                        continue;
                    };
                    let size = text[i..]
                        .split("<Size>")
                        .nth(1)
                        .and_then(|s| s.split("</Size>").next())
                        .and_then(|s| s.parse::<usize>().ok());
                    if size != Some(*len) {
                        // Reported apart: listed sizes lag behind overwrites today (a
                        // known issue of the list size rewriting); data reads are what
                        // must never mismatch. `--strict-list` counts them as failures.
                        local
                            .list_sizes
                            .push(format!("list: {k} size {size:?}, want {len}"));
                    }
                }
            }
        } else if dice < 83 && a.copy {
            local.op("copy");
            let Some((src, entry)) = held
                .iter()
                .nth(rng.below(held.len() as u64) as usize)
                .map(|(k, v)| (k.clone(), *v))
            else {
                continue;
            };
            if src == key {
                continue;
            }
            let r = c.call(
                "PUT",
                &format!("/{bucket}/{key}"),
                b"",
                &[("x-amz-copy-source", format!("/{bucket}/{src}"))],
            );
            match r {
                Some(r) if r.status == 501 && !a.copy_required => {
                    local.copy_unsupported += 1;
                }
                r => {
                    if check(&mut local, "copy", r, &[200]).is_some() {
                        held.insert(key, entry);
                    } else {
                        // The destination's state is unknown after a failed copy.
                        held.remove(&key);
                    }
                }
            }
        } else if dice < 90 {
            local.op("multipart");
            let r = check(
                &mut local,
                "multipart-create",
                c.call("POST", &format!("/{bucket}/{key}?uploads"), b"", &[]),
                &[200],
            );
            let Some(r) = r else { continue };
            let text = String::from_utf8_lossy(&r.body).to_string();
            let Some(upload) = text
                .split("<UploadId>")
                .nth(1)
                .and_then(|s| s.split("</UploadId>").next())
                .map(str::to_string)
            else {
                local.error("multipart-create: no UploadId".into());
                continue;
            };
            let sizes: Vec<usize> = if rng.below(4) == 0 {
                vec![5 * 1024 * 1024, 1 + rng.below(200_000) as usize]
            } else {
                vec![1 + rng.below(300_000) as usize]
            };
            let mut whole = Vec::new();
            let mut parts = String::new();
            let mut ok = true;
            for (i, size) in sizes.iter().enumerate() {
                let body = rng.bytes(*size);
                let r = c.call(
                    "PUT",
                    &format!("/{bucket}/{key}?partNumber={}&uploadId={upload}", i + 1),
                    &body,
                    &[],
                );
                let Some(r) = check(&mut local, "upload-part", r, &[200]) else {
                    ok = false;
                    break;
                };
                let etag = r.header("etag").unwrap_or_default().to_string();
                parts.push_str(&format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
                    i + 1
                ));
                whole.extend_from_slice(&body);
            }
            if !ok {
                let _ = c.call(
                    "DELETE",
                    &format!("/{bucket}/{key}?uploadId={upload}"),
                    b"",
                    &[],
                );
                continue;
            }
            let xml = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
            let r = c.call(
                "POST",
                &format!("/{bucket}/{key}?uploadId={upload}"),
                xml.as_bytes(),
                &[],
            );
            if let Some(r) = check(&mut local, "multipart-complete", r, &[200]) {
                if String::from_utf8_lossy(&r.body).contains("<Error>") {
                    local.error("multipart-complete: error in a 200".into());
                    held.remove(&key);
                } else {
                    held.insert(key, (whole.len(), sha(&whole)));
                }
            } else {
                held.remove(&key);
            }
        } else {
            local.op("delete");
            if check(
                &mut local,
                "delete",
                c.call("DELETE", &format!("/{bucket}/{key}"), b"", &[]),
                &[204, 200],
            )
            .is_some()
            {
                held.remove(&key);
                let _ = check(
                    &mut local,
                    "head-deleted",
                    c.call("HEAD", &format!("/{bucket}/{key}"), b"", &[]),
                    &[404],
                );
            }
        }
        if n.is_multiple_of(50) {
            flush(&mut local, stats);
        }
    }
    flush(&mut local, stats);
}

fn flush(local: &mut Stats, stats: &Mutex<Stats>) {
    let Ok(mut s) = stats.lock() else { return };
    for (k, v) in std::mem::take(&mut local.ops) {
        *s.ops.entry(k).or_insert(0) += v;
    }
    for (k, v) in std::mem::take(&mut local.errors) {
        *s.errors.entry(k).or_insert(0) += v;
    }
    s.mismatches.append(&mut local.mismatches);
    s.list_sizes.append(&mut local.list_sizes);
    s.copy_unsupported += std::mem::take(&mut local.copy_unsupported);
}

/// (seconds since start, RSS KiB, open fds)
fn sample(pid: u32) -> Option<(u64, i64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, i64::try_from(fds).unwrap_or(i64::MAX)))
}

/// The proxy's open descriptors once they are at most `bound`, or after `limit`; and
/// how long that took.
fn settled_fds(pid: u32, bound: i64, limit: Duration) -> (i64, Duration) {
    let t0 = Instant::now();
    loop {
        let fds = sample(pid).map_or(i64::MAX, |(_, fds)| fds);
        if fds <= bound || t0.elapsed() >= limit {
            return (fds, t0.elapsed());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

fn main() -> std::process::ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let c = Client::new(&a);
    match c.call("PUT", &format!("/{}", a.bucket), b"", &[]) {
        Some(r) if r.status == 200 || r.status == 409 => {}
        other => {
            eprintln!(
                "soak: cannot create bucket {}: {:?}",
                a.bucket,
                other.map(|r| r.status)
            );
            return std::process::ExitCode::FAILURE;
        }
    }
    let fds_before = a.pid.and_then(sample).map(|(_, fds)| fds);
    let stop = AtomicBool::new(false);
    let stats = Mutex::new(Stats::default());
    let samples: Mutex<Vec<(f64, u64, i64)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for id in 0..a.concurrency {
            let (a, stop, stats) = (&a, &stop, &stats);
            s.spawn(move || worker(id, a, stop, stats));
        }
        let (a, stop, samples) = (&a, &stop, &samples);
        s.spawn(move || {
            let mut next = Instant::now();
            while started.elapsed() < a.duration {
                if let Some(pid) = a.pid
                    && Instant::now() >= next
                {
                    if let Some((rss, fds)) = sample(pid)
                        && let Ok(mut v) = samples.lock()
                    {
                        v.push((started.elapsed().as_secs_f64(), rss, fds));
                    }
                    next += a.sample_every;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            stop.store(true, Ordering::SeqCst);
        });
    });
    let took = started.elapsed();
    let stats = stats.into_inner().unwrap_or_default();
    let samples = samples.into_inner().unwrap_or_default();
    let total: u64 = stats.ops.values().sum();
    println!(
        "soak: {:.0} s at concurrency {}: {total} operations ({:.0}/s)",
        took.as_secs_f64(),
        a.concurrency,
        total as f64 / took.as_secs_f64()
    );
    for (k, v) in &stats.ops {
        println!("  {k:<12} {v}");
    }
    if a.copy {
        println!(
            "  copy answered 501 (not built yet) {} times",
            stats.copy_unsupported
        );
    }
    let errors: u64 = stats.errors.values().sum();
    println!("errors: {errors}");
    for (k, v) in &stats.errors {
        println!("  {k}: {v}");
    }
    println!("mismatches: {}", stats.mismatches.len());
    for m in stats.mismatches.iter().take(20) {
        println!("  {m}");
    }
    println!(
        "listed sizes behind the last write: {}{}",
        stats.list_sizes.len(),
        if a.strict_list {
            " (counted as mismatches)"
        } else {
            " (reported, not failing)"
        }
    );
    for m in stats.list_sizes.iter().take(5) {
        println!("  {m}");
    }
    let list_failed = a.strict_list && !stats.list_sizes.is_empty();
    let mut failed = errors > 0 || !stats.mismatches.is_empty() || list_failed || total == 0;
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        // Growth is measured from the sample after the first fifth of the run, when
        // caches and pools have filled; the slope over the same span.
        let warm = samples.get(samples.len() / 5).unwrap_or(first);
        let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let max_fd = samples.iter().map(|s| s.2).max().unwrap_or(0);
        let pts: Vec<(f64, f64)> = samples[samples.len() / 5..]
            .iter()
            .map(|s| (s.0 / 60.0, s.1 as f64 / 1024.0))
            .collect();
        let rss_slope = slope(&pts);
        let growth = (last.1 as f64 - warm.1 as f64) / 1024.0;
        println!(
            "rss MiB: first {:.1} warm {:.1} max {:.1} last {:.1}; growth after warm-up {growth:.1} MiB, slope {rss_slope:.2} MiB/min (bound {} MiB)",
            first.1 as f64 / 1024.0,
            warm.1 as f64 / 1024.0,
            max_rss as f64 / 1024.0,
            last.1 as f64 / 1024.0,
            a.max_rss_growth_mib
        );
        println!(
            "open fds under load: first {} warm {} max {max_fd} last {}",
            first.2, warm.2, last.2
        );
        let fds_leaked = match (a.pid, fds_before) {
            (Some(pid), Some(before)) => {
                let bound = before + a.max_fd_growth;
                let (after, waited) = settled_fds(pid, bound, a.settle);
                println!(
                    "open fds: {before} before the load, {after} {:.0} s after it (bound: before + {})",
                    waited.as_secs_f64(),
                    a.max_fd_growth
                );
                after > bound
            }
            _ => false,
        };
        if growth > a.max_rss_growth_mib || fds_leaked {
            println!("FAIL: resource growth past the bound");
            failed = true;
        }
    } else if a.pid.is_some() {
        println!("FAIL: no /proc samples of the proxy");
        failed = true;
    }
    if failed {
        println!("soak: FAILED");
        std::process::ExitCode::FAILURE
    } else {
        println!("soak: passed");
        std::process::ExitCode::SUCCESS
    }
}
