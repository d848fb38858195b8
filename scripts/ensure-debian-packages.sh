#!/usr/bin/env bash
# Makes sure the programs the tests drive are installed.
# Usage: ensure-debian-packages.sh BINARY=PACKAGE ...
# As root, installs the missing packages (apt-get update once first);
# otherwise fails with a message naming them. Never skips.
set -euo pipefail
# Debian puts daemons (nats-server, rtpengine) in /usr/sbin, which a user PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
for pair in "$@"; do
  bin=${pair%%=*}
  pkg=${pair#*=}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "tandem tests need these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2
for pair in "$@"; do
  bin=${pair%%=*}
  command -v "$bin" >/dev/null 2>&1 || { echo "package ${pair#*=} installed but $bin is still missing" >&2; exit 1; }
done
