use crate::error::*;
use crate::utils::hex;

use s3s::auth::Credentials;
use sealgate_md5::Md5;
use s3s::dto;
use s3s::dto::PartNumber;

use std::env;
use std::ops::Not;
use std::path::{Component, Path, PathBuf};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::fs;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use uuid::Uuid;

#[derive(Debug)]
pub struct FileSystem {
    pub(crate) root: PathBuf,
    tmp_file_counter: AtomicU64,
    key_locks: Arc<KeyLocks>,
}

/// Writers of one key take turns: an object is three files, and a commit and a delete
/// of the same key interleaving their renames and removals could leave one write's
/// body with the other's attributes, or a new body with none. Readers take no lock (the
/// file order and `sidecars_match` keep them consistent). Striped by a hash of the
/// bucket and key, so writers of different keys rarely wait on each other.
#[derive(Debug)]
struct KeyLocks {
    stripes: [Mutex<()>; 64],
    hasher: std::hash::RandomState,
}

impl KeyLocks {
    fn new() -> Self {
        Self {
            stripes: std::array::from_fn(|_| Mutex::new(())),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The stripe of a key, worked out before its writer leaves for the blocking pool.
    fn stripe(&self, bucket: &str, key: &str) -> usize {
        (self.hasher.hash_one((bucket, key)) % self.stripes.len() as u64) as usize
    }

    /// Held while one key's files change. A poisoned stripe is still a lock: the
    /// files it guards are consistent between system calls, whatever panicked.
    fn lock(&self, stripe: usize) -> MutexGuard<'_, ()> {
        self.stripes[stripe].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) type InternalInfo = serde_json::Map<String, serde_json::Value>;

/// The internal-info keys naming the object file the info was committed with
/// (`FileSystem::commit_object`): its inode and its modification time in nanoseconds.
/// An object is three files, put in place one after another; a reader that finds
/// another file here than the one it opened raced a commit and reads again
/// (`sidecars_match`). The inode alone is not enough: a file system may give a new file
/// the inode number of one just replaced (ext4 does at once), so a commit also gives
/// its file a modification time no other commit of this process gives (`unique_stamp`).
const OBJECT_INODE: &str = "object_inode";
const OBJECT_MODIFIED: &str = "object_modified_ns";

/// Which file an object's body is: its inode and modification time (nanoseconds since
/// the epoch, as the file system keeps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ObjectFile {
    inode: u64,
    modified_ns: Option<u64>,
}

impl ObjectFile {
    pub(crate) fn of(metadata: &std::fs::Metadata) -> ObjectFile {
        ObjectFile {
            inode: object_inode(metadata),
            modified_ns: metadata.modified().ok().and_then(nanos_since_epoch),
        }
    }

    /// The file an internal info was committed with; info from before the modification
    /// time was recorded names the inode only.
    fn named_in(info: &InternalInfo) -> Option<ObjectFile> {
        Some(ObjectFile {
            inode: info.get(OBJECT_INODE).and_then(serde_json::Value::as_u64)?,
            modified_ns: info.get(OBJECT_MODIFIED).and_then(serde_json::Value::as_u64),
        })
    }

    fn record_in(self, info: &mut InternalInfo) {
        info.insert(OBJECT_INODE.to_owned(), self.inode.into());
        match self.modified_ns {
            Some(ns) => info.insert(OBJECT_MODIFIED.to_owned(), ns.into()),
            None => info.remove(OBJECT_MODIFIED),
        };
    }
}

/// A modification time for a newly committed file that no earlier commit of this
/// process got: now, or a nanosecond past the last one handed out.
fn unique_stamp() -> std::time::SystemTime {
    use std::sync::atomic::AtomicU64;
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = nanos_since_epoch(std::time::SystemTime::now()).unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return std::time::UNIX_EPOCH + std::time::Duration::from_nanos(next),
            Err(seen) => last = seen,
        }
    }
}

fn nanos_since_epoch(t: std::time::SystemTime) -> Option<u64> {
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// Gives the file `file` a modification time no other commit got, and returns its
/// metadata, with the time as the file system kept it.
fn stamp(file: &std::fs::File) -> Result<std::fs::Metadata> {
    file.set_times(std::fs::FileTimes::new().set_modified(unique_stamp()))?;
    Ok(file.metadata()?)
}

/// How closely an internal info must name the object file a reader opened.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Naming {
    /// While writes of the key may run: the inode and the commit's modification time,
    /// since a new file may have the inode number of the one it replaced.
    Exact,
    /// Holding the key's write lock, when no commit runs: the inode. The file is the
    /// committed one, even if edited in place since (its time changed), and reads as it
    /// now is.
    Inode,
}

/// Whether the internal info read after opening (or `stat`ing) the object file at
/// `path` belongs to that file. `commit_object` renames the internal info into place
/// first, then the attributes, then the object file, and readers read the object file,
/// then the attributes, then the internal info: so attributes newer than the file imply
/// an internal info newer than it too, and any mix shows as another file named in the
/// info. `delete_object_files` removes the object file first, then the internal info,
/// then the attributes: so a reader that finds no internal info (info written before
/// this check existed has none either) checks that the file is still in its place, and
/// one that opened a file deleted since reads again and finds no object.
pub(crate) fn sidecars_match(path: &Path, object: &std::fs::Metadata, info: Option<&InternalInfo>, naming: Naming) -> bool {
    let opened = ObjectFile::of(object);
    match info.and_then(ObjectFile::named_in) {
        Some(named) => {
            named.inode == opened.inode
                && (matches!(naming, Naming::Inode) || named.modified_ns.is_none_or(|ns| Some(ns) == opened.modified_ns))
        }
        None => std::fs::symlink_metadata(path).is_ok_and(|now| object_inode(&now) == opened.inode),
    }
}

#[cfg(unix)]
fn object_inode(metadata: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn object_inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Stores standard object attributes alongside user metadata
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ObjectAttributes {
    /// User-defined metadata (x-amz-meta-*)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<dto::Metadata>,

    /// Standard object attributes
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_redirect_location: Option<String>,
}

impl ObjectAttributes {
    /// Convert expires Timestamp to String for storage
    pub fn set_expires_timestamp(&mut self, expires: Option<dto::Timestamp>) {
        self.expires = expires.and_then(|ts| {
            let mut buf = Vec::new();
            match ts.format(dto::TimestampFormat::DateTime, &mut buf) {
                Ok(()) => Some(String::from_utf8_lossy(&buf).into_owned()),
                Err(_) => None,
            }
        });
    }

    /// Parse expires String back to Timestamp
    pub fn get_expires_timestamp(&self) -> Option<dto::Timestamp> {
        self.expires
            .as_ref()
            .and_then(|s| dto::Timestamp::parse(dto::TimestampFormat::DateTime, s).ok())
    }
}

fn clean_old_tmp_files(root: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => Ok(entries),
        Err(ref io_err) if io_err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(io_err) => Err(io_err),
    }?;
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        // See `FileSystem::prepare_file_write`
        if file_name.starts_with(".tmp.") && file_name.ends_with(".internal.part") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl FileSystem {
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = env::current_dir()?.join(root).canonicalize()?;
        clean_old_tmp_files(&root)?;
        let tmp_file_counter = AtomicU64::new(0);
        Ok(Self {
            root,
            tmp_file_counter,
            key_locks: Arc::new(KeyLocks::new()),
        })
    }

    /// `path` (relative: a bucket, a bucket and key, or a name of this store's own) under
    /// the root. Worked out from the path's text alone: the root is canonical already,
    /// and asking the kernel for the working directory, twice per path as the upstream
    /// resolver did, was a dozen system calls per PUT. A path that would leave its
    /// directory (absolute, or with a `..` component) is refused with a 400: such a key
    /// cannot be a file here without landing on another key's, or another bucket's. The
    /// upstream resolver only kept paths inside the root, so `../k` wrote `k` beside the
    /// buckets.
    pub(crate) fn resolve_abs_path(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        let mut out = PathBuf::with_capacity(self.root.as_os_str().len() + 1 + path.as_os_str().len());
        out.push(&self.root);
        for component in path.components() {
            match component {
                Component::Normal(name) => out.push(name),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(UnstorableKey.into()),
            }
        }
        Ok(out)
    }

    pub(crate) fn resolve_upload_part_path(&self, upload_id: Uuid, part_number: PartNumber) -> Result<PathBuf> {
        self.resolve_abs_path(format!("{}part-{part_number}", upload_parts_prefix(&upload_id)))
    }

    /// Where UploadPart keeps a part's MD5 (hex), so that CompleteMultipartUpload need
    /// not read the part again for its ETag. Not `.part-…`: ListParts takes every such
    /// name for a part; abort removes it with the upload's other files.
    pub(crate) fn resolve_upload_part_md5_path(&self, upload_id: Uuid, part_number: PartNumber) -> Result<PathBuf> {
        self.resolve_abs_path(format!("{}md5-{part_number}", upload_parts_prefix(&upload_id)))
    }

    /// resolve object path under the virtual root
    pub(crate) fn get_object_path(&self, bucket: &str, key: &str) -> Result<PathBuf> {
        let dir = Path::new(&bucket);
        let file_path = Path::new(&key);
        self.resolve_abs_path(dir.join(file_path))
    }

    /// resolve bucket path under the virtual root
    pub(crate) fn get_bucket_path(&self, bucket: &str) -> Result<PathBuf> {
        let dir = Path::new(&bucket);
        self.resolve_abs_path(dir)
    }

    /// resolve metadata path under the virtual root (custom format)
    pub(crate) fn get_metadata_path(&self, bucket: &str, key: &str, upload_id: Option<Uuid>) -> Result<PathBuf> {
        let u_ext = upload_id.map(|u| format!(".upload-{u}")).unwrap_or_default();
        let file_path = format!("{}object-{}{u_ext}.metadata.json", bucket_files_prefix(bucket), object_name(key));
        self.resolve_abs_path(file_path)
    }

    pub(crate) fn get_internal_info_path(&self, bucket: &str, key: &str) -> Result<PathBuf> {
        let file_path = format!("{}object-{}.internal.json", bucket_files_prefix(bucket), object_name(key));
        self.resolve_abs_path(file_path)
    }

    /// load object attributes from fs (with backward compatibility)
    pub(crate) async fn load_object_attributes(
        &self,
        bucket: &str,
        key: &str,
        upload_id: Option<Uuid>,
    ) -> Result<Option<ObjectAttributes>> {
        let path = self.get_metadata_path(bucket, key, upload_id)?;
        if path.exists().not() {
            return Ok(None);
        }
        let content = fs::read(&path).await?;
        Ok(parse_object_attributes(&content))
    }

    /// save object attributes to fs
    pub(crate) async fn save_object_attributes(
        &self,
        bucket: &str,
        key: &str,
        attrs: &ObjectAttributes,
        upload_id: Option<Uuid>,
    ) -> Result<()> {
        let path = self.get_metadata_path(bucket, key, upload_id)?;
        let content = serde_json::to_vec(attrs)?;
        let mut file_writer = self.prepare_file_write(&path).await?;
        file_writer.writer().write_all(&content).await?;
        file_writer.writer().flush().await?;
        file_writer.done().await?;
        Ok(())
    }

    /// remove metadata from fs
    pub(crate) fn delete_metadata(&self, bucket: &str, key: &str, upload_id: Option<Uuid>) -> Result<()> {
        let path = self.get_metadata_path(bucket, key, upload_id)?;
        std::fs::remove_file(path)?;
        Ok(())
    }

    pub(crate) async fn load_internal_info(&self, bucket: &str, key: &str) -> Result<Option<InternalInfo>> {
        let path = self.get_internal_info_path(bucket, key)?;
        if path.exists().not() {
            return Ok(None);
        }
        let content = fs::read(&path).await?;
        let map = serde_json::from_slice(&content)?;
        Ok(Some(map))
    }

    /// Reads the object attributes and the internal info at these paths, from a
    /// blocking-pool thread (GetObject's one round trip there); a missing file is `None`.
    pub(crate) fn read_attributes_blocking(
        attributes: &Path,
        internal_info: &Path,
    ) -> Result<(Option<ObjectAttributes>, Option<InternalInfo>)> {
        let attrs = read_if_exists(attributes)?.and_then(|c| parse_object_attributes(&c));
        let info = match read_if_exists(internal_info)? {
            Some(c) => Some(serde_json::from_slice(&c)?),
            None => None,
        };
        Ok((attrs, info))
    }

    /// get md5 sum
    pub(crate) async fn get_md5_sum(&self, bucket: &str, key: &str) -> Result<String> {
        let object_path = self.get_object_path(bucket, key)?;
        let mut file = File::open(&object_path).await?;
        let mut buf = vec![0; 65536];
        let mut md5_hash = Md5::new();
        loop {
            let nread = file.read(&mut buf).await?;
            if nread == 0 {
                break;
            }
            md5_hash.update(&buf[..nread]);
        }
        Ok(hex(md5_hash.finalize()))
    }

    fn get_upload_info_path(&self, upload_id: &Uuid) -> Result<PathBuf> {
        self.resolve_abs_path(upload_record_name(upload_id))
    }

    pub(crate) async fn create_upload_id(&self, cred: Option<&Credentials>) -> Result<Uuid> {
        let upload_id = Uuid::new_v4();
        let upload_info_path = self.get_upload_info_path(&upload_id)?;

        let ak: Option<&str> = cred.map(|c| c.access_key.as_str());

        let content = serde_json::to_vec(&ak)?;
        let mut file_writer = self.prepare_file_write(&upload_info_path).await?;
        file_writer.writer().write_all(&content).await?;
        file_writer.writer().flush().await?;
        file_writer.done().await?;

        Ok(upload_id)
    }

    pub(crate) async fn verify_upload_id(&self, cred: Option<&Credentials>, upload_id: &Uuid) -> Result<bool> {
        let upload_info_path = self.get_upload_info_path(upload_id)?;
        if upload_info_path.exists().not() {
            return Ok(false);
        }

        let content = fs::read(&upload_info_path).await?;
        let ak: Option<String> = serde_json::from_slice(&content)?;

        Ok(ak.as_deref() == cred.map(|c| c.access_key.as_str()))
    }

    pub(crate) fn upload_exists(&self, upload_id: &Uuid) -> Result<bool> {
        Ok(self.get_upload_info_path(upload_id)?.exists())
    }

    /// Removes every file an upload left in the root (its parts and their kept MD5s),
    /// in one trip through the blocking pool.
    pub(crate) async fn remove_upload_files(&self, upload_id: &Uuid) -> Result<()> {
        let root = self.root.clone();
        let prefix = upload_parts_prefix(upload_id);
        let job = tokio::task::spawn_blocking(move || -> Result<()> {
            for name in root_file_names(&root)?.iter().filter(|name| name.starts_with(&prefix)) {
                std::fs::remove_file(root.join(name))?;
            }
            Ok(())
        });
        job.await?
    }

    pub(crate) async fn delete_upload_id(&self, upload_id: &Uuid) -> Result<()> {
        let upload_info_path = self.get_upload_info_path(upload_id)?;
        if upload_info_path.exists() {
            fs::remove_file(&upload_info_path).await?;
        }
        Ok(())
    }

    /// Write to the filesystem atomically.
    /// This is done by first writing to a temporary location and then moving the file.
    fn next_tmp_path(&self) -> Result<PathBuf> {
        let tmp_name = format!(".tmp.{}.internal.part", self.tmp_file_counter.fetch_add(1, Ordering::SeqCst));
        self.resolve_abs_path(tmp_name)
    }

    /// Puts a new object in place with its attributes and internal info, in one trip
    /// through the blocking pool (it was ten: each JSON file's create, write and rename,
    /// and the object's rename, were trips of their own). A body held in memory is
    /// written to its temporary file in the same trip, so a small PUT makes one trip in
    /// all instead of three (create, write, commit). The JSON files are written beside
    /// their places and renamed into them, the internal info (which names the new object
    /// file's inode) first, then the attributes, then the object's file is renamed into
    /// its place; `sidecars_match` relies on that order. Until then the object's earlier
    /// version is untouched, so a PUT refused after its body was read (a digest
    /// mismatch) leaves it as it was.
    pub(crate) async fn commit_object(
        &self,
        object: impl Into<NewObject<'_>>,
        bucket: &str,
        key: &str,
        attrs: &ObjectAttributes,
        info: &InternalInfo,
    ) -> Result<()> {
        let info_file = (self.next_tmp_path()?, self.get_internal_info_path(bucket, key)?);
        let attrs_file = (self.next_tmp_path()?, self.get_metadata_path(bucket, key, None)?);
        let attrs = serde_json::to_vec(attrs)?;
        let mut info = info.clone();
        let (writer, body, object_tmp, object_dest) = match object.into() {
            NewObject::Written(writer) => {
                let (tmp, dest) = (writer.tmp_path.clone(), writer.dest_path.to_owned());
                (Some(writer), None, tmp, dest)
            }
            NewObject::InMemory { body, dest } => (None, Some(body), self.next_tmp_path()?, dest.to_owned()),
        };
        let bucket_dir = self.get_bucket_path(bucket)?;
        let lock = self.key_lock(bucket, key);
        let job = tokio::task::spawn_blocking(move || -> Result<()> {
            // A written body's temporary file is the writer's to remove on failure; one
            // written here is this closure's.
            let owns_tmp = body.is_some();
            let placed = (|| -> Result<()> {
                let file = match body {
                    Some(body) => {
                        let mut file = std::fs::File::create(&object_tmp)?;
                        std::io::Write::write_all(&mut file, &body)?;
                        file
                    }
                    None => std::fs::OpenOptions::new().write(true).open(&object_tmp)?,
                };
                let object_file = ObjectFile::of(&stamp(&file)?);
                drop(file);
                let _writing = lock.hold();
                object_file.record_in(&mut info);
                write_then_rename(&info_file.0, &info_file.1, &serde_json::to_vec(&info)?)?;
                write_then_rename(&attrs_file.0, &attrs_file.1, &attrs)?;
                if let Err(e) = rename_into_bucket(&object_tmp, &object_dest, &bucket_dir) {
                    // No bucket, so no earlier object these replaced.
                    let _ = std::fs::remove_file(&info_file.1);
                    let _ = std::fs::remove_file(&attrs_file.1);
                    return Err(e);
                }
                Ok(())
            })();
            if placed.is_err() && owns_tmp {
                let _ = std::fs::remove_file(&object_tmp);
            }
            placed
        });
        job.await??;
        if let Some(mut writer) = writer {
            writer.clean_tmp = false;
        }
        Ok(())
    }

    /// The write lock of `key`, which readers take only when reading without it keeps
    /// finding the files of different writes (`read_consistent`).
    pub(crate) fn key_lock(&self, bucket: &str, key: &str) -> KeyLock {
        KeyLock {
            locks: Arc::clone(&self.key_locks),
            stripe: self.key_locks.stripe(bucket, key),
        }
    }

    /// Applies a copy of the object under `key` onto itself: its Last-Modified, its
    /// internal info and, for `REPLACE`, its attributes; the bytes stay where they are.
    /// In one trip through the blocking pool and under the key's lock, like any other
    /// write of the key, and only while the object file is still the one the copy read
    /// (`copied`): applied to a body written since, the copy's attributes would
    /// have gone with another object's bytes.
    pub(crate) async fn copy_onto_itself(
        &self,
        bucket: &str,
        key: &str,
        attrs: Option<&ObjectAttributes>,
        info: &InternalInfo,
        copied: ObjectFile,
    ) -> Result<InPlaceCopy> {
        let object = self.get_object_path(bucket, key)?;
        let info_file = (self.next_tmp_path()?, self.get_internal_info_path(bucket, key)?);
        let attrs_file = match attrs {
            Some(attrs) => Some((
                self.next_tmp_path()?,
                self.get_metadata_path(bucket, key, None)?,
                serde_json::to_vec(attrs)?,
            )),
            None => None,
        };
        let mut info = info.clone();
        let lock = self.key_lock(bucket, key);
        let job = tokio::task::spawn_blocking(move || -> Result<InPlaceCopy> {
            let _writing = lock.hold();
            let file = match std::fs::OpenOptions::new().write(true).open(&object) {
                Err(e) if no_object_at(&e) => return Ok(InPlaceCopy::Gone),
                opened => opened?,
            };
            if ObjectFile::of(&file.metadata()?) != copied {
                return Ok(InPlaceCopy::Replaced);
            }
            let stamped = stamp(&file)?;
            ObjectFile::of(&stamped).record_in(&mut info);
            write_then_rename(&info_file.0, &info_file.1, &serde_json::to_vec(&info)?)?;
            if let Some((tmp, dest, attrs)) = attrs_file {
                write_then_rename(&tmp, &dest, &attrs)?;
            }
            Ok(InPlaceCopy::Applied(stamped.modified()?))
        });
        job.await?
    }

    /// Deletes the object under `key` in one trip through the blocking pool: its file,
    /// then its internal info, then its attributes (the order `sidecars_match` relies
    /// on), so a deleted object leaves nothing behind. A key ending in `/` names a
    /// directory object, removed only while empty: keys below it are objects of their
    /// own. An object that is not there is deleted already, as S3 answers.
    pub(crate) async fn delete_object_files(&self, bucket: &str, key: &str) -> Result<()> {
        let object = self.get_object_path(bucket, key)?;
        let sidecars = [self.get_internal_info_path(bucket, key)?, self.get_metadata_path(bucket, key, None)?];
        let directory_object = key.ends_with('/');
        let lock = self.key_lock(bucket, key);
        let job = tokio::task::spawn_blocking(move || -> Result<()> {
            let _writing = lock.hold();
            if directory_object {
                // A directory with keys below it stays: they are objects of their own.
                return match std::fs::remove_dir(&object) {
                    Err(e) if !(no_object_at(&e) || e.kind() == std::io::ErrorKind::DirectoryNotEmpty) => Err(e.into()),
                    _ => Ok(()),
                };
            }
            match std::fs::remove_file(&object) {
                Err(e) if !no_object_at(&e) => return Err(e.into()),
                _ => {}
            }
            for sidecar in &sidecars {
                remove_if_present(sidecar)?;
            }
            Ok(())
        });
        job.await?
    }

    /// Deletes a bucket that holds no object, in one trip through the blocking pool, with
    /// any attributes or internal info left under its name and its unfinished multipart
    /// uploads (S3 deletes those with the bucket); `Ok(false)` if an object is in it
    /// (S3's `BucketNotEmpty`). Directories left by nested keys are not objects, as
    /// listings have it. Upstream removed the bucket with everything in it.
    pub(crate) async fn delete_empty_bucket(&self, bucket: &str) -> Result<bool> {
        let dir = self.get_bucket_path(bucket)?;
        let root = self.root.clone();
        let sidecar_prefix = bucket_files_prefix(bucket);
        let job = tokio::task::spawn_blocking(move || -> Result<bool> {
            if holds_a_file(&dir)? {
                return Ok(false);
            }
            std::fs::remove_dir_all(&dir)?;
            // The bucket's attributes files, among them those of its unfinished
            // multipart uploads, which S3 deletes with the bucket: their records and parts.
            let names = root_file_names(&root)?;
            let upload_prefixes: Vec<String> = (names.iter().filter(|name| name.starts_with(&sidecar_prefix)))
                .filter_map(|name| upload_of_attributes(name))
                .flat_map(|id| [upload_record_name(&id), upload_parts_prefix(&id)])
                .collect();
            let doomed =
                |name: &&String| name.starts_with(&sidecar_prefix) || upload_prefixes.iter().any(|p| name.starts_with(p));
            for name in names.iter().filter(doomed) {
                remove_if_present(&root.join(name))?;
            }
            Ok(true)
        });
        job.await?
    }

    /// The files `parts`, one after another, in a new temporary file for `dest`, in one
    /// trip through the blocking pool; `std::io::copy` lets the kernel copy file to file
    /// (`copy_file_range`) where it can, so the bytes do not pass through this process.
    pub(crate) async fn concat_files<'a>(&self, parts: Vec<PathBuf>, dest: &'a Path) -> Result<FileWriter<'a>> {
        self.write_temporary(dest, move |out| {
            for part in &parts {
                std::io::copy(&mut std::fs::File::open(part)?, out)?;
            }
            Ok(())
        })
        .await
    }

    /// The rest of the open file `source`, copied as [`FileSystem::concat_files`] does.
    pub(crate) async fn copy_open_file<'a>(&self, mut source: std::fs::File, dest: &'a Path) -> Result<FileWriter<'a>> {
        self.write_temporary(dest, move |out| {
            std::io::copy(&mut source, out)?;
            Ok(())
        })
        .await
    }

    /// A new temporary file for `dest`, filled by `fill` in one trip through the
    /// blocking pool; removed if that fails.
    async fn write_temporary<'a>(
        &self,
        dest: &'a Path,
        fill: impl FnOnce(&mut std::fs::File) -> Result<()> + Send + 'static,
    ) -> Result<FileWriter<'a>> {
        let tmp_path = self.next_tmp_path()?;
        let tmp = tmp_path.clone();
        let job = tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
            let mut out = std::fs::File::create(&tmp)?;
            fill(&mut out)?;
            Ok(out)
        });
        let file = match job.await? {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        Ok(FileWriter {
            tmp_path,
            dest_path: dest,
            writer: BufWriter::new(File::from_std(file)),
            clean_tmp: true,
        })
    }

    pub(crate) async fn prepare_file_write<'a>(&self, path: &'a Path) -> Result<FileWriter<'a>> {
        let tmp_path = self.next_tmp_path()?;
        let file = File::create(&tmp_path).await?;
        let writer = BufWriter::new(file);
        Ok(FileWriter {
            tmp_path,
            dest_path: path,
            writer,
            clean_tmp: true,
        })
    }
}

/// One key's stripe of the write lock, for a reader that keeps racing the key's writes
/// ([`FileSystem::key_lock`]).
pub(crate) struct KeyLock {
    locks: Arc<KeyLocks>,
    stripe: usize,
}

impl KeyLock {
    /// Held, no write of the key runs: its files are one write's.
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        self.locks.lock(self.stripe)
    }
}

/// What became of a copy of an object onto itself ([`FileSystem::copy_onto_itself`]).
pub(crate) enum InPlaceCopy {
    /// Applied, with this Last-Modified.
    Applied(std::time::SystemTime),
    /// The object was replaced after the copy read it: the copy came first, and the
    /// write that replaced it stands.
    Replaced,
    /// The object was deleted after the copy read it.
    Gone,
}

/// A new object's body for [`FileSystem::commit_object`]: streamed to its temporary file
/// already, or held in memory (a small PUT) and written in the commit's own trip.
pub(crate) enum NewObject<'a> {
    Written(FileWriter<'a>),
    InMemory { body: Vec<u8>, dest: &'a Path },
}

impl<'a> From<FileWriter<'a>> for NewObject<'a> {
    fn from(writer: FileWriter<'a>) -> Self {
        NewObject::Written(writer)
    }
}

pub(crate) struct FileWriter<'a> {
    tmp_path: PathBuf,
    dest_path: &'a Path,
    writer: BufWriter<File>,
    clean_tmp: bool,
}

impl<'a> FileWriter<'a> {
    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    pub(crate) async fn done(mut self) -> Result<()> {
        let (tmp, dest) = (self.tmp_path.clone(), self.dest_path.to_owned());
        tokio::task::spawn_blocking(move || rename_into_place(&tmp, &dest)).await??;
        self.clean_tmp = false;
        Ok(())
    }
}

impl Drop for FileWriter<'_> {
    fn drop(&mut self) {
        if self.clean_tmp {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Object attributes from a metadata file, in the current format or the older one that
/// held only the user metadata.
fn parse_object_attributes(content: &[u8]) -> Option<ObjectAttributes> {
    // Try to deserialize as ObjectAttributes first (new format)
    if let Ok(attrs) = serde_json::from_slice::<ObjectAttributes>(content) {
        return Some(attrs);
    }

    // Fall back to old format (just user metadata)
    if let Ok(user_metadata) = serde_json::from_slice::<dto::Metadata>(content) {
        return Some(ObjectAttributes {
            user_metadata: Some(user_metadata),
            ..Default::default()
        });
    }

    None
}

/// The upload whose attributes a root file name holds
/// (`.bucket-….object-….upload-ID.metadata.json`, from `get_metadata_path`).
fn upload_of_attributes(name: &str) -> Option<Uuid> {
    let id = name.strip_suffix(".metadata.json")?.rsplit('.').next()?.strip_prefix("upload-")?;
    Uuid::parse_str(id).ok()
}

/// How the names of the attributes and internal-info files of a bucket's objects (and
/// uploads) in the root begin; the `.` after the bucket's base64 keeps one bucket's
/// prefix from matching another's.
fn bucket_files_prefix(bucket: &str) -> String {
    format!(".bucket-{}.", base64_simd::URL_SAFE_NO_PAD.encode_to_string(bucket))
}

/// An object key as it appears in the names of its files in the root.
fn object_name(key: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(key)
}

/// The name of an upload's record in the root.
fn upload_record_name(id: &Uuid) -> String {
    format!(".upload-{id}.json")
}

/// How the names of an upload's parts (and their kept MD5s) in the root begin, as
/// `resolve_upload_part_path` and `resolve_upload_part_md5_path` make them.
fn upload_parts_prefix(id: &Uuid) -> String {
    format!(".upload_id-{id}.")
}

/// The names of the regular files in the store's root.
fn root_file_names(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_file()
            && let Ok(name) = entry.file_name().into_string()
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes the file at `path`; one already gone is fine.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether a file is anywhere below `dir`.
fn holds_a_file(dir: &Path) -> std::io::Result<bool> {
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether a removal failed because no object is at its path: nothing there, a
/// directory of nested keys where a file was asked for (or the other way round), or a
/// file where the path needs a directory.
fn no_object_at(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{IsADirectory, NotADirectory, NotFound};
    matches!(e.kind(), NotFound | NotADirectory | IsADirectory)
}

/// The file's contents, or `None` when it does not exist.
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(content) => Ok(Some(content)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `content` to `tmp`, then renames it to `dest`; `tmp` is removed if either fails.
fn write_then_rename(tmp: &Path, dest: &Path, content: &[u8]) -> Result<()> {
    let written = std::fs::write(tmp, content).and_then(|()| rename_into_place(tmp, dest));
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    Ok(written?)
}

/// Renames `tmp` to an object's place `dest` in the bucket at `bucket_dir`, making the
/// directories of the key's prefix as `rename_into_place` does, but not the bucket's:
/// a write into a missing bucket is `MissingBucket`. Checked only when the rename finds
/// a directory missing, so a write into an existing directory costs no `stat`.
fn rename_into_bucket(tmp: &Path, dest: &Path, bucket_dir: &Path) -> Result<()> {
    match std::fs::rename(tmp, dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !bucket_dir.is_dir() {
                return Err(MissingBucket.into());
            }
            Ok(rename_into_place(tmp, dest)?)
        }
        done => Ok(done?),
    }
}

/// Renames `tmp` to `dest`, making `dest`'s directories only when the rename finds them
/// missing: they almost always exist (the store's root, a bucket, a key's prefix), and
/// making them first cost every write a failed `mkdir` and a `stat` per file.
fn rename_into_place(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    match std::fs::rename(tmp, dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let Some(dir) = dest.parent() else { return Err(e) };
            std::fs::create_dir_all(dir)?;
            std::fs::rename(tmp, dest)
        }
        done => done,
    }
}
