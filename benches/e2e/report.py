# Turns the JSON lines of benches/e2e.sh into Markdown tables (stdout and OUT/e2e.md),
# one JSON document (OUT/e2e.json) and a bar chart (OUT/e2e.svg, written here by hand:
# no plotting dependency). Also evaluates the acceptance points of the performance
# issue; a missed point is reported, never an error (numbers on a shared machine are
# noisy, only failures of requests fail the benchmark, and those fail in e2e.sh).
#
#   python3 benches/e2e/report.py RESULTS.jsonl OUT_DIR quick|full [release|profile-guided]
import json
import sys
from html import escape

results_path, out_dir, run_kind = sys.argv[1], sys.argv[2], sys.argv[3]
# Which build of sealgate ran: `cargo build --release`, or scripts/build-pgo.sh's.
build = sys.argv[4] if len(sys.argv) > 4 else "release"
rows = [json.loads(line) for line in open(results_path) if line.strip()]
# bare: sealgate's stack (runtime, HTTP server settings, backend pool) streaming and
# nothing else (benches/e2e/bare_proxy.rs); full runs measure it on 4 KiB requests.
ALL_TARGETS = ["direct", "nginx", "bare", "plain", "encrypted"]
COLORS = {"direct": "#7f7f7f", "nginx": "#2ca02c", "bare": "#9467bd", "plain": "#1f77b4",
          "encrypted": "#d62728"}
GIB = 1024**3

# Workloads run in several rounds (benches/e2e.sh; the large ones once in a quick run):
# a workload's figures are its median round by throughput; CPU per request or per GiB
# and peak RSS count every round.
groups = {}
for r in rows:
    groups.setdefault((r["backend"], r["target"], r["workload"]), []).append(r)


def median_run(runs):
    field = "rps" if "4KiB" in runs[0]["workload"] else "mib_s"
    return sorted(runs, key=lambda r: r["result"][field])[len(runs) // 2]


by = {k: median_run(v) for k, v in groups.items()}
TARGETS = [t for t in ALL_TARGETS if any(r["target"] == t for r in rows)]
PROXIES = [t for t in TARGETS if t != "direct"]
backends = list(dict.fromkeys(r["backend"] for r in rows))
workloads = list(dict.fromkeys(r["workload"] for r in rows if not r["workload"].startswith("mem-")))
large = [w for w in workloads if "4KiB" not in w]
small = [w for w in workloads if "4KiB" in w]
lines = []


def out(s=""):
    lines.append(s)


def res(b, t, w):
    r = by.get((b, t, w))
    return r["result"] if r else None


def ratio(b, t, w, field, base="direct"):
    mine, ref = res(b, t, w), res(b, base, w)
    if not mine or not ref or not ref.get(field):
        return None
    return mine[field] / ref[field]


out(f"sealgate build: {'profile-guided, BOLT (scripts/build-pgo.sh)' if build == 'profile-guided' else 'release (cargo build --release)'}")
out()
out(f"### Throughput, MiB/s ({run_kind} run; ×N = fraction of direct)")
out()
out("| backend | target | " + " | ".join(large) + " |")
out("|---|---|" + "---|" * len(large))
for b in backends:
    for t in TARGETS:
        if not any(res(b, t, w) for w in large):
            continue
        cells = []
        for w in large:
            r = res(b, t, w)
            if r is None:
                cells.append("-")
                continue
            cell = f"{r['mib_s']:.0f}"
            q = ratio(b, t, w, "mib_s")
            if t != "direct" and q is not None:
                cell += f" ×{q:.2f}"
            cells.append(cell)
        out(f"| {b} | {t} | " + " | ".join(cells) + " |")
out()
out("Multipart: one object, 8 parts in flight, MiB/s of the whole upload (create, parts, "
    "complete). Range: 1 MiB GETs at pseudo-random offsets, 8 in flight.")
large_rounds = max((len(v) for k, v in groups.items() if k[2] in large), default=1)
if large_rounds > 1:
    out()
    out(f"Each cell is the median of {large_rounds} rounds; every round runs the whole set "
        "against each target in turn, starting at a different target.")
out()
rounds = max((len(v) for k, v in groups.items() if "4KiB" in k[2]), default=1)
out("### 4 KiB requests: req/s (p50 / p99 ms); ×N = req/s as a fraction of nginx")
out()
out(f"Each cell is the median of {rounds} rounds; every round visits every target "
    "in turn, so the machine's background load falls on all of them alike.")
out()
out("| backend | target | " + " | ".join(small) + " |")
out("|---|---|" + "---|" * len(small))
for b in backends:
    for t in TARGETS:
        cells = []
        for w in small:
            r = res(b, t, w)
            if r is None:
                cells.append("-")
                continue
            cell = f"{r['rps']:.0f} ({r['p50_ms']:.2f} / {r['p99_ms']:.2f})"
            q = ratio(b, t, w, "rps", "nginx")
            if t not in ("direct", "nginx") and q is not None:
                cell += f" ×{q:.2f}"
            cells.append(cell)
        out(f"| {b} | {t} | " + " | ".join(cells) + " |")
out()

# Proxy cost: CPU per GiB over the large workloads, CPU per 4 KiB request, peak RSS.
cost = {}
out("### Proxy process cost (from /proc)")
out()
out("| backend | target | CPU s per GiB (large) | CPU µs per 4 KiB request "
    "| same, one at a time | peak RSS MiB |")
out("|---|---|---|---|---|---|")


def one_at_a_time(w):
    return w.endswith("-c1")


for b in backends:
    for t in PROXIES:
        cpu = gib = 0.0
        req_cpu = {False: 0.0, True: 0.0}
        reqs = {False: 0.0, True: 0.0}
        hwm = 0
        for w in workloads:
            for run in groups.get((b, t, w), []):
                if not run.get("proc"):
                    continue
                hwm = max(hwm, run["proc"]["hwm_kib"])
                if w in large:
                    cpu += run["proc"]["cpu_s"]
                    gib += run["result"]["bytes"] / GIB
                else:
                    c1 = one_at_a_time(w)
                    req_cpu[c1] += run["proc"]["cpu_s"]
                    reqs[c1] += run["result"]["done"]
        if not gib and not any(reqs.values()):
            continue
        per_request = {k: req_cpu[k] / reqs[k] * 1e6 if reqs[k] else None for k in reqs}
        c = {
            "cpu_s_per_gib": cpu / gib if gib else None,
            "cpu_us_per_small_request": per_request[False],
            "cpu_us_per_small_request_c1": per_request[True],
            "peak_rss_mib": hwm / 1024,
        }
        cost[f"{b}/{t}"] = c
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        out(f"| {b} | {t} | {fmt(c['cpu_s_per_gib'], '.2f')} | "
            f"{fmt(c['cpu_us_per_small_request'], '.0f')} | "
            f"{fmt(c['cpu_us_per_small_request_c1'], '.0f')} | {c['peak_rss_mib']:.0f} |")
out()
out("CPU covers every process of the proxy (nginx: master and workers) while the workload "
    "ran; peak RSS is VmHWM, reset before each workload, the largest over the workloads. "
    "CPU per 4 KiB request is over the workloads with 16 and 64 in flight; one at a time, "
    "every request also pays for waking the proxy's threads.")
out()

# Where sealgate's CPU per 4 KiB request goes, when the run measured its bare stack: the
# stack against nginx (bare - nginx), sealgate's own S3 work on top of the stack (plain -
# bare: SigV4 verification, re-signing, routing, the request gate, metrics) and what
# encrypting adds (encrypted - plain).
split = {}
for b in backends:
    c = {t: cost.get(f"{b}/{t}", {}) for t in ("nginx", "bare", "plain", "encrypted")}
    if not c["bare"]:
        continue
    split[b] = {}
    for load, field in (("loaded", "cpu_us_per_small_request"),
                        ("one_at_a_time", "cpu_us_per_small_request_c1")):
        v = {t: c[t].get(field) for t in c}
        if None in v.values():
            continue
        split[b][load] = {"stack_over_nginx": v["bare"] - v["nginx"],
                          "s3_work": v["plain"] - v["bare"],
                          "encryption": v["encrypted"] - v["plain"]}
if split:
    out("### Where sealgate's CPU per 4 KiB request goes (µs)")
    out()
    out("| backend | requests | stack over nginx (bare - nginx) | S3 work (plain - bare) "
        "| encryption (encrypted - plain) |")
    out("|---|---|---|---|---|")
    for b, loads in split.items():
        for load, v in loads.items():
            out(f"| {b} | {load.replace('_', ' ')} | {v['stack_over_nginx']:+.0f} | "
                f"{v['s3_work']:+.0f} | {v['encryption']:+.0f} |")
    out()
    out("bare is sealgate's stack alone (tokio, hyper with sealgate's server settings, its "
        "backend connection pool) streaming requests unchanged, as nginx does "
        "(benches/e2e/bare_proxy.rs); loaded is 16 and 64 in flight.")
    out()

# The whole machine's CPU per 4 KiB request with 16 and 64 in flight, where the two cores
# are saturated: req/s is then about the CPUs over this figure, so a target's req/s
# against nginx's is nginx's figure over its own, and the part outside the proxy (the
# backend, the load generator, the kernel) shows what a target makes the others spend.
machine_cpu = {}
for b in backends:
    for op in ("put", "get"):
        for t in TARGETS:
            busy = proxy = done = 0.0
            for w in small:
                if not w.startswith(f"{op}-") or one_at_a_time(w):
                    continue
                for run in groups.get((b, t, w), []):
                    if not run.get("machine"):
                        continue
                    busy += run["machine"]["busy_s"]
                    done += run["result"]["done"]
                    proxy += (run.get("proc") or {}).get("cpu_s", 0.0)
            if done:
                machine_cpu.setdefault(b, {}).setdefault(op, {})[t] = {
                    "machine": busy / done * 1e6,
                    # direct has no proxy process.
                    "proxy": proxy / done * 1e6 if t in PROXIES else None,
                }
if machine_cpu:
    out("### The whole machine's CPU per 4 KiB request, 16 and 64 in flight (µs)")
    out()
    out("| backend | requests | " + " | ".join(TARGETS) + " |")
    out("|---|---|" + "---|" * len(TARGETS))
    for b, ops in machine_cpu.items():
        for op, per_target in ops.items():
            cells = []
            for t in TARGETS:
                v = per_target.get(t)
                if v is None:
                    cells.append("-")
                elif v["proxy"] is None:
                    cells.append(f"{v['machine']:.0f}")
                else:
                    cells.append(f"{v['machine']:.0f} ({v['proxy']:.0f} + "
                                 f"{v['machine'] - v['proxy']:.0f})")
            out(f"| {b} | {op.upper()} | " + " | ".join(cells) + " |")
    out()
    out("Busy time of all CPUs (/proc/stat: user, nice, system, irq, softirq) over every "
        "round, per request; in brackets the proxy's part and the rest (backend, load "
        "generator, kernel). With both cores saturated, req/s is about the CPUs over the "
        "total, so a target's req/s against nginx's is close to nginx's total over its own.")
    out()

mem_rows = [r for r in rows if r["workload"].startswith("mem-")]
if mem_rows:
    out("### Memory under 64 concurrent large transfers (encrypting sealgate)")
    out()
    out("| backend | workload | transfers done / cut at the time limit | MiB moved | MiB/s | peak RSS MiB |")
    out("|---|---|---|---|---|---|")
    for r in mem_rows:
        res_ = r["result"]
        # Bytes of finished transfers, or every body byte received when that is more
        # (GETs cut at the time limit moved data too; a cut PUT's bytes are not counted).
        moved = max(res_["bytes"], res_.get("received_total", 0))
        out(f"| {r['backend']} | {r['workload']} | {res_['done']} / {res_['aborted']} | "
            f"{moved / 2**20:.0f} | {moved / 2**20 / max(res_['secs'], 1e-9):.0f} | "
            f"{r['proc']['hwm_kib'] / 1024:.0f} |")
    out()
    out("Transfers still running at the time limit are cut; MiB moved counts every body "
        "byte a cut GET received, not the bytes a cut PUT sent.")
    out()

# Acceptance points of the performance issue, evaluated on this run: on the median
# rounds, and round by round. Round k of every target of a workload ran back to back
# (benches/e2e.sh), so the k-th runs of two targets are a pair that shared the machine's
# load; how many pairs meet a check, and the range of the paired figure, say whether a
# miss on the medians is a difference or the machine's noise.
checks = []


def paired(b, w, mine, ref, figure):
    """figure(mine_result, ref_result) for each round both targets ran, in order (a
    round whose reference moved nothing has no ratio and is left out)."""
    a, r = groups.get((b, mine, w), []), groups.get((b, ref, w), [])
    values = []
    for x, y in zip(a, r):
        try:
            values.append(figure(x["result"], y["result"]))
        except ZeroDivisionError:
            pass
    return values


def per_round(values, ok, unit=""):
    """{"rounds", "met", "lo", "hi"} for the paired figures `values`, and its text."""
    if not values:
        return {}, "-"
    met = sum(1 for v in values if ok(v))
    lo, hi = min(values), max(values)
    rng = f"{lo:.2f}" if lo == hi else f"{lo:.2f} to {hi:.2f}"
    return ({"rounds": len(values), "met": met, "lo": lo, "hi": hi},
            f"{met} of {len(values)}; {rng}{unit}")


for b in backends:
    for w in large:
        if not w.startswith(("put-", "get-")):
            continue
        enc, ngx = res(b, "encrypted", w), res(b, "nginx", w)
        if enc and ngx:
            pr, text = per_round(paired(b, w, "encrypted", "nginx",
                                        lambda e, n: e["mib_s"] / n["mib_s"]),
                                 lambda q: q >= 1.0, " × nginx")
            checks.append({
                "point": 1, "backend": b, "workload": w,
                "what": f"encrypted {enc['mib_s']:.0f} MiB/s >= nginx {ngx['mib_s']:.0f} MiB/s "
                        f"(encrypted/direct ×{ratio(b, 'encrypted', w, 'mib_s') or 0:.2f})",
                "ok": enc["mib_s"] >= ngx["mib_s"], "per_round": pr, "per_round_text": text,
            })
    for w in small:
        enc, ngx, d = res(b, "encrypted", w), res(b, "nginx", w), res(b, "direct", w)
        if enc and ngx and d:
            pr, text = per_round(paired(b, w, "encrypted", "nginx",
                                        lambda e, n: e["rps"] / n["rps"]),
                                 lambda q: q >= 0.9, " × nginx")
            checks.append({
                "point": 2, "backend": b, "workload": w,
                "what": f"req/s {enc['rps']:.0f} >= 0.9 × nginx {ngx['rps']:.0f}",
                "ok": enc["rps"] >= 0.9 * ngx["rps"], "per_round": pr, "per_round_text": text,
            })
            added_e, added_n = enc["p50_ms"] - d["p50_ms"], ngx["p50_ms"] - d["p50_ms"]
            # Direct's p50 cancels: added over direct minus nginx's added is the
            # difference of the two p50s.
            pr, text = per_round(paired(b, w, "encrypted", "nginx",
                                        lambda e, n: e["p50_ms"] - n["p50_ms"]),
                                 lambda x: x <= 0.2, " ms over nginx")
            checks.append({
                "point": 2, "backend": b, "workload": w,
                "what": f"p50 added {added_e:.2f} ms <= nginx's {added_n:.2f} ms + 0.2",
                "ok": added_e <= added_n + 0.2, "per_round": pr, "per_round_text": text,
            })
for r in mem_rows:
    checks.append({
        "point": 4, "backend": r["backend"], "workload": r["workload"],
        "what": f"peak RSS {r['proc']['hwm_kib'] / 1024:.0f} MiB < 128 MiB",
        "ok": r["proc"]["hwm_kib"] < 128 * 1024,
    })
retried = [r for r in rows if r["result"].get("retried", 0)]
out("### Requests sent twice after a transport error")
out()
if retried:
    out("| backend | target | workload | retried |")
    out("|---|---|---|---|")
    for r in retried:
        out(f"| {r['backend']} | {r['target']} | {r['workload']} | {r['result']['retried']} |")
else:
    out("None: no connection closed under a request.")
out()

out("### Acceptance points on this run")
out()
out("Checked on each target's median round; the last column checks every round against "
    "the nginx run of the same round: in how many it holds, and the range of the paired "
    "figure (encrypted/nginx, or encrypted's p50 minus nginx's).")
out()
out("| point | backend | workload | check | met | per round |")
out("|---|---|---|---|---|---|")
for c in checks:
    out(f"| {c['point']} | {c['backend']} | {c['workload']} | {c['what']} | "
        f"{'yes' if c['ok'] else '**no**'} | {c.get('per_round_text', '-')} |")
    c.pop("per_round_text", None)
out()

text = "\n".join(lines)
print(text)
with open(f"{out_dir}/e2e.md", "w") as f:
    f.write(text + "\n")
with open(f"{out_dir}/e2e.json", "w") as f:
    json.dump({"run": run_kind, "build": build, "results": rows, "proxy_cost": cost,
               "cpu_split_us_per_small_request": split,
               "machine_cpu_us_per_small_request": machine_cpu, "checks": checks}, f, indent=1)


# --- the chart: one row of panels per backend (large MiB/s, 4 KiB req/s, 4 KiB p50 ms).
def panel(x0, y0, w, h, title, groups, values, unit):
    """Grouped bars: values[(group, target)] -> number."""
    parts = [f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">'
             f'{escape(title)}</text>']
    top = max([v for v in values.values() if v is not None] + [1e-9])
    px, py, pw, ph = x0 + 50, y0 + 28, w - 60, h - 100
    parts.append(f'<line x1="{px}" y1="{py + ph}" x2="{px + pw}" y2="{py + ph}" stroke="#000"/>')
    for i in range(5):
        v = top * i / 4
        y = py + ph - ph * i / 4
        parts.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{px - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
                     f'{v:.3g}</text>')
    parts.append(f'<text x="{x0 + 10}" y="{py + ph / 2}" font-size="10" '
                 f'transform="rotate(-90 {x0 + 10} {py + ph / 2})" text-anchor="middle">{unit}</text>')
    gw = pw / max(len(groups), 1)
    bw = gw * 0.8 / len(TARGETS)
    for gi, g in enumerate(groups):
        for ti, t in enumerate(TARGETS):
            v = values.get((g, t))
            if v is None:
                continue
            bh = ph * v / top
            x = px + gi * gw + gw * 0.1 + ti * bw
            parts.append(f'<rect x="{x:.1f}" y="{py + ph - bh:.1f}" width="{bw:.1f}" '
                         f'height="{bh:.1f}" fill="{COLORS[t]}"><title>{t} {g}: {v:.3g} {unit}'
                         f'</title></rect>')
        lx = px + gi * gw + gw / 2
        parts.append(f'<text x="{lx:.1f}" y="{py + ph + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-35 {lx:.1f} {py + ph + 12})">{escape(g)}</text>')
    return parts


W_LARGE, W_SMALL, H = 620, 300, 330
svg = []
for bi, b in enumerate(backends):
    y0 = 30 + bi * H
    big = {(w, t): (res(b, t, w) or {}).get("mib_s") for w in large for t in TARGETS}
    rps = {(w, t): (res(b, t, w) or {}).get("rps") for w in small for t in TARGETS}
    p50 = {(w, t): (res(b, t, w) or {}).get("p50_ms") for w in small for t in TARGETS}
    svg += panel(0, y0, W_LARGE, H, f"{b}: large objects, MiB/s", large, big, "MiB/s")
    svg += panel(W_LARGE, y0, W_SMALL, H, f"{b}: 4 KiB, req/s", small, rps, "req/s")
    svg += panel(W_LARGE + W_SMALL, y0, W_SMALL, H, f"{b}: 4 KiB, p50 ms", small, p50, "ms")
width, height = W_LARGE + 2 * W_SMALL, 40 + len(backends) * H
legend = []
for i, t in enumerate(TARGETS):
    legend.append(f'<rect x="{10 + i * 110}" y="8" width="12" height="12" fill="{COLORS[t]}"/>'
                  f'<text x="{26 + i * 110}" y="18" font-size="12">{t}</text>')
with open(f"{out_dir}/e2e.svg", "w") as f:
    f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">\n'
            f'<rect width="100%" height="100%" fill="#fff"/>\n'
            f'<text x="{width - 10}" y="18" text-anchor="end" font-size="11">sealgate e2e '
            f'benchmark ({run_kind} run), loopback, 2 cores</text>\n'
            + "\n".join(legend + svg) + "\n</svg>\n")
print(f"written: {out_dir}/e2e.md, {out_dir}/e2e.json, {out_dir}/e2e.svg")
