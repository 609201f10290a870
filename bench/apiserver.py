"""API server benchmark: svcnet and its anchor (a real etcd) measured in one run, ratios printed.

Figures (goals from the issue): creates/s through HTTPS with 32 concurrent clients (>= 1,000/s), the same create
load as create-if-absent transactions straight against Debian's etcd; the time to list 10,000 services (< 0.5 s);
watch fan-out latency to 100 watchers (p99 < 50 ms). Loopback only; every process and temp dir is cleaned up.
Usage: .venv/bin/python bench/apiserver.py [--creates N] [--services N] [--watchers N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, ssl_ctx: Any = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, ssl=ssl_ctx) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.05)


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def run_concurrently(total: int, make: Any) -> float:
    """Run `make(i)` for i < total with CONCURRENCY workers; returns operations per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await make(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return total / (time.perf_counter() - started)


class Svcnet:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.proc = start([str(REPO / ".venv/bin/svcnet"), "apiserver", "--data-dir", str(data_dir), "--port",
                           str(self.port)], data_dir.parent / "svcnet.log")
        self.data_dir = data_dir
        self.url = f"https://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        deadline = time.monotonic() + 30
        while not (self.data_dir / "kubeconfig").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("svcnet did not start")
            await asyncio.sleep(0.05)
        config = yaml.safe_load((self.data_dir / "kubeconfig").read_text())
        self.token = config["users"][0]["user"]["token"]
        self.ssl = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        await wait_http(self.url + "/readyz", self.ssl)

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"},
                                     connector=aiohttp.TCPConnector(ssl=self.ssl, limit=CONCURRENCY * 4))


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, json=body) as r:
        if r.status != 201:
            raise RuntimeError(f"create failed: {r.status} {await r.text()}")


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"key": "v" * 256}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


async def bench_creates(api: Svcnet, count: int) -> float:
    async with api.session() as s:
        await post(s, f"{api.url}/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": "bench"}})
        url = f"{api.url}/api/v1/namespaces/bench/configmaps"
        return await run_concurrently(count, lambda i: post(s, url, configmap(f"cm-{i}")))


async def bench_etcd_creates(count: int, tmp: Path) -> float:
    client, peer = free_port(), free_port()
    proc = start(["etcd", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{client}",
                  "--advertise-client-urls", f"http://127.0.0.1:{client}", "--listen-peer-urls",
                  f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                  "--initial-cluster", f"default=http://127.0.0.1:{peer}"], tmp / "etcd.log")
    try:
        await wait_http(f"http://127.0.0.1:{client}/health")
        body = json.dumps(configmap("x")).encode()

        async def create(session: aiohttp.ClientSession, i: int) -> None:
            key = base64.b64encode(f"/registry/configmaps/bench/cm-{i}".encode()).decode()
            txn = {"compare": [{"key": key, "target": "CREATE", "create_revision": "0"}],
                   "success": [{"request_put": {"key": key, "value": base64.b64encode(body).decode()}}]}
            async with session.post(f"http://127.0.0.1:{client}/v3/kv/txn", json=txn) as r:
                if r.status != 200 or not (await r.json()).get("succeeded"):
                    raise RuntimeError("etcd create failed")

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY * 4)) as s:
            return await run_concurrently(count, lambda i: create(s, i))
    finally:
        stop(proc)


async def bench_list(api: Svcnet, services: int, rounds: int = 5) -> tuple[float, float]:
    async with api.session() as s:
        url = f"{api.url}/api/v1/namespaces/bench/services"
        await run_concurrently(services, lambda i: post(s, url, service(f"svc-{i}")))
        timings: dict[str, list[float]] = {"json": [], "table": []}
        for _ in range(rounds):
            for kind, accept in (("json", "application/json"),
                                 ("table", "application/json;as=Table;v=v1;g=meta.k8s.io")):
                started = time.perf_counter()
                async with s.get(f"{api.url}/api/v1/services", headers={"Accept": accept}) as r:
                    body = await r.read()
                timings[kind].append(time.perf_counter() - started)
                assert len(json.loads(body).get("items", json.loads(body).get("rows", []))) >= services
        return statistics.median(timings["json"]), statistics.median(timings["table"])


async def bench_watch(api: Svcnet, watchers: int, updates: int) -> tuple[float, float]:
    latencies: list[float] = []
    async with api.session() as s:
        url = f"{api.url}/api/v1/namespaces/bench/configmaps"
        await post(s, url, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}})
        async with s.get(f"{url}/watched") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        connected = 0

        async def watch() -> None:
            nonlocal connected
            async with s.get(f"{url}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched",
                             timeout=aiohttp.ClientTimeout(total=None)) as r:
                connected += 1
                if connected == watchers:
                    ready.set()
                seen = 0
                async for line in r.content:
                    event = json.loads(line)
                    sent = float(event["object"]["metadata"]["annotations"]["sent"])
                    latencies.append(time.time() - sent)
                    seen += 1
                    if seen == updates:
                        return

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.2)  # all watch streams registered server-side
        for _ in range(updates):
            patch = {"metadata": {"annotations": {"sent": repr(time.time())}}}
            async with s.patch(f"{url}/watched", data=json.dumps(patch),
                               headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="svcnet-bench-"))
    api = Svcnet(tmp / "svcnet")
    try:
        await api.ready()
        creates = await bench_creates(api, args.creates)
        etcd = await bench_etcd_creates(args.creates, tmp) if shutil.which("etcd") else float("nan")
        list_json, list_table = await bench_list(api, args.services)
        p50, p99 = await bench_watch(api, args.watchers, args.updates)
    finally:
        stop(api.proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'figure':<48}{'svcnet':>12}{'anchor':>12}{'ratio':>8}")
    print(f"{'creates/s, 32 clients (HTTPS+token) vs etcd txn':<48}{creates:>12.0f}{etcd:>12.0f}"
          f"{creates / etcd:>8.2f}")
    print(f"{f'list {args.services} services, JSON (s)':<48}{list_json:>12.3f}{'':>12}{'':>8}")
    print(f"{f'list {args.services} services, Table (s)':<48}{list_table:>12.3f}{'':>12}{'':>8}")
    print(f"{f'watch fan-out {args.watchers} watchers p50 (ms)':<48}{p50 * 1000:>12.1f}")
    print(f"{f'watch fan-out {args.watchers} watchers p99 (ms)':<48}{p99 * 1000:>12.1f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=100)
    sys.exit(asyncio.run(main(parser.parse_args())))
