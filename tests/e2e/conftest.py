"""End-to-end fixtures: a real `svcnet apiserver` subprocess, the real kubectl, HTTP helpers.

One server per test module (`server` fixture, module-scoped) on a free loopback port in a temporary data dir.
Readiness is polled with a deadline (the kubeconfig file appears and /readyz answers 200); the process is always
terminated at the end (SIGTERM, then SIGKILL if it does not exit in time). Tests create their own namespaces
(`ns` fixture) so they do not see each other's objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
import requests
import yaml

KUBECTL = Path("/usr/bin/kubectl")
REPO = Path(__file__).resolve().parents[2]
SVCNET = REPO / ".venv" / "bin" / "svcnet"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
KUBECTL_TIMEOUT = 60.0

requires_kubectl = pytest.mark.skipif(not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(requires_kubectl)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 — keep polling, report the last error on timeout
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" +
                                 (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"kubectl {' '.join(self.args)} -> rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """Split `kubectl get` table output into (header, rows) on runs of 2+ spaces (cells may contain one space)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return [], []
    split = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return split[0], split[1:]


def fixed_table(text: str) -> list[dict[str, str]]:
    """Parse aligned `kubectl` output by the header's column offsets (keeps empty cells)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    names = lines[0].split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{name: line[a:b].strip() for name, (a, b) in zip(names, bounds, strict=True)} for line in lines[1:]]


class LineReader:
    """Reads a subprocess' stdout lines into a queue from a thread, so tests can wait for lines with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: Queue[str | None] = Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; lines so far: {self.lines}")
            try:
                line = self._queue.get(timeout=left)
            except Empty:
                continue
            if line is None:
                raise AssertionError(f"stream ended while waiting for {what}; lines: {self.lines}")
            self.lines.append(line)
            if predicate(line):
                return line


class Server:
    """A `svcnet apiserver` subprocess and the ways tests talk to it."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.kubeconfig = data_dir / "kubeconfig"
        self.kubeconfig_readonly = data_dir / "kubeconfig-readonly"
        self.ca_file = data_dir / "pki" / "ca.crt"
        self.cache_dir = data_dir.parent / f"{data_dir.name}-kubectl-cache"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.admin_token = ""
        self.readonly_token = ""
        self._session: requests.Session | None = None
        self.starts = 0

    # ---- process lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        assert self.proc is None, "already running"
        for path in (self.kubeconfig, self.kubeconfig_readonly):
            path.unlink(missing_ok=True)  # a stale file from the previous run must not count as "ready"
        cmd = [str(SVCNET), "apiserver", "--data-dir", str(self.data_dir), "--port", str(self.port),
               *self.extra_args]
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts + 1}: {' '.join(cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        self.starts += 1
        try:
            wait_for(self._ready, START_TIMEOUT, "the API server to become ready")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise pytest.fail(f"svcnet apiserver exited with rc={self.proc.returncode}:\n{self.log_tail()}")
        if not (self.kubeconfig.exists() and self.kubeconfig_readonly.exists()):
            return False
        try:
            config = yaml.safe_load(self.kubeconfig.read_text())
            readonly = yaml.safe_load(self.kubeconfig_readonly.read_text())
        except (OSError, yaml.YAMLError):
            return False  # being written
        if not config or not readonly:
            return False
        url = config["clusters"][0]["cluster"]["server"]
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.admin_token = config["users"][0]["user"].get("token", "")
        self.readonly_token = readonly["users"][0]["user"].get("token", "")
        self._session = None
        response = requests.get(f"{self.url}/readyz", verify=str(self.ca_file), timeout=2)
        return response.status_code == 200

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self._session is not None:
            self._session.close()
            self._session = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop (gracefully) and start again on the same data dir and the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    # ---- kubectl -------------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = KUBECTL_TIMEOUT) -> Result:
        cmd = self.kubectl_cmd(*args, kubeconfig=kubeconfig)
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                  env=self.kubectl_env(env))
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"kubectl {' '.join(args)} did not finish in {timeout}s: {exc}") from None
        result = Result(proc.returncode, proc.stdout, proc.stderr, args)
        if check and result.rc != 0:
            raise AssertionError(str(result))
        return result

    def kubectl_cmd(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [str(KUBECTL), "--kubeconfig", str(kubeconfig or self.kubeconfig), "--cache-dir",
                str(self.cache_dir), *args]

    def kubectl_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KUBECTL"))}
        env["HOME"] = str(self.cache_dir)  # nothing of the user's ~/.kube is read or written
        env.update(extra or {})
        return env

    def kubectl_popen(self, *args: str) -> tuple[subprocess.Popen[str], LineReader]:
        proc = subprocess.Popen(self.kubectl_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.kubectl_env(), start_new_session=True)
        return proc, LineReader(proc.stdout)

    # ---- HTTP ----------------------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            self._session.verify = str(self.ca_file)
            self._session.headers["Authorization"] = f"Bearer {self.admin_token}"
        return self._session

    def http(self, method: str, path: str, body: Any = None, *, data: bytes | str | None = None,
             headers: dict[str, str] | None = None, token: str | None = None, auth: bool = True,
             timeout: float = 30) -> requests.Response:
        """One request; `body` is sent as JSON; `token` overrides the admin token; `auth=False` sends none."""
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if not auth:
            response = requests.request(method, self.url + path, data=data, headers=hdrs,
                                        verify=str(self.ca_file), timeout=timeout)
        else:
            response = self.session.request(method, self.url + path, data=data, headers=hdrs, timeout=timeout)
        return response

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def create_namespace(self, name: str) -> None:
        response = self.http("POST", "/api/v1/namespaces",
                             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        assert response.status_code == 201, response.text

    def python_client(self) -> Any:
        """An ApiClient configured by `kubernetes.config.load_kube_config` from the admin kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def start_server(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[Server]:
    if not SVCNET.exists():
        pytest.skip(f"{SVCNET} is missing (run scripts/install.sh)")
    base = tmp_path_factory.mktemp("svcnet")
    server = Server(base / "data", extra)
    server.data_dir.mkdir()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if os.environ.get("SVCNET_E2E_SHOW_LOG"):
            sys.stderr.write(server.log_tail(200))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory)


@pytest.fixture
def ns(server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for one test."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = unique(stem or "e2e")
    server.create_namespace(name)
    return name


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def killpg(proc: subprocess.Popen[Any]) -> None:
    """End a process started with start_new_session=True, and its children (its own process group only)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()


async def eventually(check: Callable[[], Any], timeout: float = 15, tolerate: tuple[type[BaseException], ...] = ()
                     ) -> Any:
    """Await `check()` (an async callable) until it returns something truthy; errors in `tolerate` count as
    "not yet". Fails after `timeout` seconds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            value = await check()
            if value:
                return value
        except tolerate:
            pass
        assert loop.time() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(server: Server, *builders: Callable[[Any], Any]) -> AsyncIterator[Any]:
    """A client for `server`, and each `builder(client)` running as a task until the block ends: a controller (its
    `run()` is started) or a coroutine."""
    import asyncio

    from svcnet.client import Client, load_kubeconfig

    client = Client(load_kubeconfig(server.kubeconfig))
    built = [build(client) for build in builders]
    tasks = [asyncio.create_task(b.run() if hasattr(b, "run") else b) for b in built]
    try:
        yield client
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


def free_udp_tcp_port(ip: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `ip` (a DNS server binds both; a port only UDP found free may still
    be held on the TCP side, e.g. by a connection another test left in TIME_WAIT)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((ip, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((ip, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {ip}")

