#!/usr/bin/env bash
# Profiles the release proxy's hot path with valgrind callgrind (this VM exposes no
# hardware counters to perf): encrypting sealgate in front of a standalone s3s-fs,
# driven by e2e-load with a small workload (large PUT/GET and 4 KiB PUT/GET), then
# prints the functions with the most inclusive and self cost.
#
#   benches/profile.sh [--no-build] [MIB]     (default 16 MiB objects; ~2-4 min)
# Output: target/profile/callgrind.out (open with callgrind_annotate or kcachegrind).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
[ "${1:-}" = --no-build ] && { BUILD=0; shift; }
MIB=${1:-16}
. scripts/backends/lib.sh
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ "$BUILD" = 1 ] && cargo build --release --quiet --bin sealgate --example e2e-load
SEALGATE=$TARGET_DIR/release/sealgate LOAD=$TARGET_DIR/release/examples/e2e-load
OUT=target/profile
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-profile.XXXXXX")
PID=
cleanup() {
  set +e
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  scripts/backends/s3s-fs.sh stop "$WORK/s3s-fs" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
read -r bport port admin <<<"$(free_ports 3)"
PORT=$bport scripts/backends/s3s-fs.sh start "$WORK/s3s-fs" >"$WORK/s3s-fs.out"
ep=$(sed -n 's/^endpoint=//p' "$WORK/s3s-fs.out")
ak=$(sed -n 's/^access_key=//p' "$WORK/s3s-fs.out")
sk=$(sed -n 's/^secret_key=//p' "$WORK/s3s-fs.out")
CAK=profileaccess CSK=profilesecretkey00000000000000000000000
{
  printf '[server]\nlisten = "127.0.0.1:%s"\nadmin_listen = "127.0.0.1:%s"\n' "$port" "$admin"
  backend_toml "$ep" "$ak" "$sk" "$WORK/master.key"
  printf '[[credentials]]\naccess_key = "%s"\nsecret_key = "%s"\n' "$CAK" "$CSK"
} >"$WORK/sealgate.toml"
env -i PATH="$PATH" HOME="$HOME" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$SEALGATE" --config "$WORK/sealgate.toml" >"$WORK/sealgate.log" 2>&1 &
PID=$!
wait_until 120 http_up "http://127.0.0.1:$admin/healthz" || { tail -20 "$WORK/sealgate.log" >&2; exit 1; }
common=(--endpoint "http://127.0.0.1:$port" --access-key "$CAK" --secret-key "$CSK" --bucket profile)
"$LOAD" "${common[@]}" --op mb >/dev/null
for spec in "put $((MIB << 20)) 2 1 big" "get $((MIB << 20)) 2 1 big" \
            "put 4096 200 8 small" "get 4096 200 8 small"; do
  read -r op size count conc prefix <<<"$spec"
  "$LOAD" "${common[@]}" --op "$op" --size "$size" --count "$count" --concurrency "$conc" --prefix "$prefix" >&2
done
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "--- inclusive cost (top 40)"
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null | sed -n '1,60p' | cut -c1-200
echo "--- self cost (top 40)"
callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | sed -n '1,60p' | cut -c1-200
