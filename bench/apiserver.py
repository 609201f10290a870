"""API server benchmark: svcnet and its anchor (a real etcd) measured in one run, ratios printed.

Figures (goals from the issue):
  1. creates/s with 32 concurrent keep-alive clients, HTTPS + the admin bearer token from the kubeconfig (>= 1,000/s),
     ConfigMaps and Services; the same load (32 clients, same stored value sizes, kube-apiserver's create-if-absent
     transaction) straight against a real etcd through its JSON gateway; svcnet/etcd printed as a ratio. Also svcnet
     over plain HTTP (--insecure-http) and svcnet with --store etcd:// (optional: reported, never fatal).
  2. time to list 10,000 services (GET /api/v1/services, JSON and Table), median of several (< 0.5 s); anchor: one
     etcd range over the same 10,000 values.
  3. watch fan-out: 100 watchers on services in one namespace, a writer updates one service N times (paced) stamping
     the send time in an annotation; per-event delivery latency to every watcher, p50/p99 (p99 < 50 ms); anchor:
     100 etcd watchers on the key, the writer puts the same value N times.
Everything is on 127.0.0.1; servers run as subprocesses in their own process groups and are killed (with the temp
dir removed) on any exit. Exit status is non-zero only on errors, never on a missed goal.
Usage: .venv/bin/python bench/apiserver.py [--configmaps N] [--services N] [--watchers N] [--updates N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 32
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PHASE_TIMEOUT = 120.0  # no single phase may run longer than this


# ---------------------------------------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


class Procs:
    """Subprocesses in their own sessions; `close()` kills each process group (TERM, then KILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, ssl_ctx: Any = None,
                    timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                async with session.get(url, ssl=ssl_ctx, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout:.0f}s:\n{tail(log)}")
            await asyncio.sleep(0.05)


def tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def run_concurrently(total: int, make: Callable[[int], Awaitable[None]]) -> float:
    """Run `make(i)` for i < total with CONCURRENCY workers; returns operations per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await make(i)

    started = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    try:
        async with asyncio.timeout(PHASE_TIMEOUT):
            await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return total / (time.perf_counter() - started)


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"key": "v" * 256}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


# ----------------------------------------------------------------------------------------------------------- svcnet

class Svcnet:
    """One `svcnet apiserver` subprocess, reached the way a user would: server, token and CA from its kubeconfig."""

    def __init__(self, procs: Procs, tmp: Path, name: str, extra: list[str]) -> None:
        self.data_dir = tmp / name
        self.log = tmp / f"{name}.log"
        self.insecure = "--insecure-http" in extra
        self.proc = procs.start([str(REPO / ".venv/bin/svcnet"), "apiserver", "--data-dir", str(self.data_dir),
                                 "--bind-address", "127.0.0.1", "--port", str(free_port()), *extra], self.log)
        self.url = ""
        self.headers: dict[str, str] = {}
        self.ssl: ssl.SSLContext | bool = False

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        kubeconfig = self.data_dir / "kubeconfig"
        while not kubeconfig.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"svcnet exited with {self.proc.returncode}:\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"svcnet wrote no kubeconfig within 60s:\n{tail(self.log)}")
            await asyncio.sleep(0.05)
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.url = cluster["server"]
        token = config["users"][0]["user"].get("token")
        if token:
            self.headers = {"Authorization": f"Bearer {token}"}
        if not self.insecure:
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            self.ssl = ssl.create_default_context(cadata=ca)
        await wait_http(self.url + "/readyz", self.proc, self.log, self.ssl or None)

    def session(self, limit: int = CONCURRENCY) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={**self.headers, "User-Agent": "svcnet-bench/1"},
                                     connector=aiohttp.TCPConnector(ssl=self.ssl, limit=limit),
                                     timeout=aiohttp.ClientTimeout(total=60))


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
        if r.status != 201:
            raise RuntimeError(f"create {url} failed: {r.status} {await r.text()}")


async def svcnet_creates(api: Svcnet, namespace: str, configmaps: int, services: int) -> tuple[float, float]:
    """ConfigMaps/s and Services/s, 32 concurrent clients on one keep-alive pool of 32 connections."""
    async with api.session() as s:
        await post(s, f"{api.url}/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}})
        base = f"{api.url}/api/v1/namespaces/{namespace}"
        cms = await run_concurrently(configmaps, lambda i: post(s, f"{base}/configmaps", configmap(f"cm-{i}")))
        svcs = await run_concurrently(services, lambda i: post(s, f"{base}/services", service(f"svc-{i}")))
    return cms, svcs


async def stored_objects(api: Svcnet, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What svcnet stored for cm-0 and svc-0 (defaults, uid, managedFields...): the anchor writes values this size."""
    async with api.session() as s:
        out = []
        for path in ("configmaps/cm-0", "services/svc-0"):
            async with s.get(f"{api.url}/api/v1/namespaces/{namespace}/{path}") as r:
                r.raise_for_status()
                out.append(orjson.loads(await r.read()))
    return out[0], out[1]


async def svcnet_list(api: Svcnet, expect: int, rounds: int) -> tuple[float, float, int]:
    """Median seconds per GET /api/v1/services (until the whole body is read), JSON and Table; the JSON size."""
    timings: dict[str, list[float]] = {"json": [], "table": []}
    size = 0
    async with api.session() as s:
        for _ in range(rounds):
            for kind, accept in (("json", "application/json"), ("table", TABLE)):
                started = time.perf_counter()
                async with s.get(f"{api.url}/api/v1/services", headers={"Accept": accept}) as r:
                    r.raise_for_status()
                    body = await r.read()
                timings[kind].append(time.perf_counter() - started)
                doc = orjson.loads(body)
                got = len(doc.get("items") or doc.get("rows") or [])
                if got < expect:
                    raise RuntimeError(f"list ({kind}) returned {got} services, expected >= {expect}")
                if kind == "json":
                    size = len(body)
    return statistics.median(timings["json"]), statistics.median(timings["table"]), size


async def svcnet_watch(api: Svcnet, watchers: int, updates: int, pace: float) -> list[float]:
    """Latency (s) from just before each PATCH is sent to each watcher decoding the event."""
    namespace = "watch"
    latencies: list[float] = []
    async with api.session(limit=CONCURRENCY) as s, api.session(limit=watchers + 1) as ws:
        await post(s, f"{api.url}/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}})
        url = f"{api.url}/api/v1/namespaces/{namespace}/services"
        await post(s, url, service("watched"))
        async with s.get(url) as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        connected = 0
        all_connected = asyncio.Event()

        async def watch() -> None:
            nonlocal connected
            async with ws.get(f"{url}?watch=true&resourceVersion={rv}",
                              timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as r:
                r.raise_for_status()
                connected += 1
                if connected == watchers:
                    all_connected.set()
                seen = 0
                async for line in r.content:
                    now = time.perf_counter()
                    event = orjson.loads(line)
                    if event.get("type") != "MODIFIED":
                        if event.get("type") == "ERROR":
                            raise RuntimeError(f"watch error: {event}")
                        continue
                    sent = event["object"]["metadata"].get("annotations", {}).get("bench/sent")
                    if sent is None:
                        continue
                    latencies.append(now - float(sent))
                    seen += 1
                    if seen == updates:
                        return
                raise RuntimeError(f"watch stream ended after {seen} of {updates} events")

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        try:
            await asyncio.wait_for(all_connected.wait(), 30)
            await asyncio.sleep(0.3)  # every watch registered server-side (headers are sent before the stream)
            for _ in range(updates):
                patch = orjson.dumps({"metadata": {"annotations": {"bench/sent": repr(time.perf_counter())}}})
                async with s.patch(f"{url}/watched", data=patch,
                                   headers={"Content-Type": "application/merge-patch+json"}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"patch failed: {r.status} {await r.text()}")
                await asyncio.sleep(pace)
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


# ------------------------------------------------------------------------------------------------------------- etcd

class Etcd:
    """Debian's etcd on loopback random ports with a temp data dir, reached through its JSON gateway (/v3/...)."""

    def __init__(self, procs: Procs, tmp: Path) -> None:
        client, peer = free_port(), free_port()
        self.log = tmp / "etcd.log"
        self.endpoint = f"127.0.0.1:{client}"
        self.url = f"http://{self.endpoint}"
        self.proc = procs.start(
            ["etcd", "--name", "bench", "--data-dir", str(tmp / "etcd"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "warn"], self.log)

    async def ready(self) -> None:
        await wait_http(self.url + "/health", self.proc, self.log)

    @staticmethod
    def session(limit: int = CONCURRENCY) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                     timeout=aiohttp.ClientTimeout(total=60))


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return b64(bytes(raw))


def value_of(template: dict[str, Any], name: str) -> bytes:
    """The stored object with another name: the same size as what svcnet stores per object."""
    obj = {**template, "metadata": {**template["metadata"], "name": name}}
    return orjson.dumps(obj)


async def etcd_create(session: aiohttp.ClientSession, url: str, key: str, value: bytes) -> None:
    """kube-apiserver's storage Create: txn If(mod_revision(key) == 0) Then(Put) Else(Get)."""
    k = b64(key)
    txn = {"compare": [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": "0"}],
           "success": [{"request_put": {"key": k, "value": b64(value)}}],
           "failure": [{"request_range": {"key": k}}]}
    async with session.post(f"{url}/v3/kv/txn", data=orjson.dumps(txn)) as r:
        body = await r.read()
        if r.status != 200 or not orjson.loads(body).get("succeeded"):
            raise RuntimeError(f"etcd create {key} failed: {r.status} {body[:200]!r}")


async def etcd_creates(etcd: Etcd, cm: dict[str, Any], svc: dict[str, Any], configmaps: int,
                       services: int) -> tuple[float, float]:
    root = "/anchor/registry"
    async with etcd.session() as s:
        cms = await run_concurrently(configmaps, lambda i: etcd_create(
            s, etcd.url, f"{root}/configmaps/bench/cm-{i}", value_of(cm, f"cm-{i}")))
        svcs = await run_concurrently(services, lambda i: etcd_create(
            s, etcd.url, f"{root}/services/specs/bench/svc-{i}", value_of(svc, f"svc-{i}")))
    return cms, svcs


async def etcd_list(etcd: Etcd, expect: int, rounds: int) -> float:
    """Median seconds for one range over the 10,000 stored services, until the whole response is read."""
    prefix = "/anchor/registry/services/specs/"
    body = orjson.dumps({"key": b64(prefix), "range_end": prefix_end(prefix)})
    timings = []
    async with etcd.session() as s:
        for _ in range(rounds):
            started = time.perf_counter()
            async with s.post(f"{etcd.url}/v3/kv/range", data=body) as r:
                r.raise_for_status()
                raw = await r.read()
            timings.append(time.perf_counter() - started)  # as for svcnet: until the whole body is read
            kvs = orjson.loads(raw).get("kvs", [])
            items = [orjson.loads(base64.b64decode(kv["value"])) for kv in kvs]
            if len(items) < expect:
                raise RuntimeError(f"etcd range returned {len(items)} values, expected >= {expect}")
    return statistics.median(timings)


async def etcd_watch(etcd: Etcd, template: dict[str, Any], watchers: int, updates: int,
                     pace: float) -> list[float]:
    """Same shape as svcnet_watch: 100 streams on the key's prefix, a paced writer stamping the send time."""
    prefix = "/anchor/registry/services/specs/watch/"
    key = prefix + "watched"
    latencies: list[float] = []
    async with etcd.session() as s, etcd.session(limit=watchers + 1) as ws:
        connected = 0
        all_connected = asyncio.Event()

        async def watch() -> None:
            nonlocal connected
            req = orjson.dumps({"create_request": {"key": b64(prefix), "range_end": prefix_end(prefix)}})
            async with ws.post(f"{etcd.url}/v3/watch", data=req,
                               timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as r:
                r.raise_for_status()
                seen = 0
                async for line in r.content:
                    now = time.perf_counter()
                    if not line.strip():
                        continue
                    result = orjson.loads(line).get("result", {})
                    if result.get("created"):
                        connected += 1
                        if connected == watchers:
                            all_connected.set()
                    for event in result.get("events", []):
                        obj = orjson.loads(base64.b64decode(event["kv"]["value"]))
                        latencies.append(now - float(obj["metadata"]["annotations"]["bench/sent"]))
                        seen += 1
                    if seen >= updates:
                        return
                raise RuntimeError(f"etcd watch ended after {seen} of {updates} events")

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        try:
            await asyncio.wait_for(all_connected.wait(), 30)
            await asyncio.sleep(0.3)
            for _ in range(updates):
                obj = {**template, "metadata": {**template["metadata"], "name": "watched", "annotations": {
                    "bench/sent": repr(time.perf_counter())}}}
                put = {"key": b64(key), "value": b64(orjson.dumps(obj))}
                async with s.post(f"{etcd.url}/v3/kv/put", data=orjson.dumps(put)) as r:
                    r.raise_for_status()
                    await r.read()
                await asyncio.sleep(pace)
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


# ------------------------------------------------------------------------------------------------------------- main

async def phase(name: str, coro: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    print(f"  {name} ...", end="", flush=True, file=sys.stderr)
    try:
        return await asyncio.wait_for(coro, PHASE_TIMEOUT * 2)
    finally:
        print(f" {time.perf_counter() - started:.1f}s", flush=True, file=sys.stderr)


async def optional_etcd_store(procs: Procs, tmp: Path, etcd: Etcd, configmaps: int,
                              services: int) -> tuple[float, float] | str:
    api = Svcnet(procs, tmp, "svcnet-etcd", ["--store", f"etcd://{etcd.endpoint}"])
    try:
        await api.ready()
        return await svcnet_creates(api, "bench", configmaps, services)
    except Exception as exc:  # optional figure: report why, do not fail the run
        return f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})"
    finally:
        Procs.stop(api.proc)


async def main(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # unwind through the finally below
    tmp = Path(tempfile.mkdtemp(prefix="svcnet-bench-"))
    procs = Procs()
    r: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    try:
        print(f"svcnet apiserver benchmark (tmp {tmp})", file=sys.stderr)
        api = Svcnet(procs, tmp, "svcnet-https", [])
        etcd = Etcd(procs, tmp)
        await phase("start svcnet (HTTPS, sqlite) + etcd", asyncio.gather(api.ready(), etcd.ready()))

        # 1. creates, svcnet over HTTPS; its Services are also the 10,000 for the list figure
        r["cm_https"], r["svc_https"] = await phase(
            f"svcnet HTTPS creates ({args.configmaps} ConfigMaps, {args.services} Services)",
            svcnet_creates(api, "bench", args.configmaps, args.services))
        cm_obj, svc_obj = await stored_objects(api, "bench")
        r["cm_size"], r["svc_size"] = len(orjson.dumps(cm_obj)), len(orjson.dumps(svc_obj))
        r["cm_etcd"], r["svc_etcd"] = await phase(
            "etcd create-if-absent txns (same counts and value sizes)",
            etcd_creates(etcd, cm_obj, svc_obj, args.configmaps, args.services))

        # 2. list
        r["list_json"], r["list_table"], r["list_bytes"] = await phase(
            f"svcnet list of {args.services} services x{args.list_rounds}",
            svcnet_list(api, args.services, args.list_rounds))
        r["list_etcd"] = await phase(f"etcd range of {args.services} values x{args.list_rounds}",
                                     etcd_list(etcd, args.services, args.list_rounds))

        # 3. watch fan-out
        lat = sorted(await phase(f"svcnet watch: {args.watchers} watchers x {args.updates} updates",
                                 svcnet_watch(api, args.watchers, args.updates, args.pace)))
        if len(lat) != args.watchers * args.updates:
            raise RuntimeError(f"svcnet watch delivered {len(lat)} of {args.watchers * args.updates} events")
        r["w_p50"], r["w_p99"], r["w_max"] = percentile(lat, 50), percentile(lat, 99), lat[-1]
        elat = sorted(await phase(f"etcd watch: {args.watchers} watchers x {args.updates} puts",
                                  etcd_watch(etcd, svc_obj, args.watchers, args.updates, args.pace)))
        r["e_p50"], r["e_p99"], r["e_max"] = percentile(elat, 50), percentile(elat, 99), elat[-1]
        Procs.stop(api.proc)

        # 1b. plain HTTP, and (optional) svcnet on etcd
        small = min(args.configmaps, 3000), min(args.services, 3000)
        http = Svcnet(procs, tmp, "svcnet-http", ["--insecure-http"])
        await phase("start svcnet (plain HTTP)", http.ready())
        r["cm_http"], r["svc_http"] = await phase(f"svcnet HTTP creates ({small[0]} + {small[1]})",
                                                  svcnet_creates(http, "bench", *small))
        Procs.stop(http.proc)
        r["on_etcd"] = await phase(f"svcnet --store etcd:// creates ({small[0]} + {small[1]})",
                                   optional_etcd_store(procs, tmp, etcd, *small))
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)

    r["load"] = (load_before, os.getloadavg()[0])
    report(args, r)
    return 0


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    def row(figure: str, svcnet: str, anchor: str = "", ratio: str = "", goal: str = "") -> None:
        print(f"{figure:<58}{svcnet:>11}{anchor:>11}{ratio:>8}  {goal}")

    def ok(flag: bool) -> str:
        return "ok" if flag else "MISSED"

    ms = 1000.0
    etcd_version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
          f"{etcd_version}; 1-min load average {r['load'][0]:.2f} before the run, {r['load'][1]:.2f} after "
          "(the run itself adds ~2; more than ~0.5 before means another job shared the machine)")
    row("figure", "svcnet", "etcd", "ratio", "goal")
    row("-" * 56, "-" * 9, "-" * 9, "-" * 6, "-" * 14)
    row(f"creates/s ConfigMaps, 32 clients HTTPS+token ({r['cm_size']} B)", f"{r['cm_https']:.0f}",
        f"{r['cm_etcd']:.0f}", f"{r['cm_https'] / r['cm_etcd']:.2f}", f">= 1000/s {ok(r['cm_https'] >= 1000)}")
    row(f"creates/s Services,   32 clients HTTPS+token ({r['svc_size']} B)", f"{r['svc_https']:.0f}",
        f"{r['svc_etcd']:.0f}", f"{r['svc_https'] / r['svc_etcd']:.2f}", f">= 1000/s {ok(r['svc_https'] >= 1000)}")
    row("creates/s ConfigMaps, 32 clients plain HTTP", f"{r['cm_http']:.0f}", f"{r['cm_etcd']:.0f}",
        f"{r['cm_http'] / r['cm_etcd']:.2f}")
    row("creates/s Services,   32 clients plain HTTP", f"{r['svc_http']:.0f}", f"{r['svc_etcd']:.0f}",
        f"{r['svc_http'] / r['svc_etcd']:.2f}")
    if isinstance(r["on_etcd"], tuple):
        cm, svc = r["on_etcd"]
        row("creates/s ConfigMaps, HTTPS, svcnet --store etcd://", f"{cm:.0f}", f"{r['cm_etcd']:.0f}",
            f"{cm / r['cm_etcd']:.2f}")
        row("creates/s Services,   HTTPS, svcnet --store etcd://", f"{svc:.0f}", f"{r['svc_etcd']:.0f}",
            f"{svc / r['svc_etcd']:.2f}")
    else:
        row("creates/s, HTTPS, svcnet --store etcd://", r["on_etcd"])
    row(f"list {args.services} services, JSON ({r['list_bytes'] / 1e6:.1f} MB), s", f"{r['list_json']:.3f}",
        f"{r['list_etcd']:.3f}", f"{r['list_json'] / r['list_etcd']:.2f}", f"< 0.5 s {ok(r['list_json'] < 0.5)}")
    row(f"list {args.services} services, Table, s", f"{r['list_table']:.3f}", f"{r['list_etcd']:.3f}",
        f"{r['list_table'] / r['list_etcd']:.2f}")
    row(f"watch {args.watchers} watchers x {args.updates} updates, p50 ms", f"{r['w_p50'] * ms:.1f}",
        f"{r['e_p50'] * ms:.1f}", f"{r['w_p50'] / r['e_p50']:.2f}")
    row(f"watch {args.watchers} watchers x {args.updates} updates, p99 ms", f"{r['w_p99'] * ms:.1f}",
        f"{r['e_p99'] * ms:.1f}", f"{r['w_p99'] / r['e_p99']:.2f}", f"< 50 ms {ok(r['w_p99'] < 0.05)}")
    row(f"watch {args.watchers} watchers x {args.updates} updates, max ms", f"{r['w_max'] * ms:.1f}",
        f"{r['e_max'] * ms:.1f}")
    print()
    print(f"ratio svcnet/etcd creates/s (HTTPS): ConfigMaps {r['cm_https'] / r['cm_etcd']:.2f}, "
          f"Services {r['svc_https'] / r['svc_etcd']:.2f}")
    print(f"ratio svcnet/etcd list time (JSON): {r['list_json'] / r['list_etcd']:.2f}; "
          f"watch p99: {r['w_p99'] / r['e_p99']:.2f}")


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configmaps", type=int, default=3000, help="ConfigMaps created per run (default 3000)")
    parser.add_argument("--services", type=int, default=10000, help="Services created, then listed (10000)")
    parser.add_argument("--list-rounds", type=int, default=5, help="lists per form, median reported (5)")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.01, help="seconds between watched updates (0.01)")
    args = parser.parse_args()
    if min(args.configmaps, args.services, args.list_rounds, args.watchers, args.updates) < 1:
        parser.error("counts must be >= 1")
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(main(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(cli())
