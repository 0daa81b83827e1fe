//! Who the proxy is towards the backend, against Ceph RGW with two backend users:
//! a client mapped to its own backend user gets that user's rights and no more (another
//! user's private bucket answers 403, relayed from Ceph, for reads, listings, copies and
//! writes), while the same client unmapped reaches it as `[backend]`'s user, which
//! proves the mapping is what separates them; what a mapped client writes belongs to
//! its backend user and is sealed at rest. Anonymous requests: refused by the proxy by
//! default even where Ceph's ACL would admit them; with `auth.anonymous = "forward"`
//! sent to Ceph unsigned, so a public-read-write bucket takes sealed objects and serves
//! them decrypted while a private one answers Ceph's 403, and a bad signature is never
//! taken for anonymous. The scenarios are `common/backend_identity.py`.

mod common;

use common::{Backend, ClientEnv, ProxyOptions, Target, TestProxy, unique_bucket};
use sealgate::config::{AnonymousRequests, Config, CredentialEntry};

const SCRIPT: &str = include_str!("common/backend_identity.py");

const CLIENT_A: (&str, &str) = (
    "SGIDENTITYCLIENTA001",
    "sealgate-identity-client-a-secret-00001",
);
const CLIENT_B: (&str, &str) = (
    "SGIDENTITYCLIENTB001",
    "sealgate-identity-client-b-secret-00001",
);

fn keys((access_key, secret_key): (&str, &str)) -> serde_json::Value {
    serde_json::json!({ "access_key": access_key, "secret_key": secret_key })
}

fn backend_keys(b: &Backend) -> serde_json::Value {
    keys((&b.access_key, &b.secret_key))
}

/// Client A with the main Ceph user's keys as its backend pair (the same as
/// `[backend]`'s), client B with `b_backend`'s, or none (the default identity).
fn clients(config: &mut Config, main: &Backend, b_backend: Option<&Backend>) {
    let mut a = CredentialEntry::new(CLIENT_A.0, CLIENT_A.1);
    a.backend_access_key = Some(main.access_key.clone());
    a.backend_secret_key = Some(main.secret_key.clone());
    let mut b = CredentialEntry::new(CLIENT_B.0, CLIENT_B.1);
    if let Some(alt) = b_backend {
        b.backend_access_key = Some(alt.access_key.clone());
        b.backend_secret_key = Some(alt.secret_key.clone());
    }
    config.credentials = vec![a, b];
}

/// Runs `scenario` of the script against `proxy`; it exits non-zero on any failed check.
fn run(proxy: &TestProxy, scenario: &str, main: &Backend, alt: Option<&Backend>) {
    let ceph = main.endpoint.clone().unwrap_or_default();
    let cfg = serde_json::json!({
        "proxy": proxy.endpoint_url(),
        "a": keys(CLIENT_A),
        "b": keys(CLIENT_B),
        "ceph": ceph,
        "ceph_main": backend_keys(main),
        "ceph_alt": alt.map(backend_keys),
        "bucket_a": unique_bucket("ident-a"),
        "bucket_b": unique_bucket("ident-b"),
        "bucket_pub": unique_bucket("ident-pub"),
        "bucket_priv": unique_bucket("ident-priv"),
    });
    let env = ClientEnv::new(Target {
        endpoint: proxy.endpoint_url(),
        access_key: CLIENT_A.0.into(),
        secret_key: CLIENT_A.1.into(),
        ca_cert: None,
        client_env: Vec::new(),
        sse_kms: true,
    });
    let out = env.run_python("backend_identity.py", SCRIPT, &[scenario, &cfg.to_string()]);
    assert!(
        out.contains(&format!("{scenario}: ok")),
        "{scenario} did not finish: {out}"
    );
}

#[test]
fn a_mapped_client_has_its_backend_users_rights_only() {
    let main = require!(Backend::ceph());
    let alt = require!(Backend::ceph_alt());
    let proxy = TestProxy::start_with(&main, ProxyOptions::http(), |c| {
        clients(c, &main, Some(&alt));
    });
    run(&proxy, "isolated", &main, Some(&alt));
    // Every one of B's refusals was Ceph's, relayed: the proxy refused nothing itself.
    assert_eq!(
        proxy.metric_sum("sealgate_auth_failures_total", &[]),
        0.0,
        "no request failed the proxy's own authentication"
    );
}

#[test]
fn an_unmapped_client_reaches_the_backend_as_the_default_identity() {
    let main = require!(Backend::ceph());
    let proxy = TestProxy::start_with(&main, ProxyOptions::http(), |c| {
        clients(c, &main, None);
    });
    run(&proxy, "shared", &main, None);
}

#[test]
fn anonymous_requests_are_refused_by_default() {
    let main = require!(Backend::ceph());
    let proxy = TestProxy::start_with(&main, ProxyOptions::http(), |c| {
        assert_eq!(c.auth.anonymous, AnonymousRequests::Refuse, "the default");
        clients(c, &main, None);
    });
    run(&proxy, "refuse", &main, None);
    assert!(
        proxy.metric_sum("sealgate_auth_failures_total", &[("reason", "missing")]) >= 3.0,
        "the unsigned requests were refused by the proxy's authentication"
    );
}

#[test]
fn anonymous_requests_are_forwarded_unsigned_when_configured() {
    let main = require!(Backend::ceph());
    let proxy = TestProxy::start_with(&main, ProxyOptions::http(), |c| {
        clients(c, &main, None);
        c.auth.anonymous = AnonymousRequests::Forward;
    });
    run(&proxy, "forward", &main, None);
}
