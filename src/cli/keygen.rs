//! `sealgate keygen`: a new local master key file (256 random bits, mode 0600), and the
//! fingerprint that identifies a master key without revealing it, so a restored backup
//! can be checked against the key that wrote the data (`check-config` prints it too).

use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{KeygenArgs, ToolError, keys};
use crate::config::Config;
use crate::kms::local::{LocalKms, LocalKmsError};

/// Domain label of the fingerprint hash: never change, or fingerprints on record stop
/// matching.
const FINGERPRINT_LABEL: &[u8] = b"sealgate-master-key-fingerprint-v1";

/// Hex of the first 8 bytes of SHA-256(label || key): identifies the key, reveals
/// nothing usable about it.
pub fn fingerprint(master: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_LABEL);
    h.update(master);
    hex::encode(h.finalize().get(..8).unwrap_or_default())
}

/// Reads and validates a master key file (the proxy's own checks: regular file, no
/// group/other permissions, 32 bytes) and returns its fingerprint.
pub fn file_fingerprint(path: &Path) -> Result<String, LocalKmsError> {
    LocalKms::open(path)?;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| LocalKmsError::Io {
        path: path.to_path_buf(),
        source,
    })?);
    Ok(fingerprint(&bytes))
}

/// Creates the key at `path`; with `force`, an existing file is replaced atomically
/// (a new file beside it, then a rename), never truncated in place.
pub fn create(path: &Path, force: bool) -> Result<String, ToolError> {
    let fail = |e: LocalKmsError| ToolError::Other(format!("cannot create the master key: {e}"));
    if force && path.exists() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "master.key".into());
        let temp = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
        LocalKms::create_master_key_file(&temp).map_err(fail)?;
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(ToolError::io(path)(e));
        }
    } else {
        LocalKms::create_master_key_file(path).map_err(|e| match e {
            LocalKmsError::Exists { path } => ToolError::Other(format!(
                "{}: already exists; refusing to overwrite a master key (--force replaces it, \
                 and objects written under the old key become unreadable)",
                path.display()
            )),
            e => fail(e),
        })?;
    }
    file_fingerprint(path).map_err(fail)
}

/// `sealgate keygen`.
pub fn run(config: &Config, args: &KeygenArgs) -> Result<(), ToolError> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| keys::master_key_path(config));
    let fp = create(&path, args.force)?;
    println!("master key: {}", path.display());
    println!("fingerprint: {fp}");
    eprintln!(
        "back this file up now (see docs/OPERATIONS.md): objects written under it cannot be read without it"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_creates_a_private_key_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let fp = create(&path, false).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 32);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fp, fingerprint(&std::fs::read(&path).unwrap()));
        let before = std::fs::read(&path).unwrap();
        let e = create(&path, false).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let fp2 = create(&path, true).unwrap();
        assert_ne!(fp, fp2);
        assert_ne!(std::fs::read(&path).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn fingerprint_is_stable_and_key_dependent() {
        assert_eq!(fingerprint(&[1; 32]), fingerprint(&[1; 32]));
        assert_ne!(fingerprint(&[1; 32]), fingerprint(&[2; 32]));
        assert_eq!(fingerprint(&[1; 32]).len(), 16);
    }
}
