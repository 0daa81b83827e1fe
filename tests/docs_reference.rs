//! `docs/OPERATIONS.md` against the truth: its configuration table lists exactly the
//! keys of `config.example.toml`, with the example's defaults and the right
//! environment variable names; its metrics table lists exactly the `sealgate_*`
//! metrics a live proxy exports on `/metrics`, with the right types and labels.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use common::{Backend, Client, ClientEnv, ProxyOptions, TestProxy, unique_bucket};

const OPERATIONS: &str = include_str!("../docs/OPERATIONS.md");
const EXAMPLE: &str = include_str!("../config.example.toml");

/// The rows of the markdown table that follows `heading`, as cells without backticks.
fn table_after(heading: &str) -> Vec<Vec<String>> {
    let start = OPERATIONS
        .find(heading)
        .unwrap_or_else(|| panic!("OPERATIONS.md has no {heading:?}"));
    OPERATIONS[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

/// Every key of the example as `section.key`, with its value when it is set
/// (uncommented) or `None` when the example shows it commented out (unset).
fn example_keys() -> BTreeMap<String, Option<String>> {
    let mut keys = BTreeMap::new();
    let mut section = String::new();
    for line in EXAMPLE.lines() {
        let commented = line.starts_with('#');
        let t = line.trim_start_matches('#').trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            section = name.to_string();
        } else if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, v)) = t.split_once(" = ")
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            let mut key = format!("{section}.{k}");
            // Per-bucket tables are one documented row.
            if key.starts_with("encryption.buckets.") {
                key = "encryption.buckets.NAME.*".into();
            }
            let value = (!commented).then(|| v.trim().to_string());
            keys.entry(key).or_insert(value);
        }
    }
    keys
}

#[test]
fn configuration_reference_matches_the_example() {
    let rows = table_after("## 2. Configuration reference");
    let documented: BTreeMap<String, Vec<String>> =
        rows.into_iter().map(|r| (r[0].clone(), r)).collect();
    let example = example_keys();
    let in_example: BTreeSet<_> = example.keys().cloned().collect();
    let in_docs: BTreeSet<_> = documented.keys().cloned().collect();
    assert_eq!(
        in_docs.difference(&in_example).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented in OPERATIONS.md but not in config.example.toml"
    );
    assert_eq!(
        in_example.difference(&in_docs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in config.example.toml but not documented in OPERATIONS.md"
    );
    for (key, value) in &example {
        let row = &documented[key];
        assert_eq!(
            row.len(),
            5,
            "{key}: a row has key, type, default, env, meaning"
        );
        let default = &row[2];
        match value {
            Some(v) => assert_eq!(default, v, "{key}: default differs from the example"),
            None => assert_eq!(default, "unset", "{key}: the example leaves it unset"),
        }
        let env = &row[3];
        if key.starts_with("credentials.") {
            assert!(env.contains("file only"), "{key}: {env}");
        } else if !key.contains('*') {
            let expected = format!("SEALGATE_{}", key.replace('.', "__").to_uppercase());
            assert_eq!(env, &expected, "{key}: environment variable name");
        }
        assert!(!row[4].is_empty(), "{key}: no meaning given");
    }
}

#[test]
fn documented_environment_variables_really_configure() {
    // A sample of rows, applied through Config::load: the names are not just pretty.
    let c = sealgate::config::Config::load(
        None,
        vec![
            (
                "SEALGATE_KMS__BUCKET_KEY_TTL_SECS".to_string(),
                "42".to_string(),
            ),
            (
                "SEALGATE_ENCRYPTION__DEFAULT__SEGMENT_SIZE".to_string(),
                "4096".to_string(),
            ),
            (
                "SEALGATE_ENCRYPTION__BUCKETS__LOGS__ENCRYPT".to_string(),
                "false".to_string(),
            ),
            ("SEALGATE_LOG__FORMAT".to_string(), "json".to_string()),
        ],
    )
    .unwrap();
    assert_eq!(c.kms.bucket_key_ttl_secs, 42);
    assert_eq!(c.encryption.default.segment_size, 4096);
    assert!(!c.policy("logs").encrypt);
    assert_eq!(c.log.format, sealgate::config::LogFormat::Json);
}

/// `# TYPE name type` lines of an exposition: name → type.
fn exported_families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Label names seen on the samples of `family`.
fn exported_labels(text: &str, family: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            let base = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            (base == family || name == family).then_some(rest)
        })
        .flat_map(|rest| {
            rest.trim_end_matches(|c| c != '}')
                .trim_end_matches('}')
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|l| l != "le")
        .collect()
}

/// A request with a made-up signature: counts an auth failure and a client error.
fn unsigned_request(proxy: &TestProxy) {
    let addr = proxy.endpoints().s3;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /nobucket HTTP/1.1\r\nHost: {addr}\r\nx-amz-date: 20260101T000000Z\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=NOSUCHKEY/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, \
         Signature=0000000000000000000000000000000000000000000000000000000000000000\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

#[test]
fn metrics_reference_matches_a_live_proxy() {
    let backend = require!(Backend::embedded());
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("docsmetrics");
    Client::AwsCli.make_bucket(&env, &bucket);
    let file = env.dir().join("object");
    std::fs::write(&file, b"metrics reference").unwrap();
    Client::AwsCli.put(&env, &file, &bucket, "a");
    Client::AwsCli.put(&env, &file, &bucket, "b");
    Client::AwsCli.get(&env, &bucket, "a", &env.dir().join("back"));
    unsigned_request(&proxy);

    let text = proxy.metrics_text();
    let exported: BTreeMap<String, String> = exported_families(&text)
        .into_iter()
        .filter(|(n, _)| n.starts_with("sealgate_"))
        .collect();
    let rows = table_after("## 3. Metrics");
    let documented: BTreeMap<String, Vec<String>> =
        rows.into_iter().map(|r| (r[0].clone(), r)).collect();

    let undocumented: Vec<_> = exported
        .keys()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in OPERATIONS.md: {undocumented:?}"
    );
    let missing: Vec<_> = documented
        .keys()
        .filter(|n| !exported.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not on /metrics: {missing:?}"
    );

    for (name, row) in &documented {
        assert_eq!(&row[1], &exported[name], "{name}: documented type");
        let doc_labels: BTreeSet<String> = if row[2] == "—" {
            BTreeSet::new()
        } else {
            row[2]
                .split(", ")
                .map(|l| l.trim_matches('`').to_string())
                .collect()
        };
        assert_eq!(
            doc_labels,
            exported_labels(&text, name),
            "{name}: documented labels"
        );
    }
    // The README walkthrough's metric moved: the second PUT and the GET hit the cache.
    assert!(proxy.metric_sum("sealgate_kms_calls_saved_total", &[]) >= 2.0);
}
