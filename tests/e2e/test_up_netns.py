"""`svcnet up --netns --nodes 3` (root): nodes as network namespaces, pods spread over them with 10.244.N.x
addresses, a pod on one node reaching a Service whose pods run on all three, NodePorts on every node's address
from a client namespace outside the nodes, cluster DNS from inside a pod, and nothing left after a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KUBECTL, SVCNET, LineReader, wait_for, write
from tests.e2e.test_up import _free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="svcnet up --netns needs root")
OURS = ("svcnet-node-", "svcnet-pod-", "svcnet-fabric", "svcnet-client")


class NetnsUp:
    # deadlines in seconds; a subclass for a slower machine (tests/vm: qemu without KVM) raises them
    READY_TIMEOUT, KUBECTL_TIMEOUT, STOP_TIMEOUT = 90.0, 60.0, 60.0
    CURL_TIMEOUT = 2  # one curl's --max-time

    def __init__(self, data_dir: Path, proxy_mode: str) -> None:
        self.data_dir = data_dir
        self.proxy_mode = proxy_mode
        self.proc = subprocess.Popen([str(SVCNET), "up", "--netns", "--nodes", "3", "--data-dir", str(data_dir),
                                      "--port", str(_free_port()), "--proxy-mode", proxy_mode],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output = LineReader(self.proc.stdout)  # its lines so far: what `up` said about the proxy mode
        self.output.wait_line(lambda line: line.strip().startswith("ready in"), self.READY_TIMEOUT,
                              "svcnet up --netns ready")

    def kubectl(self, *args: str) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.data_dir / "kubeconfig"), "HOME": str(self.data_dir)}
        out = subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, env=env,
                             timeout=self.KUBECTL_TIMEOUT)
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout

    def stop(self) -> None:
        """SIGTERM (SIGKILL if it hangs), then remove whatever namespaces of ours are left."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for name in (n for n in listed if n.startswith(OURS)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def run(self, node: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SVCNET), "exec", node, "--data-dir", str(self.data_dir), "--", *cmd],
                              capture_output=True, text=True, timeout=30)

    def exec(self, node: str, *cmd: str) -> str:
        return self.run(node, *cmd).stdout.strip()

    def curl(self, node: str, url: str) -> str:
        """The body `url` answers from `node`'s namespace, or how curl failed (so an assertion shows it)."""
        done = self.run(node, "curl", "-sS", "-m", str(self.CURL_TIMEOUT), url)
        return done.stdout.strip() if done.returncode == 0 else f"curl exit {done.returncode}: {done.stderr.strip()}"


@pytest.fixture(scope="module", params=["userspace", "iptables", "nftables"])
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[NetnsUp]:
    up = NetnsUp(tmp_path_factory.mktemp("upnetns") / "data", request.param)
    try:
        yield up
    finally:
        up.stop()


SEED = """
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pc-deployment, namespace: dev}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx-pod}}
  template:
    metadata: {labels: {app: nginx-pod}}
    spec:
      containers:
      - {name: nginx, image: nginx:1.17.1, ports: [{containerPort: 80}], readinessProbe: {tcpSocket: {port: 80}}}
---
apiVersion: v1
kind: Service
metadata: {name: service-clusterip, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: 10.97.97.97
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: service-nodeport, namespace: dev}
spec:
  type: NodePort
  selector: {app: nginx-pod}
  ports: [{port: 80, targetPort: 80, nodePort: 30002}]
---
apiVersion: v1
kind: Service
metadata: {name: service-headliness, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: None
  ports: [{port: 80, targetPort: 80}]
"""


def _ready_pods(up: NetnsUp) -> list[dict[str, Any]] | None:
    pods = json.loads(up.kubectl("get", "pods", "-n", "dev", "-l", "app=nginx-pod", "-o", "json"))["items"]
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p.get("status", {}).get("conditions", []))]
    return ready if len(ready) == 3 == len(pods) else None


def test_the_walkthrough_across_three_node_namespaces(cluster: NetnsUp, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", str(write(tmp_path, "seed.yaml", SEED)))
    pods = wait_for(lambda: _ready_pods(cluster), 60, "3 ready pods")
    assert {p["spec"]["nodeName"] for p in pods} == {"node-1", "node-2", "node-3"}, "one pod per node"
    ips = sorted(p["status"]["podIP"] for p in pods)
    assert all(ip.startswith("10.244.") for ip in ips), ips
    client = next(p for p in pods if p["spec"]["nodeName"] == "node-1")["metadata"]["name"]

    def curl(url: str) -> str:
        return cluster.kubectl("exec", client, "-n", "dev", "--", "curl", "-s", "-m", str(cluster.CURL_TIMEOUT),
                               url).strip()

    wait_for(lambda: {curl("http://10.97.97.97/") for _ in range(6)} == set(ips), 20, "the ClusterIP spreads")
    if cluster.proxy_mode == "userspace":  # round robin; the kernel rules choose at random (checked above)
        answers = [curl("http://10.97.97.97/") for _ in range(6)]
        assert sorted(answers) == sorted(ips * 2), answers
    node_view = cluster.curl("node-2", "http://10.97.97.97/")
    assert node_view in ips, f"a node reaches the ClusterIP too: {node_view!r}"
    for node_ip in ("172.18.0.11", "172.18.0.12", "172.18.0.13"):
        assert (answer := cluster.curl("client", f"http://{node_ip}:30002/")) in ips, (node_ip, answer)
    resolv = cluster.kubectl("exec", client, "-n", "dev", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv and "search dev.svc.cluster.local svc.cluster.local" in resolv
    dug = cluster.kubectl("exec", client, "-n", "dev", "--", "dig", "+short", "+time=2",
                          "service-headliness.dev.svc.cluster.local")
    assert sorted(dug.split()) == ips
    assert "10.244." not in subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    if cluster.proxy_mode == "iptables":
        rules = cluster.exec("node-1", "iptables-save", "-t", "nat")
        assert "-d 10.97.97.97/32" in rules and "-m statistic --mode random --probability 0.333" in rules, rules
        cluster.kubectl("delete", "svc", "service-clusterip", "-n", "dev")
        wait_for(lambda: "10.97.97.97" not in cluster.exec("node-1", "iptables-save"), 10,
                 "every rule mentioning the deleted ClusterIP gone")
    if cluster.proxy_mode == "nftables":
        ruleset = cluster.exec("node-1", "nft", "list", "table", "ip", "svcnet")
        assert "10.97.97.97 . tcp . 80" in ruleset and "numgen random mod 3" in ruleset, ruleset
        local = {p["status"]["podIP"] for p in pods if p["spec"]["nodeName"] == "node-1"}
        assert all(f"dnat to {ip}:80" in ruleset for ip in ips), ruleset
        assert all((f"{ip} . {ip}" in ruleset) == (ip in local) for ip in ips), ruleset  # hairpin: node-1's pod
        cluster.kubectl("delete", "svc", "service-clusterip", "-n", "dev")
        wait_for(lambda: "10.97.97.97" not in cluster.exec("node-1", "nft", "list", "ruleset"), 10,
                 "every element mentioning the deleted ClusterIP gone")


SPREAD = """
apiVersion: v1
kind: Service
metadata: {name: spread, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: 10.97.97.98
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: echo, namespace: dev}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-3}
      containers: [{name: echo, image: svcnet/udp-echo, args: ["5353"]}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: dev}
spec:
  selector: {app: echo}
  clusterIP: 10.97.97.99
  ports: [{port: 53, targetPort: 5353, protocol: UDP}]
"""

# {n} HTTP GETs, a new connection each, counted by the body (the pod's IP); plain sockets, not urllib: a third
# of the client's CPU, which counts under qemu without KVM (tests/vm runs this too)
COUNT = """import collections, json, socket
def get():
    with socket.create_connection(("{ip}", 80), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: {ip}\\r\\n\\r\\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\\r\\n\\r\\n")
    assert head.split(b" ", 2)[1] == b"200", head
    return body.decode().strip()
print(json.dumps(collections.Counter(get() for _ in range({n}))))"""

UDP_PING = """import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40053))  # the same source port every time: the conntrack entry is reused
s.settimeout(2)
s.sendto(b"ping", ("10.97.97.99", 53))
print(s.recv(100).decode())"""


def test_distribution_affinity_and_udp_after_a_backend_is_replaced(cluster: NetnsUp, tmp_path: Path) -> None:
    """Over 3,000 connections each of 3 pods gets a third (±10 %); ClientIP affinity sticks; a UDP client that
    keeps its source port still gets answers after its only backend pod is replaced (stale conntrack cleaned)."""
    cluster.kubectl("apply", "-f", str(write(tmp_path, "spread.yaml", SPREAD)))
    pods = wait_for(lambda: _ready_pods(cluster), 60, "the seed's 3 pods")
    client = next(p for p in pods if p["spec"]["nodeName"] == "node-1")["metadata"]["name"]

    def run(code: str) -> str:
        return cluster.kubectl("exec", client, "-n", "dev", "--", sys.executable, "-c", code).strip()

    wait_for(lambda: len(json.loads(run(COUNT.format(ip="10.97.97.98", n=30)))) == 3, 20, "all 3 pods answer")
    counts = json.loads(run(COUNT.format(ip="10.97.97.98", n=3000)))
    assert len(counts) == 3 and all(900 <= c <= 1100 for c in counts.values()), counts
    cluster.kubectl("patch", "svc", "spread", "-n", "dev", "-p", '{"spec":{"sessionAffinity":"ClientIP"}}')
    wait_for(lambda: len(json.loads(run(COUNT.format(ip="10.97.97.98", n=20)))) == 1, 20, "affinity: one pod")

    def echo_pod() -> dict[str, Any] | None:
        found = json.loads(cluster.kubectl("get", "pods", "-n", "dev", "-l", "app=echo", "-o", "json"))["items"]
        ready = [p for p in found if not p["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
        return ready[0] if len(ready) == 1 == len(found) else None

    first = wait_for(echo_pod, 30, "the echo pod")
    assert wait_for(lambda: run(UDP_PING) == "ping", 20, "UDP through the ClusterIP")
    cluster.kubectl("delete", "pod", first["metadata"]["name"], "-n", "dev")
    second = wait_for(lambda: (p := echo_pod()) and p["metadata"]["uid"] != first["metadata"]["uid"] and p, 30,
                      "a replacement echo pod")
    assert second["status"]["podIP"] != first["status"]["podIP"]
    assert wait_for(lambda: run(UDP_PING) == "ping", 20, "UDP from the same source port reaches the new pod")


def test_clean_stop_removes_every_namespace(cluster: NetnsUp) -> None:
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(cluster.STOP_TIMEOUT) == 0
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [line for line in left.splitlines() if line.startswith(OURS)], left
    assert "svcnet" not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.lower()
