"""The node agent with the real kubectl: pods that really run (own 127.x addresses, answering HTTP), readiness
probes moving endpoints, restarts with backoff, environment variables, images, graceful deletion."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, table, wait_for, write
from tests.e2e.nodes import Node, run_node

NODE = "node-a"
POD_CIDR = "127.244.17.0/24"


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from run_node(server, tmp_path_factory.mktemp("node"), NODE, POD_CIDR)


def _pods(server: Server, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", ns, "-o", "json"] + (["-l", selector] if selector else [])
    return json.loads(server.kubectl(*args).stdout)["items"]


def _running_ready(server: Server, ns: str, count: int, selector: str = "") -> list[dict[str, Any]] | None:
    pods = [p for p in _pods(server, ns, selector) if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in pods if p.get("status", {}).get("phase") == "Running" and
             any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
    return ready if len(ready) == count == len(pods) else None


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


SEED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pc-deployment
spec:
  replicas: 3
  selector:
    matchLabels: {app: nginx-pod}
  template:
    metadata:
      labels: {app: nginx-pod}
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: service-clusterip
spec:
  selector: {app: nginx-pod}
  ports:
  - port: 80
    targetPort: 80
"""


def test_seed_pods_run_with_their_own_addresses(server: Server, node: Node, ns: str, tmp_path: Path) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "seed.yaml", SEED)))
    pods = wait_for(lambda: _running_ready(server, ns, 3), 30, "3 running, ready pods")
    ips = sorted(p["status"]["podIP"] for p in pods)
    assert len(set(ips)) == 3 and all(ip.startswith("127.244.17.") for ip in ips), ips
    header, rows = table(server.kubectl("get", "pods", "-n", ns, "-o", "wide", "--show-labels").stdout)
    assert header[:3] == ["NAME", "READY", "STATUS"] and "IP" in header and "NODE" in header, header
    for row in rows:
        cells = dict(zip(header, row, strict=False))
        assert cells["STATUS"] == "Running" and cells["READY"] == "1/1" and cells["NODE"] == NODE, cells
        assert cells["IP"] in ips and "app=nginx-pod" in cells["LABELS"], cells
    for ip in ips:  # no readiness probe: Ready as soon as started, so the server may still be starting
        assert wait_for(lambda ip=ip: _get(f"http://{ip}/"), 5, f"{ip} answers").strip() == ip, "answers its IP"
    endpoints = wait_for(lambda: _endpoint_ips(server, ns, "service-clusterip", 3), 10, "3 endpoints")
    assert sorted(endpoints) == ips
    _scale_roll_and_replace(server, ns)


def _scale_roll_and_replace(server: Server, ns: str) -> None:
    """Scaling 3 -> 5 -> 1, a rolling update during which the endpoints are never empty, a deleted pod replaced."""
    for replicas in (5, 1):
        server.kubectl("scale", "deploy/pc-deployment", "-n", ns, f"--replicas={replicas}")
        wait_for(lambda r=replicas: _running_ready(server, ns, r), 30, f"{replicas} ready pods")
        wait_for(lambda r=replicas: _endpoint_ips(server, ns, "service-clusterip", r), 10, f"{replicas} endpoints")
    server.kubectl("scale", "deploy/pc-deployment", "-n", ns, "--replicas=3")
    wait_for(lambda: _endpoint_ips(server, ns, "service-clusterip", 3), 30, "3 endpoints again")
    counts: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result = server.kubectl("get", "endpoints", "service-clusterip", "-n", ns, "-o", "json", check=False)
            if result.rc == 0:
                subsets = json.loads(result.stdout).get("subsets") or []
                counts.append(sum(len(s.get("addresses") or []) for s in subsets))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        server.kubectl("set", "image", "deploy/pc-deployment", "nginx=nginx:1.17.2", "-n", ns)
        server.kubectl("rollout", "status", "deploy/pc-deployment", "-n", ns, "--timeout=60s")
    finally:
        stop.set()
        sampler.join()
    assert counts and min(counts) > 0, f"the endpoints were empty during the rollout: {counts}"
    pods = wait_for(lambda: _running_ready(server, ns, 3), 30, "3 pods of the new template")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.17.2"}
    victim = pods[0]["metadata"]["name"]
    server.kubectl("delete", "pod", victim, "-n", ns)
    replaced = wait_for(lambda: _running_ready(server, ns, 3), 30, "a replacement pod")
    assert victim not in {p["metadata"]["name"] for p in replaced}


def _endpoint_ips(server: Server, ns: str, name: str, count: int, key: str = "addresses") -> list[str] | None:
    result = server.kubectl("get", "endpoints", name, "-n", ns, "-o", "json", check=False)
    if result.rc != 0:
        return None
    subsets = json.loads(result.stdout).get("subsets") or []
    ips = [a["ip"] for s in subsets for a in s.get(key) or []]
    return ips if len(ips) == count else None


def test_environment_has_pod_and_service_variables(server: Server, node: Node, ns: str, tmp_path: Path) -> None:
    server.kubectl("create", "service", "clusterip", "web-front", "--tcp=8080:80", "-n", ns)
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: envpod}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'env > $(OUT); exec sleep 1000']
    env:
    - {name: OUT, value: /tmp/env.txt}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
"""
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "env.yaml", manifest)))
    pod = wait_for(lambda: _running_ready(server, ns, 1), 20, "env pod running")[0]
    env_file = node.data_dir / "pods" / pod["metadata"]["uid"] / "tmp" / "env.txt"
    text = wait_for(lambda: env_file.exists() and env_file.read_text(), 10, "env dump written")
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    svc = json.loads(server.kubectl("get", "svc", "web-front", "-n", ns, "-o", "json").stdout)
    ip = svc["spec"]["clusterIP"]
    assert env["POD_IP"] == pod["status"]["podIP"] and env["POD_NAME"] == "envpod" and env["POD_NAMESPACE"] == ns
    assert env["HOSTNAME"] == "envpod" and env["MY_NODE"] == NODE
    assert env["WEB_FRONT_SERVICE_HOST"] == ip and env["WEB_FRONT_SERVICE_PORT"] == "8080"
    assert env["WEB_FRONT_PORT"] == f"tcp://{ip}:8080" and env["WEB_FRONT_PORT_8080_TCP_ADDR"] == ip
    assert "KUBERNETES_SERVICE_HOST" in env


def test_crashing_container_restarts_with_backoff(server: Server, node: Node, ns: str) -> None:
    server.kubectl("run", "crasher", "-n", ns, "--image=busybox", "--", "sh", "-c", "echo bye; exit 3")

    def restarted() -> dict[str, Any] | None:
        status = _pods(server, ns)[0].get("status", {})
        containers = status.get("containerStatuses") or [{}]
        return containers[0] if containers[0].get("restartCount", 0) >= 2 else None

    container = wait_for(restarted, 30, "two restarts")
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["lastState"]["terminated"]["reason"] == "Error"
    statuses = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "CrashLoopBackOff" not in statuses:
        statuses.add(table(server.kubectl("get", "pods", "-n", ns).stdout)[1][0][2])
    assert "CrashLoopBackOff" in statuses, statuses


def test_unmapped_image_waits_with_a_clear_reason(server: Server, node: Node, ns: str) -> None:
    server.kubectl("run", "db", "-n", ns, "--image=mysql:8")

    def waiting() -> dict[str, Any] | None:
        statuses = _pods(server, ns)[0].get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting") if statuses[0].get("state", {}).get("waiting", {}).get(
            "reason") == "ErrImagePull" else None

    state = wait_for(waiting, 20, "ErrImagePull")
    assert "image catalog" in state["message"] and "mysql" in state["message"]


def test_failing_liveness_probe_restarts_the_container(server: Server, node: Node, ns: str, tmp_path: Path) -> None:
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'touch /tmp/alive; exec sleep 1000']
    livenessProbe:
      exec: {command: [sh, -c, 'test -f /tmp/alive && rm /tmp/alive']}
      periodSeconds: 1
      failureThreshold: 1
"""
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "live.yaml", manifest)))
    # the probe removes the file on its first success: the second run fails and the container restarts

    def restarted() -> bool:
        statuses = _pods(server, ns)[0].get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount", 0) >= 1

    wait_for(restarted, 20, "a liveness restart")
    events = server.kubectl("get", "events", "-n", ns).stdout
    assert "failed liveness probe, will be restarted" in events and "Liveness probe failed" in events, events


class _Recorder(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
        type(self).paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_deleting_a_pod_runs_prestop_and_stops_its_processes(server: Server, node: Node, ns: str,
                                                             tmp_path: Path) -> None:
    """preStop runs, then SIGTERM (the trap reports it), then the pod is gone with every process of it."""
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    marker = f"svcnet-e2e-{ns}"
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'trap "curl -s {url}/term; exit 0" TERM; sleep 1000 & wait', {marker}]
    lifecycle:
      preStop:
        exec: {{command: [curl, -s, {url}/prestop]}}
"""
    try:
        server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "graceful.yaml", manifest)))
        pod = wait_for(lambda: _running_ready(server, ns, 1), 20, "graceful pod running")[0]
        assert _processes(marker), "the container runs"
        server.kubectl("delete", "pod", "graceful", "-n", ns)  # waits until the pod is gone
        assert _Recorder.paths == ["/prestop", "/term"], _Recorder.paths
        wait_for(lambda: not _processes(marker), 10, "no process left")
        assert not (node.data_dir / "pods" / pod["metadata"]["uid"]).exists(), "the pod directory is removed"
    finally:
        recorder.shutdown()


def _processes(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


READY_PROBE = """
apiVersion: v1
kind: ReplicationController
metadata: {name: probed}
spec:
  replicas: 2
  selector: {app: probed}
  template:
    metadata: {labels: {app: probed}}
    spec:
      containers:
      - name: web
        image: nginx
        command: [sh, -c, 'touch /tmp/ready; echo started; exec "$0" -m svcnet.node.builtin.servers http 80', PYTHON]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: probed}
spec:
  selector: {app: probed}
  ports: [{port: 80}]
"""


def test_exec_readiness_probe_moves_the_endpoint_and_back(server: Server, node: Node, ns: str,
                                                          tmp_path: Path) -> None:
    """`kubectl exec POD -- rm /tmp/ready` takes the pod out of the endpoints within period x threshold + 1 s;
    restoring the file brings it back. Each pod has its own /tmp."""
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "probed.yaml",
                                                      READY_PROBE.replace("PYTHON", sys.executable))))
    pods = wait_for(lambda: _running_ready(server, ns, 2), 30, "2 ready pods")
    wait_for(lambda: _endpoint_ips(server, ns, "probed", 2), 10, "2 ready endpoints")
    victim, other = pods[0], pods[1]
    server.kubectl("exec", victim["metadata"]["name"], "-n", ns, "--", "rm", "/tmp/ready")
    removed = time.monotonic()
    not_ready = wait_for(lambda: _endpoint_ips(server, ns, "probed", 1, "notReadyAddresses"), 5, "not ready")
    assert time.monotonic() - removed <= 1 * 1 + 1 + 0.5, "within periodSeconds x failureThreshold + 1 s"
    assert not_ready == [victim["status"]["podIP"]]
    assert _endpoint_ips(server, ns, "probed", 1) == [other["status"]["podIP"]], "the other pod's /tmp is its own"
    server.kubectl("exec", victim["metadata"]["name"], "-n", ns, "--", "touch", "/tmp/ready")
    wait_for(lambda: _endpoint_ips(server, ns, "probed", 2), 5, "back in the endpoints")
    logs = server.kubectl("logs", victim["metadata"]["name"], "-n", ns).stdout
    assert logs.startswith("started\n"), logs
    result = server.kubectl("exec", victim["metadata"]["name"], "-n", ns, "--", "sh", "-c",
                            'echo "$POD_IP $HOSTNAME"; cat /etc/resolv.conf; exit 7', check=False)
    assert result.rc == 7
    assert result.stdout.splitlines()[0] == f"{victim['status']['podIP']} {victim['metadata']['name']}"


def test_agent_restart_stops_then_reruns_its_pods(server: Server, node: Node, ns: str) -> None:
    """A clean shutdown of the agent leaves no pod process behind; the next start runs the pods again, at the
    same addresses. Runs last in this module: it restarts the module's node agent."""
    marker = f"svcnet-restart-{ns}"
    server.kubectl("run", "survivor", "-n", ns, "--image=busybox", "--", "sh", "-c", "sleep 1000; true", marker)
    before = wait_for(lambda: _running_ready(server, ns, 1), 20, "pod running")[0]
    assert wait_for(lambda: _processes(marker), 5, "the pod's process")
    agent = node.processes[-1]
    agent.send_signal(subprocess.signal.SIGTERM)  # type: ignore[attr-defined]
    agent.wait(20)
    wait_for(lambda: not _processes(marker), 5, "no pod process after the agent stopped")
    restarted = subprocess.Popen(agent.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: S603
                                 env={"KUBECONFIG": str(server.kubeconfig), "PATH": "/usr/bin:/bin"},
                                 start_new_session=True)
    node.processes[-1] = restarted

    def running_again() -> dict[str, Any] | None:
        """Ready again as reported by the new agent (the old status said Ready too, with no restart)."""
        pods = _running_ready(server, ns, 1)
        restarted = pods and pods[0]["status"]["containerStatuses"][0]["restartCount"] >= 1
        return pods[0] if restarted and _processes(marker) else None

    after = wait_for(running_again, 20, "the pod running again")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["podIP"] == before["status"]["podIP"], "the pod keeps its address"


def test_host_port_publishes_the_pod_on_the_node_address(server: Server, node: Node, ns: str,
                                                          tmp_path: Path) -> None:
    port = _free_port()
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: published}}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{{containerPort: 80, hostPort: {port}}}]
"""
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "published.yaml", manifest)))
    pod = wait_for(lambda: _running_ready(server, ns, 1), 20, "published pod running")[0]
    answer = wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), 10, "the hostPort answers")
    assert answer.strip() == pod["status"]["podIP"]
    server.kubectl("delete", "pod", "published", "-n", ns)
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_and_tcp_probes_on_named_ports(server: Server, node: Node, ns: str, tmp_path: Path) -> None:
    """httpGet readiness on a named port (ready while /healthz exists in the served directory), tcpSocket liveness."""
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: probes}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{name: http, containerPort: 80}]
    readinessProbe:
      httpGet: {path: /healthz, port: http, httpHeaders: [{name: X-Probe, value: "1"}]}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      tcpSocket: {port: 80}
      periodSeconds: 1
"""
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "probes.yaml", manifest)))

    def pod() -> dict[str, Any]:
        return _pods(server, ns)[0]

    def ready(p: dict[str, Any]) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))

    uid = wait_for(lambda: pod().get("status", {}).get("phase") == "Running" and pod()["metadata"]["uid"], 20,
                   "running")
    assert not ready(pod()), "/healthz is missing: not ready"
    (node.data_dir / "pods" / uid / "html" / "healthz").write_text("ok\n")
    wait_for(lambda: ready(pod()), 5, "ready once /healthz answers 200")
    (node.data_dir / "pods" / uid / "html" / "healthz").unlink()
    wait_for(lambda: not ready(pod()), 5, "not ready once /healthz answers 404")
    events = server.kubectl("get", "events", "-n", ns).stdout
    assert "Readiness probe failed: HTTP probe failed with statuscode: 404" in events, events
    assert pod()["status"]["containerStatuses"][0]["restartCount"] == 0, "the tcpSocket liveness probe passes"
