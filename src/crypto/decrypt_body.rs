//! `DecryptBody`: ciphertext in, exactly the planned plaintext out.
//!
//! Reads part headers and segments off the inner body, opens each segment in place right
//! after the plaintext of the segments before it, and hands out the planned slice in a
//! frame once [`FRAME_TARGET`] bytes are open (a segment larger than that makes a frame
//! of its own), or sooner when the ciphertext read so far is all open: one backend read
//! of two segments reaches the client as one write, not two.
//!
//! Any authentication failure, a header that does not fit the layout, an early end or
//! extra bytes after the final segment is an `Err` frame: a failed GET aborts, it never
//! ends as a short body.
//! The final plaintext frame is held back until the inner body is seen to end, so a
//! client never receives all its bytes from a stream that then turns out to be bad.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::keys::DataKey;
use super::layout::{ObjectLayout, RangePlan};
use super::part::{HEADER_LEN, PartHeader, parse_part_header};
use super::segment::{OpenError, SegmentOpener};
use super::{BoxError, CryptoError, TAG_LEN, len_u64, segment_size_log2};

/// Open plaintext that makes a frame (less when the inner body has no more ciphertext
/// ready, more when the segment that crosses it is large): two default segments.
pub const FRAME_TARGET: usize = 2 * super::DEFAULT_SEGMENT_SIZE as usize;

/// Why a ciphertext stream could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error("part {part}: {source}")]
    Tampered {
        part: u32,
        #[source]
        source: OpenError,
    },
    #[error("part {part}: {source}")]
    BadPartHeader {
        part: u32,
        #[source]
        source: CryptoError,
    },
    #[error("ciphertext ended before the final segment")]
    Truncated,
    #[error("ciphertext continues after the final segment")]
    TrailingBytes,
    #[error("invalid decryption plan: {0}")]
    Plan(CryptoError),
    #[error("ciphertext body failed: {0}")]
    Inner(BoxError),
}

/// What a [`DecryptBody`] reads and returns.
#[derive(Debug, Clone)]
pub struct DecryptPlan {
    segment_size: u32,
    parts: u32,
    total_plain_len: u64,
    /// P, when known; a whole-object plan learns it from part 1's header.
    part_plain_len: Option<u64>,
    first_part: u32,
    first_segment: u64,
    first_header: Option<PartHeader>,
    /// Last (part, segment) to open; `None`: the object's last segment.
    end: Option<(u32, u64)>,
    skip: u64,
    take: u64,
}

impl DecryptPlan {
    /// The whole object; the stream starts with part 1's header, which supplies P.
    /// `total_plain_len` comes from `object_plaintext_len` of the backend's size.
    pub fn whole(
        parts: u32,
        segment_size: u32,
        total_plain_len: u64,
    ) -> Result<DecryptPlan, CryptoError> {
        segment_size_log2(segment_size)?;
        if parts == 0 {
            return Err(CryptoError::BadLayout("zero parts"));
        }
        Ok(DecryptPlan {
            segment_size,
            parts,
            total_plain_len,
            part_plain_len: (parts == 1).then_some(total_plain_len),
            first_part: 1,
            first_segment: 0,
            first_header: None,
            end: None,
            skip: 0,
            take: total_plain_len,
        })
    }

    /// A planned range. `first_header` is the header of `plan.first_part`, fetched
    /// separately, and is required exactly when `plan.header_range` is `Some`.
    pub fn range(
        layout: &ObjectLayout,
        plan: &RangePlan,
        first_header: Option<PartHeader>,
    ) -> Result<DecryptPlan, CryptoError> {
        // Public fields: re-validate rather than trust how the layout was built.
        let layout = &ObjectLayout::new(
            layout.segment_size,
            layout.parts,
            layout.part_plain_len,
            layout.total_plain_len,
        )?;
        if plan.header_range.is_some() != first_header.is_some() {
            return Err(CryptoError::BadLayout(
                "part header needed exactly when the range starts mid-part",
            ));
        }
        Ok(DecryptPlan {
            segment_size: layout.segment_size,
            parts: layout.parts,
            total_plain_len: layout.total_plain_len,
            part_plain_len: Some(layout.part_plain_len),
            first_part: plan.first_part,
            first_segment: plan.first_segment,
            first_header,
            end: Some((plan.last_part, plan.last_segment)),
            skip: plan.skip,
            take: plan.take,
        })
    }

    /// Plaintext bytes the body will yield.
    pub fn plain_len(&self) -> u64 {
        self.take
    }
}

enum Phase {
    Header,
    Segment,
    /// The final plaintext, held until the inner body is seen to end.
    Finishing(Bytes),
    Done,
    Failed,
}

struct Opening {
    dk: DataKey,
    plan: DecryptPlan,
    part: u32,
    part_len: u64,
    part_segments: u64,
    segment: u64,
    opener: Option<SegmentOpener>,
    phase: Phase,
    skip: u64,
    remaining: u64,
    /// Opened plaintext not yet handed out (`buf[..ready]`), then the ciphertext of the
    /// segment or part header being gathered.
    buf: BytesMut,
    ready: usize,
    pending_in: Bytes,
}

pin_project! {
    /// Decrypts a whole object or a planned range as the ciphertext arrives.
    pub struct DecryptBody<B> {
        #[pin]
        inner: B,
        state: Box<Opening>,
        error: Option<DecryptError>,
    }
}

impl<B> DecryptBody<B> {
    /// Decrypts `inner` (the ciphertext the plan asked for) with the object's data key.
    pub fn new(inner: B, dk: DataKey, plan: DecryptPlan) -> Self {
        let mut state = Box::new(Opening {
            dk,
            part: plan.first_part,
            part_len: 0,
            part_segments: 0,
            segment: 0,
            opener: None,
            phase: Phase::Header,
            skip: plan.skip,
            remaining: plan.take,
            buf: BytesMut::new(),
            ready: 0,
            pending_in: Bytes::new(),
            plan,
        });
        let mut error = None;
        if let Some(header) = state.plan.first_header {
            match state.accept_header(header) {
                Ok(()) if state.plan.first_segment < state.part_segments => {
                    state.segment = state.plan.first_segment;
                    state.phase = Phase::Segment;
                }
                Ok(()) => {
                    error = Some(DecryptError::Plan(CryptoError::BadLayout(
                        "range starts past its part",
                    )))
                }
                Err(e) => error = Some(e),
            }
        }
        if error.is_some() {
            state.phase = Phase::Failed;
        }
        DecryptBody {
            inner,
            state,
            error,
        }
    }
}

impl Opening {
    /// Checks a part header against the layout and keys the part.
    fn accept_header(&mut self, header: PartHeader) -> Result<(), DecryptError> {
        let plan = &mut self.plan;
        let bad = |source| DecryptError::BadPartHeader {
            part: self.part,
            source,
        };
        let expected = match plan.part_plain_len {
            Some(p) if self.part < plan.parts => p,
            Some(p) => plan
                .total_plain_len
                .checked_sub(p.saturating_mul(u64::from(plan.parts) - 1))
                .ok_or(bad(CryptoError::BadLayout("parts longer than the object")))?,
            None => {
                // Part 1 of a multipart object: its length is the part size P of the layout.
                let layout = ObjectLayout::new(
                    plan.segment_size,
                    plan.parts,
                    header.plain_len(),
                    plan.total_plain_len,
                )
                .map_err(bad)?;
                plan.part_plain_len = Some(layout.part_plain_len);
                layout.part_plain_len
            }
        };
        if header.plain_len() != expected || self.part > plan.parts {
            return Err(bad(CryptoError::BadPartHeader(
                "length does not match the object layout",
            )));
        }
        let s = u64::from(plan.segment_size);
        self.part_len = expected;
        self.part_segments = if expected == 0 {
            1
        } else {
            (expected - 1) / s + 1
        };
        self.segment = 0;
        self.opener = Some(SegmentOpener::new(&self.dk, &header, self.part).map_err(bad)?);
        Ok(())
    }

    /// Bytes the current phase needs in `buf`.
    fn need(&self) -> usize {
        match self.phase {
            Phase::Header => HEADER_LEN,
            _ => {
                let s = u64::from(self.plan.segment_size);
                let plain = self.part_len.saturating_sub(self.segment * s).min(s);
                usize::try_from(plain + TAG_LEN).unwrap_or(usize::MAX)
            }
        }
    }

    /// Pulls one inner frame into `pending_in`. `Ok(false)`: the inner body ended.
    fn pull<B>(
        &mut self,
        inner: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<bool, DecryptError>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        Poll::Ready(match ready!(inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.pending_in = data;
                }
                Ok(true)
            }
            Some(Err(e)) => Err(DecryptError::Inner(e.into())),
            None => Ok(false),
        })
    }

    /// Runs until a plaintext frame is ready, the stream is done, or the inner is pending.
    fn poll_next<B>(
        &mut self,
        mut inner: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, DecryptError>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        loop {
            if let Phase::Finishing(_) = self.phase {
                if !self.pending_in.is_empty() {
                    return Poll::Ready(Err(DecryptError::TrailingBytes));
                }
                if ready!(self.pull(inner.as_mut(), cx))? {
                    continue;
                }
                let Phase::Finishing(out) = std::mem::replace(&mut self.phase, Phase::Done) else {
                    continue;
                };
                return Poll::Ready(Ok((!out.is_empty()).then_some(out)));
            }
            if matches!(self.phase, Phase::Done | Phase::Failed) {
                return Poll::Ready(Ok(None));
            }
            let need = self.need();
            if self.buf.is_empty() {
                // Room for a frame's plaintext and the segment after it, so gathering
                // never moves what is already open.
                let frame = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(FRAME_TARGET);
                self.buf.reserve(frame + need.max(HEADER_LEN));
            } else {
                self.buf.reserve(need);
            }
            let gathered = self.ready + need;
            while self.buf.len() < gathered {
                if self.pending_in.is_empty() {
                    match self.pull(inner.as_mut(), cx) {
                        Poll::Ready(Ok(true)) => continue,
                        Poll::Ready(Ok(false)) => return Poll::Ready(Err(DecryptError::Truncated)),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        // Nothing more to open yet: hand out what is open.
                        Poll::Pending if self.ready > 0 => {
                            return Poll::Ready(Ok(Some(self.take_ready())));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                // n <= pending_in.len(), so the slice is in bounds.
                let n = (gathered - self.buf.len()).min(self.pending_in.len());
                self.buf.extend_from_slice(&self.pending_in[..n]);
                self.pending_in.advance(n);
            }
            if let Phase::Header = self.phase {
                // need() is HEADER_LEN in this phase and the loop above gathered exactly
                // that after the open plaintext.
                let mut bytes = [0u8; HEADER_LEN];
                bytes.copy_from_slice(&self.buf[self.ready..gathered]);
                self.buf.truncate(self.ready);
                let header =
                    parse_part_header(&bytes).map_err(|source| DecryptError::BadPartHeader {
                        part: self.part,
                        source,
                    })?;
                self.accept_header(header)?;
                self.phase = Phase::Segment;
                continue;
            }
            self.open_segment()?;
            if self.ready >= FRAME_TARGET {
                return Poll::Ready(Ok(Some(self.take_ready())));
            }
        }
    }

    /// Hands out the open plaintext; what is gathered after it stays.
    fn take_ready(&mut self) -> Bytes {
        let out = self.buf.split_to(self.ready).freeze();
        self.ready = 0;
        out
    }

    /// Opens the gathered segment after the open plaintext, keeps its planned slice
    /// there, and advances.
    fn open_segment(&mut self) -> Result<(), DecryptError> {
        let is_last = self.segment + 1 == self.part_segments;
        let part = self.part;
        let opener = self
            .opener
            .as_ref()
            .ok_or(DecryptError::Plan(CryptoError::BadLayout("no part key")))?;
        let start = self.ready;
        let plain = opener
            .open_in_place(self.segment, is_last, &mut self.buf[start..])
            .map_err(|source| DecryptError::Tampered { part, source })?;
        self.buf.truncate(start + plain);
        let skip = usize::try_from(self.skip).unwrap_or(usize::MAX).min(plain);
        if skip > 0 {
            // Only a range's first segment skips, so nothing is open before it; the
            // general case stays correct all the same.
            if start == 0 {
                self.buf.advance(skip);
            } else {
                self.buf.copy_within(start + skip.., start);
                self.buf.truncate(start + plain - skip);
            }
        }
        self.skip -= len_u64(skip);
        let keep = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.buf.len() - start);
        self.buf.truncate(start + keep);
        self.remaining -= len_u64(keep);
        self.ready += keep;

        let at_end = match self.plan.end {
            Some(end) => end == (self.part, self.segment),
            None => self.part == self.plan.parts && is_last,
        };
        if at_end {
            if self.remaining != 0 {
                return Err(DecryptError::Plan(CryptoError::BadLayout(
                    "plan ends before its range",
                )));
            }
            let out = self.take_ready();
            self.phase = Phase::Finishing(out);
            return Ok(());
        }
        if is_last {
            self.part += 1;
            self.phase = Phase::Header;
            if self.part > self.plan.parts {
                return Err(DecryptError::TrailingBytes);
            }
        } else {
            self.segment += 1;
        }
        Ok(())
    }
}

impl<B> Body for DecryptBody<B>
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
        let this = self.project();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e.into())));
        }
        match ready!(this.state.poll_next(this.inner, cx)) {
            Ok(out) => Poll::Ready(out.map(|b| Ok(Frame::data(b)))),
            Err(e) => {
                this.state.phase = Phase::Failed;
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.error.is_none() && matches!(self.state.phase, Phase::Done | Phase::Failed)
    }

    fn size_hint(&self) -> SizeHint {
        let held = match &self.state.phase {
            Phase::Finishing(b) => len_u64(b.len()),
            Phase::Header | Phase::Segment => len_u64(self.state.ready),
            Phase::Done | Phase::Failed => 0,
        };
        SizeHint::with_exact(self.state.remaining + held)
    }
}
