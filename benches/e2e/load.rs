//! The load generator of `benches/e2e.sh`: PUTs or GETs `count` objects of `size`
//! bytes with `concurrency` requests in flight against one S3 endpoint, signed with
//! SigV4 (`UNSIGNED-PAYLOAD`, so the generator spends no CPU hashing), and prints one
//! JSON line: throughput, requests per second and latency percentiles.
//!
//! Python clients cannot drive 4 KiB requests fast enough to load a proxy on 2 cores;
//! this one costs a few microseconds of CPU per request.
//!
//! ```text
//! e2e-load --endpoint http://127.0.0.1:8333 --access-key AK --secret-key SK \
//!     --bucket b --op put|get|delete|mb --size 4096 --count 2000 --concurrency 16 [--prefix p]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

struct Args {
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
    op: String,
    size: usize,
    count: usize,
    concurrency: usize,
    prefix: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        endpoint: String::new(),
        access_key: String::new(),
        secret_key: String::new(),
        bucket: String::new(),
        op: String::new(),
        size: 4096,
        count: 1000,
        concurrency: 16,
        prefix: "obj".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = value()?.trim_end_matches('/').to_string(),
            "--access-key" => a.access_key = value()?,
            "--secret-key" => a.secret_key = value()?,
            "--bucket" => a.bucket = value()?,
            "--op" => a.op = value()?,
            "--size" => a.size = num(value()?)?,
            "--count" => a.count = num(value()?)?,
            "--concurrency" => a.concurrency = num(value()?)?.max(1),
            "--prefix" => a.prefix = value()?,
            // `cargo test --all-targets` builds examples without running them; a bare
            // `--help`-style probe should not hang either.
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.endpoint.is_empty() || a.bucket.is_empty() || a.op.is_empty() {
        return Err("--endpoint, --bucket and --op are required".into());
    }
    Ok(a)
}

struct Signer {
    identity: Identity,
}

impl Signer {
    fn sign(&self, req: &mut http::Request<Full<Bytes>>) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = req.uri().to_string();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One request; returns the body bytes received.
async fn request(
    client: &HttpClient,
    signer: &Signer,
    method: http::Method,
    url: &str,
    body: Bytes,
) -> Result<u64, String> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
    );
    signer.sign(&mut req)?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
        }
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(received)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn run(args: Args) -> Result<(), String> {
    let mut connector = HttpConnector::new();
    // Without TCP_NODELAY small requests stall ~40 ms on Nagle + delayed ACK.
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build(connector);
    let signer = Arc::new(Signer {
        identity: Credentials::new(&args.access_key, &args.secret_key, None, None, "e2e").into(),
    });
    let base = format!("{}/{}", args.endpoint, args.bucket);
    if args.op == "mb" {
        request(&client, &signer, http::Method::PUT, &base, Bytes::new()).await?;
        println!("{{\"op\":\"mb\",\"bucket\":\"{}\"}}", args.bucket);
        return Ok(());
    }
    let (method, payload) = match args.op.as_str() {
        "put" => {
            // Incompressible bytes, made once and shared by every request.
            let mut state = 0x243F_6A88_85A3_08D3u64;
            let data: Vec<u8> = (0..args.size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            (http::Method::PUT, Bytes::from(data))
        }
        "get" => (http::Method::GET, Bytes::new()),
        "delete" => (http::Method::DELETE, Bytes::new()),
        other => return Err(format!("unknown --op {other}")),
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, signer, next) = (client.clone(), signer.clone(), next.clone());
        let (method, payload, base, prefix) = (
            method.clone(),
            payload.clone(),
            base.clone(),
            args.prefix.clone(),
        );
        let count = args.count;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let url = format!("{base}/{prefix}-{i}");
                let t = Instant::now();
                match request(&client, &signer, method.clone(), &url, payload.clone()).await {
                    Ok(got) => {
                        latencies.push(t.elapsed());
                        bytes += if method == http::Method::PUT {
                            payload.len() as u64
                        } else {
                            got
                        };
                    }
                    Err(e) => errors.push(e),
                }
            }
            (latencies, bytes, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut bytes = 0u64;
    let mut errors = Vec::new();
    for w in workers {
        let (l, b, e) = w.await.map_err(|e| e.to_string())?;
        latencies.extend(l);
        bytes += b;
        errors.extend(e);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{{\"op\":\"{}\",\"size\":{},\"count\":{},\"concurrency\":{},\"secs\":{:.3},\
         \"mib_s\":{:.1},\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"errors\":{}}}",
        args.op,
        args.size,
        args.count,
        args.concurrency,
        secs,
        bytes as f64 / (1024.0 * 1024.0) / secs,
        latencies.len() as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        errors.len()
    );
    if let Some(first) = errors.first() {
        return Err(format!("{} requests failed, first: {first}", errors.len()));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("e2e-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("e2e-load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
