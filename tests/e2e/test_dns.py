"""The cluster DNS server with the real kubectl, controllers, node agent and `dig`: the seed cases, every record
type, TCP and truncation, forwarding to an upstream (a local stub standing in for the internet), loop detection,
FORMERR, a fuzz storm, deletion within a second, health and metrics."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dnslib
import pytest

from tests.e2e.conftest import SVCNET, Server, free_udp_tcp_port, killpg, start_server, wait_for, write
from tests.e2e.nodes import Node, run_node

DNS_IP = "127.96.0.10"
NS = "dev"
DIG = "/usr/bin/dig"
pytestmark = pytest.mark.skipif(not Path(DIG).exists(), reason="dig is missing (Debian package dnsutils)")


def _free_port(ip: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


class Upstream:
    """A stub upstream resolver on loopback: www.baidu.com and example.org have fixed A records, the rest is
    NXDOMAIN. It counts what it was asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            request = dnslib.DNSRecord.parse(data)
            name = str(request.q.qname).lower()
            self.asked.append(name)
            reply = request.reply()
            if name in ("www.baidu.com.", "example.org.") and request.q.qtype == dnslib.QTYPE.A:
                reply.add_answer(dnslib.RR(name, dnslib.QTYPE.A, rdata=dnslib.A("192.0.2.80"), ttl=60))
            else:
                reply.header.rcode = dnslib.RCODE.NXDOMAIN
            self.sock.sendto(reply.pack(), addr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, "--service-cluster-ip-range", "127.96.0.0/12")


@pytest.fixture(scope="module")
def node(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from run_node(server, tmp_path_factory.mktemp("node"), "dns-node", "127.244.40.0/24")


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="module")
def dns(server: Server, node: Node, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[dict[str, int]]:
    ports = {"dns": free_udp_tcp_port(DNS_IP), "metrics": _free_port(), "health": _free_port()}
    log = tmp_path_factory.mktemp("dns") / "dns.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SVCNET), "dns", "--listen", f"{DNS_IP}:{ports['dns']}",
                                 "--upstream", f"127.0.0.1:{upstream.port}", "--upstream", f"{DNS_IP}:{ports['dns']}",
                                 "--metrics-bind-address", f"127.0.0.1:{ports['metrics']}",
                                 "--health-bind-address", f"127.0.0.1:{ports['health']}"],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "KUBECONFIG": str(server.kubeconfig)}, start_new_session=True)
    try:
        wait_for(lambda: _http(ports["health"], "/ready") == "OK", 20, "DNS ready")
        yield ports
    finally:
        killpg(proc)
    assert "forwarding loop" in log.read_text(), "the upstream that is the server itself was dropped"


def _http(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def dig(ports: dict[str, int], *args: str) -> str:
    out = subprocess.run([DIG, f"@{DNS_IP}", "-p", str(ports["dns"]), "+time=2", "+tries=1", *args],
                         capture_output=True, text=True, timeout=20)
    return out.stdout


def short(ports: dict[str, int], *args: str) -> list[str]:
    return sorted(dig(ports, "+short", *args).split())


def status(ports: dict[str, int], *args: str) -> str:
    for line in dig(ports, *args).splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return ""


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
      - {name: nginx, image: nginx:1.17.1, ports: [{name: http, containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: service-clusterip, namespace: dev}
spec:
  selector: {app: nginx-pod}
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: service-headliness, namespace: dev}
spec:
  selector: {app: nginx-pod}
  clusterIP: None
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: service-externalname, namespace: dev}
spec:
  type: ExternalName
  externalName: www.baidu.com
"""


@pytest.fixture(scope="module")
def seed(server: Server, dns: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    server.kubectl("apply", "-f", str(write(tmp_path_factory.mktemp("seed"), "seed.yaml", SEED)))

    def ready_ips() -> list[str] | None:
        out = server.kubectl("get", "pods", "-n", NS, "-o",
                             "jsonpath={range .items[*]}{.status.podIP}{' '}{end}").stdout.split()
        return sorted(out) if len(out) == 3 else None

    ips = wait_for(ready_ips, 30, "3 pods with IPs")
    wait_for(lambda: short(dns, f"service-headliness.{NS}.svc.cluster.local") == ips, 20, "headless answers")
    return ips


def _cluster_ip(server: Server, name: str) -> str:
    return server.kubectl("get", "svc", name, "-n", NS, "-o", "jsonpath={.spec.clusterIP}").stdout


def test_seed_cases(server: Server, dns: dict[str, int], seed: list[str]) -> None:
    assert short(dns, f"service-headliness.{NS}.svc.cluster.local") == seed
    assert short(dns, f"service-clusterip.{NS}.svc.cluster.local") == [_cluster_ip(server, "service-clusterip")]
    answer = dig(dns, f"service-externalname.{NS}.svc.cluster.local")
    assert any(line.split()[-2:] == ["CNAME", "www.baidu.com."] for line in answer.splitlines() if line.split()), \
        answer
    assert "192.0.2.80" in answer, "the CNAME is chased through the upstream"


def test_record_types(server: Server, dns: dict[str, int], seed: list[str]) -> None:
    domain = "cluster.local"
    srv = dig(dns, "SRV", f"_http._tcp.service-clusterip.{NS}.svc.{domain}", "+short").split()
    assert srv[2:] == ["80", f"service-clusterip.{NS}.svc.{domain}."], srv
    headless_srv = dig(dns, "SRV", f"_http._tcp.service-headliness.{NS}.svc.{domain}", "+short").splitlines()
    assert len(headless_srv) == 3, headless_srv
    ip = _cluster_ip(server, "service-clusterip")
    assert short(dns, "-x", ip) == [f"service-clusterip.{NS}.svc.{domain}."]
    pod_name = seed[0].replace(".", "-") + f".{NS}.pod.{domain}"
    assert short(dns, pod_name) == [seed[0]]
    assert short(dns, "TXT", f"dns-version.{domain}") == ['"1.1.0"']
    assert dig(dns, "SOA", domain, "+short").split()[0] == f"ns.dns.{domain}."
    assert short(dns, "NS", domain) == [f"ns.dns.{domain}."]
    assert status(dns, f"nothing.{NS}.svc.{domain}") == "NXDOMAIN"
    assert status(dns, "AAAA", f"service-clusterip.{NS}.svc.{domain}") == "NOERROR", "NODATA, not NXDOMAIN"
    assert "ANSWER: 0" in dig(dns, "AAAA", f"service-clusterip.{NS}.svc.{domain}")
    assert short(dns, f"SERVICE-CLUSTERIP.{NS.upper()}.SVC.CLUSTER.LOCAL") == [ip], "case-insensitive"
    assert short(dns, "+tcp", f"service-clusterip.{NS}.svc.{domain}") == [ip], "TCP"


def test_forwarding_and_refusal(dns: dict[str, int], upstream: Upstream) -> None:
    assert short(dns, "example.org") == ["192.0.2.80"]
    assert status(dns, "nowhere.invalid") == "NXDOMAIN"
    before = len(upstream.asked)
    assert status(dns, "nothing.dev.svc.cluster.local") == "NXDOMAIN"
    assert len(upstream.asked) == before, "cluster names are never forwarded"


def test_truncation_and_tcp_retry(server: Server, dns: dict[str, int], tmp_path: Path) -> None:
    addresses = [f"127.250.{i // 250}.{i % 250 + 1}" for i in range(100)]
    endpoints = "\n".join(f"- addresses: [{a}]" for a in addresses)
    manifest = f"""
apiVersion: v1
kind: Service
metadata: {{name: many, namespace: {NS}}}
spec: {{clusterIP: None, ports: [{{port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: many-1, namespace: {NS}, labels: {{kubernetes.io/service-name: many}}}}
addressType: IPv4
ports: [{{port: 80, protocol: TCP, name: ""}}]
endpoints:
{endpoints}
"""
    server.kubectl("apply", "-f", str(write(tmp_path, "many.yaml", manifest)))
    name = f"many.{NS}.svc.cluster.local"
    wait_for(lambda: len(short(dns, name)) == 100, 10, "100 addresses (dig retries over TCP)")
    truncated = dig(dns, "+noedns", "+ignore", name)
    assert " tc" in truncated.split("flags:")[1].split(";")[0], truncated


def test_bad_packets_get_formerr_and_a_storm_changes_nothing(server: Server, dns: dict[str, int],
                                                              seed: list[str]) -> None:
    ip = _cluster_ip(server, "service-clusterip")
    good = dnslib.DNSRecord.question(f"service-clusterip.{NS}.svc.cluster.local").pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff", (DNS_IP, dns["dns"]))
        reply = dnslib.DNSRecord.parse(s.recv(512))
        assert reply.header.id == 0x1234 and reply.header.rcode == dnslib.RCODE.FORMERR
        rng = random.Random(7)
        for i in range(100_000):
            if i % 2:
                packet = bytearray(good)
                for _ in range(rng.randint(1, 4)):
                    packet[rng.randrange(len(packet))] = rng.randrange(256)
                data = bytes(packet)
            else:
                data = rng.randbytes(rng.randint(0, 80))
            s.sendto(data, (DNS_IP, dns["dns"]))
            if i % 500 == 0:
                time.sleep(0.001)  # let the server keep up rather than fill the socket buffer
    assert short(dns, f"service-clusterip.{NS}.svc.cluster.local") == [ip]
    assert short(dns, f"service-headliness.{NS}.svc.cluster.local") == seed


def test_deleted_service_disappears_within_a_second(server: Server, dns: dict[str, int]) -> None:
    server.kubectl("create", "service", "clusterip", "short-lived", "--tcp=80:80", "-n", NS)
    name = f"short-lived.{NS}.svc.cluster.local"
    wait_for(lambda: short(dns, name), 10, "the new name")
    server.kubectl("delete", "svc", "short-lived", "-n", NS, "--wait=false")
    deleted = time.monotonic()
    wait_for(lambda: status(dns, name) == "NXDOMAIN", 5, "the name gone")
    assert time.monotonic() - deleted < 1.0 + 0.5, "within 1 s (plus dig's own time)"


def test_health_ready_and_metrics(dns: dict[str, int]) -> None:
    assert _http(dns["health"], "/health") == "OK"
    metrics = _http(dns["metrics"], "/metrics")
    assert 'coredns_dns_requests_total{type="A"}' in metrics and "coredns_dns_request_duration_seconds_bucket" in metrics
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN"}' in metrics and "coredns_cache_hits_total" in metrics


def test_endpoint_hostnames_and_their_reverse_names(server: Server, dns: dict[str, int], seed: list[str],
                                                     tmp_path: Path) -> None:
    """A pod with hostname + subdomain behind a headless service gets `hostname.svc.ns.svc.<domain>` (the
    StatefulSet pattern), and its IP's PTR names it."""
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: web-0, namespace: {NS}, labels: {{app: nginx-pod}}}}
spec:
  hostname: web-0
  subdomain: service-headliness
  containers:
  - {{name: nginx, image: nginx, ports: [{{name: http, containerPort: 80}}]}}
"""
    server.kubectl("apply", "-f", str(write(tmp_path, "web-0.yaml", manifest)))
    name = f"web-0.service-headliness.{NS}.svc.cluster.local"
    ip = wait_for(lambda: short(dns, name), 30, "the endpoint's hostname")[0]
    assert name + "." in short(dns, "-x", ip)  # (CoreDNS lists every service endpoint with that IP)
    server.kubectl("delete", "pod", "web-0", "-n", NS)
