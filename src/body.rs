//! Body plumbing shared by the pipeline and the handlers: the boxed body types, small
//! fixed bodies, and a wrapper that counts bytes into a metric as frames pass.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use prometheus::IntCounter;

use crate::s3::error::BoxError;

/// Every response body the proxy sends, and every request body it forwards.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The empty body.
pub fn empty() -> BoxBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> BoxBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

pin_project_lite::pin_project! {
    /// Adds the length of every data frame to a counter.
    pub struct Counted<B> {
        #[pin]
        inner: B,
        counter: IntCounter,
    }
}

impl<B> Counted<B> {
    pub fn new(inner: B, counter: IntCounter) -> Self {
        Counted { inner, counter }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A body whose first frame was already read (to learn early whether it fails), put
    /// back in front of the rest.
    pub struct Primed<B> {
        first: Option<Frame<Bytes>>,
        #[pin]
        inner: B,
    }
}

impl<B> Primed<B> {
    pub fn new(first: Option<Frame<Bytes>>, inner: B) -> Self {
        Primed { first, inner }
    }
}

impl<B> Body for Primed<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(frame) = this.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        this.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let extra = self
            .first
            .as_ref()
            .and_then(|f| f.data_ref())
            .map_or(0, |d| d.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

/// Reads the first frame of `body` before any response head is sent, so a body that
/// fails at once becomes a proper error answer instead of an aborted connection.
pub async fn prime<B>(mut body: B) -> Result<Primed<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    match body.frame().await {
        None => Ok(Primed::new(None, body)),
        Some(Ok(frame)) => Ok(Primed::new(Some(frame), body)),
        Some(Err(e)) => Err(e),
    }
}

/// `<Error>`: the start of an S3 error document.
const ERROR_TAG: &[u8] = b"<Error>";

pin_project_lite::pin_project! {
    /// Runs `on_success` once the body has been read to its end without an S3 `<Error>`
    /// document in it: a backend may answer CompleteMultipartUpload `200 OK` and then
    /// report a failure in the body. Not run when the body fails or is dropped early.
    pub struct OnCleanEnd<B, F> {
        #[pin]
        inner: B,
        on_success: Option<F>,
        saw_error: bool,
        // The last bytes of the previous frame, so a tag split across frames is seen.
        tail: Vec<u8>,
    }
}

impl<B, F: FnOnce()> OnCleanEnd<B, F> {
    pub fn new(inner: B, on_success: F) -> Self {
        OnCleanEnd {
            inner,
            on_success: Some(on_success),
            saw_error: false,
            tail: Vec::with_capacity(ERROR_TAG.len() * 2),
        }
    }
}

impl<B, F> Body for OnCleanEnd<B, F>
where
    B: Body<Data = Bytes>,
    F: FnOnce(),
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !*this.saw_error
                {
                    let keep = ERROR_TAG.len() - 1;
                    // The previous frames' last bytes, then this frame's first ones.
                    this.tail.extend_from_slice(&data[..data.len().min(keep)]);
                    let across = this.tail.windows(ERROR_TAG.len()).any(|w| w == ERROR_TAG);
                    let within = data.windows(ERROR_TAG.len()).any(|w| w == ERROR_TAG);
                    *this.saw_error = across || within;
                    // Keep the stream's last `keep` bytes (a short frame is all in `tail`).
                    if data.len() >= keep {
                        this.tail.clear();
                        this.tail.extend_from_slice(&data[data.len() - keep..]);
                    } else {
                        let excess = this.tail.len().saturating_sub(keep);
                        this.tail.drain(..excess);
                    }
                }
                this.inner.is_end_stream()
            }
            _ => false,
        };
        if ended
            && !*this.saw_error
            && let Some(f) = this.on_success.take()
        {
            f();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod on_clean_end_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Streams `frames` through [`OnCleanEnd`] and says whether the callback ran.
    async fn runs_callback(frames: &[&'static [u8]]) -> bool {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = frames
            .iter()
            .map(|f| Ok(Frame::data(Bytes::from_static(f))))
            .collect();
        let inner = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let body = OnCleanEnd::new(inner, move || flag.store(true, Ordering::SeqCst));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, frames.concat());
        ran.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_clean_document_runs_the_callback() {
        assert!(
            runs_callback(&[
                b"<CompleteMultipartUploadResult>",
                b"</Complete",
                b"MultipartUploadResult>"
            ])
            .await
        );
        assert!(runs_callback(&[]).await);
        assert!(runs_callback(&[b"  ", b"<Err", b"ors/>"]).await);
    }

    #[tokio::test]
    async fn an_error_document_does_not() {
        assert!(!runs_callback(&[b"   ", b"<Error><Code>InternalError</Code></Error>"]).await);
        // The tag split across frames, at every position.
        for cut in 1..ERROR_TAG.len() {
            let (a, b) = ERROR_TAG.split_at(cut);
            let a: &'static [u8] = Box::leak(a.to_vec().into_boxed_slice());
            let b: &'static [u8] = Box::leak(b.to_vec().into_boxed_slice());
            assert!(
                !runs_callback(&[b"  ", a, b, b"<Code>x</Code></Error>"]).await,
                "cut {cut}"
            );
        }
        // And across three frames.
        assert!(!runs_callback(&[b"<Er", b"r", b"or><Code>x</Code></Error>"]).await);
        assert!(!runs_callback(&[b"x<", b"E", b"r", b"r", b"o", b"r", b">"]).await);
    }
}
