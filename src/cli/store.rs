//! The backend as the operator tools see it: the configured S3 endpoint, or the
//! embedded backend started in-process over its data directory, reached with the
//! proxy's own signing client. Raw requests only: nothing here decrypts.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::ToolError;
use crate::config::Config;
use crate::embedded::EmbeddedBackend;
use crate::upstream::Backend;

/// Most bytes of an error answer read, to find its S3 error code.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A backend a tool can send raw requests to.
pub struct Store {
    backend: Backend,
    embedded: Option<EmbeddedBackend>,
}

/// A non-2xx answer: status and the S3 error code, when the body carried one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "HTTP {} {c}", self.status.as_u16()),
            None => write!(f, "HTTP {}", self.status.as_u16()),
        }
    }
}

impl Store {
    /// The configured backend; the embedded one is started on its data directory,
    /// which must already exist (a tool never creates an empty store to read from).
    pub async fn open(config: &Config) -> Result<Store, ToolError> {
        let (embedded, endpoint, access_key, secret_key) = match &config.backend.endpoint {
            None => {
                let dir = &config.embedded.data_dir;
                if !dir.is_dir() {
                    return Err(ToolError::Backend(format!(
                        "embedded backend: {}: no such directory (embedded.data_dir)",
                        dir.display()
                    )));
                }
                let e = EmbeddedBackend::start(dir)
                    .await
                    .map_err(|e| ToolError::Backend(e.to_string()))?;
                let (ep, a, s) = (
                    e.endpoint.clone(),
                    e.access_key.clone(),
                    e.secret_key.clone(),
                );
                (Some(e), ep, a, s)
            }
            Some(ep) => (
                None,
                ep.clone(),
                config.backend.access_key.clone().unwrap_or_default(),
                config.backend.secret_key.clone().unwrap_or_default(),
            ),
        };
        let backend = Backend::new(&config.backend, &endpoint, &access_key, &secret_key)
            .map_err(ToolError::Backend)?;
        Ok(Store { backend, embedded })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> String {
        self.backend.endpoint()
    }

    /// Sends one signed request with an empty body.
    pub async fn send(
        &self,
        method: Method,
        bucket: Option<&str>,
        key: Option<&str>,
        headers: &[(header::HeaderName, &str)],
    ) -> Result<Response<Incoming>, ToolError> {
        let (uri, host) = self
            .backend
            .target(bucket, key, "")
            .map_err(|e| ToolError::Backend(e.to_string()))?;
        let mut req = Request::new(crate::body::empty());
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        req.headers_mut().insert(header::HOST, host);
        for (name, value) in headers {
            let v = http::HeaderValue::from_str(value)
                .map_err(|e| ToolError::Backend(format!("header {name}: {e}")))?;
            req.headers_mut().insert(name.clone(), v);
        }
        self.backend
            .send(&self.backend.own_identity(), req)
            .await
            .map_err(|e| ToolError::Backend(describe_send_error(&e)))
    }

    /// HEAD of an object: its headers, or `NoSuchObject`.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<HeaderMap, ToolError> {
        let resp = self
            .send(Method::HEAD, Some(bucket), Some(key), &[])
            .await?;
        let resp = expect_success(resp, bucket, key).await?;
        Ok(resp.into_parts().0.headers)
    }

    /// GET of an object (optionally a `bytes=` range), body still streaming.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<Response<Incoming>, ToolError> {
        let headers: Vec<(header::HeaderName, &str)> = match range {
            Some(r) => vec![(header::RANGE, r)],
            None => Vec::new(),
        };
        let resp = self
            .send(Method::GET, Some(bucket), Some(key), &headers)
            .await?;
        expect_success(resp, bucket, key).await
    }

    /// Stops the embedded backend, if one was started.
    pub async fn close(self) {
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}

async fn expect_success(
    resp: Response<Incoming>,
    bucket: &str,
    key: &str,
) -> Result<Response<Incoming>, ToolError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let refusal = refusal(resp).await;
    if refusal.status == StatusCode::NOT_FOUND
        && refusal.code.as_deref().is_none_or(|c| c == "NoSuchKey")
    {
        return Err(ToolError::NoSuchObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
        });
    }
    Err(ToolError::Backend(format!(
        "s3://{bucket}/{key}: backend answered {refusal}"
    )))
}

/// Reads (a bounded prefix of) an error answer and finds its `<Code>`.
pub async fn refusal(resp: Response<Incoming>) -> Refusal {
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Refusal {
        status,
        code: error_code(&body),
    }
}

/// The `<Code>` of an S3 XML error body.
pub fn error_code(body: &Bytes) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text.get(start..)?.find("</Code>")?;
    text.get(start..start + len).map(str::to_string)
}

/// The innermost cause of a failed send, which is what an operator can act on
/// ("Connection refused", "failed to lookup address", a certificate error).
pub fn describe_send_error(e: &crate::upstream::UpstreamError) -> String {
    let mut cause: &dyn std::error::Error = e;
    let mut text = e.to_string();
    while let Some(next) = cause.source() {
        text = next.to_string();
        cause = next;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_found_in_s3_xml() {
        let body = Bytes::from_static(
            b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>x</Message></Error>",
        );
        assert_eq!(error_code(&body).as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(error_code(&Bytes::from_static(b"<Error/>")), None);
        assert_eq!(error_code(&Bytes::new()), None);
    }
}
