#!/usr/bin/env bash
# Installs what svcnet needs on a Debian machine (run as root, e.g. with sudo): system packages, a virtualenv in
# .venv, and lets users who are not root listen on ports below 1024, so that any user can run `svcnet up` (its
# cluster DNS listens on port 53, Services and pods on ports like 80): net.ipv4.ip_unprivileged_port_start = 0 in
# /etc/sysctl.d/60-svcnet-unprivileged-ports.conf, as rootless Docker and Podman document (the file says how to
# undo it; --no-unprivileged-ports leaves the setting alone, and so does a value of 53 or less already set).
# Idempotent and quick when everything is already there.
# Usage: scripts/install.sh [--test] [--bench] [--no-unprivileged-ports]
# (--bench adds the anchors the benchmarks compare against: HAProxy, nginx, unbound, dnsperf, wrk.)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_bench=0
want_ports=1
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    --no-unprivileged-ports) want_ports=0 ;;
    *) echo "usage: scripts/install.sh [--test] [--bench] [--no-unprivileged-ports]" >&2; exit 2 ;;
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

# Ports below 1024 for users who are not root (`svcnet up` checks this too and says what to do when it is missing).
port_start=/proc/sys/net/ipv4/ip_unprivileged_port_start
sysctl_conf=/etc/sysctl.d/60-svcnet-unprivileged-ports.conf
if [ "$want_ports" = 1 ] && [ -r "$port_start" ] && [ "$(cat "$port_start")" -gt 53 ]; then
  mkdir -p "$(dirname "$sysctl_conf")"
  [ -f "$sysctl_conf" ] || printf '%s\n' \
    "# Written by svcnet's scripts/install.sh: users who are not root may listen on ports below 1024, so that" \
    "# \`svcnet up\` (cluster DNS on port 53, Services on ports like 80) runs as any user." \
    "# To undo: remove this file and run \`sysctl -w net.ipv4.ip_unprivileged_port_start=1024\`." \
    "net.ipv4.ip_unprivileged_port_start = 0" > "$sysctl_conf"
  if { command -v sysctl >/dev/null && sysctl -q -p "$sysctl_conf"; } 2>/dev/null \
      || sed -n 's/^net\.ipv4\.ip_unprivileged_port_start *= *//p' "$sysctl_conf" 2>/dev/null > "$port_start"; then
    echo "install: net.ipv4.ip_unprivileged_port_start = $(cat "$port_start") (from $sysctl_conf)"
  else
    echo "install: could not set net.ipv4.ip_unprivileged_port_start (read-only /proc/sys?): only root can run" \
         "svcnet up here" >&2
  fi
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

# --test: the ipvs mode is verified in a qemu VM booting Debian's kernel (this machine's may have no IPVS);
# scripts/ipvs-vm.sh installs qemu and the kernel package. Best effort: where it cannot, that test skips and says why.
if [ "$want_test" = 1 ] && [ ! -e /proc/net/ip_vs ]; then
  scripts/ipvs-vm.sh --check || echo "install: no IPVS VM here; tests/e2e/test_ipvs_vm.py will skip" >&2
fi
