//! `EncryptBody`: a plaintext part stream in, `part header || sealed segments` out.
//!
//! Holds at most one segment: plaintext frames are copied into a buffer sized for one
//! segment, sealed in place, and handed out with `split().freeze()`, so the buffer is
//! reused once the consumer drops the frame. The output length is known up front
//! (`part_ciphertext_len`), so `size_hint` is exact and the upstream request can carry a
//! `Content-Length`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::keys::DataKey;
use super::part::{HEADER_LEN, PART_SALT_LEN, PartHeader};
use super::segment::{SegmentSealer, TAG_BYTES};
use super::{BoxError, CryptoError, fill_salt, part_ciphertext_len, segment_size_log2};

/// Why a part stream could not be encrypted.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("body is longer than its declared {expected} bytes")]
    TooLong { expected: u64 },
    #[error("body ended after {got} of its declared {expected} bytes")]
    TooShort { expected: u64, got: u64 },
    #[error("cannot start encryption: {0}")]
    Setup(#[from] CryptoError),
    #[error("plaintext body failed: {0}")]
    Inner(BoxError),
}

struct Sealing {
    sealer: SegmentSealer,
    header: [u8; HEADER_LEN],
    segment_size: u64,
    plain_len: u64,
    /// Plaintext bytes taken from the inner body so far.
    received: u64,
    /// Plaintext bytes already sealed and sent.
    sealed: u64,
    next_index: u64,
    buf: BytesMut,
    pending_in: Bytes,
    inner_done: bool,
    trailers: Option<HeaderMap>,
    remaining_out: u64,
}

enum State {
    Sealing(Box<Sealing>),
    Failed(Option<EncryptError>),
    Trailers(Option<HeaderMap>),
}

pin_project! {
    /// Seals one part stream (a whole single PUT, or one UploadPart) as its plaintext
    /// arrives. Fails, never ends cleanly, if the inner body is longer or shorter than
    /// `plain_len`.
    pub struct EncryptBody<B> {
        #[pin]
        inner: B,
        state: State,
    }
}

impl<B> EncryptBody<B> {
    /// Encrypts `inner` as part `part_number` (1 for a single PUT) of `plain_len` bytes,
    /// with a fresh random part salt.
    pub fn new(
        inner: B,
        dk: &DataKey,
        part_number: u32,
        plain_len: u64,
        segment_size: u32,
    ) -> Self {
        let mut salt = [0u8; PART_SALT_LEN];
        match fill_salt(&mut salt) {
            Ok(()) => {
                EncryptBody::with_part_salt(inner, dk, part_number, plain_len, segment_size, salt)
            }
            Err(e) => EncryptBody {
                inner,
                state: State::Failed(Some(e.into())),
            },
        }
    }

    /// [`EncryptBody::new`] with a caller-chosen part salt, for the documented worked
    /// example only: reusing a salt for another body of the same part number reuses GCM
    /// nonces.
    #[doc(hidden)]
    pub fn with_part_salt(
        inner: B,
        dk: &DataKey,
        part_number: u32,
        plain_len: u64,
        segment_size: u32,
        part_salt: [u8; PART_SALT_LEN],
    ) -> Self {
        let setup = || -> Result<Sealing, CryptoError> {
            segment_size_log2(segment_size)?;
            if part_number == 0 {
                // S3 part numbers start at 1, and readers derive part keys from 1 upwards.
                return Err(CryptoError::BadLayout("part number 0"));
            }
            let header = PartHeader::new(plain_len, part_salt);
            let sealer = SegmentSealer::new(dk, &header, part_number)?;
            let remaining_out = part_ciphertext_len(plain_len, segment_size);
            if remaining_out == u64::MAX {
                return Err(CryptoError::BadLayout("part too large"));
            }
            Ok(Sealing {
                sealer,
                header: *header.as_bytes(),
                segment_size: u64::from(segment_size),
                plain_len,
                received: 0,
                sealed: 0,
                next_index: 0,
                buf: BytesMut::new(),
                pending_in: Bytes::new(),
                inner_done: false,
                trailers: None,
                remaining_out,
            })
        };
        let state = match setup() {
            Ok(s) => State::Sealing(Box::new(s)),
            Err(e) => State::Failed(Some(e.into())),
        };
        EncryptBody { inner, state }
    }
}

impl Sealing {
    /// Moves one inner frame's worth of progress; `Ready(Ok(()))` means "look again".
    fn pull<B>(
        &mut self,
        inner: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), EncryptError>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        match ready!(inner.poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.received = self.received.saturating_add(super::len_u64(data.len()));
                    if self.received > self.plain_len {
                        return Poll::Ready(Err(EncryptError::TooLong {
                            expected: self.plain_len,
                        }));
                    }
                    self.pending_in = data;
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        self.trailers = Some(t);
                    }
                }
            },
            Some(Err(e)) => return Poll::Ready(Err(EncryptError::Inner(e.into()))),
            None => self.inner_done = true,
        }
        Poll::Ready(Ok(()))
    }

    /// Produces the next sealed segment (with the header in front of segment 0).
    fn poll_segment<B>(
        &mut self,
        mut inner: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, EncryptError>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let seg_plain = self.segment_size.min(self.plain_len - self.sealed);
        // Header bytes precede segment 0 in the same frame; both fit in one segment buffer.
        let prefix = if self.next_index == 0 { HEADER_LEN } else { 0 };
        let want = prefix + usize::try_from(seg_plain).unwrap_or(usize::MAX);
        if self.buf.is_empty() {
            self.buf.reserve(want + TAG_BYTES);
            if prefix > 0 {
                self.buf.extend_from_slice(&self.header);
            }
        }
        while self.buf.len() < want {
            if !self.pending_in.is_empty() {
                // n <= pending_in.len(), so the slice is in bounds.
                let n = (want - self.buf.len()).min(self.pending_in.len());
                self.buf.extend_from_slice(&self.pending_in[..n]);
                self.pending_in.advance(n);
                continue;
            }
            if self.inner_done {
                return Poll::Ready(Err(EncryptError::TooShort {
                    expected: self.plain_len,
                    got: self.received,
                }));
            }
            ready!(self.pull(inner.as_mut(), cx))?;
        }
        let is_last = self.sealed + seg_plain == self.plain_len;
        // Make sure the body really ends before the last segment goes out: once the
        // backend has every byte of a Content-Length body it may commit the object.
        while is_last && !self.inner_done {
            ready!(self.pull(inner.as_mut(), cx))?;
            if !self.pending_in.is_empty() {
                return Poll::Ready(Err(EncryptError::TooLong {
                    expected: self.plain_len,
                }));
            }
        }
        // buf.len() == want >= prefix here, so `buf[prefix..]` is in bounds.
        let tag = self
            .sealer
            .seal_in_place(self.next_index, is_last, &mut self.buf[prefix..])?;
        self.buf.extend_from_slice(&tag);
        self.sealed += seg_plain;
        self.next_index += 1;
        let out = self.buf.split().freeze();
        self.remaining_out = self.remaining_out.saturating_sub(super::len_u64(out.len()));
        Poll::Ready(Ok(out))
    }
}

impl<B> Body for EncryptBody<B>
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
        let state = this.state;
        match state {
            State::Failed(err) => Poll::Ready(err.take().map(|e| Err(e.into()))),
            State::Trailers(t) => Poll::Ready(t.take().map(|t| Ok(Frame::trailers(t)))),
            State::Sealing(s) => match ready!(s.poll_segment(this.inner, cx)) {
                Ok(out) => {
                    if s.sealed == s.plain_len && s.inner_done {
                        *state = State::Trailers(s.trailers.take());
                    }
                    Poll::Ready(Some(Ok(Frame::data(out))))
                }
                Err(e) => {
                    *state = State::Failed(None);
                    Poll::Ready(Some(Err(e.into())))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.state, State::Failed(None) | State::Trailers(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Sealing(s) => SizeHint::with_exact(s.remaining_out),
            _ => SizeHint::with_exact(0),
        }
    }
}
