//! Which S3 operation a request is, and which bucket and key it names. Path-style
//! (`/bucket/key`) and virtual-hosted-style (`bucket.domain/key`) requests both become
//! a [`Target`]; [`classify`] names the operation from method, query and headers,
//! as the S3 API reference defines them.

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::error::S3Error;
use crate::upstream::sign::parse_query;

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Decoded query pairs in request order; `None` value = no `=` sent.
    pub query: Vec<(String, Option<String>)>,
    /// Set when the bucket came from the Host header.
    pub virtual_hosted: bool,
}

impl Target {
    pub fn has_param(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Bucket and key of an object operation.
    pub fn bucket_and_key(&self) -> Result<(&str, &str), S3Error> {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => Ok((b, k)),
            _ => Err(S3Error::invalid_request(
                "This operation needs a bucket and an object key.",
            )),
        }
    }

    /// `/bucket/key` for error resources and logs.
    pub fn resource(&self) -> String {
        let mut out = String::with_capacity(
            2 + self.bucket.as_ref().map_or(0, String::len)
                + self.key.as_ref().map_or(0, String::len),
        );
        out.push('/');
        if let Some(b) = &self.bucket {
            out.push_str(b);
            if let Some(k) = &self.key {
                out.push('/');
                out.push_str(k);
            }
        }
        out
    }
}

/// Splits the request into bucket, key and query.
pub fn route(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    vhost_domains: &[String],
) -> Result<Target, S3Error> {
    let _ = method;
    let raw_path = uri.path();
    let query = parse_query(uri.query().unwrap_or(""));
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.host())
        .unwrap_or("");
    let host_name = strip_port(host).to_ascii_lowercase();
    let vhost_bucket = vhost_domains.iter().find_map(|d| {
        let d = d.to_ascii_lowercase();
        host_name
            .strip_suffix(&d)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    });
    let decoded = percent_decode_str(raw_path).decode_utf8().map_err(|_| {
        S3Error::invalid_uri("Couldn't parse the specified URI: the path is not valid UTF-8.")
    })?;
    let path = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = match vhost_bucket {
        Some(b) => (
            Some(b),
            if path.is_empty() {
                None
            } else {
                Some(path.to_string())
            },
        ),
        None => match path.split_once('/') {
            Some((b, k)) if !k.is_empty() => (Some(b.to_string()), Some(k.to_string())),
            Some((b, _)) => (Some(b.to_string()), None),
            None if path.is_empty() => (None, None),
            None => (Some(path.to_string()), None),
        },
    };
    if let Some(b) = &bucket {
        check_bucket_name(b)?;
    }
    if let Some(k) = &key
        && k.len() > 1024
    {
        return Err(S3Error::new(
            "KeyTooLongError",
            http::StatusCode::BAD_REQUEST,
            "Your key is too long",
        ));
    }
    let virtual_hosted = bucket.is_some()
        && vhost_domains
            .iter()
            .any(|d| host_name.ends_with(&d.to_ascii_lowercase()));
    Ok(Target {
        bucket,
        key,
        query,
        virtual_hosted,
    })
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

/// S3's bucket naming rules (the lenient legacy form for existing buckets: 3..=255,
/// letters, digits, `.`, `-`, `_`), enough to refuse path tricks before forwarding.
fn check_bucket_name(b: &str) -> Result<(), S3Error> {
    let ok = (3..=255).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && b != "."
        && b != "..";
    if ok {
        Ok(())
    } else {
        Err(S3Error::invalid_bucket_name(
            "The specified bucket is not valid.",
        ))
    }
}

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// S3 operations, named as in the API reference.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation { $($name),* }
        impl Operation {
            pub fn as_str(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),* }
            }
        }
    };
}

operations! {
    ListBuckets, CreateBucket, DeleteBucket, HeadBucket, ListObjects, ListObjectsV2,
    ListObjectVersions, ListMultipartUploads, GetBucketEncryption, PutBucketEncryption,
    DeleteBucketEncryption, GetBucketSubresource, PutBucketSubresource, DeleteBucketSubresource,
    DeleteObjects, PostObject,
    PutObject, CopyObject, GetObject, HeadObject, DeleteObject, GetObjectAttributes,
    CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
    AbortMultipartUpload, ListParts, SelectObjectContent, RestoreObject, WriteGetObjectResponse,
    GetObjectSubresource, PutObjectSubresource, DeleteObjectSubresource,
    Unknown,
}

/// Object sub-resources whose requests and answers carry no object data.
const OBJECT_SUBRESOURCES: &[&str] = &["tagging", "acl", "retention", "legal-hold", "torrent"];

/// Names the operation.
pub fn classify(method: &Method, t: &Target, headers: &HeaderMap) -> Operation {
    use Operation::*;
    let Some(_bucket) = &t.bucket else {
        return if *method == Method::GET {
            ListBuckets
        } else {
            Unknown
        };
    };
    let has = |p: &str| t.has_param(p);
    if t.key.is_none() {
        return match *method {
            Method::GET if has("encryption") => GetBucketEncryption,
            Method::PUT if has("encryption") => PutBucketEncryption,
            Method::DELETE if has("encryption") => DeleteBucketEncryption,
            Method::GET if has("uploads") => ListMultipartUploads,
            Method::GET if has("versions") => ListObjectVersions,
            Method::GET if t.param("list-type") == Some("2") => ListObjectsV2,
            Method::GET if t.query.iter().all(|(k, _)| is_list_param(k)) => ListObjects,
            Method::GET => GetBucketSubresource,
            Method::HEAD => HeadBucket,
            Method::PUT if t.query.is_empty() => CreateBucket,
            Method::PUT => PutBucketSubresource,
            Method::DELETE if t.query.is_empty() => DeleteBucket,
            Method::DELETE => DeleteBucketSubresource,
            Method::POST if has("delete") => DeleteObjects,
            // Object Lambda's answer path: `POST /WriteGetObjectResponse` with a route.
            Method::POST if headers.contains_key(crate::s3::headers::X_AMZ_REQUEST_ROUTE) => {
                WriteGetObjectResponse
            }
            Method::POST if t.query.is_empty() => PostObject,
            _ => Unknown,
        };
    }
    let sub = OBJECT_SUBRESOURCES.iter().any(|s| has(s));
    match *method {
        Method::GET if has("uploadId") => ListParts,
        Method::GET if has("attributes") => GetObjectAttributes,
        Method::GET if sub => GetObjectSubresource,
        Method::GET => GetObject,
        Method::HEAD => HeadObject,
        Method::PUT if has("partNumber") && has("uploadId") => {
            if headers.contains_key(crate::s3::headers::X_AMZ_COPY_SOURCE) {
                UploadPartCopy
            } else {
                UploadPart
            }
        }
        Method::PUT if sub => PutObjectSubresource,
        Method::PUT if headers.contains_key(crate::s3::headers::X_AMZ_COPY_SOURCE) => CopyObject,
        Method::PUT => PutObject,
        Method::POST if has("uploads") => CreateMultipartUpload,
        Method::POST if has("uploadId") => CompleteMultipartUpload,
        Method::POST if has("select") => SelectObjectContent,
        Method::POST if has("restore") => RestoreObject,
        Method::DELETE if has("uploadId") => AbortMultipartUpload,
        Method::DELETE if sub => DeleteObjectSubresource,
        Method::DELETE => DeleteObject,
        _ => Unknown,
    }
}

fn is_list_param(k: &str) -> bool {
    matches!(
        k,
        "prefix" | "delimiter" | "marker" | "max-keys" | "encoding-type"
    ) || k.starts_with("x-")
        || k == "X-Amz-Algorithm"
        || k.starts_with("X-Amz-")
        || matches!(k, "AWSAccessKeyId" | "Signature" | "Expires")
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str, host: &str, domains: &[&str]) -> Target {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, host.parse().unwrap());
        let d: Vec<String> = domains.iter().map(|s| s.to_string()).collect();
        route(&Method::GET, &uri.parse().unwrap(), &h, &d).unwrap()
    }

    #[test]
    fn path_style_splits_bucket_and_decoded_key() {
        let t = target("/bkt/a%20b/c?x=1", "localhost:8333", &[]);
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key.as_deref(), Some("a b/c"));
    }

    #[test]
    fn virtual_hosted_style_takes_bucket_from_host() {
        let t = target("/k/x", "bkt.s3.local:8333", &["s3.local"]);
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key.as_deref(), Some("k/x"));
        assert!(t.virtual_hosted);
    }

    #[test]
    fn operations_are_named_like_the_api_reference() {
        let h = HeaderMap::new();
        let t = target("/bkt/k?uploadId=1&partNumber=2", "h", &[]);
        assert_eq!(classify(&Method::PUT, &t, &h), Operation::UploadPart);
        let t = target("/bkt?list-type=2&prefix=a", "h", &[]);
        assert_eq!(classify(&Method::GET, &t, &h), Operation::ListObjectsV2);
        let t = target("/bkt?delete", "h", &[]);
        assert_eq!(classify(&Method::POST, &t, &h), Operation::DeleteObjects);
        let t = target("/bkt/k?select&select-type=2", "h", &[]);
        assert_eq!(
            classify(&Method::POST, &t, &h),
            Operation::SelectObjectContent
        );
        let t = target("/", "h", &[]);
        assert_eq!(classify(&Method::GET, &t, &h), Operation::ListBuckets);
    }

    #[test]
    fn bad_bucket_names_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, "h".parse().unwrap());
        assert!(route(&Method::GET, &"/../k".parse().unwrap(), &h, &[]).is_err());
        assert!(route(&Method::GET, &"/a/k".parse().unwrap(), &h, &[]).is_err());
    }
}
