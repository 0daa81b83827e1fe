//! The file of a large form, streamed: exactly the file's length (Content-Length less
//! what came before the file data and the closing delimiter), then the rest of the body
//! must be exactly `\r\nBOUNDARY--\r\n`.
//!
//! The last slice of file data is withheld until that check passes, the same rule as
//! the verifying body's: the backend request has an exact Content-Length, so a form
//! that ends any other way (or a body that ends early) fails the stream before the
//! backend has the whole object, and nothing is stored. The failure is recorded in a
//! [`FormOutcome`] for the handler's answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::auth::BoxError;

/// Whether the form turned out malformed while its file streamed.
#[derive(Debug, Clone, Default)]
pub struct FormOutcome(Arc<AtomicBool>);

impl FormOutcome {
    pub fn malformed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set_malformed(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The error the stream ends with when the form is malformed.
#[derive(Debug, thiserror::Error)]
#[error("the POST form did not end with its closing delimiter where its length says")]
pub struct MalformedForm;

pin_project_lite::pin_project! {
    /// `inner` positioned at the start of the file data, with `pending` bytes already read.
    pub struct FileBody<B> {
        #[pin]
        inner: B,
        pending: Bytes,
        remaining: u64,
        tail: Vec<u8>,
        seen_tail: BytesMut,
        held: Option<Bytes>,
        outcome: FormOutcome,
        done: bool,
    }
}

impl<B> FileBody<B> {
    /// A body of `file_len` bytes; `pending` were read from the body already, and the
    /// form must end with `closing` (`\r\n--BOUNDARY--\r\n`) right after the file.
    pub fn new(
        inner: B,
        pending: Bytes,
        file_len: u64,
        closing: Vec<u8>,
    ) -> (FileBody<B>, FormOutcome) {
        let outcome = FormOutcome::default();
        (
            FileBody {
                inner,
                pending,
                remaining: file_len,
                tail: closing,
                seen_tail: BytesMut::new(),
                held: None,
                outcome: outcome.clone(),
                done: false,
            },
            outcome,
        )
    }
}

impl<B> Body for FileBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            if !this.pending.is_empty() {
                let n = this.pending.len() as u64;
                if n < *this.remaining {
                    *this.remaining -= n;
                    return Poll::Ready(Some(Ok(Frame::data(std::mem::take(this.pending)))));
                }
                if *this.remaining > 0 {
                    // The last of the file: held until the form's end checks out.
                    let cut = usize::try_from(*this.remaining).unwrap_or(usize::MAX);
                    *this.held = Some(this.pending.split_to(cut));
                    *this.remaining = 0;
                }
                this.seen_tail.extend_from_slice(this.pending);
                *this.pending = Bytes::new();
                if this.seen_tail.len() > this.tail.len() {
                    return fail(this.outcome, this.done);
                }
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        *this.pending = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The client body failed (ended early, stalled): its own outcome
                    // says why; the form is unfinished either way.
                    this.outcome.set_malformed();
                    *this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => {
                    if *this.remaining > 0 || this.seen_tail[..] != this.tail[..] {
                        return fail(this.outcome, this.done);
                    }
                    *this.done = true;
                    return match this.held.take() {
                        Some(last) => Poll::Ready(Some(Ok(Frame::data(last)))),
                        None => Poll::Ready(None),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = SizeHint::new();
        if !self.done {
            let left = self.remaining + self.held.as_ref().map_or(0, |h| h.len() as u64);
            hint.set_upper(left.saturating_add(self.pending.len() as u64));
        }
        hint
    }
}

fn fail(outcome: &FormOutcome, done: &mut bool) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    outcome.set_malformed();
    *done = true;
    Poll::Ready(Some(Err(Box::new(MalformedForm))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};

    /// The body read through `FileBody`: the data it yielded and whether it failed.
    async fn drain(pending: &[u8], frames: &[&[u8]], file_len: u64) -> (Vec<u8>, bool, bool) {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = frames
            .iter()
            .map(|f| Ok(Frame::data(Bytes::copy_from_slice(f))))
            .collect();
        let inner = StreamBody::new(futures_util::stream::iter(frames));
        let (mut body, outcome) = FileBody::new(
            inner,
            Bytes::copy_from_slice(pending),
            file_len,
            b"\r\n--b--\r\n".to_vec(),
        );
        let mut out = Vec::new();
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap_or_default()),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        (out, failed, outcome.malformed())
    }

    #[tokio::test]
    async fn the_file_streams_when_the_form_ends_right() {
        let (out, failed, malformed) =
            drain(b"hel", &[b"lo wor", b"ld\r\n--b", b"--\r\n"], 11).await;
        assert_eq!(out, b"hello world");
        assert!(!failed && !malformed);
        let (out, failed, _) = drain(b"hello world\r\n--b--\r\n", &[], 11).await;
        assert_eq!(out, b"hello world");
        assert!(!failed);
    }

    #[tokio::test]
    async fn the_last_bytes_wait_for_the_end_and_a_wrong_end_fails() {
        // The closing delimiter is wrong: the file's last slice never comes out.
        let (out, failed, malformed) = drain(b"", &[b"hello ", b"world\r\n--c--\r\n"], 11).await;
        assert_eq!(out, b"hello ");
        assert!(failed && malformed);
        // More after the closing delimiter.
        let (_, failed, _) = drain(b"", &[b"hello world\r\n--b--\r\nX"], 11).await;
        assert!(failed);
        // The body ends early.
        let (out, failed, _) = drain(b"", &[b"hello", b" wor"], 11).await;
        assert!(failed);
        assert_eq!(
            out, b"hello wor",
            "short of the length: the backend cannot complete"
        );
        // The delimiter is cut short.
        let (_, failed, _) = drain(b"", &[b"hello world\r\n--b--"], 11).await;
        assert!(failed);
    }
}
