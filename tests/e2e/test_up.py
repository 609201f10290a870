"""`svcnet up` as a user runs it: the whole cluster in one process, the seed walkthrough against it with the real
kubectl, curl and dig, `svcnet status`, a kill -9 and a restart on the same data directory, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KUBECTL, SVCNET, LineReader, wait_for, write

DNS = "127.96.0.10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([str(SVCNET), "up", "--data-dir", str(self.data_dir), "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        LineReader(self.proc.stdout).wait_line(lambda line: line.strip().startswith("ready in"), 60, "svcnet up ready")

    def kubectl(self, *args: str, check: bool = True) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.data_dir / "kubeconfig"), "HOME": str(self.data_dir)}
        out = subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, env=env, timeout=60)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out.stdout

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    cluster = Up(tmp_path_factory.mktemp("up") / "data")
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.proc is not None and cluster.proc.poll() is None:
            os.killpg(cluster.proc.pid, signal.SIGKILL)
            cluster.proc.wait()


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
      - name: nginx
        image: nginx:1.17.1
        ports: [{containerPort: 80}]
        readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: service-clusterip, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: 127.97.97.97
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: service-headliness, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: None
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: service-nodeport, namespace: dev}
spec:
  type: NodePort
  selector: {app: nginx-pod}
  ports: [{port: 80, targetPort: 80}]
"""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:
        return str(response.read().decode()).strip()


def _ready_ips(up: Up) -> list[str] | None:
    pods = json.loads(up.kubectl("get", "pods", "-n", "dev", "-o", "json"))["items"]
    ready = [p["status"].get("podIP") for p in pods if any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
    return sorted(ready) if len(ready) == 3 == len(pods) else None


def _dig(*args: str) -> list[str]:
    out = subprocess.run(["dig", f"@{DNS}", "+short", "+time=2", "+tries=1", *args], capture_output=True, text=True)
    return sorted(out.stdout.split())


def _walkthrough(up: Up) -> dict[str, Any]:
    ips = wait_for(lambda: _ready_ips(up), 60, "3 ready pods")
    wait_for(lambda: {_get("http://127.97.97.97/") for _ in range(6)} == set(ips), 20, "round robin over 3 pods")
    answers = [_get("http://127.97.97.97/") for _ in range(6)]
    assert sorted(answers) == sorted(ips * 2), answers
    node_port = json.loads(up.kubectl("get", "svc", "service-nodeport", "-n", "dev", "-o", "json"))["spec"][
        "ports"][0]["nodePort"]
    assert _get(f"http://127.0.0.1:{node_port}/") in ips
    assert wait_for(lambda: _dig("service-headliness.dev.svc.cluster.local") == ips and ips, 20, "headless DNS")
    assert _dig("kubernetes.default.svc.cluster.local") == ["127.96.0.1"]
    return {"ips": ips, "node_port": node_port}


def test_status_and_the_walkthrough(up: Up, tmp_path: Path) -> None:
    status = subprocess.run([str(SVCNET), "status", "--data-dir", str(up.data_dir)], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert [line.split()[:2] for line in status.stdout.splitlines()] == [
        [name, "ok"] for name in ("apiserver", "controller-manager", "node", "proxy", "dns", "ingress")]
    dns_svc = json.loads(up.kubectl("get", "svc", "kube-dns", "-n", "kube-system", "-o", "json"))["spec"]
    assert dns_svc["clusterIP"] == DNS
    up.kubectl("apply", "-f", str(write(tmp_path, "seed.yaml", SEED)))
    _walkthrough(up)


def test_kill_9_then_up_again_keeps_services_and_runs_pods_again(up: Up) -> None:
    before = _walkthrough(up)
    assert up.kill(signal.SIGKILL) == -signal.SIGKILL
    for ip in before["ips"]:
        with pytest.raises(OSError):
            _get(f"http://{ip}/")  # the pods died with it
    up.start()
    after = _walkthrough(up)
    assert after["node_port"] == before["node_port"], "the NodePort is kept"
    assert json.loads(up.kubectl("get", "svc", "service-clusterip", "-n", "dev", "-o", "json"))["spec"][
        "clusterIP"] == "127.97.97.97"


def test_clean_stop_leaves_nothing_running(up: Up) -> None:
    ips = wait_for(lambda: _ready_ips(up), 60, "pods running")
    assert up.kill(signal.SIGTERM) == 0
    for ip in ips:
        with pytest.raises(OSError):
            _get(f"http://{ip}/")
    with pytest.raises(OSError):
        socket.create_connection(("127.97.97.97", 80), timeout=2).close()
    leftovers = subprocess.run(["pgrep", "-f", str(up.data_dir)], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers
