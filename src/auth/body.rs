//! The verifying request body: decodes aws-chunked framing and checks every digest
//! and signature the client committed to, while streaming.
//!
//! Safety rests on one rule: the most recent payload slice is always withheld until
//! the body has ended and every check has passed. The upstream request carries an
//! exact Content-Length, so a failed check (yielded as `Err` instead of those last
//! bytes) aborts it before the backend can store a bad object; the failure is kept
//! in [`BodyOutcome`] so the caller answers with the specific S3 error. Data leaves
//! in the frames it arrived in (zero-copy slices), trailers are consumed, never
//! forwarded.
//!
//! A body whose decoded length is 0 has no bytes to withhold: callers that must not
//! send such a request before it is verified should drain the body first (it is at
//! most a few framing bytes).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use crate::crypto::constant_time_eq;
use aws_lc_rs::digest::{Context as Sha256, SHA256};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sealgate_md5::Md5;

use super::checksum::{ChecksumAlgorithm, Checksummer};
use super::chunked::ChunkedDecoder;
use super::error::AuthError;
use super::payload::{BodySpec, ChecksumSource, Framing};

pub use super::BoxError;

/// Limits on what a client body may make the proxy hold.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest aws-chunked chunk accepted (chunk data is streamed, not buffered; the
    /// bound stops a client announcing an absurd size).
    pub max_chunk_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_chunk_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Default)]
struct Outcome {
    error: Option<AuthError>,
    checksum: Option<(ChecksumAlgorithm, String)>,
}

/// What the body verification concluded; shared with the [`VerifiedBody`] it came with.
#[derive(Debug, Clone, Default)]
pub struct BodyOutcome(Arc<Mutex<Outcome>>);

impl BodyOutcome {
    fn lock(&self) -> MutexGuard<'_, Outcome> {
        // A panic elsewhere cannot leave `Outcome` half-written; keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The failure that ended the body early, if any.
    pub fn error(&self) -> Option<AuthError> {
        self.lock().error.clone()
    }

    /// After a clean end: the verified flexible checksum, e.g. `(Crc32, "sOO8/Q==")`.
    pub fn checksum(&self) -> Option<(ChecksumAlgorithm, String)> {
        self.lock().checksum.clone()
    }

    fn set_error(&self, e: AuthError) {
        let mut o = self.lock();
        if o.error.is_none() {
            o.error = Some(e);
        }
    }
}

/// The digests one body is checked against, fed with the decoded payload.
struct Checks {
    decoder: Option<ChunkedDecoder>,
    sha256: Option<(Sha256, [u8; 32])>,
    md5: Option<(Md5, [u8; 16])>,
    checksum: Option<(Checksummer, ChecksumSource)>,
    trailer_names: Vec<String>,
    expected_len: Option<u64>,
    seen: u64,
}

impl Checks {
    fn new(spec: BodySpec, limits: BodyLimits) -> Checks {
        let decoder = match spec.framing {
            Framing::Plain => None,
            Framing::AwsChunked { trailer, .. } => Some(ChunkedDecoder::new(
                spec.chunk_signer,
                trailer,
                limits.max_chunk_bytes,
            )),
        };
        Checks {
            decoder,
            sha256: spec.sha256.map(|h| (Sha256::new(&SHA256), h)),
            md5: spec.content_md5.map(|h| (Md5::new(), h)),
            checksum: spec
                .checksum
                .map(|(alg, source)| (Checksummer::new(alg), source)),
            trailer_names: spec.trailer_names,
            expected_len: spec.decoded_length,
            seen: 0,
        }
    }

    /// Decodes one frame of the wire body into payload slices and digests them.
    fn feed(&mut self, frame: Bytes, out: &mut Vec<Bytes>) -> Result<(), AuthError> {
        let start = out.len();
        match &mut self.decoder {
            Some(d) => d.decode(frame, out)?,
            None if frame.is_empty() => {}
            None => out.push(frame),
        }
        for piece in out.iter().skip(start) {
            self.seen = self
                .seen
                .saturating_add(u64::try_from(piece.len()).unwrap_or(u64::MAX));
            if self.expected_len.is_some_and(|n| self.seen > n) {
                return Err(AuthError::IncompleteBody);
            }
            if let Some((h, _)) = &mut self.sha256 {
                h.update(piece);
            }
            if let Some((h, _)) = &mut self.md5 {
                h.update(piece);
            }
            if let Some((c, _)) = &mut self.checksum {
                c.update(piece);
            }
        }
        Ok(())
    }

    /// Every end-of-body check; the verified checksum on success.
    fn finish(&mut self) -> Result<Option<(ChecksumAlgorithm, String)>, AuthError> {
        let mut trailers: &[(String, String)] = &[];
        if let Some(d) = &mut self.decoder {
            d.finish()?;
            trailers = d.trailers();
        }
        if self.expected_len.is_some_and(|n| n != self.seen) {
            return Err(AuthError::IncompleteBody);
        }
        for (name, _) in trailers {
            if !self.trailer_names.iter().any(|n| n == name) {
                return Err(AuthError::ChecksumRequest(
                    "The trailer you sent was not announced in x-amz-trailer.",
                ));
            }
        }
        if let Some((h, expected)) = self.sha256.take() {
            let got = super::chunked::sha256_bytes(h);
            if !constant_time_eq(&got, &expected) {
                return Err(AuthError::ContentSha256Mismatch);
            }
        }
        if let Some((h, expected)) = self.md5.take() {
            let got = h.finalize();
            if !constant_time_eq(&got, &expected) {
                return Err(AuthError::ContentMd5Mismatch);
            }
        }
        let Some((summer, source)) = self.checksum.take() else {
            return Ok(None);
        };
        let alg = summer.algorithm();
        let in_trailer = trailers
            .iter()
            .find(|(n, _)| n == alg.header_name())
            .map(|(_, v)| v.as_str());
        let expected = match (source, in_trailer) {
            (ChecksumSource::Header(raw), _) => raw,
            (ChecksumSource::Trailer | ChecksumSource::TrailerIfSent, Some(value)) => alg
                .decode_value(value)
                .ok_or(AuthError::ChecksumMalformed(alg))?,
            (ChecksumSource::TrailerIfSent, None) => return Ok(None),
            (ChecksumSource::Trailer, None) => {
                return Err(AuthError::ChecksumRequest(
                    "The trailer announced in x-amz-trailer was not sent.",
                ));
            }
        };
        let got = summer.finalize();
        if !constant_time_eq(&got, &expected) {
            return Err(AuthError::ChecksumMismatch(alg));
        }
        use base64::Engine as _;
        Ok(Some((
            alg,
            base64::engine::general_purpose::STANDARD.encode(got),
        )))
    }
}

pin_project_lite::pin_project! {
    /// A client body that yields only verified payload; see the module docs.
    pub struct VerifiedBody<B> {
        #[pin]
        inner: B,
        checks: Checks,
        // Payload slices cleared for sending, in order.
        ready: VecDeque<Bytes>,
        // The latest slice, withheld until the end-of-body checks pass.
        held: Option<Bytes>,
        scratch: Vec<Bytes>,
        outcome: BodyOutcome,
        remaining: Option<u64>,
        inner_done: bool,
        finished: bool,
    }
}

impl<B> VerifiedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    pub fn new(inner: B, spec: BodySpec, limits: BodyLimits) -> (Self, BodyOutcome) {
        let outcome = BodyOutcome::default();
        let remaining = spec.decoded_length;
        let body = VerifiedBody {
            inner,
            checks: Checks::new(spec, limits),
            ready: VecDeque::new(),
            held: None,
            scratch: Vec::new(),
            outcome: outcome.clone(),
            remaining,
            inner_done: false,
            finished: false,
        };
        (body, outcome)
    }
}

fn emit(remaining: &mut Option<u64>, data: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    if let Some(r) = remaining {
        *r = r.saturating_sub(u64::try_from(data.len()).unwrap_or(u64::MAX));
    }
    Poll::Ready(Some(Ok(Frame::data(data))))
}

impl<B> Body for VerifiedBody<B>
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
            if *this.finished {
                return Poll::Ready(None);
            }
            if let Some(data) = this.ready.pop_front() {
                return emit(this.remaining, data);
            }
            if *this.inner_done {
                match this.checks.finish() {
                    Ok(checksum) => {
                        this.outcome.lock().checksum = checksum;
                        *this.finished = true;
                        return match this.held.take() {
                            Some(data) => emit(this.remaining, data),
                            None => Poll::Ready(None),
                        };
                    }
                    Err(e) => return fail(this.finished, this.outcome, e),
                }
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => *this.inner_done = true,
                Poll::Ready(Some(Err(e))) => {
                    *this.finished = true;
                    let e: BoxError = e.into();
                    this.outcome.set_error(if timed_out(&*e) {
                        AuthError::BodyStalled
                    } else {
                        AuthError::BodyRead
                    });
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    // HTTP-level trailers are not part of the payload; dropped.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    this.scratch.clear();
                    if let Err(e) = this.checks.feed(data, this.scratch) {
                        return fail(this.finished, this.outcome, e);
                    }
                    if let Some(last) = this.scratch.pop() {
                        this.ready.extend(this.held.take());
                        this.ready.extend(this.scratch.drain(..));
                        *this.held = Some(last);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

fn fail(
    finished: &mut bool,
    outcome: &BodyOutcome,
    e: AuthError,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    *finished = true;
    outcome.set_error(e.clone());
    Poll::Ready(Some(Err(Box::new(e))))
}

/// True when the transport gave up on a silent client: the listener's stall timeout
/// surfaces as an `io::ErrorKind::TimedOut` somewhere in the error's source chain.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
pub(crate) mod tests;
