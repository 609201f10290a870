"""The ipvs proxier against a real IPVS kernel -- meant to run inside the VM of `scripts/ipvs-vm.sh` (Debian's
6.1 kernel under qemu; `tests/e2e/test_ipvs_vm.py` starts it), skipped anywhere without IPVS.

Topology (all namespaces made here, removed on the way out): a node namespace holding kube-ipvs0, the IPVS
table, the ipsets and the rules; two backend namespaces (10.244.1.10, 10.244.2.10) with an HTTP server that
answers its own name; a client namespace (10.0.1.2) outside the pod range, so its traffic to a ClusterIP is
masqueraded through KUBE-CLUSTER-IP. The proxier is driven with hand-built snapshots (no API server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcnet.proxy import model
from svcnet.proxy.ipvs.proxier import IpvsProxier

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/proc/net/ip_vs").exists(),
                                reason="needs root and a kernel with IPVS (run it with scripts/ipvs-vm.sh)")

WEB = model.ServicePortName("default", "web", "", "TCP")
STICKY = model.ServicePortName("default", "sticky", "", "TCP")
DNS = model.ServicePortName("default", "dns", "", "UDP")
WEB_IP, STICKY_IP, DNS_IP = "10.96.0.10", "10.96.0.11", "10.96.0.53"
BACKENDS = {"a": "10.244.1.10", "b": "10.244.2.10"}


@dataclass
class Lab:
    node: str
    client: str
    names: list[str]

    def run(self, netns: str, *args: str) -> str:
        return subprocess.run(["ip", "netns", "exec", netns, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def ipvsadm(self) -> str:
        return self.run(self.node, "ipvsadm", "-Ln")

    def fetch(self, address: str, count: int) -> list[str]:
        """`count` fresh HTTP connections from the client to address:80; the backends' names in order."""
        code = ("import sys, urllib.request\n"
                "print(' '.join(urllib.request.urlopen(f'http://{sys.argv[1]}/', timeout=5).read().decode()"
                " for _ in range(int(sys.argv[2]))))")
        return self.run(self.client, sys.executable, "-c", code, address, str(count)).split()


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _wait(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _link(lab: Lab, other: str, node_ip: str, other_ip: str) -> None:
    a, b = f"v{uuid.uuid4().hex[:8]}", f"v{uuid.uuid4().hex[:8]}"
    _sh("ip", "link", "add", a, "netns", lab.node, "type", "veth", "peer", "name", b, "netns", other)
    _sh("ip", "-n", lab.node, "addr", "add", f"{node_ip}/24", "dev", a)
    _sh("ip", "-n", lab.node, "link", "set", a, "up")
    _sh("ip", "-n", other, "addr", "add", f"{other_ip}/24", "dev", b)
    _sh("ip", "-n", other, "link", "set", b, "up")
    _sh("ip", "-n", other, "link", "set", "lo", "up")
    _sh("ip", "-n", other, "route", "add", "default", "via", node_ip)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = uuid.uuid4().hex[:6]
    lab = Lab(f"ipvs-node-{tag}", f"ipvs-cli-{tag}", [])
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for name in (lab.node, lab.client, *(f"ipvs-{b}-{tag}" for b in BACKENDS)):
            _sh("ip", "netns", "add", name)
            lab.names.append(name)
        _sh("ip", "-n", lab.node, "link", "set", "lo", "up")
        _sh("ip", "netns", "exec", lab.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # IPVS ones: the proxier
        _link(lab, lab.client, "10.0.1.1", "10.0.1.2")
        for i, (name, ip) in enumerate(BACKENDS.items(), start=1):
            _link(lab, f"ipvs-{name}-{tag}", f"10.244.{i}.1", ip)
            root = tmp_path / name
            root.mkdir()
            (root / "index.html").write_text(name)
            servers.append(subprocess.Popen(
                ["ip", "netns", "exec", f"ipvs-{name}-{tag}", sys.executable, "-m", "http.server", "80", "--bind",
                 ip, "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for i, ip in enumerate(BACKENDS.values(), start=1):
            _wait(lambda ip=ip, i=i: f"{ip}:80" in lab.run(f"ipvs-{list(BACKENDS)[i - 1]}-{tag}", "ss", "-ltn"),
                  f"the HTTP server on {ip}")
        yield lab
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        for name in lab.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _snapshot(web: tuple[str, ...], sticky: tuple[str, ...]) -> model.Snapshot:
    def ports(name: model.ServicePortName, ip: str, affinity: int | None) -> model.ServicePortInfo:
        return model.ServicePortInfo(name, (ip,), 80, "TCP", affinity_timeout=affinity)
    services = {WEB: ports(WEB, WEB_IP, None), STICKY: ports(STICKY, STICKY_IP, 10800)}
    endpoints = {WEB: tuple(model.EndpointInfo(BACKENDS[b], 80, "node") for b in web),
                 STICKY: tuple(model.EndpointInfo(BACKENDS[b], 80, "node") for b in sticky)}
    return model.Snapshot(services, {k: v for k, v in endpoints.items() if v})


def _dest_lines(table: str, vip: str) -> list[str]:
    """The `->` lines under virtual server vip:80 in `ipvsadm -Ln` output."""
    lines, inside = [], False
    for line in table.splitlines():
        if line.startswith(("TCP", "UDP")):
            inside = line.split()[1] == f"{vip}:80"
        elif inside and line.strip().startswith("->"):
            lines.append(line.split()[1:4])  # address:port, forward, weight
    return lines


async def test_ipvs_proxier_in_a_real_kernel(lab: Lab) -> None:
    proxier = IpvsProxier("node", ("10.0.1.1",), "10.244.0.0/16", lab.node, "rr")
    try:
        await proxier.sync(_snapshot(("a", "b"), ("a", "b")), full=True)
        table = lab.ipvsadm()
        print(table)
        assert f"TCP  {WEB_IP}:80 rr\n" in table and f"TCP  {STICKY_IP}:80 rr persistent 10800\n" in table, table
        assert sorted(_dest_lines(table, WEB_IP)) == [["10.244.1.10:80", "Masq", "1"], ["10.244.2.10:80", "Masq", "1"]]
        addresses = lab.run(lab.node, "ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0")
        assert f"{WEB_IP}/32" in addresses and f"{STICKY_IP}/32" in addresses, addresses
        members = lab.run(lab.node, "ipset", "list", "KUBE-CLUSTER-IP")
        assert f"{WEB_IP},tcp:80" in members and f"{STICKY_IP},tcp:80" in members, members
        for setting in ("conntrack", "expire_nodest_conn", "expire_quiescent_template"):  # 0 in a new namespace
            assert lab.run(lab.node, "sysctl", "-n", f"net.ipv4.vs.{setting}").strip() == "1", setting
        rules = lab.run(lab.node, "iptables-save")
        assert any("! -s 10.244.0.0/16" in line and "--match-set KUBE-CLUSTER-IP dst,dst" in line
                   and line.endswith("-j KUBE-MARK-MASQ") for line in rules.splitlines()), rules

        # rr: fresh connections alternate between the two real servers
        seen = lab.fetch(WEB_IP, 6)
        assert sorted(seen) == ["a", "a", "a", "b", "b", "b"] and all(x != y for x, y in zip(seen, seen[1:], strict=False)), seen
        # persistence: one client stays on one real server
        sticky = lab.fetch(STICKY_IP, 6)
        assert len(set(sticky)) == 1, sticky
        used, unused = sticky[0], ("b" if sticky[0] == "a" else "a")
        # the kernel's counters, as `svcnet proxy show` lists them
        listed = {(s.ip, b.ip): b.active + b.inactive for s in await proxier.refresh() for b in s.backends}
        assert listed[(WEB_IP, BACKENDS["a"])] > 0 and listed[(STICKY_IP, BACKENDS[used])] > 0, listed

        # an endpoint leaves: with connections (TIME_WAIT counts as InActConn) it drains at weight 0, without
        # any it goes at once
        await proxier.sync(_snapshot(("a",), ()), full=False)
        table = lab.ipvsadm()
        print(table)
        assert _dest_lines(table, WEB_IP) == [["10.244.1.10:80", "Masq", "1"], ["10.244.2.10:80", "Masq", "0"]], table
        assert _dest_lines(table, STICKY_IP) == [[f"{BACKENDS[used]}:80", "Masq", "0"]], table
        assert f"{BACKENDS[unused]}:80" not in "".join(" ".join(x) for x in _dest_lines(table, STICKY_IP))
        assert lab.fetch(WEB_IP, 4) == ["a"] * 4

        # the service goes: its virtual server, address and set member go with it
        snapshot = _snapshot(("a",), ())
        snapshot = model.Snapshot({STICKY: snapshot.services[STICKY]}, {})
        await proxier.sync(snapshot, full=False)
        table = lab.ipvsadm()
        assert WEB_IP not in table and STICKY_IP in table, table
        assert f"{WEB_IP}/32" not in lab.run(lab.node, "ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0")
        assert f"{WEB_IP},tcp:80" not in lab.run(lab.node, "ipset", "list", "KUBE-CLUSTER-IP")
    finally:
        await proxier.close()
    # stop: nothing left behind
    table = lab.ipvsadm()
    assert not [line for line in table.splitlines() if line.startswith(("TCP", "UDP")) or "Masq" in line], table
    assert "kube-ipvs0" not in lab.run(lab.node, "ip", "-o", "link")
    assert "KUBE-" not in lab.run(lab.node, "iptables-save")
    assert "KUBE-" not in lab.run(lab.node, "ipset", "list", "-n")


# a UDP server answering its own name, and a client asking from one fixed source port (so every question after
# the first rides the same conntrack entry, as a long-lived UDP client's do)
_UDP_NAME = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind((sys.argv[1], 53))\n"
             "while True:\n    _, peer = s.recvfrom(512)\n    s.sendto(sys.argv[2].encode(), peer)\n")
_UDP_ASK = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('10.0.1.2', 5353))\n"
            "s.settimeout(2)\ns.sendto(b'?', (sys.argv[1], 53))\nprint(s.recvfrom(512)[0].decode())\n")


def _dns_snapshot(*names: str) -> model.Snapshot:
    info = model.ServicePortInfo(DNS, (DNS_IP,), 53, "UDP")
    return model.Snapshot({DNS: info}, {DNS: tuple(model.EndpointInfo(BACKENDS[n], 53, "node") for n in names)})


async def test_a_udp_endpoint_that_leaves_takes_its_conntrack_entries(lab: Lab) -> None:
    """No UDP black hole in ipvs mode: once a UDP endpoint leaves, no conntrack entry sends the service address
    to it any more, so a client that keeps its source port is not stuck on the dead one. The iptables and
    nftables proxiers delete such entries themselves (kube-proxy's cleanup); here the real server is deleted at
    once (UDP does not drain) and IPVS drops its connections and their conntrack entries with it -- seen on the
    6.1 kernel, which is why the ipvs proxier runs no `conntrack -D`."""
    namespaces = dict(zip(BACKENDS, lab.names[2:], strict=True))
    servers = [subprocess.Popen(["ip", "netns", "exec", namespaces[n], sys.executable, "-c", _UDP_NAME, ip, n])
               for n, ip in BACKENDS.items()]
    proxier = IpvsProxier("node", ("10.0.1.1",), "10.244.0.0/16", lab.node, "rr")
    try:
        for n, ip in BACKENDS.items():
            _wait(lambda n=n, ip=ip: f"{ip}:53" in lab.run(namespaces[n], "ss", "-lun"), f"the UDP server on {ip}")
        await proxier.sync(_dns_snapshot("a", "b"), full=True)
        first = lab.run(lab.client, sys.executable, "-c", _UDP_ASK, DNS_IP).strip()
        assert first in BACKENDS, first

        def entries(backend: str) -> str:
            listed = subprocess.run(["ip", "netns", "exec", lab.node, "conntrack", "-L", "-p", "udp", "--orig-dst",
                                     DNS_IP, "--dst-nat", BACKENDS[backend]], capture_output=True, text=True)
            return listed.stdout

        assert "sport=5353" in entries(first), entries(first)  # IPVS keeps conntrack (vs.conntrack=1)
        other = "b" if first == "a" else "a"
        await proxier.sync(_dns_snapshot(other), full=False)
        assert entries(first) == "", entries(first)
        assert lab.run(lab.client, sys.executable, "-c", _UDP_ASK, DNS_IP).strip() == other
    finally:
        await proxier.close()
        for server in servers:
            server.terminate()
            server.wait(10)
