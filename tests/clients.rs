//! The client matrix: real S3 clients (aws CLI, boto3, s3cmd, s5cmd, rclone) through
//! the in-process proxy to Ceph RGW, moto and the embedded backend, over HTTP and
//! HTTPS. What a user of each client would notice is asserted: files come back
//! byte-identical (SHA-256), multipart uploads work, listings show the sizes that were
//! uploaded, deletes delete, presigned URLs (SigV4 and SigV2) work, and `aws s3 sync`
//! transfers nothing the second time.
//!
//! Run with `./scripts/test.sh --test clients`; `SEALGATE_TEST_TARGET=direct` runs the
//! same cases against the backends without the proxy, which proves the matrix itself.
//! Budget: ~6 minutes on 2 cores, so 100 MiB objects go through aws CLI and one other
//! client per backend and scheme only.

mod common;

use std::path::Path;

use common::{
    Backend, BackendKind, Client, ClientEnv, ProxyOptions, TestProxy, random_bytes, sha256_file,
    target_for, unique_bucket,
};

const MIB: u64 = 1024 * 1024;

fn options(tls: bool) -> ProxyOptions {
    if tls {
        ProxyOptions::https()
    } else {
        ProxyOptions::http()
    }
}

/// One client against one backend and scheme: create a bucket, round-trip each size,
/// list, check multipart and sizes with `head-object`, delete, remove the bucket.
fn round_trip(backend: Option<Backend>, tls: bool, client: Client, with_100_mib: bool) {
    let backend = require!(backend);
    let Some((target, guard)) = target_for(&backend, options(tls)) else {
        return;
    };
    let env = ClientEnv::new(target);
    let bucket = unique_bucket(&format!("{}-{}", client.name(), backend.name()));
    client.make_bucket(&env, &bucket);

    let mut sizes = vec![0, 1, 5 * MIB + 1];
    if with_100_mib {
        sizes.push(100 * MIB);
    }
    let mut expected = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let key = format!("dir/object-{size}");
        let src = random_bytes(env.dir(), &format!("src-{size}"), size, i as u64 + 1);
        client.put(&env, &src, &bucket, &key);
        let back = env.dir().join(format!("back-{size}"));
        client.get(&env, &bucket, &key, &back);
        assert_eq!(
            std::fs::metadata(&back).map(|m| m.len()).ok(),
            Some(size),
            "{}: {key} came back with another length",
            client.name()
        );
        assert_eq!(
            sha256_file(&src),
            sha256_file(&back),
            "{}: {key} came back different",
            client.name()
        );
        // HEAD shows the plaintext size; the 5 MiB + 1 B object went up in two parts,
        // which Ceph RGW and moto show as an ETag ending in "-2".
        let (len, etag) = env.head(&bucket, &key);
        assert_eq!(len, size, "{}: head-object length of {key}", client.name());
        if size == 5 * MIB + 1 && backend.kind != BackendKind::Embedded {
            assert!(
                etag.ends_with("-2"),
                "{}: {key} was not a two-part multipart upload (ETag {etag})",
                client.name()
            );
        }
        if size == 5 * MIB + 1
            && let Some(proxy) = &guard.proxy
        {
            assert_encrypted_at_rest(&backend, proxy, &env, &bucket, &key, &src);
        }
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&back);
        expected.push((key, size));
    }
    expected.sort();
    assert_eq!(
        client.list(&env, &bucket),
        expected,
        "{} listing",
        client.name()
    );
    assert_eq!(
        Client::AwsCli.list(&env, &bucket),
        expected,
        "aws s3 ls after {}",
        client.name()
    );

    for (key, _) in &expected {
        client.delete(&env, &bucket, key);
    }
    assert_eq!(
        client.list(&env, &bucket),
        Vec::new(),
        "{} listing after delete",
        client.name()
    );
    client.remove_bucket(&env, &bucket);
}

/// The object as the backend holds it is not the plaintext: bigger (tags, header)
/// and different. Proves the matrix ran with encryption on, not as a pass-through.
fn assert_encrypted_at_rest(
    backend: &Backend,
    proxy: &TestProxy,
    env: &ClientEnv,
    bucket: &str,
    key: &str,
    plaintext: &Path,
) {
    let raw = env.dir().join("raw-at-rest");
    match backend.direct_target() {
        Some(mut target) => {
            // Checksums the backend stored were computed on ciphertext by the proxy;
            // this read is not a client's, so do not let botocore judge it.
            target.client_env.push((
                "AWS_RESPONSE_CHECKSUM_VALIDATION".into(),
                "when_required".into(),
            ));
            let direct = ClientEnv::new(target);
            let raw_s = raw.to_str().expect("UTF-8 temp path");
            direct.run(
                Client::AwsCli,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    bucket,
                    "--key",
                    key,
                    raw_s,
                ],
            );
        }
        None => {
            let data_dir = proxy
                .endpoints()
                .embedded_data_dir
                .clone()
                .expect("the embedded backend reports its data dir");
            // s3s-fs keeps BUCKET/KEY as a file, under `objects/` in sealgate's layout.
            let file = [data_dir.join("objects"), data_dir]
                .iter()
                .map(|root| root.join(bucket).join(key))
                .find(|f| f.is_file())
                .unwrap_or_else(|| panic!("no file for {bucket}/{key} in the embedded data dir"));
            std::fs::copy(file, &raw).expect("copy the embedded backend's object file");
        }
    }
    let raw_len = std::fs::metadata(&raw).map(|m| m.len()).unwrap_or(0);
    let plain_len = std::fs::metadata(plaintext).map(|m| m.len()).unwrap_or(0);
    assert!(
        raw_len > plain_len,
        "{key} at rest is {raw_len} B for {plain_len} B of plaintext: not encrypted?"
    );
    assert_ne!(
        sha256_file(&raw),
        sha256_file(plaintext),
        "{key} is stored as plaintext"
    );
    assert!(
        proxy.metric_sum("sealgate_requests_total", &[]) > 0.0,
        "the proxy counted no requests"
    );
    let _ = std::fs::remove_file(&raw);
}

/// Presigned GET and PUT: aws CLI (`s3 presign`, SigV4 GET) and boto3
/// (`generate_presigned_url` for get_object and put_object, SigV4 and SigV2), fetched
/// and uploaded with curl as a browser or a script would.
fn presigned(backend: Option<Backend>, tls: bool) {
    let backend = require!(backend);
    let Some((target, _guard)) = target_for(&backend, options(tls)) else {
        return;
    };
    let env = ClientEnv::new(target);
    let bucket = unique_bucket(&format!("presign-{}", backend.name()));
    Client::AwsCli.make_bucket(&env, &bucket);
    let src = random_bytes(env.dir(), "src", 100_000, 7);
    Client::AwsCli.put(&env, &src, &bucket, "object");

    let url = env.run(
        Client::AwsCli,
        &[
            "s3",
            "presign",
            &format!("s3://{bucket}/object"),
            "--expires-in",
            "600",
        ],
    );
    let back = env.dir().join("back-aws");
    assert_eq!(env.curl_get(url.trim(), &back), 200, "aws presigned GET");
    assert_eq!(
        sha256_file(&back),
        sha256_file(&src),
        "aws presigned GET body"
    );

    for version in ["s3v4", "s3"] {
        // PUT through a presigned URL, then GET it back through another one.
        let key = format!("presigned-put-{version}");
        let url = env.run(Client::Boto3, &["presign", "put", version, &bucket, &key]);
        assert_eq!(
            env.curl_put(url.trim(), &src),
            200,
            "boto3 {version} presigned PUT"
        );
        let url = env.run(Client::Boto3, &["presign", "get", version, &bucket, &key]);
        let back = env.dir().join(format!("back-{version}"));
        assert_eq!(
            env.curl_get(url.trim(), &back),
            200,
            "boto3 {version} presigned GET"
        );
        assert_eq!(
            sha256_file(&back),
            sha256_file(&src),
            "boto3 {version} presigned GET body"
        );
        assert_eq!(
            env.head(&bucket, &key).0,
            100_000,
            "size after {version} presigned PUT"
        );
    }

    // A tampered signature must be refused, not served.
    let url = env.run(
        Client::Boto3,
        &["presign", "get", "s3v4", &bucket, "object"],
    );
    let tampered = tamper_signature(url.trim());
    if backend.kind != BackendKind::Moto || !common::direct_mode() {
        // (moto checks no signatures, so only the proxy can refuse it)
        let status = env.curl_get(&tampered, &env.dir().join("tampered"));
        assert_eq!(status, 403, "tampered presigned URL answered {status}");
    }
}

/// Flips the last hex digit of `X-Amz-Signature`.
fn tamper_signature(url: &str) -> String {
    let (head, sig) = url
        .split_once("X-Amz-Signature=")
        .expect("a SigV4 presigned URL");
    let (sig, tail) = sig.split_at(sig.find('&').unwrap_or(sig.len()));
    let mut sig: Vec<char> = sig.chars().collect();
    if let Some(last) = sig.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    format!(
        "{head}X-Amz-Signature={}{tail}",
        sig.into_iter().collect::<String>()
    )
}

/// `aws s3 sync` up and down twice: the second run of each transfers nothing, which
/// only holds when listings show plaintext sizes.
fn sync_twice(backend: Option<Backend>, tls: bool) {
    let backend = require!(backend);
    let Some((target, _guard)) = target_for(&backend, options(tls)) else {
        return;
    };
    let env = ClientEnv::new(target);
    let bucket = unique_bucket(&format!("sync-{}", backend.name()));
    Client::AwsCli.make_bucket(&env, &bucket);
    let local = env.dir().join("local");
    std::fs::create_dir_all(local.join("sub")).expect("mkdir");
    let files = [
        ("empty", 0),
        ("one", 1),
        ("sub/small", 70_000),
        ("sub/multi", 5 * MIB + 1),
    ];
    // Files last changed an hour ago, as in a real tree: aws CLI re-uploads when the
    // local mtime is newer than LastModified, which has whole seconds only, so files
    // written in the same second as their upload would race.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (i, (name, size)) in files.iter().enumerate() {
        let path = random_bytes(&local, name, *size, 100 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(an_hour_ago))
            .expect("set mtime");
    }
    let remote = format!("s3://{bucket}/tree/");
    let local_s = local.to_str().expect("UTF-8 temp path");
    let first = env.run(
        Client::AwsCli,
        &["s3", "sync", "--no-progress", local_s, &remote],
    );
    assert_eq!(
        first.matches("upload:").count(),
        files.len(),
        "first sync:\n{first}"
    );
    let second = env.run(
        Client::AwsCli,
        &["s3", "sync", "--no-progress", local_s, &remote],
    );
    assert!(
        !second.contains("upload:"),
        "second sync transferred again:\n{second}"
    );

    let down = env.dir().join("down");
    let down_s = down.to_str().expect("UTF-8 temp path");
    let first = env.run(
        Client::AwsCli,
        &["s3", "sync", "--no-progress", &remote, down_s],
    );
    assert_eq!(
        first.matches("download:").count(),
        files.len(),
        "first download sync:\n{first}"
    );
    for (name, _) in files {
        assert_eq!(
            sha256_file(&local.join(name)),
            sha256_file(&down.join(name)),
            "{name}"
        );
    }
    let second = env.run(
        Client::AwsCli,
        &["s3", "sync", "--no-progress", &remote, down_s],
    );
    assert!(
        !second.contains("download:"),
        "second download sync transferred again:\n{second}"
    );
}

/// One test per backend, scheme and client; `big` adds the 100 MiB object.
macro_rules! matrix {
    ($($name:ident: $backend:ident, $tls:expr, $client:ident, $big:expr;)*) => {$(
        #[test]
        fn $name() {
            round_trip(Backend::$backend(), $tls, Client::$client, $big);
        }
    )*};
}

// 100 MiB: aws CLI everywhere, plus one other client per backend and scheme, rotated
// so that every client carries a large object somewhere.
matrix! {
    ceph_http_aws: ceph, false, AwsCli, true;
    ceph_http_boto3: ceph, false, Boto3, false;
    ceph_http_s3cmd: ceph, false, S3cmd, false;
    ceph_http_s5cmd: ceph, false, S5cmd, true;
    ceph_http_rclone: ceph, false, Rclone, false;
    ceph_https_aws: ceph, true, AwsCli, true;
    ceph_https_boto3: ceph, true, Boto3, false;
    ceph_https_s3cmd: ceph, true, S3cmd, false;
    ceph_https_s5cmd: ceph, true, S5cmd, false;
    ceph_https_rclone: ceph, true, Rclone, true;
    moto_http_aws: moto, false, AwsCli, true;
    moto_http_boto3: moto, false, Boto3, true;
    moto_http_s3cmd: moto, false, S3cmd, false;
    moto_http_s5cmd: moto, false, S5cmd, false;
    moto_http_rclone: moto, false, Rclone, false;
    moto_https_aws: moto, true, AwsCli, true;
    moto_https_boto3: moto, true, Boto3, false;
    moto_https_s3cmd: moto, true, S3cmd, true;
    moto_https_s5cmd: moto, true, S5cmd, false;
    moto_https_rclone: moto, true, Rclone, false;
    embedded_http_aws: embedded, false, AwsCli, true;
    embedded_http_boto3: embedded, false, Boto3, false;
    embedded_http_s3cmd: embedded, false, S3cmd, false;
    embedded_http_s5cmd: embedded, false, S5cmd, false;
    embedded_http_rclone: embedded, false, Rclone, true;
    embedded_https_aws: embedded, true, AwsCli, true;
    embedded_https_boto3: embedded, true, Boto3, true;
    embedded_https_s3cmd: embedded, true, S3cmd, false;
    embedded_https_s5cmd: embedded, true, S5cmd, false;
    embedded_https_rclone: embedded, true, Rclone, false;
}

macro_rules! per_backend {
    ($check:ident: $($name:ident: $backend:ident, $tls:expr;)*) => {$(
        #[test]
        fn $name() {
            $check(Backend::$backend(), $tls);
        }
    )*};
}

per_backend! { presigned:
    presigned_ceph_http: ceph, false;
    presigned_ceph_https: ceph, true;
    presigned_moto_http: moto, false;
    presigned_moto_https: moto, true;
    presigned_embedded_http: embedded, false;
    presigned_embedded_https: embedded, true;
}

per_backend! { sync_twice:
    sync_ceph_http: ceph, false;
    sync_ceph_https: ceph, true;
    sync_moto_http: moto, false;
    sync_moto_https: moto, true;
    sync_embedded_http: embedded, false;
    sync_embedded_https: embedded, true;
}
