#!/usr/bin/env bash
# Installs what svcnet needs on a Debian machine (run as root): system packages and a virtualenv in .venv.
# Idempotent and quick when everything is already there.  Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_packages=(iproute2 iptables nftables conntrack dnsutils curl sqlite3)
test_packages=(etcd-server)
pkgs=("${apt_packages[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_packages[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's etcd-server starts a system etcd on :2379; svcnet starts its own etcd where it needs one.
if [ "$want_test" = 1 ] && command -v systemctl >/dev/null && systemctl is-active -q etcd 2>/dev/null; then
  systemctl stop etcd || true
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
[ "$want_test" = 1 ] && extra="[test]"
stamp=".venv/.installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install: python packages$extra"
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extra"
  touch "$stamp"
fi
