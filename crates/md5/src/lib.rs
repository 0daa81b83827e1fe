//! MD5 (RFC 1321) on aws-lc's implementation, for the places S3 requires it: verifying
//! a request's `Content-MD5` in the proxy, and the embedded backend's ETags.
//!
//! aws-lc hashes in assembly on x86-64: 735-771 MiB/s on one core of the machines
//! sealgate is measured on, against 591-607 MiB/s for the portable RustCrypto `md-5`
//! (0.11, and 0.10 with its `asm` feature). MD5 was 59 % of the embedded backend's CPU
//! on a 64 MiB PUT. aws-lc is already linked (aws-lc-rs), so this adds no C build.
//!
//! This crate holds the FFI calls, so that sealgate itself keeps
//! `#![forbid(unsafe_code)]`.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

use std::fmt;
use std::mem::MaybeUninit;

/// An MD5 computation: [`Md5::new`], any number of [`Md5::update`], [`Md5::finalize`].
#[derive(Clone)]
pub struct Md5 {
    // A plain C struct (chaining state, bit count, a partial block): no pointers, so it
    // may be moved and copied freely.
    ctx: aws_lc_sys::MD5_CTX,
}

impl Md5 {
    /// A computation over no bytes yet.
    pub fn new() -> Self {
        let mut ctx = MaybeUninit::<aws_lc_sys::MD5_CTX>::uninit();
        // SAFETY: MD5_Init writes every field of the context it is given (and cannot
        // fail: it returns 1), so the context is initialised afterwards.
        let ctx = unsafe {
            aws_lc_sys::MD5_Init(ctx.as_mut_ptr());
            ctx.assume_init()
        };
        Self { ctx }
    }

    /// Feeds `data` into the computation.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: the context was initialised by MD5_Init; `data` is valid for reads of
        // `data.len()` bytes (a zero length reads nothing).
        unsafe {
            aws_lc_sys::MD5_Update(&mut self.ctx, data.as_ptr().cast(), data.len());
        }
    }

    /// The 16-byte digest of everything fed in.
    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: the context was initialised by MD5_Init; `out` has room for the
        // MD5_DIGEST_LENGTH (16) bytes MD5_Final writes.
        unsafe {
            aws_lc_sys::MD5_Final(out.as_mut_ptr(), &mut self.ctx);
        }
        out
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5 { .. }")
    }
}
