#!/usr/bin/env bash
# End-to-end benchmark on loopback: the backend directly against sealgate in front of
# it (the release binary, encryption on and off), for two backends:
#   embedded: s3s-fs 0.14.1 standalone (scripts/backends/s3s-fs.sh) against sealgate's
#             embedded mode (the same s3s-fs in-process);
#   ceph:     Ceph RGW 16.2 (scripts/backends/ceph-rgw.sh) against sealgate -> RGW.
# Workloads (benches/e2e/load.rs, SigV4, TCP_NODELAY): large-object PUT and GET
# throughput (64 MiB x 8, 4 in flight; --large-mib 1024 for 1 GiB x 2, 1 in flight) and
# 4 KiB PUT and GET requests per second with p50/p99 latency (16 in flight).
# Prints a Markdown table with proxy/direct ratios and writes JSON.
#
#   benches/e2e.sh [--large-mib 64|1024] [--small-count N] [--backends "embedded ceph"]
#                  [--out target/e2e-bench.json]
# Bounded in time: every load run is killed after 5 minutes; the whole default run
# takes ~2-4 min after the release build (plus ~2-4 min once to install s3s-fs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LARGE_MIB=64 SMALL_COUNT=2000 BACKENDS="embedded ceph" OUT=target/e2e-bench.json
while [ $# -gt 0 ]; do
  case $1 in
    --large-mib) LARGE_MIB=$2; shift 2 ;;
    --small-count) SMALL_COUNT=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$LARGE_MIB" -ge 512 ]; then LARGE_COUNT=2 LARGE_CONC=1; else LARGE_COUNT=8 LARGE_CONC=4; fi
. scripts/backends/lib.sh

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
echo "building release binaries (sealgate, e2e-load)" >&2
cargo build --release --quiet --bin sealgate --example e2e-load
SEALGATE=$TARGET_DIR/release/sealgate LOAD=$TARGET_DIR/release/examples/e2e-load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-e2e.XXXXXX")
PROXY_PID=
cleanup() {
  set +e
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  scripts/backends/s3s-fs.sh stop "$WORK/s3s-fs" >/dev/null 2>&1
  scripts/backends/ceph-rgw.sh stop "$WORK/ceph" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
CLIENT_AK=benchclientaccess CLIENT_SK=benchclientsecretkey000000000000000000000

# load BACKEND MODE ENDPOINT AK SK BUCKET: the four workloads against one endpoint.
load() {
  local backend=$1 mode=$2 ep=$3 ak=$4 sk=$5 bucket=$6 op size count conc prefix line
  local common=(--endpoint "$ep" --access-key "$ak" --secret-key "$sk" --bucket "$bucket")
  timeout 60 "$LOAD" "${common[@]}" --op mb >/dev/null
  for spec in "put $((LARGE_MIB * 1048576)) $LARGE_COUNT $LARGE_CONC large" \
              "get $((LARGE_MIB * 1048576)) $LARGE_COUNT $LARGE_CONC large" \
              "delete 0 $LARGE_COUNT $LARGE_CONC large" \
              "put 4096 $SMALL_COUNT 16 small" \
              "get 4096 $SMALL_COUNT 16 small" \
              "delete 0 $SMALL_COUNT 16 small"; do
    read -r op size count conc prefix <<<"$spec"
    line=$(timeout 300 "$LOAD" "${common[@]}" --op "$op" --size "$size" --count "$count" \
      --concurrency "$conc" --prefix "$prefix")
    [ "$op" = delete ] && continue
    echo "{\"backend\":\"$backend\",\"mode\":\"$mode\",\"workload\":\"$prefix\",\"result\":$line}" >>"$RESULTS"
    echo "  $backend $mode $op $prefix: $line" >&2
  done
}

# proxy BACKEND MODE ENCRYPT [ENDPOINT AK SK]: start the release proxy with a config
# file (embedded backend when no endpoint), run the workloads, stop it.
proxy() {
  local backend=$1 mode=$2 encrypt=$3 ep=${4:-} ak=${5:-} sk=${6:-} port admin cfg
  read -r port admin <<<"$(free_ports 2)"
  cfg=$WORK/sealgate-$backend-$mode.toml
  mkdir -p "$WORK/proxy-$backend-$mode"
  {
    echo "[server]"; echo "listen = \"127.0.0.1:$port\""; echo "admin_listen = \"127.0.0.1:$admin\""
    if [ -n "$ep" ]; then
      echo "[backend]"; echo "endpoint = \"$ep\""; echo "access_key = \"$ak\""; echo "secret_key = \"$sk\""
    fi
    echo "[embedded]"; echo "data_dir = \"$WORK/proxy-$backend-$mode/data\""
    echo "[kms]"; echo "master_key_file = \"$WORK/proxy-$backend-$mode/master.key\""
    echo "[log]"; echo "level = \"warn\""
    echo "[encryption.default]"; echo "encrypt = $encrypt"
    echo "[[credentials]]"; echo "access_key = \"$CLIENT_AK\""; echo "secret_key = \"$CLIENT_SK\""
  } >"$cfg"
  # A clean environment: sealgate reads every SEALGATE_* variable as configuration,
  # and the test harness's SEALGATE_TEST_* ones are not.
  env -i PATH="$PATH" HOME="$HOME" "$SEALGATE" --config "$cfg" >"$WORK/proxy-$backend-$mode.log" 2>&1 &
  PROXY_PID=$!
  wait_until 30 http_up "http://127.0.0.1:$admin/healthz" ||
    { tail -20 "$WORK/proxy-$backend-$mode.log" >&2; exit 1; }
  load "$backend" "$mode" "http://127.0.0.1:$port" "$CLIENT_AK" "$CLIENT_SK" "bench-$mode-$RANDOM"
  kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=
}

for backend in $BACKENDS; do
  case $backend in
    embedded)
      read -r port <<<"$(free_ports 1)"
      echo "s3s-fs on 127.0.0.1:$port" >&2
      PORT=$port scripts/backends/s3s-fs.sh start "$WORK/s3s-fs" >"$WORK/s3s-fs.out"
      ep=$(sed -n 's/^endpoint=//p' "$WORK/s3s-fs.out")
      ak=$(sed -n 's/^access_key=//p' "$WORK/s3s-fs.out")
      sk=$(sed -n 's/^secret_key=//p' "$WORK/s3s-fs.out")
      load embedded direct "$ep" "$ak" "$sk" bench-direct
      scripts/backends/s3s-fs.sh stop "$WORK/s3s-fs"
      proxy embedded proxy-plain false
      proxy embedded proxy-encrypted true
      ;;
    ceph)
      if [ -n "${SEALGATE_TEST_CEPH_ENDPOINT:-}" ]; then
        ep=$SEALGATE_TEST_CEPH_ENDPOINT ak=$SEALGATE_TEST_CEPH_ACCESS_KEY sk=$SEALGATE_TEST_CEPH_SECRET_KEY
      else
        read -r port mon <<<"$(free_ports 2)"
        echo "Ceph RGW on 127.0.0.1:$port" >&2
        PORT=$port MON_PORT=$mon scripts/backends/ceph-rgw.sh start "$WORK/ceph" >"$WORK/ceph.out"
        ep=$(sed -n 's/^endpoint=//p' "$WORK/ceph.out")
        ak=$(sed -n 's/^access_key=//p' "$WORK/ceph.out")
        sk=$(sed -n 's/^secret_key=//p' "$WORK/ceph.out")
      fi
      load ceph direct "$ep" "$ak" "$sk" "bench-direct-$RANDOM"
      proxy ceph proxy-plain false "$ep" "$ak" "$sk"
      proxy ceph proxy-encrypted true "$ep" "$ak" "$sk"
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
done

mkdir -p "$(dirname "$OUT")"
python3 benches/e2e/report.py "$RESULTS" "$OUT" "$LARGE_MIB"
