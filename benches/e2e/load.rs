//! The load generator of `benches/e2e.sh`: runs one workload against one S3 endpoint,
//! signed with SigV4 (`UNSIGNED-PAYLOAD`, so the generator spends no CPU hashing), and
//! prints one JSON line: bytes moved, throughput, requests per second, latency
//! percentiles.
//!
//! Python clients cannot drive 4 KiB requests fast enough to load a proxy on 2 cores;
//! this one costs a few microseconds of CPU per request. PUT bodies are one shared,
//! incompressible buffer made once, so the generator copies nothing per request.
//!
//! ```text
//! e2e-load --endpoint http://127.0.0.1:8333 --access-key AK --secret-key SK --bucket b \
//!     --op put|get|head|copy|delete|list|mb|multipart|range --size 4096 --count 2000
//!     --concurrency 16 [--prefix p] [--key k] [--object-size N] [--part-size N]
//!     [--max-secs S] [--ca-file PEM]
//! ```
//! - `put`/`get`/`head`/`delete`: objects `<prefix>-<i>` for i in 0..count; with `--key`
//!   every request uses that one key (many transfers of one object, no disk growth).
//! - `copy`: CopyObject of `<prefix>-<i>` to `<prefix>-copy-<i>`.
//! - `list`: `count` ListObjectsV2 requests for `<prefix>` (up to 1,000 keys each).
//! - `multipart`: `count` objects of `size` bytes, each uploaded as `--part-size` parts
//!   with `concurrency` parts in flight.
//! - `range`: `count` GETs of `size` bytes at pseudo-random offsets of `--key`, an object
//!   of `--object-size` bytes.
//! - `--ca-file`: trust this PEM bundle for an `https://` endpoint.
//! - `--max-secs`: stop after that long; requests still in flight are dropped (counted
//!   in `aborted`, not as errors). For memory measurements under many long transfers.
//!
//! A request that fails before any response arrives (the connection closed under it)
//! is sent once more on a new connection, as every S3 SDK does; the JSON line counts
//! these in `retried`, so a server that drops connections still shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sealgate::upstream::error_chain;

/// Requests sent a second time after a transport error (see the module comment).
static RETRIED: AtomicUsize = AtomicUsize::new(0);
/// Response body bytes received, counted as they arrive: transfers cut at the time
/// limit moved bytes too, and the memory run reports them.
static RECEIVED_TOTAL: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
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
    key: Option<String>,
    object_size: u64,
    part_size: usize,
    max_secs: Option<f64>,
    ca_file: Option<String>,
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
        key: None,
        object_size: 0,
        part_size: 8 << 20,
        max_secs: None,
        ca_file: None,
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
            "--key" => a.key = Some(value()?),
            "--ca-file" => a.ca_file = Some(value()?),
            "--object-size" => a.object_size = num(value()?)? as u64,
            "--part-size" => a.part_size = num(value()?)?.max(1),
            "--max-secs" => {
                let v = value()?;
                a.max_secs = Some(v.parse::<f64>().map_err(|e| format!("{v}: {e}"))?)
            }
            // `cargo test --all-targets` builds examples without running them; a bare
            // `--help`-style probe should not hang either.
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.endpoint.is_empty() || a.bucket.is_empty() || a.op.is_empty() {
        return Err("--endpoint, --bucket and --op are required".into());
    }
    if a.op == "range" && (a.key.is_none() || a.object_size < a.size as u64) {
        return Err("--op range needs --key and --object-size >= --size".into());
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

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What one request returned.
struct Reply {
    received: u64,
    etag: Option<String>,
    /// The body, kept only when asked for (small XML answers).
    text: Option<String>,
}

/// A signed request (the body is a shared buffer, so building it twice copies nothing).
fn signed(
    signer: &Signer,
    method: &http::Method,
    url: &str,
    body: &Bytes,
    extra: Option<&(http::HeaderName, String)>,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(url)
        .header(http::header::CONTENT_LENGTH, body.len());
    if let Some((name, value)) = extra {
        builder = builder.header(name, value);
    }
    let mut req = builder
        .body(Full::new(body.clone()))
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
    Ok(req)
}

/// One request. `keep_body` collects the body as text instead of just counting it.
async fn request(
    client: &HttpClient,
    signer: &Signer,
    method: http::Method,
    url: &str,
    body: Bytes,
    extra: Option<(http::HeaderName, String)>,
    keep_body: bool,
) -> Result<Reply, String> {
    let resp = match client
        .request(signed(signer, &method, url, &body, extra.as_ref())?)
        .await
    {
        Ok(resp) => resp,
        Err(first) => {
            RETRIED.fetch_add(1, Ordering::Relaxed);
            let again = signed(signer, &method, url, &body, extra.as_ref())?;
            client.request(again).await.map_err(|again| {
                format!(
                    "{} (after a retry; the first attempt failed with {})",
                    error_chain(&again),
                    error_chain(&first)
                )
            })?
        }
    };
    let status = resp.status();
    let etag = resp
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = resp.into_body();
    let mut received = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error_chain(&e))?;
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
            RECEIVED_TOTAL.fetch_add(data.len() as u64, Ordering::Relaxed);
            if keep_body || !status.is_success() {
                kept.extend_from_slice(data);
            }
        }
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&kept);
        return Err(format!(
            "HTTP {status} {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    Ok(Reply {
        received,
        etag,
        text: keep_body.then(|| String::from_utf8_lossy(&kept).into_owned()),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Incompressible bytes, made once and shared by every request.
fn payload(size: usize) -> Bytes {
    let mut state = 0x243F_6A88_85A3_08D3u64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    Bytes::from(data)
}

/// The text of the first `<name>` element.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

struct Ctx {
    client: HttpClient,
    signer: Signer,
    base: String,
    args: Args,
    payload: Bytes,
}

/// Uploads one object as parts, `concurrency` parts in flight; returns bytes sent.
async fn multipart(ctx: &Arc<Ctx>, key: &str) -> Result<u64, String> {
    let url = format!("{}/{key}", ctx.base);
    let created = request(
        &ctx.client,
        &ctx.signer,
        http::Method::POST,
        &format!("{url}?uploads"),
        Bytes::new(),
        None,
        true,
    )
    .await?;
    let text = created.text.unwrap_or_default();
    let upload_id = element(&text, "UploadId")
        .ok_or_else(|| format!("no UploadId in {text}"))?
        .to_string();
    let parts = ctx.args.size.div_ceil(ctx.args.part_size).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..ctx.args.concurrency.min(parts) {
        let (ctx, next, url, upload_id) =
            (ctx.clone(), next.clone(), url.clone(), upload_id.clone());
        workers.push(tokio::spawn(async move {
            let mut etags = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= parts {
                    return Ok::<_, String>(etags);
                }
                let start = i * ctx.args.part_size;
                let len = ctx.args.part_size.min(ctx.args.size - start);
                let body = ctx.payload.slice(..len);
                let part_url = format!("{url}?partNumber={}&uploadId={upload_id}", i + 1);
                let reply = request(
                    &ctx.client,
                    &ctx.signer,
                    http::Method::PUT,
                    &part_url,
                    body,
                    None,
                    false,
                )
                .await?;
                etags.push((i + 1, reply.etag.ok_or("UploadPart answered without ETag")?));
            }
        }));
    }
    let mut etags = Vec::new();
    for w in workers {
        etags.extend(w.await.map_err(|e| e.to_string())??);
    }
    etags.sort();
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in &etags {
        xml.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let done = request(
        &ctx.client,
        &ctx.signer,
        http::Method::POST,
        &format!("{url}?uploadId={upload_id}"),
        Bytes::from(xml),
        None,
        true,
    )
    .await?;
    // CompleteMultipartUpload can fail inside a 200 answer.
    let text = done.text.unwrap_or_default();
    if text.contains("<Error>") {
        return Err(format!("CompleteMultipartUpload: {text}"));
    }
    Ok(ctx.args.size as u64)
}

/// Request `i` of the workload; returns the bytes it moved.
async fn one(ctx: &Arc<Ctx>, i: usize) -> Result<u64, String> {
    let a = &ctx.args;
    let key = match &a.key {
        Some(k) => k.clone(),
        None => format!("{}-{i}", a.prefix),
    };
    let mut url = format!("{}/{key}", ctx.base);
    let (method, body, extra) = match a.op.as_str() {
        "put" => (http::Method::PUT, ctx.payload.clone(), None),
        "get" => (http::Method::GET, Bytes::new(), None),
        "head" => (http::Method::HEAD, Bytes::new(), None),
        "delete" => (http::Method::DELETE, Bytes::new(), None),
        "copy" => {
            url = format!("{}/{}-copy-{i}", ctx.base, a.prefix);
            let source = format!("/{}/{key}", a.bucket);
            let name = http::HeaderName::from_static("x-amz-copy-source");
            (http::Method::PUT, Bytes::new(), Some((name, source)))
        }
        "list" => {
            url = format!("{}?list-type=2&prefix={}", ctx.base, a.prefix);
            (http::Method::GET, Bytes::new(), None)
        }
        "range" => {
            // A fixed pseudo-random sequence: every target gets the same offsets.
            let span = a.object_size - a.size as u64 + 1;
            let first = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % span;
            let last = first + a.size as u64 - 1;
            let range = (http::header::RANGE, format!("bytes={first}-{last}"));
            (http::Method::GET, Bytes::new(), Some(range))
        }
        "multipart" => return multipart(ctx, &key).await,
        other => return Err(format!("unknown --op {other}")),
    };
    let ranged = a.op == "range";
    let sent = body.len() as u64;
    let reply = request(&ctx.client, &ctx.signer, method, &url, body, extra, false).await?;
    if ranged && reply.received != a.size as u64 {
        return Err(format!(
            "range GET returned {} bytes, not {}",
            reply.received, a.size
        ));
    }
    Ok(sent + reply.received)
}

async fn run(args: Args) -> Result<(), String> {
    let mut connector = HttpConnector::new();
    // Without TCP_NODELAY small requests stall ~40 ms on Nagle + delayed ACK.
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let tls = sealgate::upstream::client::tls_client_config(
        args.ca_file.as_deref().map(std::path::Path::new),
    )
    .map_err(|e| e.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build(connector);
    let signer = Signer {
        identity: Credentials::new(&args.access_key, &args.secret_key, None, None, "e2e").into(),
    };
    let base = format!("{}/{}", args.endpoint, args.bucket);
    if args.op == "mb" {
        request(
            &client,
            &signer,
            http::Method::PUT,
            &base,
            Bytes::new(),
            None,
            false,
        )
        .await?;
        println!("{{\"op\":\"mb\",\"bucket\":\"{}\"}}", args.bucket);
        return Ok(());
    }
    let payload = match args.op.as_str() {
        "put" => payload(args.size),
        "multipart" => payload(args.part_size.min(args.size)),
        _ => Bytes::new(),
    };
    // A multipart object's parts are parallel; the objects themselves go one by one.
    let workers_n = if args.op == "multipart" {
        1
    } else {
        args.concurrency
    };
    let ctx = Arc::new(Ctx {
        client,
        signer,
        base,
        args: args.clone(),
        payload,
    });
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = args.max_secs.map(|s| started + Duration::from_secs_f64(s));
    let mut workers = Vec::new();
    for _ in 0..workers_n {
        let (ctx, next) = (ctx.clone(), next.clone());
        let count = args.count;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut errors = Vec::new();
            let mut aborted = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let t = Instant::now();
                let outcome = match deadline {
                    Some(d) => tokio::time::timeout_at(d.into(), one(&ctx, i)).await.ok(),
                    None => Some(one(&ctx, i).await),
                };
                match outcome {
                    Some(Ok(moved)) => {
                        latencies.push(t.elapsed());
                        bytes += moved;
                    }
                    Some(Err(e)) => errors.push(e),
                    None => aborted += 1,
                }
            }
            (latencies, bytes, errors, aborted)
        }));
    }
    let mut latencies = Vec::new();
    let mut bytes = 0u64;
    let mut errors = Vec::new();
    let mut aborted = 0;
    for w in workers {
        let (l, b, e, a) = w.await.map_err(|e| e.to_string())?;
        latencies.extend(l);
        bytes += b;
        errors.extend(e);
        aborted += a;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{{\"op\":\"{}\",\"size\":{},\"count\":{},\"concurrency\":{},\"secs\":{:.3},\
         \"bytes\":{},\"mib_s\":{:.1},\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\
         \"done\":{},\"aborted\":{},\"errors\":{},\"retried\":{},\"received_total\":{}}}",
        args.op,
        args.size,
        args.count,
        args.concurrency,
        secs,
        bytes,
        bytes as f64 / (1024.0 * 1024.0) / secs,
        latencies.len() as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.len(),
        aborted,
        errors.len(),
        RETRIED.load(Ordering::Relaxed),
        RECEIVED_TOTAL.load(Ordering::Relaxed)
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
