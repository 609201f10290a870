"""Ingress HTTP proxy benchmark: svcnet's ingress data plane against nginx as a reverse proxy, same backend, same
clients, in one run.

Setup (all on 127.0.0.0/8, temp dir, process groups killed on any exit):
  backend  Debian's nginx, 1 worker, serving a 3-byte static file with keep-alive (127.0.0.2);
  nginx    a second nginx, 1 worker, `proxy_pass` to an upstream block with `keepalive 32`, `proxy_http_version 1.1`,
           `Connection ""`, and the X-Forwarded-* / X-Real-IP headers ingress-nginx sets (127.0.0.3);
  svcnet   `IngressServer` under uvloop in its own process, a RouteTable with one host and one Prefix path to the
           backend, looked up per request with `svcnet.ingress.match.lookup` (127.0.0.4).
Figures (goals from the issue):
  1. requests/s with wrk (1 thread, 32 keep-alive connections), --rounds runs of --seconds per target,
     interleaved (direct, nginx, svcnet, direct, ...) so that load from elsewhere on the machine hits each alike;
     the best and the median run are printed, and svcnet/nginx per round (min/median/max) — goal >= 0.5;
     with each proxy's CPU time per request (its process group's utime + stime over the requests served), the
     figure other load on the machine hardly moves;
  2. added p99 latency at half of svcnet's maximum rate — goal <= 2 ms. Measured OPEN-LOOP at one constant rate
     for all three targets (wrk 4 has no constant-rate mode, and a closed loop that waits for each answer lowers
     its rate when the target slows down, hiding exactly the queueing a p99 should show). The generator is this
     script (`--load`, uvloop, in its own process(es), --load-procs): requests are scheduled at fixed intervals
     of 1/rate over 32 keep-alive connections and released by a 1 ms timer tick (libuv's timer resolution), a
     request whose scheduled time finds every connection busy waits for the next free one; each latency runs
     from the request's SCHEDULED time to the end of its response, so generator lag and waiting count
     (no coordinated omission). The generator reports its own CPU use and send lag so that it can be seen not to
     be the bottleneck. Rounds are interleaved like phase 1; per round, added p99 = p99(proxy) - p99(direct);
     the median round and the min/max are printed.
All targets share this machine's cores with the load generators (2 cores here), so every figure includes that
contention.
Usage: .venv/bin/python bench/ingress.py [--seconds S] [--rounds N] [--rate R] [--load-procs P]
       (PROFILE_INGRESS=FILE: cProfile the proxy)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from common import Processes, free_port, median, percentile_ms, run_generators, wait_port

REPO = Path(__file__).resolve().parents[1]
BACKEND_IP, NGINX_IP, SVCNET_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
HOST = "bench.example.com"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _nginx(p: Processes, name: str, server_block: str) -> None:
    prefix = p.tmp / name
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
  uwsgi_temp_path {prefix}; scgi_temp_path {prefix}; keepalive_requests 1000000;
  {server_block} }}
""")
    p.start(name, [NGINX, "-c", str(conf), "-p", str(prefix)])


def start_backend(p: Processes, port: int) -> None:
    www = p.tmp / "www"
    www.mkdir()
    (www / "small").write_text("ok\n")
    _nginx(p, "backend", f"server {{ listen {BACKEND_IP}:{port} backlog=4096; root {www}; }}")
    wait_port(BACKEND_IP, port)


def start_nginx_proxy(p: Processes, port: int, backend_port: int) -> None:
    _nginx(p, "nginx-proxy", f"""upstream backend {{ server {BACKEND_IP}:{backend_port}; keepalive 32; }}
  server {{ listen {NGINX_IP}:{port} backlog=4096; server_name {HOST};
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port; proxy_set_header X-Forwarded-Proto $scheme; }} }}""")
    wait_port(NGINX_IP, port)


def start_svcnet(p: Processes, port: int, backend_port: int) -> None:
    profile = os.environ.get("PROFILE_INGRESS")
    command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), __file__,
               "--serve", str(port), str(backend_port)]
    p.start("svcnet", command)
    wait_port(SVCNET_IP, port)


async def serve(port: int, backend_port: int) -> None:
    """The svcnet side: one IngressServer until SIGTERM."""
    sys.path.insert(0, str(REPO))
    from svcnet.ingress import model, proxy

    backend = model.Backend("default/bench:80", (model.Endpoint(BACKEND_IP, backend_port),))
    route = model.Route(model.PathMatch(model.PathType.PREFIX, "/"), "ingress/default/bench", backends=(backend,))
    table = model.RouteTable({port: model.PortRoutes(port, exact_hosts={HOST: model.VirtualHost((route,))})})
    server = proxy.IngressServer(proxy.IngressConfig(bind_address=SVCNET_IP))
    server.set_table(table)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()


def wrk(target: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"Host: {HOST}", f"http://{target}/small"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "Socket errors" in line or "Non-2xx" in line:
            print(f"  note: wrk through {target}: {line.strip()}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no rate in wrk's output: {out}")
    return float(match.group(1))


REQUEST = f"GET /small HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
LOAD_CONNECTIONS = 32
SKIP = 0.1  # the first tenth of each open-loop run is warm-up, left out of the figures


class _LoadConnection(asyncio.Protocol):
    """One keep-alive connection of the open-loop generator: one request at a time, answers read by Content-Length."""

    def __init__(self, gen: OpenLoop) -> None:
        self.gen = gen
        self.buf = b""
        self.scheduled = 0.0  # of the request in flight
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        match = _CONTENT_LENGTH.search(buf, 0, end)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(buf) < total:
            self.buf = buf
            return
        self.buf = buf[total:]
        self.gen.answered(self, buf.startswith(b"HTTP/1.1 200 "))

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost += 1


class OpenLoop:
    """Constant-rate load: request i is due at start + i / rate, whatever the answers do."""

    def __init__(self, rate: float, seconds: float) -> None:
        self.rate = rate
        self.total = int(rate * seconds)
        self.idle: list[_LoadConnection] = []
        self.waiting: deque[float] = deque()  # due times that found every connection busy
        self.latencies: list[float] = []  # (due, seconds from due to the end of the answer)
        self.lags: list[float] = []  # seconds from due to the write
        self.dues: list[float] = []
        self.errors = 0
        self.lost = 0
        self.queued = 0
        self.done = 0
        self.finished = asyncio.Event()

    def send(self, conn: _LoadConnection, due: float, now: float) -> None:
        conn.scheduled = due
        conn.transport.write(REQUEST)
        self.lags.append(now - due)

    def answered(self, conn: _LoadConnection, ok: bool) -> None:
        now = time.perf_counter()
        self.latencies.append(now - conn.scheduled)
        self.dues.append(conn.scheduled)
        self.errors += not ok
        self.done += 1
        if self.waiting:
            self.send(conn, self.waiting.popleft(), now)
        else:
            self.idle.append(conn)
        if self.done == self.total:
            self.finished.set()

    async def run(self, ip: str, port: int, connections: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(connections):
            _, conn = await loop.create_connection(lambda: _LoadConnection(self), ip, port)
            self.idle.append(conn)
        interval = 1 / self.rate
        start = time.perf_counter() + 0.05
        i = 0
        while i < self.total:
            now = time.perf_counter()
            while i < self.total and start + i * interval <= now:
                due = start + i * interval
                if self.idle:
                    self.send(self.idle.pop(), due, now)
                else:
                    self.queued += 1
                    self.waiting.append(due)
                i += 1
            await asyncio.sleep(max(start + i * interval - time.perf_counter(), 0.001))  # never spin
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), 10)


async def load_main(ip: str, port: int, rate: float, seconds: float, connections: int) -> None:
    """`--load`: one generator process; prints its figures as one JSON line."""
    gen = OpenLoop(rate, seconds)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await gen.run(ip, port, connections)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    first = min(gen.dues, default=0.0) + SKIP * seconds
    kept = [lat for due, lat in zip(gen.dues, gen.latencies, strict=True) if due >= first]
    print(json.dumps({"latencies": kept, "lags": gen.lags[int(len(gen.lags) * SKIP):], "cpu": cpu, "wall": wall,
                      "errors": gen.errors + gen.total - gen.done, "lost": gen.lost, "queued": gen.queued}))


def open_loop(target: str, rate: float, seconds: int, procs: int) -> dict[str, float]:
    """p50/p99 (ms) of an open-loop run at `rate` against `target`, split over `procs` generator processes."""
    ip, port = target.rsplit(":", 1)
    per = max(1, LOAD_CONNECTIONS // procs)
    command = [sys.executable, __file__, "--load", ip, port, str(rate / procs), str(seconds), str(per)]
    results = run_generators(target, [command] * procs, seconds)
    latencies = sorted(lat for r in results for lat in r["latencies"])
    lags = sorted(lag for r in results for lag in r["lags"])
    return {"p50": percentile_ms(latencies, 50), "p99": percentile_ms(latencies, 99),
            "p999": percentile_ms(latencies, 99.9),
            "lag_p99": percentile_ms(lags, 99), "gen_cpu": max(r["cpu"] / r["wall"] for r in results),
            "errors": sum(r["errors"] + r["lost"] for r in results), "queued": sum(r["queued"] for r in results),
            "rate": len(latencies) / (seconds * (1 - SKIP))}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per target and phase")
    parser.add_argument("--rate", type=float, default=0, help="latency phase rate (default: half svcnet's max)")
    parser.add_argument("--load-procs", type=int, default=1, help="open-loop generator processes per run")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "BACKEND_PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=5, metavar=("IP", "PORT", "RATE", "SECONDS", "CONNECTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(*args.serve)
        return 0
    if args.load:
        ip, port, rate, seconds, connections = args.load
        await load_main(ip, int(port), float(rate), float(seconds), int(connections))
        return 0
    if args.seconds < 1 or args.rounds < 1 or args.load_procs < 1 or args.rate < 0:
        print("--seconds, --rounds and --load-procs must be >= 1, --rate >= 0", file=sys.stderr)
        return 2
    for tool in ("wrk", NGINX):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run scripts/install.sh --bench", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-ingress-") as tmp:
        procs = Processes(Path(tmp))
        try:
            os.chmod(tmp, 0o755)  # nginx workers run as nobody
            backend_port = free_port(BACKEND_IP)
            start_backend(procs, backend_port)
            targets = {"direct": f"{BACKEND_IP}:{backend_port}", "nginx": f"{NGINX_IP}:{free_port(NGINX_IP)}",
                       "svcnet": f"{SVCNET_IP}:{free_port(SVCNET_IP)}"}
            start_nginx_proxy(procs, int(targets["nginx"].rsplit(":", 1)[1]), backend_port)
            start_svcnet(procs, int(targets["svcnet"].rsplit(":", 1)[1]), backend_port)
            results, ratios = max_rates(procs, targets, args.seconds, args.rounds)
            rate = args.rate or results["svcnet"]["median"] / 2
            added = latencies(targets, results, rate, args)
        finally:
            procs.stop()
    report(results, ratios, added, rate, args)
    return 0


def max_rates(procs: Processes, targets: dict[str, str], seconds: int,
              rounds: int) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Phase 1: wrk, interleaved rounds; requests/s (best, median), CPU per request, svcnet/nginx per round."""
    for target in targets.values():
        wrk(target, 1)  # warm-up: connections, pools, caches
    rates: dict[str, list[float]] = {name: [] for name in targets}
    groups = {"direct": "backend", "nginx": "nginx-proxy", "svcnet": "svcnet"}
    cpu = dict.fromkeys(targets, 0.0)
    for _ in range(rounds):  # interleaved, so a burst of other load hits every target alike
        for name, target in targets.items():
            before = procs.cpu_seconds(groups[name])
            rates[name].append(wrk(target, seconds))
            cpu[name] += procs.cpu_seconds(groups[name]) - before
    results: dict[str, dict[str, float]] = {}
    for name, values in rates.items():  # CPU per request: a figure that other load on the machine hardly moves
        results[name] = {"rate": max(values), "median": median(values),
                         "cpu_us": cpu[name] / (sum(values) * seconds) * 1e6}
    return results, [s / n for s, n in zip(rates["svcnet"], rates["nginx"], strict=True)]


def latencies(targets: dict[str, str], results: dict[str, dict[str, float]], rate: float,
              args: argparse.Namespace) -> list[dict[str, float]]:
    """Phase 2: open-loop at `rate`, interleaved rounds; per round the added p99 of each proxy."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    added = []
    for _ in range(args.rounds):
        for name, target in targets.items():
            runs[name].append(open_loop(target, rate, args.seconds, args.load_procs))
        direct = runs["direct"][-1]["p99"]
        added.append({"nginx": runs["nginx"][-1]["p99"] - direct, "svcnet": runs["svcnet"][-1]["p99"] - direct})
    for name, named_runs in runs.items():  # the round with the median p99
        middle = sorted(named_runs, key=lambda run: run["p99"])[len(named_runs) // 2]
        results[name].update({f"open_{key}": value for key, value in middle.items()})
        results[name]["open_errors"] = sum(run["errors"] for run in named_runs)
        results[name]["open_gen_cpu"] = max(run["gen_cpu"] for run in named_runs)
    return added


def report(results: dict[str, dict[str, float]], ratios: list[float], added: list[dict[str, float]], rate: float,
           args: argparse.Namespace) -> None:
    print(f"{'target':8} {'best req/s':>10} {'median':>8} {'CPU us/req':>10} | open loop at {rate:.0f} req/s: "
          f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'send lag p99':>12} {'gen CPU':>7} {'errors':>6}")
    for name, r in results.items():
        print(f"{name:8} {r['rate']:10.0f} {r['median']:8.0f} {r['cpu_us']:10.1f} | {r['open_rate']:21.0f} req/s "
              f"{r['open_p50']:7.2f} {r['open_p99']:7.2f} {r['open_p999']:8.2f} {r['open_lag_p99']:9.2f} ms "
              f"{r['open_gen_cpu']:6.0%} {r['open_errors']:6.0f}")
    print("(CPU us/req: the proxy's own CPU time per request; for 'direct' the backend's. The backend's CPU is "
          "not in the proxies' figures. p99 etc.: the round with the median p99; gen CPU: the busiest generator "
          "process's CPU use, over 80% means it may be the bottleneck: raise --load-procs.)")
    s, n = results["svcnet"], results["nginx"]
    low, mid, high = min(ratios), median(ratios), max(ratios)
    print(f"requests/s svcnet/nginx per round: min {low:.2f}, median {mid:.2f}, max {high:.2f} (goal >= 0.5); "
          f"by CPU per request {n['cpu_us'] / s['cpu_us']:.2f}")
    for proxy in ("svcnet", "nginx"):
        values = [a[proxy] for a in added]
        print(f"added p99 {proxy} at {rate:.0f} req/s: median {median(values):.2f} ms, min {min(values):.2f}, "
              f"max {max(values):.2f} (goal <= 2 ms; {args.rounds} rounds of {args.seconds} s)")


if __name__ == "__main__":
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    sys.exit(asyncio.run(main()))
