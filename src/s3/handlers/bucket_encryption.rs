//! The bucket encryption API answered from the proxy's bucket policy: the policy lives
//! in configuration, so GetBucketEncryption reports it and changes are refused with an
//! explanation.

use http::{HeaderValue, Response};

use super::RequestContext;
use crate::body::{self, BoxBody};
use crate::s3::error::{S3Error, escape_xml};

/// GetBucketEncryption, as S3 answers it for SSE-KMS with `BucketKeyEnabled`.
pub fn get(rc: &RequestContext) -> Result<Response<BoxBody>, S3Error> {
    let bucket = rc.target.bucket.as_deref().unwrap_or_default();
    let config = &rc.state.config;
    let policy = config.policy(bucket);
    if !policy.encrypt {
        return Err(S3Error::server_side_encryption_configuration_not_found(
            "The server side encryption configuration was not found",
        ));
    }
    let key = policy
        .kms_key_id
        .clone()
        .unwrap_or_else(|| config.kms.key_id.clone());
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>{}</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>{}</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>",
        escape_xml(&key),
        policy.bucket_key
    );
    let mut resp = Response::new(body::full(xml));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    Ok(resp)
}

/// PutBucketEncryption and DeleteBucketEncryption.
pub fn refuse_change() -> S3Error {
    S3Error::new(
        "InvalidRequest",
        http::StatusCode::BAD_REQUEST,
        "Bucket encryption is set by the encryption proxy's configuration ([encryption] in its config file), not through the API.",
    )
}
