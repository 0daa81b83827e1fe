//! GetObjectAttributes of encrypted objects, answered by the proxy: the backend would
//! report ciphertext sizes and checksums of ciphertext. The answer is built from one
//! backend HEAD and the object's layout (cached by ETag; part 1's header otherwise):
//! `ObjectSize` and part `Size`s in plaintext, `ObjectParts` for multipart objects with
//! `x-amz-max-parts` / `x-amz-part-number-marker` paging, `StorageClass`, and
//! `Checksum` only when it is the client's verified plaintext checksum kept beside the
//! envelope (single PUTs; see `put.rs`). Objects without an envelope pass through.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAttributes.html>

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::RequestContext;
use super::get::{self, content_length, etag_parts, plaintext_size};
use super::passthrough;
use crate::auth::Verified;
use crate::body::{self, BoxBody};
use crate::crypto::ObjectLayout;
use crate::s3::checksum_meta::StoredChecksum;
use crate::s3::encryption::{envelope_of, tampered};
use crate::s3::error::{S3Error, escape_xml};

/// The attribute names S3 accepts in `x-amz-object-attributes`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub etag: bool,
    pub checksum: bool,
    pub object_parts: bool,
    pub storage_class: bool,
    pub object_size: bool,
}

impl Wanted {
    /// Parses the comma-separated list (the header may also repeat).
    pub fn parse(headers: &HeaderMap) -> Result<Wanted, S3Error> {
        let mut wanted = Wanted::default();
        let mut any = false;
        for value in headers.get_all("x-amz-object-attributes") {
            let text = value.to_str().map_err(|_| invalid_attribute())?;
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                any = true;
                match name {
                    "ETag" => wanted.etag = true,
                    "Checksum" => wanted.checksum = true,
                    "ObjectParts" => wanted.object_parts = true,
                    "StorageClass" => wanted.storage_class = true,
                    "ObjectSize" => wanted.object_size = true,
                    _ => return Err(invalid_attribute()),
                }
            }
        }
        if !any {
            return Err(S3Error::invalid_request(
                "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
            ));
        }
        Ok(wanted)
    }
}

fn invalid_attribute() -> S3Error {
    S3Error::invalid_argument("Invalid attribute name specified.")
}

/// Paging of the part list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPage {
    pub max_parts: u32,
    pub marker: u32,
}

impl PartPage {
    const DEFAULT_MAX_PARTS: u32 = 1000;

    pub fn parse(headers: &HeaderMap) -> Result<PartPage, S3Error> {
        let number = |name: &'static str, default: u32| -> Result<u32, S3Error> {
            match headers.get(name) {
                None => Ok(default),
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .ok_or_else(|| {
                        S3Error::invalid_argument(format!("{name} must be a non-negative integer"))
                            .with_extra("ArgumentName", name)
                    }),
            }
        };
        Ok(PartPage {
            max_parts: number("x-amz-max-parts", Self::DEFAULT_MAX_PARTS)?
                .min(Self::DEFAULT_MAX_PARTS),
            marker: number("x-amz-part-number-marker", 0)?,
        })
    }
}

/// What the answer is made of, in plaintext terms.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    /// The ETag without its quotes, as GetObjectAttributes shows it.
    pub etag: &'a str,
    pub layout: ObjectLayout,
    pub storage_class: &'a str,
    pub checksum: Option<StoredChecksum>,
}

/// The `GetObjectAttributesResponse` document.
pub fn response_xml(attrs: &Attributes<'_>, wanted: Wanted, page: PartPage) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    if wanted.etag {
        let _ = write!(x, "<ETag>{}</ETag>", escape_xml(attrs.etag));
    }
    if wanted.checksum
        && let Some(c) = &attrs.checksum
    {
        let _ = write!(
            x,
            "<Checksum><{tag}>{value}</{tag}><ChecksumType>FULL_OBJECT</ChecksumType></Checksum>",
            tag = crate::s3::checksum_meta::xml_element(c.algorithm),
            value = escape_xml(&c.value)
        );
    }
    let layout = &attrs.layout;
    // S3 describes parts of multipart objects only.
    if wanted.object_parts && layout.parts > 1 {
        x.push_str("<ObjectParts>");
        let first = page.marker.saturating_add(1);
        let last = page.marker.saturating_add(page.max_parts).min(layout.parts);
        let truncated = last < layout.parts;
        let _ = write!(
            x,
            "<PartsCount>{}</PartsCount><PartNumberMarker>{}</PartNumberMarker><MaxParts>{}</MaxParts><IsTruncated>{truncated}</IsTruncated>",
            layout.parts, page.marker, page.max_parts
        );
        // The last part listed on this page, as S3 gives it (none on an empty page).
        if first <= last {
            let _ = write!(x, "<NextPartNumberMarker>{last}</NextPartNumberMarker>");
        }
        for n in first..=last {
            let _ = write!(
                x,
                "<Part><PartNumber>{n}</PartNumber><Size>{}</Size></Part>",
                layout.part_len(n)
            );
        }
        x.push_str("</ObjectParts>");
    }
    if wanted.storage_class {
        let _ = write!(
            x,
            "<StorageClass>{}</StorageClass>",
            escape_xml(attrs.storage_class)
        );
    }
    if wanted.object_size {
        let _ = write!(x, "<ObjectSize>{}</ObjectSize>", layout.total_plain_len);
    }
    x.push_str("</GetObjectAttributesResponse>");
    x
}

/// GetObjectAttributes: a HEAD of the object, then the answer from its layout.
pub async fn get_object_attributes(
    rc: &RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
    verified: Verified,
) -> Result<Response<BoxBody>, S3Error> {
    let wanted = Wanted::parse(&parts.headers)?;
    let page = PartPage::parse(&parts.headers)?;
    let head = get::fetch(rc, &parts, http::Method::HEAD, None, None).await?;
    let Some(envelope) = envelope_of(head.headers())? else {
        if !head.status().is_success() {
            // Missing or refused: S3's error, without asking a backend that may not
            // know GetObjectAttributes (s3s-fs answers 501).
            return Err(head_error(head.status()));
        }
        drop(head);
        // Not ours: the backend's own answer is the truth about a plaintext object.
        let out = passthrough::passthrough(rc, parts, incoming, verified).await?;
        return get::plaintext_answer(rc, out);
    };
    if !head.status().is_success() {
        // A HEAD error has no body: answer with the status's S3 error instead.
        return Err(head_error(head.status()));
    }
    let headers = head.headers();
    let cipher_len =
        content_length(headers).ok_or_else(|| tampered("backend sent no Content-Length"))?;
    let etag_value = headers
        .get(header::ETAG)
        .cloned()
        .ok_or_else(|| tampered("backend sent no ETag"))?;
    let count = etag_parts(headers);
    let layout = if count == 1 {
        let total = plaintext_size(headers, &envelope, cipher_len)?;
        ObjectLayout::single(envelope.segment_size(), total).map_err(tampered)?
    } else {
        get::part::multipart_layout(
            rc,
            &parts,
            &etag_value,
            cipher_len,
            count,
            envelope.segment_size(),
        )
        .await?
    };
    let etag = etag_value.to_str().map_err(tampered)?.trim_matches('"');
    let storage_class = headers
        .get("x-amz-storage-class")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("STANDARD");
    let attrs = Attributes {
        etag,
        layout,
        storage_class,
        checksum: StoredChecksum::from_headers(headers),
    };
    let xml = response_xml(&attrs, wanted, page);
    let mut out = Response::new(body::full(Bytes::from(xml)));
    *out.status_mut() = StatusCode::OK;
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    for name in ["last-modified", "x-amz-version-id", "x-amz-delete-marker"] {
        if let Some(v) = headers.get(name) {
            h.insert(name, v.clone());
        }
    }
    Ok(out)
}

/// The S3 error for a HEAD status (HEAD answers carry no error document).
fn head_error(status: StatusCode) -> S3Error {
    match status {
        StatusCode::NOT_FOUND => S3Error::new(
            "NoSuchKey",
            StatusCode::NOT_FOUND,
            "The specified key does not exist.",
        ),
        StatusCode::FORBIDDEN => S3Error::access_denied("Access Denied"),
        StatusCode::PRECONDITION_FAILED => S3Error::new(
            "PreconditionFailed",
            StatusCode::PRECONDITION_FAILED,
            "At least one of the pre-conditions you specified did not hold",
        ),
        StatusCode::NOT_MODIFIED => {
            S3Error::new("NotModified", StatusCode::NOT_MODIFIED, "Not Modified")
        }
        s => S3Error::new(
            "InternalError",
            s,
            "The backend storage answered the object's HEAD with an error.",
        ),
    }
}

#[cfg(test)]
mod tests;
