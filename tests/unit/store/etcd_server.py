"""A throwaway single-member etcd on loopback for tests: random free ports, a temp data dir, killed on exit.

Readiness is the "ready to serve client requests" line in etcd's log, read by a thread that also keeps draining the
log (so etcd never blocks on a full pipe). The child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

ETCD = Path("/usr/bin/etcd")
READY_LINE = "ready to serve client requests"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class EtcdServer:
    @staticmethod
    def free_port() -> int:
        """A loopback port nobody listens on (nothing listens on it until etcd or a test binds it)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __init__(self, data_dir: Path) -> None:
        self.client_port, peer_port = self.free_port(), self.free_port()
        self.endpoint = f"127.0.0.1:{self.client_port}"
        client, peer = f"http://{self.endpoint}", f"http://127.0.0.1:{peer_port}"
        self.process = subprocess.Popen(
            [str(ETCD), "--name", "test", "--data-dir", str(data_dir), "--listen-client-urls", client,
             "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--log-outputs", "stderr"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self.ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if READY_LINE in line:
                self.ready.set()
        self.ready.set()  # exited: wake the waiter, which sees the exit code

    def wait_ready(self, timeout: float = 30) -> None:
        if not self.ready.wait(timeout) or self.process.poll() is not None:
            raise RuntimeError(f"etcd did not start (rc={self.process.poll()}):\n{''.join(self.log)}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def running_etcd(data_dir: Path) -> Iterator[EtcdServer]:
    server = EtcdServer(data_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()
