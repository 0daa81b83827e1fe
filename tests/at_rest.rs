//! What the backend holds: an object written through the encrypting proxy to Ceph RGW
//! and to moto, read back directly from the backend, contains none of its plaintext (a
//! known pattern is searched for), carries an envelope of at most 1 KiB, and still reads
//! back byte-identical through the proxy.

mod common;

use common::{
    Backend, Client, ClientEnv, ProxyOptions, TestProxy, random_bytes, sha256_file, unique_bucket,
};

/// A 16-byte marker repeated through the plaintext: any plaintext window of the stored
/// body would contain it.
const PATTERN: &[u8] = b"SEALGATE-PATTERN";

fn check_backend(backend: Backend) {
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let via_proxy = ClientEnv::new(proxy.target());
    let direct = ClientEnv::new(backend.direct_target().expect("direct target"));
    let bucket = unique_bucket("atrest");
    Client::AwsCli.make_bucket(&via_proxy, &bucket);

    for (key, len) in [
        ("small", 100usize),
        ("segments", 300_000),
        ("multipart", 6 * 1024 * 1024),
    ] {
        let plain_path = via_proxy.dir().join(format!("{key}.plain"));
        let plain: Vec<u8> = PATTERN.iter().copied().cycle().take(len).collect();
        std::fs::write(&plain_path, &plain).unwrap();
        Client::AwsCli.put(&via_proxy, &plain_path, &bucket, key);

        let stored = direct.dir().join(format!("{key}.stored"));
        Client::AwsCli.get(&direct, &bucket, key, &stored);
        let body = std::fs::read(&stored).unwrap();
        assert!(
            body.len() > len,
            "{key}: stored body is not larger than the plaintext"
        );
        assert!(
            !body.windows(PATTERN.len()).any(|w| w == PATTERN),
            "{key}: plaintext pattern found in the stored body on {}",
            backend.name()
        );
        let meta = direct.run(
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
        let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
        let envelope = v["Metadata"]["sealgate-envelope"]
            .as_str()
            .expect("envelope stored on the backend");
        assert!(
            envelope.len() <= 1024,
            "{key}: envelope of {} bytes",
            envelope.len()
        );
        println!(
            "{}: {key}: {len} B plaintext, {} B stored, envelope {} B",
            backend.name(),
            body.len(),
            envelope.len()
        );

        let back = via_proxy.dir().join(format!("{key}.back"));
        Client::AwsCli.get(&via_proxy, &bucket, key, &back);
        assert_eq!(
            sha256_file(&back),
            sha256_file(&plain_path),
            "{key}: read back through the proxy"
        );
        // Random data too, so a pattern-specific accident cannot pass.
        let random = random_bytes(via_proxy.dir(), &format!("{key}.random"), len as u64, 7);
        Client::AwsCli.put(&via_proxy, &random, &bucket, &format!("{key}-random"));
        let back = via_proxy.dir().join(format!("{key}.random.back"));
        Client::AwsCli.get(&via_proxy, &bucket, &format!("{key}-random"), &back);
        assert_eq!(sha256_file(&back), sha256_file(&random));
    }
}

#[test]
fn ceph_holds_only_ciphertext() {
    let backend = require!(Backend::ceph());
    check_backend(backend);
}

#[test]
fn moto_holds_only_ciphertext() {
    let backend = require!(Backend::moto());
    check_backend(backend);
}
