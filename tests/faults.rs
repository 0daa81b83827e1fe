//! Fault injection between sealgate and its backend, and in front of its KMS.
//!
//! - 1,000 object GETs through a [`FaultProxy`] that breaks every backend answer to an
//!   object GET (reset, truncate, stall, 500/503, short or long `Content-Length`, a
//!   flipped bit): no client may receive a complete 200/206 whose bytes are wrong or
//!   short. Against the embedded backend always, against Ceph RGW when it is there.
//! - 1,000 PUTs with an aws-kind KMS stand-in that fails, throttles, stalls or answers
//!   garbage: no plaintext reaches the backend, every stored object carries an
//!   envelope, every failed PUT stored nothing.
//!
//! sealgate does not retry backend requests itself (hyper's pool only resends a request
//! that never left on a dead pooled connection), so there is no re-signed retry to
//! check; these tests run with pooling off (`pool_max_idle_per_host = 0`).

mod common;
mod raw;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use common::fault_proxy::{Fault, FaultProxy};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use raw::{RawResponse, Req, request, sha256_hex, sign_header};

/// A small deterministic generator shared by threads.
struct Rng(AtomicU64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(AtomicU64::new(seed | 1))
    }
    fn next(&self) -> u64 {
        // xorshift64*, advanced atomically enough for test randomness.
        let mut x = self.0.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self
                .0
                .compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return y.wrapping_mul(0x2545_F491_4F6C_DD1D),
                Err(cur) => x = cur,
            }
        }
    }
    fn below(&self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let r = Rng::new(seed);
    (0..len).map(|_| r.next() as u8).collect()
}

/// sealgate in front of `upstream` (host:port) with a fault proxy between them.
struct Rig {
    runtime: tokio::runtime::Runtime,
    running: Option<sealgate::Running>,
    embedded: Option<sealgate::embedded::EmbeddedBackend>,
    addr: SocketAddr,
    ak: String,
    sk: String,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `backend`: None = a fresh embedded backend. `tweak` adjusts the config last.
    fn start(
        backend: Option<(String, String, String)>,
        front: impl FnOnce(&str) -> String,
        tweak: impl FnOnce(&mut sealgate::config::Config),
    ) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (embedded, (endpoint, ak, sk)) = match backend {
            Some(b) => (None, b),
            None => {
                let e = runtime
                    .block_on(sealgate::embedded::EmbeddedBackend::start(
                        &dir.path().join("embedded"),
                    ))
                    .expect("embedded backend starts");
                let t = (
                    e.endpoint.clone(),
                    e.access_key.clone(),
                    e.secret_key.clone(),
                );
                (Some(e), t)
            }
        };
        let hostport = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut config = sealgate::config::Config::default();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.admin_listen = "127.0.0.1:0".parse().expect("addr");
        config.server.shutdown_grace_secs = 2;
        config.backend.endpoint = Some(front(&hostport));
        config.backend.access_key = Some(ak);
        config.backend.secret_key = Some(sk);
        config.backend.region = "us-east-1".into();
        config.backend.pool_max_idle_per_host = 0;
        config.backend.response_timeout_secs = 10;
        config.embedded.data_dir = dir.path().join("unused");
        config.kms.master_key_file = Some(dir.path().join("master.key"));
        config.log.level = "error".into();
        tweak(&mut config);
        let running = runtime
            .block_on(sealgate::start(config))
            .expect("sealgate starts");
        let e = running.endpoints.clone();
        Rig {
            runtime,
            running: Some(running),
            embedded,
            addr: e.s3,
            ak: e.client_access_key,
            sk: e.client_secret_key,
            _dir: dir,
        }
    }

    /// A rig whose backend (`backend`, or a fresh embedded one) sits behind a fault
    /// proxy that answers each request line with `fault` while `armed`, and passes it
    /// otherwise; `tweak` adjusts the config last. Returns the rig and its fault proxy.
    fn behind_faults(
        backend: Option<(String, String, String)>,
        armed: &Arc<AtomicBool>,
        fault: impl Fn(&str) -> Fault + Send + Sync + 'static,
        tweak: impl FnOnce(&mut sealgate::config::Config),
    ) -> (Rig, Arc<Mutex<Option<FaultProxy>>>) {
        let chooser = {
            let armed = armed.clone();
            move |line: &str| {
                if armed.load(Ordering::SeqCst) {
                    fault(line)
                } else {
                    Fault::Pass
                }
            }
        };
        let holder: Arc<Mutex<Option<FaultProxy>>> = Arc::new(Mutex::new(None));
        let rig = {
            let holder = holder.clone();
            Rig::start(
                backend,
                move |up| {
                    let fp = FaultProxy::start(up, Arc::new(chooser));
                    let e = fp.endpoint();
                    if let Ok(mut h) = holder.lock() {
                        *h = Some(fp);
                    }
                    e
                },
                tweak,
            )
        };
        (rig, holder)
    }

    /// Creates `bucket` and stores `objects` (key, bytes) in it.
    fn store(&self, bucket: &str, objects: &[(String, Vec<u8>)]) {
        let mk = self
            .call("PUT", &format!("/{bucket}"), b"", &[])
            .expect("create bucket answers");
        assert_eq!(
            mk.status,
            200,
            "create bucket: {}",
            String::from_utf8_lossy(&mk.body)
        );
        for (k, v) in objects {
            let r = self
                .call("PUT", &format!("/{bucket}/{k}"), v, &[])
                .expect("put answers");
            assert_eq!(
                r.status,
                200,
                "put {k}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }

    fn signed(&self, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
        let host = self.addr.to_string();
        let mut req = Req::new(method, path, body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        sign_header(
            req,
            &host,
            &self.ak,
            &self.sk,
            SystemTime::now(),
            &sha256_hex(body),
        )
        .raw(&host, true)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Option<RawResponse> {
        request(self.addr, &self.signed(method, path, body, headers))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(r.shutdown());
        }
        if let Some(e) = self.embedded.take() {
            self.runtime.block_on(e.stop());
        }
    }
}

/// The body of a response as the client would use it, and whether it ended cleanly
/// (Content-Length reached, or the last chunk of a chunked body seen).
fn client_view(r: &RawResponse) -> (Vec<u8>, bool) {
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return (r.body.clone(), r.is_complete());
    }
    let mut out = Vec::new();
    let mut rest = r.body.as_slice();
    loop {
        let Some(i) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&rest[..i]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (out, false);
        };
        rest = &rest[i + 2..];
        if size == 0 {
            return (
                out,
                rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n"),
            );
        }
        if rest.len() < size + 2 {
            out.extend_from_slice(&rest[..rest.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[derive(Default, Debug)]
struct Tally {
    correct: u64,
    errors: u64,
    broken: u64,
    bad: Vec<String>,
}

/// Runs `gets` fault-injected GETs (4 client threads) and returns the tally.
fn fault_injected_gets(
    backend: Option<(String, String, String)>,
    gets: u64,
    bucket: &str,
) -> (Tally, BTreeMap<&'static str, u64>) {
    let rng = Arc::new(Rng::new(0x5EA1_6A7E));
    let armed = Arc::new(AtomicBool::new(false));
    let fault = {
        let rng = rng.clone();
        move |line: &str| {
            // Object GETs only (the listing and HEAD answers pass untouched).
            let object_get = line.starts_with("GET /")
                && line.matches('/').count() >= 3
                && !line.contains("?list");
            if !object_get {
                return Fault::Pass;
            }
            let at = rng.below(400_000) as usize;
            match rng.below(8) {
                0 => Fault::ResetAt(at),
                1 => Fault::TruncateAt(at),
                2 => Fault::StallAt(at % 70_000, Duration::from_millis(300)),
                3 => Fault::Status(if rng.below(2) == 0 { 500 } else { 503 }),
                4 => Fault::ShortLength(1 + rng.below(70_000) as usize),
                5 => Fault::LongLength(1 + rng.below(1000) as usize),
                6 => Fault::FlipAt(at),
                _ => Fault::TruncateAt(rng.below(64) as usize),
            }
        }
    };
    let (rig, fp_holder) = Rig::behind_faults(backend, &armed, fault, |c| {
        // Small segments: several per object, so faults land inside segments,
        // on boundaries and in the final one.
        c.encryption.default.segment_size = 4096;
    });
    let objects: Vec<(String, Vec<u8>)> = [1usize, 4095, 4096, 70_001, 300_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("obj-{i}"), data(len, i as u64 + 7)))
        .collect();
    rig.store(bucket, &objects);
    armed.store(true, Ordering::SeqCst);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (rig, objects, tally, next, rng) =
                (&rig, &objects, tally.clone(), next.clone(), rng.clone());
            s.spawn(move || {
                while next.fetch_add(1, Ordering::SeqCst) < gets {
                    let (k, v) = &objects[rng.below(objects.len() as u64) as usize];
                    let range = (rng.below(3) == 0 && v.len() > 1).then(|| {
                        let a = rng.below(v.len() as u64);
                        let b = a + rng.below(v.len() as u64 - a);
                        (a as usize, b as usize)
                    });
                    let range_header = range.map(|(a, b)| format!("bytes={a}-{b}"));
                    let headers: Vec<(&str, &str)> =
                        range_header.iter().map(|h| ("range", h.as_str())).collect();
                    let want: &[u8] = match range {
                        Some((a, b)) => &v[a..=b],
                        None => v.as_slice(),
                    };
                    let answer = rig.call("GET", &format!("/{bucket}/{k}"), b"", &headers);
                    let mut t = tally.lock().expect("tally");
                    match answer {
                        None => t.broken += 1,
                        Some(r) if r.status == 200 || r.status == 206 => {
                            let (body, complete) = client_view(&r);
                            if !complete {
                                t.broken += 1;
                            } else if body == want {
                                t.correct += 1;
                            } else {
                                t.bad.push(format!(
                                    "{k} {range_header:?}: complete {} with {} bytes, want {}",
                                    r.status,
                                    body.len(),
                                    want.len()
                                ));
                            }
                        }
                        Some(_) => t.errors += 1,
                    }
                }
            });
        }
    });
    let applied = fp_holder
        .lock()
        .ok()
        .and_then(|h| h.as_ref().map(|f| f.applied()))
        .unwrap_or_default();
    // The proxy still serves once the faults stop.
    armed.store(false, Ordering::SeqCst);
    let (k, v) = &objects[3];
    let r = rig
        .call("GET", &format!("/{bucket}/{k}"), b"", &[])
        .expect("get after faults");
    assert_eq!(
        (r.status, &r.body),
        (200, v),
        "a clean GET after the faults"
    );
    let t = std::mem::take(&mut *tally.lock().expect("tally"));
    (t, applied)
}

fn report(name: &str, gets: u64, t: &Tally, applied: &BTreeMap<&'static str, u64>, took: Duration) {
    let faulted: u64 = applied
        .iter()
        .filter(|(k, _)| **k != "pass")
        .map(|(_, v)| v)
        .sum();
    println!(
        "{name}: {gets} GETs in {took:.1?}: {} correct, {} S3 errors, {} broken connections, {} BAD; upstream faults {faulted} {applied:?}",
        t.correct,
        t.errors,
        t.broken,
        t.bad.len()
    );
    assert!(
        t.bad.is_empty(),
        "complete answers with wrong data:\n{}",
        t.bad.join("\n")
    );
    assert_eq!(t.correct + t.errors + t.broken, gets);
    assert!(
        faulted >= gets,
        "only {faulted} upstream answers were faulted"
    );
    // Faults must actually hurt: most GETs end in an error or a broken connection.
    assert!(
        t.errors + t.broken > gets / 2,
        "faults had no effect: {t:?}"
    );
}

#[test]
fn fault_injected_gets_never_complete_with_wrong_data_embedded() {
    let started = Instant::now();
    let gets = 1000;
    let (t, applied) = fault_injected_gets(None, gets, "faults-embedded");
    report("embedded", gets, &t, &applied, started.elapsed());
}

#[test]
fn fault_injected_gets_never_complete_with_wrong_data_ceph() {
    let Some(ceph) = common::Backend::ceph() else {
        return;
    };
    let Some(endpoint) = ceph.endpoint.clone() else {
        return;
    };
    let started = Instant::now();
    let gets = 300;
    let bucket = common::unique_bucket("faults");
    let (t, applied) = fault_injected_gets(
        Some((endpoint, ceph.access_key, ceph.secret_key)),
        gets,
        &bucket,
    );
    report("ceph", gets, &t, &applied, started.elapsed());
}

// ---------------------------------------------------------------------------------
// KMS faults.

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/faulty";

/// A KMS JSON API stand-in that answers each call with a random fault or success.
async fn kms_answer(
    req: hyper::Request<hyper::body::Incoming>,
    rng: Arc<Rng>,
    faulty: Arc<AtomicBool>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let _ = req.into_body().collect().await;
    let good = |key_len: usize| {
        let key = B64.encode(vec![0x42u8; key_len]);
        match target.as_str() {
            "TrentService.GenerateDataKey" => serde_json::json!({
                "CiphertextBlob": B64.encode(b"wrapped-blob"), "Plaintext": key, "KeyId": ARN,
            }),
            "TrentService.Decrypt" => serde_json::json!({
                "Plaintext": key, "KeyId": ARN, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            }),
            _ => serde_json::json!({"KeyMetadata": {"KeyId": "faulty", "Arn": ARN, "Enabled": true, "KeyState": "Enabled"}}),
        }
        .to_string()
    };
    let pick = if faulty.load(Ordering::SeqCst) {
        rng.below(8)
    } else {
        0
    };
    let (name, status, body) = match pick {
        0 | 1 => ("ok", 200, good(32)),
        2 => (
            "500",
            500,
            serde_json::json!({"__type": "KMSInternalException", "message": "injected"})
                .to_string(),
        ),
        3 => (
            "throttle",
            400,
            serde_json::json!({"__type": "ThrottlingException", "message": "injected"}).to_string(),
        ),
        4 => {
            tokio::time::sleep(Duration::from_millis(600)).await;
            ("slow", 200, good(32))
        }
        5 => ("garbage", 200, "{\"Plaintext\": 12".to_string()),
        6 => ("short-key", 200, good(16)),
        _ => (
            "disabled",
            400,
            serde_json::json!({"__type": "DisabledException", "message": "injected"}).to_string(),
        ),
    };
    if let Ok(mut c) = counts.lock() {
        *c.entry(name).or_insert(0) += 1;
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(resp)
}

/// A backend slower than `server.stall_timeout_secs` is no stalled client: while the
/// proxy waits for the backend's answer (for up to `backend.response_timeout_secs`),
/// the client's connection has nothing to carry and must stay open. The stall timeout
/// once cut such a request after its 60 s, whatever the response timeout said.
#[test]
fn a_backend_slower_than_the_stall_timeout_still_answers() {
    let delay = Duration::from_millis(3500);
    let slow = Arc::new(AtomicBool::new(false));
    let bucket = "slow-backend";
    let first = data(70_001, 1);
    let (rig, holder) = Rig::behind_faults(
        None,
        &slow,
        move |_| Fault::DelayAnswer(delay),
        |c| c.server.stall_timeout_secs = 1,
    );
    rig.store(bucket, &[("first".to_string(), first.clone())]);

    slow.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let get = rig
        .call("GET", &format!("/{bucket}/first"), b"", &[])
        .expect("slow GET answers");
    let took = t.elapsed();
    assert_eq!(get.status, 200, "{}", String::from_utf8_lossy(&get.body));
    assert!(get.body == first, "slow GET returned other bytes");
    assert!(took >= delay, "the GET's answer was not delayed: {took:?}");

    let second = data(5_000, 2);
    let t = Instant::now();
    let put = rig
        .call("PUT", &format!("/{bucket}/second"), &second, &[])
        .expect("slow PUT answers");
    let took = t.elapsed();
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert!(took >= delay, "the PUT's answer was not delayed: {took:?}");

    slow.store(false, Ordering::SeqCst);
    let get = rig
        .call("GET", &format!("/{bucket}/second"), b"", &[])
        .expect("GET answers");
    assert_eq!(get.status, 200, "{}", String::from_utf8_lossy(&get.body));
    assert!(
        get.body == second,
        "the slowly stored object reads back wrong"
    );
    let applied = holder
        .lock()
        .ok()
        .and_then(|h| h.as_ref().map(FaultProxy::applied));
    assert_eq!(applied.and_then(|a| a.get("delay").copied()), Some(2));
}

/// A backend that stops sending in the middle of an answer's body is cut once nothing
/// has moved on its connection for `backend.response_timeout_secs`: the client's
/// answer ends short instead of hanging for as long as the backend keeps quiet.
#[test]
fn a_backend_that_stops_mid_body_is_cut_after_the_response_timeout() {
    let armed = Arc::new(AtomicBool::new(false));
    let bucket = "stalled-backend";
    let object = data(400_000, 3);
    let (rig, _faults) = Rig::behind_faults(
        None,
        &armed,
        |line| {
            if line.starts_with("GET ") {
                Fault::StallAt(100_000, Duration::from_secs(20))
            } else {
                Fault::Pass
            }
        },
        |c| c.backend.response_timeout_secs = 2,
    );
    rig.store(bucket, &[("big".to_string(), object.clone())]);

    armed.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let get = rig
        .call("GET", &format!("/{bucket}/big"), b"", &[])
        .expect("GET answers a head");
    let took = t.elapsed();
    let (body, complete) = client_view(&get);
    assert_eq!(get.status, 200);
    assert!(
        !complete && body.len() < object.len(),
        "a stalled answer looked complete"
    );
    assert!(
        object.starts_with(&body),
        "the bytes before the stall are wrong"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "cut after {took:?}"
    );
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    raw::stored_objects(dir)
}

#[test]
fn kms_faults_never_write_plaintext() {
    let started = Instant::now();
    let rng = Arc::new(Rng::new(0xC0FFEE));
    let faulty = Arc::new(AtomicBool::new(true));
    let counts: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let kms_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let kms_addr = {
        let (rng, faulty, counts) = (rng.clone(), faulty.clone(), counts.clone());
        kms_rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (rng, faulty, counts) = (rng.clone(), faulty.clone(), counts.clone());
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            kms_answer(req, rng.clone(), faulty.clone(), counts.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
            addr
        })
    };
    let rig = Rig::start(
        None,
        |up| format!("http://{up}"),
        |c| {
            c.kms.kind = sealgate::config::KmsKind::Aws;
            c.kms.endpoint = Some(format!("http://{kms_addr}"));
            c.kms.region = Some("us-east-1".into());
            c.kms.access_key = Some("AKIDKMSFAULTS".into());
            c.kms.secret_key = Some("kms-fault-secret".into());
            c.kms.key_id = ARN.into();
            c.kms.timeout_ms = 250;
            c.kms.max_retries = 1;
            // A KMS call for every PUT: no bucket key to cache.
            c.encryption.default.bucket_key = false;
        },
    );
    let data_dir = rig
        .embedded
        .as_ref()
        .map(|e| e.data_dir.clone())
        .expect("embedded data dir");
    let bucket = "kmsfaults";
    let mk = rig
        .call("PUT", &format!("/{bucket}"), b"", &[])
        .expect("create bucket");
    assert_eq!(mk.status, 200);
    let puts = 1000u64;
    let next = Arc::new(AtomicU64::new(0));
    let results: Arc<Mutex<Vec<(String, u16)>>> = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (rig, next, results) = (&rig, next.clone(), results.clone());
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= puts {
                        break;
                    }
                    let key = format!("k{i:04}");
                    // A plaintext pattern that would be found in any file holding it.
                    let body = format!("PLAINTEXT-MARKER-{i:04}-").repeat(64).into_bytes();
                    let status = rig
                        .call("PUT", &format!("/{bucket}/{key}"), &body, &[])
                        .map_or(0, |r| r.status);
                    results.lock().expect("results").push((key, status));
                }
            });
        }
    });
    faulty.store(false, Ordering::SeqCst);
    let results = std::mem::take(&mut *results.lock().expect("results"));
    let ok: Vec<&String> = results
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(k, _)| k)
        .collect();
    let failed: Vec<&(String, u16)> = results.iter().filter(|(_, s)| *s != 200).collect();
    let mut problems = Vec::new();
    // No file anywhere under the backend's data directory holds plaintext.
    let files = files_under(&data_dir);
    for f in &files {
        if let Ok(bytes) = std::fs::read(f)
            && bytes.windows(17).any(|w| w == b"PLAINTEXT-MARKER-")
        {
            problems.push(format!("plaintext in {}", f.display()));
        }
    }
    let objects = data_dir.join("objects").join(bucket);
    let stored = |key: &str| {
        raw::stored_objects(&objects)
            .iter()
            .any(|p| p.ends_with(key))
    };
    for (key, status) in &failed {
        if stored(key) {
            problems.push(format!(
                "{key}: PUT answered {status} but the object exists"
            ));
        }
    }
    // Every stored object reads back through the proxy (its envelope opens) and has
    // the envelope in its metadata on the backend.
    for key in &ok {
        if !stored(key) {
            problems.push(format!("{key}: PUT answered 200 but nothing is stored"));
            continue;
        }
        let i: u64 = key[1..].parse().unwrap_or(0);
        let want = format!("PLAINTEXT-MARKER-{i:04}-").repeat(64).into_bytes();
        match rig.call("GET", &format!("/{bucket}/{key}"), b"", &[]) {
            Some(r) if r.status == 200 && r.body == want => {}
            other => problems.push(format!("{key}: read back {:?}", other.map(|r| r.status))),
        }
    }
    let counts = counts.lock().map(|c| c.clone()).unwrap_or_default();
    println!(
        "kms faults: {puts} PUTs in {:.1?}: {} stored, {} refused (statuses {:?}); KMS answers {counts:?}; {} files scanned",
        started.elapsed(),
        ok.len(),
        failed.len(),
        failed
            .iter()
            .map(|(_, s)| *s)
            .collect::<std::collections::BTreeSet<_>>(),
        files.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(results.len() as u64, puts);
    assert!(
        !failed.is_empty() && !ok.is_empty(),
        "the mix must both fail and succeed"
    );
    drop(kms_rt);
}
