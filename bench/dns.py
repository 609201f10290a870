"""Cluster DNS benchmark: svcnet's DNS server against Debian's unbound serving the same names as local data, in
one run, each server pinned to one core (taskset) and dnsperf on the other.

Figures (goals from the issue):
  1. QPS: dnsperf, unlimited rate, 10 s, A queries over 100 service names — goal >= 0.5 x unbound (for scale:
     CoreDNS's published figure is about 17,000 QPS per core);
  2. p99 latency at half of svcnet's maximum rate (dnsperf -Q, per-query latencies from -v) — goal < 2 ms;
  3. zone rebuild time with 10,000 services after a change (the server's svcnet_dns_zone_build_seconds) — goal
     < 100 ms.
svcnet runs for real: an API server (loopback mode) with the services created through the API, and `svcnet dns`.
Everything is on 127.0.0.0/8; processes run in their own process groups and are killed, with the temp dir, on
any exit. Install the anchors with `scripts/install.sh --bench`.
Usage: .venv/bin/python bench/dns.py [--seconds S] [--services N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from common import Processes

REPO = Path(__file__).resolve().parents[1]
SVCNET = str(REPO / ".venv" / "bin" / "svcnet")
SVCNET_DNS, UNBOUND = "127.0.0.53", "127.0.0.54"
NAMES = 100


def free_port(ip: str, kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


async def api_session(kubeconfig: Path, tmp: Path) -> tuple[aiohttp.ClientSession, str]:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = tmp / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca)), limit=32)
    session = aiohttp.ClientSession(connector=connector,
                                    headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"})
    return session, cluster["server"]


async def create_services(session: aiohttp.ClientSession, server: str, count: int, start: int = 0) -> None:
    semaphore = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"},
                "spec": {"ports": [{"name": "http", "port": 80}]}}
        async with semaphore, session.post(f"{server}/api/v1/namespaces/bench/services", json=body) as response:
            if response.status >= 300:
                raise RuntimeError(f"create svc-{i}: {response.status} {await response.text()}")

    await asyncio.gather(*(one(i) for i in range(start, start + count)))


async def cluster_ips(session: aiohttp.ClientSession, server: str) -> dict[str, str]:
    async with session.get(f"{server}/api/v1/namespaces/bench/services") as response:
        items = (await response.json())["items"]
    return {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in items}


def unbound_conf(tmp: Path, port: int, ips: dict[str, str]) -> Path:
    lines = ["server:", f"  interface: {UNBOUND}@{port}", f"  port: {port}", "  num-threads: 1",
             "  do-daemonize: no", '  chroot: ""', '  username: ""', f'  directory: "{tmp}"', '  pidfile: ""',
             "  use-syslog: no", "  access-control: 127.0.0.0/8 allow", "  msg-cache-size: 4m",
             '  local-zone: "cluster.local." static']
    lines += [f'  local-data: "{name}.bench.svc.cluster.local. 5 IN A {ip}"' for name, ip in ips.items()]
    conf = tmp / "unbound.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def dnsperf(ip: str, port: int, queries: Path, seconds: int, qps: float = 0, verbose: bool = False) -> str:
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", ip, "-p", str(port), "-d", str(queries), "-l", str(seconds),
           "-c", "4", "-q", "500"] + (["-Q", str(int(qps))] if qps else []) + (["-v"] if verbose else [])
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def qps_of(output: str) -> float:
    match = re.search(r"Queries per second:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"no QPS in dnsperf's output:\n{output}")
    return float(match.group(1))


def p99_ms(output: str) -> tuple[float, float, int]:
    latencies: list[float] = []
    lost = 0
    for line in output.splitlines():
        if not line.startswith("> "):
            continue
        try:
            latencies.append(float(line.split()[-1]))
        except ValueError:  # "> T/O name A": a timeout, no latency
            lost += 1
            continue
        if not line.startswith("> NOERROR"):
            lost += 1
    latencies.sort()
    if not latencies:
        raise RuntimeError("dnsperf -v printed no latencies")
    return latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000, lost


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise RuntimeError(f"no metric {name}")


async def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--services", type=int, default=10_000)
    args = parser.parse_args()
    for tool in ("unbound", "dnsperf", "taskset"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: run scripts/install.sh --bench", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-dns-") as tmpdir:
        tmp = Path(tmpdir)
        procs = Processes(tmp)
        try:
            api = tmp / "api"
            procs.start("apiserver", [SVCNET, "apiserver", "--data-dir", str(api), "--port",
                                      str(free_port("127.0.0.1", socket.SOCK_STREAM)),
                                      "--service-cluster-ip-range", "127.96.0.0/12"])
            await wait_until(lambda: (api / "kubeconfig").exists(), 30, "API server")
            session, server = await api_session(api / "kubeconfig", tmp)
            async with session:
                async with session.post(f"{server}/api/v1/namespaces", json={
                        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}) as response:
                    await response.read()
                await create_services(session, server, NAMES)
                ips = await cluster_ips(session, server)
                dns_port, metrics_port = free_port(SVCNET_DNS), free_port("127.0.0.1", socket.SOCK_STREAM)
                procs.start("dns", ["taskset", "-c", "0", SVCNET, "dns", "--listen", f"{SVCNET_DNS}:{dns_port}",
                                    "--upstream", "none", "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
                                    "--health-bind-address", f"127.0.0.1:{free_port('127.0.0.1', 1)}"],
                            {"KUBECONFIG": str(api / "kubeconfig")})
                unbound_port = free_port(UNBOUND)
                procs.start("unbound", ["taskset", "-c", "0", shutil.which("unbound") or "/usr/sbin/unbound",
                                        "-d", "-c", str(unbound_conf(tmp, unbound_port, ips))])
                queries = tmp / "queries"
                queries.write_text("".join(f"{name}.bench.svc.cluster.local A\n" for name in ips))
                await wait_until(lambda: _answers(SVCNET_DNS, dns_port) and _answers(UNBOUND, unbound_port), 30,
                                 "both servers answer")
                results = {"unbound": qps_of(dnsperf(UNBOUND, unbound_port, queries, args.seconds)),
                           "svcnet": qps_of(dnsperf(SVCNET_DNS, dns_port, queries, args.seconds))}
                half = results["svcnet"] / 2
                latency = {name: p99_ms(dnsperf(ip, port, queries, 5, half, verbose=True))
                           for name, ip, port in (("unbound", UNBOUND, unbound_port),
                                                  ("svcnet", SVCNET_DNS, dns_port))}
                await create_services(session, server, args.services - NAMES, start=NAMES)
                builds = metric(metrics_port, "svcnet_dns_zone_builds_total")
                await wait_until(lambda: metric(metrics_port, "svcnet_dns_zone_builds_total") > builds, 30, "")
                await asyncio.sleep(1)  # the creation burst is over; one more change, one more rebuild
                builds = metric(metrics_port, "svcnet_dns_zone_builds_total")
                await create_services(session, server, 1, start=args.services)
                await wait_until(lambda: metric(metrics_port, "svcnet_dns_zone_builds_total") > builds, 30,
                                 "a rebuild")
                rebuild = metric(metrics_port, "svcnet_dns_zone_build_seconds") * 1000
        finally:
            procs.stop()
    print(f"{'server':8} {'QPS':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost/error':>12}  (latency at {half:.0f} QPS)")
    for name in ("unbound", "svcnet"):
        p50, p99, lost = latency[name]
        print(f"{name:8} {results[name]:9.0f} {p50:8.3f} {p99:8.3f} {lost:12d}")
    print(f"QPS svcnet/unbound {results['svcnet'] / results['unbound']:.2f} (goal >= 0.5); p99 at half rate "
          f"{latency['svcnet'][1]:.3f} ms (goal < 2 ms); zone rebuild with {args.services + 1} services "
          f"{rebuild:.1f} ms (goal < 100 ms)")
    return 0


def _answers(ip: str, port: int) -> bool:
    out = subprocess.run(["dig", f"@{ip}", "-p", str(port), "+short", "+time=1", "+tries=1",
                          "svc-0.bench.svc.cluster.local"], capture_output=True, text=True)
    return bool(out.stdout.strip())


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
