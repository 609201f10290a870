"""Node agent benchmark: how fast pods start and how fast their readiness reaches the endpoints.

Figures (goals from the issue):
  1. pod-ready -> endpoint-updated latency: 100 pods behind one Service; a watch on pods records when each pod's
     Ready condition turns True, a watch on the Endpoints when its address appears in `addresses`; p50/p99 of the
     difference (goal p99 < 200 ms). Twice: paced (the pods run first, then turn ready one per 100 ms) and as a
     burst (all 100 start and turn ready at once, so the figure includes queueing behind ~700 API writes).
  2. time to start 500 pods on one node with the process runtime (a ReplicaSet of 500 `busybox` sleepers: each pod
     is a sandbox process plus a container process), until all are Running; anchor: the same 1,000 processes
     (`unshare --mount` sandboxes + `sleep`) spawned directly with asyncio, no API — the ratio is the cost of the
     API round trips, scheduling and status writes.
  3. the agent's memory per pod: its RSS with 500 pods minus its RSS with none, divided by 500.
Everything runs on 127.0.0.1 as subprocesses in their own process groups, killed with the temp dir on any exit.
Usage: .venv/bin/python bench/pods.py [--latency-pods N] [--pods N] [--logs DIR]
(PROFILE_APISERVER=FILE / PROFILE_CONTROLLERS=FILE / PROFILE_NODE=FILE run that component under cProfile.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parents[1]
SVCNET = str(REPO / ".venv" / "bin" / "svcnet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


class Cluster:
    def __init__(self, tmp: Path, max_pods: int) -> None:
        self.tmp = tmp
        self.max_pods = max_pods
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kubeconfig = tmp / "api" / "kubeconfig"

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        prof = os.environ.get("PROFILE_" + name.upper())
        cmd = [sys.executable, "-m", "cProfile", "-o", prof, "-m", "svcnet.cli.main", *args] if prof else [SVCNET, *args]
        with (self.tmp / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    async def start(self) -> None:
        self.spawn("apiserver", "apiserver", "--data-dir", str(self.tmp / "api"), "--port", str(free_port()))
        await wait(lambda: self.kubeconfig.exists(), 30, "kubeconfig")
        self.spawn("controllers", "controller-manager", "--controllers", "scheduler,endpoints,replicaset")
        self.node = self.spawn("node", "node", "--name", "bench", "--pod-cidr", "127.245.0.0/20", "--kubelet-port",
                               "0", "--max-pods", str(self.max_pods), "--data-dir", str(self.tmp / "node"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def session(self) -> tuple[aiohttp.ClientSession, str]:
        config = yaml.safe_load(self.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca = self.tmp / "ca.crt"
        import base64
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        token = config["users"][0]["user"]["token"]
        context = ssl.create_default_context(cafile=str(ca))
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=64),
                                        headers={"Authorization": f"Bearer {token}"})
        return session, cluster["server"]


async def wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout}s")
        await asyncio.sleep(0.05)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")


async def watch(session: aiohttp.ClientSession, url: str, on_event: Any, stop: asyncio.Event) -> None:
    async with session.get(url, params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for line in response.content:
            if line.strip():
                on_event(json.loads(line), time.monotonic())
            if stop.is_set():
                return


def sleeper(name: str, replicas: int, labels: dict[str, str], probe: list[str] | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if probe:
        container["readinessProbe"] = {"exec": {"command": probe}, "periodSeconds": 1}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}


async def latency(cluster: Cluster, pods: int, paced: bool) -> list[float]:
    """Burst: all pods pass their probe as soon as they start. Paced: all pods run first (not ready), then their
    probes start passing one pod every 100 ms (the bench creates /tmp/ready in each pod's own /tmp)."""
    session, server = cluster.session()
    ready_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    running: dict[str, str] = {}  # uid -> podIP
    stop = asyncio.Event()

    def on_pod(event: dict[str, Any], now: float) -> None:
        status = event["object"].get("status", {})
        if status.get("phase") == "Running" and status.get("podIP"):
            running[event["object"]["metadata"]["uid"]] = status["podIP"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []):
            ready_at.setdefault(status.get("podIP", ""), now)

    def on_endpoints(event: dict[str, Any], now: float) -> None:
        for subset in event["object"].get("subsets") or []:
            for address in subset.get("addresses") or []:
                seen_at.setdefault(address["ip"], now)
        if len(seen_at) >= pods:
            stop.set()

    async with session:
        ns = f"{server}/api/v1/namespaces/default"
        await post(session, f"{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lat"},
                                               "spec": {"selector": {"app": "lat"}, "ports": [{"port": 80}]}})
        watchers = [asyncio.create_task(watch(session, f"{ns}/pods?labelSelector=app%3Dlat", on_pod, stop)),
                    asyncio.create_task(watch(session, f"{ns}/endpoints?fieldSelector=metadata.name%3Dlat",
                                              on_endpoints, stop))]
        probe = ["test", "-f", "/tmp/ready"] if paced else ["true"]
        await post(session, f"{server}/apis/apps/v1/namespaces/default/replicasets",
                   sleeper("lat", pods, {"app": "lat"}, probe=probe))
        if paced:
            await wait(lambda: len(running) >= pods, 300, "pods running")
            await asyncio.sleep(2)
            for uid in list(running):
                (cluster.tmp / "node" / "pods" / uid / "tmp" / "ready").touch()
                await asyncio.sleep(0.1)
        await asyncio.wait_for(stop.wait(), 300)
        for task in watchers:
            task.cancel()
        await asyncio.sleep(0.2)
        async with session.delete(f"{server}/apis/apps/v1/namespaces/default/replicasets/lat") as response:
            await response.read()
        async with session.delete(f"{ns}/pods", params={"labelSelector": "app=lat"}) as response:
            await response.read()
        async with session.delete(f"{ns}/services/lat") as response:
            await response.read()
    return [seen_at[ip] - ready_at[ip] for ip in seen_at if ip in ready_at]


async def start_pods(cluster: Cluster, pods: int) -> float:
    session, server = cluster.session()
    async with session:
        url = f"{server}/api/v1/namespaces/default/pods?labelSelector=app%3Dmany"
        begin = time.monotonic()
        await post(session, f"{server}/apis/apps/v1/namespaces/default/replicasets",
                   sleeper("many", pods, {"app": "many"}, probe=None))
        while True:
            async with session.get(url) as response:
                items = (await response.json())["items"]
            if sum(p.get("status", {}).get("phase") == "Running" for p in items) >= pods:
                return time.monotonic() - begin
            await asyncio.sleep(0.25)


async def bare_spawn(pods: int) -> float:
    """The anchor: the same processes spawned directly (a mount-namespace sandbox and a sleeper per pod)."""
    begin = time.monotonic()
    procs = []
    for _ in range(pods):
        sandbox = await asyncio.create_subprocess_exec("unshare", "--mount", "--propagation", "private", "--",
                                                       "sleep", "infinity")
        container = await asyncio.create_subprocess_exec("nsenter", "-t", str(sandbox.pid), "-m", "--", "sleep",
                                                         "infinity")
        procs += [sandbox, container]
    elapsed = time.monotonic() - begin
    for proc in procs:
        proc.kill()
    await asyncio.gather(*(p.wait() for p in procs))
    return elapsed


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-pods", type=int, default=100)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--logs", type=Path, default=None, help="copy the components' logs here at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-pods-") as tmp:
        cluster = Cluster(Path(tmp), args.pods + args.latency_pods + 10)
        try:
            await cluster.start()
            await wait(lambda: (Path(tmp) / "node.log").exists() and "pod addresses" in
                       (Path(tmp) / "node.log").read_text(), 30, "node")
            for paced in (True, False):
                lat = await latency(cluster, args.latency_pods, paced)
                print(f"pod-ready -> endpoints, {'paced (one pod per 100 ms)' if paced else 'burst'}: {len(lat)} "
                      f"pods, p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms "
                      f"(goal p99 < 200 ms)")
                await wait(lambda: not list((cluster.tmp / "node" / "pods").iterdir()), 60, "pods gone")
            await asyncio.sleep(3)
            base_rss = rss_kib(cluster.node.pid)
            took = await start_pods(cluster, args.pods)
            per_pod = (rss_kib(cluster.node.pid) - base_rss) / args.pods
            bare = await bare_spawn(args.pods)
            print(f"start {args.pods} pods: svcnet {took:.2f} s ({args.pods / took:.0f} pods/s); "
                  f"bare spawn of the same processes {bare:.2f} s; ratio svcnet/bare {took / bare:.1f}x")
            print(f"agent memory per pod: {per_pod:.0f} KiB (RSS {base_rss} -> {rss_kib(cluster.node.pid)} KiB)")
        finally:
            cluster.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
