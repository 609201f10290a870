"""Network programming latency of the kernel proxy modes: a real API server and `svcnet proxy --mode M --netns NS`
(nftables, iptables) programming a throwaway network namespace, 1,000 services x 5 endpoints, then endpoint
changes at a steady pace.

Each change replaces one endpoint address of one service's EndpointSlice and stamps the slice with
`endpoints.kubernetes.io/last-change-trigger-time` (RFC 3339, as kube's EndpointSlice controller does: the time
of the change that triggered it). Two figures per mode (goal from issue 7: p99 < 200 ms at 1,000 services):
  - outside: from the trigger time until the kernel has the rule -- `nft monitor` runs in the namespace and
    prints every committed rule, and the change counts as programmed when a `dnat to <new address>` rule
    appears (iptables-nft rules show there too);
  - the proxy's own `kubeproxy_network_programming_duration_seconds` histogram, which svcnet measures as
    kube-proxy does: from each changed slice's trigger-time annotation until the sync that programmed it is
    done, one observation per change (p50/p99 as bucket bounds -- kube's buckets are 0, 0.25, 0.5, 1, 2, ... s
    -- and the mean, sum / count, for a finer figure).
Root only; the API server and proxy run as subprocesses in their own process groups, killed (and the namespace
deleted) on any exit. Usage: .venv/bin/python bench/proxy_latency.py [--modes nftables,iptables]
[--services 1000] [--changes 100] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pods import SVCNET, Cluster, free_port, percentile, wait  # noqa: E402 — bench/ is not a package

TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
ENDPOINTS = 5


def slice_body(i: int, addresses: list[str], trigger: float | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"svc-{i}-abc", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": f"svc-{i}",
                                       "endpointslice.kubernetes.io/managed-by": "bench"}}
    if trigger is not None:
        stamp = datetime.datetime.fromtimestamp(trigger, datetime.UTC)
        meta["annotations"] = {TRIGGER: stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": "bench"} for a in addresses]}


def service_body(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def address(n: int) -> str:
    return f"10.{244 + n // 65536}.{n // 256 % 256}.{n % 256}"


async def send(session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any]) -> None:
    async with session.request(method, url, json=body) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {await resp.text()}")


async def populate(session: aiohttp.ClientSession, server: str, services: int) -> None:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await send(session, "POST", f"{server}/api/v1/namespaces/default/services", service_body(i))
            await send(session, "POST", f"{server}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                       slice_body(i, [address(i * ENDPOINTS + j) for j in range(ENDPOINTS)]))
    await asyncio.gather(*(one(i) for i in range(services)))


class Monitor:
    """`nft monitor` in the namespace: when each `dnat to ADDRESS:` rule was first seen committed."""

    def __init__(self, ns: str) -> None:
        self.seen: dict[str, float] = {}
        self.ns = ns
        self.proc: asyncio.subprocess.Process | None = None

    async def run(self) -> None:
        self.proc = await asyncio.create_subprocess_exec("ip", "netns", "exec", self.ns, "nft", "monitor", "rules",
                                                         stdout=asyncio.subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        pattern = re.compile(rb"dnat to (?:ip )?(?:to )?([0-9.]+):")
        async for line in self.proc.stdout:
            now = time.time()
            for match in pattern.finditer(line):
                self.seen.setdefault(match[1].decode(), now)

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def histogram_quantiles(metrics: str) -> tuple[float, float, int, float]:
    """(p50, p99, count, mean) of kubeproxy_network_programming_duration_seconds, p50/p99 as bucket upper
    bounds."""
    buckets = [(float(le), float(v)) for le, v in re.findall(
        r'^kubeproxy_network_programming_duration_seconds_bucket\{le="([^"]+)"\} (\S+)', metrics, re.M)]
    total = buckets[-1][1] if buckets else 0.0

    def quantile(q: float) -> float:
        return next((le for le, count in buckets if count >= q * total), float("inf"))
    return quantile(0.5), quantile(0.99), int(total), histogram_mean(metrics, "kubeproxy_network_programming_duration_seconds")


async def measure(mode: str, services: int, changes: int, interval: float, tmp: Path) -> dict[str, Any]:
    cluster = Cluster(tmp, 0)
    ns = f"svcnet-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    monitor = Monitor(ns)
    try:
        cluster.spawn("apiserver", "apiserver", "--data-dir", str(tmp / "api"), "--port", str(free_port()),
                      "--service-cluster-ip-range", "10.96.0.0/16")
        await wait(lambda: cluster.kubeconfig.exists(), 30, "kubeconfig")
        session, server = cluster.session()
        async with session:
            await wait_api(session, server)
            await populate(session, server, services)
            metrics_port = free_port()
            cluster.spawn(f"proxy-{mode}", "proxy", "--mode", mode, "--netns", ns, "--hostname-override", "bench",
                          "--node-ip", "10.0.0.1", "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
                          "--healthz-bind-address", f"127.0.0.1:{free_port()}", "--sync-period", "3600")
            metrics_url = f"http://127.0.0.1:{metrics_port}"
            await wait_forwarding(metrics_url, services)
            task = asyncio.create_task(monitor.run())
            await asyncio.sleep(0.5)  # `nft monitor` subscribed (it prints nothing until something commits)
            triggers = await change_endpoints(session, server, services, changes, interval)
            await wait(lambda: all(a in monitor.seen for a in triggers), 120, "every change in the kernel")
            async with aiohttp.ClientSession() as plain, plain.get(f"{metrics_url}/metrics") as resp:
                text = await resp.text()
            task.cancel()
    finally:
        monitor.stop()
        cluster.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False)
    outside = [monitor.seen[a] - t for a, t in triggers.items()]
    p50, p99, count, mean = histogram_quantiles(text)
    return {"outside": outside, "hist_p50": p50, "hist_p99": p99, "hist_count": count, "hist_mean": mean,
            "sync_mean": histogram_mean(text, "kubeproxy_sync_partial_proxy_rules_duration_seconds")}


def histogram_mean(metrics: str, name: str) -> float:
    """sum / count of one histogram in a Prometheus text exposition (nan when it has no observations)."""
    found = dict(re.findall(rf"^{name}_(sum|count) (\S+)", metrics, re.M))
    count = float(found.get("count", 0))
    return float(found["sum"]) / count if count else float("nan")


async def wait_api(session: aiohttp.ClientSession, server: str) -> None:
    async def ready() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{server}/api/v1/namespaces/default/services") as resp:
                return resp.status == 200
        return False
    deadline = time.monotonic() + 30
    while not await ready():
        if time.monotonic() > deadline:
            raise RuntimeError("the API server did not answer within 30 s")
        await asyncio.sleep(0.1)


async def wait_forwarding(metrics_url: str, services: int) -> None:
    """Until the proxy's forwarding table lists every service (its first full sync is done)."""
    deadline = time.monotonic() + 300
    async with aiohttp.ClientSession() as plain:
        while True:
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with plain.get(f"{metrics_url}/svcnet/forwarding") as resp:
                    if resp.status == 200 and len(await resp.json()) >= services:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy did not program every service within 300 s")
            await asyncio.sleep(0.2)


async def change_endpoints(session: aiohttp.ClientSession, server: str, services: int, changes: int,
                           interval: float) -> dict[str, float]:
    """One endpoint replaced per change, `interval` apart; new address -> trigger time."""
    triggers: dict[str, float] = {}
    url = f"{server}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    start = time.monotonic()
    for k in range(changes):
        i = k * 7919 % services
        new = address(services * ENDPOINTS + k)
        addresses = [new, *(address(i * ENDPOINTS + j) for j in range(1, ENDPOINTS))]
        now = time.time()
        triggers[new] = now
        await send(session, "PUT", f"{url}/svc-{i}-abc", slice_body(i, addresses, now))
        await asyncio.sleep(max(0.0, start + (k + 1) * interval - time.monotonic()))
    return triggers


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="nftables,iptables")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between endpoint changes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/proxy_latency.py needs root (the proxy programs a network namespace)", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= {"nftables", "iptables"} or args.services < 1 or args.changes < 1:
        print("bench/proxy_latency.py: --modes takes nftables and/or iptables; --services and --changes are > 0",
              file=sys.stderr)
        return 2
    print(f"{args.services} services x {ENDPOINTS} endpoints, {args.changes} endpoint changes "
          f"every {args.interval * 1000:.0f} ms ({SVCNET})")
    print(f"{'mode':>8} {'outside p50 ms':>15} {'outside p99 ms':>15} {'outside max ms':>15} "
          f"{'histogram p50 s':>16} {'histogram p99 s':>16} {'hist mean ms':>13} {'count':>6} {'sync mean ms':>13}")
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="svcnet-latency-") as tmp:
            r = await measure(mode, args.services, args.changes, args.interval, Path(tmp))
        o = r["outside"]
        print(f"{mode:>8} {percentile(o, 50) * 1000:15.1f} {percentile(o, 99) * 1000:15.1f} {max(o) * 1000:15.1f} "
              f"{'<= ' + format(r['hist_p50'], 'g'):>16} {'<= ' + format(r['hist_p99'], 'g'):>16} "
              f"{r['hist_mean'] * 1000:13.1f} {r['hist_count']:6d} {r['sync_mean'] * 1000:13.1f}", flush=True)
    print("outside: trigger-time annotation -> `nft monitor` sees the new endpoint's dnat rule; "
          "histogram: the proxy's kubeproxy_network_programming_duration_seconds (trigger time -> programmed; "
          "bucket bounds, mean; count = observed changes); sync mean: the proxy's partial syncs "
          "(kubeproxy_sync_partial_proxy_rules_duration_seconds)")
    print("goal: network programming latency p99 < 200 ms at 1,000 services")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
