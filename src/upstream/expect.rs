//! `Expect: 100-continue` towards the backend, for requests only the backend can
//! authorise (anonymous ones): the client's body is not read, and so the client gets
//! no `100 Continue` from the proxy, until the backend has said `100 Continue` itself.
//! A backend that refuses answers before any body byte has moved, and the client sees
//! that answer instead of a `100 Continue` followed by a refusal.
//!
//! hyper's client does not wait for `100 Continue` on its own; [`hold_body`] holds the body
//! back until the backend's `100` arrives (`hyper::ext::on_informational`) or, for a
//! backend that ignores `Expect`, until [`CONTINUE_WAIT`] has passed (RFC 9110
//! §10.1.1 lets a client send the body after such a wait).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use super::client::UpstreamBody;
use crate::s3::error::BoxError;

/// How long a body waits for the backend's `100 Continue` before it is sent anyway.
pub const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// How long a body whose request the backend answered early stays unsent before it
/// fails. Failing it breaks the connection, and with it the answer's own body if that
/// is still being read: the backend's answer (a short error document) is relayed
/// first, and a backend that refuses a body usually closes the connection itself,
/// which drops the held body sooner.
pub const ANSWERED_GRACE: Duration = Duration::from_secs(10);

/// Whether `headers` ask for `100 Continue`.
pub fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Asks for `100 Continue` on `headers`.
pub fn ask_for_continue(headers: &mut http::HeaderMap) {
    headers.insert(
        http::header::EXPECT,
        HeaderValue::from_static("100-continue"),
    );
}

/// Holds `req`'s body back until the backend's `100 Continue`, or for
/// [`CONTINUE_WAIT`] when none comes. A final answer that comes first means the body
/// is never sent: hyper drops the informational callback when the final answer
/// arrives, and after [`ANSWERED_GRACE`] the body ends in an error (so the connection
/// is not reused half-written).
pub fn hold_body(req: &mut Request<UpstreamBody>) {
    hold_body_for(req, CONTINUE_WAIT, ANSWERED_GRACE);
}

fn hold_body_for(req: &mut Request<UpstreamBody>, continue_wait: Duration, grace: Duration) {
    let (tx, rx) = oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    hyper::ext::on_informational(req, move |resp| {
        if resp.status() == StatusCode::CONTINUE
            && let Some(tx) = tx.lock().ok().and_then(|mut t| t.take())
        {
            let _ = tx.send(());
        }
    });
    let open = Box::pin(async move {
        match tokio::time::timeout(continue_wait, rx).await {
            Ok(Ok(())) => Release::Send,
            // The callback is gone: the backend answered without asking for the body.
            Ok(Err(_)) => {
                tokio::time::sleep(grace).await;
                Release::Never
            }
            Err(_) => Release::Send,
        }
    });
    let body = std::mem::replace(req.body_mut(), crate::body::empty());
    *req.body_mut() = UpstreamBody::new(Held {
        inner: body,
        open: Some(open),
    });
}

enum Release {
    Send,
    Never,
}

type Opening = Pin<Box<dyn Future<Output = Release> + Send>>;

struct Held {
    inner: UpstreamBody,
    open: Option<Opening>,
}

#[derive(Debug, thiserror::Error)]
#[error("the backend answered before it asked for the request body")]
struct AnsweredEarly;

impl Body for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(open) = this.open.as_mut() {
            match open.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Release::Never) => {
                    return Poll::Ready(Some(Err(Box::new(AnsweredEarly))));
                }
                Poll::Ready(Release::Send) => this.open = None,
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.open.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn request() -> Request<UpstreamBody> {
        let mut req = Request::new(crate::body::full(Bytes::from_static(b"hello")));
        ask_for_continue(req.headers_mut());
        req
    }

    #[tokio::test]
    async fn a_held_body_goes_after_the_wait_when_no_continue_comes() {
        let mut req = request();
        assert!(expects_continue(req.headers()));
        hold_body(&mut req);
        // hyper keeps the callback until the final answer; so does this test.
        let (parts, body) = req.into_parts();
        let started = std::time::Instant::now();
        let body = body.collect().await.map(|b| b.to_bytes());
        assert_eq!(body.ok().as_deref(), Some(&b"hello"[..]));
        assert!(started.elapsed() >= CONTINUE_WAIT);
        drop(parts);
    }

    #[tokio::test]
    async fn a_body_held_when_the_backend_answers_is_never_sent() {
        let mut req = request();
        let grace = Duration::from_millis(200);
        hold_body_for(&mut req, CONTINUE_WAIT, grace);
        // The final answer: hyper drops the informational callback.
        req.extensions_mut().clear();
        let started = std::time::Instant::now();
        let body = req.into_body().collect().await;
        assert!(
            body.is_err(),
            "the held body must not be sent after the answer"
        );
        // Not at once: the answer's own body may still be coming on the connection.
        assert!(started.elapsed() >= grace);
    }
}
