//! `sealgate decrypt`: the offline decryptor. Recovers an object's plaintext without a
//! running proxy, from the backend (`s3://BUCKET/KEY`, downloaded raw) or from a raw
//! copy plus the object's envelope, so stored data never depends on the proxy.
//!
//! It streams through the same [`DecryptBody`] the proxy's GET uses (constant memory,
//! every segment authenticated, truncation and trailing bytes refused) into a
//! temporary file next to the output, renamed into place only once the whole object
//! verified; on any failure the temporary file is removed and no output exists.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::progress::{Progress, Unit};
use super::store::Store;
use super::{DecryptArgs, ToolError, keys};
use crate::config::Config;
use crate::crypto::{BoxError, DecryptBody, DecryptPlan, Envelope, object_plaintext_len};
use crate::s3::headers::X_AMZ_META_ENVELOPE;

/// Bytes read from an input file at a time.
const READ_CHUNK: usize = 256 * 1024;
/// The envelope's name in `aws s3api head-object` JSON (`Metadata` drops `x-amz-meta-`).
const ENVELOPE_META_NAME: &str = "sealgate-envelope";

/// What the tool needs to know about an object besides its body.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    pub envelope: Envelope,
    pub etag: Option<String>,
}

/// Part count from a multipart ETag (`"…-N"`), 1 otherwise.
pub fn parts_from_etag(etag: &str) -> u32 {
    crate::s3::handlers::get::parts_from_etag(etag)
}

/// Reads an object's metadata from `aws s3api head-object` JSON or from response
/// headers (`Name: value` lines, as `curl -I` prints them).
pub fn parse_metadata(text: &str) -> Result<ObjectMeta, ToolError> {
    let missing = || {
        ToolError::Usage(format!(
            "metadata: no {X_AMZ_META_ENVELOPE} header or Metadata.{ENVELOPE_META_NAME} field \
             (the object is not encrypted, or the metadata is not this object's)"
        ))
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let envelope = json
            .get("Metadata")
            .and_then(|m| m.get(ENVELOPE_META_NAME))
            .and_then(|v| v.as_str())
            .ok_or_else(missing)?;
        return Ok(ObjectMeta {
            envelope: Envelope::decode(envelope)?,
            etag: json
                .get("ETag")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        });
    }
    let mut envelope = None;
    let mut etag = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case(X_AMZ_META_ENVELOPE.as_str()) {
            envelope = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("etag") {
            etag = Some(value.trim().to_string());
        }
    }
    let envelope = envelope.ok_or_else(missing)?;
    Ok(ObjectMeta {
        envelope: Envelope::decode(&envelope)?,
        etag,
    })
}

/// The metadata of an object from its backend HEAD/GET answer; `None` when it has no
/// envelope (a plaintext object).
pub fn meta_from_headers(headers: &HeaderMap) -> Result<Option<ObjectMeta>, ToolError> {
    let Some(v) = headers.get(X_AMZ_META_ENVELOPE) else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| ToolError::Other("the envelope header is not text".into()))?;
    Ok(Some(ObjectMeta {
        envelope: Envelope::decode(text)?,
        etag: headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }))
}

/// The whole-object decryption plan for `cipher_len` stored bytes.
pub fn whole_plan(
    meta: &ObjectMeta,
    cipher_len: u64,
    parts: Option<u32>,
) -> Result<DecryptPlan, ToolError> {
    let parts = parts.unwrap_or_else(|| meta.etag.as_deref().map_or(1, parts_from_etag));
    let segment_size = meta.envelope.segment_size();
    let plain_len = object_plaintext_len(cipher_len, parts, segment_size).ok_or_else(|| {
        ToolError::Decrypt(format!(
            "{cipher_len} stored bytes cannot be {parts} part(s) of segment size {segment_size}: \
             the object was truncated or padded, or the part count is wrong (--parts)"
        ))
    })?;
    Ok(DecryptPlan::whole(parts, segment_size, plain_len)?)
}

/// Decrypts `ciphertext` into `output`, all or nothing: the plaintext goes to a
/// temporary file beside `output`, which is renamed over it only after the last
/// segment verified and the file is synced. Returns the plaintext length.
pub async fn decrypt_to_file<B>(
    ciphertext: B,
    dk: crate::crypto::DataKey,
    plan: DecryptPlan,
    output: &Path,
    show_progress: bool,
) -> Result<u64, ToolError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let temp = temp_path(output);
    let mut progress = if show_progress {
        Progress::with_visibility("decrypt", Unit::Bytes, Some(plan.plain_len()), true)
    } else {
        Progress::new("decrypt", Unit::Bytes, Some(plan.plain_len()))
    };
    let result =
        write_plaintext(DecryptBody::new(ciphertext, dk, plan), &temp, &mut progress).await;
    match result {
        Ok(()) => {
            tokio::fs::rename(&temp, output)
                .await
                .map_err(ToolError::io(output))?;
            let n = progress.done();
            progress.finish();
            Ok(n)
        }
        Err(e) => {
            progress.abandon();
            let _ = tokio::fs::remove_file(&temp).await;
            Err(e)
        }
    }
}

async fn write_plaintext<B>(
    body: DecryptBody<B>,
    temp: &Path,
    progress: &mut Progress,
) -> Result<(), ToolError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .await
        .map_err(ToolError::io(temp))?;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ToolError::Decrypt(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(ToolError::io(temp))?;
            progress.advance(crate::crypto::len_u64(data.len()));
        }
    }
    file.flush().await.map_err(ToolError::io(temp))?;
    file.sync_all().await.map_err(ToolError::io(temp))?;
    Ok(())
}

/// `.NAME.sealgate-partial-PID` in the output's directory, so the rename is atomic.
fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    output.with_file_name(format!(".{name}.sealgate-partial-{}", std::process::id()))
}

/// A file as a body of `READ_CHUNK` frames.
pub fn file_body(
    file: tokio::fs::File,
) -> impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static {
    let frames = futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(Frame::data(buf.freeze())), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    });
    http_body_util::StreamBody::new(frames)
}

/// `sealgate decrypt`.
pub async fn run(config: &Config, args: &DecryptArgs) -> Result<(), ToolError> {
    if args.output.exists() {
        return Err(ToolError::Usage(format!(
            "{}: already exists; remove it or choose another --output",
            args.output.display()
        )));
    }
    let kms = keys::open_kms(config)?;
    let written = match (&args.object, &args.input) {
        (Some(url), None) => {
            let (bucket, key) = super::parse_s3_url(url)?;
            let store = Store::open(config).await?;
            let result = async {
                let resp = store.get_object(&bucket, &key, None).await?;
                let meta = meta_from_headers(resp.headers())?.ok_or_else(|| {
                    ToolError::Other(format!(
                        "s3://{bucket}/{key} is not encrypted (no envelope); download it as it is"
                    ))
                })?;
                let cipher_len = content_length(resp.headers())?;
                let plan = whole_plan(&meta, cipher_len, args.parts)?;
                let dk = keys::object_data_key(kms.as_ref(), &bucket, &key, &meta.envelope).await?;
                decrypt_to_file(resp.into_body(), dk, plan, &args.output, args.progress).await
            }
            .await;
            store.close().await;
            result?
        }
        (None, Some(input)) => {
            let (Some(bucket), Some(key)) = (&args.bucket, &args.key) else {
                return Err(ToolError::Usage("--input needs --bucket and --key".into()));
            };
            let meta = match (&args.envelope, &args.metadata_from) {
                (Some(env), None) => ObjectMeta {
                    envelope: Envelope::decode(env.trim())?,
                    etag: None,
                },
                (None, Some(path)) => {
                    let text = tokio::fs::read_to_string(path)
                        .await
                        .map_err(ToolError::io(path))?;
                    parse_metadata(&text)?
                }
                _ => {
                    return Err(ToolError::Usage(
                        "--input needs --envelope or --metadata-from".into(),
                    ));
                }
            };
            let file = tokio::fs::File::open(input)
                .await
                .map_err(ToolError::io(input))?;
            let cipher_len = file.metadata().await.map_err(ToolError::io(input))?.len();
            let plan = whole_plan(&meta, cipher_len, args.parts)?;
            let dk = keys::object_data_key(kms.as_ref(), bucket, key, &meta.envelope).await?;
            decrypt_to_file(file_body(file), dk, plan, &args.output, args.progress).await?
        }
        _ => {
            return Err(ToolError::Usage(
                "give s3://BUCKET/KEY, or --bucket, --key and --input".into(),
            ));
        }
    };
    eprintln!("decrypted {written} bytes to {}", args.output.display());
    Ok(())
}

fn content_length(headers: &HeaderMap) -> Result<u64, ToolError> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ToolError::Backend("the backend sent no Content-Length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::WrappingKey;

    fn envelope() -> Envelope {
        let w = WrappingKey::from_bytes([7; 32]);
        Envelope::seal_new(&w, "key-1", b"blob", true, 65536, "b", "k")
            .unwrap()
            .0
    }

    #[test]
    fn metadata_parses_from_head_object_json() {
        let env = envelope();
        let json = format!(
            r#"{{"ETag": "\"abc-3\"", "ContentLength": 10, "Metadata": {{"sealgate-envelope": "{}"}}}}"#,
            env.encode()
        );
        let meta = parse_metadata(&json).unwrap();
        assert_eq!(meta.envelope, env);
        assert_eq!(parts_from_etag(meta.etag.as_deref().unwrap()), 3);
    }

    #[test]
    fn metadata_parses_from_response_headers() {
        let env = envelope();
        let text = format!(
            "HTTP/1.1 200 OK\r\nETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\nX-Amz-Meta-Sealgate-Envelope: {}\r\n",
            env.encode()
        );
        let meta = parse_metadata(&text).unwrap();
        assert_eq!(meta.envelope, env);
        assert_eq!(parts_from_etag(meta.etag.as_deref().unwrap()), 1);
    }

    #[test]
    fn metadata_without_envelope_is_refused() {
        assert!(parse_metadata(r#"{"ETag": "\"x\"", "Metadata": {}}"#).is_err());
        assert!(parse_metadata("ETag: \"x\"\n").is_err());
    }

    #[test]
    fn impossible_sizes_are_refused_before_any_kms_call() {
        let meta = ObjectMeta {
            envelope: envelope(),
            etag: None,
        };
        // One part of 10 plaintext bytes is 32 + 10 + 16 = 58 stored bytes.
        assert_eq!(whole_plan(&meta, 58, None).unwrap().plain_len(), 10);
        // Shorter than one part header and one tag: no plaintext length fits.
        assert!(whole_plan(&meta, 47, None).is_err());
        assert!(whole_plan(&meta, 58, Some(2)).is_err());
    }

    #[test]
    fn temp_file_sits_beside_the_output() {
        let t = temp_path(Path::new("/data/out.bin"));
        assert_eq!(t.parent(), Some(Path::new("/data")));
        assert!(
            t.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".out.bin.sealgate-partial-")
        );
    }
}
