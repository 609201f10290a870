"""The ingress controller with the real kubectl and curl, on loopback: the seed's Ingress (legacy
extensions/v1beta1 form) routing by host and path, unknown hosts to the default backend, TLS with SNI checked by
`curl --cacert`, an HTTPRoute splitting 80/20, and a pod whose readiness fails leaving the rotation within 1 s."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import SVCNET, Server, killpg, start_server, wait_for, write
from tests.e2e.nodes import Node, run_node

NODE = "ingress-node"
ADDRESS = "127.0.80.9"
HOST = "kubia.example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


@dataclass
class Ingress:
    http: int
    https: int
    health: str
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, "--service-cluster-ip-range", "127.96.0.0/12")


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from run_node(server, tmp_path_factory.mktemp("node"), NODE, "127.244.40.0/24")


@pytest.fixture(scope="module")
def ingress(server: Server, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    running = Ingress(_free_port(), _free_port(), f"127.0.0.1:{_free_port()}",
                      tmp_path_factory.mktemp("ingress") / "ingress.log")
    with running.log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SVCNET), "ingress", "--bind-address", ADDRESS, "--http-port", str(running.http), "--https-port",
             str(running.https), "--health-bind-address", running.health, "--create-classes"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "KUBECONFIG": str(server.kubeconfig)},
            start_new_session=True)
    try:
        wait_for(lambda: _status(f"http://{running.health}/healthz") == 200, 20, "the ingress controller healthy")
        yield running
    finally:
        killpg(proc)


def _status(url: str) -> int:
    ran = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url],
                         capture_output=True, text=True)
    return int(ran.stdout or 0)


def curl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", *args, url],
                          capture_output=True, text=True)


def _body_and_code(ran: subprocess.CompletedProcess[str]) -> tuple[str, int]:
    body, _, code = ran.stdout.rpartition("\n")
    return body.strip(), int(code or 0)


BACKENDS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      initContainers:
      - {name: mark-ready, image: busybox:1.30, command: [touch, /tmp/ready]}
      containers:
      - name: kubia
        image: luksa/kubia
        ports: [{containerPort: 8080, name: http}]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: NAME}
spec:
  selector: {app: NAME}
  ports: [{port: 80, targetPort: http}]
"""

SEED_INGRESS = """
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: kubia}
spec:
  rules:
  - host: kubia.example.com
    http:
      paths:
      - path: /kubia
        backend: {serviceName: kubia, servicePort: 80}
      - path: /foo
        backend: {serviceName: bar, servicePort: 80}
"""


def _deploy(server: Server, ns: str, tmp_path: Path, name: str, replicas: int) -> list[str]:
    text = BACKENDS.replace("NAME", name).replace("REPLICAS", str(replicas))
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, f"{name}.yaml", text)))
    return wait_for(lambda: _ready_pods(server, ns, name, replicas), 60, f"{replicas} ready {name} pods")


def _ready_pods(server: Server, ns: str, app: str, count: int) -> list[str] | None:
    pods = json.loads(server.kubectl("get", "pods", "-n", ns, "-l", f"app={app}", "-o", "json").stdout)["items"]
    ready = sorted(p["metadata"]["name"] for p in pods if any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", [])))
    return ready if len(ready) == count == len(pods) else None


def _hit(answer: str) -> str:
    return answer.removeprefix("You've hit ").strip()


def test_seed_ingress_routes_by_host_and_path(server: Server, ingress: Ingress, ns: str, tmp_path: Path) -> None:
    kubia = _deploy(server, ns, tmp_path, "kubia", 2)
    bar = _deploy(server, ns, tmp_path, "bar", 1)
    applied = server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "ingress.yaml", SEED_INGRESS)))
    assert "extensions/v1beta1 Ingress is deprecated" in applied.stderr
    resolve = f"{HOST}:{ingress.http}:{ADDRESS}"
    base = f"http://{HOST}:{ingress.http}"

    def spread(path: str, want: set[str]) -> bool:
        got = {_hit(_body_and_code(curl(base + path, "--resolve", resolve))[0]) for _ in range(2 * len(want))}
        return got == want

    wait_for(lambda: spread("/kubia", set(kubia)), 10, "/kubia reaching both kubia pods")
    assert spread("/kubia/sub/path", set(kubia))  # Prefix-like: element-wise below /kubia
    assert spread("/foo", set(bar))
    body, code = _body_and_code(curl(f"http://unknown.example.com:{ingress.http}/kubia", "--resolve",
                                     f"unknown.example.com:{ingress.http}:{ADDRESS}"))
    assert code == 404 and "default backend" in body
    assert _body_and_code(curl(base + "/other", "--resolve", resolve))[1] == 404
    address = wait_for(lambda: server.kubectl("get", "ingress", "kubia", "-n", ns, "-o",
                                              "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout, 10,
                       "status.loadBalancer.ingress")
    assert address == ADDRESS
    listed = server.kubectl("get", "ingress", "kubia", "-n", ns).stdout
    assert HOST in listed and ADDRESS in listed and "svcnet" in listed  # the default class was admitted


def _certificate(tmp_path: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `hosts`, as PEM files (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svcnet e2e CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "tls.crt", tmp_path / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


TLS_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: secure}
spec:
  tls:
  - hosts: [secure.example.com]
    secretName: secure-tls
  rules:
  - host: secure.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: kubia, port: {name: http}}}}
"""


def test_tls_host_with_sni(server: Server, ingress: Ingress, ns: str, tmp_path: Path) -> None:
    kubia = _deploy(server, ns, tmp_path, "kubia", 1)
    ca, cert, key = _certificate(tmp_path, ["secure.example.com"])
    server.kubectl("create", "secret", "tls", "secure-tls", "-n", ns, f"--cert={cert}", f"--key={key}")
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "tls.yaml", TLS_INGRESS.replace(
        "name: http", "number: 80"))))
    url = f"https://secure.example.com:{ingress.https}/"
    resolve = f"secure.example.com:{ingress.https}:{ADDRESS}"

    def answered() -> bool:
        body, code = _body_and_code(curl(url, "--cacert", str(ca), "--resolve", resolve))
        return code == 200 and _hit(body) == kubia[0]

    wait_for(answered, 10, "HTTPS through the ingress, verified against the test CA")
    plain = curl(url, "--resolve", resolve)  # without the CA the certificate must not verify
    assert _body_and_code(plain)[1] == 0


def _gateway_objects(port: int) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web}}
spec:
  gatewayClassName: svcnet
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: split}}
spec:
  parentRefs: [{{name: web}}]
  hostnames: [split.example.com]
  rules:
  - backendRefs:
    - {{name: kubia, port: 80, weight: 80}}
    - {{name: bar, port: 80, weight: 20}}
"""


def _get(port: int, host: str, path: str = "/", connection: http.client.HTTPConnection | None = None) -> str:
    conn = connection or http.client.HTTPConnection(ADDRESS, port, timeout=5)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    body = response.read().decode()
    if connection is None:
        conn.close()
    return body


def test_httproute_splits_80_20(server: Server, ingress: Ingress, ns: str, tmp_path: Path) -> None:
    kubia = set(_deploy(server, ns, tmp_path, "kubia", 1))
    bar = set(_deploy(server, ns, tmp_path, "bar", 1))
    port = _free_port()
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "gateway.yaml", _gateway_objects(port))))
    wait_for(lambda: server.kubectl("get", "httproute", "split", "-n", ns, "-o", "jsonpath={.status.parents[0]"
                                    ".conditions[?(@.type=='Accepted')].status}").stdout == "True", 10,
             "the HTTPRoute accepted")
    wait_for(lambda: server.kubectl("get", "gateway", "web", "-n", ns, "-o", "jsonpath={.status.conditions[?("
                                    "@.type=='Programmed')].status}").stdout == "True", 10, "the Gateway programmed")
    wait_for(lambda: _hit(_get(port, "split.example.com")) in kubia | bar, 10, "the Gateway listener answers")
    connection = http.client.HTTPConnection(ADDRESS, port, timeout=5)
    counts = Counter(_hit(_get(port, "split.example.com", connection=connection)) for _ in range(1000))
    connection.close()
    share = sum(counts[p] for p in kubia) / 1000
    assert sum(counts[p] for p in kubia | bar) == 1000, counts
    assert 0.75 <= share <= 0.85, counts


def test_readiness_failure_leaves_rotation_within_1s(server: Server, ingress: Ingress, ns: str,
                                                    tmp_path: Path) -> None:
    pods = _deploy(server, ns, tmp_path, "kubia", 2)
    ingress_yaml = SEED_INGRESS.replace("extensions/v1beta1", "networking.k8s.io/v1").replace(
        "- path: /foo\n        backend: {serviceName: bar, servicePort: 80}\n", "").replace(
        "backend: {serviceName: kubia, servicePort: 80}",
        "pathType: Prefix\n        backend: {service: {name: kubia, port: {number: 80}}}").replace(
        "name: kubia}", "name: ready}").replace(HOST, "ready.example.com")
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "ingress.yaml", ingress_yaml)))
    connection = http.client.HTTPConnection(ADDRESS, ingress.http, timeout=5)

    def hits(count: int) -> set[str]:
        return {_hit(_get(ingress.http, "ready.example.com", "/kubia", connection)) for _ in range(count)}

    wait_for(lambda: hits(4) == set(pods), 10, "both pods in rotation")
    leaving = pods[0]
    server.kubectl("exec", leaving, "-n", ns, "--", "rm", "/tmp/ready")
    wait_for(lambda: not _slice_ready(server, ns, leaving), 30, f"{leaving} not ready in its EndpointSlice")
    left_at = time.monotonic()
    wait_for(lambda: leaving not in hits(10), 1.0, f"{leaving} out of rotation within 1 s of leaving the endpoints")
    assert time.monotonic() - left_at < 1.0
    assert leaving not in hits(50)
    connection.close()


def _slice_ready(server: Server, ns: str, pod: str) -> bool:
    slices = json.loads(server.kubectl("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=kubia",
                                       "-o", "json").stdout)["items"]
    return any(e.get("targetRef", {}).get("name") == pod and (e.get("conditions") or {}).get("ready") is not False
               for s in slices for e in s.get("endpoints") or [])
