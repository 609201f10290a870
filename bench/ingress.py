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
     the best and the median run are printed — goal svcnet >= 0.5 x nginx;
  2. added p99 latency at half of svcnet's maximum rate — goal <= 2 ms. wrk 4 has no fixed-rate mode (no -R)
     and wrk2 is not installed, so the rate is fixed by wrk's own `delay()` hook (a Lua script): N keep-alive
     connections each wait 1 ms after a response before sending the next request, N chosen so that N / 1.25 ms
     is half svcnet's measured maximum. The same N and think time run against the backend directly, nginx and
     svcnet (the achieved rate of each is printed: a slower target gets slightly fewer requests, never more);
     latencies are wrk's (send to end of response, C client, no Python on the client side);
     added p99 = p99(proxy) - p99(direct).
All three share this machine's cores with wrk (2 cores here), so every figure includes that contention.
Usage: .venv/bin/python bench/ingress.py [--seconds S] [--rounds N] [--rate R]   (PROFILE_INGRESS=FILE: cProfile the proxy)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKEND_IP, NGINX_IP, SVCNET_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
HOST = "bench.example.com"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def wait_port(ip: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ip}:{port} does not accept connections") from None
            time.sleep(0.05)


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

        self.groups: dict[str, int] = {}

    def start(self, name: str, cmd: list[str]) -> None:
        with (self.tmp / f"{name}.log").open("wb") as log:
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.groups[name] = self.procs[-1].pid

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU time used so far by the process group `name` (its own session)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.groups[name]:  # pgrp
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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


WRK_PACED = """
local delay_ms = 1
function init(args) delay_ms = tonumber(args[1]) end
function delay() return delay_ms end
function done(summary, latency, requests)
  io.write(string.format("PACED %d %d %d %d\\n", summary.requests, summary.duration,
                         latency:percentile(50), latency:percentile(99)))
end
"""


def paced(target: str, script: Path, connections: int, delay_ms: int, seconds: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) with `connections` keep-alive connections, each waiting `delay_ms` after a
    response before its next request (wrk's `delay()` hook)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Host: {HOST}", "-s", str(script),
                          f"http://{target}/small", "--", str(delay_ms)], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"PACED (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        raise RuntimeError(f"no figures in wrk's output: {out}")
    requests, duration_us, p50_us, p99_us = (int(g) for g in match.groups())
    return requests / (duration_us / 1e6), p50_us / 1000, p99_us / 1000


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per target and phase")
    parser.add_argument("--rate", type=float, default=0, help="latency phase rate (default: half svcnet's max)")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "BACKEND_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(*args.serve)
        return 0
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
            results: dict[str, dict[str, float]] = {name: {} for name in targets}
            for target in targets.values():
                wrk(target, 1)  # warm-up: connections, pools, caches
            rates: dict[str, list[float]] = {name: [] for name in targets}
            groups = {"direct": "backend", "nginx": "nginx-proxy", "svcnet": "svcnet"}
            cpu = dict.fromkeys(targets, 0.0)
            for _ in range(args.rounds):  # interleaved, so a burst of other load hits every target alike
                for name, target in targets.items():
                    before = procs.cpu_seconds(groups[name])
                    rates[name].append(wrk(target, args.seconds))
                    cpu[name] += procs.cpu_seconds(groups[name]) - before
            for name in targets:  # CPU per request: a figure that other load on the machine hardly moves
                results[name]["cpu_us"] = cpu[name] / (sum(rates[name]) * args.seconds) * 1e6
            for name, values in rates.items():
                results[name]["rate"] = max(values)
                results[name]["median"] = sorted(values)[len(values) // 2]
            rate = args.rate or results["svcnet"]["rate"] / 2
            script = Path(tmp) / "paced.lua"
            script.write_text(WRK_PACED)
            delay_ms = 1
            connections = max(1, round(rate * (delay_ms + 0.25) / 1000))  # 0.25 ms: a response's round trip
            paced_runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, target in targets.items():
                    paced_runs[name].append(paced(target, script, connections, delay_ms, args.seconds))
            for name, runs in paced_runs.items():  # the round with the median p99
                r = results[name]
                r["paced"], r["p50"], r["p99"] = sorted(runs, key=lambda run: run[2])[len(runs) // 2]
        finally:
            procs.stop()
    print(f"{'target':8} {'best req/s':>10} {'median':>8} {'CPU us/req':>10} {'paced req/s':>12} {'p50 ms':>8} "
          f"{'p99 ms':>8}  (paced: {connections} connections x {delay_ms} ms think time, aiming at {rate:.0f} req/s)")
    for name, r in results.items():
        print(f"{name:8} {r['rate']:10.0f} {r['median']:8.0f} {r['cpu_us']:10.1f} {r['paced']:12.0f} "
              f"{r['p50']:8.2f} {r['p99']:8.2f}")
    print("(CPU us/req: the proxy's own CPU time per request; for 'direct' the backend's. The backend's CPU is "
          "not in the proxies' figures.)")
    s, n, d = results["svcnet"], results["nginx"], results["direct"]
    print(f"requests/s svcnet/nginx {s['rate'] / n['rate']:.2f} best, {s['median'] / n['median']:.2f} median "
          f"(goal >= 0.5), by CPU per request {n['cpu_us'] / s['cpu_us']:.2f}; "
          f"added p99 svcnet {s['p99'] - d['p99']:.2f} ms, nginx {n['p99'] - d['p99']:.2f} ms (goal <= 2 ms)")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    sys.exit(asyncio.run(main()))
