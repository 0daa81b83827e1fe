//! Bucket keys end to end with a real KMS API: sealgate (in-process, embedded S3
//! backend) with `kms.kind = "aws"` pointed at moto's KMS, driven over raw signed HTTP.
//!
//! - 10,000 PUTs and 10,000 GETs over 10 buckets: moto's request recorder sees at most
//!   2 KMS calls per bucket per bucket-key lifetime, the saved share is at least 99%,
//!   `/metrics` reports the same counts as the recorder, and the audit log holds exactly
//!   one well-formed record per object key operation.
//! - 200 concurrent first requests to a cold bucket make exactly one GenerateDataKey.
//! - Faults through the proxy, with a fault-injecting HTTP front between sealgate and
//!   moto's KMS: KMS down with a warm cache keeps serving until the bucket-key lifetime
//!   ends, then fails closed with 503, then recovers without a restart; throttling, 500s
//!   and slow answers are retried and counted in `sealgate_kms_retries_total`; no
//!   failed write stores anything and nothing stored holds plaintext.
//!
//! `KMS_E2E_OBJECTS` scales the first workload (default 10,000 PUTs and as many GETs).
//! `SEALGATE_SKIP_MOTO=1` skips with a notice (the moto harness installs moto if needed).

mod moto;
mod raw;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use moto::{Moto, count_calls, create_key};
use raw::*;
use sealgate::config::KmsKind;

const BUCKETS: usize = 10;

fn objects() -> usize {
    std::env::var("KMS_E2E_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// A sealgate in front of the embedded backend whose KMS is the aws kind at `kms_endpoint`.
fn proxy_with_aws_kms(
    kms_endpoint: &str,
    key_id: &str,
    ttl_secs: u64,
    audit: bool,
    retries: u32,
) -> Proxy {
    Proxy::start_with(|c| {
        c.kms.kind = KmsKind::Aws;
        c.kms.endpoint = Some(kms_endpoint.to_string());
        c.kms.region = Some("us-east-1".into());
        c.kms.key_id = key_id.to_string();
        c.kms.access_key = Some("test".into());
        c.kms.secret_key = Some("test".into());
        c.kms.bucket_key_ttl_secs = ttl_secs;
        c.kms.timeout_ms = 1000;
        c.kms.max_retries = retries;
        if audit {
            c.audit.enabled = true;
            c.audit.path = Some(c.embedded.data_dir.join("audit.jsonl"));
        }
    })
}

/// Every `sealgate_*` sample on `/metrics`, keyed by its full series text.
fn scrape(admin: SocketAddr) -> BTreeMap<String, f64> {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    let Some(r) = request(admin, req.as_bytes()) else {
        panic!("no /metrics answer")
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with("sealgate_"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Sum of the samples of `metric` whose labels contain every `label="value"` given.
fn sum(samples: &BTreeMap<String, f64>, metric: &str, labels: &[&str]) -> u64 {
    samples
        .iter()
        .filter(|(series, _)| {
            (series.as_str() == metric || series.starts_with(&format!("{metric}{{")))
                && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| *v)
        .sum::<f64>() as u64
}

fn put(p: &Proxy, path: &str, body: &[u8]) -> RawResponse {
    let Some(r) = request(p.addr, &signed_request(p, "PUT", path, body, &[])) else {
        panic!("no answer to PUT {path}")
    };
    r
}

fn get(p: &Proxy, path: &str) -> RawResponse {
    let Some(r) = request(p.addr, &signed_request(p, "GET", path, b"", &[])) else {
        panic!("no answer to GET {path}")
    };
    r
}

fn body_of(bucket: &str, i: usize) -> String {
    format!(
        "plaintext-marker {bucket} object {i} {}",
        "x".repeat(i % 97)
    )
}

/// Runs `f(i)` for `i` in `0..n` on `threads` threads.
fn parallel(n: usize, threads: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in (t..n).step_by(threads) {
                    f(i)
                }
            })
        })
        .collect();
    for h in handles {
        if h.join().is_err() {
            panic!("a worker failed");
        }
    }
}

#[test]
fn ten_buckets_make_at_most_two_kms_calls_each_and_metrics_match_the_recorder() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let (key_id, key_arn) = rt.block_on(create_key(&moto.kms()));
    let ttl_secs = 300;
    let p = Arc::new(proxy_with_aws_kms(
        &moto.endpoint,
        &key_id,
        ttl_secs,
        true,
        4,
    ));
    let n = objects();
    let per_bucket = n / BUCKETS;
    let buckets: Vec<String> = (0..BUCKETS).map(|b| format!("kms-e2e-{b}")).collect();
    for b in &buckets {
        assert_eq!(put(&p, &format!("/{b}"), b"").status, 200, "create {b}");
    }

    let before = scrape(p.admin);
    moto.recorder("reset-recording");
    moto.recorder("start-recording");
    let started = Instant::now();
    for method in ["PUT", "GET"] {
        let (p, buckets) = (p.clone(), buckets.clone());
        parallel(n, 8, move |i| {
            let bucket = &buckets[i % BUCKETS];
            let obj = i / BUCKETS;
            let path = format!("/{bucket}/o{obj:05}");
            let body = body_of(bucket, obj);
            if method == "PUT" {
                let r = put(&p, &path, body.as_bytes());
                assert_eq!(
                    r.status,
                    200,
                    "PUT {path}: {}",
                    String::from_utf8_lossy(&r.body)
                );
            } else {
                let r = get(&p, &path);
                assert_eq!(
                    r.status,
                    200,
                    "GET {path}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                assert_eq!(r.body, body.as_bytes(), "{path} read back");
            }
        });
    }
    let elapsed = started.elapsed();
    moto.recorder("stop-recording");
    let recording = moto.recorder("download-recording");
    let after = scrape(p.admin);

    let recorded_generate = count_calls(&recording, "GenerateDataKey") as u64;
    let recorded_decrypt = count_calls(&recording, "Decrypt") as u64;
    let recorded_describe = count_calls(&recording, "DescribeKey") as u64;
    let delta =
        |metric: &str, labels: &[&str]| sum(&after, metric, labels) - sum(&before, metric, labels);
    let metric_generate = delta("sealgate_kms_requests_total", &["op=\"generate_data_key\""]);
    let metric_decrypt = delta("sealgate_kms_requests_total", &["op=\"decrypt\""]);
    let metric_describe = delta("sealgate_kms_requests_total", &["op=\"describe_key\""]);
    let retries = delta("sealgate_kms_retries_total", &[]);
    let saved = delta("sealgate_kms_calls_saved_total", &[]);
    let key_ops = delta("sealgate_object_key_operations_total", &[]);
    let calls = recorded_generate + recorded_decrypt;
    let lifetimes = elapsed.as_secs() / ttl_secs + 1;
    let saved_share = 100.0 * saved as f64 / key_ops as f64;
    println!(
        "{n} PUTs + {n} GETs over {BUCKETS} buckets in {:.1} s: moto recorded {recorded_generate} \
         GenerateDataKey + {recorded_decrypt} Decrypt; /metrics {metric_generate} + {metric_decrypt}; \
         {key_ops} object key operations, {saved} saved ({saved_share:.3}%)",
        elapsed.as_secs_f64()
    );

    assert_eq!(
        (metric_generate, metric_decrypt, metric_describe),
        (recorded_generate, recorded_decrypt, recorded_describe),
        "/metrics must report what the KMS saw (retries would make them differ: {retries})"
    );
    assert_eq!(retries, 0, "moto never throttles here");
    assert!(
        recorded_generate >= BUCKETS as u64,
        "one bucket key per bucket at least"
    );
    assert!(
        calls <= 2 * BUCKETS as u64 * lifetimes,
        "{calls} KMS calls for {BUCKETS} buckets over {lifetimes} lifetime(s)"
    );
    assert_eq!(
        key_ops,
        2 * n as u64,
        "one object key operation per PUT and GET"
    );
    assert_eq!(saved, key_ops - calls, "saved = operations - calls");
    assert!(saved_share >= 99.0, "saved share {saved_share:.3}%");

    // One audit record per object key operation, with the documented fields.
    let audit = std::fs::read_to_string(p.data.join("audit.jsonl")).unwrap_or_default();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(v) => v,
            Err(e) => panic!("audit line is not JSON ({e}): {l}"),
        })
        .collect();
    assert_eq!(
        records.len(),
        2 * n,
        "one audit record per object key operation"
    );
    let mut per_op: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut request_ids = HashSet::new();
    for r in &records {
        for field in [
            "time",
            "request_id",
            "identity",
            "bucket",
            "key",
            "operation",
            "kms_key_id",
            "bucket_key_id",
            "key_path",
            "result",
        ] {
            assert!(r.get(field).is_some(), "audit record without {field}: {r}");
        }
        assert_eq!(r["result"], "ok", "{r}");
        assert_eq!(r["identity"], p.ak.as_str(), "{r}");
        assert_eq!(r["key_path"], "bucket_key", "{r}");
        let kms_key = r["kms_key_id"].as_str().unwrap_or_default();
        assert!(kms_key == key_id || kms_key == key_arn, "{r}");
        assert!(
            r["bucket_key_id"].as_str().is_some_and(|s| s.len() == 16),
            "{r}"
        );
        assert!(
            request_ids.insert(r["request_id"].to_string()),
            "duplicate request id: {r}"
        );
        let bucket = r["bucket"].as_str().unwrap_or_default().to_string();
        let op = r["operation"].as_str().unwrap_or_default().to_string();
        *per_op.entry((bucket, op)).or_default() += 1;
    }
    for b in &buckets {
        let ops: usize = per_op
            .iter()
            .filter(|((bucket, _), _)| bucket == b)
            .map(|(_, c)| *c)
            .sum();
        assert_eq!(ops, 2 * per_bucket, "audit records for {b}: {per_op:?}");
    }
    println!("audit log: {} records, {per_op:?}", records.len());
}

#[test]
fn two_hundred_concurrent_first_requests_to_a_cold_bucket_make_one_generate_data_key() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let (key_id, _) = rt.block_on(create_key(&moto.kms()));
    let p = Arc::new(proxy_with_aws_kms(&moto.endpoint, &key_id, 300, false, 4));
    assert_eq!(put(&p, "/kms-cold", b"").status, 200);
    let before = scrape(p.admin);
    moto.recorder("reset-recording");
    moto.recorder("start-recording");

    const CLIENTS: usize = 200;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let requests: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|i| {
            signed_request(
                &p,
                "PUT",
                &format!("/kms-cold/c{i}"),
                body_of("kms-cold", i).as_bytes(),
                &[],
            )
        })
        .collect();
    let handles: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let (barrier, addr) = (barrier.clone(), p.addr);
            std::thread::spawn(move || {
                barrier.wait();
                request(addr, &req).map(|r| r.status)
            })
        })
        .collect();
    let statuses: Vec<Option<u16>> = handles
        .into_iter()
        .map(|h| h.join().ok().flatten())
        .collect();
    moto.recorder("stop-recording");
    let recording = moto.recorder("download-recording");
    let after = scrape(p.admin);

    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    let recorded = count_calls(&recording, "GenerateDataKey");
    let metric = sum(
        &after,
        "sealgate_kms_requests_total",
        &["op=\"generate_data_key\""],
    ) - sum(
        &before,
        "sealgate_kms_requests_total",
        &["op=\"generate_data_key\""],
    );
    println!(
        "{CLIENTS} concurrent cold PUTs: {recorded} GenerateDataKey (recorder), {metric} (/metrics)"
    );
    assert_eq!(
        recorded, 1,
        "single flight: one GenerateDataKey for the cold bucket"
    );
    assert_eq!(metric, 1);
    assert_eq!(count_calls(&recording, "Decrypt"), 0);
    for i in 0..CLIENTS {
        let r = get(&p, &format!("/kms-cold/c{i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body_of("kms-cold", i).as_bytes());
    }
}

/// What the fault front does with the next KMS requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Forward to the real KMS.
    None,
    /// Drop the connection without an answer (KMS down).
    Down,
    /// Answer `n` more requests with 400 ThrottlingException, then forward.
    Throttle(u32),
    /// Answer `n` more requests with 500 KMSInternalException, then forward.
    Internal(u32),
    /// Hold `n` more requests for 1.5 s (past the client's timeout), then forward.
    Slow(u32),
}

/// An HTTP front for a KMS endpoint that injects [`Fault`]s per request.
struct KmsFront {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    injected: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl KmsFront {
    fn start(upstream: &str) -> KmsFront {
        let runtime = runtime();
        let fault = Arc::new(Mutex::new(Fault::None));
        let injected = Arc::new(AtomicU64::new(0));
        let upstream: http::Uri = match upstream.parse() {
            Ok(u) => u,
            Err(e) => panic!("moto endpoint {upstream}: {e}"),
        };
        let listener = match runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")) {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = listener.local_addr().expect("local addr");
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let (f, inj) = (fault.clone(), injected.clone());
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (f, inj, client, upstream) =
                    (f.clone(), inj.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (f, inj, client, upstream) =
                            (f.clone(), inj.clone(), client.clone(), upstream.clone());
                        async move { front(req, &f, &inj, &client, &upstream).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KmsFront {
            addr,
            fault,
            injected,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, fault: Fault) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

type FrontResult = Result<http::Response<Full<Bytes>>, std::io::Error>;

async fn front(
    req: http::Request<hyper::body::Incoming>,
    fault: &Mutex<Fault>,
    injected: &AtomicU64,
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &http::Uri,
) -> FrontResult {
    let action = {
        let mut f = fault
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let action = *f;
        *f = match *f {
            Fault::Throttle(1) | Fault::Internal(1) | Fault::Slow(1) => Fault::None,
            Fault::Throttle(n) => Fault::Throttle(n - 1),
            Fault::Internal(n) => Fault::Internal(n - 1),
            Fault::Slow(n) => Fault::Slow(n - 1),
            other => other,
        };
        action
    };
    if action != Fault::None {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    let kms_error = |status: u16, kind: &str| {
        http::Response::builder()
            .status(status)
            .header("x-amzn-errortype", kind)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(format!(
                "{{\"__type\":\"{kind}\",\"message\":\"injected by the test\"}}"
            ))))
            .map_err(std::io::Error::other)
    };
    match action {
        Fault::Down => return Err(std::io::Error::other("KMS down (injected)")),
        Fault::Throttle(_) => return kms_error(400, "ThrottlingException"),
        Fault::Internal(_) => return kms_error(500, "KMSInternalException"),
        Fault::Slow(_) => tokio::time::sleep(Duration::from_millis(1500)).await,
        Fault::None => {}
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let mut out = http::Request::builder()
        .method(parts.method)
        .uri(upstream.clone());
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let out = out.body(Full::new(body)).map_err(std::io::Error::other)?;
    let resp = client.request(out).await.map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(http::Response::from_parts(parts, Full::new(body)))
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

fn code(r: &RawResponse) -> String {
    code_of(&String::from_utf8_lossy(&r.body)).unwrap_or_default()
}

#[test]
fn kms_faults_serve_from_cache_until_the_lifetime_ends_then_fail_closed_and_recover() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let (key_id, _) = rt.block_on(create_key(&moto.kms()));
    let kms = KmsFront::start(&moto.endpoint);
    let ttl = Duration::from_secs(3);
    let p = proxy_with_aws_kms(&kms.endpoint(), &key_id, ttl.as_secs(), false, 2);
    let bucket = "kms-faults";
    assert_eq!(put(&p, &format!("/{bucket}"), b"").status, 200);
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    let mut expect_put = |p: &Proxy, name: &str, status: u16, code_expected: &str| {
        let path = format!("/{bucket}/{name}");
        let body = format!("plaintext-marker {name}");
        let r = put(p, &path, body.as_bytes());
        assert_eq!(
            r.status,
            status,
            "PUT {name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 200 {
            stored.insert(name.to_string(), body);
        } else {
            assert_eq!(code(&r), code_expected, "PUT {name}");
            assert!(
                !p.object_exists(bucket, name),
                "failed PUT {name} stored something"
            );
        }
    };
    let expect_get = |p: &Proxy, name: &str, status: u16| {
        let r = get(p, &format!("/{bucket}/{name}"));
        assert_eq!(
            r.status,
            status,
            "GET {name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 200 {
            assert_eq!(r.body, format!("plaintext-marker {name}").as_bytes());
        }
    };
    let wait_for_expiry = |since: Instant| {
        let left = (ttl + Duration::from_millis(600)).saturating_sub(since.elapsed());
        std::thread::sleep(left);
    };

    // Warm: one GenerateDataKey; the written key also serves reads.
    let warmed = Instant::now();
    expect_put(&p, "a1", 200, "");
    expect_get(&p, "a1", 200);

    // KMS down, cache warm: writes and reads keep working within the lifetime.
    kms.set(Fault::Down);
    expect_put(&p, "a2", 200, "");
    expect_get(&p, "a1", 200);
    expect_get(&p, "a2", 200);
    assert!(
        warmed.elapsed() < ttl,
        "the warm phase outlived the bucket-key lifetime"
    );

    // Lifetime over, KMS still down: fail closed with 503, nothing written.
    wait_for_expiry(warmed);
    expect_put(&p, "a3", 503, "ServiceUnavailable");
    let r = get(&p, &format!("/{bucket}/a1"));
    assert_eq!(r.status, 503, "read after the lifetime with KMS down");
    assert!(kms.injected() >= 2, "the KMS front saw the calls");

    // KMS back: recovery without a restart.
    kms.set(Fault::None);
    let recovered = Instant::now();
    expect_put(&p, "a3", 200, "");
    for name in ["a1", "a2", "a3"] {
        expect_get(&p, name, 200);
    }

    // Throttling within the retry budget (2 retries): retried, counted, served.
    wait_for_expiry(recovered);
    let before = scrape(p.admin);
    kms.set(Fault::Throttle(2));
    let throttled = Instant::now();
    expect_put(&p, "a4", 200, "");
    let after = scrape(p.admin);
    let retried = |reason: &str| {
        let label = format!("reason=\"{reason}\"");
        sum(&after, "sealgate_kms_retries_total", &[&label])
            - sum(&before, "sealgate_kms_retries_total", &[&label])
    };
    assert_eq!(
        retried("throttled"),
        2,
        "both throttling answers were retried and counted"
    );

    // Throttling beyond the budget: 503 SlowDown, as S3 answers KMS throttling.
    wait_for_expiry(throttled);
    kms.set(Fault::Throttle(10));
    expect_put(&p, "a5", 503, "SlowDown");
    kms.set(Fault::None);
    let back = Instant::now();
    expect_put(&p, "a5", 200, "");

    // A 500 and a slow answer are retried too.
    wait_for_expiry(back);
    let before = scrape(p.admin);
    kms.set(Fault::Internal(1));
    let internal = Instant::now();
    expect_put(&p, "a6", 200, "");
    wait_for_expiry(internal);
    kms.set(Fault::Slow(1));
    expect_put(&p, "a7", 200, "");
    let after = scrape(p.admin);
    let retried = |reason: &str| {
        let label = format!("reason=\"{reason}\"");
        sum(&after, "sealgate_kms_retries_total", &[&label])
            - sum(&before, "sealgate_kms_retries_total", &[&label])
    };
    assert_eq!(retried("internal"), 1, "the 500 was retried");
    assert_eq!(retried("timeout"), 1, "the slow answer was retried");
    println!("faults injected at the KMS front: {}", kms.injected());

    // Everything written reads back; nothing on disk holds plaintext.
    for name in stored.keys() {
        expect_get(&p, name, 200);
    }
    let files = stored_objects(&p.data.join("objects").join(bucket));
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        assert!(
            !bytes.windows(16).any(|w| w == b"plaintext-marker"),
            "{} holds plaintext",
            f.display()
        );
    }
    for name in ["a1", "a2", "a3", "a4", "a5", "a6", "a7"] {
        assert!(p.object_exists(bucket, name), "{name} stored");
    }
}

fn kms_key_of(p: &Proxy, path: &str) -> String {
    let Some(r) = request(p.addr, &signed_request(p, "HEAD", path, b"", &[])) else {
        panic!("no answer to HEAD {path}")
    };
    assert_eq!(r.status, 200, "HEAD {path}: {:?}", r.headers);
    r.header("x-amz-server-side-encryption-aws-kms-key-id")
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_changed_kms_key_applies_to_new_objects_at_once_and_old_objects_stay_readable() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let kms = moto.kms();
    let (key_a, arn_a) = rt.block_on(create_key(&kms));
    let (key_b, arn_b) = rt.block_on(create_key(&kms));
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let data_dir = dir.path().join("data");
    let start = |key: &str| {
        let (key, data_dir, endpoint) = (key.to_string(), data_dir.clone(), moto.endpoint.clone());
        Proxy::start_with(move |c| {
            c.kms.kind = KmsKind::Aws;
            c.kms.endpoint = Some(endpoint);
            c.kms.region = Some("us-east-1".into());
            c.kms.access_key = Some("test".into());
            c.kms.secret_key = Some("test".into());
            c.embedded.data_dir = data_dir;
            c.kms.key_id = "unused-default".into();
            c.encryption.buckets.insert(
                "rotating".into(),
                sealgate::config::BucketPolicy {
                    kms_key_id: Some(key),
                    ..c.encryption.default.clone()
                },
            );
        })
    };

    // Policy names key A: the object is sealed under A.
    let p = start(&key_a);
    assert_eq!(put(&p, "/rotating", b"").status, 200);
    assert_eq!(put(&p, "/rotating/before", b"written under A").status, 200);
    assert_eq!(kms_key_of(&p, "/rotating/before"), arn_a);
    drop(p);

    // The policy now names key B: the very next object uses B (no bucket key of A is
    // reused, whatever its remaining lifetime), and the old object still reads under A.
    let p = start(&key_b);
    moto.recorder("reset-recording");
    moto.recorder("start-recording");
    assert_eq!(put(&p, "/rotating/after", b"written under B").status, 200);
    assert_eq!(kms_key_of(&p, "/rotating/after"), arn_b);
    assert_eq!(get(&p, "/rotating/before").body, b"written under A");
    assert_eq!(get(&p, "/rotating/after").body, b"written under B");
    // A client may still name A per request, as on S3; the bucket key of B stays cached.
    let r = request(
        p.addr,
        &signed_request(
            &p,
            "PUT",
            "/rotating/explicit",
            b"client chose A",
            &[("x-amz-server-side-encryption-aws-kms-key-id", &key_a)],
        ),
    );
    assert_eq!(r.map(|r| r.status), Some(200));
    assert_eq!(kms_key_of(&p, "/rotating/explicit"), arn_a);
    moto.recorder("stop-recording");
    let recording = moto.recorder("download-recording");
    // B: one GenerateDataKey; A: one Decrypt (old object) and one GenerateDataKey.
    assert_eq!(count_calls(&recording, "GenerateDataKey"), 2, "{recording}");
    assert_eq!(count_calls(&recording, "Decrypt"), 1);
}
