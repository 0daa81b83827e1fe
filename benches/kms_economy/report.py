"""Reads what benches/kms-economy.sh collected in WORK and prints the KMS economy.

  report.py WORK N THREADS
For each mode (bucket-key, per-object) WORK holds MODE.recording (moto's recorder
download: one JSON request per line), MODE.before / MODE.after (the proxy's /metrics
around the workload) and MODE.workload (workload.py's JSON line). KMS calls are the
recorded requests with an `X-Amz-Target: TrentService.<Operation>` header.
"""

import json
import os
import sys
from collections import Counter

MODES = ("bucket-key", "per-object")
# AWS KMS public list price for API requests (symmetric keys), the same in every
# commercial region; stated here as of this date, not fetched.
PRICE_USD_PER_10K = 0.03
PRICE_DATE = "2026-11-23"


def kms_calls(path):
    ops = Counter()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            req = json.loads(line)
            headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
            target = headers.get("x-amz-target", "")
            if target.startswith("TrentService."):
                ops[target.removeprefix("TrentService.")] += 1
    return ops


def metric(path, name):
    """Sum of every series of NAME (all label sets) in a Prometheus text exposition."""
    total = 0.0
    with open(path) as f:
        for line in f:
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def main(work, n, threads):
    n, threads = int(n), int(threads)
    rows = {}
    for mode in MODES:
        p = lambda ext: os.path.join(work, f"{mode}.{ext}")
        with open(p("workload")) as f:
            load = json.loads(f.read())
        ops = kms_calls(p("recording"))
        delta = {
            m: metric(p("after"), m) - metric(p("before"), m)
            for m in ("sealgate_kms_requests_total", "sealgate_kms_calls_saved_total")
        }
        object_ops = load["puts"] + load["gets"] - load["errors"]
        rows[mode] = (object_ops, ops, delta, load)

    print(f"KMS economy against moto: {n} PUT + {n} GET of 1 KiB objects per mode, "
          f"{threads} client threads (boto3), one bucket per mode, default 300 s bucket-key TTL")
    print()
    hdr = ("mode", "object ops", "KMS calls (moto)", "by operation", "per 10,000 ops",
           "seconds", "errors")
    fmt = "{:<11} {:>10} {:>16}  {:<34} {:>14} {:>7} {:>6}"
    print(fmt.format(*hdr))
    per10k = {}
    for mode in MODES:
        object_ops, ops, _, load = rows[mode]
        calls = sum(ops.values())
        per10k[mode] = calls * 10_000 / object_ops if object_ops else float("nan")
        by_op = ", ".join(f"{k} {v}" for k, v in sorted(ops.items())) or "-"
        print(fmt.format(mode, object_ops, calls, by_op, f"{per10k[mode]:.2f}",
                         load["seconds"], load["errors"]))
    with_bk, without = per10k["bucket-key"], per10k["per-object"]
    saved_pct = 100 * (1 - with_bk / without) if without else float("nan")
    print()
    print(f"KMS calls saved by bucket keys: {saved_pct:.3f}% "
          f"({without:.2f} -> {with_bk:.2f} calls per 10,000 object operations)")
    price = PRICE_USD_PER_10K / 10_000
    print(f"Money at the AWS KMS public price of ${PRICE_USD_PER_10K} per 10,000 requests "
          f"(list price as of {PRICE_DATE}):")
    scales = ((10_000, "10,000", 6), (1_000_000_000, "1 billion (at this run's rates)", 2))
    for ops_count, label, digits in scales:
        a, b = without * ops_count / 10_000 * price, with_bk * ops_count / 10_000 * price
        print(f"  per {label} object operations: ${a:,.{digits}f} without bucket keys, "
              f"${b:,.{digits}f} with, saving ${a - b:,.{digits}f}")
    print("  (with bucket keys the calls do not grow with the object count: one "
          "GenerateDataKey per bucket, KMS key and TTL, and reads of keys this replica "
          "wrote or already unwrapped are free; so the rate per 10,000 falls as N grows)")
    print()
    print("Proxy metrics (delta over each mode's workload) against moto's recorder:")
    fmt2 = "{:<11} {:>30} {:>16} {:>32}  {}"
    print(fmt2.format("mode", "sealgate_kms_requests_total", "moto recorder",
                      "sealgate_kms_calls_saved_total", "agree"))
    all_agree = True
    for mode in MODES:
        object_ops, ops, delta, _ = rows[mode]
        calls = sum(ops.values())
        requests = int(delta["sealgate_kms_requests_total"])
        saved = int(delta["sealgate_kms_calls_saved_total"])
        # Bucket-key mode: every object op is either one KMS call or one saved call.
        # Per-object mode: every object op is one KMS call and nothing is saved.
        expected_saved = object_ops - calls if mode == "bucket-key" else 0
        agree = requests == calls and saved == expected_saved
        all_agree &= agree
        print(fmt2.format(mode, requests, calls, saved,
                          "yes" if agree else f"NO (saved expected {expected_saved})"))
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
