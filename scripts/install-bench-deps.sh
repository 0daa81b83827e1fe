#!/usr/bin/env bash
# Installs what benches/e2e.sh needs beyond the test dependencies, idempotently and
# pinned: nginx (the plain streaming reverse proxy the benchmark compares against) from
# Debian bookworm at the version below. s3s-fs (the standalone embedded backend) is
# installed by scripts/backends/s3s-fs.sh itself, Ceph RGW by install-test-deps.sh.
# A second run on a ready machine does nothing and takes well under a second.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Debian 12 (bookworm) security update; bump together with docs/PERFORMANCE.md.
NGINX_VERSION=1.22.1-9+deb12u11

installed=$(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null || true)
[ -n "$installed" ] || installed=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
if [ "$installed" = "$NGINX_VERSION" ] && command -v nginx >/dev/null; then
  echo "install-bench-deps: nginx $NGINX_VERSION already installed"
  exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-bench-deps: apt-get install nginx=$NGINX_VERSION"
$SUDO apt-get update -qq
# The package's own service is never started: the benchmark runs nginx in the
# foreground with its own configuration on a loopback port.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confold \
  "nginx=$NGINX_VERSION" "nginx-common=$NGINX_VERSION" >/dev/null
# Debian's postinst starts the default site on port 80; it is not used.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
nginx -v
