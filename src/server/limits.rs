//! Per-connection and per-request limits enforced before a request reaches
//! [`crate::service`]: URL length, dot segments and NUL in the path, the method, the
//! Host header, headers that may appear once, the declared size of XML request bodies,
//! request rate per client address, and the stall timeout on a connection's socket.
//!
//! hyper already bounds the number of headers (`limits.max_headers` → 431), the header
//! section near the connection's buffer size (≥ `limits.max_header_bytes`, which the
//! gate counts itself), the time to send a request head
//! (`server.header_timeout_secs`) and refuses conflicting framing (RFC 9112 §6.3); the
//! semaphore in [`super::listener`] bounds connections. What hyper cannot know lives
//! here, so every refusal is an S3 XML error made in one place.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderValue;
use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::time::Sleep;

use crate::config::Config;
use crate::s3::error::S3Error;
use crate::s3::headers;

/// The checks made on every request head before the service sees it.
pub struct RequestGate {
    max_url_bytes: usize,
    max_header_bytes: usize,
    max_xml_body_bytes: u64,
    rate: Option<RateLimiter>,
}

impl RequestGate {
    pub fn new(config: &Config) -> RequestGate {
        let l = &config.limits;
        let rate = (l.requests_per_second_per_client > 0).then(|| {
            RateLimiter::new(
                f64::from(l.requests_per_second_per_client),
                f64::from(
                    l.request_burst_per_client
                        .max(l.requests_per_second_per_client),
                ),
            )
        });
        RequestGate {
            max_url_bytes: config.limits.max_url_bytes,
            max_header_bytes: config.limits.max_header_bytes,
            max_xml_body_bytes: u64::try_from(config.limits.max_xml_body_bytes).unwrap_or(u64::MAX),
            rate,
        }
    }

    /// Admits the request or says which S3 error refuses it.
    pub fn admit<B>(&self, client: IpAddr, req: &http::Request<B>) -> Result<(), S3Error> {
        let url_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if url_len > self.max_url_bytes {
            // The connection may hold more of an oversized request; close it after the
            // answer rather than read on.
            return Err(S3Error::uri_too_long(
                "The request URI is longer than this server accepts.",
            )
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
        }
        if header_section_len(req) > self.max_header_bytes {
            // hyper reads heads up to its buffer size, which is larger than this limit
            // so that bodies move in bigger reads; the rest of the head is counted here.
            return Err(S3Error::new(
                "RequestHeaderSectionTooLarge",
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Your request header section exceeds the maximum allowed size.",
            )
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
        }
        if has_dot_segment(req.uri().path()) {
            // Some backends (and the embedded one) resolve `..` in the path they are
            // sent, so `/a/../b/k` signed for bucket `a` would land in bucket `b`.
            return Err(S3Error::invalid_uri(
                "Keys with '.' or '..' path segments are not accepted.",
            ));
        }
        if has_nul(req.uri().path()) {
            // XML 1.0 cannot carry U+0000 even escaped, so such a key could never be
            // listed, and filesystem and C-string backends cannot store it.
            return Err(S3Error::invalid_uri(
                "Object keys and bucket names may not contain the NUL character.",
            ));
        }
        check_method(req.method())?;
        check_host(req)?;
        for name in &SINGLE_HEADERS {
            if req.headers().get_all(name).iter().nth(1).is_some() {
                // Which copy would count? The signature covers both, joined, but the
                // credentials, date and payload hash must be one value each.
                return Err(S3Error::invalid_argument(format!(
                    "The request has more than one {name} header."
                ))
                .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
            }
        }
        if is_xml_request(req) && declared_length(req).is_some_and(|n| n > self.max_xml_body_bytes)
        {
            // Refused on the declared length, before a byte of the body is read; the
            // handlers' bounded read catches a body that lies about its length.
            return Err(S3Error::new(
                "MaxMessageLengthExceeded",
                http::StatusCode::BAD_REQUEST,
                "Your request was too big.",
            )
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close")));
        }
        if let Some(rate) = &self.rate
            && !rate.take(client, Instant::now())
        {
            return Err(S3Error::slow_down("Please reduce your request rate."));
        }
        Ok(())
    }
}

/// The bytes of the request's head as HTTP/1.1 sends it: the request line, then
/// `name: value` and CRLF per header, then the blank line.
fn header_section_len<B>(req: &http::Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |pq| pq.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + fields + 2
}

/// Headers a request may carry once. (hyper itself refuses differing `Content-Length`
/// values and folds equal ones, RFC 9112 §6.3, so the body's framing is never in doubt.)
/// As `HeaderName`s, so the per-request check does not parse five names each time.
const SINGLE_HEADERS: [http::HeaderName; 5] = [
    http::header::AUTHORIZATION,
    headers::X_AMZ_DATE,
    headers::X_AMZ_CONTENT_SHA256,
    headers::X_AMZ_SECURITY_TOKEN,
    headers::X_AMZ_DECODED_CONTENT_LENGTH,
];

/// The methods of S3: others are refused before authentication, as S3 does. Methods
/// HTTP defines but S3 does not serve get 405; unknown ones 501 (RFC 9110 §9.1).
fn check_method(method: &http::Method) -> Result<(), S3Error> {
    use http::Method;
    if [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(method)
    {
        return Ok(());
    }
    let close =
        |e: S3Error| e.with_header(http::header::CONNECTION, HeaderValue::from_static("close"));
    if [Method::TRACE, Method::CONNECT, Method::PATCH].contains(method) {
        return Err(close(S3Error::method_not_allowed(
            "The specified method is not allowed against this resource.",
        )));
    }
    Err(close(S3Error::not_implemented(
        "A header you provided implies functionality that is not implemented.",
    )))
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host header, and a valid one;
/// anything else is a 400 and the connection is not trusted further.
fn check_host<B>(req: &http::Request<B>) -> Result<(), S3Error> {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    let valid = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h
            .to_str()
            .ok()
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .is_some_and(|a| !a.as_str().contains('@')),
        (None, _) => req.version() < http::Version::HTTP_11,
        (Some(_), Some(_)) => false,
    };
    if valid {
        return Ok(());
    }
    Err(
        S3Error::invalid_request("The request needs exactly one valid Host header.")
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close")),
    )
}

/// True when the path, percent-decoded, holds a NUL byte.
fn has_nul(path: &str) -> bool {
    path.contains('\0') || percent_encoding::percent_decode_str(path).any(|b| b == 0)
}

/// True when a `/`-separated segment of the path, percent-decoded, is `.` or `..`.
fn has_dot_segment(path: &str) -> bool {
    // Without a `%`, decoding is the identity: compare the segments as they are instead
    // of decoding (and allocating) twice per request.
    if !path.contains('%') {
        return path.split('/').any(|seg| seg == "." || seg == "..");
    }
    has_dot_segment_decoded(path)
}

/// `has_dot_segment` for paths with escapes: a segment may be an encoded dot (`%2E`),
/// and an encoded slash (`%2F`) may make one.
fn has_dot_segment_decoded(path: &str) -> bool {
    path.split('/').any(|seg| {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        decoded == b"." || decoded == b".."
    }) || percent_encoding::percent_decode_str(path)
        .collect::<Vec<u8>>()
        .split(|b| *b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
}

/// POSTs whose body is an XML document the proxy or backend parses whole:
/// DeleteObjects (`?delete`) and CompleteMultipartUpload (`?uploadId=`).
fn is_xml_request<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::POST
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| {
                let name = p.split_once('=').map_or(p, |(n, _)| n);
                name == "delete" || name == "uploadId"
            })
        })
}

/// The body length the client announced (the decoded length for aws-chunked).
fn declared_length<B>(req: &http::Request<B>) -> Option<u64> {
    let h = req.headers();
    h.get(headers::X_AMZ_DECODED_CONTENT_LENGTH)
        .or_else(|| h.get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A token bucket per client address: `rate` tokens a second, at most `burst` saved.
/// Buckets of clients quiet long enough to be full again are dropped, so the map holds
/// only recently active addresses.
struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How many addresses the map may hold before idle ones are swept.
const SWEEP_AT: usize = 4096;

impl RateLimiter {
    fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; false when it has none left.
    fn take(&self, client: IpAddr, now: Instant) -> bool {
        // A poisoned lock only means another request panicked while holding it; the
        // map of counters is still usable.
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= SWEEP_AT {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + refill(rate, b.at, now) < burst);
        }
        let b = map.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + refill(self.rate, b.at, now)).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn refill(rate: f64, since: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64() * rate
}

/// A socket that fails with [`io::ErrorKind::TimedOut`] once neither a read nor a
/// write has made progress for `stall` while one of them waits. A request body that
/// stops arriving then ends in an error the body reader turns into S3's
/// `RequestTimeout`, and a client that stops reading its response loses the connection
/// instead of pinning a task and its buffers forever.
pub struct StallTimeout<T> {
    inner: T,
    stall: Duration,
    /// Allocated once per connection and re-armed, not re-created, on each wait.
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl<T> StallTimeout<T> {
    pub fn new(inner: T, stall: Duration) -> StallTimeout<T> {
        StallTimeout {
            inner,
            stall,
            deadline: Box::pin(tokio::time::sleep(stall)),
            armed: false,
        }
    }

    /// Progress disarms the timer; waiting arms it (once per wait) and checks it.
    fn on_poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        res: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match res {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.armed {
                    self.deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + self.stall);
                    self.armed = true;
                }
                match self.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(stalled())),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// The error a stalled socket reports.
fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, StallError)
}

#[derive(Debug, thiserror::Error)]
#[error("no data was sent or received on the connection within the stall timeout")]
pub struct StallError;

impl<T: Read + Unpin> Read for StallTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.on_poll(cx, res)
    }
}

impl<T: Write + Unpin> Write for StallTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_poll(cx, res)
    }

    /// Passed through: hyper flushes on every turn of its loop, and a flush that
    /// completes at once is no sign of life from the client; letting it disarm the
    /// timer would restart the clock forever.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_poll(cx, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_the_rate() {
        let r = RateLimiter::new(10.0, 5.0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        let first: Vec<bool> = (0..7).map(|_| r.take(ip, t0)).collect();
        assert_eq!(first, [true, true, true, true, true, false, false]);
        // Another address has its own bucket.
        assert!(r.take(other, t0));
        // 100 ms at 10/s refill one token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(r.take(ip, t1));
        assert!(!r.take(ip, t1));
    }

    #[test]
    fn idle_clients_are_swept() {
        let r = RateLimiter::new(1000.0, 1.0);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT as u32 {
            assert!(r.take(IpAddr::from(i.to_be_bytes()), t0));
        }
        let later = t0 + Duration::from_secs(1);
        assert!(r.take([1, 2, 3, 4].into(), later));
        let len = r.buckets.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(len < 10, "{len} buckets left after the sweep");
    }

    #[test]
    fn oversized_xml_bodies_are_refused_on_their_declared_length() {
        let mut c = Config::default();
        c.limits.max_xml_body_bytes = 100;
        let gate = RequestGate::new(&c);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let req = |uri: &str, len: &str| {
            http::Request::post(uri)
                .header("host", "s3.local")
                .header("content-length", len)
                .body(())
                .unwrap_or_default()
        };
        let code = |r: &http::Request<()>| gate.admit(ip, r).err().map(|e| e.code.to_string());
        assert_eq!(
            code(&req("/b?delete", "101")).as_deref(),
            Some("MaxMessageLengthExceeded")
        );
        assert_eq!(
            code(&req("/b/k?uploadId=abc", "5000")).as_deref(),
            Some("MaxMessageLengthExceeded")
        );
        assert_eq!(code(&req("/b?delete", "100")), None);
        // An upload part is not an XML request.
        let part = http::Request::put("/b/k?partNumber=1&uploadId=abc")
            .header("host", "s3.local")
            .header("content-length", "5000")
            .body(())
            .unwrap_or_default();
        assert_eq!(code(&part), None);
    }

    #[tokio::test]
    async fn a_silent_socket_times_out_and_progress_resets_the_clock() {
        let (client, server) = tokio::io::duplex(64);
        let mut io = StallTimeout::new(
            hyper_util::rt::TokioIo::new(server),
            Duration::from_millis(300),
        );
        let mut client = client;
        tokio::io::AsyncWriteExt::write_all(&mut client, b"abc")
            .await
            .ok();
        assert_eq!(poll_read_once(&mut io).await.ok(), Some(3));
        // A read that waits 200 ms for its byte succeeds (inside the window) ...
        let started = tokio::time::Instant::now();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tokio::io::AsyncWriteExt::write_all(&mut client, b"d")
                .await
                .ok();
            client
        });
        assert_eq!(poll_read_once(&mut io).await.ok(), Some(1));
        let client = writer.await.ok();
        // ... and restarts the clock: silence now fails a full 300 ms after the byte,
        // not 300 ms after the first wait began.
        let err = poll_read_once(&mut io).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(490));
        drop(client);
    }

    async fn poll_read_once<T: Read + Unpin>(io: &mut StallTimeout<T>) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            let mut buf = [0u8; 16];
            let mut rb = hyper::rt::ReadBuf::new(&mut buf);
            match Pin::new(&mut *io).poll_read(cx, rb.unfilled()) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    #[test]
    fn dot_segments_are_refused() {
        for p in ["/b/../c/k", "/b/%2e%2e/k", "/b/..%2Fc", "/b/./k", "/.."] {
            assert!(has_dot_segment(p), "{p}");
        }
        for p in ["/b/k", "/b/a..b", "/b/.hidden", "/b/k..", "/b/"] {
            assert!(!has_dot_segment(p), "{p}");
        }
    }

    proptest::proptest! {
        /// The undecoded fast path answers exactly what decoding would.
        #[test]
        fn dot_segments_without_escapes_need_no_decoding(path in "[/.a]{0,12}") {
            proptest::prop_assert_eq!(has_dot_segment(&path), has_dot_segment_decoded(&path));
        }
    }

    #[test]
    fn long_urls_are_refused_with_uri_too_long() {
        let mut c = Config::default();
        c.limits.max_url_bytes = 32;
        let gate = RequestGate::new(&c);
        let ok = http::Request::get("/bucket/key")
            .header("host", "s3.local")
            .body(())
            .unwrap_or_default();
        assert!(gate.admit([127, 0, 0, 1].into(), &ok).is_ok());
        let long = http::Request::get(format!("/bucket/{}", "k".repeat(40)))
            .body(())
            .unwrap_or_default();
        let err = gate.admit([127, 0, 0, 1].into(), &long).err();
        assert_eq!(err.map(|e| e.status.as_u16()), Some(414));
    }

    #[test]
    fn header_section_is_counted_as_sent() {
        let wire = "PUT /b/k?partNumber=1 HTTP/1.1\r\nhost: s3.local\r\nx-amz-meta-a: bb\r\n\r\n";
        let req = http::Request::put("/b/k?partNumber=1")
            .header("host", "s3.local")
            .header("x-amz-meta-a", "bb")
            .body(())
            .unwrap_or_default();
        assert_eq!(header_section_len(&req), wire.len());
    }

    #[test]
    fn long_header_sections_are_refused_at_the_limit() {
        let mut c = Config::default();
        c.limits.max_header_bytes = 1024;
        let gate = RequestGate::new(&c);
        let with_meta = |n: usize| {
            http::Request::get("/b/k")
                .header("host", "s3.local")
                .header("x-amz-meta-m", "v".repeat(n))
                .body(())
                .unwrap_or_default()
        };
        let base = header_section_len(&with_meta(0));
        let at_limit = with_meta(1024 - base);
        assert_eq!(header_section_len(&at_limit), 1024);
        assert!(gate.admit([127, 0, 0, 1].into(), &at_limit).is_ok());
        let err = gate
            .admit([127, 0, 0, 1].into(), &with_meta(1025 - base))
            .err();
        assert_eq!(
            err.map(|e| (e.status.as_u16(), e.code.to_string())),
            Some((431, "RequestHeaderSectionTooLarge".to_string()))
        );
    }

    fn refusal(req: http::Request<()>) -> Option<(u16, String)> {
        let gate = RequestGate::new(&Config::default());
        gate.admit([127, 0, 0, 1].into(), &req)
            .err()
            .map(|e| (e.status.as_u16(), e.code.to_string()))
    }

    fn with(method: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().method(method).uri("/b/k");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap_or_default()
    }

    #[test]
    fn methods_outside_s3_are_refused_before_authentication() {
        let host = [("host", "s3.local")];
        for m in ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"] {
            assert_eq!(refusal(with(m, &host)), None, "{m}");
        }
        for m in ["TRACE", "PATCH"] {
            assert_eq!(refusal(with(m, &host)).map(|r| r.0), Some(405), "{m}");
        }
        assert_eq!(refusal(with("FROBNICATE", &host)).map(|r| r.0), Some(501));
    }

    #[test]
    fn host_must_be_one_valid_header() {
        let bad = |h: &[(&str, &str)]| refusal(with("GET", h)).map(|r| r.0);
        assert_eq!(bad(&[]), Some(400));
        assert_eq!(bad(&[("host", "a"), ("host", "b")]), Some(400));
        assert_eq!(bad(&[("host", "a b")]), Some(400));
        assert_eq!(bad(&[("host", "user@a")]), Some(400));
        assert_eq!(bad(&[("host", "127.0.0.1:9000")]), None);
        assert_eq!(bad(&[("host", "bucket.s3.local")]), None);
    }

    #[test]
    fn credentials_date_and_hash_come_once() {
        let host = ("host", "s3.local");
        for name in &SINGLE_HEADERS {
            let name = name.as_str();
            let twice = with("GET", &[host, (name, "a"), (name, "a")]);
            assert_eq!(
                refusal(twice).map(|r| r.1).as_deref(),
                Some("InvalidArgument"),
                "{name}"
            );
        }
    }

    #[test]
    fn nul_in_the_path_is_refused() {
        assert!(has_nul("/b/k%00x"));
        assert!(!has_nul("/b/k%01x"));
        let req = http::Request::get("/b/k%00")
            .header("host", "s3.local")
            .body(())
            .unwrap_or_default();
        assert_eq!(refusal(req).map(|r| r.1).as_deref(), Some("InvalidURI"));
    }
}
