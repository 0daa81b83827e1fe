use crate::error::check_body_length;
use crate::fs::FileSystem;
use crate::fs::InPlaceCopy;
use crate::fs::InternalInfo;
use crate::fs::Naming;
use crate::fs::NewObject;
use crate::utils::*;

use s3s::S3;
use s3s::S3Result;
use sealgate_md5::Md5;
use s3s::dto::*;
use s3s::s3_error;
use s3s::{S3Request, S3Response};

use std::collections::VecDeque;
use std::io;
use std::ops::Neg;
use std::ops::Not;
use std::path::Component;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::fs;
use tokio::io::AsyncSeekExt;
use tokio_util::io::ReaderStream;

use futures::TryStreamExt;
use numeric_cast::NumericCast;
use stdx::default::default;
use tracing::debug;
use uuid::Uuid;

/// PUT bodies up to this size are held in memory and written with the object's
/// attributes in one trip through the blocking pool (`FileSystem::commit_object`).
const SMALL_PUT_BYTES: i64 = 128 * 1024;

fn normalize_path(path: &Path, delimiter: &str) -> Option<String> {
    let mut normalized = String::new();
    let mut first = true;
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return None;
            }
            Component::Normal(name) => {
                let name = name.to_str()?;
                if !first {
                    normalized.push_str(delimiter);
                }
                normalized.push_str(name);
                first = false;
            }
        }
    }
    Some(normalized)
}

/// <https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Range>
fn fmt_content_range(start: u64, end_inclusive: u64, size: u64) -> String {
    format!("bytes {start}-{end_inclusive}/{size}")
}

/// A modification time as conditions compare it: at the whole second, the resolution of
/// the Last-Modified a client was given (a file's time has nanoseconds).
fn whole_seconds(time: SystemTime) -> Timestamp {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| std::time::Duration::from_secs(d.as_secs()))
        .unwrap_or_default();
    Timestamp::from(SystemTime::UNIX_EPOCH + seconds)
}

/// The read conditions of GetObject and HeadObject, and CopyObject's of its source.
struct ReadConditions {
    if_match: Option<ETagCondition>,
    if_unmodified_since: Option<Timestamp>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
}

/// What read conditions decide.
enum ReadDecision {
    Serve,
    PreconditionFailed,
    NotModified,
}

impl ReadConditions {
    /// Evaluates them in S3's order: If-Match, else If-Unmodified-Since, fails the
    /// precondition; then If-None-Match, else If-Modified-Since, answers not modified.
    /// Dates compare at the whole second of the Last-Modified a client was given.
    fn evaluate(&self, etag: &ETag, last_modified: SystemTime) -> ReadDecision {
        let modified = whole_seconds(last_modified);
        let precondition_failed = match &self.if_match {
            Some(ETagCondition::Any) => false,
            Some(ETagCondition::ETag(expected)) => !etag.strong_cmp(expected),
            None => self.if_unmodified_since.as_ref().is_some_and(|since| modified > *since),
        };
        if precondition_failed {
            return ReadDecision::PreconditionFailed;
        }
        let not_modified = match &self.if_none_match {
            Some(ETagCondition::Any) => true,
            Some(ETagCondition::ETag(other)) => etag.weak_cmp(other),
            None => self.if_modified_since.as_ref().is_some_and(|since| modified <= *since),
        };
        if not_modified {
            return ReadDecision::NotModified;
        }
        ReadDecision::Serve
    }

    /// A read's answer to them: 412, 304 or go on. A Range comes after (RFC 9110,
    /// section 13.2.2), so the caller checks these first.
    fn check(&self, etag: &ETag, last_modified: SystemTime) -> S3Result<()> {
        match self.evaluate(etag, last_modified) {
            ReadDecision::Serve => Ok(()),
            ReadDecision::PreconditionFailed => Err(s3_error!(PreconditionFailed)),
            ReadDecision::NotModified => Err(s3_error!(NotModified)),
        }
    }
}

#[async_trait::async_trait]
impl S3 for FileSystem {
    #[tracing::instrument]
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        let path = self.get_bucket_path(&input.bucket)?;

        if path.exists() {
            return Err(s3_error!(BucketAlreadyExists));
        }

        try_!(fs::create_dir(&path).await);

        let output = CreateBucketOutput::default(); // TODO: handle other fields
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let (bucket, key) = match input.copy_source {
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => return Err(s3_error!(NotImplemented)),
            CopySource::Bucket { ref bucket, ref key, .. } => (bucket, key),
        };

        let src_path = self.get_object_path(bucket, key)?;
        let dst_path = self.get_object_path(&input.bucket, &input.key)?;

        if src_path.exists().not() {
            return Err(s3_error!(NoSuchKey));
        }

        if self.get_bucket_path(&input.bucket)?.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }

        // The copy-source conditions are a read's, in the same order; a copy refuses
        // with 412 where a read would answer 304.
        let src_conditions = ReadConditions {
            if_match: input.copy_source_if_match.clone(),
            if_unmodified_since: input.copy_source_if_unmodified_since.clone(),
            if_none_match: input.copy_source_if_none_match.clone(),
            if_modified_since: input.copy_source_if_modified_since.clone(),
        };
        // The source's file, attributes, internal info and ETag, all from one write of
        // it, in one trip through the blocking pool.
        let (read_path, attributes_path, info_path) = (
            src_path.clone(),
            self.get_metadata_path(bucket, key, None)?,
            self.get_internal_info_path(bucket, key)?,
        );
        let lock = self.key_lock(bucket, key);
        let read = tokio::task::spawn_blocking(move || {
            read_consistent(&lock, |naming| {
                open_copy_source(&read_path, &attributes_path, &info_path, &src_conditions, naming)
            })
        });
        let source = try_!(read.await)?;
        // The source's stored ETag, else its MD5. It is the destination's ETag too, which
        // keeps non-MD5 ETags (a multipart `{hash}-{part_count}`) and spares hashing the
        // copy.
        let dst_etag_str = source.e_tag.value().to_owned();
        let src_info = source.info;

        let mut info = src_info.unwrap_or_default();
        crate::checksum::save_e_tag(&mut info, &dst_etag_str);

        // `MetadataDirective` defaults to `COPY` per AWS API: when the
        // header is absent the destination inherits the source's attributes.
        // When set to `REPLACE`, the destination's attributes are built fresh
        // from the request and anything from the source is dropped (matching
        // the behaviour documented at
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
        let replace_metadata = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let attrs = if replace_metadata {
            let mut dst_attrs = crate::fs::ObjectAttributes {
                user_metadata: input.metadata,
                content_encoding: input.content_encoding,
                content_type: input.content_type,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: None,
                website_redirect_location: input.website_redirect_location,
            };
            dst_attrs.set_expires_timestamp(input.expires);
            Some(dst_attrs)
        } else {
            None
        };

        let dst_last_modified = if src_path == dst_path {
            // A copy onto itself changes the attributes (REPLACE) and LastModified;
            // the bytes stay where they are.
            match self.copy_onto_itself(&input.bucket, &input.key, attrs.as_ref(), &info, source.object_file).await? {
                InPlaceCopy::Applied(now) => {
                    debug!(path = %dst_path.display(), "replace file in place");
                    Timestamp::from(now)
                }
                InPlaceCopy::Replaced => Timestamp::from(SystemTime::now()),
                InPlaceCopy::Gone => return Err(s3_error!(NoSuchKey)),
            }
        } else {
            // The copy goes to a temporary file (the kernel copies it from the source
            // file opened above, in one trip through the blocking pool), which then
            // takes the destination's place with its attributes and internal info in
            // one step: a reader sees the old object or the new one, never a partial
            // copy, a failed copy leaves the old object as it was, and nothing of the
            // old object's attributes carries over. (Upstream copied over the
            // destination file in place.)
            let attrs = attrs.or(source.attributes).unwrap_or_default();
            let object = self.copy_open_file(source.file, &dst_path).await?;
            self.commit_object(object, &input.bucket, &input.key, &attrs, &info).await?;
            debug!(from = %src_path.display(), to = %dst_path.display(), "copy file");
            let dst_metadata = try_!(fs::metadata(&dst_path).await);
            Timestamp::from(try_!(dst_metadata.modified()))
        };

        let copy_object_result = CopyObjectResult {
            e_tag: Some(ETag::Strong(dst_etag_str)),
            last_modified: Some(dst_last_modified),
            ..Default::default()
        };

        let output = CopyObjectOutput {
            copy_object_result: Some(copy_object_result),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let input = req.input;
        if self.get_bucket_path(&input.bucket)?.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }
        if self.delete_empty_bucket(&input.bucket).await?.not() {
            return Err(s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"));
        }
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    #[tracing::instrument]
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        if self.get_bucket_path(&input.bucket)?.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }
        self.delete_object_files(&input.bucket, &input.key).await?;
        let output = DeleteObjectOutput::default(); // TODO: handle other fields
        Ok(S3Response::new(output))
    }

    /// Each key is deleted on its own and answered on its own, as S3 does: a key that
    /// cannot be deleted is an `<Error>` entry, not the batch's failure (upstream failed
    /// the whole request at the first such key, having deleted the keys before it). In
    /// quiet mode only the errors are listed.
    #[tracing::instrument]
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if self.get_bucket_path(&input.bucket)?.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted_objects: Vec<DeletedObject> = Vec::new();
        let mut errors: Vec<s3s::dto::Error> = Vec::new();
        for object in input.delete.objects {
            match self.delete_object_files(&input.bucket, &object.key).await {
                Ok(()) if quiet => {}
                Ok(()) => deleted_objects.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    ..Default::default()
                }),
                Err(e) => {
                    let e = s3s::S3Error::from(e);
                    errors.push(s3s::dto::Error {
                        code: Some(e.code().as_str().to_owned()),
                        key: Some(object.key),
                        message: e.message().map(str::to_owned),
                        version_id: object.version_id,
                    });
                }
            }
        }

        let output = DeleteObjectsOutput {
            deleted: Some(deleted_objects).filter(|d| !d.is_empty()),
            errors: Some(errors).filter(|e| !e.is_empty()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn get_bucket_location(&self, req: S3Request<GetBucketLocationInput>) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let input = req.input;
        let path = self.get_bucket_path(&input.bucket)?;

        if !path.exists() {
            return Err(s3_error!(NoSuchBucket));
        }

        let output = GetBucketLocationOutput::default();
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let object_path = self.get_object_path(&input.bucket, &input.key)?;
        let attributes_path = self.get_metadata_path(&input.bucket, &input.key, None)?;
        let info_path = self.get_internal_info_path(&input.bucket, &input.key)?;

        // Everything before the body's second chunk in one trip through the blocking
        // pool: open, size, seek, attributes, internal info and the first chunk were
        // five or six trips, each a hand-over between threads.
        let range = input.range;
        let directory_object = input.key.ends_with('/');
        let conditions = ReadConditions {
            if_match: input.if_match,
            if_unmodified_since: input.if_unmodified_since,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
        };
        let lock = self.key_lock(&input.bucket, &input.key);
        let opened = tokio::task::spawn_blocking(move || {
            read_consistent(&lock, |naming| {
                open_for_get(&object_path, directory_object, range, &conditions, &attributes_path, &info_path, naming)
            })
        });
        let OpenedForGet {
            file,
            file_len,
            last_modified,
            e_tag,
            content_length,
            content_range,
            first_chunk,
            attributes: obj_attrs,
            info,
        } = try_!(opened.await)?;
        let content_length_i64 = try_!(i64::try_from(content_length));

        let rest = try_!(usize::try_from(content_length - first_chunk.len() as u64));
        let first = futures::stream::iter((!first_chunk.is_empty()).then_some(Ok::<_, io::Error>(first_chunk)));
        let body = futures::StreamExt::chain(first, bytes_stream(ReaderStream::with_capacity(fs::File::from_std(file), read_size(rest)), rest));

        let checksum = match &info {
            // S3 skips returning the checksum if a range is specified that is
            // less than the whole file
            Some(info) if content_length == file_len => crate::checksum::from_internal_info(info),
            _ => default(),
        };

        #[allow(clippy::redundant_closure_for_method_calls)]
        let output = GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some(content_length_i64),
            content_range,
            last_modified: Some(Timestamp::from(last_modified)),
            metadata: obj_attrs.as_ref().and_then(|a| a.user_metadata.clone()),
            content_encoding: obj_attrs.as_ref().and_then(|a| a.content_encoding.clone()),
            content_type: obj_attrs.as_ref().and_then(|a| a.content_type.clone()),
            content_disposition: obj_attrs.as_ref().and_then(|a| a.content_disposition.clone()),
            content_language: obj_attrs.as_ref().and_then(|a| a.content_language.clone()),
            cache_control: obj_attrs.as_ref().and_then(|a| a.cache_control.clone()),
            expires: obj_attrs.as_ref().and_then(|a| a.get_expires_timestamp()),
            website_redirect_location: obj_attrs.as_ref().and_then(|a| a.website_redirect_location.clone()),
            e_tag: Some(e_tag),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let input = req.input;
        let path = self.get_bucket_path(&input.bucket)?;

        if !path.exists() {
            return Err(s3_error!(NoSuchBucket));
        }

        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    #[tracing::instrument]
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let path = self.get_object_path(&input.bucket, &input.key)?;

        if !path.exists() {
            if self.get_bucket_path(&input.bucket)?.exists().not() {
                return Err(s3_error!(NoSuchBucket));
            }
            return Err(s3_error!(NoSuchKey));
        }

        // Size, attributes, internal info and ETag in one trip through the blocking pool.
        let attributes_path = self.get_metadata_path(&input.bucket, &input.key, None)?;
        let info_path = self.get_internal_info_path(&input.bucket, &input.key)?;
        let directory_object = input.key.ends_with('/');
        let lock = self.key_lock(&input.bucket, &input.key);
        let read = tokio::task::spawn_blocking(move || {
            read_consistent(&lock, |naming| {
                let file_metadata = std::fs::metadata(&path).map_err(|e| s3_error!(e, NoSuchKey))?;
                let file_len = object_len(&file_metadata, directory_object)?;
                let (attributes, info) = FileSystem::read_attributes_blocking(&attributes_path, &info_path)?;
                if !crate::fs::sidecars_match(&path, &file_metadata, info.as_ref(), naming) {
                    return Ok(None);
                }
                let e_tag = object_e_tag(info.as_ref(), directory_object, || md5_of_file(&path))?;
                Ok(Some((file_metadata, file_len, e_tag, attributes, info)))
            })
        });
        let (file_metadata, file_len, e_tag, obj_attrs, info) = try_!(read.await)?;
        let modified = try_!(file_metadata.modified());
        let last_modified = Timestamp::from(modified);

        let conditions = ReadConditions {
            if_match: input.if_match,
            if_unmodified_since: input.if_unmodified_since,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
        };
        conditions.check(&e_tag, modified)?;

        let checksum = match &info {
            Some(info) => crate::checksum::from_internal_info(info),
            _ => default(),
        };

        #[allow(clippy::redundant_closure_for_method_calls)]
        let output = HeadObjectOutput {
            content_length: Some(try_!(i64::try_from(file_len))),
            content_type: obj_attrs.as_ref().and_then(|a| a.content_type.clone()),
            content_encoding: obj_attrs.as_ref().and_then(|a| a.content_encoding.clone()),
            content_disposition: obj_attrs.as_ref().and_then(|a| a.content_disposition.clone()),
            content_language: obj_attrs.as_ref().and_then(|a| a.content_language.clone()),
            cache_control: obj_attrs.as_ref().and_then(|a| a.cache_control.clone()),
            expires: obj_attrs.as_ref().and_then(|a| a.get_expires_timestamp()),
            website_redirect_location: obj_attrs.as_ref().and_then(|a| a.website_redirect_location.clone()),
            last_modified: Some(last_modified),
            metadata: obj_attrs.as_ref().and_then(|a| a.user_metadata.clone()),
            e_tag: Some(e_tag),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn list_buckets(&self, _: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut iter = try_!(fs::read_dir(&self.root).await);
        while let Some(entry) = try_!(iter.next_entry().await) {
            let file_type = try_!(entry.file_type().await);
            if file_type.is_dir().not() {
                continue;
            }

            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else { continue };
            if s3s::path::check_bucket_name(name).not() {
                continue;
            }

            let file_meta = try_!(entry.metadata().await);
            // Not all filesystems/mounts provide all file attributes like created timestamp,
            // therefore we try to fallback to modified if possible.
            // See https://github.com/Nugine/s3s/pull/22 for more details.
            let created_or_modified_date = Timestamp::from(try_!(file_meta.created().or(file_meta.modified())));

            let bucket = Bucket {
                creation_date: Some(created_or_modified_date),
                name: Some(name.to_owned()),
                bucket_region: None,
            };
            buckets.push(bucket);
        }

        let output = ListBucketsOutput {
            buckets: Some(buckets),
            owner: None,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let v2_resp = self.list_objects_v2(req.map_input(Into::into)).await?;

        Ok(v2_resp.map_output(|v2| ListObjectsOutput {
            contents: v2.contents,
            common_prefixes: v2.common_prefixes,
            delimiter: v2.delimiter,
            encoding_type: v2.encoding_type,
            name: v2.name,
            prefix: v2.prefix,
            max_keys: v2.max_keys,
            is_truncated: v2.is_truncated,
            next_marker: v2.next_continuation_token,
            ..Default::default()
        }))
    }

    #[tracing::instrument]
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let path = self.get_bucket_path(&input.bucket)?;

        if path.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }

        let delimiter = input.delimiter.as_deref();
        let prefix = input.prefix.as_deref().unwrap_or("").trim_start_matches('/');
        let max_keys = input.max_keys.unwrap_or(1000);

        // Collect all matching objects and common prefixes
        let mut objects: Vec<Object> = default();
        let mut common_prefixes = std::collections::BTreeSet::new();

        if let Some(delimiter) = delimiter {
            self.list_objects_with_delimiter(&path, prefix, delimiter, &mut objects, &mut common_prefixes)
                .await?;
        } else {
            self.list_objects_recursive(&path, prefix, &mut objects).await?;
        }

        // Sort before filtering and limiting
        objects.sort_by(|lhs, rhs| {
            let lhs_key = lhs.key.as_deref().unwrap_or("");
            let rhs_key = rhs.key.as_deref().unwrap_or("");
            lhs_key.cmp(rhs_key)
        });

        let start_after = match (input.continuation_token.as_deref(), input.start_after.as_deref()) {
            (Some(ct), Some(sa)) => Some(if ct >= sa { ct } else { sa }),
            (Some(ct), None) => Some(ct),
            (None, Some(sa)) => Some(sa),
            (None, None) => None,
        };

        // Filter out objects and common prefixes at or before the resume point
        if let Some(marker) = start_after {
            objects.retain(|obj| obj.key.as_deref().unwrap_or("") > marker);
            common_prefixes.retain(|cp| cp.as_str() > marker);
        }

        // Convert common_prefixes to sorted list
        let common_prefixes_list: Vec<CommonPrefix> = common_prefixes
            .into_iter()
            .map(|prefix| CommonPrefix { prefix: Some(prefix) })
            .collect();

        // Limit results to max_keys by interleaving objects and common_prefixes
        let mut result_objects = Vec::new();
        let mut result_prefixes = Vec::new();
        let mut total_count = 0;
        let max_keys_usize = usize::try_from(max_keys).unwrap_or(1000);
        let mut last_key: Option<String> = None;

        let mut obj_idx = 0;
        let mut prefix_idx = 0;

        while total_count < max_keys_usize {
            let obj_key = objects.get(obj_idx).and_then(|o| o.key.as_deref());
            let prefix_key = common_prefixes_list.get(prefix_idx).and_then(|p| p.prefix.as_deref());

            match (obj_key, prefix_key) {
                (Some(ok), Some(pk)) => {
                    if ok < pk {
                        last_key = Some(ok.to_owned());
                        result_objects.push(objects[obj_idx].clone());
                        obj_idx += 1;
                    } else {
                        last_key = Some(pk.to_owned());
                        result_prefixes.push(common_prefixes_list[prefix_idx].clone());
                        prefix_idx += 1;
                    }
                    total_count += 1;
                }
                (Some(ok), None) => {
                    last_key = Some(ok.to_owned());
                    result_objects.push(objects[obj_idx].clone());
                    obj_idx += 1;
                    total_count += 1;
                }
                (None, Some(pk)) => {
                    last_key = Some(pk.to_owned());
                    result_prefixes.push(common_prefixes_list[prefix_idx].clone());
                    prefix_idx += 1;
                    total_count += 1;
                }
                (None, None) => break,
            }
        }

        let is_truncated = max_keys_usize > 0 && (obj_idx < objects.len() || prefix_idx < common_prefixes_list.len());
        let key_count = try_!(i32::try_from(total_count));
        let next_continuation_token = if is_truncated {
            last_key.or_else(|| {
                let obj_key = objects.get(obj_idx).and_then(|o| o.key.clone());
                let prefix_key = common_prefixes_list.get(prefix_idx).and_then(|p| p.prefix.clone());
                match (obj_key, prefix_key) {
                    (Some(ok), Some(pk)) => Some(if ok < pk { ok } else { pk }),
                    (Some(ok), None) => Some(ok),
                    (None, Some(pk)) => Some(pk),
                    (None, None) => None,
                }
            })
        } else {
            None
        };

        let contents = result_objects.is_empty().not().then_some(result_objects);
        let common_prefixes = result_prefixes.is_empty().not().then_some(result_prefixes);

        let output = ListObjectsV2Output {
            key_count: Some(key_count),
            max_keys: Some(max_keys),
            is_truncated: Some(is_truncated),
            contents,
            common_prefixes,
            continuation_token: input.continuation_token,
            next_continuation_token,
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            name: Some(input.bucket),
            prefix: input.prefix,
            start_after: input.start_after,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        use crate::fs::ObjectAttributes;

        let mut input = req.input;
        if let Some(ref storage_class) = input.storage_class {
            let is_valid = ["STANDARD", "REDUCED_REDUNDANCY"].contains(&storage_class.as_str());
            if !is_valid {
                return Err(s3_error!(InvalidStorageClass));
            }
        }

        let PutObjectInput {
            body,
            bucket,
            key,
            metadata,
            content_length,
            content_md5,
            content_encoding,
            content_type,
            content_disposition,
            content_language,
            cache_control,
            expires,
            website_redirect_location,
            if_match,
            if_none_match,
            ..
        } = input;

        let Some(body) = body else { return Err(s3_error!(IncompleteBody)) };

        // Check conditional headers before modifying any state.
        // If-None-Match: * means "only create if the object doesn't exist".
        // If-Match: <etag> means "only overwrite if ETag matches" (CAS).
        let object_path = self.get_object_path(&bucket, &key)?;
        if let Some(ref condition) = if_none_match
            && condition.is_any()
            && object_path.exists()
        {
            return Err(s3_error!(PreconditionFailed, "Object already exists"));
        }
        if let Some(ref condition) = if_match {
            if !object_path.exists() {
                return Err(s3_error!(PreconditionFailed, "Object does not exist"));
            }
            if let ETagCondition::ETag(expected) = condition {
                let info = self.load_internal_info(&bucket, &key).await?;
                let etag_value = match info.as_ref().and_then(crate::checksum::load_e_tag) {
                    Some(v) => v,
                    None => self.get_md5_sum(&bucket, &key).await?,
                };
                if !ETag::Strong(etag_value).strong_cmp(expected) {
                    return Err(s3_error!(PreconditionFailed, "ETag does not match"));
                }
            }
        }

        let mut checksum: s3s::checksum::ChecksumHasher = default();
        if input.checksum_crc32.is_some() {
            checksum.crc32 = Some(default());
        }
        if input.checksum_crc32c.is_some() {
            checksum.crc32c = Some(default());
        }
        if input.checksum_sha1.is_some() {
            checksum.sha1 = Some(default());
        }
        if input.checksum_sha256.is_some() {
            checksum.sha256 = Some(default());
        }
        if input.checksum_crc64nvme.is_some() {
            checksum.crc64nvme = Some(default());
        }
        if let Some(alg) = input.checksum_algorithm {
            match alg.as_str() {
                ChecksumAlgorithm::CRC32 => checksum.crc32 = Some(default()),
                ChecksumAlgorithm::CRC32C => checksum.crc32c = Some(default()),
                ChecksumAlgorithm::SHA1 => checksum.sha1 = Some(default()),
                ChecksumAlgorithm::SHA256 => checksum.sha256 = Some(default()),
                ChecksumAlgorithm::CRC64NVME => checksum.crc64nvme = Some(default()),
                _ => return Err(s3_error!(NotImplemented, "Unsupported checksum algorithm")),
            }
        }

        if key.ends_with('/') {
            if let Some(len) = content_length
                && len > 0
            {
                return Err(s3_error!(UnexpectedContent, "Unexpected request body when creating a directory object."));
            }
            if self.get_bucket_path(&bucket)?.is_dir().not() {
                return Err(s3_error!(NoSuchBucket));
            }
            try_!(fs::create_dir_all(&object_path).await);
            let output = PutObjectOutput::default();
            return Ok(S3Response::new(output));
        }

        let mut md5_hash = Md5::new();
        let stream = body.inspect_ok(|bytes| {
            md5_hash.update(bytes.as_ref());
            checksum.update(bytes.as_ref());
        });

        // A small body is held in memory and written in the commit's trip through the
        // blocking pool; a larger one is streamed to a temporary file. Either goes into
        // its place in `commit_object` below, after the digests are checked.
        let (new_object, size) = match content_length {
            Some(len) if len <= SMALL_PUT_BYTES => {
                let body = collect_bytes(stream, len).await?;
                let size = body.len() as u64;
                (NewObject::InMemory { body, dest: &object_path }, size)
            }
            _ => {
                let mut file_writer = self.prepare_file_write(&object_path).await?;
                let size = copy_bytes(stream, file_writer.writer()).await?;
                // Dropping the writer on a mismatch removes its temporary file.
                check_body_length(content_length, size)?;
                (NewObject::Written(file_writer), size)
            }
        };

        let md5_sum = hex(md5_hash.finalize());

        if let Some(content_md5) = content_md5 {
            let content_md5 = base64_simd::STANDARD
                .decode_to_vec(content_md5)
                .map_err(|_| s3_error!(InvalidArgument))?;
            let content_md5 = hex(content_md5);
            if content_md5 != md5_sum {
                return Err(s3_error!(BadDigest, "content_md5 mismatch"));
            }
        }

        let checksum = checksum.finalize();

        if let Some(trailers) = req.trailing_headers
            && let Some(trailers) = trailers.take()
        {
            if let Some(crc32) = trailers.get("x-amz-checksum-crc32") {
                input.checksum_crc32 = Some(crc32.to_str().map_err(|_| s3_error!(InvalidArgument))?.to_owned());
            }
            if let Some(crc32c) = trailers.get("x-amz-checksum-crc32c") {
                input.checksum_crc32c = Some(crc32c.to_str().map_err(|_| s3_error!(InvalidArgument))?.to_owned());
            }
            if let Some(sha1) = trailers.get("x-amz-checksum-sha1") {
                input.checksum_sha1 = Some(sha1.to_str().map_err(|_| s3_error!(InvalidArgument))?.to_owned());
            }
            if let Some(sha256) = trailers.get("x-amz-checksum-sha256") {
                input.checksum_sha256 = Some(sha256.to_str().map_err(|_| s3_error!(InvalidArgument))?.to_owned());
            }
            if let Some(crc64nvme) = trailers.get("x-amz-checksum-crc64nvme") {
                input.checksum_crc64nvme = Some(crc64nvme.to_str().map_err(|_| s3_error!(InvalidArgument))?.to_owned());
            }
        }

        if checksum.checksum_crc32 != input.checksum_crc32 {
            return Err(s3_error!(
                BadDigest,
                "checksum_crc32 mismatch: expected `{}`, got `{}`",
                input.checksum_crc32.unwrap_or_default(),
                checksum.checksum_crc32.unwrap_or_default()
            ));
        }
        if checksum.checksum_crc32c != input.checksum_crc32c {
            return Err(s3_error!(BadDigest, "checksum_crc32c mismatch"));
        }
        if checksum.checksum_sha1 != input.checksum_sha1 {
            return Err(s3_error!(BadDigest, "checksum_sha1 mismatch"));
        }
        if checksum.checksum_sha256 != input.checksum_sha256 {
            return Err(s3_error!(BadDigest, "checksum_sha256 mismatch"));
        }
        if checksum.checksum_crc64nvme != input.checksum_crc64nvme {
            return Err(s3_error!(BadDigest, "checksum_crc64nvme mismatch"));
        }

        debug!(path = %object_path.display(), ?size, %md5_sum, ?checksum, "write file");

        // Save object attributes (including user metadata and standard attributes)
        let mut obj_attrs = ObjectAttributes {
            user_metadata: metadata,
            content_encoding,
            content_type,
            content_disposition,
            content_language,
            cache_control,
            expires: None,
            website_redirect_location,
        };
        obj_attrs.set_expires_timestamp(expires);

        let mut info: InternalInfo = default();
        crate::checksum::save_e_tag(&mut info, &md5_sum);
        crate::checksum::modify_internal_info(&mut info, &checksum);
        self.commit_object(new_object, &bucket, &key, &obj_attrs, &info).await?;

        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(md5_sum)),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        use crate::fs::ObjectAttributes;

        let input = req.input;
        if self.get_bucket_path(&input.bucket)?.is_dir().not() {
            return Err(s3_error!(NoSuchBucket));
        }
        let upload_id = self.create_upload_id(req.credentials.as_ref()).await?;

        // Save object attributes (including user metadata and standard attributes)
        let mut obj_attrs = ObjectAttributes {
            user_metadata: input.metadata,
            content_encoding: input.content_encoding,
            content_type: input.content_type,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: None,
            website_redirect_location: input.website_redirect_location,
        };
        obj_attrs.set_expires_timestamp(input.expires);
        self.save_object_attributes(&input.bucket, &input.key, &obj_attrs, Some(upload_id))
            .await?;

        let output = CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id.to_string()),
            ..Default::default()
        };

        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let UploadPartInput {
            body,
            content_length,
            upload_id,
            part_number,
            ..
        } = req.input;

        if part_number > 10_000 {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }

        let body = body.ok_or_else(|| s3_error!(IncompleteBody))?;

        let upload_id = parse_upload_id(&upload_id)?;
        self.check_upload(req.credentials.as_ref(), &upload_id).await?;

        let file_path = self.resolve_upload_part_path(upload_id, part_number)?;

        let mut md5_hash = Md5::new();
        let stream = body.inspect_ok(|bytes| md5_hash.update(bytes.as_ref()));

        let mut file_writer = self.prepare_file_write(&file_path).await?;
        let size = copy_bytes(stream, file_writer.writer()).await?;
        check_body_length(content_length, size)?;
        let md5_sum = hex(md5_hash.finalize());
        self.put_part_in_place(file_writer, upload_id, part_number, &md5_sum).await?;

        debug!(path = %file_path.display(), ?size, %md5_sum, "write file");

        let output = UploadPartOutput {
            e_tag: Some(ETag::Strong(md5_sum)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;

        let upload_id = parse_upload_id(&input.upload_id)?;
        let part_number = input.part_number;
        self.check_upload(req.credentials.as_ref(), &upload_id).await?;

        let (src_bucket, src_key) = match input.copy_source {
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => return Err(s3_error!(NotImplemented)),
            CopySource::Bucket { ref bucket, ref key, .. } => (bucket, key),
        };
        let src_path = self.get_object_path(src_bucket, src_key)?;
        let dst_path = self.resolve_upload_part_path(upload_id, part_number)?;

        let mut src_file = fs::File::open(&src_path).await.map_err(|e| s3_error!(e, NoSuchKey))?;
        let file_len = try_!(src_file.metadata().await).len();

        let (start, content_length) = if let Some(copy_range) = &input.copy_source_range {
            if !copy_range.starts_with("bytes=") {
                return Err(s3_error!(InvalidArgument));
            }
            let range = &copy_range["bytes=".len()..];
            let parts: Vec<&str> = range.split('-').collect();
            if parts.len() != 2 {
                return Err(s3_error!(InvalidArgument));
            }

            let start: u64 = parts[0].parse().map_err(|_| s3_error!(InvalidArgument))?;
            let end_inclusive = if parts[1].is_empty() {
                file_len.saturating_sub(1)
            } else {
                parts[1].parse().map_err(|_| s3_error!(InvalidArgument))?
            };
            if start > end_inclusive || start >= file_len || end_inclusive >= file_len {
                return Err(s3_error!(InvalidRange));
            }
            let content_length = end_inclusive - start + 1;
            (start, content_length)
        } else {
            (0, file_len)
        };
        let content_length_usize = try_!(usize::try_from(content_length));

        let _ = try_!(src_file.seek(io::SeekFrom::Start(start)).await);
        let body = StreamingBlob::wrap(bytes_stream(
            ReaderStream::with_capacity(src_file, read_size(content_length_usize)),
            content_length_usize,
        ));

        let mut md5_hash = Md5::new();
        let stream = body.inspect_ok(|bytes| md5_hash.update(bytes.as_ref()));

        let mut file_writer = self.prepare_file_write(&dst_path).await?;
        let size = copy_bytes(stream, file_writer.writer()).await?;
        let md5_sum = hex(md5_hash.finalize());
        self.put_part_in_place(file_writer, upload_id, part_number, &md5_sum).await?;

        debug!(path = %dst_path.display(), ?size, %md5_sum, "write file");

        let output = UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(md5_sum)),
                ..Default::default()
            }),
            ..Default::default()
        };

        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let ListPartsInput {
            bucket, key, upload_id, ..
        } = req.input;

        let upload_uuid = parse_upload_id(&upload_id)?;
        self.check_upload(req.credentials.as_ref(), &upload_uuid).await?;

        // One trip through the blocking pool for the whole listing. Each part's ETag is
        // the MD5 UploadPart kept beside it (removed before the part is replaced, so it
        // is current whenever it exists), or the part's own, hashed here.
        let root = self.root.clone();
        let upload_files = format!(".upload_id-{upload_id}");
        let prefix = format!("{upload_files}.part-");
        let listing = tokio::task::spawn_blocking(move || -> io::Result<Vec<Part>> {
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(&root)? {
                let entry = entry?;
                let file_name = entry.file_name();
                let Some(number) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
                let Ok(part_number) = number.parse::<i32>() else { continue };
                let meta = entry.metadata()?;
                if meta.is_file().not() {
                    continue;
                }
                let kept = std::fs::read_to_string(root.join(format!("{upload_files}.md5-{part_number}")));
                let md5 = match kept.ok().as_deref().and_then(parse_md5_hex) {
                    Some(md5) => md5,
                    None => md5_of_file(&entry.path())?,
                };
                parts.push(Part {
                    e_tag: Some(ETag::Strong(hex(md5))),
                    last_modified: Some(Timestamp::from(meta.modified()?)),
                    part_number: Some(part_number),
                    size: Some(i64::try_from(meta.len()).unwrap_or(i64::MAX)),
                    ..Default::default()
                });
            }
            Ok(parts)
        });
        let mut parts = match listing.await {
            Ok(listed) => try_!(listed),
            Err(e) => return Err(s3_error!(e, InternalError)),
        };
        parts.sort_by_key(|p| p.part_number);

        let output = ListPartsOutput {
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(upload_id),
            parts: Some(parts),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let CompleteMultipartUploadInput {
            multipart_upload,
            bucket,
            key,
            upload_id,
            if_match,
            if_none_match,
            ..
        } = req.input;

        let Some(multipart_upload) = multipart_upload else { return Err(s3_error!(InvalidPart)) };

        let parts_count = multipart_upload.parts.as_ref().map_or(0, Vec::len);
        if parts_count == 0 {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }

        let upload_id = parse_upload_id(&upload_id)?;
        self.check_upload(req.credentials.as_ref(), &upload_id).await?;

        // Check conditional headers before modifying any state
        let object_path = self.get_object_path(&bucket, &key)?;
        if let Some(ref condition) = if_none_match
            && condition.is_any()
            && object_path.exists()
        {
            return Err(s3_error!(PreconditionFailed, "Object already exists"));
        }
        if let Some(ref condition) = if_match {
            if condition.is_any() {
                // If-Match: * — require the object to exist
                if !object_path.exists() {
                    return Err(s3_error!(PreconditionFailed, "Object does not exist"));
                }
            } else if let Some(expected_etag) = condition.as_etag() {
                if object_path.exists() {
                    let info = self.load_internal_info(&bucket, &key).await?;
                    let etag_value = match info.as_ref().and_then(crate::checksum::load_e_tag) {
                        Some(e_tag) => e_tag,
                        None => self.get_md5_sum(&bucket, &key).await?,
                    };
                    let existing_etag = ETag::Strong(etag_value);
                    if !expected_etag.strong_cmp(&existing_etag) {
                        return Err(s3_error!(PreconditionFailed, "ETag does not match"));
                    }
                } else {
                    return Err(s3_error!(PreconditionFailed, "Object does not exist"));
                }
            }
        }

        // Everything is checked before anything changes: a refused list leaves the
        // upload as it was, for the client to complete correctly.
        let mut listed = Vec::with_capacity(parts_count);
        for part in multipart_upload.parts.into_iter().flatten() {
            let number = part
                .part_number
                .ok_or_else(|| s3_error!(InvalidRequest, "missing part number"))?;
            let part_path = self.resolve_upload_part_path(upload_id, number)?;
            let md5_path = self.resolve_upload_part_md5_path(upload_id, number)?;
            let e_tag = part.e_tag.as_ref().map(|t| t.value().to_ascii_lowercase());
            listed.push(ListedPart {
                number,
                e_tag,
                part_path,
                md5_path,
            });
        }
        let part_paths = listed.iter().map(|p| p.part_path.clone()).collect();
        let md5s = match tokio::task::spawn_blocking(move || check_listed_parts(&listed)).await {
            Ok(checked) => checked?,
            Err(e) => return Err(s3_error!(e, InternalError)),
        };

        // The object: the parts concatenated, with the upload's attributes and the
        // multipart ETag (MD5 of the parts' MD5s, suffixed with their count), put in
        // place in one step. Nothing of an earlier object at this key carries over.
        let object = self.concat_files(part_paths, &object_path).await?;
        let mut etag_hash = Md5::new();
        for md5 in &md5s {
            etag_hash.update(md5);
        }
        let e_tag = format!("{}-{}", hex(etag_hash.finalize()), md5s.len());
        debug!(?e_tag, path = %object_path.display(), "multipart etag");
        let attrs = match self.load_object_attributes(&bucket, &key, Some(upload_id)).await {
            Ok(Some(attrs)) => attrs,
            _ => crate::fs::ObjectAttributes::default(),
        };
        let mut info = InternalInfo::default();
        crate::checksum::save_e_tag(&mut info, &e_tag);
        self.commit_object(object, &bucket, &key, &attrs, &info).await?;

        // The upload is done: its id, attributes and files go, parts not listed too.
        self.delete_upload_id(&upload_id).await?;
        let _ = self.delete_metadata(&bucket, &key, Some(upload_id));
        if let Err(e) = self.remove_upload_files(&upload_id).await {
            debug!(%upload_id, error = ?e, "leftover part files of a completed upload");
        }

        let output = CompleteMultipartUploadOutput {
            // TODO: better example of AWS-like keep-alive behavior
            future: Some(Box::pin(async move {
                Ok(CompleteMultipartUploadOutput {
                    bucket: Some(bucket),
                    key: Some(key),
                    e_tag: Some(ETag::Strong(e_tag)),
                    ..Default::default()
                })
            })),
            ..Default::default()
        };

        debug!(?output);

        Ok(S3Response::new(output))
    }

    #[tracing::instrument]
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let AbortMultipartUploadInput {
            bucket, key, upload_id, ..
        } = req.input;

        let upload_id = parse_upload_id(&upload_id)?;
        self.check_upload(req.credentials.as_ref(), &upload_id).await?;

        let _ = self.delete_metadata(&bucket, &key, Some(upload_id));

        self.remove_upload_files(&upload_id).await?;

        self.delete_upload_id(&upload_id).await?;

        debug!(bucket = %bucket, key = %key, upload_id = %upload_id, "multipart upload aborted");

        Ok(S3Response::new(AbortMultipartUploadOutput { ..Default::default() }))
    }
}

impl FileSystem {
    /// Puts a written part in place with its MD5 kept beside it, for
    /// CompleteMultipartUpload, which otherwise reads every part again to hash it (it
    /// trusts the kept MD5 only where it equals the ETag the client lists). The old MD5
    /// goes before the part is replaced, so a kept MD5 never describes other content.
    async fn put_part_in_place(
        &self,
        part: crate::fs::FileWriter<'_>,
        upload_id: Uuid,
        part_number: i32,
        md5_sum: &str,
    ) -> S3Result<()> {
        let md5_path = self.resolve_upload_part_md5_path(upload_id, part_number)?;
        match fs::remove_file(&md5_path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(s3_error!(e, InternalError)),
        }
        part.done().await?;
        try_!(fs::write(&md5_path, md5_sum).await);
        Ok(())
    }

    /// The upload exists and is the requester's; S3's answers otherwise.
    async fn check_upload(&self, cred: Option<&s3s::auth::Credentials>, upload_id: &Uuid) -> S3Result<()> {
        if self.upload_exists(upload_id)?.not() {
            return Err(s3_error!(NoSuchUpload));
        }
        if self.verify_upload_id(cred, upload_id).await?.not() {
            return Err(s3_error!(AccessDenied));
        }
        Ok(())
    }

    async fn list_objects_recursive(&self, bucket_root: &Path, prefix: &str, objects: &mut Vec<Object>) -> S3Result<()> {
        let mut dir_queue: VecDeque<PathBuf> = default();
        dir_queue.push_back(bucket_root.to_owned());
        let prefix_is_empty = prefix.is_empty();

        while let Some(dir) = dir_queue.pop_front() {
            let mut iter = try_!(fs::read_dir(dir).await);
            while let Some(entry) = try_!(iter.next_entry().await) {
                let file_type = try_!(entry.file_type().await);
                if file_type.is_dir() {
                    dir_queue.push_back(entry.path());
                } else {
                    let file_path = entry.path();
                    let key = try_!(file_path.strip_prefix(bucket_root));
                    let Some(key_str) = normalize_path(key, "/") else {
                        continue;
                    };

                    if !prefix_is_empty && !key_str.starts_with(prefix) {
                        continue;
                    }

                    let metadata = try_!(entry.metadata().await);
                    let last_modified = Timestamp::from(try_!(metadata.modified()));
                    let size = metadata.len();

                    let object = Object {
                        key: Some(key_str),
                        last_modified: Some(last_modified),
                        size: Some(try_!(i64::try_from(size))),
                        ..Default::default()
                    };
                    objects.push(object);
                }
            }
        }

        Ok(())
    }

    async fn list_objects_with_delimiter(
        &self,
        bucket_root: &Path,
        prefix: &str,
        delimiter: &str,
        objects: &mut Vec<Object>,
        common_prefixes: &mut std::collections::BTreeSet<String>,
    ) -> S3Result<()> {
        // For delimiter-based listing, we need to recursively scan all files
        // but group them according to the delimiter rules
        let mut dir_queue: VecDeque<PathBuf> = default();
        dir_queue.push_back(bucket_root.to_owned());
        let prefix_is_empty = prefix.is_empty();

        while let Some(dir) = dir_queue.pop_front() {
            let mut iter = try_!(fs::read_dir(dir).await);

            while let Some(entry) = try_!(iter.next_entry().await) {
                let file_type = try_!(entry.file_type().await);
                let entry_path = entry.path();

                // Calculate the key relative to the bucket root
                let key = try_!(entry_path.strip_prefix(bucket_root));
                let Some(key_str) = normalize_path(key, "/") else {
                    continue;
                };

                // Skip if doesn't match prefix
                if !prefix_is_empty && !key_str.starts_with(prefix) {
                    // For directories, also skip if they don't have potential to contain matching files
                    if file_type.is_dir() && !prefix.starts_with(&key_str) && !key_str.starts_with(prefix) {
                        continue;
                    }
                    if file_type.is_file() {
                        continue;
                    }
                }

                if file_type.is_dir() {
                    // Continue scanning this directory
                    dir_queue.push_back(entry_path);
                } else {
                    // For files, determine if they should be listed directly or as common prefixes
                    let remaining = &key_str[prefix.len()..];

                    if remaining.contains(delimiter) {
                        // File is in a subdirectory, add the subdirectory as common prefix
                        if let Some(delimiter_pos) = remaining.find(delimiter) {
                            let mut next_prefix = String::with_capacity(prefix.len() + delimiter_pos + 1);
                            next_prefix.push_str(prefix);
                            next_prefix.push_str(&remaining[..=delimiter_pos]);
                            common_prefixes.insert(next_prefix);
                        }
                    } else {
                        // File is at the current level, include it in objects
                        let metadata = try_!(entry.metadata().await);
                        let last_modified = Timestamp::from(try_!(metadata.modified()));
                        let size = metadata.len();

                        let object = Object {
                            key: Some(key_str),
                            last_modified: Some(last_modified),
                            size: Some(try_!(i64::try_from(size))),
                            ..Default::default()
                        };
                        objects.push(object);
                    }
                }
            }
        }

        Ok(())
    }
}

/// Reads an object's file and its attributes with `read`, which gives `None` when they
/// do not belong together (`crate::fs::sidecars_match`), until they do: a read that raced a
/// commit of the same key is made again. Readers take no lock, but one that keeps
/// racing writes of its key (overwrites back to back can outpace any number of tries)
/// makes its last read holding the key's write lock, so it ends. A mismatch then is an
/// object whose commit failed part-way, which no read can make whole.
fn read_consistent<T>(lock: &crate::fs::KeyLock, mut read: impl FnMut(Naming) -> S3Result<Option<T>>) -> S3Result<T> {
    const UNLOCKED_TRIES: u32 = 3;
    for attempt in 0..UNLOCKED_TRIES {
        if let Some(value) = read(Naming::Exact)? {
            return Ok(value);
        }
        debug!(attempt, "object and attributes from different writes; reading again");
    }
    let _no_writes = lock.hold();
    read(Naming::Inode)?
        .ok_or_else(|| s3_error!(InternalError, "The object's data and its attributes are from different writes"))
}

/// What CopyObject takes of its source, from one write of it ([`open_copy_source`]).
struct CopySourceRead {
    /// Opened at the start: the body copied is the one the rest describes, even if a
    /// write replaces the source meanwhile.
    file: std::fs::File,
    object_file: crate::fs::ObjectFile,
    e_tag: ETag,
    attributes: Option<crate::fs::ObjectAttributes>,
    info: Option<InternalInfo>,
}

/// Opens a copy's source on a blocking-pool thread: the file, then its attributes and
/// internal info, `None` when those are not the file's (`crate::fs::sidecars_match`,
/// for `read_consistent`); its ETag, stored or else hashed
/// through the opened file; then the copy-source conditions, a read's with 412 where a
/// read answers 304. Before, the source's file time, internal info, MD5, attributes and
/// body were each read in a step of its own, so a copy racing a write of its source
/// could store one write's body under the other's ETag and attributes.
fn open_copy_source(
    path: &Path,
    attributes_path: &Path,
    info_path: &Path,
    conditions: &ReadConditions,
    naming: Naming,
) -> S3Result<Option<CopySourceRead>> {
    use std::io::Seek;

    let mut file = std::fs::File::open(path).map_err(|e| s3_error!(e, NoSuchKey))?;
    let file_metadata = try_!(file.metadata());
    object_len(&file_metadata, false)?;
    let (attributes, info) = FileSystem::read_attributes_blocking(attributes_path, info_path)?;
    if !crate::fs::sidecars_match(path, &file_metadata, info.as_ref(), naming) {
        return Ok(None);
    }
    let e_tag = object_e_tag(info.as_ref(), false, || {
        let md5 = md5_of_reader(&mut file)?;
        file.rewind()?;
        Ok(md5)
    })?;
    if !matches!(conditions.evaluate(&e_tag, try_!(file_metadata.modified())), ReadDecision::Serve) {
        return Err(s3_error!(PreconditionFailed));
    }
    let object_file = crate::fs::ObjectFile::of(&file_metadata);
    Ok(Some(CopySourceRead { file, object_file, e_tag, attributes, info }))
}

/// An upload id this backend could have issued, or `NoSuchUpload`: S3 answers any id it
/// does not know so, however it is spelled (upstream answered `InvalidRequest` to ids
/// that are not UUIDs, and `NoSuchUpload` only in ListParts).
fn parse_upload_id(upload_id: &str) -> S3Result<Uuid> {
    Uuid::parse_str(upload_id).map_err(|_| s3_error!(NoSuchUpload))
}

/// One read for a small object, 256 KiB reads for a large one: each read is a round trip
/// through tokio's blocking pool, so 4 KiB reads cost more than the copying.
fn read_size(content_length: usize) -> usize {
    content_length.clamp(1, 256 << 10)
}

/// The size of the object at a path, for GetObject and HeadObject. A directory is an
/// empty object under a key ending in `/` (PutObject makes one so) and no object under
/// any other key; a file is none under a key ending in `/`.
fn object_len(metadata: &std::fs::Metadata, directory_object: bool) -> S3Result<u64> {
    match (metadata.is_dir(), directory_object) {
        (false, false) => Ok(metadata.len()),
        (true, true) => Ok(0),
        _ => Err(s3_error!(NoSuchKey)),
    }
}

/// What GetObject learns before its body's second chunk; see [`open_for_get`].
struct OpenedForGet {
    /// Positioned after the first chunk.
    file: std::fs::File,
    file_len: u64,
    last_modified: SystemTime,
    e_tag: ETag,
    content_length: u64,
    content_range: Option<String>,
    first_chunk: bytes::Bytes,
    attributes: Option<crate::fs::ObjectAttributes>,
    info: Option<InternalInfo>,
}

/// Opens an object for GetObject on a blocking-pool thread: the file, its size and
/// modification time, its attributes and internal info, `None` when those are not the
/// file's (`crate::fs::sidecars_match`, for `read_consistent`); then, as S3 orders
/// them, the read conditions (412 or 304) before the range (416); then up to
/// [`read_size`] bytes of the body, from the range's start. A refusal reads no body.
fn open_for_get(
    object_path: &Path,
    directory_object: bool,
    range: Option<Range>,
    conditions: &ReadConditions,
    attributes_path: &Path,
    info_path: &Path,
    naming: Naming,
) -> S3Result<Option<OpenedForGet>> {
    use std::io::{Read, Seek};

    let mut file = std::fs::File::open(object_path).map_err(|e| s3_error!(e, NoSuchKey))?;
    let file_metadata = try_!(file.metadata());
    let last_modified = try_!(file_metadata.modified());
    let file_len = object_len(&file_metadata, directory_object)?;

    let (attributes, info) = FileSystem::read_attributes_blocking(attributes_path, info_path)?;
    // Sidecars from another write are read again before anything is decided on them.
    if !crate::fs::sidecars_match(object_path, &file_metadata, info.as_ref(), naming) {
        return Ok(None);
    }
    // Hashed, if it must be, through the file opened here, then read from the start.
    let e_tag = object_e_tag(info.as_ref(), directory_object, || {
        let md5 = md5_of_reader(&mut file)?;
        file.rewind()?;
        Ok(md5)
    })?;
    conditions.check(&e_tag, last_modified)?;

    let (content_length, content_range) = match range {
        None => (file_len, None),
        Some(range) => {
            let file_range = range.check(file_len)?;
            let content_length = file_range.end - file_range.start;
            let content_range = fmt_content_range(file_range.start, file_range.end - 1, file_len);
            (content_length, Some(content_range))
        }
    };
    match range {
        Some(Range::Int { first, .. }) => {
            try_!(file.seek(io::SeekFrom::Start(first)));
        }
        Some(Range::Suffix { length }) => {
            let neg_offset = length.numeric_cast::<i64>().neg();
            try_!(file.seek(io::SeekFrom::End(neg_offset)));
        }
        None => {}
    }

    let content_length_usize = try_!(usize::try_from(content_length));
    let first_len = content_length_usize.min(read_size(content_length_usize));
    let mut first_chunk = Vec::with_capacity(first_len);
    // A file cut short since its size was read gives a short chunk, and the body ends
    // early, as a stream over the file would.
    try_!((&mut file).take(first_len as u64).read_to_end(&mut first_chunk));

    let opened = OpenedForGet {
        file,
        file_len,
        last_modified,
        e_tag,
        content_length,
        content_range,
        first_chunk: first_chunk.into(),
        attributes,
        info,
    };
    Ok(Some(opened))
}

/// One part of a CompleteMultipartUpload list, with its files.
struct ListedPart {
    number: i32,
    /// The ETag the client listed, unquoted, lowercase.
    e_tag: Option<String>,
    part_path: PathBuf,
    md5_path: PathBuf,
}

/// Checks a CompleteMultipartUpload list as S3 does, changing nothing: part numbers
/// ascending (gaps allowed), every part uploaded, each part's ETag as listed, every part
/// but the last at least 5 MiB. Returns each part's MD5: the one UploadPart kept when it
/// equals the listed ETag, else the file's, hashed here.
fn check_listed_parts(listed: &[ListedPart]) -> S3Result<Vec<[u8; 16]>> {
    const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
    let mut md5s = Vec::with_capacity(listed.len());
    let mut previous = 0;
    for (i, part) in listed.iter().enumerate() {
        if part.number <= previous {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number."
            ));
        }
        previous = part.number;
        let not_found = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let size = match std::fs::metadata(&part.part_path) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return Err(not_found()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(s3_error!(e, InternalError)),
        };
        let kept = std::fs::read_to_string(&part.md5_path).ok();
        let md5 = match (kept.as_deref().and_then(parse_md5_hex), &part.e_tag) {
            (Some(md5), Some(listed)) if hex(md5) == *listed => md5,
            _ => md5_of_file(&part.part_path).map_err(|e| s3_error!(e, InternalError))?,
        };
        if let Some(listed) = &part.e_tag
            && hex(md5) != *listed
        {
            return Err(not_found());
        }
        if i + 1 < listed.len() && size < MIN_PART_SIZE {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size."
            ));
        }
        md5s.push(md5);
    }
    Ok(md5s)
}

/// An object's ETag: the one its internal info keeps; for an object written without one
/// (a file placed in the directory by hand), the MD5 of its body from `hash_body`; for a
/// directory object, the MD5 of nothing.
fn object_e_tag(
    info: Option<&InternalInfo>,
    directory_object: bool,
    hash_body: impl FnOnce() -> io::Result<[u8; 16]>,
) -> S3Result<ETag> {
    let md5 = match info.and_then(crate::checksum::load_e_tag) {
        Some(e_tag) => return Ok(ETag::Strong(e_tag)),
        None if directory_object => Md5::new().finalize(),
        None => try_!(hash_body()),
    };
    Ok(ETag::Strong(hex(md5)))
}

fn md5_of_file(path: &Path) -> io::Result<[u8; 16]> {
    md5_of_reader(&mut std::fs::File::open(path)?)
}

fn md5_of_reader(reader: &mut impl std::io::Read) -> io::Result<[u8; 16]> {
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(md5.finalize());
        }
        md5.update(&buf[..n]);
    }
}

fn parse_md5_hex(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
