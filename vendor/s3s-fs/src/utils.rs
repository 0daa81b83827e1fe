use crate::error::*;

use s3s::StdError;

use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;

use bytes::Bytes;
use futures::pin_mut;
use futures::{Stream, StreamExt};
use transform_stream::AsyncTryStream;

pub async fn copy_bytes<S, W>(mut stream: S, writer: &mut W) -> Result<u64>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut nwritten: u64 = 0;
    while let Some(result) = stream.next().await {
        let bytes = match result {
            Ok(x) => x,
            Err(e) => return Err(Error::new(e)),
        };
        writer.write_all(&bytes).await?;
        nwritten += bytes.len() as u64;
    }
    writer.flush().await?;
    Ok(nwritten)
}

/// The whole of a body of `len` bytes, read into one buffer: for bodies small enough to
/// write in one step. A body longer or shorter than `len` is refused (`IncompleteBody`);
/// one running past `len` is not buffered on.
pub async fn collect_bytes<S>(mut stream: S, len: i64) -> Result<Vec<u8>>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    let declared = len;
    let len = usize::try_from(len).unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    while let Some(result) = stream.next().await {
        let bytes = result.map_err(Error::new)?;
        if out.len() + bytes.len() > len {
            return Err(Error::new(Box::new(BodyLengthMismatch {
                declared: len as u64,
                received: None,
            })));
        }
        out.extend_from_slice(&bytes);
    }
    check_body_length(Some(declared), out.len() as u64)?;
    Ok(out)
}

pub fn bytes_stream<S, E>(stream: S, content_length: usize) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    AsyncTryStream::<Bytes, E, _>::new(|mut y| async move {
        pin_mut!(stream);
        let mut remaining: usize = content_length;
        // Stops once `content_length` bytes are out: a ranged read must not read the
        // rest of the file, nor a whole one wait for an end-of-file read.
        while remaining > 0 {
            let Some(result) = stream.next().await else { break };
            let mut bytes = result?;
            if bytes.len() > remaining {
                bytes.truncate(remaining);
            }
            remaining -= bytes.len();
            y.yield_ok(bytes).await;
        }
        Ok(())
    })
}

pub fn hex(input: impl AsRef<[u8]>) -> String {
    hex_simd::encode_to_string(input.as_ref(), hex_simd::AsciiCase::Lower)
}
