//! Test data: deterministic pseudo-random files, their SHA-256, and bucket names
//! unique per run (Ceph RGW wants at least 3 lowercase characters).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};

/// Writes `len` pseudo-random bytes derived from `seed` to `dir/name` and returns the
/// path. Incompressible, so no layer can shortcut them; deterministic, so a failure
/// reproduces. Written in 1 MiB pieces: memory stays flat for multi-GiB files.
pub fn random_bytes(dir: &Path, name: &str, len: u64, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    // splitmix64: fast, good enough to defeat compression and dedup.
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).expect("at most 1 MiB");
        out.write_all(&buf[..n]).expect("write test data");
        left -= n as u64;
    }
    out.flush().expect("flush test data");
    path
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}

/// A bucket name unique to this run and call: `sg-<tag>-<pid>-<n>-<time>`, lowercase,
/// at most 63 characters, so tests never share a bucket even against a long-lived backend.
pub fn unique_bucket(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 1_000_000)
        .unwrap_or(0);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    format!("sg-{tag}-{}-{n}-{secs}", std::process::id())
}
