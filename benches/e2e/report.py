# Turns the JSON lines of benches/e2e.sh into a Markdown table (stdout) with the
# proxy/direct ratio of each number, and one JSON document (argv[2]).
import json
import sys

results_path, out_path, large_mib = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(results_path) if line.strip()]
by_key = {(r["backend"], r["mode"], r["workload"], r["result"]["op"]): r["result"] for r in rows}


def ratio(backend, mode, workload, op, field):
    direct = by_key.get((backend, "direct", workload, op), {}).get(field)
    mine = by_key.get((backend, mode, workload, op), {}).get(field)
    if not direct or mine is None:
        return None
    return mine / direct


print(f"| backend | target | {large_mib} MiB PUT MiB/s | {large_mib} MiB GET MiB/s "
      "| 4 KiB PUT req/s (p50/p99 ms) | 4 KiB GET req/s (p50/p99 ms) |")
print("|---|---|---|---|---|---|")
summary = []
for backend in dict.fromkeys(r["backend"] for r in rows):
    for mode in ("direct", "proxy-plain", "proxy-encrypted"):
        cells = []
        entry = {"backend": backend, "target": mode}
        for workload, op, field in (("large", "put", "mib_s"), ("large", "get", "mib_s"),
                                    ("small", "put", "rps"), ("small", "get", "rps")):
            res = by_key.get((backend, mode, workload, op))
            if res is None:
                cells.append("-")
                continue
            text = f"{res[field]:.0f}"
            if workload == "small":
                text += f" ({res['p50_ms']:.1f}/{res['p99_ms']:.1f})"
            r = ratio(backend, mode, workload, op, field)
            if mode != "direct" and r is not None:
                text += f" ×{r:.2f}"
            cells.append(text)
            entry[f"{workload}_{op}"] = dict(res, ratio_to_direct=r)
        summary.append(entry)
        print(f"| {backend} | {mode} | " + " | ".join(cells) + " |")
print("\n×N: the proxy's number as a fraction of the backend's own (direct) number.")
with open(out_path, "w") as f:
    json.dump({"large_object_mib": int(large_mib), "results": summary}, f, indent=2)
print(f"JSON written to {out_path}")
