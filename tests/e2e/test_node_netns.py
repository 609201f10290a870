"""The netns runtime (root): pods in their own network namespaces with 10.244.x.y addresses behind a bridge in a
node namespace the agent creates; pods reach each other by IP; nothing is left behind. Everything happens inside
namespaces this test's agent creates — no address or route is added to the machine's root namespace."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, wait_for, write
from tests.e2e.nodes import Node, run_node

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="the netns runtime needs root and iproute2")
NODE = "netns-node"
SUFFIX = uuid.uuid4().hex[:6]
NODE_NETNS = f"svcnet-e2e-{SUFFIX}"


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    try:
        yield from run_node(server, tmp_path_factory.mktemp("netns"), NODE, "10.244.1.0/24",
                            "scheduler,endpoints,replicaset", "--runtime", "netns", "--node-netns", NODE_NETNS,
                            "--cluster-dns", "10.96.0.10")
    finally:
        subprocess.run(["ip", "netns", "del", NODE_NETNS], capture_output=True)
    assert NODE_NETNS not in _netns(), "the agent removes the node namespace it created"


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


PODS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80, hostPort: 8080}]
"""


def _ready_pods(server: Server, ns: str) -> list[dict[str, Any]] | None:
    pods = json.loads(server.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p.get("status", {}).get("conditions", []))]
    return ready if len(ready) == 2 == len(pods) else None


def test_pods_get_their_own_namespaces_and_reach_each_other(server: Server, node: Node, ns: str,
                                                            tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "web.yaml", PODS)))
    pods = wait_for(lambda: _ready_pods(server, ns), 30, "2 ready pods")
    ips = [p["status"]["podIP"] for p in pods]
    assert all(ip.startswith("10.244.1.") for ip in ips) and len(set(ips)) == 2, ips
    a, b = (p["metadata"]["name"] for p in pods)
    inside = server.kubectl("exec", a, "-n", ns, "--", "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert f"{ips[0]}/24" in inside, inside
    resolv = server.kubectl("exec", a, "-n", ns, "--", "cat", "/etc/resolv.conf").stdout.splitlines()
    assert resolv == ["nameserver 10.96.0.10", f"search {ns}.svc.cluster.local svc.cluster.local cluster.local",
                      "options ndots:5"], resolv
    hosts = server.kubectl("exec", a, "-n", ns, "--", "cat", "/etc/hosts").stdout
    assert f"{ips[0]}\t{a}" in hosts, hosts
    answer = wait_for(lambda: server.kubectl("exec", a, "-n", ns, "--", "curl", "-s", "-m", "2",
                                             f"http://{ips[1]}/", check=False).stdout, 10, f"{b} answers {a}")
    assert answer.strip() == ips[1]
    via_node = server.kubectl("exec", a, "-n", ns, "--", "curl", "-s", "-m", "2", "http://10.244.1.1:8080/").stdout
    assert via_node.strip() in ips, "hostPort: the node's address forwards to a pod"
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "10.244." not in routes, "nothing is routed in the root namespace"
    pod_namespaces = [line.split()[0] for line in _netns().splitlines() if line.startswith("svcnet-pod-")]
    assert len(pod_namespaces) >= 2
    server.kubectl("delete", "rs", "web", "-n", ns)
    server.kubectl("delete", "pods", "--all", "-n", ns)

    def no_pods() -> bool:  # a replacement the ReplicaSet made just before it went is deleted too
        if server.kubectl("get", "pods", "-n", ns, "-o", "name").stdout.strip():
            server.kubectl("delete", "pods", "--all", "-n", ns, "--wait=false")
            return False
        return True

    wait_for(no_pods, 30, "no pods left")
    wait_for(lambda: not any(n in _netns() for n in pod_namespaces), 20, "pod namespaces removed")
    links = wait_for(lambda: (out := subprocess.run(["ip", "-n", NODE_NETNS, "-o", "link"], capture_output=True,
                                                    text=True).stdout) and "veth" not in out and out, 20,
                     "no veth left in the node")
    assert "svcnet0" in links
    rules = subprocess.run(["ip", "netns", "exec", NODE_NETNS, "iptables-save", "-t", "nat"], capture_output=True,
                           text=True).stdout
    assert "--to-destination" not in rules, "the hostPort rules go with the pods"


@pytest.fixture(scope="module")
def proxy(server: Server, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`svcnet proxy --netns`: listeners inside the node namespace, REDIRECT portals for the service addresses."""
    from tests.e2e.conftest import SVCNET, killpg

    def free() -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SVCNET), "proxy", "--netns", NODE_NETNS, "--hostname-override", NODE,
                                 "--metrics-bind-address", f"127.0.0.1:{free()}",
                                 "--healthz-bind-address", f"127.0.0.1:{free()}"], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "KUBECONFIG": str(server.kubeconfig)},
                                start_new_session=True)
    try:
        yield
    finally:
        killpg(proc)
    rules = subprocess.run(["ip", "netns", "exec", NODE_NETNS, "iptables-save", "-t", "nat"], capture_output=True,
                           text=True).stdout
    assert "SVCNET-PORTALS" not in rules, "the proxy removes its portals when it stops"


SERVICE = PODS.replace("name: web", "name: web2").replace("app: web", "app: web2").replace(
    "        ports: [{containerPort: 80, hostPort: 8080}]\n", "") + """---
apiVersion: v1
kind: Service
metadata: {name: web2}
spec:
  type: NodePort
  selector: {app: web2}
  ports: [{port: 80}]
"""


def test_userspace_proxy_in_the_node_namespace(server: Server, node: Node, proxy: None, ns: str,
                                               tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "web2.yaml", SERVICE)))
    pods = wait_for(lambda: _ready_pods(server, ns), 30, "2 ready pods")
    ips = sorted(p["status"]["podIP"] for p in pods)
    svc = json.loads(server.kubectl("get", "svc", "web2", "-n", ns, "-o", "json").stdout)["spec"]
    cluster_ip, node_port = svc["clusterIP"], svc["ports"][0]["nodePort"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/12"), cluster_ip
    client = pods[0]["metadata"]["name"]

    def curl(url: str) -> str:
        return server.kubectl("exec", client, "-n", ns, "--", "curl", "-s", "-m", "2", url, check=False).stdout.strip()

    wait_for(lambda: curl(f"http://{cluster_ip}/") in ips, 15, "the ClusterIP answers from a pod")
    answers = [curl(f"http://{cluster_ip}/") for _ in range(4)]
    assert sorted(answers) == sorted(ips * 2), answers
    assert curl(f"http://10.244.1.1:{node_port}/") in ips, "the NodePort on the node's address"
    server.kubectl("delete", "svc", "web2", "-n", ns)
    wait_for(lambda: curl(f"http://{cluster_ip}/") == "", 10, "the ClusterIP stops answering")
