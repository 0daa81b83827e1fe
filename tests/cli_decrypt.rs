//! The offline decryptor: objects written through the in-process proxy (empty, small,
//! multi-segment, multipart) to Ceph RGW and to the embedded backend decrypt with
//! `sealgate decrypt` alone, both straight from the backend (`s3://B/K`) and from a raw
//! download plus its `head-object` metadata, to the original bytes; a flipped or
//! missing byte makes it fail with a non-zero exit and no output file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Backend, Client, ClientEnv, ProxyOptions, TestProxy, random_bytes, sha256_file, unique_bucket,
};

/// Objects of every shape: (key, plaintext length). 6 MiB is two parts with the
/// harness's 5 MiB aws CLI multipart threshold.
const OBJECTS: [(&str, u64); 4] = [
    ("empty", 0),
    ("small.txt", 100),
    ("dir/segments.bin", 300_000),
    ("multipart.bin", 6 * 1024 * 1024),
];

struct Run {
    code: i32,
    stderr: String,
}

fn sealgate(config: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SEALGATE_CONFIG")
        .output()
        .expect("run sealgate");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("sealgate {args:?}: {stderr}");
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
    }
}

/// The CLI's config for the proxy's backend and master key.
fn tool_config(proxy: &TestProxy, backend: &Backend) -> PathBuf {
    let dir = proxy.dir();
    let mut text = format!(
        "[kms]\nmaster_key_file = {:?}\n[embedded]\ndata_dir = {:?}\n",
        dir.join("master.key").display().to_string(),
        dir.join("embedded").display().to_string(),
    );
    if let Some(endpoint) = &backend.endpoint {
        text.push_str(&format!(
            "[backend]\nendpoint = {endpoint:?}\naccess_key = {:?}\nsecret_key = {:?}\n",
            backend.access_key, backend.secret_key
        ));
    }
    let f = dir.join("tool.toml");
    std::fs::write(&f, text).unwrap();
    f
}

/// Writes every object through the proxy; returns the plaintext files by key.
fn write_objects(env: &ClientEnv, bucket: &str) -> Vec<(String, PathBuf)> {
    Client::AwsCli.make_bucket(env, bucket);
    OBJECTS
        .iter()
        .enumerate()
        .map(|(i, (key, len))| {
            let file = random_bytes(env.dir(), &format!("plain-{i}"), *len, i as u64 + 11);
            Client::AwsCli.put(env, &file, bucket, key);
            (key.to_string(), file)
        })
        .collect()
}

fn no_partial_files(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sealgate-partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

fn decrypt_from_backend(
    config: &Path,
    out_dir: &Path,
    bucket: &str,
    objects: &[(String, PathBuf)],
) {
    for (i, (key, plain)) in objects.iter().enumerate() {
        let out = out_dir.join(format!("from-backend-{i}"));
        let r = sealgate(
            config,
            &[
                "decrypt",
                &format!("s3://{bucket}/{key}"),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "{key}: {}", r.stderr);
        assert_eq!(
            sha256_file(&out),
            sha256_file(plain),
            "{key}: decrypted bytes differ"
        );
    }
}

#[test]
fn ceph_objects_decrypt_offline() {
    let ceph = require!(Backend::ceph());
    let started = std::time::Instant::now();
    let proxy = TestProxy::start(&ceph, ProxyOptions::http());
    let via_proxy = ClientEnv::new(proxy.target());
    let direct = ClientEnv::new(ceph.direct_target().unwrap());
    let bucket = unique_bucket("clidec");
    let objects = write_objects(&via_proxy, &bucket);
    let config = tool_config(&proxy, &ceph);
    let out_dir = tempfile::tempdir().unwrap();
    decrypt_from_backend(&config, out_dir.path(), &bucket, &objects);

    // Raw download + head-object JSON, decrypted with no backend access at all.
    for (i, (key, plain)) in objects.iter().enumerate() {
        let raw = direct.dir().join(format!("raw-{i}"));
        Client::AwsCli.get(&direct, &bucket, key, &raw);
        let head = direct.run(
            Client::AwsCli,
            &[
                "s3api",
                "head-object",
                "--bucket",
                &bucket,
                "--key",
                key,
                "--output",
                "json",
            ],
        );
        let meta = direct.dir().join(format!("head-{i}.json"));
        std::fs::write(&meta, &head).unwrap();
        let out = out_dir.path().join(format!("from-raw-{i}"));
        let args = [
            "decrypt",
            "--bucket",
            &bucket,
            "--key",
            key,
            "--input",
            raw.to_str().unwrap(),
            "--metadata-from",
            meta.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        let r = sealgate(&config, &args);
        assert_eq!(r.code, 0, "{key}: {}", r.stderr);
        assert_eq!(
            sha256_file(&out),
            sha256_file(plain),
            "{key}: raw decrypt differs"
        );

        if *key == "dir/segments.bin" || *key == "multipart.bin" {
            tamper_cases(&config, out_dir.path(), &bucket, key, &raw, &meta);
        }
        if *key == "small.txt" {
            // Bound to its name: the same bytes claimed for another key do not open.
            let out = out_dir.path().join("renamed");
            let r = sealgate(
                &config,
                &[
                    "decrypt",
                    "--bucket",
                    &bucket,
                    "--key",
                    "other.txt",
                    "--input",
                    raw.to_str().unwrap(),
                    "--metadata-from",
                    meta.to_str().unwrap(),
                    "-o",
                    out.to_str().unwrap(),
                ],
            );
            assert_ne!(r.code, 0);
            assert!(!out.exists());
        }
    }
    no_partial_files(out_dir.path());
    println!(
        "ceph offline decrypt: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// A flipped byte, a truncated copy and a wrong part count all fail without output.
fn tamper_cases(config: &Path, out_dir: &Path, bucket: &str, key: &str, raw: &Path, meta: &Path) {
    let mut bytes = std::fs::read(raw).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let flipped = out_dir.join("flipped.raw");
    std::fs::write(&flipped, &bytes).unwrap();
    bytes[mid] ^= 0x01;
    let truncated = out_dir.join("truncated.raw");
    std::fs::write(&truncated, &bytes[..bytes.len() - 1]).unwrap();
    for (what, input) in [("flipped byte", &flipped), ("truncated", &truncated)] {
        let out = out_dir.join("must-not-exist");
        let r = sealgate(
            config,
            &[
                "decrypt",
                "--bucket",
                bucket,
                "--key",
                key,
                "--input",
                input.to_str().unwrap(),
                "--metadata-from",
                meta.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_ne!(r.code, 0, "{key}: {what} decrypted");
        assert!(!out.exists(), "{key}: {what} left an output file");
        assert!(r.stderr.contains("sealgate: "), "{}", r.stderr);
    }
    let out = out_dir.join("must-not-exist");
    let r = sealgate(
        config,
        &[
            "decrypt",
            "--bucket",
            bucket,
            "--key",
            key,
            "--input",
            raw.to_str().unwrap(),
            "--metadata-from",
            meta.to_str().unwrap(),
            "--parts",
            "3",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_ne!(r.code, 0, "{key}: a wrong --parts decrypted");
    assert!(!out.exists());
}

#[test]
fn embedded_objects_decrypt_offline_and_on_disk_tampering_fails() {
    let embedded = require!(Backend::embedded());
    let started = std::time::Instant::now();
    let proxy = TestProxy::start(&embedded, ProxyOptions::http());
    let via_proxy = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("clidec");
    let objects = write_objects(&via_proxy, &bucket);
    let config = tool_config(&proxy, &embedded);
    let out_dir = tempfile::tempdir().unwrap();
    decrypt_from_backend(&config, out_dir.path(), &bucket, &objects);

    // The embedded backend keeps each object as a file: flip one byte on disk.
    let on_disk = proxy
        .dir()
        .join("embedded/objects")
        .join(&bucket)
        .join("dir/segments.bin");
    let mut bytes = std::fs::read(&on_disk).unwrap();
    let i = bytes.len() - 100;
    bytes[i] ^= 0x80;
    std::fs::write(&on_disk, &bytes).unwrap();
    let out = out_dir.path().join("tampered");
    let r = sealgate(
        &config,
        &[
            "decrypt",
            &format!("s3://{bucket}/dir/segments.bin"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_ne!(r.code, 0, "a tampered object decrypted");
    assert!(r.stderr.contains("decryption failed"), "{}", r.stderr);
    assert!(!out.exists());
    no_partial_files(out_dir.path());

    // An existing output is never overwritten.
    let existing = out_dir.path().join("from-backend-0");
    let r = sealgate(
        &config,
        &[
            "decrypt",
            &format!("s3://{bucket}/small.txt"),
            "-o",
            existing.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    println!(
        "embedded offline decrypt: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
