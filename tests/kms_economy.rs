//! KMS economy: with bucket keys, 10,000 PUTs and 10,000 GETs to one bucket within one
//! bucket-key lifetime make at most 2 KMS calls; with
//! `x-amz-server-side-encryption-bucket-key-enabled: false` every object operation makes
//! its own call. Counted by the proxy's KMS metrics, which wrap every call to the local
//! KMS. `KMS_ECONOMY_OBJECTS` scales the workload (default 10,000).

mod raw;

use std::net::SocketAddr;
use std::sync::Arc;

use raw::*;

fn objects() -> usize {
    std::env::var("KMS_ECONOMY_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Sum of `sealgate_kms_requests_total{op=OP}` over results.
fn kms_calls(admin: SocketAddr, op: &str) -> u64 {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    let r = request(admin, req.as_bytes()).expect("metrics answer");
    let text = String::from_utf8_lossy(&r.body).to_string();
    text.lines()
        .filter(|l| {
            l.starts_with("sealgate_kms_requests_total{") && l.contains(&format!("op=\"{op}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Runs `n` PUTs then `n` GETs of small objects on 4 threads.
fn workload(
    p: &Arc<Proxy>,
    bucket: &str,
    n: usize,
    headers: &'static [(&'static str, &'static str)],
) {
    let mk = request(
        p.addr,
        &signed_request(p, "PUT", &format!("/{bucket}"), b"", &[]),
    )
    .unwrap();
    assert_eq!(mk.status, 200, "create bucket");
    for method in ["PUT", "GET"] {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                let bucket = bucket.to_string();
                std::thread::spawn(move || {
                    for i in (t..n).step_by(4) {
                        let body = format!("object {i}");
                        let path = format!("/{bucket}/o{i:05}");
                        let (payload, hs): (&[u8], &[(&str, &str)]) = if method == "PUT" {
                            (body.as_bytes(), headers)
                        } else {
                            (b"", &[])
                        };
                        let r = request(p.addr, &signed_request(&p, method, &path, payload, hs))
                            .expect("answer");
                        assert!(
                            r.status == 200,
                            "{method} {path}: {} {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        );
                        if method == "GET" {
                            assert_eq!(r.body, body.as_bytes(), "{path} read back");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker");
        }
    }
}

#[test]
fn bucket_keys_make_at_most_two_kms_calls_per_lifetime_and_per_object_keys_one_per_operation() {
    let n = objects();
    let p = Arc::new(Proxy::start_with(|c| {
        c.audit.enabled = true;
        c.audit.path = Some(c.embedded.data_dir.join("audit.jsonl"));
    }));

    workload(&p, "economy-bucket-key", n, &[]);
    let generate = kms_calls(p.admin, "generate_data_key");
    let decrypt = kms_calls(p.admin, "decrypt");
    println!(
        "bucket keys on:  {n} PUTs + {n} GETs -> {generate} GenerateDataKey + {decrypt} Decrypt = {} KMS calls",
        generate + decrypt
    );
    assert!(
        generate + decrypt <= 2,
        "bucket-key path made {generate} + {decrypt} KMS calls"
    );
    assert!(generate >= 1, "the first PUT must have made a bucket key");

    workload(
        &p,
        "economy-per-object",
        n,
        &[("x-amz-server-side-encryption-bucket-key-enabled", "false")],
    );
    let generate2 = kms_calls(p.admin, "generate_data_key") - generate;
    let decrypt2 = kms_calls(p.admin, "decrypt") - decrypt;
    println!(
        "bucket keys off: {n} PUTs + {n} GETs -> {generate2} GenerateDataKey + {decrypt2} Decrypt = {} KMS calls",
        generate2 + decrypt2
    );
    assert_eq!(
        generate2, n as u64,
        "one GenerateDataKey per PUT without bucket keys"
    );
    assert_eq!(
        decrypt2, n as u64,
        "one Decrypt per GET without bucket keys"
    );
    let saved = 100.0 * (1.0 - (generate + decrypt) as f64 / (generate2 + decrypt2) as f64);
    println!("KMS calls saved by bucket keys: {saved:.3}%");

    // The audit trail keeps what bucket keys hide from KMS logs: one record per object
    // key operation, each a JSON object with the documented fields.
    let audit = std::fs::read_to_string(p.data.join("audit.jsonl")).expect("audit log written");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        records.len(),
        4 * n,
        "one audit record per object key operation"
    );
    for r in &records {
        for field in [
            "time",
            "request_id",
            "identity",
            "bucket",
            "key",
            "operation",
            "kms_key_id",
            "bucket_key_id",
            "key_path",
            "result",
        ] {
            assert!(r.get(field).is_some(), "audit record without {field}: {r}");
        }
        assert_eq!(r["result"], "ok");
    }
    let bucket_key_ops = records
        .iter()
        .filter(|r| r["key_path"] == "bucket_key")
        .count();
    assert_eq!(bucket_key_ops, 2 * n);
    assert!(
        records
            .iter()
            .filter(|r| r["key_path"] == "bucket_key")
            .all(|r| r["bucket_key_id"].is_string())
    );
    println!(
        "audit log: {} records, {} on the bucket-key path",
        records.len(),
        bucket_key_ops
    );
}
