"""The userspace proxy with the real kubectl, node agent and controllers: the seed walkthrough through ClusterIPs
on loopback (round robin, ClientIP affinity, NodePort, deletion), failover with zero failed requests, UDP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SVCNET, Server, killpg, start_server, wait_for, write
from tests.e2e.nodes import Node, run_node

NODE = "proxy-node"
CLUSTER_IP = "127.97.97.97"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Loopback mode: ClusterIPs in 127.96.0.0/12, so the proxy binds them directly."""
    yield from start_server(tmp_path_factory, "--service-cluster-ip-range", "127.96.0.0/12")


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from run_node(server, tmp_path_factory.mktemp("node"), NODE, "127.244.30.0/24")


@pytest.fixture(scope="module")
def proxy(server: Server, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running `svcnet proxy`; yields its metrics address for `svcnet proxy show`."""
    metrics = f"127.0.0.1:{_free_port()}"
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SVCNET), "proxy", "--hostname-override", NODE, "--node-ip", "127.0.0.1",
                                 "--metrics-bind-address", metrics, "--healthz-bind-address",
                                 f"127.0.0.1:{_free_port()}"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "KUBECONFIG": str(server.kubeconfig)}, start_new_session=True)
    try:
        wait_for(lambda: _show(metrics, check=False).returncode == 0, 20, "the proxy answers")
        yield metrics
    finally:
        killpg(proc)


def _show(metrics: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SVCNET), "proxy", "show", "--metrics-bind-address", metrics], capture_output=True,
                          text=True, check=check)


def _get(ip: str, port: int = 80) -> str:
    connection = http.client.HTTPConnection(ip, port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode().strip()
    finally:
        connection.close()


SEED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pc-deployment}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx-pod}}
  template:
    metadata: {labels: {app: nginx-pod}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports: [{containerPort: 80}]
        readinessProbe:
          tcpSocket: {port: 80}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: service-clusterip}
spec:
  selector: {app: nginx-pod}
  clusterIP: CLUSTER_IP
  type: ClusterIP
  ports: [{port: 80, targetPort: 80}]
"""


def _pod_ips(server: Server, ns: str) -> list[str] | None:
    pods = json.loads(server.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    ready = [p["status"]["podIP"] for p in pods if not p["metadata"].get("deletionTimestamp") and
             any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
    return sorted(ready) if len(ready) == len(pods) else None


def _answers(count: int, ip: str = CLUSTER_IP, port: int = 80) -> list[str]:
    return [_get(ip, port) for _ in range(count)]


def _serving(server: Server, ns: str, count: int) -> list[str]:
    """Wait until `count` pods are ready and the ClusterIP spreads over all of them."""
    ips = wait_for(lambda: (ips := _pod_ips(server, ns)) and len(ips) == count and ips, 30, f"{count} ready pods")
    wait_for(lambda: set(_answers(count * 2)) == set(ips), 10, "the proxy uses every pod")
    return list(ips)


def test_seed_walkthrough(server: Server, proxy: str, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "seed.yaml", SEED.replace("CLUSTER_IP", CLUSTER_IP))))
    ips = _serving(server, ns, 3)
    answers = _answers(6)
    assert sorted(answers) == sorted(ips * 2), answers
    assert answers[:3] == answers[3:], f"round robin repeats its order: {answers}"
    server.kubectl("patch", "svc", "service-clusterip", "-n", ns, "-p", '{"spec":{"sessionAffinity":"ClientIP"}}')
    wait_for(lambda: "persistent 10800" in _show(proxy).stdout, 10, "affinity programmed")
    sticky = _answers(6)
    assert len(set(sticky)) == 1, sticky
    table = _show(proxy).stdout
    assert f"TCP  {CLUSTER_IP}:80 rr persistent 10800" in table, table
    for ip in ips:
        assert f"  -> {ip}:80" in table, table
    server.kubectl("create", "service", "nodeport", "service-nodeport", "--tcp=80:80", "--node-port=30002",
                   "-n", ns)
    server.kubectl("patch", "svc", "service-nodeport", "-n", ns, "-p",
                   '{"spec":{"selector":{"app":"nginx-pod","app.kubernetes.io/name":null}}}')
    assert wait_for(lambda: _get("127.0.0.1", 30002), 10, "the NodePort answers") in ips
    server.kubectl("delete", "svc", "service-clusterip", "service-nodeport", "-n", ns)
    wait_for(lambda: _refused(CLUSTER_IP, 80) and _refused("127.0.0.1", 30002), 10, "listeners closed")
    assert CLUSTER_IP not in _show(proxy).stdout


def _refused(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _server_pid(pod_ip: str) -> int:
    """The pid of the built-in HTTP server of the pod with this IP (found by its POD_IP variable)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"svcnet.node.builtin.servers" in cmdline and f"POD_IP={pod_ip}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no server process for {pod_ip}")


def test_no_failed_request_when_a_backend_dies_or_the_deployment_scales_down(server: Server, proxy: str, ns: str,
                                                                              tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "seed.yaml", SEED.replace(
        "CLUSTER_IP", "127.97.97.98").replace("service-clusterip", "failover"))))
    ips = _serving_at(server, ns, 3, "127.97.97.98")
    failures: list[str] = []
    for i in range(2000):
        if i == 500:  # the process, not the pod: the endpoint stays listed, connections to it are refused
            pid = _server_pid(ips[0])
            os.kill(pid, 9)
            wait_for(lambda pid=pid: not _alive(pid), 5, "the killed server gone")  # none in flight
        if i == 1200:
            server.kubectl("scale", "deploy/pc-deployment", "-n", ns, "--replicas=1")
        try:
            _get("127.97.97.98")
        except OSError as exc:
            failures.append(f"request {i}: {exc!r}")
    assert failures == [], failures[:5]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _serving_at(server: Server, ns: str, count: int, ip: str) -> list[str]:
    ips = wait_for(lambda: (found := _pod_ips(server, ns)) and len(found) == count and found, 30, "ready pods")
    wait_for(lambda: set(_answers(count * 2, ip)) == set(ips), 10, "the proxy uses every pod")
    return list(ips)


UDP = """
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers:
  - name: echo
    image: svcnet/udp-echo
    args: ["5353"]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 53, targetPort: 5353, protocol: UDP}]
"""


def test_udp_service(server: Server, proxy: str, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "udp.yaml", UDP)))
    ip = json.loads(server.kubectl("get", "svc", "echo", "-n", ns, "-o", "json").stdout)["spec"]["clusterIP"]

    def echoed() -> Any:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(b"ping", (ip, 53))
            return s.recvfrom(100)[0] == b"ping"

    wait_for(lambda: _pod_ips(server, ns), 20, "echo pod ready")
    assert wait_for(echoed, 15, "a UDP echo through the ClusterIP")


LOCAL_LB = """
apiVersion: v1
kind: Pod
metadata: {name: local-web, labels: {app: local-web}}
spec:
  containers:
  - {name: web, image: nginx, ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: local-web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: local-web}
  ports: [{port: 80}]
"""


def test_health_check_node_port_reports_local_endpoints(server: Server, proxy: str, ns: str,
                                                          tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "local.yaml", LOCAL_LB)))
    port = json.loads(server.kubectl("get", "svc", "local-web", "-n", ns, "-o", "json").stdout)["spec"][
        "healthCheckNodePort"]

    def check() -> tuple[int, dict[str, Any]] | None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        except OSError:
            return None
        finally:
            connection.close()

    status = wait_for(lambda: (r := check()) and r[0] == 200 and r, 20, "200 with a local endpoint")
    assert status[1] == {"service": {"namespace": ns, "name": "local-web"}, "localEndpoints": 1,
                         "serviceProxyHealthy": True}
    server.kubectl("delete", "pod", "local-web", "-n", ns)
    assert wait_for(lambda: (r := check()) and r[0] == 503 and r, 10, "503 without one")[1]["localEndpoints"] == 0
