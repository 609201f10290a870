#!/usr/bin/env bash
# Installs what svcnet needs on a Debian machine (run as root): system packages and a virtualenv in .venv.
# Idempotent and quick when everything is already there.  Usage: scripts/install.sh [--test] [--bench]
# (--bench adds the anchors the benchmarks compare against: HAProxy, nginx, unbound, dnsperf, wrk.)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    *) echo "usage: scripts/install.sh [--test] [--bench]" >&2; exit 2 ;;
  esac
done

apt_packages=(iproute2 iptables nftables conntrack dnsutils curl sqlite3)
test_packages=(etcd-server)
bench_packages=(etcd-server haproxy nginx-light unbound dnsperf wrk)
pkgs=("${apt_packages[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_packages[@]}")
[ "$want_bench" = 1 ] && pkgs+=("${bench_packages[@]}")
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
# Debian's packages start system services (etcd on :2379, nginx on :80, …); the tests and benchmarks start their
# own instances where they need one, so the system ones are stopped.
if command -v systemctl >/dev/null; then
  for unit in etcd haproxy nginx unbound; do
    systemctl is-active -q "$unit" 2>/dev/null && { systemctl stop "$unit" || true; }
  done
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
{ [ "$want_test" = 1 ] || [ "$want_bench" = 1 ]; } && extra="[test]"
stamp=".venv/.installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install: python packages$extra"
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extra"
  touch "$stamp"
fi
