//! The pooled keep-alive client towards the backend (HTTP or HTTPS via rustls, with
//! the system roots plus an optional CA bundle). TCP_NODELAY is set: without it small
//! requests stall on Nagle's algorithm and delayed ACKs.
//!
//! A small HTTP/1.1 pool on hyper's connection API. Each connection is driven by its
//! own task and sits in its host's list the whole time, busy or idle; a checkout takes
//! one that is ready for its next request (the previous answer's body fully read) and
//! puts it back as soon as the request is queued on it. hyper-util's legacy client,
//! used before, handed a connection back only once ready, which cost a spawned task per
//! answer with a body, plus its pool bookkeeping, on every request (~4-5 % of the
//! proxy's CPU on 4 KiB requests).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use crate::crypto::segment::TAG_BYTES;
use crate::s3::error::BoxError;
use crate::server::limits::StallTimeout;

/// Request bodies sent upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("backend.ca_bundle: {0}")]
    CaBundle(String),
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the request URI names no scheme or host")]
    NoHost,
    #[error("connect: {0}")]
    Connect(#[source] BoxError),
    #[error("HTTP/1.1 handshake: {0}")]
    Handshake(#[source] hyper::Error),
    #[error(transparent)]
    Http(hyper::Error),
}

impl SendError {
    /// No connection could be made (as opposed to one failing under the request).
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_) | SendError::Handshake(_))
    }
}

/// The backend client; clones share one pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Pool>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("max_idle_per_host", &self.inner.max_idle_per_host)
            .finish_non_exhaustive()
    }
}

/// A host, and the serving shard whose thread drives its connections
/// ([`crate::server::shards`]; 0 off the shards): a request checks out only its own
/// thread's connections, so a transfer's two connections stay on one thread.
#[derive(Clone, PartialEq, Eq)]
struct PoolKey {
    scheme: Scheme,
    authority: Authority,
    shard: usize,
}

impl Hash for PoolKey {
    /// Hashes what `Eq` compares (scheme and host without regard to case, and the
    /// shard), a block of lowercased bytes per write. `Scheme` and `Authority` hash
    /// themselves a byte per write, and every request hashes its key twice (checkout
    /// and put-back): with the map's SipHash that was ~1,500 instructions each time.
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_lowercase(self.scheme.as_str(), state);
        hash_lowercase(self.authority.as_str(), state);
        state.write_usize(self.shard);
    }
}

fn hash_lowercase<H: Hasher>(s: &str, state: &mut H) {
    state.write_usize(s.len());
    let mut block = [0u8; 64];
    for chunk in s.as_bytes().chunks(block.len()) {
        let lower = &mut block[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        state.write(lower);
    }
}

struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// How long a connection may wait on the backend with nothing moving.
    stall: Duration,
    hosts: Mutex<HashMap<PoolKey, Vec<Pooled>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    /// Whether the task closing idle connections of a quiet pool runs.
    reaping: AtomicBool,
}

struct Pooled {
    sender: SendRequest<UpstreamBody>,
    last_used: Instant,
}

impl Pooled {
    /// Ready for a request: the connection is open and waits for its next one.
    fn is_idle(&self) -> bool {
        self.sender.is_ready()
    }
}

/// Builds the backend client. A connection on which neither a read nor a write has
/// moved for `stall` while one of them waits fails: a backend that stops sending in
/// the middle of an answer's body, or stops taking a request's, does not hold the
/// request (and its client) for longer than that.
pub fn build_client(
    ca_bundle: Option<&Path>,
    connect_timeout: Duration,
    stall: Duration,
    max_idle_per_host: usize,
) -> Result<HttpClient, ClientBuildError> {
    let tls = tls_client_config(ca_bundle)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(HttpClient {
        inner: Arc::new(Pool {
            connector,
            stall,
            hosts: Mutex::new(HashMap::new()),
            max_idle_per_host,
            idle_timeout: IDLE_TIMEOUT,
            reaping: AtomicBool::new(false),
        }),
    })
}

/// Bound of a backend connection's read buffer (and of its queue of body chunks to
/// write). hyper grows the read buffer while the backend keeps it full, up to ~400 KiB
/// by default, per connection: with 64 large GETs from a fast backend that was ~26 MiB
/// of the proxy's memory. Two sealed segments of the default size fit, with their tags
/// and a part header: a read of 128 KiB held 1.999 segments, so a decrypting GET
/// could hand the client one segment per write instead of two.
pub(crate) const MAX_BUF_SIZE: usize = 2
    * (crate::crypto::DEFAULT_SEGMENT_SIZE as usize + TAG_BYTES)
    + crate::crypto::part::HEADER_LEN;

/// How long an idle connection is kept (backends close theirs after a while too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl HttpClient {
    /// Sends `req` (absolute URI) on a pooled connection to its host, or a new one.
    /// A request that never left because its pooled connection had just closed is sent
    /// again on another, as the connection's closing is no answer.
    pub async fn request(
        &self,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let key = pool_key(req.uri()).ok_or(SendError::NoHost)?;
        if !req.headers().contains_key(http::header::HOST) {
            let host =
                HeaderValue::from_str(key.authority.as_str()).map_err(|_| SendError::NoHost)?;
            req.headers_mut().insert(http::header::HOST, host);
        }
        let origin_form = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(origin_form);
        loop {
            let (mut conn, reused) = match self.inner.checkout(&key) {
                Some(conn) => (conn, true),
                None => {
                    self.start_reaping();
                    (self.inner.connect(&key).await?, false)
                }
            };
            let answer = conn.sender.try_send_request(req);
            self.inner.put_back(&key, conn);
            match answer.await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    /// Starts, once, the task that closes idle connections while the pool sees no
    /// checkout (started with the first connection, so always inside the runtime).
    fn start_reaping(&self) {
        if self.inner.max_idle_per_host == 0 || self.inner.reaping.swap(true, Ordering::Relaxed) {
            return;
        }
        tokio::spawn(reap_idle(Arc::downgrade(&self.inner)));
    }
}

/// Every half idle timeout, closes the connections `checkout` would drop, until the pool
/// is gone. Checkouts prune a host's list, but after a burst a pool that sees no more
/// requests would keep up to `max_idle_per_host` sockets per backend open until the
/// backend closes them, and some backends (the embedded one) never do.
async fn reap_idle(pool: Weak<Pool>) {
    let Some(period) = pool.upgrade().map(|p| p.idle_timeout / 2) else {
        return;
    };
    loop {
        tokio::time::sleep(period).await;
        match pool.upgrade() {
            Some(pool) => pool.reap(),
            None => return,
        }
    }
}

impl Pool {
    /// An idle connection to `key`, most recently used first; closed connections and
    /// idle ones past the idle timeout are dropped on the way.
    fn checkout(&self, key: &PoolKey) -> Option<Pooled> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let list = hosts.get_mut(key)?;
        self.prune(list, Instant::now());
        let i = list.iter().rposition(Pooled::is_idle)?;
        Some(list.swap_remove(i))
    }

    /// Drops closed connections and idle ones past the idle timeout from `list`, then
    /// the least recently used idle ones beyond the bound. Dropping a connection's
    /// sender ends its task and closes its socket.
    fn prune(&self, list: &mut Vec<Pooled>, now: Instant) {
        list.retain(|c| {
            !(c.sender.is_closed()
                || (c.is_idle() && now.duration_since(c.last_used) > self.idle_timeout))
        });
        trim_idle(list, self.max_idle_per_host);
    }

    /// [`Pool::prune`] on every host, forgetting hosts left with no connection.
    fn reap(&self) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        hosts.retain(|_, list| {
            self.prune(list, now);
            !list.is_empty()
        });
    }

    /// Keeps `conn` (now carrying a request) for later; `checkout` enforces the idle bound.
    fn put_back(&self, key: &PoolKey, mut conn: Pooled) {
        if self.max_idle_per_host == 0 {
            // No pool: the connection closes once its answer is read.
            return;
        }
        conn.last_used = Instant::now();
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        match hosts.get_mut(key) {
            Some(list) => list.push(conn),
            None => {
                hosts.insert(key.clone(), vec![conn]);
            }
        }
    }

    /// A new connection to `key`, driven by its own task.
    async fn connect(&self, key: &PoolKey) -> Result<Pooled, SendError> {
        let uri = Uri::builder()
            .scheme(key.scheme.clone())
            .authority(key.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| SendError::NoHost)?;
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector.call(uri).await.map_err(SendError::Connect)?;
        let io = StallTimeout::new(io, self.stall);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_BUF_SIZE)
            .handshake(io)
            .await
            .map_err(SendError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "backend connection ended with an error");
            }
        });
        Ok(Pooled {
            sender,
            last_used: Instant::now(),
        })
    }
}

/// Closes the least recently used idle connections beyond `max`. Connections become
/// idle without telling the pool, so this runs on every checkout (a put-back adds a busy
/// one): between two requests a host may have more idle connections than `max`.
fn trim_idle(list: &mut Vec<Pooled>, max: usize) {
    if list.len() <= max {
        return;
    }
    let mut idle: Vec<usize> = (0..list.len()).filter(|&i| list[i].is_idle()).collect();
    if idle.len() <= max {
        return;
    }
    idle.sort_by_key(|&i| list[i].last_used);
    let mut surplus = idle[..idle.len() - max].to_vec();
    // Highest index first, so each swap_remove leaves the others' indices valid.
    surplus.sort_unstable_by(|a, b| b.cmp(a));
    for i in surplus {
        list.swap_remove(i);
    }
}

fn pool_key(uri: &Uri) -> Option<PoolKey> {
    Some(PoolKey {
        scheme: uri.scheme()?.clone(),
        authority: uri.authority()?.clone(),
        shard: crate::server::shards::current(),
    })
}

/// rustls client config: system roots plus the configured bundle.
pub fn tls_client_config(
    ca_bundle: Option<&Path>,
) -> Result<rustls::ClientConfig, ClientBuildError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate should not stop the proxy; it is just not trusted.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ClientBuildError::CaBundle(format!("{}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientBuildError::CaBundle(format!(
                "{}: no PEM certificate found",
                path.display()
            )));
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    #[test]
    fn pool_keys_hash_as_they_compare() {
        let hash = |uri: &str| {
            let key = pool_key(&uri.parse().expect("uri")).expect("key");
            let mut h = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut h);
            (key, h.finish())
        };
        let long = format!("{}.example:9000", "b".repeat(150));
        for (a, b) in [
            (
                "http://Backend.Example:9000/x",
                "http://backend.example:9000/y",
            ),
            ("HTTPS://host/", "https://HOST/"),
            (
                &*format!("http://{long}/"),
                &*format!("http://{}/", long.to_uppercase()),
            ),
        ] {
            let ((ka, ha), (kb, hb)) = (hash(a), hash(b));
            assert!(ka == kb, "{a} and {b} are one host");
            assert_eq!(ha, hb, "{a} and {b} hash alike");
        }
        for (a, b) in [
            ("http://backend:9000/", "http://backend:9001/"),
            ("http://backend/", "https://backend/"),
            (&*format!("http://{long}/"), &*format!("http://{long}x/")),
        ] {
            let ((ka, ha), (kb, hb)) = (hash(a), hash(b));
            assert!(ka != kb, "{a} and {b} are two hosts");
            assert_ne!(ha, hb, "{a} and {b} hash apart");
        }
    }

    /// A backend answering every request with its path; counts the connections it
    /// accepted. With `close_after_answer`, it ends each connection after one answer
    /// (`Connection: close`).
    async fn backend(close_after_answer: bool) -> (String, Arc<AtomicUsize>) {
        let (url, accepted, _) = backend_counting_open(close_after_answer).await;
        (url, accepted)
    }

    /// [`backend`], also counting the connections still open.
    async fn backend_counting_open(
        close_after_answer: bool,
    ) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (count, still_open) = (accepted.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                still_open.fetch_add(1, Ordering::SeqCst);
                let still_open = still_open.clone();
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        let path = req.uri().path().to_string();
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(path))))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close_after_answer)
                        .serve_connection(TokioIo::new(socket), svc);
                    let _ = conn.await;
                    still_open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (format!("http://{addr}"), accepted, open)
    }

    fn client(max_idle: usize) -> HttpClient {
        build_client(
            None,
            Duration::from_secs(5),
            Duration::from_secs(30),
            max_idle,
        )
        .unwrap()
    }

    async fn get(client: &HttpClient, url: &str) -> Result<String, SendError> {
        let req = Request::get(url)
            .body(UnsyncBoxBody::new(Empty::new().map_err(|e| match e {})))
            .unwrap();
        let resp = client.request(req).await?;
        let body = resp.into_body().collect().await.map_err(SendError::Http)?;
        Ok(String::from_utf8(body.to_bytes().to_vec()).unwrap())
    }

    /// `n` GETs of `{url}/{prefix}{i}` at once; their answers in order.
    async fn get_all_at_once(c: &HttpClient, url: &str, prefix: &str, n: usize) -> Vec<String> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (c, url) = (c.clone(), format!("{url}/{prefix}{i}"));
                tokio::spawn(async move { get(&c, &url).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().unwrap());
        }
        answers
    }

    fn idle_connections(client: &HttpClient) -> usize {
        let hosts = client.inner.hosts.lock().unwrap();
        hosts.values().flatten().filter(|c| c.is_idle()).count()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (url, accepted) = backend(false).await;
        let c = client(8);
        for i in 0..10 {
            assert_eq!(
                get(&c, &format!("{url}/k{i}?x=1")).await.unwrap(),
                format!("/k{i}")
            );
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_no_more_connections_than_in_flight() {
        let (url, accepted) = backend(false).await;
        let c = client(64);
        for _round in 0..3 {
            let answers = get_all_at_once(&c, &url, "p", 8).await;
            for (i, answer) in answers.iter().enumerate() {
                assert_eq!(*answer, format!("/p{i}"));
            }
        }
        let n = accepted.load(Ordering::SeqCst);
        assert!((1..=8).contains(&n), "{n} connections for 8 in flight");
    }

    #[tokio::test]
    async fn idle_connections_stay_within_the_bound() {
        let (url, _) = backend(false).await;
        let c = client(2);
        get_all_at_once(&c, &url, "b", 6).await;
        // The next checkout closes the surplus; the connection it takes is idle again
        // once its answer is read.
        get(&c, &format!("{url}/last")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(idle_connections(&c) <= 2, "{}", idle_connections(&c));
    }

    #[tokio::test]
    async fn a_quiet_pool_closes_its_idle_connections_after_the_idle_timeout() {
        let (url, _, open) = backend_counting_open(false).await;
        let mut c = client(8);
        Arc::get_mut(&mut c.inner).unwrap().idle_timeout = Duration::from_millis(100);
        get_all_at_once(&c, &url, "q", 3).await;
        assert!(open.load(Ordering::SeqCst) >= 1);
        // No request follows: only the reaper can close them.
        let closed = async {
            while open.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .unwrap_or_else(|_| panic!("{} connections still open", open.load(Ordering::SeqCst)));
        assert_eq!(idle_connections(&c), 0);
        assert!(c.inner.hosts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn connections_the_backend_closed_are_not_used_again() {
        let (url, accepted) = backend(true).await;
        let c = client(8);
        for i in 0..5 {
            assert_eq!(
                get(&c, &format!("{url}/c{i}")).await.unwrap(),
                format!("/c{i}")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = get(&client(8), &format!("http://{addr}/x"))
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err}");
    }

    #[tokio::test]
    async fn no_pool_means_a_connection_per_request() {
        let (url, accepted) = backend(false).await;
        let c = client(0);
        for i in 0..3 {
            get(&c, &format!("{url}/n{i}")).await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(idle_connections(&c), 0);
    }
}
