//! What the body of a verified request must satisfy: its framing, and every digest
//! the client committed to. Built from the request headers once the signature is
//! checked; consumed by [`super::body::VerifiedBody`], which enforces it.
//!
//! Only the digests the request asks for are computed (hashing, not AES, bounds the
//! proxy's throughput). <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName};

use super::checksum::ChecksumAlgorithm;
use super::error::AuthError;
use super::signing::ChunkSigner;

/// The `x-amz-content-sha256` value, i.e. how the payload is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// Hex SHA-256 of the whole body.
    Sha256([u8; 32]),
    Unsigned,
    StreamingSigned,
    StreamingSignedTrailer,
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    pub fn parse(value: &str) -> Result<PayloadMode, AuthError> {
        Ok(match value {
            "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::StreamingSigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::StreamingSignedTrailer,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsignedTrailer,
            hex_value => {
                let mut out = [0u8; 32];
                if hex_value.len() != 64 || hex::decode_to_slice(hex_value, &mut out).is_err() {
                    return Err(AuthError::InvalidContentSha256);
                }
                PayloadMode::Sha256(out)
            }
        })
    }

    /// Whether aws-chunked chunk signatures follow the seed signature.
    pub fn is_chunk_signed(self) -> bool {
        matches!(
            self,
            PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer
        )
    }
}

/// How the body bytes are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The body is the payload.
    Plain,
    /// `aws-chunked`: `<hex>[;chunk-signature=<sig>]\r\n<data>\r\n`…, a 0-size chunk,
    /// optional trailer lines, and an empty line.
    AwsChunked { signed: bool, trailer: bool },
}

/// Where the expected flexible checksum comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSource {
    /// Decoded value of the `x-amz-checksum-*` header.
    Header(Vec<u8>),
    /// Carried in the aws-chunked trailer.
    Trailer,
    /// Named only by `x-amz-sdk-checksum-algorithm` on a trailer-framed body: checked
    /// if the trailer carries it, not required.
    TrailerIfSent,
}

/// Everything the body must satisfy. Holds the chunk signer (a derived key), so
/// `Debug` goes through [`ChunkSigner`]'s redacting impl.
#[derive(Debug, Clone)]
pub struct BodySpec {
    pub(crate) framing: Framing,
    pub(crate) chunk_signer: Option<ChunkSigner>,
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) content_md5: Option<[u8; 16]>,
    pub(crate) checksum: Option<(ChecksumAlgorithm, ChecksumSource)>,
    /// Trailer names announced by `x-amz-trailer`, lowercase.
    pub(crate) trailer_names: Vec<String>,
    pub(crate) decoded_length: Option<u64>,
}

impl BodySpec {
    /// A plain body with no digest to check (requests that carry no body, or
    /// callers that verify nothing on purpose).
    pub fn plain(content_length: Option<u64>) -> BodySpec {
        BodySpec {
            framing: Framing::Plain,
            chunk_signer: None,
            sha256: None,
            content_md5: None,
            checksum: None,
            trailer_names: Vec::new(),
            decoded_length: content_length,
        }
    }

    /// Length of the payload after aws-chunked decoding (`x-amz-decoded-content-length`),
    /// or Content-Length for plain bodies; `None` when the client sent neither.
    pub fn decoded_length(&self) -> Option<u64> {
        self.decoded_length
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn is_aws_chunked(&self) -> bool {
        matches!(self.framing, Framing::AwsChunked { .. })
    }

    /// The flexible checksum algorithm the body is checked against, if any.
    pub fn checksum_algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.checksum.as_ref().map(|(a, _)| *a)
    }

    /// Whether the flexible checksum value arrives in the trailer (unknown until the
    /// body has been read).
    pub fn checksum_in_trailer(&self) -> bool {
        matches!(
            self.checksum,
            Some((_, ChecksumSource::Trailer | ChecksumSource::TrailerIfSent))
        )
    }

    /// Whether a Content-MD5 is checked.
    pub fn has_content_md5(&self) -> bool {
        self.content_md5.is_some()
    }

    /// Whether the body's SHA-256 is checked against `x-amz-content-sha256`.
    pub fn has_payload_sha256(&self) -> bool {
        self.sha256.is_some()
    }

    /// Builds the spec from the request headers and the verified payload mode.
    pub(crate) fn from_headers(
        headers: &HeaderMap,
        mode: PayloadMode,
        chunk_signer: Option<ChunkSigner>,
    ) -> Result<BodySpec, AuthError> {
        let aws_chunked_encoding =
            header_str(headers, http::header::CONTENT_ENCODING).is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
            });
        let framing = match mode {
            PayloadMode::StreamingSigned => Framing::AwsChunked {
                signed: true,
                trailer: false,
            },
            PayloadMode::StreamingSignedTrailer => Framing::AwsChunked {
                signed: true,
                trailer: true,
            },
            PayloadMode::StreamingUnsignedTrailer => Framing::AwsChunked {
                signed: false,
                trailer: true,
            },
            // Some SDKs send unsigned aws-chunked bodies labelled UNSIGNED-PAYLOAD;
            // storing their framing as object data would corrupt the object.
            PayloadMode::Unsigned
                if aws_chunked_encoding
                    && headers.contains_key(crate::s3::headers::X_AMZ_DECODED_CONTENT_LENGTH) =>
            {
                Framing::AwsChunked {
                    signed: false,
                    trailer: true,
                }
            }
            PayloadMode::Unsigned | PayloadMode::Sha256(_) => Framing::Plain,
        };
        let sha256 = match (mode, framing) {
            (PayloadMode::Sha256(h), Framing::Plain) => Some(h),
            _ => None,
        };

        let content_md5 = match headers.get(crate::s3::headers::CONTENT_MD5) {
            None => None,
            Some(v) => {
                let raw = v
                    .to_str()
                    .ok()
                    .and_then(|s| BASE64.decode(s.trim()).ok())
                    .ok_or(AuthError::InvalidContentMd5)?;
                Some(
                    <[u8; 16]>::try_from(raw.as_slice())
                        .map_err(|_| AuthError::InvalidContentMd5)?,
                )
            }
        };

        let trailer_names: Vec<String> = headers
            .get_all(crate::s3::headers::X_AMZ_TRAILER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        let is_trailer_framing = matches!(framing, Framing::AwsChunked { trailer: true, .. });
        if !trailer_names.is_empty() && !is_trailer_framing {
            return Err(AuthError::ChecksumRequest(
                "x-amz-trailer requires a STREAMING-*-TRAILER payload.",
            ));
        }

        let mut checksums: Vec<(ChecksumAlgorithm, ChecksumSource)> = Vec::new();
        for alg in ChecksumAlgorithm::ALL {
            for v in headers.get_all(alg.header()) {
                let raw = v
                    .to_str()
                    .ok()
                    .and_then(|s| alg.decode_value(s))
                    .ok_or(AuthError::ChecksumMalformed(alg))?;
                checksums.push((alg, ChecksumSource::Header(raw)));
            }
        }
        for name in &trailer_names {
            match ChecksumAlgorithm::from_header_name(name) {
                Some(alg) => checksums.push((alg, ChecksumSource::Trailer)),
                None if name.starts_with("x-amz-checksum-") => {
                    return Err(AuthError::ChecksumRequest(
                        "The value specified in the x-amz-trailer header is not supported",
                    ));
                }
                None => {}
            }
        }
        if checksums.len() > 1 {
            return Err(AuthError::ChecksumRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let mut checksum = checksums.pop();
        let mut trailer_names = trailer_names;
        if let Some(announced) =
            header_str(headers, crate::s3::headers::X_AMZ_SDK_CHECKSUM_ALGORITHM)
        {
            let alg = ChecksumAlgorithm::from_name(announced).ok_or(AuthError::ChecksumRequest(
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            ))?;
            match &checksum {
                Some((a, _)) if *a != alg => {
                    return Err(AuthError::ChecksumRequest(
                        "Value for x-amz-sdk-checksum-algorithm header is invalid.",
                    ));
                }
                Some(_) => {}
                None if is_trailer_framing => {
                    trailer_names.push(alg.header_name().to_string());
                    checksum = Some((alg, ChecksumSource::TrailerIfSent));
                }
                None => {}
            }
        }

        let decoded_length = match framing {
            Framing::AwsChunked { .. } => Some(
                parse_length(headers, crate::s3::headers::X_AMZ_DECODED_CONTENT_LENGTH)?
                    .ok_or(AuthError::MissingDecodedLength)?,
            ),
            Framing::Plain => parse_length(headers, http::header::CONTENT_LENGTH)?,
        };

        Ok(BodySpec {
            framing,
            chunk_signer: chunk_signer.filter(|_| mode.is_chunk_signed()),
            sha256,
            content_md5,
            checksum,
            trailer_names,
            decoded_length,
        })
    }
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_length(headers: &HeaderMap, name: HeaderName) -> Result<Option<u64>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or(AuthError::InvalidArgument(
                "The length header you provided is not a valid number.",
            )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn payload_modes_parse() {
        assert_eq!(
            PayloadMode::parse("UNSIGNED-PAYLOAD"),
            Ok(PayloadMode::Unsigned)
        );
        assert!(matches!(
            PayloadMode::parse(&"a".repeat(64)),
            Ok(PayloadMode::Sha256(_))
        ));
        assert_eq!(
            PayloadMode::parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            Err(AuthError::InvalidContentSha256)
        );
        assert_eq!(
            PayloadMode::parse("abc"),
            Err(AuthError::InvalidContentSha256)
        );
    }

    #[test]
    fn content_md5_must_be_sixteen_bytes_of_base64() {
        let h = headers(&[("content-md5", "not base64!")]);
        assert_eq!(
            BodySpec::from_headers(&h, PayloadMode::Unsigned, None).map(|_| ()),
            Err(AuthError::InvalidContentMd5)
        );
        let h = headers(&[("content-md5", "AAAA")]);
        assert_eq!(
            BodySpec::from_headers(&h, PayloadMode::Unsigned, None).map(|_| ()),
            Err(AuthError::InvalidContentMd5)
        );
        let h = headers(&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")]);
        assert!(BodySpec::from_headers(&h, PayloadMode::Unsigned, None).is_ok());
    }

    #[test]
    fn one_checksum_at_most() {
        let h = headers(&[
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-crc32c", "AAAAAA=="),
        ]);
        assert!(matches!(
            BodySpec::from_headers(&h, PayloadMode::Unsigned, None),
            Err(AuthError::ChecksumRequest(_))
        ));
        let h = headers(&[("x-amz-checksum-crc32", "AAAA")]);
        assert_eq!(
            BodySpec::from_headers(&h, PayloadMode::Unsigned, None).map(|_| ()),
            Err(AuthError::ChecksumMalformed(ChecksumAlgorithm::Crc32))
        );
    }

    #[test]
    fn trailer_checksum_needs_trailer_framing_and_decoded_length() {
        let h = headers(&[("x-amz-trailer", "x-amz-checksum-crc32")]);
        assert!(BodySpec::from_headers(&h, PayloadMode::Unsigned, None).is_err());
        assert_eq!(
            BodySpec::from_headers(&h, PayloadMode::StreamingUnsignedTrailer, None).map(|_| ()),
            Err(AuthError::MissingDecodedLength)
        );
        let h = headers(&[
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("x-amz-decoded-content-length", "5"),
        ]);
        let spec = BodySpec::from_headers(&h, PayloadMode::StreamingUnsignedTrailer, None);
        let Ok(spec) = spec else {
            panic!("valid spec refused: {spec:?}")
        };
        assert_eq!(spec.decoded_length(), Some(5));
        assert!(spec.checksum_in_trailer());
        assert_eq!(spec.checksum_algorithm(), Some(ChecksumAlgorithm::Crc32));
    }

    #[test]
    fn sdk_algorithm_must_agree_with_the_checksum() {
        let h = headers(&[
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
        ]);
        assert!(BodySpec::from_headers(&h, PayloadMode::Unsigned, None).is_err());
        let h = headers(&[("x-amz-sdk-checksum-algorithm", "FOO")]);
        assert!(BodySpec::from_headers(&h, PayloadMode::Unsigned, None).is_err());
    }
}
