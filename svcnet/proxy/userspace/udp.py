"""UDP through the userspace proxy: one listening socket per virtual server and one flow per client — a
connected socket to the backend chosen for that client — so replies find their way back and a client's
datagrams keep going to the same backend until the flow has been idle for `idle_timeout` seconds.

Flows count as the backend's inactive connections, as IPVS counts UDP. A backend that answers with an ICMP
error ends its flow; the client's next datagram is scheduled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from svcnet.proxy.backends import Backend

MAX_DATAGRAM = 65535
BATCH = 64


@dataclass
class _Flow:
    sock: socket.socket
    backend: Backend
    last: float


class UDPListener:
    def __init__(self, family: int, ip: str, port: int, pick: Callable[[tuple[str, int]], Backend | None],
                 idle_timeout: float, make_socket: Callable[[int, int], socket.socket] = socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self.pick = pick
        self.idle_timeout = idle_timeout
        self.family = family
        self.make_socket = make_socket  # sockets made in the proxy's namespace (a node's, in netns mode)
        self.sock = make_socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.bind((ip, port))
        except OSError:
            self.sock.close()
            raise
        self.flows: dict[tuple[str, int], _Flow] = {}
        self.loop.add_reader(self.sock.fileno(), self._from_clients)
        self._sweeper = self.loop.call_later(idle_timeout, self._sweep)

    def _from_clients(self) -> None:
        for _ in range(BATCH):
            try:
                data, client = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            flow = self.flows.get(client[:2]) or self._open(client[:2])
            if flow is None:
                continue
            flow.last = time.monotonic()
            try:
                flow.sock.send(data)
            except OSError:
                self._close_flow(client[:2])

    def _open(self, client: tuple[str, int]) -> _Flow | None:
        backend = self.pick(client)
        if backend is None:
            return None
        sock = self.make_socket(self.family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect((backend.ip, backend.port))
        except OSError:
            sock.close()
            return None
        flow = self.flows[client] = _Flow(sock, backend, time.monotonic())
        backend.inactive += 1
        self.loop.add_reader(sock.fileno(), self._from_backend, client, flow)
        return flow

    def _from_backend(self, client: tuple[str, int], flow: _Flow) -> None:
        for _ in range(BATCH):
            try:
                data = flow.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable and friends: the backend is gone
                self._close_flow(client)
                return
            flow.last = time.monotonic()
            with contextlib.suppress(OSError):
                self.sock.sendto(data, client)

    def _close_flow(self, client: tuple[str, int]) -> None:
        flow = self.flows.pop(client, None)
        if flow is not None:
            self.loop.remove_reader(flow.sock.fileno())
            flow.sock.close()
            flow.backend.inactive -= 1

    def drop_backend(self, key: tuple[str, int]) -> None:
        """End the flows to a backend that left (as kube-proxy clears its stale UDP conntrack entries)."""
        for client in [c for c, f in self.flows.items() if f.backend.key == key]:
            self._close_flow(client)

    def _sweep(self) -> None:
        now = time.monotonic()
        for client in [c for c, f in self.flows.items() if now - f.last > self.idle_timeout]:
            self._close_flow(client)
        self._sweeper = self.loop.call_later(max(self.idle_timeout / 2, 0.1), self._sweep)

    def close(self) -> None:
        self._sweeper.cancel()
        for client in list(self.flows):
            self._close_flow(client)
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
