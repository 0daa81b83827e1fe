#!/usr/bin/env bash
# Soak: the release binary (or, with SOAK_PROFILE=debug, the test command's debug
# build) against a backend under a mixed load at concurrency 32, every byte read
# checked, RSS and open descriptors sampled from /proc.
#
#   ./scripts/soak.sh [DURATION_SECS]         embedded backend (default 1800 s)
#   SOAK_BACKEND=ceph ./scripts/soak.sh 300   Ceph RGW from SEALGATE_TEST_CEPH_*
#
# Env: SOAK_CONCURRENCY (32), SOAK_COPY=1 puts COPY in the mix (501 tolerated while
# encrypted COPY is not built; SOAK_COPY=required makes 501 an error),
# SOAK_MAX_RSS_GROWTH_MIB (64): RSS growth after the first fifth of the run beyond it
# fails the soak; SOAK_MAX_FD_GROWTH (64): more open descriptors than before the load
# plus this, once the load has stopped and the proxy's pools have closed their idle
# connections (up to 60 s after the load), fails it. SOAK_UPLOAD_REGISTRY=0 runs multipart
# uploads without an upload registry (default: with one, which on the embedded backend
# must hold no record once every upload has finished). Exits non-zero on any data
# mismatch, unexpected error, growth past a bound or record left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-1800}
CONCURRENCY=${SOAK_CONCURRENCY:-32}
say() { printf '== soak.sh %s\n' "$*"; }

PROFILE=${SOAK_PROFILE:-release}
case $PROFILE in
  release) profile_flag=(--release) ;;
  # The test command's build (scripts/test.sh), so nothing is rebuilt.
  debug) . scripts/test-features.sh; profile_flag=("${TEST_FEATURES[@]}") ;;
  *) echo "SOAK_PROFILE is release or debug, not $PROFILE" >&2; exit 2 ;;
esac
say "building the $PROFILE binary and the soak tool"
cargo build "${profile_flag[@]}" --bin sealgate --example soak
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-soak.XXXXXX")
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  [ "$rc" -ne 0 ] && [ -s "$WORK/sealgate.log" ] && { echo "--- tail of sealgate.log"; tail -n 30 "$WORK/sealgate.log"; }
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. scripts/backends/lib.sh   # free_ports
read -r PORT ADMIN <<<"$(free_ports 2)"
AK=SOAKTESTACCESSKEY001
SK=soak-test-secret-key-00000000000000000001
backend=""
if [ "${SOAK_BACKEND:-embedded}" = ceph ]; then
  : "${SEALGATE_TEST_CEPH_ENDPOINT:?SOAK_BACKEND=ceph needs SEALGATE_TEST_CEPH_ENDPOINT}"
  backend=$(printf '[backend]\nendpoint = "%s"\naccess_key = "%s"\nsecret_key = "%s"\n' \
    "$SEALGATE_TEST_CEPH_ENDPOINT" "$SEALGATE_TEST_CEPH_ACCESS_KEY" "$SEALGATE_TEST_CEPH_SECRET_KEY")
fi
REGISTRY=soak-upload-registry
registry=""
if [ "${SOAK_UPLOAD_REGISTRY:-1}" = 1 ]; then
  registry=$(printf '\n[uploads]\nregistry_bucket = "%s"\n' "$REGISTRY")
fi
cat >"$WORK/config.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$ADMIN"
$backend
[embedded]
data_dir = "$WORK/data"

[kms]
master_key_file = "$WORK/master.key"

[log]
level = "warn"
$registry
[[credentials]]
access_key = "$AK"
secret_key = "$SK"
TOML
"$BIN/sealgate" --config "$WORK/config.toml" >"$WORK/sealgate.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
copy=()
case "${SOAK_COPY:-1}" in
  1) copy=(--copy) ;;
  required) copy=(--copy-required) ;;
esac
say "sealgate pid $pid on 127.0.0.1:$PORT (${SOAK_BACKEND:-embedded} backend); $DURATION s at concurrency $CONCURRENCY"
rc=0
"$BIN/examples/soak" --endpoint "http://127.0.0.1:$PORT" --access-key "$AK" --secret-key "$SK" \
  --pid "$pid" --duration "$DURATION" --concurrency "$CONCURRENCY" --bucket "soak-$(date +%s)" "${copy[@]}" \
  --max-rss-growth-mib "${SOAK_MAX_RSS_GROWTH_MIB:-64}" --max-fd-growth "${SOAK_MAX_FD_GROWTH:-64}" || rc=$?
say "object-facts caches at the end (entries, bytes):"
curl -fsS "http://127.0.0.1:$ADMIN/metrics" | grep '^sealgate_metadata_cache' || true
records="$WORK/data/objects/$REGISTRY/pending-uploads"
if [ -n "$registry" ] && [ -z "$backend" ]; then
  # Every upload completed or was aborted; their records go in the background.
  left=0
  for _ in $(seq 50); do
    left=$(find "$records" -type f 2>/dev/null | wc -l)
    [ "$left" -eq 0 ] && break
    sleep 0.2
  done
  if [ ! -d "$WORK/data/objects/$REGISTRY" ]; then
    say "FAIL: the upload registry bucket was never created (were uploads recorded?)"
    rc=1
  elif [ "$left" -ne 0 ]; then
    say "FAIL: $left upload registry records left after every upload finished"
    rc=1
  else
    say "upload registry: no record left"
  fi
fi
exit "$rc"
