//! A minimal S3 client for tests that must control every byte: an in-process proxy on
//! the embedded backend, requests signed with aws-sigv4 (an independent SigV4
//! implementation), sent over raw TCP so malformed input reaches the proxy as written.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const TIME_FMT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

pub struct Proxy {
    pub addr: SocketAddr,
    pub ak: String,
    pub sk: String,
    pub data: PathBuf,
    pub runtime: tokio::runtime::Runtime,
    pub running: Option<sealgate::Running>,
    pub _dir: tempfile::TempDir,
    pub admin: SocketAddr,
}

impl Proxy {
    /// The proxy with the limits the bad-input table expects.
    pub fn start() -> Proxy {
        Proxy::start_with(|_| {})
    }

    /// The proxy on a fresh embedded backend, with `tweak` applied to its config.
    pub fn start_with(tweak: impl FnOnce(&mut sealgate::config::Config)) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let mut config = sealgate::config::Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.admin_listen = "127.0.0.1:0".parse().unwrap();
        config.server.header_timeout_secs = 5;
        config.embedded.data_dir = dir.path().join("data");
        config.limits.max_chunk_bytes = 1024 * 1024;
        config.limits.max_header_bytes = 16 * 1024;
        config.limits.max_headers = 64;
        tweak(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime
            .block_on(sealgate::start(config))
            .expect("proxy starts");
        let e = running.endpoints.clone();
        let data = dir.path().join("data");
        Proxy {
            addr: e.s3,
            ak: e.client_access_key,
            sk: e.client_secret_key,
            data,
            runtime,
            running: Some(running),
            _dir: dir,
            admin: e.admin,
        }
    }

    pub fn object_exists(&self, bucket: &str, key: &str) -> bool {
        stored_objects(&self.data.join("objects").join(bucket))
            .iter()
            .any(|p| p.ends_with(key))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(r.shutdown());
        }
    }
}

pub fn stored_objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(stored_objects(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// A request under construction: method, path+query, headers, body.
#[derive(Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str, body: &[u8]) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn raw(&self, host: &str, content_length: bool) -> Vec<u8> {
        let mut out =
            format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", self.method, self.path).into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if content_length
            && !self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

pub fn identity(ak: &str, sk: &str) -> Identity {
    Credentials::new(ak, sk, None, None, "test").into()
}

pub fn settings(
    location: SignatureLocation,
    expires: Option<Duration>,
    payload: PayloadChecksumKind,
) -> SigningSettings {
    let mut s = SigningSettings::default();
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    s.payload_checksum_kind = payload;
    s.signature_location = location;
    s.expires_in = expires;
    s
}

/// Signs `req` in its headers with SigV4; `payload` is the x-amz-content-sha256 value.
pub fn sign_header(
    req: Req,
    host: &str,
    ak: &str,
    sk: &str,
    when: SystemTime,
    payload: &str,
) -> Req {
    let mut req = req.header("x-amz-content-sha256", payload);
    let id = identity(ak, sk);
    let params = v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("s3")
        .time(when)
        .settings(settings(
            SignatureLocation::Headers,
            None,
            PayloadChecksumKind::NoHeader,
        ))
        .build()
        .unwrap()
        .into();
    let mut hs: Vec<(String, String)> = vec![("host".into(), host.into())];
    hs.extend(req.headers.iter().cloned());
    let uri = format!("http://{host}{}", req.path);
    let body = SignableBody::Precomputed(payload.to_string());
    let signable = SignableRequest::new(
        &req.method,
        uri,
        hs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .unwrap();
    let (instr, _) = sign(signable, &params).unwrap().into_parts();
    let add: Vec<(String, String)> = instr
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in add {
        req = req.header(&k, &v);
    }
    req
}

/// Presigns `req` in its query string.
pub fn presign(
    req: Req,
    host: &str,
    ak: &str,
    sk: &str,
    when: SystemTime,
    expires: Duration,
) -> Req {
    let id = identity(ak, sk);
    let params = v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("s3")
        .time(when)
        .settings(settings(
            SignatureLocation::QueryParams,
            Some(expires),
            PayloadChecksumKind::NoHeader,
        ))
        .build()
        .unwrap()
        .into();
    let hs = [("host".to_string(), host.to_string())];
    let uri = format!("http://{host}{}", req.path);
    let signable = SignableRequest::new(
        &req.method,
        uri,
        hs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instr, _) = sign(signable, &params).unwrap().into_parts();
    let mut path = req.path.clone();
    for (k, v) in instr.params() {
        let sep = if path.contains('?') { '&' } else { '?' };
        let v = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        path.push_str(&format!("{sep}{k}={v}"));
    }
    Req { path, ..req }
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

pub fn signing_key(sk: &str, date: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{sk}").as_bytes(), date.as_bytes());
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

/// An aws-chunked upload signed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, with hooks to
/// break it: `mutate` gets the framed body and may change it.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

pub fn send_raw(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A server may answer and close before reading everything we send; that is fine.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some(Answer { status, body })
}

pub fn code_of(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + 6;
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_string())
}

/// A response read to the end of the connection, bytes intact.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when the body is exactly as long as Content-Length said: a clean end.
    pub fn is_complete(&self) -> bool {
        self.header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            == Some(self.body.len())
    }
}

/// Sends `bytes` (one request with `connection: close`) and reads the whole answer.
pub fn request(addr: SocketAddr, bytes: &[u8]) -> Option<RawResponse> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(RawResponse {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    })
}

/// A signed request with a hex SHA-256 payload hash, ready to send.
pub fn signed_request(
    p: &Proxy,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let host = p.addr.to_string();
    let mut req = Req::new(method, path, body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    sign_header(
        req,
        &host,
        &p.ak,
        &p.sk,
        SystemTime::now(),
        &sha256_hex(body),
    )
    .raw(&host, true)
}
