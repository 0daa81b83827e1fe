//! Incremental, bounded aws-chunked decoder (sans I/O).
//!
//! Feed it the body frames as they arrive, split anywhere (even inside a chunk header
//! or a CRLF); it hands back the payload as zero-copy slices of those frames, checks
//! each chunk's signature against the chain started by the request signature, and
//! reads the trailer (checksum and, when signed, its signature). Memory is bounded:
//! a header line ≤ [`MAX_HEADER_LINE`], each chunk ≤ the caller's limit (data is never
//! buffered, only hashed), the trailer section ≤ [`MAX_TRAILER_BYTES`].
//! Length and checksum checks over the decoded payload belong to `body`.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>

use aws_lc_rs::digest::{Context, SHA256};
use bytes::{Buf as _, Bytes};

use super::error::AuthError;
use super::signing::{ChunkSigner, parse_signature_hex};

/// Longest accepted chunk header line (`<hex>;chunk-signature=<64 hex>` is ~90 bytes).
pub const MAX_HEADER_LINE: usize = 4096;
/// Largest accepted trailer section.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading `<hex size>[;ext]\r\n`.
    Header,
    /// Inside a chunk's data.
    Data {
        remaining: u64,
    },
    /// Expecting the `\r` then the `\n` after a chunk's data.
    DataCr,
    DataLf,
    /// After the 0-size chunk: trailer lines until an empty one.
    Trailer {
        leading_blank: bool,
    },
    Done,
}

/// SHA-256 of the empty string (the final chunk's data).
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The running SHA-256 of one chunk (aws-lc's context has no `Debug`).
struct ChunkHash(Context);

impl ChunkHash {
    fn new() -> Self {
        ChunkHash(Context::new(&SHA256))
    }
}

impl std::fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkHash")
    }
}

/// The 32 bytes of a finished SHA-256 context.
pub(crate) fn sha256_bytes(ctx: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A SHA-256 digest is always 32 bytes; copy_from_slice cannot see another length.
    let digest = ctx.finish();
    if let Some(src) = digest.as_ref().get(..32) {
        out.copy_from_slice(src);
    }
    out
}

/// Decodes one aws-chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    signer: Option<ChunkSigner>,
    trailer_allowed: bool,
    max_chunk_bytes: u64,
    state: State,
    /// A partial header or trailer line carried across frames.
    line: Vec<u8>,
    /// SHA-256 of the current chunk's data on aws-lc, for the same reason as the
    /// flexible checksums' (`auth::checksum`): assembly with or without SHA-NI.
    chunk_hash: ChunkHash,
    chunk_signature: [u8; 32],
    trailer_bytes: usize,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<[u8; 32]>,
}

impl ChunkedDecoder {
    /// `signer` is `Some` for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk
    /// must carry a valid `chunk-signature`, and a trailer its `x-amz-trailer-signature`.
    pub fn new(signer: Option<ChunkSigner>, trailer_allowed: bool, max_chunk_bytes: usize) -> Self {
        ChunkedDecoder {
            signer,
            trailer_allowed,
            max_chunk_bytes: u64::try_from(max_chunk_bytes).unwrap_or(u64::MAX),
            state: State::Header,
            line: Vec::new(),
            chunk_hash: ChunkHash::new(),
            chunk_signature: [0; 32],
            trailer_bytes: 0,
            trailers: Vec::new(),
            trailer_signature: None,
        }
    }

    /// Consumes all of `input`, appending decoded payload slices to `out`.
    pub fn decode(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<(), AuthError> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line(&mut input, MAX_HEADER_LINE)? {
                        self.on_header(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let available = u64::try_from(input.len()).unwrap_or(u64::MAX);
                    let n = remaining.min(available);
                    let piece = input.split_to(usize::try_from(n).unwrap_or(input.len()));
                    if self.signer.is_some() {
                        self.chunk_hash.0.update(&piece);
                    }
                    let left = remaining - n;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    if !piece.is_empty() {
                        out.push(piece);
                    }
                }
                State::DataCr | State::DataLf => {
                    let expected = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if input.first() != Some(&expected) {
                        return Err(AuthError::ChunkMalformed("missing CRLF after chunk data"));
                    }
                    input.advance(1);
                    if self.state == State::DataCr {
                        self.state = State::DataLf;
                    } else {
                        let done = std::mem::replace(&mut self.chunk_hash, ChunkHash::new());
                        let hash = sha256_bytes(done.0);
                        self.verify_chunk(&hash)?;
                        self.state = State::Header;
                    }
                }
                State::Trailer { leading_blank } => {
                    let budget = MAX_TRAILER_BYTES.saturating_sub(self.trailer_bytes);
                    if let Some(line) = self.take_line(&mut input, budget)? {
                        self.trailer_bytes += line.len() + 2;
                        self.on_trailer_line(&line, leading_blank)?;
                    }
                }
                State::Done => {
                    return Err(AuthError::ChunkMalformed("data after the final chunk"));
                }
            }
        }
        Ok(())
    }

    /// Called at the end of the body: the framing must be complete.
    pub fn finish(&mut self) -> Result<(), AuthError> {
        match self.state {
            State::Done => Ok(()),
            // A blank line after the 0-size chunk and nothing more: an empty trailer.
            State::Trailer {
                leading_blank: true,
            } if self.line.is_empty() && self.trailers.is_empty() => self.end_trailers(),
            _ => Err(AuthError::IncompleteBody),
        }
    }

    /// The trailer headers received (names lowercase), without the trailer signature.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Returns a complete line without its CRLF, or stores the partial line.
    fn take_line(&mut self, input: &mut Bytes, limit: usize) -> Result<Option<Vec<u8>>, AuthError> {
        let found = input.iter().position(|&b| b == b'\n');
        let take = found.map_or(input.len(), |i| i + 1);
        if self.line.len() + take > limit.saturating_add(2) {
            return Err(if matches!(self.state, State::Trailer { .. }) {
                AuthError::ChunkMalformed("trailer too long")
            } else {
                AuthError::ChunkMalformed("chunk header line too long")
            });
        }
        self.line.extend_from_slice(&input.split_to(take));
        if found.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        // The line ends in "\n"; it must be "\r\n".
        line.pop();
        if line.pop() != Some(b'\r') {
            return Err(AuthError::ChunkMalformed("line not terminated by CRLF"));
        }
        Ok(Some(line))
    }

    fn on_header(&mut self, line: &[u8]) -> Result<(), AuthError> {
        let mut parts = line.splitn(2, |&b| b == b';');
        let size_part = parts.next().unwrap_or_default();
        let extension = parts.next();
        if size_part.is_empty()
            || size_part.len() > 16
            || !size_part.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(AuthError::ChunkMalformed("chunk size is not hexadecimal"));
        }
        let size = std::str::from_utf8(size_part)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(AuthError::ChunkMalformed("chunk size is not hexadecimal"))?;
        if size > self.max_chunk_bytes {
            return Err(AuthError::ChunkTooLarge);
        }
        if self.signer.is_some() {
            let sig = extension
                .and_then(|e| e.strip_prefix(b"chunk-signature="))
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(parse_signature_hex)
                .ok_or(AuthError::ChunkMalformed(
                    "missing or malformed chunk-signature",
                ))?;
            self.chunk_signature = sig;
        }
        if size == 0 {
            self.verify_chunk(&EMPTY_SHA256)?;
            self.state = State::Trailer {
                leading_blank: false,
            };
        } else {
            self.chunk_hash = ChunkHash::new();
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    fn verify_chunk(&mut self, hash: &[u8; 32]) -> Result<(), AuthError> {
        match &mut self.signer {
            Some(signer) => {
                if signer.verify_chunk(hash, &self.chunk_signature) {
                    Ok(())
                } else {
                    Err(AuthError::SignatureMismatch)
                }
            }
            None => Ok(()),
        }
    }

    fn on_trailer_line(&mut self, line: &[u8], leading_blank: bool) -> Result<(), AuthError> {
        if line.is_empty() {
            // Some clients put a CRLF between the 0-size chunk and the trailer lines.
            if self.trailer_allowed
                && !leading_blank
                && self.trailers.is_empty()
                && self.trailer_signature.is_none()
            {
                self.state = State::Trailer {
                    leading_blank: true,
                };
                return Ok(());
            }
            return self.end_trailers();
        }
        if !self.trailer_allowed {
            return Err(AuthError::ChunkMalformed(
                "trailer sent without x-amz-trailer",
            ));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| AuthError::ChunkMalformed("trailer is not text"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(AuthError::ChunkMalformed("trailer line without ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name.is_empty() {
            return Err(AuthError::ChunkMalformed("trailer line without a name"));
        }
        if name == "x-amz-trailer-signature" {
            if self.trailer_signature.is_some() {
                return Err(AuthError::ChunkMalformed("repeated trailer signature"));
            }
            let sig = parse_signature_hex(&value)
                .ok_or(AuthError::ChunkMalformed("malformed trailer signature"))?;
            self.trailer_signature = Some(sig);
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    fn end_trailers(&mut self) -> Result<(), AuthError> {
        if let Some(signer) = &self.signer
            && self.trailer_allowed
        {
            let provided = self
                .trailer_signature
                .ok_or(AuthError::ChunkMalformed("missing x-amz-trailer-signature"))?;
            let canonical = canonical_trailers(&self.trailers);
            if !signer.verify_trailer(&canonical, &provided) {
                return Err(AuthError::SignatureMismatch);
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

/// `name:value\n` per trailer, sorted by name, as the trailer signature covers them.
pub fn canonical_trailers(trailers: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = trailers.iter().collect();
    sorted.sort();
    let mut out = Vec::new();
    for (n, v) in sorted {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests;
