"""`svcnet up --netns --nodes 3 --proxy-mode ipvs` on a kernel with IPVS -- meant to run inside the VM of
`scripts/ipvs-vm.sh` (`tests/e2e/test_ipvs_vm.py` starts it), skipped anywhere without IPVS.

The scenarios are tests/e2e/test_up_netns.py's own functions, imported and run here against an ipvs-mode
cluster (this module's `cluster` fixture): ClusterIP from a pod on node 1 to pods on all three nodes (the
client pod reaching itself among them: hairpin), a node reaching the ClusterIP, NodePort on every node's
address from the client namespace, cluster DNS and a headless Service, an even spread over 3,000 connections,
ClientIP affinity, UDP from a fixed source port after its only backend pod is replaced, and a clean stop.
Around them, what only the ipvs mode has: `up` did not fall back, every node's IPVS table holds the virtual
servers with the pods as masqueraded real servers, kube-ipvs0 holds the service addresses, a pod failing its
readiness probe leaves the table (and the traffic) and comes back, a LoadBalancer address answers the client
namespace, affinity is `persistent 10800`, deleted Services take their virtual servers, addresses and set
members with them, and the machine's own namespace never gets an IPVS entry.

Under qemu without KVM everything runs 20-40x slower than on this machine, so: the deadlines are stretched
(`VmNetnsUp`, `SLOWDOWN`), the kernel's table is polled rather than kubectl (seconds a call there), and `stamp`
lines say where the time went. One cluster for the module, as in test_up_netns.py: the tests run in the order listed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import test_up_netns as netns
from tests.e2e.conftest import KUBECTL, wait_for, write

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/proc/net/ip_vs").exists() or not KUBECTL.exists()
    or shutil.which("ipvsadm") is None,
    reason="needs root, a kernel with IPVS, kubectl and ipvsadm (run it with scripts/ipvs-vm.sh)")

NODES = {"node-1": "172.18.0.11", "node-2": "172.18.0.12", "node-3": "172.18.0.13"}
SLOWDOWN = 3  # the imported scenarios' deadlines x3
STARTED = time.monotonic()

# made right after `up` is ready (no pods: the walkthrough's 3 must land one a node): a LoadBalancer Service
EXTRA = """
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: dev}
spec:
  type: LoadBalancer
  selector: {app: nginx-pod}
  ports: [{port: 8080, targetPort: 80}]
"""

# 2 pods whose readiness the test switches with the file their probe reads (the demo's step 8)
PROBED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: probed, namespace: dev}
spec:
  replicas: 2
  selector: {matchLabels: {app: probed}}
  template:
    metadata: {labels: {app: probed}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-2}
      initContainers:
      - {name: mark-ready, image: busybox:1.30, command: [touch, /tmp/ready]}
      containers:
      - name: web
        image: nginx:1.17.1
        readinessProbe: {exec: {command: [cat, /tmp/ready]}, periodSeconds: 2, timeoutSeconds: 10}
---
apiVersion: v1
kind: Service
metadata: {name: probed, namespace: dev}
spec:
  selector: {app: probed}
  clusterIP: 10.97.97.100
  ports: [{port: 80, targetPort: 80}]
"""


def stamp(what: str) -> None:
    """A progress line (shown with a failure's captured output): where a slow VM spent its time."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {what}", flush=True)


class VmNetnsUp(netns.NetnsUp):
    """Deadlines for TCG, and an `exec` that enters the node's namespace with `ip netns exec` -- what `svcnet exec`
    execs after reading up.json: under TCG the svcnet CLI's imports alone take 10-13 s a call."""

    READY_TIMEOUT, KUBECTL_TIMEOUT, STOP_TIMEOUT = 240.0, 240.0, 180.0
    CURL_TIMEOUT = 20  # a CI run once saw one of 6 curls miss 2 s there

    def run(self, node: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        state = json.loads((self.data_dir / "up.json").read_text())
        namespace = state["nodes"].get(node) or (state["client_netns"] if node == "client" else "")
        assert namespace, f"no node {node!r} in {state}"
        return subprocess.run(["ip", "netns", "exec", namespace, *cmd], capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmNetnsUp]:
    data = tmp_path_factory.mktemp("upnetns")
    with pytest.MonkeyPatch.context() as patch:  # the imported scenarios wait with test_up_netns.wait_for
        patch.setattr(netns, "wait_for", lambda condition, timeout, what, interval=0.02: wait_for(
            condition, timeout * SLOWDOWN, what, interval))
        up = VmNetnsUp(data / "data", "ipvs")
        try:
            stamp("svcnet up is ready")
            up.kubectl("apply", "-f", str(write(data, "extra.yaml", EXTRA)))
            yield up
        finally:
            up.stop()


@pytest.fixture(autouse=True)
def _stamps(request: pytest.FixtureRequest) -> Iterator[None]:
    stamp(f"{request.node.name} starts")
    yield
    stamp(f"{request.node.name} ends")


# --- reading the kernel's state ---------------------------------------------------------------------------


def virtual_servers(table: str) -> dict[str, tuple[str, list[tuple[str, str, int]]]]:
    """`ipvsadm -Ln` text -> {"TCP 10.97.97.97:80": (flags, [(real server, forward, weight), ...])}, where flags
    is the rest of the service line ("rr", "rr persistent 10800")."""
    found: dict[str, tuple[str, list[tuple[str, str, int]]]] = {}
    current = ""
    for line in table.splitlines():
        parts = line.split()
        if parts and parts[0] in ("TCP", "UDP", "SCTP"):
            current = f"{parts[0]} {parts[1]}"
            found[current] = (" ".join(parts[2:]), [])
        elif current and parts[:1] == ["->"] and parts[1] != "RemoteAddress:Port":
            found[current][1].append((parts[1], parts[2], int(parts[3])))
    return found


def table(cluster: netns.NetnsUp, node: str) -> dict[str, tuple[str, list[tuple[str, str, int]]]]:
    return virtual_servers(cluster.exec(node, "ipvsadm", "-Ln"))


def real_servers(cluster: netns.NetnsUp, node: str, service: str) -> dict[str, int] | None:
    """address:port -> weight of one virtual server on one node (None: no such virtual server)."""
    found = table(cluster, node).get(service)
    return {address: weight for address, _, weight in found[1]} if found else None


def pod_ips(cluster: netns.NetnsUp, app: str) -> dict[str, str]:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "dev", "-l", f"app={app}", "-o", "json"))["items"]
    return {p["metadata"]["name"]: p["status"].get("podIP", "") for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def bound(cluster: netns.NetnsUp, node: str) -> str:
    return cluster.exec(node, "ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0")


# --- the walkthrough, then what it leaves in the kernel ------------------------------------------------------

test_the_walkthrough_across_three_node_namespaces = netns.test_the_walkthrough_across_three_node_namespaces


def test_up_runs_the_ipvs_mode_without_falling_back(cluster: netns.NetnsUp) -> None:
    said = "\n".join(cluster.output.lines)
    assert "ipvs mode: the kernel has IPVS" in said and "falling back" not in said, said
    for node in NODES:
        rules = cluster.exec(node, "iptables-save")
        assert "KUBE-SVC-" not in rules and "KUBE-IPVS-FILTER" in rules, f"{node}: {rules}"


def test_every_node_holds_the_virtual_servers(cluster: netns.NetnsUp) -> None:
    endpoints = {f"{ip}:80" for ip in pod_ips(cluster, "nginx-pod").values()}
    assert len(endpoints) == 3, endpoints
    for node, node_ip in NODES.items():
        servers = table(cluster, node)
        for service in ("TCP 10.97.97.97:80", f"TCP {node_ip}:30002"):
            flags, dests = servers[service]
            assert flags == "rr" and sorted(dests) == sorted((e, "Masq", 1) for e in endpoints), (node, servers)
        assert "UDP 10.96.0.10:53" in servers and "TCP 10.96.0.10:53" in servers, (node, servers)
        others = set(NODES.values()) - {node_ip}
        assert not [s for s in servers if s.split()[1].split(":")[0] in others], f"another node's NodePort: {servers}"
        addresses = bound(cluster, node)
        assert "10.97.97.97/32" in addresses and "10.96.0.10/32" in addresses and node_ip not in addresses, addresses
        members = cluster.exec(node, "ipset", "list", "KUBE-CLUSTER-IP")
        assert "10.97.97.97,tcp:80" in members and "10.96.0.10,udp:53" in members, members
        assert "30002" in cluster.exec(node, "ipset", "list", "KUBE-NODE-PORT-TCP")
        for setting in ("net.ipv4.vs.conntrack", "net.ipv4.vs.expire_nodest_conn"):
            assert cluster.exec(node, "sysctl", "-n", setting) == "1", (node, setting)


def test_a_pod_failing_readiness_leaves_the_virtual_server_and_comes_back(cluster: netns.NetnsUp,
                                                                          tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", str(write(tmp_path, "probed.yaml", PROBED)))
    service = "TCP 10.97.97.100:80"
    dests = wait_for(lambda: (found := real_servers(cluster, "node-1", service)) and len(found) == 2 and found,
                     180, "2 probed pods as real servers on node-1")
    assert set(dests.values()) == {1}, dests
    stamp("both probed pods are real servers")
    pods = {ip: name for name, ip in pod_ips(cluster, "probed").items()}
    assert {f"{ip}:80" for ip in pods} == set(dests), (pods, dests)
    (gone_ip, gone), (kept_ip, _) = sorted(pods.items())

    def answers() -> set[str]:  # rr: 4 connections reach both real servers of weight 1
        return {cluster.curl("node-1", "http://10.97.97.100/") for _ in range(4)}

    assert answers() == {gone_ip, kept_ip}
    cluster.kubectl("exec", gone, "-n", "dev", "--", "rm", "/tmp/ready")
    # it leaves: deleted when it has no connections, else kept at weight 0 until they end (graceful termination)
    wait_for(lambda: real_servers(cluster, "node-1", service) in (
        {f"{kept_ip}:80": 1}, {f"{kept_ip}:80": 1, f"{gone_ip}:80": 0}), 60, f"{gone_ip} out of the table")
    stamp(f"{gone_ip} left the virtual server")
    assert answers() == {kept_ip}
    cluster.kubectl("exec", gone, "-n", "dev", "--", "touch", "/tmp/ready")
    wait_for(lambda: real_servers(cluster, "node-1", service) == {f"{kept_ip}:80": 1, f"{gone_ip}:80": 1}, 60,
             f"{gone_ip} back at weight 1")
    stamp(f"{gone_ip} is back")
    assert answers() == {gone_ip, kept_ip}
    cluster.kubectl("delete", "-f", str(tmp_path / "probed.yaml"), "--wait=false")  # its probes cost CPU here


def test_a_load_balancer_address_from_the_client(cluster: netns.NetnsUp) -> None:
    """The client namespace routes the pool to every node (ECMP); whichever node gets the flow answers through
    IPVS and masquerades it (KUBE-LOAD-BALANCER), so a pod on another node replies through that node."""
    def address() -> str | None:
        found = [s.split()[1] for s in table(cluster, "node-1") if s.startswith("TCP 172.18.1.")]
        return found[0].removesuffix(":8080") if found and found[0].endswith(":8080") else None

    lb = wait_for(address, 60, "a virtual server on a LoadBalancer address")
    endpoints = {address for address, _, _ in table(cluster, "node-1")["TCP 10.97.97.97:80"][1]}
    assert len(endpoints) == 3, endpoints
    for node in NODES:
        assert {a for a, _, _ in table(cluster, node)[f"TCP {lb}:8080"][1]} == endpoints, node
        assert f"{lb}/32" in bound(cluster, node)
        assert f"{lb},tcp:8080" in cluster.exec(node, "ipset", "list", "KUBE-LOAD-BALANCER")
    answers = {cluster.curl("client", f"http://{lb}:8080/") for _ in range(6)}
    assert {f"{a}:80" for a in answers} == endpoints, answers  # rr: 6 connections reach all 3 pods


# --- spread, affinity and UDP, then what they leave in the kernel ---------------------------------------------

test_distribution_affinity_and_udp_after_a_backend_is_replaced = (
    netns.test_distribution_affinity_and_udp_after_a_backend_is_replaced)


def test_affinity_is_persistence_and_deleted_services_leave_no_trace(cluster: netns.NetnsUp) -> None:
    for node in NODES:
        flags, dests = table(cluster, node)["TCP 10.97.97.98:80"]
        assert flags == "rr persistent 10800" and len(dests) == 3, (node, flags, dests)
    echo = pod_ips(cluster, "echo")
    assert len(echo) == 1, echo
    assert real_servers(cluster, "node-1", "UDP 10.97.97.99:53") == {f"{ip}:5353": 1 for ip in echo.values()}
    lb = next(s.split()[1].split(":")[0] for s in table(cluster, "node-1") if s.startswith("TCP 172.18.1."))
    deleted = {"TCP 10.97.97.97:80", "TCP 10.97.97.98:80", "UDP 10.97.97.99:53", f"TCP {lb}:8080"}
    cluster.kubectl("delete", "svc", "service-clusterip", "spread", "echo", "front", "-n", "dev")
    left: dict[str, set[str]] = {}

    def gone_everywhere() -> bool:
        left.update({node: deleted & set(table(cluster, node)) for node in NODES})
        return not any(left.values())

    try:
        wait_for(gone_everywhere, 60, "the deleted services' virtual servers gone from every node")
    finally:
        stamp(f"virtual servers of deleted services left: {left}")
    for node in NODES:
        addresses, members = bound(cluster, node), cluster.exec(node, "ipset", "list", "KUBE-CLUSTER-IP")
        for ip in ("10.97.97.97", "10.97.97.98", "10.97.97.99", lb):
            assert f"{ip}/32" not in addresses and f"{ip}," not in members, (node, addresses, members)
        assert lb not in cluster.exec(node, "ipset", "list", "KUBE-LOAD-BALANCER")
        assert "TCP 10.96.0.10:53" in table(cluster, node), "the other services stay"


# --- stop --------------------------------------------------------------------------------------------------

test_clean_stop_removes_every_namespace = netns.test_clean_stop_removes_every_namespace


def test_the_machines_own_namespace_never_had_ipvs_state() -> None:
    servers = virtual_servers(subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True,
                                             check=True).stdout)
    assert servers == {}, servers
    assert "kube-ipvs0" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "KUBE-" not in subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True).stdout
