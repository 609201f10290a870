"""Userspace proxy benchmark: svcnet's userspace proxy against HAProxy (`mode tcp`, one thread) and a direct
connection, same backend (Debian's nginx, one worker) and same clients, in one run.

Figures (goals from the issue):
  1. bulk throughput: 8 parallel downloads of 128 MiB (1 GiB in all) with curl — goal >= 0.8 x HAProxy;
  2. new-connection rate: wrk, one short request per connection (`Connection: close`), 16 connections, 5 s per
     target taken as 1 s slices that alternate between the targets (the order rotating each round), so that
     load from elsewhere on a shared machine falls on every target alike — goal >= 0.5 x HAProxy; the spread
     of the per-round svcnet/HAProxy ratios is printed too;
  3. added p99 latency at half of svcnet's maximum connection rate (the median of its 1 s wrk rounds from 2) —
     goal <= 1 ms. Measured OPEN-LOOP at one constant rate for all three targets by a generator in its own
     process(es) (this script with `--load`, --load-procs; its own epoll set and non-blocking sockets, no task
     or protocol object per sample, so that it takes as little of the shared cores as it can): sample i is due
     at start + i / rate, released by epoll waits of whole milliseconds, and is one new TCP connection with one
     short request (`Connection: close`); its latency runs from its SCHEDULED time to the end of the answer, so
     generator lag counts (no coordinated omission).
     The generator prints its CPU use and send lag so that it can be seen not to be the bottleneck. --rounds
     rounds, interleaved in a rotating order; per round added p99 = p99(proxy) - p99(direct); the median round
     and min/max are printed. TIME_WAIT: the rate phase leaves ~100k sockets in TIME_WAIT, so before this phase
     the script waits (at most --tw-wait s) until the count (/proc/net/sockstat) is back near its value before
     the rate phase, and each generator connects from its own source address, fresh per round (127.1.R.P), so
     its 4-tuples never meet an earlier round's; the proxies' own connections to nginx cannot be moved that way.
     A sample closes its connection with a reset once the answer is complete, so that the client side leaves no
     TIME_WAIT behind on either end (measured: with ~100k TIME_WAIT sockets on loopback every target's latency,
     HAProxy's as much as svcnet's, grows to tens of ms); only the proxies' connections to nginx leave some.
     The generators share the 2 cores with the proxies, so every figure includes that contention.
svcnet runs for real: an API server in loopback mode, a selectorless Service (ClusterIP 127.113.0.1:80) with a
hand-written EndpointSlice pointing at nginx, and `svcnet proxy`. Everything is on 127.0.0.0/8, the services in a
range of their own (127.112.0.0/12, so that the run can share the machine with `svcnet up`); processes run in
their own process groups and are killed, with the temp dir, on any exit. Install the anchors with
`scripts/install.sh --bench`.
Usage: .venv/bin/python bench/proxy_userspace.py [--seconds S] [--rate R] [--rounds N] [--latency-seconds S]
       [--load-procs P] [--tw-wait S]
(PROFILE_PROXY=FILE runs the proxy under cProfile.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import json
import os
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from common import Processes, free_port, median, percentile_ms, run_generators, wait_port

REPO = Path(__file__).resolve().parents[1]
SVCNET = str(REPO / ".venv" / "bin" / "svcnet")
BACKEND_IP, HAPROXY_IP, CLUSTER_IP = "127.0.0.2", "127.0.0.3", "127.113.0.1"
BIG = 128 << 20


def start_nginx(p: Processes, port: int) -> None:
    www = p.tmp / "www"
    www.mkdir()
    (www / "small").write_text("ok\n")
    with (www / "big").open("wb") as f:
        f.truncate(BIG)
    conf = p.tmp / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; pid {p.tmp}/nginx.pid; error_log {p.tmp}/nginx.err;
events {{ worker_connections 8192; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_timeout 0;
  client_body_temp_path {p.tmp}; proxy_temp_path {p.tmp}; fastcgi_temp_path {p.tmp};
  uwsgi_temp_path {p.tmp}; scgi_temp_path {p.tmp};
  server {{ listen {BACKEND_IP}:{port} backlog=4096; root {www}; }} }}
""")
    p.start("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(p.tmp)])
    wait_port(BACKEND_IP, port)


def start_haproxy(p: Processes, backend_port: int) -> int:
    port = free_port(HAPROXY_IP)
    conf = p.tmp / "haproxy.cfg"
    conf.write_text(f"""global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend f
  bind {HAPROXY_IP}:{port} backlog 4096
  default_backend b
backend b
  server s1 {BACKEND_IP}:{backend_port}
""")
    p.start("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", str(conf), "-db"])
    wait_port(HAPROXY_IP, port)
    return port


async def start_svcnet(p: Processes, backend_port: int) -> None:
    api = p.tmp / "api"
    p.start("apiserver", [SVCNET, "apiserver", "--data-dir", str(api), "--port", str(free_port()),
                          "--service-cluster-ip-range", "127.112.0.0/12"])
    kubeconfig = api / "kubeconfig"
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the API server did not start")
        await asyncio.sleep(0.05)
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = p.tmp / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    headers = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca)))
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        base = cluster["server"]
        for path, body in _objects(backend_port):
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(base + path, json=body) as response:
                        if response.status < 300:
                            break
                        raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
                await asyncio.sleep(0.1)
    profile = os.environ.get("PROFILE_PROXY")  # a file: run the proxy under cProfile
    command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "svcnet.cli.main"] if profile else [SVCNET]
    p.start("proxy", [*command, "proxy", "--hostname-override", "bench", "--node-ip", "127.0.0.1",
                      "--metrics-bind-address", f"127.0.0.1:{free_port()}",
                      "--healthz-bind-address", f"127.0.0.1:{free_port()}"], {"KUBECONFIG": str(kubeconfig)})
    wait_port(CLUSTER_IP, 80)


def _objects(backend_port: int) -> list[tuple[str, dict[str, Any]]]:
    ns = "/api/v1/namespaces/default"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
               "spec": {"clusterIP": CLUSTER_IP, "ports": [{"port": 80, "targetPort": backend_port}]}}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "bench-1", "labels": {"kubernetes.io/service-name": "bench"}},
                      "addressType": "IPv4", "ports": [{"name": "", "port": backend_port, "protocol": "TCP"}],
                      "endpoints": [{"addresses": [BACKEND_IP], "conditions": {"ready": True}}]}
    return [(f"{ns}/services", service), ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                                          endpoint_slice)]


def bulk(target: str) -> float:
    """GB/s for 8 parallel 128 MiB downloads."""
    start = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", f"http://{target}/big"]) for _ in range(8)]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError(f"a download through {target} failed")
    return 8 * BIG / (time.monotonic() - start) / 1e9


def interleaved_rates(targets: dict[str, str], seconds: int) -> tuple[dict[str, list[float]], list[float]]:
    """Conn/s per target of `seconds` 1 s wrk slices taken round by round, each round in a rotated order; and each
    round's svcnet/haproxy ratio."""
    names = list(targets)
    slices: dict[str, list[float]] = {name: [] for name in names}
    ratios = []
    for round_ in range(seconds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            slices[name].append(connection_rate(targets[name], 1))
        ratios.append(slices["svcnet"][-1] / slices["haproxy"][-1])
    return slices, ratios


def connection_rate(target: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "-H", "Connection: close", f"http://{target}/small"],
                         capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"  note: wrk socket errors through {target}: {errors.group(1)}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no rate in wrk's output: {out}")
    return float(match.group(1))


SKIP = 0.1  # the first tenth of each open-loop run is warm-up, left out of the figures


class OpenLoop:
    """Constant-rate load, one new TCP connection per sample: sample i is due at start + i / rate, whatever the
    answers do; its latency runs from that due time to the end of its answer (no coordinated omission).

    Kept lean so that the generator perturbs the machine as little as it can (it shares the cores with what it
    measures): its own epoll set and non-blocking sockets, no task or protocol object per sample. A sample sends
    its request as soon as the connection is up (on loopback, usually right after connect()), reads the answer
    until its Content-Length is complete, and closes."""

    def __init__(self, host: str, rate: float, seconds: float) -> None:
        self.request = f"GET /small HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        self.rate = rate
        self.total = int(rate * seconds)
        self.samples: list[tuple[float, float]] = []  # (due, seconds from due to the end of the answer)
        self.lags: list[float] = []  # seconds from due to the connect call
        self.errors: list[str] = []
        self._open: dict[int, tuple[socket.socket, float, bytearray, bool]] = {}  # fd -> (sock, due, buf, sent)
        self._epoll = select.epoll()

    def run(self, ip: str, port: int, source: str) -> None:
        interval, start, i = 1 / self.rate, time.perf_counter() + 0.05, 0
        deadline = start + self.total * interval + 10
        while (i < self.total or self._open) and time.perf_counter() < deadline:
            now = time.perf_counter()
            while i < self.total and start + i * interval <= now:
                self._start(ip, port, source, start + i * interval, now)
                i += 1
            wait = max(start + i * interval - time.perf_counter(), 0) if i < self.total else 0.1
            for fd, events in self._epoll.poll(wait):
                self._event(fd, events)
        for fd in list(self._open):
            self._finish(fd, "no answer")

    def _start(self, ip: str, port: int, source: str, due: float, now: float) -> None:
        self.lags.append(now - due)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            sock.bind((source, 0))
            error = sock.connect_ex((ip, port))
        except OSError as exc:
            sock.close()
            self.errors.append(f"connect: {exc!r}")
            return
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            self.errors.append(f"connect: {os.strerror(error)}")
            return
        fd = sock.fileno()
        self._open[fd] = (sock, due, bytearray(), False)
        sent = self._send(fd)
        if fd in self._open:  # (a failed send closed it)
            self._epoll.register(fd, select.EPOLLIN if sent else select.EPOLLOUT | select.EPOLLIN)

    def _send(self, fd: int) -> bool:
        """Send the request if the connection is up: True when sent (False while connecting: its output edge
        comes later; a failure finishes the sample)."""
        sock, due, buf, _ = self._open[fd]
        try:
            sock.send(self.request)  # far smaller than a socket buffer: all or nothing
        except (BlockingIOError, OSError) as exc:
            if not isinstance(exc, BlockingIOError) and exc.errno != errno.ENOTCONN:
                self._finish(fd, f"send: {exc!r}")
            return False
        self._open[fd] = (sock, due, buf, True)
        return True

    def _event(self, fd: int, events: int) -> None:
        if fd not in self._open:
            return
        sock, due, buf, sent = self._open[fd]
        if not sent:
            if events & (select.EPOLLERR | select.EPOLLHUP):
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self._finish(fd, f"connect: {os.strerror(error) if error else 'hang-up'}")
            elif events & select.EPOLLOUT and self._send(fd) and fd in self._open:
                self._epoll.modify(fd, select.EPOLLIN)
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(fd, f"recv: {exc!r}")
            return
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            match = _CONTENT_LENGTH.search(buf, 0, end)
            if len(buf) >= end + 4 + (int(match.group(1)) if match else 0):
                latency = time.perf_counter() - due
                if buf.startswith(b"HTTP/1.1 200 "):
                    self.samples.append((due, latency))
                    self._finish(fd, "")
                else:
                    self._finish(fd, "answer other than 200")
                return
        if not data:
            self._finish(fd, "closed before the answer ended")

    def _finish(self, fd: int, error: str) -> None:
        sock = self._open.pop(fd)[0]
        if error:
            self.errors.append(error)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)  # no TIME_WAIT left by either side
        sock.close()  # leaves the epoll set with it


_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def load_main(ip: str, port: int, rate: float, seconds: float, source: str) -> None:
    """`--load`: one generator process, connecting from `source`; prints its figures as one JSON line."""
    gen = OpenLoop(ip, rate, seconds)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    gen.run(ip, port, source)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    first = min((due for due, _ in gen.samples), default=0.0) + SKIP * seconds
    missing = gen.total - len(gen.samples) - len(gen.errors)
    print(json.dumps({"latencies": [lat for due, lat in gen.samples if due >= first],
                      "lags": gen.lags[int(len(gen.lags) * SKIP):], "cpu": cpu, "wall": wall,
                      "errors": len(gen.errors) + missing,
                      "first_error": gen.errors[0] if gen.errors else ("no answer" if missing else "")}))


def open_loop(target: str, rate: float, seconds: int, procs: int, round_: int) -> dict[str, float]:
    """p50/p99 (ms) etc. of an open-loop run at `rate` against `target`, split over `procs` generator processes,
    each connecting from its own source address (fresh per round: 127.1.<round>.<proc>)."""
    ip, port = target.rsplit(":", 1)
    results = run_generators(target, [[sys.executable, __file__, "--load", ip, port, str(rate / procs), str(seconds),
                                       f"127.1.{round_ % 250 + 1}.{proc + 1}"] for proc in range(procs)], seconds)
    latencies = sorted(lat for r in results for lat in r["latencies"])
    lags = sorted(lag for r in results for lag in r["lags"])
    for r in results:
        if r["errors"]:
            print(f"  note: {r['errors']} open-loop samples against {target} failed, first: {r['first_error']}")
    return {"p50": percentile_ms(latencies, 50), "p99": percentile_ms(latencies, 99),
            "p999": percentile_ms(latencies, 99.9),
            "lag_p99": percentile_ms(lags, 99), "gen_cpu": max(r["cpu"] / r["wall"] for r in results),
            "errors": sum(r["errors"] for r in results), "rate": len(latencies) / (seconds * (1 - SKIP))}


def time_wait() -> int:
    """TCP sockets in TIME_WAIT in this network namespace (what `ss -s` shows as timewait)."""
    match = re.search(r"^TCP:.* tw (\d+)", Path("/proc/net/sockstat").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def wait_time_wait(baseline: int, deadline_s: float) -> None:
    """Wait until the TIME_WAIT sockets of the rate phase have expired (count back to `baseline` + 1000), at most
    `deadline_s` seconds; print what was found."""
    begin = time.monotonic()
    before = count = time_wait()
    while count > baseline + 1000 and time.monotonic() - begin < deadline_s:
        time.sleep(1)
        count = time_wait()
    print(f"  TIME_WAIT before the rate phase {baseline}, after it {before}, at the latency phase {count} "
          f"(waited {time.monotonic() - begin:.0f} s)")


def latency_rounds(targets: dict[str, str], rate: float, args: argparse.Namespace,
                   results: dict[str, dict[str, float]]) -> list[dict[str, float]]:
    """Open loop at `rate`, rounds interleaved in a rotating order; per round the added p99 of each proxy. Stores
    the figures of each target's median-p99 round in `results`."""
    names = list(targets)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    added = []
    for round_ in range(args.rounds):
        tw = time_wait()
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            runs[name].append(open_loop(targets[name], rate, args.latency_seconds, args.load_procs, round_))
        direct = runs["direct"][-1]["p99"]
        added.append({"haproxy": runs["haproxy"][-1]["p99"] - direct, "svcnet": runs["svcnet"][-1]["p99"] - direct})
        print(f"  latency round {round_ + 1}: p99 " + ", ".join(f"{n} {runs[n][-1]['p99']:.2f}" for n in names)
              + f" ms; TIME_WAIT at start {tw}")
    for name, named_runs in runs.items():
        middle = sorted(named_runs, key=lambda run: run["p99"])[len(named_runs) // 2]
        results[name].update({f"open_{key}": value for key, value in middle.items()})
        results[name]["open_errors"] = sum(run["errors"] for run in named_runs)
        results[name]["open_gen_cpu"] = max(run["gen_cpu"] for run in named_runs)
        results[name]["open_lag_p99"] = max(run["lag_p99"] for run in named_runs)
    return added


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="1 s wrk rounds of the connection-rate phase")
    parser.add_argument("--rate", type=float, default=0,
                        help="latency phase rate (default: half the median of svcnet's wrk rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved open-loop rounds per target")
    parser.add_argument("--latency-seconds", type=int, default=3, help="length of each open-loop round")
    parser.add_argument("--load-procs", type=int, default=1, help="open-loop generator processes per round")
    parser.add_argument("--tw-wait", type=float, default=75,
                        help="at most this many seconds to wait for the rate phase's TIME_WAIT sockets to expire")
    parser.add_argument("--load", nargs=5, metavar=("IP", "PORT", "RATE", "SECONDS", "SOURCE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is None and (min(args.seconds, args.rounds, args.latency_seconds, args.load_procs) < 1
                              or args.rate < 0 or args.tw_wait < 0):
        parser.error("--seconds, --rounds, --latency-seconds and --load-procs must be >= 1, --rate and --tw-wait "
                     ">= 0")
    return args


async def main() -> int:
    args = parse_args()
    if args.load:
        ip, port, rate, seconds, source = args.load
        load_main(ip, int(port), float(rate), float(seconds), source)
        return 0
    for tool in ("nginx", "haproxy", "wrk", "curl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: run scripts/install.sh --bench", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-proxy-") as tmp:
        procs = Processes(Path(tmp))
        try:
            backend_port = free_port(BACKEND_IP)
            start_nginx(procs, backend_port)
            haproxy_port = start_haproxy(procs, backend_port)
            await start_svcnet(procs, backend_port)
            targets = {"direct": f"{BACKEND_IP}:{backend_port}", "haproxy": f"{HAPROXY_IP}:{haproxy_port}",
                       "svcnet": f"{CLUSTER_IP}:80"}
            results: dict[str, dict[str, float]] = {name: {} for name in targets}
            for name, target in targets.items():
                results[name]["gbps"] = bulk(target)
            baseline = time_wait()
            slices, ratios = interleaved_rates(targets, args.seconds)
            for name, values in slices.items():
                results[name]["rate"] = sum(values) / len(values)
            rate = args.rate or median(slices["svcnet"]) / 2
            wait_time_wait(baseline, args.tw_wait)
            added = latency_rounds(targets, rate, args, results)
        finally:
            procs.stop()
    report(results, ratios, added, rate, args)
    return 0


def report(results: dict[str, dict[str, float]], ratios: list[float], added: list[dict[str, float]], rate: float,
           args: argparse.Namespace) -> None:
    print(f"{'target':8} {'bulk GB/s':>10} {'conn/s':>9} | open loop at {rate:.0f} conn/s: {'p50 ms':>7} "
          f"{'p99 ms':>7} {'p99.9 ms':>8} {'send lag p99':>12} {'gen CPU':>7} {'errors':>6}")
    for name, r in results.items():
        print(f"{name:8} {r['gbps']:10.2f} {r['rate']:9.0f} | {r['open_rate']:20.0f} conn/s {r['open_p50']:7.2f} "
              f"{r['open_p99']:7.2f} {r['open_p999']:8.2f} {r['open_lag_p99']:9.2f} ms {r['open_gen_cpu']:6.0%} "
              f"{r['open_errors']:6.0f}")
    print("(p50/p99/p99.9: each target's round with the median p99; send lag p99 and gen CPU: the worst round and "
          "the busiest generator process, over 80% CPU means it may be the bottleneck: raise --load-procs.)")
    s, h = results["svcnet"], results["haproxy"]
    print(f"throughput svcnet/haproxy {s['gbps'] / h['gbps']:.2f} (goal >= 0.8); "
          f"connection rate svcnet/haproxy {s['rate'] / h['rate']:.2f} (goal >= 0.5)")
    print(f"connection rate svcnet/haproxy per 1 s round: min {min(ratios):.2f} median {median(ratios):.2f} "
          f"max {max(ratios):.2f}")
    for proxy in ("svcnet", "haproxy"):
        values = [a[proxy] for a in added]
        print(f"added p99 {proxy} at {rate:.0f} conn/s: median {median(values):.2f} ms, min {min(values):.2f}, "
              f"max {max(values):.2f} (goal <= 1 ms; {args.rounds} rounds of {args.latency_seconds} s)")


if __name__ == "__main__":
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    sys.exit(asyncio.run(main()))
