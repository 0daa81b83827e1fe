#!/usr/bin/env bash
# Installs what benches/e2e.sh needs beyond the test dependencies, idempotently and
# pinned: nginx (the plain streaming reverse proxy the benchmark compares against) from
# Debian bookworm at the version below. s3s-fs (the standalone embedded backend) is
# installed by scripts/backends/s3s-fs.sh itself, Ceph RGW by install-test-deps.sh.
# A second run on a ready machine does nothing and takes well under a second.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# nginx 1.22.1 as Debian 12 (bookworm) packages it (source revision 1.22.1-9). The
# mirror keeps only the newest security revision (+deb12uN) of a package and drops the
# one before, so an exact +deb12uN pin breaks the day the next advisory lands: the pin
# is the upstream release and Debian revision, and the newest +deb12uN of it is taken.
# Bump together with docs/PERFORMANCE.md.
NGINX_RELEASE=1.22.1-9

is_pinned() { [[ $1 == "$NGINX_RELEASE" || $1 == "$NGINX_RELEASE+deb12u"* ]]; }

installed=$(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null || true)
[ -n "$installed" ] || installed=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
if [ -n "$installed" ] && is_pinned "$installed" && command -v nginx >/dev/null; then
  echo "install-bench-deps: nginx $installed already installed"
  exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
version=
while read -r candidate; do
  if is_pinned "$candidate"; then
    version=$candidate
    break
  fi
done < <(apt-cache madison nginx | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -rV)
if [ -z "$version" ]; then
  echo "install-bench-deps: no nginx $NGINX_RELEASE in the package lists" >&2
  apt-cache madison nginx >&2 || true
  exit 1
fi
echo "install-bench-deps: apt-get install nginx=$version"
# The package's own service is never started: the benchmark runs nginx in the
# foreground with its own configuration on a loopback port.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confold \
  "nginx=$version" "nginx-common=$version" >/dev/null
# Debian's postinst starts the default site on port 80; it is not used.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
nginx -v
