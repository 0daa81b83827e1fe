//! PostObject: a browser form upload (`POST /bucket`, `multipart/form-data`) becomes a
//! PutObject towards the backend, sealed like [`super::put::put_object`] for encrypting
//! buckets and plain otherwise.
//!
//! The request carries no Authorization: the form's policy is signed with the client's
//! secret, which only the proxy knows (the backend knows the proxy's), so the proxy
//! checks the signature and the policy itself and never passes a form through; the
//! PUT is then signed as the client's backend identity. A form with no signature and
//! no policy is anonymous: refused (403) unless `auth.anonymous = "forward"`, and then
//! written with an unsigned PUT, so the bucket's ACL on the backend decides.
//!
//! The fields before the file are read into memory (at most [`MAX_PRE_DATA`]); fields
//! after it are ignored, as S3 does. The backend PUT needs an exact length before the
//! file has arrived: when the rest of the body is small it is read whole and parsed
//! exactly; otherwise the file is what Content-Length leaves after the fields and the
//! closing delimiter `\r\n--BOUNDARY--\r\n`, and [`file_body::FileBody`] fails the
//! upload unless the body ends exactly so.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html>

pub mod fields;
pub mod file_body;
pub mod form;
pub mod policy;
#[cfg(test)]
mod proptests;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use time::OffsetDateTime;

use super::RequestContext;
use super::passthrough::{build_upstream_request, internal, relay_response, send, verified_body};
use crate::auth::body::BodyOutcome;
use crate::auth::post_form::{self, FormSignature};
use crate::auth::{ANONYMOUS, AuthError, BodySpec};
use crate::body::{self, BoxBody};
use crate::config::AnonymousRequests;
use crate::crypto::{EncryptBody, part_ciphertext_len};
use crate::s3::encryption::{self, add_sse_headers, hide_from_client, strip_for_encrypted_write};
use crate::s3::error::S3Error;
use crate::s3::headers::X_AMZ_META_ENVELOPE;
use crate::upstream::BackendIdentity;
use file_body::{FileBody, FormOutcome};
use form::{FormParser, Step};
use policy::Policy;

/// The most the fields before the file may take, all together.
pub const MAX_PRE_DATA: usize = 1024 * 1024;
/// A body with at most this much left after the file part's headers is read whole.
pub const SMALL_REST: u64 = 1024 * 1024;
/// Largest single PUT S3 accepts.
const MAX_PUT_LEN: u64 = 5 * 1024 * 1024 * 1024;

/// The form up to the file data, and the body positioned there.
struct Prefix {
    fields: Vec<(String, String)>,
    file: Option<form::Part>,
    /// Bytes read past the file part's headers.
    pending: BytesMut,
    /// Bytes of the body up to the file data.
    consumed: u64,
    parser: FormParser,
}

/// Handles a PostObject request (not authenticated by `service`: the form is).
pub async fn post_object(
    rc: &mut RequestContext,
    parts: http::request::Parts,
    incoming: Incoming,
) -> Result<Response<BoxBody>, S3Error> {
    let bucket = rc
        .target
        .bucket
        .clone()
        .ok_or_else(|| S3Error::method_not_allowed("POST needs a bucket."))?;
    super::multipart::refuse_registry_bucket(rc)?;
    let boundary = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(form::boundary)
        .ok_or_else(|| {
            S3Error::precondition_failed(
                "At least one of the pre-conditions you specified did not hold",
            )
            .with_extra(
                "Condition",
                "Bucket POST must be of the enclosure-type multipart/form-data",
            )
        })?;
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            S3Error::missing_content_length("You must provide the Content-Length HTTP header.")
        })?;
    let (mut client_body, client_outcome) =
        verified_body(rc, incoming, BodySpec::plain(Some(content_length)));
    let prefix = match read_prefix(&mut client_body, &boundary).await {
        Ok(p) => p,
        Err(e) => return Err(client_outcome.error().map(S3Error::from).unwrap_or(e)),
    };
    let file = prefix.file.clone().ok_or_else(|| {
        S3Error::invalid_argument("POST requires exactly one file upload per request.")
    })?;
    let mut fields = prefix.fields.clone();
    let key = {
        let raw = field(&fields, "key").ok_or_else(|| {
            S3Error::invalid_argument(
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            )
        })?;
        raw.replace("${filename}", file.filename.as_deref().unwrap_or_default())
    };
    if key.is_empty() {
        return Err(S3Error::invalid_argument(
            "User key must have a length greater than 0.",
        ));
    }
    for (name, value) in &mut fields {
        if name.eq_ignore_ascii_case("key") {
            *value = key.clone();
        }
    }
    // An anonymous form has no policy to hold it to; the backend's ACL decides.
    let policy = match authenticate(rc, &fields)? {
        Some(policy_b64) => Some(Policy::parse(&policy_b64)?),
        None => None,
    };
    // The file: read whole when the rest is small, else streamed by length.
    let rest_len = content_length.saturating_sub(prefix.consumed);
    let closing = [prefix.parser.delimiter(), b"--\r\n"].concat();
    let (file_body, file_len, form_outcome) = if rest_len <= SMALL_REST {
        let rest = read_rest(client_body, prefix.pending, &client_outcome).await?;
        let len = form::file_len_in(&rest, prefix.parser.delimiter())?;
        let data = rest.slice(..len);
        (body::full(data), len as u64, FormOutcome::default())
    } else {
        let file_len = rest_len
            .checked_sub(closing.len() as u64)
            .filter(|l| *l > 0)
            .ok_or_else(form::malformed)?;
        let (streamed, outcome) =
            FileBody::new(client_body, prefix.pending.freeze(), file_len, closing);
        (body::boxed(streamed), file_len, outcome)
    };
    if file_len > MAX_PUT_LEN {
        return Err(S3Error::entity_too_large(
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with_extra("ProposedSize", file_len.to_string())
        .with_extra("MaxSizeAllowed", MAX_PUT_LEN.to_string()));
    }
    if let Some(policy) = &policy {
        policy.check(OffsetDateTime::now_utc(), &bucket, &fields, file_len)?;
    }
    // The PutObject this form stands for.
    let put = put_parts(&bucket, &key, fields::put_headers(&fields)?)?;
    rc.target.key = Some(key.clone());
    let encrypting = rc.state.config.policy(&bucket).encrypt;
    let stored = if encrypting {
        put_sealed(
            rc,
            &put,
            file_body,
            file_len,
            &client_outcome,
            &form_outcome,
        )
        .await?
    } else {
        let req = build_upstream_request(rc, &put, Some(file_len), file_body)?;
        let resp = sent(rc, req, &client_outcome, &form_outcome).await?;
        relay_response(rc, resp)
    };
    if !stored.status().is_success() {
        return Ok(stored);
    }
    Ok(answer(rc, &parts, &fields, &bucket, &key, stored))
}

/// The value of a field, by case-insensitive name.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads the fields up to the file part's headers.
async fn read_prefix(body: &mut BoxBody, boundary: &str) -> Result<Prefix, S3Error> {
    let mut parser = FormParser::new(boundary);
    let mut buf = BytesMut::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut read: u64 = 0;
    let mut eof = false;
    let too_large = || {
        S3Error::new(
            "MaxPostPreDataLengthExceededError",
            StatusCode::BAD_REQUEST,
            "Your POST request fields preceding the upload file were too large.",
        )
        .with_extra("MaxPostPreDataLength", MAX_PRE_DATA.to_string())
    };
    loop {
        let step = parser.next(&mut buf, eof)?;
        // What the parser consumed is before the file data; so is what it still needs
        // more to make sense of. What it left after a field may be file data already.
        let pre_data = match step {
            Step::NeedMore => read,
            Step::Field(..) | Step::File(_) | Step::End => read - buf.len() as u64,
        };
        if pre_data > MAX_PRE_DATA as u64 {
            return Err(too_large());
        }
        match step {
            Step::NeedMore => match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        read += data.len() as u64;
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(S3Error::incomplete_body(
                        "The request body terminated unexpectedly",
                    )
                    .with_source(e));
                }
                None => eof = true,
            },
            Step::Field(part, value) => {
                let value = String::from_utf8(value).map_err(|_| form::malformed())?;
                if fields
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(&part.name))
                {
                    return Err(S3Error::invalid_argument(format!(
                        "The form field {} is given more than once.",
                        part.name
                    )));
                }
                fields.push((part.name, value));
            }
            Step::File(part) => {
                let consumed = read - buf.len() as u64;
                return Ok(Prefix {
                    fields,
                    file: Some(part),
                    pending: buf,
                    consumed,
                    parser,
                });
            }
            Step::End => {
                return Ok(Prefix {
                    fields,
                    file: None,
                    pending: buf,
                    consumed: read,
                    parser,
                });
            }
        }
    }
}

/// The rest of a small body, after what was read already.
async fn read_rest(
    body: BoxBody,
    pending: BytesMut,
    outcome: &BodyOutcome,
) -> Result<Bytes, S3Error> {
    let rest = crate::s3::xml::read_bounded(body, SMALL_REST as usize, form::malformed).await;
    if let Some(e) = outcome.error() {
        return Err(e.into());
    }
    let rest = rest?;
    let mut all = pending;
    all.extend_from_slice(&rest);
    Ok(all.freeze())
}

/// Checks the form's signature and sets the request's identities; returns the policy
/// it signs, or `None` for an anonymous form (accepted only when anonymous requests are
/// forwarded). Counts failures as the header and query authentication does.
fn authenticate(
    rc: &mut RequestContext,
    fields: &[(String, String)],
) -> Result<Option<String>, S3Error> {
    let result = form_signature(rc, fields);
    match result {
        Ok(Some((access_key, policy))) => {
            rc.backend = rc.state.backend_identities.for_client(&access_key);
            rc.identity = access_key;
            Ok(Some(policy))
        }
        Ok(None) => {
            rc.identity = ANONYMOUS.to_string();
            rc.backend = BackendIdentity::Anonymous;
            Ok(None)
        }
        Err(e) => {
            let reason = match &e {
                FormAuthError::Auth(a) => a.reason(),
                FormAuthError::S3(s) if s.code == "AccessDenied" => "missing",
                FormAuthError::S3(_) => "malformed",
            };
            rc.state
                .metrics
                .auth_failures
                .with_label_values(&[reason])
                .inc();
            Err(match e {
                FormAuthError::Auth(a) => a.into(),
                FormAuthError::S3(s) => s,
            })
        }
    }
}

enum FormAuthError {
    Auth(AuthError),
    S3(S3Error),
}

/// The verified access key and policy; `None` for an anonymous form that may be
/// forwarded.
fn form_signature(
    rc: &RequestContext,
    fields: &[(String, String)],
) -> Result<Option<(String, String)>, FormAuthError> {
    let get = |name| field(fields, name);
    let missing = |name: &str| {
        FormAuthError::S3(
            S3Error::invalid_argument(format!(
                "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
            ))
            .with_extra("ArgumentName", name.to_string()),
        )
    };
    let v4 = ["x-amz-algorithm", "x-amz-credential", "x-amz-signature"]
        .iter()
        .any(|n| get(n).is_some());
    let v2 = ["awsaccesskeyid", "signature"]
        .iter()
        .any(|n| get(n).is_some());
    let policy = get("policy");
    if !v4 && !v2 && policy.is_none() {
        // Anonymous: see the module documentation.
        if rc.state.config.auth.anonymous == AnonymousRequests::Forward {
            return Ok(None);
        }
        return Err(FormAuthError::S3(S3Error::access_denied(
            "Anonymous requests are refused by this proxy (auth.anonymous).",
        )));
    }
    if v4 && v2 {
        return Err(FormAuthError::S3(S3Error::invalid_argument(
            "Only one auth mechanism allowed; either the x-amz-signature or the signature field should be specified.",
        )));
    }
    let signature = if v4 {
        FormSignature::V4 {
            algorithm: get("x-amz-algorithm").ok_or_else(|| missing("x-amz-algorithm"))?,
            credential: get("x-amz-credential").ok_or_else(|| missing("x-amz-credential"))?,
            signature: get("x-amz-signature").ok_or_else(|| missing("x-amz-signature"))?,
        }
    } else {
        FormSignature::V2 {
            access_key: get("awsaccesskeyid").ok_or_else(|| missing("AWSAccessKeyId"))?,
            signature: get("signature").ok_or_else(|| missing("Signature"))?,
        }
    };
    let policy = policy.ok_or_else(|| missing("Policy"))?;
    let config = &rc.state.config;
    let (access_key, _) = post_form::verify(
        &rc.state.credentials,
        config.auth.allow_sigv2,
        policy,
        signature,
    )
    .map_err(FormAuthError::Auth)?;
    Ok(Some((access_key, policy.to_string())))
}

/// A PUT of `key` in `bucket` with `headers`: what the backend request is built from.
fn put_parts(bucket: &str, key: &str, headers: HeaderMap) -> Result<http::request::Parts, S3Error> {
    let uri: http::Uri = format!("/{}/{}", fields::encode(bucket), fields::encode(key))
        .parse()
        .map_err(|_| S3Error::invalid_argument("The key is not a valid object key."))?;
    let (mut parts, ()) = http::Request::builder()
        .method(http::Method::PUT)
        .uri(uri)
        .body(())
        .map_err(internal)?
        .into_parts();
    parts.headers = headers;
    Ok(parts)
}

/// The sealed upload, as `put::put_object` does it.
async fn put_sealed(
    rc: &RequestContext,
    put: &http::request::Parts,
    file_body: BoxBody,
    file_len: u64,
    client_outcome: &BodyOutcome,
    form_outcome: &FormOutcome,
) -> Result<Response<BoxBody>, S3Error> {
    let (bucket, key) = rc.target.bucket_and_key()?;
    encryption::refuse_reserved_metadata(&put.headers)?;
    encryption::refuse_sse_c(rc, bucket, &put.headers)?;
    let keys = encryption::new_object_keys(rc, bucket, key, &put.headers).await?;
    let envelope_value = HeaderValue::from_str(&keys.envelope.encode()).map_err(internal)?;
    let segment_size = keys.envelope.segment_size();
    let sealed = EncryptBody::new(file_body, &keys.data_key, 1, file_len, segment_size);
    let cipher_len = part_ciphertext_len(file_len, segment_size);
    let mut req = build_upstream_request(rc, put, Some(cipher_len), body::boxed(sealed))?;
    strip_for_encrypted_write(req.headers_mut());
    req.headers_mut()
        .insert(X_AMZ_META_ENVELOPE, envelope_value);
    let resp = sent(rc, req, client_outcome, form_outcome).await?;
    let mut out = relay_response(rc, resp);
    hide_from_client(out.headers_mut());
    if out.status().is_success() {
        add_sse_headers(out.headers_mut(), &keys.envelope);
    }
    Ok(out)
}

/// Sends the PUT; a form that turned out malformed while streaming is the answer
/// (its withheld last bytes kept the backend from storing anything), unless the client
/// body itself failed for a reason of its own (a stall).
async fn sent(
    rc: &RequestContext,
    req: http::Request<BoxBody>,
    client_outcome: &BodyOutcome,
    form_outcome: &FormOutcome,
) -> Result<Response<Incoming>, S3Error> {
    let result = send(rc, req, &BodyOutcome::default()).await;
    let client_error = client_outcome.error();
    if let Some(e @ (AuthError::BodyStalled | AuthError::BodyRead)) = client_error {
        return Err(e.into());
    }
    if form_outcome.malformed() {
        return Err(form::malformed());
    }
    if let Some(e) = client_error {
        return Err(e.into());
    }
    result
}

/// S3's answer to a stored form: a redirect when asked for, else the asked-for status
/// (204 unless 200 or 201; 201 with a `PostResponse` document).
fn answer(
    rc: &RequestContext,
    parts: &http::request::Parts,
    fields: &[(String, String)],
    bucket: &str,
    key: &str,
    stored: Response<BoxBody>,
) -> Response<BoxBody> {
    let (stored, _) = stored.into_parts();
    let etag = stored
        .headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let location = object_url(rc, parts, bucket, key);
    let mut headers = HeaderMap::new();
    for (name, value) in &stored.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::CONTENT_TYPE {
            headers.append(name.clone(), value.clone());
        }
    }
    let redirect = field(fields, "success_action_redirect")
        .or_else(|| field(fields, "redirect"))
        .filter(|u| !u.is_empty());
    let (status, body_bytes, location_header) = if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            fields::encode(bucket),
            fields::encode(key),
            fields::encode(&etag)
        );
        (StatusCode::SEE_OTHER, Bytes::new(), target)
    } else {
        match field(fields, "success_action_status") {
            Some("200") => (StatusCode::OK, Bytes::new(), location.clone()),
            Some("201") => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    crate::s3::error::escape_xml(&location),
                    crate::s3::error::escape_xml(bucket),
                    crate::s3::error::escape_xml(key),
                    crate::s3::error::escape_xml(&etag),
                );
                (StatusCode::CREATED, Bytes::from(xml), location.clone())
            }
            _ => (StatusCode::NO_CONTENT, Bytes::new(), location.clone()),
        }
    };
    let len = body_bytes.len();
    let mut resp = Response::new(body::full(body_bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    if let Ok(v) = HeaderValue::from_str(&location_header) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    if status == StatusCode::CREATED {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    if status != StatusCode::NO_CONTENT {
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}

/// The object's URL as the client reached the proxy (`Location`).
fn object_url(
    rc: &RequestContext,
    parts: &http::request::Parts,
    bucket: &str,
    key: &str,
) -> String {
    let tls = rc.state.config.server.tls_cert.is_some();
    let scheme = if tls { "https" } else { "http" };
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let key = key
        .split('/')
        .map(fields::encode)
        .collect::<Vec<_>>()
        .join("/");
    if rc.target.virtual_hosted {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{}/{key}", fields::encode(bucket))
    }
}
