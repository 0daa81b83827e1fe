#!/usr/bin/env bash
# End-to-end benchmark on loopback: one workload set against four targets per backend,
#   direct     the backend itself;
#   nginx      nginx 1.22 as a plain streaming reverse proxy in front of it
#              (proxy_request_buffering off, proxy_buffering off, HTTP/1.1 keep-alive
#              upstream pool; scripts/install-bench-deps.sh installs it);
#   plain      sealgate in front of it, encryption off (verify, re-sign, stream);
#   encrypted  sealgate in front of it, encrypting (the default policy);
#   bare       (full runs, 4 KiB requests only) sealgate's stack alone: the same tokio
#              runtime, hyper server settings and backend pool, streaming requests
#              unchanged like nginx (benches/e2e/bare_proxy.rs), so the report can split
#              sealgate's CPU per request into the stack's and its own S3 work's;
# and two backends:
#   embedded   the embedded backend standalone (s3s-fs as a library, the S3 server
#              sealgate starts when no backend is configured; examples/embedded-backend,
#              with TCP_NODELAY: the s3s-fs binary stalls small GETs up to 40 ms);
#   ceph       Ceph RGW 16.2 (the one test.sh started when SEALGATE_TEST_CEPH_* is
#              set, else a private one under the work directory).
# Workloads (benches/e2e/load.rs, SigV4, TCP_NODELAY, keep-alive): 64 MiB and 1 GiB
# PUT and GET at concurrency 1 and 8, a multipart upload of 1 GiB in 8 MiB parts,
# ranged 1 MiB GETs in a large object, 4 KiB PUT and GET at concurrency 16 and 64.
# All targets of a backend run at once; the workloads go in rounds (the large set: 3 in
# the full run, 1 in the quick one; the 4 KiB set: 5), and within a round each workload
# (or group of large ones) runs against every target back to back, starting at a
# different target each time. The report takes each target's median round, and pairs
# every round of encrypting sealgate with nginx's of the same round, run seconds apart,
# so background load on the shared machine hits all alike.
# For nginx and sealgate it also records the proxy process's CPU seconds (utime +
# stime from /proc/PID/stat, nginx: all workers) and peak RSS (VmHWM, reset through
# /proc/PID/clear_refs before every workload) per workload, and for every target the
# whole machine's busy CPU time (/proc/stat), which holds the backend's, the load
# generator's and the kernel's work beside the proxy's. It finishes with a memory run:
# 64 concurrent transfers of one large object through encrypting sealgate.
# Writes OUT/e2e.jsonl (raw), OUT/e2e.json, OUT/e2e.md (Markdown tables, also on
# stdout) and OUT/e2e.svg (chart).
#
#   benches/e2e.sh [--quick] [--pgo] [--backends "embedded ceph"] [--out DIR]
#                  [--no-build | --build-only]
#
# --build-only: build the binaries this run would measure, then stop (scripts/test.sh
# builds the quick run's this way beside the tests, so the list lives here only).
# --pgo: plain and encrypting sealgate are the container image's build, scripts/build-pgo.sh
# (profile-guided, then laid out by BOLT; target/pgo/sealgate, built first unless
# --no-build) instead of `cargo build --release`'s; the report says which build it
# measured.
#
# Full run: ~17 min for both backends on an idle machine (much longer under load) after
# the release build. --quick (the CI step): 64 MiB objects
# only and fewer requests, ~3-6 min. Every load run is killed after 5 minutes (full
# run: 15); a failed or killed request fails the script, slow numbers never do.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0 BACKENDS="embedded ceph" OUT=target/e2e-bench BUILD=1 BUILD_ONLY=0 PGO=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --pgo) PGO=1; shift ;;
    --backends) BACKENDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$BUILD" = 0 ] && [ "$BUILD_ONLY" = 1 ] && { echo "--build-only and --no-build exclude each other" >&2; exit 2; }
. scripts/backends/lib.sh
started=$SECONDS
say() { printf '== e2e [%4ds] %s\n' $((SECONDS - started)) "$*" >&2; }

MIB=1048576
# name op size count concurrency [extra load arguments]; "-" lines are cleanup only.
# A "=" line ends a group: a round runs each group against every target back to back
# before the next group, so the runs one check compares are seconds apart, not a whole
# set apart (large_rounds).
# The 64 MiB transfers one at a time move four objects (about half a second of PUT):
# with two, a run lasted 0.25 s, and one stall of the shared machine moved a round by
# up to 15 %.
if [ "$QUICK" = 1 ]; then
  WORKLOADS="put-64MiB-c1 put $((64 * MIB)) 4 1
=
get-64MiB-c1 get $((64 * MIB)) 4 1
=
put-64MiB-c8 put $((64 * MIB)) 8 8 --prefix c8
=
get-64MiB-c8 get $((64 * MIB)) 8 8 --prefix c8
=
range-1MiB-c8 range $MIB 64 8 --key obj-0 --object-size $((64 * MIB))
=
multipart-64MiB-p8MiB multipart $((64 * MIB)) 1 8 --prefix mp"
  # 5 rounds like the full run: with 3 of 1,000 requests the 4 KiB ratios to nginx moved
  # by ±0.1 from one CI run to the next.
  ROUNDS=5 LARGE_ROUNDS=1
  declare -A SMALL_COUNT=([embedded]=4000 [ceph]=1200)
  MEM_SIZE=$((64 * MIB)) MEM_SECS=10 LOAD_TIMEOUT=300
else
  # A group that stores gigabytes deletes them before the next target runs it: eight
  # 1 GiB objects per target would not fit four times over in RAM, nor 1 GiB per target
  # beside the rest in Ceph RGW's in-memory OSD.
  WORKLOADS="put-64MiB-c1 put $((64 * MIB)) 4 1
=
get-64MiB-c1 get $((64 * MIB)) 4 1
=
put-64MiB-c8 put $((64 * MIB)) 8 8 --prefix c8
=
get-64MiB-c8 get $((64 * MIB)) 8 8 --prefix c8
- delete 0 8 8 --prefix c8
=
put-1GiB-c1 put $((1024 * MIB)) 1 1 --prefix g
get-1GiB-c1 get $((1024 * MIB)) 1 1 --prefix g
range-1MiB-c8 range $MIB 200 8 --key g-0 --object-size $((1024 * MIB))
- delete 0 1 1 --prefix g
=
put-1GiB-c8 put $((1024 * MIB)) 8 8 --prefix g
get-1GiB-c8 get $((1024 * MIB)) 8 8 --prefix g
- delete 0 8 8 --prefix g
=
multipart-1GiB-p8MiB multipart $((1024 * MIB)) 1 8 --prefix mp
- delete 0 1 1 --prefix mp"
  # Large transfers from one round swung by ±10 % between runs, and nginx and sealgate
  # swapped places on the backend-bound PUTs: three rounds, each target's median.
  ROUNDS=5 LARGE_ROUNDS=3
  declare -A SMALL_COUNT=([embedded]=6000 [ceph]=2000)
  # 8 GiB at concurrency 8 needs more than 5 minutes on a busy 2-core machine.
  MEM_SIZE=$((1024 * MIB)) MEM_SECS=30 LOAD_TIMEOUT=900
fi

# The 4 KiB workloads run in ROUNDS rounds that visit every target in turn (in a
# rotated order), so a change in the machine's background load hits all targets alike;
# the report takes each target's median round. SMALL_COUNT is per backend so that one
# load run lasts about half a second or more: the embedded backend serves 4,000-10,000
# small requests a second, Ceph RGW 1,000-2,500, and a run of a few tenths of a second
# is at the mercy of one stall.
# One request at a time (a quarter of COUNT) shows the latency a target adds on an idle
# machine; at 16 and 64 in flight the two cores are saturated, and p50 is mostly the
# concurrency over the throughput.
# small_workloads COUNT: the 4 KiB set with COUNT requests per loaded workload.
small_workloads() {
  printf '%s\n' "put-4KiB-c1 put 4096 $(($1 / 4)) 1 --prefix small" "get-4KiB-c1 get 4096 $(($1 / 4)) 1 --prefix small" \
    "put-4KiB-c16 put 4096 $1 16 --prefix small" "get-4KiB-c16 get 4096 $1 16 --prefix small" \
    "put-4KiB-c64 put 4096 $1 64 --prefix small" "get-4KiB-c64 get 4096 $1 64 --prefix small"
}

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$PGO" = 1 ]; then
  SEALGATE=$ROOT/target/pgo/sealgate SEALGATE_BUILD=profile-guided
  if [ "$BUILD" = 1 ]; then
    # It builds e2e-load and embedded-backend too.
    say "building the profile-guided sealgate (scripts/build-pgo.sh)"
    scripts/build-pgo.sh --out "$SEALGATE"
    cargo build --release --quiet --example bare-proxy
  fi
  [ -x "$SEALGATE" ] || { echo "$SEALGATE missing: run scripts/build-pgo.sh" >&2; exit 1; }
else
  SEALGATE=$TARGET_DIR/release/sealgate SEALGATE_BUILD=release
  if [ "$BUILD" = 1 ]; then
    # The bare target runs in full runs only: its thin-LTO link of the whole stack (45-65
    # s of CPU, like each example's) is one a quick run need not wait for.
    examples=(--example e2e-load --example embedded-backend)
    [ "$QUICK" = 0 ] && examples+=(--example bare-proxy)
    say "building release binaries (sealgate, ${examples[*]})"
    cargo build --release --quiet --bin sealgate "${examples[@]}"
  fi
fi
# scripts/test.sh builds the quick run's binaries ahead, beside the tests, with this
# script's own list: --build-only.
[ "$BUILD_ONLY" = 1 ] && { say "built"; exit 0; }
LOAD=$TARGET_DIR/release/examples/e2e-load
EMBEDDED=$TARGET_DIR/release/examples/embedded-backend
BARE=$TARGET_DIR/release/examples/bare-proxy
command -v nginx >/dev/null || { echo "nginx missing: run scripts/install-bench-deps.sh" >&2; exit 1; }
NGINX=$(command -v nginx)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-e2e.XXXXXX")
PROXY_PIDS=()
stop_proxy() {
  local p
  for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PROXY_PIDS=()
}
# The embedded backend keeps its objects in memory (tmpfs) when there is room for the
# run: on disk, the kernel's writeback of earlier workloads stalls later small PUTs at
# random (4 KiB PUT rates fell from 1,425 to 347 req/s between rounds against the
# backend alone), which is noise about the disk, not the proxy.
EMBEDDED_DIR=$WORK/embedded
shm_free_gib=$(df -k --output=avail /dev/shm 2>/dev/null | awk 'NR == 2 {print int($1 / 1048576)}')
if [ "${shm_free_gib:-0}" -ge "$([ "$QUICK" = 1 ] && echo 2 || echo 12)" ]; then
  EMBEDDED_DIR=$(mktemp -d /dev/shm/sealgate-e2e.XXXXXX)
fi
EMBEDDED_PID=
stop_embedded() {
  [ -n "$EMBEDDED_PID" ] || return 0
  kill "$EMBEDDED_PID" 2>/dev/null || true
  wait "$EMBEDDED_PID" 2>/dev/null || true
  EMBEDDED_PID=
}
cleanup() {
  set +e
  stop_proxy
  stop_embedded
  [[ $EMBEDDED_DIR == /dev/shm/* ]] && rm -rf "$EMBEDDED_DIR"
  scripts/backends/ceph-rgw.sh stop "$WORK/ceph" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"
RESULTS=$OUT/e2e.jsonl
: >"$RESULTS"
CLIENT_AK=benchclientaccess CLIENT_SK=benchclientsecretkey000000000000000000000
HZ=$(getconf CLK_TCK)

# Process accounting of the PIDs in MEASURE (the proxy; empty for direct).
MEASURE=()
measured_pids() {
  local p kids
  for p in "${MEASURE[@]}"; do
    echo "$p"
    # nginx: the master only accepts; the workers move the bytes.
    kids=$(pgrep -P "$p" 2>/dev/null || true)
    [ -n "$kids" ] && echo "$kids"
  done
}
cpu_ticks() {
  local total=0 p t
  for p in $(measured_pids); do
    # Fields 14 and 15 (utime, stime); the command name has no spaces here.
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
# ticks_to_s TICKS: clock ticks as seconds, two decimals.
ticks_to_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}'; }
# The machine's CPU time in ticks spent on anything but waiting: user, nice, system,
# irq and softirq of the "cpu" line of /proc/stat (idle, iowait and steal left out).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
reset_hwm() { local p; for p in $(measured_pids); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
hwm_kib() {
  local total=0 p k
  for p in $(measured_pids); do
    k=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${k:-0}))
  done
  echo "$total"
}

# run_load BACKEND TARGET NAME OP SIZE COUNT CONC [EXTRA...]: one measured load run.
run_load() {
  local backend=$1 target=$2 name=$3 op=$4 size=$5 count=$6 conc=$7 line t0 t1 m0 m1 hwm
  shift 7
  reset_hwm
  t0=$(cpu_ticks) m0=$(machine_ticks)
  if ! line=$(timeout "$LOAD_TIMEOUT" "$LOAD" "${COMMON[@]}" --op "$op" --size "$size" --count "$count" \
    --concurrency "$conc" "$@"); then
    echo "load run $backend/$target/$name failed" >&2
    # The proxy's own account of the failure (warnings and errors only).
    local log=$WORK/sealgate-$backend-$target/sealgate.log
    [ -s "$log" ] && { echo "--- tail of $log" >&2; tail -n 30 "$log" >&2; }
    return 1
  fi
  [ "$name" = - ] && return 0
  t1=$(cpu_ticks) m1=$(machine_ticks) hwm=$(hwm_kib)
  local proc=null machine
  machine=$(printf '{"busy_s":%s}' "$(ticks_to_s $((m1 - m0)))")
  [ ${#MEASURE[@]} -gt 0 ] &&
    proc=$(printf '{"cpu_s":%s,"hwm_kib":%s}' "$(ticks_to_s $((t1 - t0)))" "$hwm")
  echo "{\"backend\":\"$backend\",\"target\":\"$target\",\"workload\":\"$name\",\"result\":$line,\"proc\":$proc,\"machine\":$machine}" >>"$RESULTS"
  say "$backend $target $name: $line proc=$proc"
}

# Every target of one backend: endpoint, keys, bucket, and the PID whose CPU and RSS
# are measured (none for direct). All four are up at once, so the 4 KiB rounds can
# alternate between them.
TARGETS=(direct nginx plain encrypted)
# The 4 KiB rounds visit these; the clean-up too.
SMALL_TARGETS=("${TARGETS[@]}")
[ "$QUICK" = 0 ] && SMALL_TARGETS=(direct nginx bare plain encrypted)
declare -A T_EP T_AK T_SK T_BUCKET T_PID

# use_target TARGET: point COMMON and MEASURE at TARGET.
use_target() {
  COMMON=(--endpoint "${T_EP[$1]}" --access-key "${T_AK[$1]}" --secret-key "${T_SK[$1]}"
    --bucket "${T_BUCKET[$1]}")
  MEASURE=()
  [ -n "${T_PID[$1]}" ] && MEASURE=("${T_PID[$1]}")
  return 0
}

# add_target TARGET ENDPOINT AK SK PID: register TARGET and make its bucket.
add_target() {
  T_EP[$1]=$2 T_AK[$1]=$3 T_SK[$1]=$4 T_PID[$1]=$5 T_BUCKET[$1]="bench-$1-$RANDOM$RANDOM"
  use_target "$1"
  timeout 60 "$LOAD" "${COMMON[@]}" --op mb >/dev/null
}

# settle BACKEND: on a Ceph RGW this script started, free the data of deleted and
# overwritten objects now. RGW's garbage collector otherwise frees it on its own clock
# (every 15 s, 30 s after the delete), in the middle of whichever target writes next,
# and large PUTs slow to half while it runs: writes start from the same OSD state for
# every target. A Ceph RGW started elsewhere (SEALGATE_TEST_CEPH_*) is left alone.
settle() {
  [ "$1" = ceph ] && [ -f "$WORK/ceph/ceph.conf" ] || return 0
  CEPH_CONF=$WORK/ceph/ceph.conf timeout 300 radosgw-admin gc process --include-all >/dev/null 2>&1 ||
    say "ceph: radosgw-admin gc process failed; writes may meet the garbage collector"
}

# run_set BACKEND TARGET SET: every line of SET against TARGET.
run_set() {
  local backend=$1 target=$2 name op size count conc extra
  use_target "$target"
  while read -r name op size count conc extra; do
    case $op in put | multipart) [ "$name" != - ] && [ "$size" -ge "$MIB" ] && settle "$backend" ;; esac
    # shellcheck disable=SC2086  # extra holds several arguments
    run_load "$backend" "$target" "$name" "$op" "$size" "$count" "$conc" $extra
  done <<<"$3"
}

# small_rounds BACKEND: the 4 KiB set ROUNDS times over all targets, one workload at a
# time: each workload runs against every target back to back (a second or two apart,
# so the rounds the report pairs shared the machine's state), in an order rotated by
# round and workload, so no target always runs first or last.
# A target's first passes over its 4 KiB keys create the objects, and Ceph RGW ran them
# at other rates than the overwrites after them (2,000 PUTs at 64 in flight into one
# bucket of the backend alone: 1,530 req/s creating, 1,136 and 1,192 in the next two
# passes, 1,306-1,356 in the five after), which a target met in whichever rounds came
# first: two unmeasured passes go first, so every measured round overwrites.
small_rounds() {
  local backend=$1 r w i t n=${#SMALL_TARGETS[@]} count=${SMALL_COUNT[$backend]}
  for t in "${SMALL_TARGETS[@]}"; do
    run_set "$backend" "$t" "- put 4096 $count 16 --prefix small
- put 4096 $count 16 --prefix small"
  done
  local -a workloads
  mapfile -t workloads < <(small_workloads "$count")
  for ((r = 0; r < ROUNDS; r++)); do
    for ((w = 0; w < ${#workloads[@]}; w++)); do
      for ((i = 0; i < n; i++)); do
        run_set "$backend" "${SMALL_TARGETS[$(((r + w + i) % n))]}" "${workloads[$w]}"
      done
    done
  done
}

# large_rounds BACKEND SET: the large set LARGE_ROUNDS times over all targets, one group
# of SET ("=" lines end a group) at a time against every target back to back, rotated
# like the 4 KiB rounds.
large_rounds() {
  local backend=$1 r g i n=${#TARGETS[@]} group="" line
  local -a groups=()
  # A group left with nothing to measure (Ceph RGW's set drops the 1 GiB transfers at
  # concurrency 8, not their clean-up) is dropped whole. The "=" after SET ends its
  # last group.
  while IFS= read -r line; do
    if [ "$line" = "=" ]; then
      grep -q -v '^- ' <<<"$group" && groups+=("$group")
      group=""
    else
      group+="${group:+$'\n'}$line"
    fi
  done <<<"$2
="
  for ((r = 0; r < LARGE_ROUNDS; r++)); do
    say "$backend: large objects, round $((r + 1)) of $LARGE_ROUNDS"
    for ((g = 0; g < ${#groups[@]}; g++)); do
      for ((i = 0; i < n; i++)); do
        run_set "$backend" "${TARGETS[$(((r + g + i) % n))]}" "${groups[$g]}"
      done
    done
  done
}

# clean_buckets BACKEND: delete what the sets left behind (the buckets themselves are tiny).
clean_buckets() {
  local t spec count prefix
  for t in "${SMALL_TARGETS[@]}"; do
    use_target "$t"
    for spec in "${SMALL_COUNT[$1]} small" "4 obj" "16 c8" "8 g" "1 mp"; do
      read -r count prefix <<<"$spec"
      timeout 120 "$LOAD" "${COMMON[@]}" --op delete --count "$count" --concurrency 16 \
        --prefix "$prefix" >/dev/null 2>&1 || true
    done
  done
  MEASURE=()
}

# memory_run BACKEND ENDPOINT: 64 concurrent GETs of one large object, then 64
# concurrent PUTs of that size to one key, each stopped after MEM_SECS; the
# backend sees the aborted PUTs as failed uploads and keeps nothing.
memory_run() {
  local backend=$1 ep=$2 bucket="bench-mem-$RANDOM$RANDOM"
  COMMON=(--endpoint "$ep" --access-key "$CLIENT_AK" --secret-key "$CLIENT_SK" --bucket "$bucket")
  timeout 60 "$LOAD" "${COMMON[@]}" --op mb >/dev/null
  run_load "$backend" encrypted - put "$MEM_SIZE" 1 1 --key big
  run_load "$backend" encrypted "mem-get-$((MEM_SIZE / MIB))MiB-c64" get "$MEM_SIZE" 64 64 \
    --key big --max-secs "$MEM_SECS"
  run_load "$backend" encrypted "mem-put-$((MEM_SIZE / MIB))MiB-c64" put "$MEM_SIZE" 64 64 \
    --key big2 --max-secs "$MEM_SECS"
  timeout 60 "$LOAD" "${COMMON[@]}" --op delete --count 1 --key big >/dev/null 2>&1 || true
  timeout 60 "$LOAD" "${COMMON[@]}" --op delete --count 1 --key big2 >/dev/null 2>&1 || true
}

# start_nginx BACKEND UPSTREAM_PORT AK SK: the nginx target.
start_nginx() {
  local backend=$1 up=$2 port dir=$WORK/nginx-$1
  read -r port <<<"$(free_ports 1)"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  tcp_nodelay on;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  client_max_body_size 0;
  upstream backend { server 127.0.0.1:$up; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }
}
EOF
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/stderr.log" &
  local pid=$!
  PROXY_PIDS+=("$pid")
  wait_until 15 http_up "http://127.0.0.1:$port/" || { cat "$dir/stderr.log" "$dir/error.log" >&2; exit 1; }
  add_target nginx "http://127.0.0.1:$port" "$3" "$4" "$pid"
}

# start_bare BACKEND ENDPOINT AK SK: the bare target (clients sign with the backend's keys,
# as for nginx).
start_bare() {
  local port dir=$WORK/bare-$1
  read -r port <<<"$(free_ports 1)"
  mkdir -p "$dir"
  "$BARE" "127.0.0.1:$port" "$2" >"$dir/bare.log" 2>&1 &
  local pid=$!
  PROXY_PIDS+=("$pid")
  wait_until 15 http_up "http://127.0.0.1:$port/" || { cat "$dir/bare.log" >&2; exit 1; }
  add_target bare "http://127.0.0.1:$port" "$3" "$4" "$pid"
}

# start_sealgate BACKEND TARGET ENCRYPT ENDPOINT AK SK: a sealgate target.
start_sealgate() {
  local backend=$1 target=$2 encrypt=$3 ep=$4 ak=$5 sk=$6 port admin cfg dir=$WORK/sealgate-$1-$2
  read -r port admin <<<"$(free_ports 2)"
  mkdir -p "$dir"
  cfg=$dir/sealgate.toml
  {
    echo "[server]"; echo "listen = \"127.0.0.1:$port\""; echo "admin_listen = \"127.0.0.1:$admin\""
    backend_toml "$ep" "$ak" "$sk" "$dir/master.key"
    # Plain mode must read back the plaintext objects it wrote.
    echo "[encryption.default]"; echo "encrypt = $encrypt"
    [ "$encrypt" = false ] && echo "allow_plaintext_reads = true"
    echo "[[credentials]]"; echo "access_key = \"$CLIENT_AK\""; echo "secret_key = \"$CLIENT_SK\""
  } >"$cfg"
  # A clean environment: sealgate reads every SEALGATE_* variable as configuration,
  # and the test harness's SEALGATE_TEST_* ones are not.
  env -i PATH="$PATH" HOME="$HOME" "$SEALGATE" --config "$cfg" >"$dir/sealgate.log" 2>&1 &
  local pid=$!
  PROXY_PIDS+=("$pid")
  wait_until 30 http_up "http://127.0.0.1:$admin/healthz" || { tail -20 "$dir/sealgate.log" >&2; exit 1; }
  add_target "$target" "http://127.0.0.1:$port" "$CLIENT_AK" "$CLIENT_SK" "$pid"
}

for backend in $BACKENDS; do
  case $backend in
    embedded)
      "$EMBEDDED" "$EMBEDDED_DIR" >"$WORK/embedded.out" 2>"$WORK/embedded.log" &
      EMBEDDED_PID=$!
      wait_until 30 grep -q '^secret_key=' "$WORK/embedded.out" ||
        { cat "$WORK/embedded.log" >&2; exit 1; }
      say "embedded backend at $(sed -n 's/^endpoint=//p' "$WORK/embedded.out"), objects in $EMBEDDED_DIR"
      ;;
    ceph)
      if [ -n "${SEALGATE_TEST_CEPH_ENDPOINT:-}" ]; then
        printf 'endpoint=%s\naccess_key=%s\nsecret_key=%s\n' "$SEALGATE_TEST_CEPH_ENDPOINT" \
          "$SEALGATE_TEST_CEPH_ACCESS_KEY" "$SEALGATE_TEST_CEPH_SECRET_KEY" >"$WORK/ceph.out"
      else
        say "starting Ceph RGW"
        start_ceph "$WORK/ceph" "$WORK/ceph.out"
      fi
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  out=$WORK/$backend.out
  ep=$(sed -n 's/^endpoint=//p' "$out")
  ak=$(sed -n 's/^access_key=//p' "$out")
  sk=$(sed -n 's/^secret_key=//p' "$out")
  add_target direct "$ep" "$ak" "$sk" ""
  start_nginx "$backend" "${ep##*:}" "$ak" "$sk"
  [[ " ${SMALL_TARGETS[*]} " == *" bare "* ]] && start_bare "$backend" "$ep" "$ak" "$sk"
  start_sealgate "$backend" plain false "$ep" "$ak" "$sk"
  start_sealgate "$backend" encrypted true "$ep" "$ak" "$sk"
  # A fresh Ceph RGW creates its data pool on the first object written, which held the
  # first measured PUT (direct's) to ~50 MiB/s: one unmeasured write first.
  run_set "$backend" direct "- put $MIB 2 1 --prefix warmup
- delete 0 2 1 --prefix warmup"
  wl=$WORKLOADS
  # The Ceph RGW here keeps objects in RAM (memstore, 8 GiB, about twice that in the
  # OSD's memory of this 24 GiB machine): eight 1 GiB objects fill it, and a full OSD
  # stalls every write without an error. Ceph gets the 1 GiB workloads at concurrency 1.
  if [ "$backend" = ceph ] && [ "$QUICK" = 0 ]; then
    wl=$(grep -v -- '-1GiB-c8 ' <<<"$WORKLOADS")
  fi
  large_rounds "$backend" "$wl"
  # The large set ends by deleting its objects, and RGW's garbage collector would free
  # their data (gigabytes in a full run) on its own clock during the first 4 KiB rounds,
  # under whichever targets ran then: free it now.
  settle "$backend"
  say "$backend: 4 KiB requests, $ROUNDS rounds over all targets"
  small_rounds "$backend"
  # The memory run once, against the embedded backend, or Ceph RGW in a quick run of it
  # alone. Not Ceph in a full run: its OSD keeps objects in 8 GiB of RAM, and 64 PUTs of
  # 1 GiB at once overflow it (the OSD grew to 19 GiB of this machine's 24 and stalled
  # every write, the clean-up included).
  if [ "$backend" = embedded ] || [[ " $BACKENDS " != *" embedded "* ]]; then
    if [ "$backend" = ceph ] && [ "$QUICK" = 0 ]; then
      say "ceph: no memory run (64 concurrent 1 GiB PUTs overflow its OSD); run with the embedded backend for it"
    else
      use_target encrypted
      memory_run "$backend" "${T_EP[encrypted]}"
    fi
  fi
  clean_buckets "$backend"
  stop_proxy
  [ "$backend" = embedded ] && stop_embedded
  [ "$backend" = ceph ] && scripts/backends/ceph-rgw.sh stop "$WORK/ceph" >/dev/null 2>&1
done

say "report"
python3 benches/e2e/report.py "$RESULTS" "$OUT" "$([ "$QUICK" = 1 ] && echo quick || echo full)" \
  "$SEALGATE_BUILD"
say "done"
