//! The Grafana dashboard (`deploy/grafana/sealgate.json`) and the Prometheus alert rules
//! (`deploy/prometheus/alerts.yaml`) against the proxy they describe: the dashboard
//! matches `deploy/grafana/dashboard.schema.json` (a subset of Grafana's dashboard
//! model, checked by the small validator below), its layout and queries are sane, every
//! alert rule is complete, and every `sealgate_*` metric named in a PromQL expression
//! exists on the `/metrics` of an in-process proxy after a little traffic. A renamed
//! metric thus breaks this test instead of silently emptying a panel or an alert.
//!
//! The YAML is read with PyYAML (`python3`, preinstalled; no YAML crate is a dependency).

mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::SystemTime;

use raw::*;
use serde_json::Value;

const DASHBOARD: &str = include_str!("../deploy/grafana/sealgate.json");
const SCHEMA: &str = include_str!("../deploy/grafana/dashboard.schema.json");
const ALERTS: &str = include_str!("../deploy/prometheus/alerts.yaml");

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("sealgate.json is JSON")
}

fn panels(d: &Value) -> &Vec<Value> {
    d["panels"].as_array().expect("panels is an array")
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_exprs(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str()) {
            out.push(q.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A JSON Schema subset: type, required, properties, items, minItems, minimum, maximum,
// enum, const, minLength and `$ref: "#/$defs/NAME"` (all the schema file uses).

/// The keywords the checker understands; any other keyword in the schema is an error,
/// so the schema cannot ask for a check that never runs.
const KEYWORDS: &str = "$schema $id $defs $ref title description type required properties \
                        items minItems minimum maximum enum const minLength";

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("schema uses unsupported type {other}"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    for key in s.keys() {
        assert!(
            KEYWORDS.split(' ').any(|k| k == key),
            "schema keyword {key} at {at} is not supported"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("$ref into $defs");
        check(root, &root["$defs"][name], v, at, errors);
    }
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(n) => vec![n.as_str()],
            Value::Array(ns) => ns.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type keyword at {at}"),
        };
        if !names.iter().any(|n| type_matches(n, v)) {
            errors.push(format!("{at}: expected {names:?}, found {v}"));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: expected {c}, found {v}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        errors.push(format!("{at}: {n} < minimum {min}"));
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64())
        && n > max
    {
        errors.push(format!("{at}: {n} > maximum {max}"));
    }
    if let (Some(min), Some(text)) = (s.get("minLength").and_then(Value::as_u64), v.as_str())
        && (text.chars().count() as u64) < min
    {
        errors.push(format!("{at}: shorter than {min}"));
    }
    if let Some(obj) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().expect("required names are strings");
            if !obj.contains_key(r) {
                errors.push(format!("{at}: missing {r}"));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                if let Some(child) = obj.get(k) {
                    check(root, sub, child, &format!("{at}.{k}"), errors);
                }
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            errors.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(sub) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(root, sub, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

fn schema_errors(v: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    let mut errors = Vec::new();
    check(&schema, &schema, v, "$", &mut errors);
    errors
}

#[test]
fn dashboard_matches_schema() {
    let errors = schema_errors(&dashboard());
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn schema_check_rejects_broken_dashboards() {
    type Breakage = (&'static str, fn(&mut Value));
    let breakages: [Breakage; 5] = [
        ("no uid", |d| {
            d.as_object_mut().unwrap().remove("uid");
        }),
        ("old schemaVersion", |d| d["schemaVersion"] = 16.into()),
        ("panel without targets", |d| {
            d["panels"][0].as_object_mut().unwrap().remove("targets");
        }),
        ("panel too wide", |d| {
            d["panels"][1]["gridPos"]["w"] = 30.into()
        }),
        ("graph panel", |d| d["panels"][2]["type"] = "graph".into()),
    ];
    for (what, break_it) in breakages {
        let mut d = dashboard();
        break_it(&mut d);
        assert!(!schema_errors(&d).is_empty(), "{what} passed the schema");
    }
}

// ---------------------------------------------------------------------------------------
// Layout and queries: what a schema cannot say.

#[test]
fn panels_have_unique_ids_and_do_not_overlap() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    let mut cells = BTreeMap::new();
    for p in panels(&d) {
        let id = p["id"].as_u64().unwrap();
        assert!(ids.insert(id), "panel id {id} used twice");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap());
        assert!(x + w <= 24, "panel {id} is wider than the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), id) {
                    panic!("panels {other} and {id} overlap at ({cx},{cy})");
                }
            }
        }
        let refs: Vec<&str> = p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<_> = refs.iter().collect();
        assert_eq!(unique.len(), refs.len(), "panel {id} repeats a refId");
    }
}

#[test]
fn every_query_uses_the_datasource_input() {
    let d = dashboard();
    let input = d["__inputs"][0]["name"].as_str().unwrap();
    let uid = format!("${{{input}}}");
    for p in panels(&d) {
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "panel {}", p["id"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], uid.as_str(), "panel {}", p["id"]);
        }
    }
    for e in dashboard_exprs(&d) {
        assert_balanced(&e);
    }
}

#[test]
fn dashboard_shows_the_kms_economy() {
    let d = dashboard();
    let stat_exprs: Vec<&str> = panels(&d)
        .iter()
        .filter(|p| p["type"] == "stat")
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(
        stat_exprs
            .iter()
            .any(|e| e.contains("sealgate_kms_calls_saved_total")
                && e.contains("sealgate_kms_requests_total")
                && e.contains('/')),
        "no stat panel shows saved / (saved + KMS calls)"
    );
    let all: String = dashboard_exprs(&d).join("\n");
    for needle in [
        "sealgate_requests_total",
        "sealgate_request_duration_seconds_bucket",
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
        "sealgate_bytes_received_total",
        "sealgate_bytes_sent_total",
        "sealgate_auth_failures_total",
        "sealgate_upstream_errors_total",
        "sum by (op, result) (rate(sealgate_kms_requests_total",
        "sealgate_kms_request_duration_seconds_bucket",
        "sealgate_bucket_key_cache_hits_total",
        "sealgate_bucket_key_cache_misses_total",
    ] {
        assert!(all.contains(needle), "no panel queries {needle}");
    }
}

// ---------------------------------------------------------------------------------------
// PromQL: metric names and bracket balance.

/// Names starting with `sealgate_` outside string literals, with histogram series
/// suffixes kept (they are resolved against the exposition's TYPE lines).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut quote = None;
    let mut word = String::new();
    let mut prev_escape = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if let Some(q) = quote {
            if c == q && !prev_escape {
                quote = None;
            }
            prev_escape = c == '\\' && !prev_escape;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if word.starts_with("sealgate_") {
            names.insert(word.clone());
        }
        word.clear();
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
        }
    }
    names
}

fn assert_balanced(expr: &str) {
    let mut stack = Vec::new();
    for c in expr.chars() {
        match c {
            '(' | '{' | '[' => stack.push(c),
            ')' | '}' | ']' => {
                let open = stack.pop();
                let want = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                assert_eq!(open, Some(want), "unbalanced {c} in {expr}");
            }
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {expr}");
}

#[test]
fn metric_names_skip_strings_and_keep_suffixes() {
    let e = r#"histogram_quantile(0.5, sum by (le) (rate(sealgate_a_bucket{x="sealgate_no"}[5m]))) / sealgate_b_total"#;
    let got: Vec<String> = metric_names(e).into_iter().collect();
    assert_eq!(got, ["sealgate_a_bucket", "sealgate_b_total"]);
}

// ---------------------------------------------------------------------------------------
// Alert rules.

/// The rules file as JSON, converted by PyYAML.
fn alert_rules() -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(
            std::fs::File::open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/prometheus/alerts.yaml"
            ))
            .expect("alerts.yaml"),
        )
        .output()
        .expect("python3 with PyYAML runs");
    assert!(
        out.status.success(),
        "PyYAML could not read alerts.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON from python3");
    let groups = doc["groups"].as_array().expect("groups list");
    assert!(!groups.is_empty());
    groups
        .iter()
        .flat_map(|g| {
            assert!(g["name"].as_str().is_some_and(|n| !n.is_empty()), "{g}");
            g["rules"].as_array().expect("rules list").clone()
        })
        .collect()
}

fn is_duration(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["ms", "s", "m", "h", "d", "w", "y"].contains(&unit)
}

#[test]
fn alert_rules_are_complete() {
    assert!(ALERTS.starts_with('#'), "alerts.yaml opens with a comment");
    let rules = alert_rules();
    let mut names = BTreeSet::new();
    for r in &rules {
        let name = r["alert"].as_str().expect("every rule is an alert");
        assert!(names.insert(name.to_string()), "alert {name} twice");
        let expr = r["expr"].as_str().unwrap_or_default();
        assert!(!expr.trim().is_empty(), "{name}: expr");
        assert_balanced(expr);
        assert!(
            r["for"].as_str().is_some_and(is_duration),
            "{name}: for is a duration"
        );
        assert!(
            ["critical", "warning", "info"]
                .contains(&r["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: labels.severity"
        );
        for a in ["summary", "description"] {
            assert!(
                r["annotations"][a].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: annotations.{a}"
            );
        }
    }
    let expr_of = |n: &str| {
        rules
            .iter()
            .find(|r| r["alert"] == n)
            .and_then(|r| r["expr"].as_str())
            .unwrap_or_else(|| panic!("no alert {n}"))
            .to_string()
    };
    assert!(expr_of("SealgateDown").contains("up{"));
    assert!(expr_of("SealgateKmsErrors").contains(r#"result!="ok""#));
    assert!(
        expr_of("SealgateKmsLatencyHigh").contains("sealgate_kms_request_duration_seconds_bucket")
    );
    assert!(expr_of("SealgateBucketKeyCacheMissRatioHigh").contains("misses_total"));
    let saved = expr_of("SealgateKmsSavedRatioLow");
    assert!(saved.contains("sealgate_kms_calls_saved_total") && saved.contains("< 0.9"));
    assert!(expr_of("SealgateHigh5xxRatio").contains(r#"status=~"5..""#));
    assert!(expr_of("SealgateUpstreamErrors").contains("sealgate_upstream_errors_total"));
}

// ---------------------------------------------------------------------------------------
// Every metric the dashboard and the alerts name exists on a live proxy.

fn scrape(admin: SocketAddr) -> String {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    let r = request(admin, req.as_bytes()).expect("metrics answer");
    assert_eq!(r.status, 200);
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Metric family name → type, from the `# TYPE` lines.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

fn exported(name: &str, fams: &BTreeMap<String, String>) -> bool {
    if fams.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|s| {
        name.strip_suffix(s)
            .and_then(|base| fams.get(base))
            .is_some_and(|t| t == "histogram")
    })
}

/// A port nothing listens on (freed at once; a tiny race with other programs).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn every_metric_in_dashboard_and_alerts_is_exported() {
    // Healthy proxy: a PUT and two GETs (one from the bucket-key cache), a bad signature.
    let p = Proxy::start();
    let ok = |method: &str, path: &str, body: &[u8]| {
        let r = request(p.addr, &signed_request(&p, method, path, body, &[])).unwrap();
        assert_eq!(r.status, 200, "{method} {path}");
    };
    ok("PUT", "/dash-metrics", b"");
    ok("PUT", "/dash-metrics/k", b"hello");
    ok("GET", "/dash-metrics/k", b"");
    let host = p.addr.to_string();
    let forged = sign_header(
        Req::new("GET", "/dash-metrics/k", b""),
        &host,
        &p.ak,
        "not-the-secret",
        SystemTime::now(),
        &sha256_hex(b""),
    );
    let r = request(p.addr, &forged.raw(&host, true)).unwrap();
    assert_eq!(r.status, 403);
    let mut fams = families(&scrape(p.admin));

    // A proxy whose backend refuses connections, for sealgate_upstream_errors_total.
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let dead = Proxy::start_with(|c| {
        c.backend.endpoint = Some(endpoint);
        c.backend.access_key = Some("dash-ak".into());
        c.backend.secret_key = Some("dash-sk".into());
        c.backend.connect_timeout_secs = 2;
    });
    let r = request(
        dead.addr,
        &signed_request(&dead, "GET", "/dash-metrics", b"", &[]),
    )
    .unwrap();
    assert!(r.status >= 500, "dead backend answered {}", r.status);
    fams.extend(families(&scrape(dead.admin)));

    let d = dashboard();
    let mut used: BTreeMap<String, &str> = BTreeMap::new();
    for e in dashboard_exprs(&d) {
        for n in metric_names(&e) {
            used.insert(n, "dashboard");
        }
    }
    for r in alert_rules() {
        for n in metric_names(r["expr"].as_str().unwrap_or_default()) {
            used.entry(n).or_insert("alerts");
        }
    }
    assert!(used.len() >= 15, "found only {used:?}");
    let missing: Vec<_> = used.iter().filter(|(n, _)| !exported(n, &fams)).collect();
    assert!(
        missing.is_empty(),
        "not on /metrics: {missing:?}\nexported: {:?}",
        fams.keys().collect::<Vec<_>>()
    );
}
