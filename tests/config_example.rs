//! `config.example.toml` parses, and documents every key the config tree has.

use std::collections::BTreeSet;

use sealgate::config::{Config, CredentialEntry};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");

#[test]
fn example_config_parses_and_equals_the_defaults() {
    let parsed =
        Config::load(Some(std::path::Path::new(EXAMPLE)), Vec::new()).expect("example parses");
    assert_eq!(
        parsed,
        Config::default(),
        "the example shows every default value"
    );
}

#[test]
fn example_uncommented_parses_with_every_optional_key_set() {
    // Uncommenting the optional keys (but the TLS pair and files that must exist) must
    // still give a valid config: the example's sample values are real values.
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start_matches("# ");
        let is_key = line.starts_with("# ")
            && t.split_once(" = ").is_some_and(|(k, _)| {
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        let needs_files = ["tls_cert", "tls_key", "http_listen", "ca_bundle"]
            .iter()
            .any(|k| t.starts_with(k));
        let is_table = line.starts_with("# [");
        if (is_key && !needs_files) || is_table {
            out.push_str(t);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("all.toml");
    std::fs::write(&f, out).unwrap();
    let c = Config::load(Some(&f), Vec::new()).expect("uncommented example parses");
    assert_eq!(c.credentials.len(), 1);
    assert_eq!(c.backend.endpoint.as_deref(), Some("http://127.0.0.1:7480"));
    assert!(!c.policy("legacy-archive").encrypt);
}

/// Every leaf of the config tree, as `section.key` paths.
fn leaves(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn every_config_key_is_documented_in_the_example() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let mut documented = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim_start_matches('#').trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            section = name.to_string();
        } else if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, _)) = t.split_once(" = ")
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            documented.insert(format!("{section}.{k}"));
        }
    }
    let mut keys = BTreeSet::new();
    leaves(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut keys,
    );
    // Collections are empty by default; their element keys come from an entry with
    // every optional key set.
    keys.remove("credentials");
    let mut entry = CredentialEntry::new("AK", "SK");
    entry.backend_access_key = Some("BAK".into());
    entry.backend_secret_key = Some("BSK".into());
    leaves(
        "credentials",
        &serde_json::to_value(entry).unwrap(),
        &mut keys,
    );
    keys.remove("encryption.buckets");
    let missing: Vec<_> = keys.iter().filter(|k| !documented.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys missing from config.example.toml: {missing:?}"
    );
    assert!(documented.contains("encryption.buckets.legacy-archive.encrypt"));
}
