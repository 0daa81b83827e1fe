//! Ranged and `partNumber` reads of encrypted multipart objects: for part sizes of 5, 8,
//! 16 and 64 MiB (a few full parts and a short last part), an object uploaded through
//! the proxy to Ceph RGW (and the embedded backend, with 200) reads back byte-identical
//! for 1,000 random ranges (inside a part, across part boundaries, open-ended, suffix, single
//! byte, whole object) and for every part number, with S3's status, `Content-Range`,
//! `Content-Length`, `x-amz-mp-parts-count` and ETag; a part beyond the count is
//! `416 InvalidPartNumber`. The reads run in one boto3 process
//! (`tests/common/part_reads.py`). The edge cases of `partNumber` on a single-PUT object
//! and bad part numbers are checked with raw requests in `part_number_edge_cases`.

mod common;

use std::time::Instant;

use common::{Backend, ClientEnv, ProxyOptions, TestProxy, unique_bucket};

const SCRIPT: &str = include_str!("common/part_reads.py");

/// (part MiB, full parts, bytes of the short last part)
const SHAPES: &[(u32, u32, u32)] = &[
    (5, 3, 1_234_567),
    (8, 2, 777_777),
    (16, 2, 65_537),
    (64, 1, 3_000_001),
];

fn check_backend(backend: Backend, ranges: u32) {
    let proxy = TestProxy::start(&backend, ProxyOptions::http());
    let env = ClientEnv::new(proxy.target());
    let bucket = unique_bucket("partreads");
    env.run(
        common::Client::AwsCli,
        &["s3", "mb", &format!("s3://{bucket}")],
    );
    // The shapes are independent objects: read them side by side (each in its own boto3
    // process), which keeps both cores busy while one waits on the backend.
    std::thread::scope(|scope| {
        let runs: Vec<_> = SHAPES
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let (env, bucket, backend) = (&env, &bucket, &backend);
                scope.spawn(move || check_shape(env, backend, bucket, i, *shape, ranges))
            })
            .collect();
        for run in runs {
            if let Err(panic) = run.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    env.run(
        common::Client::AwsCli,
        &["s3", "rb", "--force", &format!("s3://{bucket}")],
    );
}

/// One object of one shape: upload, then `ranges` random ranges and every part.
fn check_shape(
    env: &ClientEnv,
    backend: &Backend,
    bucket: &str,
    i: usize,
    (mib, full, last): (u32, u32, u32),
    ranges: u32,
) {
    let started = Instant::now();
    let key = format!("mp-{mib}MiB");
    let out = env.run_python(
        &format!("part_reads_{i}.py"),
        SCRIPT,
        &[
            bucket,
            &key,
            &mib.to_string(),
            &full.to_string(),
            &last.to_string(),
            &ranges.to_string(),
            &(1000 + i).to_string(),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("part_reads.py printed no JSON ({e}): {out}"));
    assert_eq!(report["parts"].as_u64(), Some(u64::from(full + 1)));
    assert_eq!(report["ranges"].as_u64(), Some(u64::from(ranges)));
    println!(
        "{}: {mib} MiB parts: {report} ({:.1}s with the upload)",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn ranges_and_parts_read_back_on_ceph() {
    check_backend(require!(Backend::ceph()), 1000);
}

#[test]
fn ranges_and_parts_read_back_on_embedded() {
    // The same code path on a second backend, at a fifth of the reads to keep CI short.
    check_backend(require!(Backend::embedded()), 200);
}
