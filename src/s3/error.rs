//! S3 errors: the only place that knows S3 error codes, their HTTP statuses and the
//! XML body S3 sends. Every module's own error converts into [`S3Error`] here; the
//! client-visible `message` never carries keys, signatures or backend addresses —
//! those stay in `source`, which is logged with the request id.

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error answered to the client as S3 XML.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub code: Cow<'static, str>,
    pub status: StatusCode,
    /// Safe to show the client.
    pub message: Cow<'static, str>,
    /// Who caused it, for metrics: client, backend, kms or internal.
    pub origin: ErrorOrigin,
    /// Extra XML elements S3 adds for some codes (e.g. `ActualObjectSize`).
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `Content-Range: bytes */N` on 416).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    #[source]
    pub source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    Client,
    Backend,
    Kms,
    Internal,
}

impl ErrorOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOrigin::Client => "client",
            ErrorOrigin::Backend => "backend",
            ErrorOrigin::Kms => "kms",
            ErrorOrigin::Internal => "internal",
        }
    }
}

macro_rules! s3_errors {
    ($($fn_name:ident => $code:literal, $status:ident;)*) => {
        impl S3Error {
            $(
                #[doc = concat!("`", $code, "`")]
                pub fn $fn_name(message: impl Into<Cow<'static, str>>) -> S3Error {
                    S3Error::new($code, StatusCode::$status, message)
                }
            )*
        }
    };
}

s3_errors! {
    access_denied => "AccessDenied", FORBIDDEN;
    invalid_access_key_id => "InvalidAccessKeyId", FORBIDDEN;
    signature_does_not_match => "SignatureDoesNotMatch", FORBIDDEN;
    invalid_argument => "InvalidArgument", BAD_REQUEST;
    invalid_request => "InvalidRequest", BAD_REQUEST;
    invalid_range => "InvalidRange", RANGE_NOT_SATISFIABLE;
    invalid_part => "InvalidPart", BAD_REQUEST;
    invalid_part_order => "InvalidPartOrder", BAD_REQUEST;
    invalid_bucket_name => "InvalidBucketName", BAD_REQUEST;
    invalid_uri => "InvalidURI", BAD_REQUEST;
    malformed_xml => "MalformedXML", BAD_REQUEST;
    missing_content_length => "MissingContentLength", LENGTH_REQUIRED;
    entity_too_large => "EntityTooLarge", BAD_REQUEST;
    metadata_too_large => "MetadataTooLarge", BAD_REQUEST;
    request_header_too_large => "RequestHeaderSectionTooLarge", BAD_REQUEST;
    uri_too_long => "UriTooLong", URI_TOO_LONG;
    not_implemented => "NotImplemented", NOT_IMPLEMENTED;
    method_not_allowed => "MethodNotAllowed", METHOD_NOT_ALLOWED;
    precondition_failed => "PreconditionFailed", PRECONDITION_FAILED;
    internal_error => "InternalError", INTERNAL_SERVER_ERROR;
    service_unavailable => "ServiceUnavailable", SERVICE_UNAVAILABLE;
    slow_down => "SlowDown", SERVICE_UNAVAILABLE;
    bad_gateway => "BadGateway", BAD_GATEWAY;
    request_timeout => "RequestTimeout", BAD_REQUEST;
    incomplete_body => "IncompleteBody", BAD_REQUEST;
    no_such_key => "NoSuchKey", NOT_FOUND;
    server_side_encryption_configuration_not_found => "ServerSideEncryptionConfigurationNotFoundError", NOT_FOUND;
}

impl S3Error {
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: StatusCode,
        message: impl Into<Cow<'static, str>>,
    ) -> S3Error {
        let status_origin = if status.is_server_error() {
            ErrorOrigin::Internal
        } else {
            ErrorOrigin::Client
        };
        S3Error {
            code: code.into(),
            status,
            message: message.into(),
            origin: status_origin,
            extra: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> S3Error {
        self.source = Some(source.into());
        self
    }

    pub fn with_origin(mut self, origin: ErrorOrigin) -> S3Error {
        self.origin = origin;
        self
    }

    pub fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> S3Error {
        self.headers.push((name, value));
        self
    }

    /// The XML document S3 sends for this error.
    pub fn to_xml(&self, request_id: &str, resource: &str) -> Bytes {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        xml.push_str(&escape_xml(&self.code));
        xml.push_str("</Code><Message>");
        xml.push_str(&escape_xml(&self.message));
        xml.push_str("</Message>");
        for (name, value) in &self.extra {
            xml.push_str(&format!("<{name}>{}</{name}>", escape_xml(value)));
        }
        xml.push_str("<Resource>");
        xml.push_str(&escape_xml(resource));
        xml.push_str("</Resource><RequestId>");
        xml.push_str(&escape_xml(request_id));
        xml.push_str("</RequestId></Error>");
        Bytes::from(xml)
    }
}

/// Escapes text for an XML element; also drops characters XML 1.0 cannot carry, so an
/// object key with control bytes cannot break the document.
pub fn escape_xml(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| {
        matches!(c, '<' | '>' | '&' | '"' | '\'')
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    }) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_carries_code_message_resource_and_request_id() {
        let e = S3Error::no_such_key("The specified key does not exist.");
        let xml = String::from_utf8(e.to_xml("REQ1", "/b/k<1>").to_vec()).unwrap();
        assert!(xml.contains("<Code>NoSuchKey</Code>"));
        assert!(xml.contains("<Resource>/b/k&lt;1&gt;</Resource>"));
        assert!(xml.contains("<RequestId>REQ1</RequestId>"));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        let out = escape_xml("a\u{1}b");
        assert!(!out.contains('\u{1}'));
    }
}
