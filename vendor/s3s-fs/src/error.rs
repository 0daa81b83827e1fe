use s3s::S3Error;
use s3s::S3ErrorCode;
use s3s::StdError;

use std::panic::Location;

use tracing::error;

#[derive(Debug)]
pub struct Error {
    source: StdError,
}

pub type Result<T = (), E = Error> = std::result::Result<T, E>;

impl Error {
    #[must_use]
    #[track_caller]
    pub fn new(source: StdError) -> Self {
        log(&*source);
        Self { source }
    }

    #[must_use]
    #[track_caller]
    pub fn from_string(s: impl Into<String>) -> Self {
        Self::new(s.into().into())
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    #[track_caller]
    fn from(source: E) -> Self {
        Self::new(Box::new(source))
    }
}

impl From<Error> for S3Error {
    fn from(e: Error) -> Self {
        if e.source.is::<UnstorableKey>() {
            return S3Error::with_message(S3ErrorCode::InvalidArgument, e.source.to_string());
        }
        if e.source.is::<MissingBucket>() {
            return S3Error::with_message(S3ErrorCode::NoSuchBucket, e.source.to_string());
        }
        if e.source.is::<BodyLengthMismatch>() {
            return S3Error::with_message(S3ErrorCode::IncompleteBody, e.source.to_string());
        }
        S3Error::with_source(S3ErrorCode::InternalError, e.source)
    }
}

/// A key this store cannot keep as a file of its own: absolute, or with a `..` segment
/// that would put it outside its bucket's directory. The client's to fix, so a 400.
#[derive(Debug)]
pub struct UnstorableKey;

impl std::fmt::Display for UnstorableKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("This backend cannot store an object key that starts with '/' or has a '..' segment.")
    }
}

impl std::error::Error for UnstorableKey {}

/// A write into a bucket that does not exist: S3 answers `NoSuchBucket`, where making
/// the bucket's directory on the way (as upstream did) created the bucket.
#[derive(Debug)]
pub struct MissingBucket;

impl std::fmt::Display for MissingBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("The specified bucket does not exist")
    }
}

impl std::error::Error for MissingBucket {}

/// A body whose bytes do not add up to the length the request declared (its
/// Content-Length, or for an aws-chunked body its `x-amz-decoded-content-length`).
/// S3 answers `IncompleteBody` either way, and stores nothing.
#[derive(Debug)]
pub struct BodyLengthMismatch {
    pub declared: u64,
    /// What arrived, or `None` when the body ran past `declared` and was not read on.
    pub received: Option<u64>,
}

impl std::fmt::Display for BodyLengthMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("You did not provide the number of bytes specified by the Content-Length HTTP header: ")?;
        match self.received {
            Some(received) => write!(f, "{} declared, {received} received.", self.declared),
            None => write!(f, "{} declared, more received.", self.declared),
        }
    }
}

impl std::error::Error for BodyLengthMismatch {}

/// Checks that a body of `received` bytes is as long as the request declared, when it
/// declared a length.
pub fn check_body_length(declared: Option<i64>, received: u64) -> Result<()> {
    match declared.and_then(|d| u64::try_from(d).ok()) {
        Some(declared) if declared != received => Err(Error::new(Box::new(BodyLengthMismatch {
            declared,
            received: Some(received),
        }))),
        _ => Ok(()),
    }
}

#[inline]
#[track_caller]
pub(crate) fn log(source: &dyn std::error::Error) {
    if cfg!(feature = "binary") {
        let location = Location::caller();
        let span_trace = tracing_error::SpanTrace::capture();

        error!(
            target: "s3s_fs_internal_error",
            %location,
            error=%source,
            "span trace:\n{span_trace}"
        );
    }
}

macro_rules! try_ {
    ($result:expr) => {
        match $result {
            Ok(val) => val,
            Err(err) => {
                $crate::error::log(&err);
                return Err(::s3s::S3Error::internal_error(err));
            }
        }
    };
}
