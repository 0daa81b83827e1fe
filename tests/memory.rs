//! Bounded memory (DESIGN property 3): a 2 GiB object goes up and comes back down
//! through the in-process proxy to the embedded backend, and the test process's peak
//! resident memory grows by less than 64 MiB. The client is aws CLI in a child
//! process, streaming from and to disk, so only the proxy (and the embedded backend
//! it hosts) is counted.

mod common;

use common::{
    Backend, Client, ClientEnv, ProxyOptions, TestProxy, random_bytes, sha256_file, status_bytes,
    unique_bucket,
};

const MIB: u64 = 1024 * 1024;
const OBJECT_LEN: u64 = 2048 * MIB;
const MAX_GROWTH: u64 = 64 * MIB;

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5), so the peak measured
/// afterwards belongs to the transfer alone.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM via /proc/self/clear_refs");
}

#[test]
fn two_gib_round_trip_keeps_proxy_memory_flat() {
    let backend = require!(Backend::embedded());
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("memory");
    Client::AwsCli.make_bucket(&env, &bucket);

    // Warm up every lazy allocation (pools, caches, the KMS key) before the baseline.
    let small = random_bytes(env.dir(), "warmup", 6 * MIB, 1);
    Client::AwsCli.put(&env, &small, &bucket, "warmup");
    Client::AwsCli.get(&env, &bucket, "warmup", &env.dir().join("warmup-back"));

    let src = random_bytes(env.dir(), "big", OBJECT_LEN, 2);
    let baseline = status_bytes("VmRSS");
    reset_peak();
    let started = std::time::Instant::now();
    Client::AwsCli.put(&env, &src, &bucket, "big");
    let put_peak = status_bytes("VmHWM");
    let put_secs = started.elapsed().as_secs_f64();

    reset_peak();
    let started = std::time::Instant::now();
    let back = env.dir().join("big-back");
    Client::AwsCli.get(&env, &bucket, "big", &back);
    let get_peak = status_bytes("VmHWM");
    let get_secs = started.elapsed().as_secs_f64();

    let mib = |b: u64| b as f64 / MIB as f64;
    println!(
        "baseline RSS {:.1} MiB; peak during PUT {:.1} MiB ({:.0} MiB/s), during GET {:.1} MiB ({:.0} MiB/s)",
        mib(baseline),
        mib(put_peak),
        mib(OBJECT_LEN) / put_secs,
        mib(get_peak),
        mib(OBJECT_LEN) / get_secs
    );
    assert_eq!(
        sha256_file(&src),
        sha256_file(&back),
        "2 GiB object came back different"
    );
    for (what, peak) in [("PUT", put_peak), ("GET", get_peak)] {
        let growth = peak.saturating_sub(baseline);
        assert!(
            growth < MAX_GROWTH,
            "resident memory grew by {:.1} MiB during the 2 GiB {what} (limit {:.0} MiB)",
            mib(growth),
            mib(MAX_GROWTH)
        );
    }
}
