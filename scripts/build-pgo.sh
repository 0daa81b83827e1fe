#!/usr/bin/env bash
# Profile-guided release build of sealgate: the same code as `cargo build --release`,
# laid out and inlined by the compiler from a profile of the proxy at work.
#
#   scripts/build-pgo.sh [--out FILE]      default FILE: target/pgo/sealgate
#
# 1. builds an instrumented sealgate (target/pgo-generate) and, as usual, the load
#    generator and the embedded backend (examples e2e-load, embedded-backend);
# 2. trains it: one instrumented proxy, HTTPS on its S3 listener and plain HTTP on a
#    second one, in front of the embedded backend, serves a mix of S3 requests through
#    both listeners to an encrypting bucket and a plaintext one: 4 KiB PUT, GET, HEAD,
#    CopyObject, DELETE at 1, 16 and 64 in flight, listings, 64 MiB PUT and GET, ranged
#    GETs, a multipart upload; it exits through SIGTERM, which writes the profile;
# 3. merges the profile (llvm-profdata from rustup's llvm-tools component, installed
#    here when missing) and builds sealgate with it (target/pgo-use).
# Code no training request reaches is compiled as rarely used (smaller, not faster),
# which is why the training covers both listeners and both bucket kinds.
# ~9 min on 2 cores: two full release builds and about 30 s of training.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/pgo/sealgate
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
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

mkdir -p "$WORK/objects"
"$EMBEDDED" "$WORK/objects" >"$WORK/embedded.out" 2>"$WORK/embedded.log" &
PIDS+=("$!")
wait_until 30 grep -q '^secret_key=' "$WORK/embedded.out" || { cat "$WORK/embedded.log" >&2; exit 1; }
ep=$(sed -n 's/^endpoint=//p' "$WORK/embedded.out")
ak=$(sed -n 's/^access_key=//p' "$WORK/embedded.out")
sk=$(sed -n 's/^secret_key=//p' "$WORK/embedded.out")

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
read -r tls_port http_port admin <<<"$(free_ports 3)"
CLIENT_AK=pgotrainingaccess CLIENT_SK=pgotrainingsecretkey0000000000000000000
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
} >"$WORK/sealgate.toml"
# A clean environment (every SEALGATE_* variable is configuration); the profile's path.
env -i PATH="$PATH" HOME="$HOME" LLVM_PROFILE_FILE="$WORK/profiles/sealgate-%p.profraw" \
  "$ROOT/target/pgo-generate/release/sealgate" --config "$WORK/sealgate.toml" \
  >"$WORK/sealgate.log" 2>&1 &
proxy=$!
PIDS+=("$proxy")
wait_until 30 http_up "http://127.0.0.1:$admin/healthz" || { tail -20 "$WORK/sealgate.log" >&2; exit 1; }

# load ENDPOINT BUCKET OP SIZE COUNT CONCURRENCY [extra]: one training workload.
load() {
  local endpoint=$1 bucket=$2 op=$3 size=$4 count=$5 conc=$6
  shift 6
  "$LOAD" --endpoint "$endpoint" --ca-file "$WORK/cert.pem" --access-key "$CLIENT_AK" \
    --secret-key "$CLIENT_SK" --bucket "$bucket" --op "$op" --size "$size" --count "$count" \
    --concurrency "$conc" "$@" >/dev/null
}
MIB=1048576
# 4 KiB objects written, read and deleted per concurrency.
declare -A SMALL=([1]=300 [16]=2000 [64]=2000)
for bucket in secret plain; do
  for endpoint in "https://127.0.0.1:$tls_port" "http://127.0.0.1:$http_port"; do
    b=$bucket-${endpoint%%:*}
    say "training: bucket $b"
    load "$endpoint" "$b" mb 0 1 1
    for c in "${!SMALL[@]}"; do
      for op in put get head; do load "$endpoint" "$b" "$op" 4096 "${SMALL[$c]}" "$c" --prefix "s$c"; done
    done
    load "$endpoint" "$b" copy 4096 300 8 --prefix s1
    load "$endpoint" "$b" list 0 20 4 --prefix s1
    load "$endpoint" "$b" put $((64 * MIB)) 4 2 --prefix big
    load "$endpoint" "$b" get $((64 * MIB)) 4 2 --prefix big
    load "$endpoint" "$b" range $MIB 32 8 --key big-0 --object-size $((64 * MIB))
    load "$endpoint" "$b" multipart $((64 * MIB)) 1 8 --prefix mp
    for c in "${!SMALL[@]}"; do load "$endpoint" "$b" delete 0 "${SMALL[$c]}" 16 --prefix "s$c"; done
    load "$endpoint" "$b" delete 0 300 16 --prefix s1-copy
    load "$endpoint" "$b" delete 0 4 2 --prefix big
  done
done
kill -TERM "$proxy"
wait_until 60 all_gone "$proxy" || { echo "the trained proxy did not exit" >&2; exit 1; }
ls "$WORK"/profiles/*.profraw >/dev/null 2>&1 || { echo "the trained proxy wrote no profile" >&2; exit 1; }

say "merging the profile and building the optimized proxy"
mkdir -p "$(dirname "$OUT")"
"$PROFDATA" merge -o "$WORK/sealgate.profdata" "$WORK"/profiles/*.profraw
RUSTFLAGS="-Cprofile-use=$WORK/sealgate.profdata" \
  cargo build --release --locked --quiet --bin sealgate --target-dir "$ROOT/target/pgo-use"
install -m 0755 "$ROOT/target/pgo-use/release/sealgate" "$OUT"
say "done: $OUT"
