"""What the benchmarks share: free ports, waiting for a listener, the processes a run starts (each in its own
session, so a stop kills its whole group, and its CPU time can be read), and percentiles.

Run a benchmark as a script (`.venv/bin/python bench/NAME.py`): its folder is then on sys.path, so `import common`
finds this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port(ip: str = "127.0.0.1") -> int:
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
    """The processes of one run, logging to `tmp/NAME.log`; `stop` ends them newest first."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.groups: dict[str, int] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **(env or {})})
        self.procs.append(proc)
        self.groups[name] = proc.pid
        return proc

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


def percentile_ms(values: list[float], q: float) -> float:
    """The q-th percentile of sorted `values` (seconds), in milliseconds; NaN when there are none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def run_generators(target: str, commands: list[list[str]], seconds: float) -> list[dict[str, Any]]:
    """Run load generator processes (`commands`) side by side against `target`; each one's JSON line, parsed."""
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for command in commands]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=seconds + 60)
        if child.returncode:
            raise RuntimeError(f"load generator failed against {target} (exit {child.returncode})")
        results.append(json.loads(out))
    return results
