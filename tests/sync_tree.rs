//! A 500-file tree synced through the encrypting proxy to Ceph RGW by every directory
//! tool of the matrix, as a user would: `aws s3 sync` uploads each file once and a
//! second run transfers nothing; `rclone copy` then `rclone check` finds no difference;
//! `s3cmd sync` uploads each file once and a second run (with `--no-check-md5`, as for
//! an SSE-KMS bucket) transfers nothing; `s5cmd cp` copies the tree. Each client's copy
//! is downloaded again by the same client, and every file's SHA-256 is compared with
//! the source; nothing more or less comes back.
//!
//! The tree: mostly small files (0 B to 96 KiB, with the segment-size edges), twelve of
//! 1 to 8 MiB and four of 10 to 40 MiB (multipart for every client), 175 MiB in all, in
//! nested directories with spaces, unicode, `+` and `=` in names.
//! Run with `./scripts/test.sh --test sync_tree`; `SEALGATE_TEST_TARGET=direct` runs it
//! against Ceph RGW without the proxy.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{
    Backend, Client, ClientEnv, ProxyOptions, random_bytes, sha256_file, target_for, unique_bucket,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const FILES: usize = 500;

/// Directories of the tree, nested up to four deep, with the awkward characters.
const DIRS: [&str; 10] = [
    "",
    "docs",
    "docs/2026 reports",
    "docs/2026 reports/q1+q2",
    "media/photos/été/日本",
    "media/video",
    "a=b/c=d",
    "deep/er/and/deeper",
    "with space/and+plus",
    "unicode-ñandú",
];

/// File name stems, cycled through; the index keeps names unique.
const STEMS: [&str; 8] = [
    "plain",
    "with space",
    "plus+sign",
    "eq=sign",
    "naïve café",
    "データ",
    "a + b = c",
    "dots.in.name",
];

/// Sizes of the largest files: every client uploads these in parts.
const LARGE: [u64; 4] = [10 * MIB, 16 * MIB + 3, 24 * MIB, 40 * MIB];

/// The size of file `i`: four large, twelve of 1-8 MiB, the rest small, with the
/// segment edges (64 KiB ± 1) and empty files among them.
fn size_of(i: usize) -> u64 {
    let n = i as u64;
    match i {
        0..4 => LARGE[i],
        4..16 => (1 + n % 8) * MIB + n * 977,
        16 => 0,
        17 => 1,
        18 => 64 * KIB - 1,
        19 => 64 * KIB,
        20 => 64 * KIB + 1,
        _ => (n * 7919) % (96 * KIB),
    }
}

/// Writes the tree under `root`; returns relative path (with `/`) -> SHA-256.
fn build_tree(root: &Path) -> BTreeMap<String, String> {
    let mut tree = BTreeMap::new();
    for i in 0..FILES {
        let dir = DIRS[i % DIRS.len()];
        let name = format!("{} {i:03}.bin", STEMS[i % STEMS.len()]);
        let rel = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        let path = root.join(&rel);
        let parent = path.parent().expect("a file in the tree has a parent");
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {parent:?}: {e}"));
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        random_bytes(parent, file_name, size_of(i), i as u64 + 7);
        tree.insert(rel, sha256_file(&path));
    }
    tree
}

/// Every file under `root` as relative path (with `/`) -> SHA-256.
fn hash_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("walked paths are under the root")
                    .to_str()
                    .expect("UTF-8 path")
                    .replace(std::path::MAIN_SEPARATOR, "/");
                out.insert(rel, sha256_file(&path));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts that `copy` holds exactly the files of `source`, byte for byte.
fn assert_same_tree(who: &str, source: &BTreeMap<String, String>, copy: &Path) {
    let got = hash_tree(copy);
    let missing: Vec<&String> = source.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !source.contains_key(*k)).collect();
    let differ: Vec<&String> = source
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{who}: the downloaded tree differs from the source\nmissing: {missing:?}\n\
         extra: {extra:?}\ndifferent bytes: {differ:?}"
    );
}

/// Lines of `output` that start with `prefix` (one per transferred file).
fn count_lines(output: &str, prefix: &str) -> usize {
    output.lines().filter(|l| l.starts_with(prefix)).count()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A fresh, empty download directory under the env's temp dir.
fn fresh_dir(env: &ClientEnv, name: &str) -> PathBuf {
    let dir = env.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
    dir
}

/// Removes a bucket and everything in it (keeps Ceph's in-memory store small).
fn remove_bucket(env: &ClientEnv, bucket: &str) {
    env.run(
        Client::AwsCli,
        &["s3", "rb", "--force", &format!("s3://{bucket}")],
    );
}

fn aws_sync(env: &ClientEnv, src: &Path, source: &BTreeMap<String, String>) {
    let bucket = unique_bucket("tree-aws");
    let url = format!("s3://{bucket}");
    Client::AwsCli.make_bucket(env, &bucket);
    let sync = ["s3", "sync", "--no-progress", path_str(src), &url];
    let first = env.run(Client::AwsCli, &sync);
    assert_eq!(
        count_lines(&first, "upload:"),
        FILES,
        "aws s3 sync uploaded another number of files:\n{first}"
    );
    let second = env.run(Client::AwsCli, &sync);
    assert_eq!(
        count_lines(&second, "upload:"),
        0,
        "a second aws s3 sync transferred again:\n{second}"
    );
    let down = fresh_dir(env, "down-aws");
    let got = env.run(
        Client::AwsCli,
        &["s3", "sync", "--no-progress", &url, path_str(&down)],
    );
    assert_eq!(
        count_lines(&got, "download:"),
        FILES,
        "aws s3 sync down:\n{got}"
    );
    assert_same_tree("aws s3 sync", source, &down);
    remove_bucket(env, &bucket);
}

fn rclone_copy_check(env: &ClientEnv, src: &Path, source: &BTreeMap<String, String>) {
    let bucket = unique_bucket("tree-rclone");
    let remote = format!("sg:{bucket}");
    Client::Rclone.make_bucket(env, &bucket);
    env.run(Client::Rclone, &["copy", path_str(src), &remote]);
    let check = env.try_run(Client::Rclone, &["check", path_str(src), &remote]);
    // rclone reports the verdict on stderr: "0 differences found", "500 matching files".
    assert!(
        check.success
            && check.stderr.contains("0 differences found")
            && check.stderr.contains(&format!("{FILES} matching files")),
        "rclone check found differences:\nstdout:\n{}\nstderr:\n{}",
        check.stdout,
        check.stderr
    );
    let down = fresh_dir(env, "down-rclone");
    env.run(Client::Rclone, &["copy", &remote, path_str(&down)]);
    assert_same_tree("rclone copy", source, &down);
    remove_bucket(env, &bucket);
}

fn s3cmd_sync(env: &ClientEnv, src: &Path, source: &BTreeMap<String, String>) {
    let bucket = unique_bucket("tree-s3cmd");
    let url = format!("s3://{bucket}/");
    Client::S3cmd.make_bucket(env, &bucket);
    // A trailing slash syncs the directory's contents, not the directory itself.
    let src_dir = format!("{}/", path_str(src));
    let sync = ["sync", src_dir.as_str(), url.as_str()];
    let first = env.run(Client::S3cmd, &sync);
    assert_eq!(
        count_lines(&first, "upload:"),
        FILES,
        "s3cmd sync uploaded another number of files:\n{first}"
    );
    // s3cmd takes a single-part object's listed ETag for its MD5 (it HEADs only
    // multipart objects, for the MD5 it stored in x-amz-meta-s3cmd-attrs). ETags of
    // encrypted objects are not MD5s, as with SSE-KMS on S3, so a user of such a bucket
    // syncs by size (and s3cmd's own MD5 for multipart objects) with --no-check-md5.
    let second = env.run(
        Client::S3cmd,
        &["sync", "--no-check-md5", src_dir.as_str(), url.as_str()],
    );
    assert_eq!(
        count_lines(&second, "upload:"),
        0,
        "a second s3cmd sync transferred again:\n{second}"
    );
    let down = fresh_dir(env, "down-s3cmd");
    let down_dir = format!("{}/", path_str(&down));
    env.run(Client::S3cmd, &["sync", &url, &down_dir]);
    assert_same_tree("s3cmd sync", source, &down);
    remove_bucket(env, &bucket);
}

fn s5cmd_cp(env: &ClientEnv, src: &Path, source: &BTreeMap<String, String>) {
    let bucket = unique_bucket("tree-s5cmd");
    Client::S5cmd.make_bucket(env, &bucket);
    let src_dir = format!("{}/", path_str(src));
    let up = env.run(
        Client::S5cmd,
        &[
            "cp",
            "--part-size",
            "5",
            &src_dir,
            &format!("s3://{bucket}/"),
        ],
    );
    assert_eq!(
        count_lines(&up, "cp "),
        FILES,
        "s5cmd cp uploaded another number of files:\n{up}"
    );
    let down = fresh_dir(env, "down-s5cmd");
    let down_dir = format!("{}/", path_str(&down));
    env.run(
        Client::S5cmd,
        &[
            "cp",
            "--part-size",
            "5",
            &format!("s3://{bucket}/*"),
            &down_dir,
        ],
    );
    assert_same_tree("s5cmd cp", source, &down);
    remove_bucket(env, &bucket);
}

#[test]
fn tree_of_500_files_syncs_once_with_every_client_and_reads_back_identical() {
    let backend = require!(Backend::ceph());
    let Some((target, _guard)) = target_for(&backend, ProxyOptions::http()) else {
        return;
    };
    let env = ClientEnv::new(target);
    let src = env.dir().join("tree");
    let source = build_tree(&src);
    assert_eq!(source.len(), FILES, "the tree has {FILES} distinct files");
    let total: u64 = (0..FILES).map(size_of).sum();
    assert!(
        total < 300 * MIB,
        "the tree stays small enough for CI: {total} B"
    );

    aws_sync(&env, &src, &source);
    rclone_copy_check(&env, &src, &source);
    s3cmd_sync(&env, &src, &source);
    s5cmd_cp(&env, &src, &source);
}
