//! The floor of sealgate's stack: a streaming reverse proxy on the same tokio runtime,
//! hyper server settings and backend connection pool as sealgate, doing nothing else
//! (no signature check, no re-signing, no S3 routing, no encryption). Requests go to
//! the backend as they came, `Host` included, like the nginx target of
//! `benches/e2e.sh`, so clients sign them with the backend's own credentials.
//!
//! `bare-proxy LISTEN BACKEND_URL` (e.g. `127.0.0.1:9100 http://127.0.0.1:9000`).
//! The CPU this spends per request is what sealgate's own work is measured against.

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use sealgate::body::{self, BoxBody};
use sealgate::s3::handlers::passthrough::HOP_BY_HOP;
use sealgate::upstream::client::{HttpClient, build_client};
use tokio::net::TcpListener;

/// The sealgate binary's allocator (src/main.rs): part of the stack this measures.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn forwardable(from: &HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if !HOP_BY_HOP.contains(name) && name.as_str() != "keep-alive" {
            to.append(name.clone(), value.clone());
        }
    }
    to
}

async fn forward(
    client: HttpClient,
    backend: Uri,
    req: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    let (parts, incoming) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = match format!("{backend}{}", path.trim_start_matches('/')).parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    let mut up = Request::new(body::boxed(incoming));
    *up.method_mut() = parts.method;
    *up.uri_mut() = uri;
    *up.headers_mut() = forwardable(&parts.headers);
    match client.request(up).await {
        Ok(resp) => {
            let (head, incoming) = resp.into_parts();
            let mut out = Response::new(body::boxed(incoming));
            *out.status_mut() = head.status;
            *out.headers_mut() = forwardable(&head.headers);
            Ok(out)
        }
        Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
    }
}

fn status(code: StatusCode) -> Response<BoxBody> {
    let mut out = Response::new(body::empty());
    *out.status_mut() = code;
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(backend)) = (args.next(), args.next()) else {
        return Err("usage: bare-proxy LISTEN BACKEND_URL".into());
    };
    let backend: Uri = format!("{}/", backend.trim_end_matches('/')).parse()?;
    let client = build_client(None, Duration::from_secs(10), Duration::from_secs(300), 128)?;
    let listener = TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .half_close(true)
        .keep_alive(true);
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let client = client.clone();
        let backend = backend.clone();
        let svc = service_fn(move |req| forward(client.clone(), backend.clone(), req));
        let conn = http.serve_connection(TokioIo::new(socket), svc);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
