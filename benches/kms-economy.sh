#!/usr/bin/env bash
# The KMS economy of S3 Bucket Keys, measured against moto (S3 and KMS in one process):
# the release proxy in front of moto's S3, with kms.kind = aws pointed at moto's KMS and
# a key made there with `aws kms create-key`. Runs N PUT + N GET of 1 KiB objects (boto3,
# benches/kms_economy/workload.py) twice, each in its own bucket:
#   bucket-key  the default: one bucket key per (bucket, KMS key) and TTL;
#   per-object  every PUT sends x-amz-server-side-encryption-bucket-key-enabled: false,
#               so each object gets its own KMS data key (AWS's behaviour).
# KMS calls are counted by moto's request recorder (scripts/backends/moto.sh), and
# compared with the proxy's sealgate_kms_requests_total / sealgate_kms_calls_saved_total.
# Prints calls per 10,000 object operations, the saved share and the money at the AWS
# KMS list price (benches/kms_economy/report.py); exits 1 if the two counts disagree.
#
#   benches/kms-economy.sh [N] [THREADS]     (defaults 1000 and 8)
# Loopback only; every step is time-bounded (about 1-3 minutes after the release build);
# moto, the proxy and the work directory are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-1000} THREADS=${2:-8}
. scripts/backends/lib.sh

# Never read the user's AWS configuration or credentials.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
echo "building the release binary" >&2
cargo build --release --quiet --bin sealgate
SEALGATE=$TARGET_DIR/release/sealgate

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-kms-economy.XXXXXX")
PROXY_PID=
cleanup() {
  set +e
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  scripts/backends/moto.sh stop "$WORK/moto" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r MOTO_PORT S3_PORT ADMIN_PORT <<<"$(free_ports 3)"
echo "starting moto on 127.0.0.1:$MOTO_PORT" >&2
MOTO=$(PORT=$MOTO_PORT timeout 300 scripts/backends/moto.sh start "$WORK/moto" |
  sed -n 's/^endpoint=//p')
[ -n "$MOTO" ] || { echo "moto did not start" >&2; exit 1; }

KEY_ID=$(timeout 60 aws kms create-key --endpoint-url "$MOTO" \
  --description "sealgate kms-economy demo" --query KeyMetadata.KeyId --output text)
echo "KMS key $KEY_ID" >&2

echo "starting sealgate on 127.0.0.1:$S3_PORT (admin $ADMIN_PORT)" >&2
env SEALGATE_SERVER__LISTEN="127.0.0.1:$S3_PORT" \
  SEALGATE_SERVER__ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
  SEALGATE_BACKEND__ENDPOINT="$MOTO" \
  SEALGATE_BACKEND__ACCESS_KEY=test SEALGATE_BACKEND__SECRET_KEY=test \
  SEALGATE_KMS__KIND=aws SEALGATE_KMS__ENDPOINT="$MOTO" SEALGATE_KMS__REGION=us-east-1 \
  SEALGATE_KMS__KEY_ID="$KEY_ID" \
  SEALGATE_KMS__ACCESS_KEY=test SEALGATE_KMS__SECRET_KEY=test \
  SEALGATE_LOG__LEVEL=warn \
  "$SEALGATE" >"$WORK/sealgate.log" 2>&1 &
PROXY_PID=$!
PROXY=http://127.0.0.1:$S3_PORT METRICS=http://127.0.0.1:$ADMIN_PORT/metrics
wait_until 30 curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" ||
  { echo "sealgate did not become ready:" >&2; tail -5 "$WORK/sealgate.log" >&2; exit 1; }

recorder() { curl -sf --max-time 30 -X "$1" "$MOTO/moto-api/recorder/$2"; }
for mode in bucket-key per-object; do
  echo "running $mode: $N PUT + $N GET, $THREADS threads" >&2
  recorder POST reset-recording >/dev/null
  recorder POST start-recording >/dev/null
  curl -sf --max-time 10 "$METRICS" >"$WORK/$mode.before"
  timeout 600 python3 benches/kms_economy/workload.py "$PROXY" "kms-economy-$mode" "$N" \
    "$mode" "$THREADS" >"$WORK/$mode.workload" || {
    echo "$mode workload failed (see above); sealgate log:" >&2
    tail -5 "$WORK/sealgate.log" >&2; exit 1
  }
  curl -sf --max-time 10 "$METRICS" >"$WORK/$mode.after"
  recorder POST stop-recording >/dev/null
  recorder GET download-recording >"$WORK/$mode.recording"
done

echo
python3 benches/kms_economy/report.py "$WORK" "$N" "$THREADS"
echo
echo "Proxy totals at the end:"
grep -E '^sealgate_kms_(calls_saved|requests)_total' "$WORK/per-object.after"
