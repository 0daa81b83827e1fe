//! The embedded KMS: one 256-bit master key in a local file, so sealgate runs with no
//! external service. It owns the master key file (creation with safe permissions,
//! refusing unsafe ones) and the blob format below; callers see only [`Kms`].
//!
//! Per KMS key id a key-encryption key is derived, `KEK = HKDF-SHA256(master, id)`,
//! so different key ids behave like different KMS keys without any key registry.
//! Every key id is enabled; there is no rotation (rotate by moving to a new key id).
//!
//! Blob (local format v1, permanent: changing it makes stored objects unreadable):
//! `0x01 || u16 BE key id length || key id || 12-byte random nonce ||
//!  AES-256-GCM(KEK, data key, AAD) (32 bytes) || 16-byte tag`, where
//! `AAD = "sealgate-local-kms-v1" || u16 BE key id length || key id ||
//!  EncryptionContext::canonical_bytes()`.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{DATA_KEY_LEN, EncryptionContext, GeneratedKey, KeyInfo, Kms, KmsError, KmsFuture};

/// Local blob format v1: never change.
const BLOB_VERSION: u8 = 1;
/// Domain label in the AAD and the HKDF salt: never change.
const LABEL: &[u8] = b"sealgate-local-kms-v1";
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 2048;
const MASTER_KEY_LEN: usize = 32;

/// Why the master key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalKmsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: already exists; refusing to overwrite a master key")]
    Exists { path: PathBuf },
    #[error("{path}: mode {mode:04o} lets others read the master key; run chmod 600")]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error("{path}: {len} bytes, a master key file holds exactly 32 random bytes")]
    WrongSize { path: PathBuf, len: u64 },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("no system randomness for the master key")]
    Random,
}

/// The embedded KMS. Counts its calls so tests can prove how often a cache asked.
pub struct LocalKms {
    master: Zeroizing<[u8; MASTER_KEY_LEN]>,
    calls_generate: AtomicU64,
    calls_decrypt: AtomicU64,
}

impl fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKms")
            .field("master", &"<redacted>")
            .field("calls_generate", &self.calls_generate())
            .field("calls_decrypt", &self.calls_decrypt())
            .finish()
    }
}

impl LocalKms {
    /// A KMS over a master key held in memory (tests, or keys from elsewhere).
    pub fn from_master_key(master: Zeroizing<[u8; MASTER_KEY_LEN]>) -> Self {
        LocalKms {
            master,
            calls_generate: AtomicU64::new(0),
            calls_decrypt: AtomicU64::new(0),
        }
    }

    /// Creates a new master key file of 32 random bytes with mode 0600 (its parent
    /// directory with 0700 if missing); fails if the file exists (the `keygen` path).
    pub fn create_master_key_file(path: &Path) -> Result<(), LocalKmsError> {
        let io = |source| LocalKmsError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io)?;
        }
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| LocalKmsError::Random)?;
        // create_new: two replicas starting at once must not overwrite each other's key.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    LocalKmsError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io(e)
                }
            })?;
        file.write_all(&key[..]).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    /// Loads an existing master key file, refusing group/other permissions, anything
    /// but a regular file, and any size but 32 bytes.
    pub fn open(path: &Path) -> Result<Self, LocalKmsError> {
        let io = |source| LocalKmsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        // Checked on the open handle, so the file cannot be swapped between check and read.
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(LocalKmsError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(LocalKmsError::LoosePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() != MASTER_KEY_LEN as u64 {
            return Err(LocalKmsError::WrongSize {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        file.read_exact(&mut key[..]).map_err(io)?;
        Ok(Self::from_master_key(key))
    }

    /// Opens the master key file, creating it first if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self, LocalKmsError> {
        match Self::create_master_key_file(path) {
            Ok(()) | Err(LocalKmsError::Exists { .. }) => Self::open(path),
            Err(e) => Err(e),
        }
    }

    /// GenerateDataKey calls so far (successful or not).
    pub fn calls_generate(&self) -> u64 {
        self.calls_generate.load(Ordering::Relaxed)
    }

    /// Decrypt calls so far (successful or not).
    pub fn calls_decrypt(&self) -> u64 {
        self.calls_decrypt.load(Ordering::Relaxed)
    }

    fn kek(&self, key_id: &str) -> Result<LessSafeKey, KmsError> {
        let hk = Hkdf::<Sha256>::new(Some(LABEL), &self.master[..]);
        let mut kek = Zeroizing::new([0u8; 32]);
        hk.expand(key_id.as_bytes(), &mut kek[..])
            .map_err(|_| KmsError::Protocol("HKDF output length".into()))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &kek[..])
            .map_err(|_| KmsError::Protocol("AES key setup".into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    fn generate(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedKey, KmsError> {
        self.calls_generate.fetch_add(1, Ordering::Relaxed);
        check_key_id(key_id)?;
        let mut plaintext = Zeroizing::new([0u8; DATA_KEY_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut plaintext[..])
            .and_then(|()| aws_lc_rs::rand::fill(&mut nonce))
            .map_err(|_| KmsError::Internal("no system randomness".into()))?;
        let kek = self.kek(key_id)?;
        let mut sealed = plaintext.to_vec();
        let tag = kek
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(key_id, context)),
                &mut sealed,
            )
            .map_err(|_| KmsError::Internal("seal failed".into()))?;
        let id_len = key_id_len(key_id)?;
        let mut blob =
            Vec::with_capacity(1 + 2 + key_id.len() + NONCE_LEN + DATA_KEY_LEN + TAG_LEN);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&id_len.to_be_bytes());
        blob.extend_from_slice(key_id.as_bytes());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        blob.extend_from_slice(tag.as_ref());
        Ok(GeneratedKey {
            plaintext,
            ciphertext_blob: blob,
            key_id: key_id.to_string(),
        })
    }

    fn unwrap_blob(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, KmsError> {
        self.calls_decrypt.fetch_add(1, Ordering::Relaxed);
        let bad = |why: &str| KmsError::InvalidCiphertext(why.to_string());
        let (&version, rest) = blob.split_first().ok_or_else(|| bad("empty blob"))?;
        if version != BLOB_VERSION {
            return Err(bad("unknown blob version"));
        }
        let (len_bytes, rest) = rest.split_at_checked(2).ok_or_else(|| bad("truncated"))?;
        let len_bytes = <[u8; 2]>::try_from(len_bytes).map_err(|_| bad("truncated"))?;
        let id_len = usize::from(u16::from_be_bytes(len_bytes));
        let (blob_key_id, rest) = rest
            .split_at_checked(id_len)
            .ok_or_else(|| bad("truncated"))?;
        let blob_key_id =
            std::str::from_utf8(blob_key_id).map_err(|_| bad("key id is not UTF-8"))?;
        // As AWS: an empty key id means "whichever key made the blob".
        if !key_id.is_empty() && key_id != blob_key_id {
            return Err(bad("blob was made under another key id"));
        }
        let (nonce, sealed) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| bad("truncated"))?;
        if sealed.len() != DATA_KEY_LEN + TAG_LEN {
            return Err(bad("wrong length"));
        }
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("nonce"))?;
        let kek = self.kek(blob_key_id)?;
        let mut in_out = Zeroizing::new(sealed.to_vec());
        let opened = kek
            .open_in_place(nonce, Aad::from(aad(blob_key_id, context)), &mut in_out)
            .map_err(|_| bad("authentication failed (wrong context or altered blob)"))?;
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if opened.len() != DATA_KEY_LEN {
            return Err(bad("wrong length"));
        }
        key.copy_from_slice(opened);
        Ok(key)
    }
}

fn check_key_id(key_id: &str) -> Result<(), KmsError> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(KmsError::NotFound(
            "local key ids are 1 to 2048 bytes".into(),
        ));
    }
    Ok(())
}

fn key_id_len(key_id: &str) -> Result<u16, KmsError> {
    u16::try_from(key_id.len()).map_err(|_| KmsError::NotFound("key id too long".into()))
}

fn aad(key_id: &str, context: &EncryptionContext) -> Vec<u8> {
    let ctx = context.canonical_bytes();
    let mut out = Vec::with_capacity(LABEL.len() + 2 + key_id.len() + ctx.len());
    out.extend_from_slice(LABEL);
    // key_id was checked to fit in u16 before any blob is made or opened.
    out.extend_from_slice(
        &u16::try_from(key_id.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&ctx);
    out
}

impl Kms for LocalKms {
    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, GeneratedKey> {
        Box::pin(async move { self.generate(key_id, context) })
    }

    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> KmsFuture<'a, Zeroizing<[u8; DATA_KEY_LEN]>> {
        Box::pin(async move { self.unwrap_blob(key_id, blob, context) })
    }

    fn describe_key<'a>(&'a self, key_id: &'a str) -> KmsFuture<'a, KeyInfo> {
        Box::pin(async move {
            check_key_id(key_id)?;
            Ok(KeyInfo {
                key_id: key_id.to_string(),
                is_enabled: true,
                state: "Enabled".into(),
            })
        })
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests;
