//! PostObject (browser form uploads) through the encrypting proxy to the embedded
//! backend: boto3's SigV4 presigned POST and a SigV2 form are stored sealed and read
//! back identical; 201, 303 and 204 answers; tampered, expired, over-range, extra-field
//! and anonymous forms are refused; forms cut short or ending wrongly store nothing;
//! a 20 MiB file streams through. The stored files are checked for plaintext on disk.

mod common;

use common::{
    Backend, Client, ClientEnv, ProxyOptions, TestProxy, sha256_file, status_bytes, unique_bucket,
};

const SCRIPT: &str = include_str!("common/post_object.py");
const PATTERN: &[u8] = b"SEALGATE-PATTERN";

/// One test at a time: the memory test measures this process, which hosts every
/// test's proxy.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn form_uploads_are_verified_sealed_and_streamed() {
    let _serial = serial();
    let backend = require!(Backend::embedded());
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("postobj");
    Client::AwsCli.make_bucket(&env, &bucket);
    let bytes_in_before = proxy.metric_sum("sealgate_bytes_received_total", &[]);

    let out = env.run_python("post_object.py", SCRIPT, &["main", &bucket]);
    let results: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("post_object.py printed no JSON ({e}): {out}"));

    // What the backend holds is ciphertext with an envelope, for both uploads.
    let objects = proxy.dir().join("embedded/objects").join(&bucket);
    for key in ["posted", "big"] {
        let key = results[key].as_str().expect("key printed");
        let stored = std::fs::read(objects.join(key))
            .unwrap_or_else(|e| panic!("{key} is not on the backend: {e}"));
        assert!(
            !stored.windows(PATTERN.len()).any(|w| w == PATTERN),
            "{key}: plaintext on the backend"
        );
    }
    // Broken and refused forms left nothing behind.
    for key in [
        "cut-small",
        "cut-large",
        "bad-end",
        "tampered",
        "expired",
        "too-large",
        "anonymous",
        "extra",
        "chunked",
        "reserved",
    ] {
        assert!(
            !objects.join(key).exists(),
            "{key} is on the backend after a refused form"
        );
    }

    // Counted as PostObject, with the form's bytes in the proxy's byte counter.
    let posted = proxy.metric_sum(
        "sealgate_requests_total",
        &[("op", "PostObject"), ("status", "204")],
    );
    assert!(posted >= 3.0, "PostObject 204s counted: {posted}");
    let form_bytes = results["form_bytes"].as_f64().unwrap_or_default();
    let bytes_in = proxy.metric_sum("sealgate_bytes_received_total", &[]) - bytes_in_before;
    assert!(
        bytes_in >= form_bytes,
        "request bytes {bytes_in} < the 20 MiB form's {form_bytes}"
    );
}

#[test]
fn form_uploads_to_a_plain_bucket_are_stored_as_sent() {
    let _serial = serial();
    let backend = require!(Backend::embedded());
    let proxy = TestProxy::start(
        &backend,
        ProxyOptions {
            encrypt: false,
            ..ProxyOptions::http()
        },
    );
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("postplain");
    Client::AwsCli.make_bucket(&env, &bucket);
    let out = env.run_python("post_object.py", SCRIPT, &["plain", &bucket]);
    let results: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("post_object.py printed no JSON ({e}): {out}"));
    let objects = proxy.dir().join("embedded/objects").join(&bucket);
    for key in ["plain-small", "plain-large"] {
        let path = objects.join(key);
        let stored =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{key} is not on the backend: {e}"));
        assert_eq!(
            Some(sha256_file(&path).as_str()),
            results[key].as_str(),
            "{key}: stored as sent"
        );
        assert!(
            stored.windows(PATTERN.len()).any(|w| w == PATTERN),
            "{key}: a plain bucket holds the plaintext"
        );
    }
}

/// The file of a large form streams through: the proxy (in this process, the client in
/// a child) grows by well under the file's size while a 64 MiB form goes up.
#[test]
fn a_large_form_streams_without_being_buffered() {
    const MIB: u64 = 1024 * 1024;
    let _serial = serial();
    let backend = require!(Backend::embedded());
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("poststream");
    Client::AwsCli.make_bucket(&env, &bucket);
    // Warm up the lazy allocations (KMS key, pools) with a first large form.
    env.run_python("post_object.py", SCRIPT, &["stream", &bucket, "4"]);
    let baseline = status_bytes("VmRSS");
    // Resets VmHWM to the current RSS (Linux `clear_refs` value 5).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let out = env.run_python("post_object.py", SCRIPT, &["stream", &bucket, "64"]);
    let growth = status_bytes("VmHWM").saturating_sub(baseline);
    let results: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("post_object.py printed no JSON ({e}): {out}"));
    println!("64 MiB form: peak RSS growth {} MiB", growth / MIB);
    assert!(
        growth < 32 * MIB,
        "resident memory grew by {} MiB during a 64 MiB form upload",
        growth / MIB
    );
    let back = env.dir().join("stream.back");
    Client::AwsCli.get(&env, &bucket, "stream.bin", &back);
    assert_eq!(
        Some(sha256_file(&back).as_str()),
        results["sha256"].as_str(),
        "the streamed form reads back identical"
    );
}
