#!/usr/bin/env bash
# Every parser's property tests at 100,000 cases each (the normal run uses 1,000):
# SigV4 canonicalisation and presigned queries, aws-chunked framing and trailers,
# the envelope decoder, list-XML rewriting, the Range header and request routing.
# Prints the time each group took. Not part of CI (it takes a while).
#
#   ./scripts/proptest-long.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-100000}
# PROPTEST_RELEASE=1 builds the tests in release mode (faster cases, slower build);
# the default reuses the debug test build (dependencies are built at opt-level 2).
profile=()
[ "${PROPTEST_RELEASE:-0}" = 1 ] && profile=(--release)
cargo test "${profile[@]}" --lib --no-run
groups=(
  "auth::proptests"
  "auth::canonical::proptests"
  "crypto::envelope::tests"
  "s3::xml::proptests"
  "s3::xml::tests"
  "s3::range::proptests"
  "s3::range::tests"
  "s3::op::proptests"
)
total=$SECONDS
failed=0
for g in "${groups[@]}"; do
  t=$SECONDS
  if ! out=$(PROPTEST_CASES=$CASES cargo test "${profile[@]}" --lib -q -- "$g" 2>&1); then
    echo "$out" | tail -n 40
    failed=1
  fi
  printf '== %-30s %6d s at %d cases: %s\n' "$g" $((SECONDS - t)) "$CASES" \
    "$(echo "$out" | grep -E '^test result' | tail -n 1)"
done
printf '== total %d s\n' $((SECONDS - total))
exit "$failed"
