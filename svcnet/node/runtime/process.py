"""The process runtime: a pod is a sandbox process holding a private mount namespace (its own /tmp,
/etc/resolv.conf and /etc/hosts), containers are child processes that join it, each with its own address.

Invariants: every process started here gets SIGKILL when the agent dies (PR_SET_PDEATHSIG) and runs in its own
process group, so stopping a container or the agent leaves nothing running; a container's stdout and stderr go
to CRI-format log files (`<pod dir>/logs/<container>/<restart>.log`) and to live subscribers (attach).
Isolation: as root `unshare --mount`, otherwise an unprivileged user namespace; where neither works the pods
share the host's /tmp and files (a warning says so). The netns runtime adds a network namespace to the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import svcnet
from svcnet.node import crilog

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def isolation_mode() -> str:
    """"root", "userns" or "none": how sandboxes get their private mount namespace on this machine."""
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "none"
    if os.geteuid() == 0:
        return "root"
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return "userns" if probe.returncode == 0 else "none"


@dataclass
class Sandbox:
    pod_dir: Path
    ip: str
    pid: int | None  # the sandbox ("pause") process, None without isolation
    mode: str
    extra_nsenter: tuple[str, ...] = ()  # -n for the netns runtime: containers join the pod's network namespace
    netns: str = ""  # the pod's network namespace (netns runtime)
    process: asyncio.subprocess.Process | None = None

    def exec_prefix(self) -> tuple[str, ...]:
        if self.pid is None:
            return ()
        user = ("-U", "--preserve-credentials") if self.mode == "userns" else ()
        return ("nsenter", "-t", str(self.pid), *user, "-m", *self.extra_nsenter, "--")

    def alive(self) -> bool:
        return self.process is None or self.process.returncode is None


@dataclass
class ContainerProcess:
    name: str
    proc: asyncio.subprocess.Process
    started_at: str
    log_file: Path
    finished_at: str = ""
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: set[asyncio.Queue[tuple[str, bytes] | None]] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return not self.done.is_set()


class ProcessRuntime:
    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode or isolation_mode()
        if self.mode == "none":
            log.warning("no mount namespaces here (need root or unprivileged user namespaces): pods share the "
                        "host's /tmp, /etc/resolv.conf and /etc/hosts")

    async def start_sandbox(self, pod_dir: Path, ip: str, files: dict[str, str],
                            enter: tuple[str, ...] = ()) -> Sandbox:
        """Start the pod's sandbox; `enter` prefixes the sandbox process (the netns runtime's nsenter --net)."""
        for sub in ("tmp", "html", "logs"):
            (pod_dir / sub).mkdir(parents=True, exist_ok=True)
        (pod_dir / "tmp").chmod(0o1777)
        for name, text in files.items():
            (pod_dir / name).write_text(text)
        if self.mode == "none":
            return Sandbox(pod_dir, ip, None, self.mode)
        user = ["--user", "--map-root-user"] if self.mode == "userns" else []
        keep = [sys.prefix, sys.base_prefix, str(Path(svcnet.__file__).parents[1])]
        proc = await asyncio.create_subprocess_exec(
            *enter, "unshare", *user, "--mount", "--propagation", "private", "--", sys.executable, "-m",
            "svcnet.node.runtime.sandbox_init", str(pod_dir), *keep,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        if line.strip() != b"ready":
            error = (await proc.stderr.read()).decode(errors="replace").strip()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise OSError(f"pod sandbox failed to start: {error or 'no output'}")
        return Sandbox(pod_dir, ip, proc.pid, self.mode, process=proc)

    async def stop_sandbox(self, sandbox: Sandbox) -> None:
        if sandbox.process is not None and sandbox.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                sandbox.process.kill()
            await sandbox.process.wait()

    async def start_container(self, sandbox: Sandbox, name: str, argv: Sequence[str], env: dict[str, str],
                              restart: int, stdin: bool = False, cwd: str | None = None) -> ContainerProcess:
        log_dir = sandbox.pod_dir / "logs" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{restart}.log"
        proc = await asyncio.create_subprocess_exec(
            *sandbox.exec_prefix(), *argv, env=self._env(sandbox, env), cwd=cwd or str(sandbox.pod_dir),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        container = ContainerProcess(name, proc, crilog.timestamp()[:19] + "Z", log_file)
        sink = log_file.open("ab", buffering=0)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [asyncio.create_task(self._pump(container, "stdout", proc.stdout, sink)),
                   asyncio.create_task(self._pump(container, "stderr", proc.stderr, sink))]
        container.tasks.append(asyncio.create_task(self._reap(container, readers, sink)))
        return container

    def probe_netns(self) -> str | None:
        """The network namespace probes run from (None: the agent's own)."""
        return None

    @staticmethod
    def _env(sandbox: Sandbox, env: dict[str, str]) -> dict[str, str]:
        """What every process in the pod sees besides its container's variables."""
        return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "SVCNET_HTML_DIR": str(sandbox.pod_dir / "html"), **env}

    @staticmethod
    async def _pump(container: ContainerProcess, stream: str, source: asyncio.StreamReader, sink: object) -> None:
        while chunk := await source.read(65536):
            sink.write(crilog.format_record(stream, chunk))  # type: ignore[attr-defined]
            for queue in list(container.subscribers):
                queue.put_nowait((stream, chunk))

    @staticmethod
    async def _reap(container: ContainerProcess, readers: list[asyncio.Task[None]], sink: object) -> None:
        code = await container.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 2)
        sink.close()  # type: ignore[attr-defined]
        container.exit_code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as runtimes report
        container.finished_at = crilog.timestamp()[:19] + "Z"
        container.done.set()
        for queue in list(container.subscribers):
            queue.put_nowait(None)

    async def stop_container(self, container: ContainerProcess, grace: float) -> None:
        """SIGTERM to the container's process group, SIGKILL after `grace` seconds."""
        if not container.running:
            return
        self._signal(container, signal.SIGTERM)
        try:
            await asyncio.wait_for(container.done.wait(), max(grace, 0.0))
        except TimeoutError:
            self._signal(container, signal.SIGKILL)
            await container.done.wait()

    @staticmethod
    def _signal(container: ContainerProcess, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(container.proc.pid, sig)

    async def run(self, sandbox: Sandbox, argv: Sequence[str], env: dict[str, str], timeout: float
                  ) -> tuple[int, bytes]:
        """Run a command inside the pod (exec probes, preStop hooks): (exit code, output); -1 on timeout."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *sandbox.exec_prefix(), *argv, env=self._env(sandbox, env),
                cwd=str(sandbox.pod_dir), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent)
        except OSError as exc:
            return 127, str(exc).encode()
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return -1, b"command timed out"
        return proc.returncode or 0, output

    @staticmethod
    async def follow(container: ContainerProcess) -> AsyncIterator[tuple[str, bytes]]:
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        container.subscribers.add(queue)
        try:
            while container.running or not queue.empty():
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            container.subscribers.discard(queue)
