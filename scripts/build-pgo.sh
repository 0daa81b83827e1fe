#!/usr/bin/env bash
# Profile-guided release build of sealgate: the same code as `cargo build --release`,
# laid out and inlined by the compiler from a profile of the proxy at work, then laid
# out once more by BOLT from a second profile of the compiled binary.
#
#   scripts/build-pgo.sh [--out FILE] [--no-bolt]     default FILE: target/pgo/sealgate
#
# 1. builds an instrumented sealgate (target/pgo-generate) and, as usual, the load
#    generator and the embedded backend (examples e2e-load, embedded-backend);
# 2. trains it: one instrumented proxy, HTTPS on its S3 listener and plain HTTP on a
#    second one, in front of the embedded backend, serves a mix of S3 requests through
#    both listeners to an encrypting bucket and a plaintext one: 4 KiB PUT, GET, HEAD,
#    CopyObject, DELETE at 1, 16 and 64 in flight, listings, 64 MiB PUT and GET, ranged
#    GETs, a multipart upload; it exits through SIGTERM, which writes the profile;
# 3. merges the profile (llvm-profdata from rustup's llvm-tools component, installed
#    here when missing) and builds sealgate with it (target/pgo-use), for BOLT linked
#    with its relocations kept (--emit-relocs) so that BOLT may move every function;
# 4. unless --no-bolt: instruments that binary with BOLT (llvm-bolt-15 from Debian's
#    bolt-15, installed here when missing), trains it the same way on a fresh backend,
#    and has BOLT reorder its functions and blocks by the counts and move the code no
#    training request reached out of the way. The compiler's profile decides what is
#    inlined and how each function is compiled; BOLT's, taken from the finished binary,
#    decides where the hot code sits, so what a request runs through shares fewer cache
#    lines and pages (docs/PERFORMANCE.md, "BOLT"). BOLT's output has no debug
#    information (function names stay).
# Code no training request reaches is compiled as rarely used (smaller, not faster),
# which is why the training covers both listeners and both bucket kinds.
# ~10 min on 2 cores: two full release builds and about 30 s of training per stage.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/pgo/sealgate
BOLT=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --no-bolt) BOLT=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. scripts/backends/lib.sh
started=$SECONDS
say() { printf '== pgo [%4ds] %s\n' $((SECONDS - started)) "$*" >&2; }

host=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
  say "installing rustup's llvm-tools component (llvm-profdata)"
  rustup component add llvm-tools
fi
command -v openssl >/dev/null || { echo "openssl missing (apt-get install openssl)" >&2; exit 1; }
# BOLT: Debian bookworm's bolt-15 (LLVM 15.0.6), installed here when missing; the
# build was checked with it (docs/PERFORMANCE.md, "BOLT").
LLVM_BOLT=
if [ "$BOLT" = 1 ]; then
  if ! command -v llvm-bolt-15 >/dev/null && command -v apt-get >/dev/null; then
    say "installing Debian's bolt-15 (llvm-bolt)"
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      bolt-15 >/dev/null
  fi
  LLVM_BOLT=$(command -v llvm-bolt-15 || true)
  [ -n "$LLVM_BOLT" ] || { echo "llvm-bolt-15 missing (Debian: bolt-15); or pass --no-bolt" >&2; exit 1; }
  # The real path: llvm-bolt finds its instrumentation runtime beside itself
  # (/usr/lib/llvm-15/lib), not beside the /usr/bin link.
  LLVM_BOLT=$(readlink -f "$LLVM_BOLT")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-pgo.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  set +e
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null
    wait_until 10 all_gone "${PIDS[@]}" || kill -9 "${PIDS[@]}" 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

say "building the instrumented proxy and the load generator"
# Build scripts and proc macros are instrumented too and write profiles of their own
# while compiling; they go to a directory of their own, which is not merged.
RUSTFLAGS="-Cprofile-generate=$ROOT/target/pgo-generate/build-profiles" \
  cargo build --release --locked --quiet --bin sealgate --target-dir "$ROOT/target/pgo-generate"
cargo build --release --locked --quiet --example e2e-load --example embedded-backend
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOAD=$TARGET_DIR/release/examples/e2e-load
EMBEDDED=$TARGET_DIR/release/examples/embedded-backend

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
CLIENT_AK=pgotrainingaccess CLIENT_SK=pgotrainingsecretkey0000000000000000000
MIB=1048576

# start_stack STAGE PROXY [ENV=VALUE...]: a fresh embedded backend (a directory of its
# own, so the training's buckets are new) and PROXY in front of it, in a clean
# environment (every SEALGATE_* variable is configuration) plus ENV. Sets proxy,
# backend, TLS_ENDPOINT and HTTP_ENDPOINT.
start_stack() {
  local stage=$1 bin=$2 ep ak sk tls_port http_port admin
  shift 2
  mkdir -p "$WORK/$stage/objects"
  "$EMBEDDED" "$WORK/$stage/objects" >"$WORK/$stage/embedded.out" 2>"$WORK/$stage/embedded.log" &
  backend=$!
  PIDS+=("$backend")
  wait_until 30 grep -q '^secret_key=' "$WORK/$stage/embedded.out" ||
    { cat "$WORK/$stage/embedded.log" >&2; exit 1; }
  ep=$(sed -n 's/^endpoint=//p' "$WORK/$stage/embedded.out")
  ak=$(sed -n 's/^access_key=//p' "$WORK/$stage/embedded.out")
  sk=$(sed -n 's/^secret_key=//p' "$WORK/$stage/embedded.out")
  read -r tls_port http_port admin <<<"$(free_ports 3)"
  {
    cat <<EOF
[server]
listen = "127.0.0.1:$tls_port"
http_listen = "127.0.0.1:$http_port"
admin_listen = "127.0.0.1:$admin"
tls_cert = "$WORK/cert.pem"
tls_key = "$WORK/key.pem"
EOF
    backend_toml "$ep" "$ak" "$sk" "$WORK/master.key"
    cat <<EOF
# The default policy (encrypting) for the secret-* buckets; plain-* pass through.
[encryption.buckets.plain-https]
encrypt = false
allow_plaintext_reads = true
[encryption.buckets.plain-http]
encrypt = false
allow_plaintext_reads = true
[[credentials]]
access_key = "$CLIENT_AK"
secret_key = "$CLIENT_SK"
EOF
  } >"$WORK/$stage/sealgate.toml"
  env -i PATH="$PATH" HOME="$HOME" "$@" "$bin" --config "$WORK/$stage/sealgate.toml" \
    >"$WORK/$stage/sealgate.log" 2>&1 &
  proxy=$!
  PIDS+=("$proxy")
  wait_until 30 http_up "http://127.0.0.1:$admin/healthz" ||
    { tail -20 "$WORK/$stage/sealgate.log" >&2; exit 1; }
  TLS_ENDPOINT="https://127.0.0.1:$tls_port" HTTP_ENDPOINT="http://127.0.0.1:$http_port"
}

# stop_stack: SIGTERM, on which the proxy drains and leaves through the end of main,
# where an instrumented binary writes its profile; then the backend.
stop_stack() {
  kill -TERM "$proxy"
  wait_until 60 all_gone "$proxy" || { echo "the trained proxy did not exit" >&2; exit 1; }
  kill -TERM "$backend"
  wait_until 30 all_gone "$backend" || kill -9 "$backend" 2>/dev/null || true
}

# load ENDPOINT BUCKET OP SIZE COUNT CONCURRENCY [extra]: one training workload.
load() {
  local endpoint=$1 bucket=$2 op=$3 size=$4 count=$5 conc=$6
  shift 6
  "$LOAD" --endpoint "$endpoint" --ca-file "$WORK/cert.pem" --access-key "$CLIENT_AK" \
    --secret-key "$CLIENT_SK" --bucket "$bucket" --op "$op" --size "$size" --count "$count" \
    --concurrency "$conc" "$@" >/dev/null
}

# train STAGE: the mix, through both listeners, to both bucket kinds.
train() {
  local stage=$1 bucket endpoint b c op
  # 4 KiB objects written, read and deleted per concurrency.
  local -A small=([1]=300 [16]=2000 [64]=2000)
  for bucket in secret plain; do
    for endpoint in "$TLS_ENDPOINT" "$HTTP_ENDPOINT"; do
      b=$bucket-${endpoint%%:*}
      say "training ($stage): bucket $b"
      load "$endpoint" "$b" mb 0 1 1
      for c in "${!small[@]}"; do
        for op in put get head; do load "$endpoint" "$b" "$op" 4096 "${small[$c]}" "$c" --prefix "s$c"; done
      done
      load "$endpoint" "$b" copy 4096 300 8 --prefix s1
      load "$endpoint" "$b" list 0 20 4 --prefix s1
      load "$endpoint" "$b" put $((64 * MIB)) 4 2 --prefix big
      load "$endpoint" "$b" get $((64 * MIB)) 4 2 --prefix big
      load "$endpoint" "$b" range $MIB 32 8 --key big-0 --object-size $((64 * MIB))
      load "$endpoint" "$b" multipart $((64 * MIB)) 1 8 --prefix mp
      for c in "${!small[@]}"; do load "$endpoint" "$b" delete 0 "${small[$c]}" 16 --prefix "s$c"; done
      load "$endpoint" "$b" delete 0 300 16 --prefix s1-copy
      load "$endpoint" "$b" delete 0 4 2 --prefix big
    done
  done
}

start_stack compiler "$ROOT/target/pgo-generate/release/sealgate" \
  LLVM_PROFILE_FILE="$WORK/profiles/sealgate-%p.profraw"
train compiler
stop_stack
ls "$WORK"/profiles/*.profraw >/dev/null 2>&1 || { echo "the trained proxy wrote no profile" >&2; exit 1; }

say "merging the profile and building the optimized proxy"
mkdir -p "$(dirname "$OUT")"
"$PROFDATA" merge -o "$WORK/sealgate.profdata" "$WORK"/profiles/*.profraw
# For BOLT, --emit-relocs keeps the link's relocations in the binary: BOLT needs them
# to move functions, and drops them (with the debug information) from its output.
relocs=
[ "$BOLT" = 1 ] && relocs=" -Clink-arg=-Wl,--emit-relocs"
RUSTFLAGS="-Cprofile-use=$WORK/sealgate.profdata$relocs" \
  cargo build --release --locked --quiet --bin sealgate --target-dir "$ROOT/target/pgo-use"
COMPILED=$ROOT/target/pgo-use/release/sealgate
if [ "$BOLT" = 0 ]; then
  install -m 0755 "$COMPILED" "$OUT"
  say "done: $OUT"
  exit 0
fi

# bolt STEP ARGS...: llvm-bolt on the compiled proxy, its output in WORK/bolt-STEP.log
# (the end of it shown when it fails).
bolt() {
  local log=$WORK/bolt-$1.log
  shift
  "$LLVM_BOLT" "$COMPILED" "$@" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
}

say "instrumenting the optimized proxy with BOLT ($LLVM_BOLT)"
# The instrumented binary counts every branch and call it takes and writes the counts
# to the file named here when it exits.
bolt instrument -instrument -instrumentation-file="$WORK/bolt.fdata" \
  -o "$WORK/sealgate-bolt-instrumented"
start_stack bolt "$WORK/sealgate-bolt-instrumented"
train bolt
stop_stack
[ -s "$WORK/bolt.fdata" ] || { echo "the BOLT-instrumented proxy wrote no profile" >&2; exit 1; }

say "laying out the optimized proxy by BOLT's profile"
# ext-tsp orders each function's blocks and hfsort+ the functions by the counts;
# splitting moves the blocks no training request ran (error paths, start-up) to a cold
# region. Left off on purpose: identical code folding and splitting of exception
# handling code, which change what function pointers and unwinding see.
bolt optimize -data="$WORK/bolt.fdata" -o "$WORK/sealgate-bolt" \
  -reorder-blocks=ext-tsp -reorder-functions=hfsort+ -split-functions -split-all-cold \
  -dyno-stats
grep -E 'have non-empty execution profile|taken branches' "$WORK/bolt-optimize.log" >&2 || true
"$WORK/sealgate-bolt" --version >/dev/null || { echo "the BOLT-optimized proxy does not run" >&2; exit 1; }
install -m 0755 "$WORK/sealgate-bolt" "$OUT"
say "done: $OUT"
