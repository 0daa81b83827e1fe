//! The shared integration-test harness: real backends from the environment
//! ([`Backend`]), sealgate running in-process in front of them ([`TestProxy`]), and real
//! S3 client programs driven through `std::process::Command` ([`Client`]).
//!
//! Every integration test binary includes it with `mod common;`. Backends come from
//! `./scripts/test.sh`, which starts Ceph RGW and moto and exports
//! `SEALGATE_TEST_{CEPH,MOTO}_*`; without them a test prints `skipped: …` and passes,
//! unless `SEALGATE_TEST_REQUIRE_BACKENDS=1` turns the absence into a failure (CI).
//! Each binary uses only part of the harness, hence the `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

mod backend;
mod clients;
pub mod fault_proxy;
mod files;
mod proc_status;
mod process;
mod proxy;
mod tls_front;

pub use backend::{Backend, BackendKind, Target};
pub use clients::{Client, ClientEnv};
pub use files::{random_bytes, sha256_file, unique_bucket};
pub use proc_status::status_bytes;
pub use process::{CommandOutput, run_command};

pub use proxy::{ProxyOptions, TestProxy};
pub use tls_front::TlsFront;

/// Keeps whatever serves a [`Target`] alive (the proxy, or a TLS front of a direct
/// backend) until the test ends.
pub struct TargetGuard {
    pub proxy: Option<TestProxy>,
    pub tls_front: Option<TlsFront>,
}

/// The client-facing target of a test: the proxy in front of `backend` (the default),
/// or, with `SEALGATE_TEST_TARGET=direct`, the backend itself (behind a TLS front for
/// HTTPS), which proves the client matrix before the proxy can forward. `None` means
/// the case cannot run in this mode (it printed why).
pub fn target_for(backend: &Backend, options: ProxyOptions) -> Option<(Target, TargetGuard)> {
    if direct_mode() {
        let Some(mut target) = backend.direct_target() else {
            println!("skipped: the embedded backend only exists behind the proxy");
            return None;
        };
        let mut guard = TargetGuard {
            proxy: None,
            tls_front: None,
        };
        if options.tls {
            let front = TlsFront::start(&target.endpoint);
            target.endpoint = front.endpoint_url();
            target.ca_cert = Some(front.ca_cert_path().to_path_buf());
            guard.tls_front = Some(front);
        }
        return Some((target, guard));
    }
    let proxy = TestProxy::start(backend, options);
    let target = proxy.target();
    Some((
        target,
        TargetGuard {
            proxy: Some(proxy),
            tls_front: None,
        },
    ))
}

/// True when `SEALGATE_TEST_TARGET=direct` asks for the backends without the proxy.
pub fn direct_mode() -> bool {
    std::env::var("SEALGATE_TEST_TARGET").is_ok_and(|v| v == "direct")
}

/// `let backend = require!(Backend::ceph());` returns from the test (skipped) when the
/// backend is not configured; `Backend::*` already printed why.
#[macro_export]
macro_rules! require {
    ($backend:expr) => {
        match $backend {
            Some(b) => b,
            None => return,
        }
    };
}
