#!/usr/bin/env bash
# Validates the deployment files in deploy/ without a cluster, a Docker engine or a
# running systemd, all of which the project's machines lack:
#
#   1. kubernetes-validate --strict against a pinned Kubernetes version, for every
#      manifest with a schema (the ServiceMonitor CRD and kustomization.yaml have none
#      in its bundle: deploy/validate/checks.py checks those by hand);
#   2. systemd-analyze verify and an offline `systemd-analyze security` exposure limit
#      on deploy/systemd/sealgate.service;
#   3. deploy/validate/checks.py: compose.yaml's services, cross-references between
#      manifests (selectors, ports, Secrets, probes, grace periods), and every sealgate
#      configuration in the files run through `sealgate check-config`;
#   4. hadolint on deploy/Dockerfile (it cannot be built here; tests/deploy.rs adds
#      its own structural checks) and shellcheck on this script.
#
# Installs what it needs, pinned: the Python tools into a virtualenv kept in the user's
# cache (reused across clones, rebuilt when deploy/validate/requirements.txt changes),
# and systemd from Debian when systemd-analyze is missing.
#
# Env: SEALGATE_BIN   the sealgate binary for check-config (default: cargo build's
#                     debug binary, built if missing; tests/deploy.rs passes its own).
#      SEALGATE_DEPLOY_VENV   where the virtualenv lives.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
started=$SECONDS
say() { printf '== validate-deploy [%3ds] %s\n' $((SECONDS - started)) "$*"; }

# Kubernetes 1.33 is the oldest release the manifests target: native sidecars
# (restartPolicy: Always on init containers) are GA there.
K8S_VERSION=1.33.0
# Largest accepted `systemd-analyze security` exposure, in tenths (the unit scores 1.1).
MAX_EXPOSURE=15

REQS=deploy/validate/requirements.txt
REQS_HASH=$(sha256sum "$REQS" | cut -c1-12)
VENV=${SEALGATE_DEPLOY_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sealgate/deploy-venv-$REQS_HASH}
PY=${PYTHON:-python3}

# --- install ---------------------------------------------------------------------
mkdir -p "$(dirname "$VENV")"
# Two test runs at once must not build the same virtualenv concurrently: installing
# holds the lock exclusively, using it holds it shared until this script exits.
exec 9>"$VENV.lock"
flock -x 9
if [ ! -f "$VENV/.complete" ]; then
  say "installing $(grep -c '==' "$REQS") pinned Python packages into $VENV"
  rm -rf "$VENV"
  # Debian's own python3 ships venv separately.
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    say "apt-get install python3-venv"
    rm -rf "$VENV"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$REQS"
  touch "$VENV/.complete"
  # Virtualenvs of earlier requirements files, unless a run is using one right now.
  for old in "$(dirname "$VENV")"/deploy-venv-*; do
    [ -d "$old" ] && [ "$old" != "$VENV" ] || continue
    if (exec 8>"$old.lock" && flock -n -x 8); then rm -rf "$old" "$old.lock"; fi
  done
fi
flock -s 9

if ! command -v systemd-analyze >/dev/null; then
  say "apt-get install systemd (for systemd-analyze)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

BIN=${SEALGATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/sealgate}
if [ ! -x "$BIN" ]; then
  say "building $BIN"
  cargo build -q --bin sealgate
fi
BIN=$(realpath "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-deploy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- 1. Kubernetes manifests -------------------------------------------------------
# Files without a schema in kubernetes-validate's bundle; checks.py covers them.
no_schema=(deploy/kubernetes/gateway/servicemonitor.yaml deploy/kubernetes/gateway/kustomization.yaml)
manifests=()
while IFS= read -r f; do
  skip=0
  for s in "${no_schema[@]}"; do [ "$f" = "$s" ] && skip=1; done
  [ "$skip" = 1 ] || manifests+=("$f")
done < <(find deploy/kubernetes -name '*.yaml' | sort)
say "kubernetes-validate --strict -k $K8S_VERSION on ${#manifests[@]} files"
# A warning (e.g. an unknown apiVersion, which has no schema) fails too: it would
# otherwise pass a typo in apiVersion or kind without checking anything.
if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}" >"$WORK/kv.out" 2>&1 \
  || [ -s "$WORK/kv.out" ]; then
  cat "$WORK/kv.out"
  echo "validate-deploy: kubernetes-validate failed" >&2
  exit 1
fi

# --- 2. systemd unit ---------------------------------------------------------------
# systemd-analyze verify checks that ExecStart names an executable file. Rather than
# install anything under /usr/local, the unit is verified inside a temporary --root
# holding a byte-identical copy of the unit, the host's own unit files (for
# sysinit.target and friends) and an executable stub at /usr/local/bin/sealgate; only
# the stub's existence and mode matter to verify. systemd 252 reports bad directives as
# warnings with exit status 0, so any output counts as failure.
SYSROOT=$WORK/root
mkdir -p "$SYSROOT/etc/systemd/system" "$SYSROOT/usr/lib/systemd" "$SYSROOT/usr/local/bin"
for d in /usr/lib/systemd/system /lib/systemd/system; do
  if [ -d "$d" ]; then cp -r "$d" "$SYSROOT/usr/lib/systemd/"; break; fi
done
printf '#!/bin/sh\nexit 0\n' >"$SYSROOT/usr/local/bin/sealgate"
chmod 0755 "$SYSROOT/usr/local/bin/sealgate"
cp deploy/systemd/sealgate.service "$SYSROOT/etc/systemd/system/sealgate.service"
say "systemd-analyze verify deploy/systemd/sealgate.service"
if ! systemd-analyze verify --root="$SYSROOT" sealgate.service >"$WORK/verify.out" 2>&1 \
  || [ -s "$WORK/verify.out" ]; then
  cat "$WORK/verify.out"
  echo "validate-deploy: systemd-analyze verify failed" >&2
  exit 1
fi
systemd-analyze security --offline=yes --root="$SYSROOT" sealgate.service >"$WORK/security.out" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for sealgate.service: \([0-9.]*\).*/\1/p' "$WORK/security.out")
say "systemd-analyze security: exposure ${exposure:-unknown} (limit $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)))"
if ! systemd-analyze security --offline=yes --root="$SYSROOT" --threshold="$MAX_EXPOSURE" sealgate.service >/dev/null 2>&1; then
  grep '✗' "$WORK/security.out" || cat "$WORK/security.out"
  echo "validate-deploy: the unit's exposure rose above the limit" >&2
  exit 1
fi

# --- 3. compose, cross-references, configurations -----------------------------------
say "checks.py: compose.yaml, cross-references, sealgate check-config"
"$VENV/bin/python" deploy/validate/checks.py --root "$ROOT" --sealgate "$BIN"

# --- 4. Dockerfile and this script ------------------------------------------------
say "hadolint deploy/Dockerfile; shellcheck scripts/validate-deploy.sh"
# Every finding fails, down to style; exceptions are inline pragmas with a reason.
"$VENV/bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile
"$VENV/bin/shellcheck" scripts/validate-deploy.sh

say "all deployment files valid"
