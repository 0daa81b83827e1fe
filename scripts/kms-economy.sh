#!/usr/bin/env bash
# Prints KMS calls for 10,000 PUTs + 10,000 GETs to one bucket through the proxy (local
# KMS, embedded backend), with bucket keys and without (bucket-key-enabled: false).
#   scripts/kms-economy.sh [OBJECTS]
set -euo pipefail
cd "$(dirname "$0")/.."
KMS_ECONOMY_OBJECTS=${1:-10000} cargo test --release --test kms_economy -- --nocapture 2>&1 |
  grep -E '^(bucket keys|KMS calls saved)|test result'
