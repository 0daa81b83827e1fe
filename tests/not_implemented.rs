//! Operations the proxy still answers `501 NotImplemented` on encrypting buckets, each
//! sent correctly signed (boto3, or botocore's signer for hand-built requests), each
//! checked for the `501 NotImplemented` XML, and the backend checked (directly, not
//! through the proxy) for anything they might have stored:
//! - SelectObjectContent (S3 Select would run on ciphertext),
//! - WriteGetObjectResponse (Object Lambda: would store a client body as is).
//!
//! PostObject is built now (`tests/post_object.rs`).

mod common;

use common::{Backend, Client, ClientEnv, ProxyOptions, TestProxy, unique_bucket};

const SCRIPT: &str = include_str!("common/object_surface.py");

#[test]
fn unimplemented_operations_answer_501_and_store_nothing() {
    let backend = require!(Backend::ceph());
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let direct = ClientEnv::new(backend.direct_target().expect("Ceph is reachable directly"));
    let bucket = unique_bucket("notimpl");
    env.run(Client::AwsCli, &["s3", "mb", &format!("s3://{bucket}")]);
    let out = env.run_python("object_surface.py", SCRIPT, &["not-implemented", &bucket]);
    let answers: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("object_surface.py printed no JSON ({e}): {out}"));
    for op in ["SelectObjectContent", "WriteGetObjectResponse"] {
        assert!(
            answers.get(op).is_some(),
            "{op} was not exercised: {answers}"
        );
    }
    let message = answers["SelectObjectContent"].as_str().unwrap_or_default();
    assert!(
        message.contains("SelectObjectContent"),
        "the 501 names the operation: {message}"
    );
    // The backend holds the one object written on purpose and nothing else.
    let stored: Vec<String> = Client::AwsCli
        .list(&direct, &bucket)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(stored, vec!["csv".to_string()], "backend holds {stored:?}");
    let buckets = direct.run(Client::AwsCli, &["s3", "ls"]);
    assert!(
        !buckets.contains("WriteGetObjectResponse"),
        "a WriteGetObjectResponse bucket appeared: {buckets}"
    );
    env.run(
        Client::AwsCli,
        &["s3", "rb", "--force", &format!("s3://{bucket}")],
    );
}
