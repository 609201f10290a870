"""`svcnet doctor` against a real cluster: API server (service range 127.96.0.0/12), controller manager, node
agent (process runtime), userspace proxy and DNS, each a subprocess on free ports. Each test builds one faulty
situation with real pods and asserts the verdict line names that fault: a selector that matches nothing, a wrong
targetPort, an unready pod, an application bound to 127.0.0.1 only, and a healthy service.

The cluster converges asynchronously (endpoints, proxy listeners, DNS), so the doctor is re-run until its verdict
says what is expected, with a deadline; the last output is shown when it never does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, SVCNET, Server, free_udp_tcp_port, killpg, start_server, wait_for, write
from tests.e2e.nodes import Node, run_node

NODE = "doctor-node"
DEADLINE = 45.0


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, "--service-cluster-ip-range", "127.96.0.0/12")


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from run_node(server, tmp_path_factory.mktemp("node"), NODE, "127.244.60.0/24")


def _spawn(server: Server, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(SVCNET), *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "KUBECONFIG": str(server.kubeconfig)}, start_new_session=True)


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(server: Server, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The proxy and the DNS server running; yields the DNS address for `--dns`."""
    logs = tmp_path_factory.mktemp("doctor")
    healthz, dns_port, dns_health = _free_port(), free_udp_tcp_port(), _free_port()
    proxy = _spawn(server, logs / "proxy.log", "proxy", "--hostname-override", NODE, "--node-ip", "127.0.0.1",
                   "--metrics-bind-address", f"127.0.0.1:{_free_port()}", "--healthz-bind-address",
                   f"127.0.0.1:{healthz}")
    dns = _spawn(server, logs / "dns.log", "dns", "--listen", f"127.0.0.1:{dns_port}", "--upstream", "none",
                 "--metrics-bind-address", f"127.0.0.1:{_free_port()}",
                 "--health-bind-address", f"127.0.0.1:{dns_health}")
    try:
        wait_for(lambda: _http_ok(healthz, "/healthz"), 20, "the proxy is healthy")
        wait_for(lambda: _http_ok(dns_health, "/ready"), 20, "the DNS server is ready")
        yield f"127.0.0.1:{dns_port}"
    finally:
        killpg(proxy)
        killpg(dns)


def doctor(server: Server, dns: str, ns: str, name: str = "web") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SVCNET), "doctor", f"svc/{name}", "-n", ns,
                           "--kubeconfig", str(server.kubeconfig), "--dns", dns],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def verdict_until(server: Server, dns: str, ns: str, expected: str, also: str = ""
                  ) -> subprocess.CompletedProcess[str]:
    """Run the doctor until its last line starts with `expected` (and contains `also`); fail with its last
    output after DEADLINE."""
    last: list[subprocess.CompletedProcess[str]] = []

    def matches() -> bool:
        last[:] = [doctor(server, dns, ns)]
        lines = last[0].stdout.strip().splitlines()
        return bool(lines) and lines[-1].startswith(expected) and also in lines[-1]

    try:
        wait_for(matches, DEADLINE, f"the verdict {expected!r}", interval=0.5)
    except AssertionError:
        out = last[0] if last else None
        sys.stderr.write(f"last doctor run: rc={out and out.returncode}\n{out and out.stdout}{out and out.stderr}")
        raise
    print(last[0].stdout)  # shown with -s, or when a later assertion fails
    return last[0]


def deployment(name: str, labels: str, container: str, replicas: int = 2) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {labels}}}
  template:
    metadata: {{labels: {labels}}}
    spec:
      containers:
{container}
"""


NGINX = """      - name: nginx
        image: nginx:1.17.1
        ports: [{containerPort: 80}]
        readinessProbe:
          tcpSocket: {port: 80}
          periodSeconds: 1
"""


def service(selector: str, port: int = 80, target: int | str = 80) -> str:
    return f"""
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {selector}
  ports: [{{port: {port}, targetPort: {target}}}]
"""


def apply(server: Server, ns: str, tmp_path: Path, text: str) -> None:
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "doctor.yaml", text)))


def test_healthy_service(server: Server, cluster: str, ns: str, tmp_path: Path) -> None:
    apply(server, ns, tmp_path, deployment("web", "{app: nginx-pod}", NGINX) + service("{app: nginx-pod}"))
    out = verdict_until(server, cluster, ns, f"OK: service {ns}/web forwards to 2 ready pods")
    assert out.returncode == 0, out.stdout
    assert [line.split()[0] for line in out.stdout.splitlines()[:-1]] == ["PASS"] * 8, out.stdout


def test_selector_matches_nothing(server: Server, cluster: str, ns: str, tmp_path: Path) -> None:
    apply(server, ns, tmp_path, deployment("web", "{app: nginx-pod}", NGINX) + service("{app: nginx}"))
    out = verdict_until(server, cluster, ns, "FAULT: the selector app=nginx matches no pod (pods here are labelled "
                        "app=nginx-pod) — fix the Service's selector")
    assert out.returncode == 1


def test_wrong_target_port(server: Server, cluster: str, ns: str, tmp_path: Path) -> None:
    apply(server, ns, tmp_path, deployment("web", "{app: nginx-pod}", NGINX) + service("{app: nginx-pod}",
                                                                                       target=8080))
    out = verdict_until(server, cluster, ns, "FAULT: targetPort 8080 is wrong: pod web-")
    assert out.stdout.strip().endswith("— set the Service's targetPort to 80"), out.stdout
    assert out.returncode == 1


def test_unready_pod(server: Server, cluster: str, ns: str, tmp_path: Path) -> None:
    unready = NGINX.replace("tcpSocket: {port: 80}", "httpGet: {path: /healthz, port: 80}")
    apply(server, ns, tmp_path, deployment("web", "{app: nginx-pod}", unready, replicas=1)
          + service("{app: nginx-pod}"))
    # the first probes may be refused while the server starts; the latest Unhealthy event then says 404
    out = verdict_until(server, cluster, ns, "FAULT: 1 of 1 pod(s) not Ready — pod web-", also="404")
    assert "Readiness probe failed: " in out.stdout.splitlines()[-1], out.stdout
    assert out.returncode == 1


def test_application_bound_to_localhost(server: Server, cluster: str, ns: str, tmp_path: Path) -> None:
    port = _free_port()
    command = (f"import http.server as h; h.HTTPServer(('127.0.0.1', {port}), "
               "h.SimpleHTTPRequestHandler).serve_forever()")
    container = f"""      - name: app
        image: svcnet/sleep
        command: [python3, -c, "{command}"]
        ports: [{{containerPort: {port}}}]
"""
    apply(server, ns, tmp_path, deployment("web", "{app: local}", container, replicas=1)
          + service("{app: local}", port=80, target=port))
    out = verdict_until(server, cluster, ns, "FAULT: the application in pod web-")
    assert f"listens on 127.0.0.1:{port} only, not on its pod IP — make it bind 0.0.0.0" in out.stdout, out.stdout
    assert out.returncode == 1
