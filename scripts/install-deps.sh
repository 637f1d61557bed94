#!/usr/bin/env bash
# Install the Debian packages uzswap needs to build and test. Does nothing
# when they are all present; needs root (or sudo) otherwise.
set -euo pipefail

pkgs=(build-essential cmake pkg-config liblz4-dev libzstd-dev liblzo2-dev
      libdeflate-dev spin clang python3 libhiredis-dev redis-server
      redis-tools libjemalloc2 sqlite3)	# sqlite3: tests/test_run_sqlite.sh

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
