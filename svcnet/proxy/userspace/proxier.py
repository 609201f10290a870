"""The userspace proxier: a listening socket per service address and port, connections scheduled over the
usable endpoints and relayed with `relay.Relay` (TCP) or per-client flows (UDP, in udp.py).

`sync(snapshot)` turns the snapshot into virtual servers — the ClusterIPs, every node address at the NodePort,
externalIPs and LoadBalancer ingress addresses of every service port — opens listeners for new ones and closes
those that went away. A virtual server with no usable endpoint has no listener, so a connection is refused at
once, as kube-proxy's REJECT does. Backends keep their connection counts across syncs; a backend that leaves
takes no new connection while its open ones finish (draining). Connecting to a backend that refuses or does not
answer within `connect_timeout` moves on to the next choice, so a dead pod costs no failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import select
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from svcnet.netns import Entered
from svcnet.proxy import affinity as affinity_mod
from svcnet.proxy import model, schedulers
from svcnet.proxy.backends import Backend, VirtualServer
from svcnet.proxy.userspace import relay
from svcnet.proxy.userspace.portals import ANY_LOCAL, Portal
from svcnet.proxy.userspace.relay import RawSocket
from svcnet.proxy.userspace.udp import UDPListener

log = logging.getLogger(__name__)
Address = tuple[str, str, int]  # protocol, ip, port


@dataclass
class ServerState:
    """One virtual server: its listener, its backends (by ip:port) and its scheduler."""
    address: Address
    info: model.ServicePortInfo
    external: bool
    scheduler_name: str
    scheduler: schedulers.Scheduler
    backends: dict[tuple[str, int], Backend] = field(default_factory=dict)
    candidates: list[Backend] = field(default_factory=list)  # backends' values, kept for the data path
    listener: socket.socket | UDPListener | None = None
    label: str = ""  # the service port's name, for metrics
    portal: Portal | None = None  # netns mode: the REDIRECT to the listener

    @property
    def key(self) -> str:
        protocol, ip, port = self.address
        return f"{protocol}/{ip}:{port}"


class UserspaceProxier:
    def __init__(self, node_name: str, node_ips: tuple[str, ...], default_scheduler: str = schedulers.DEFAULT,
                 connect_timeout: float = 1.0, udp_idle_timeout: float = 10.0,
                 on_connection: Callable[[str, str], None] = lambda service, result: None,
                 netns: Entered | None = None) -> None:
        self.node_name = node_name
        self.netns = netns  # in a node namespace: listeners there, reached through REDIRECT portals
        self.node_ips = node_ips
        self.default_scheduler = default_scheduler
        self.connect_timeout = connect_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self.on_connection = on_connection
        self.servers: dict[Address, ServerState] = {}
        self.affinity = affinity_mod.AffinityTable()
        self.relays: set[relay.Relay] = set()
        self._poller: relay.Poller | None = None  # the relay poller of the loop the listeners run on
        self._heap_frozen = False

    # ---- sync ------------------------------------------------------------------------------------------------

    def _addresses(self, info: model.ServicePortInfo) -> list[tuple[Address, bool]]:
        proto = info.protocol
        found = [((proto, ip, info.port), False) for ip in info.cluster_ips]
        if info.node_port:
            node_ips = (ANY_LOCAL,) if self.netns is not None else self.node_ips
            found += [((proto, ip, info.node_port), True) for ip in node_ips]
        found += [((proto, ip, info.port), True) for ip in (*info.external_ips, *info.load_balancer_ips)]
        return found

    def _scheduler_name(self, info: model.ServicePortInfo) -> str:
        return info.annotations.get(schedulers.SCHEDULER_ANNOTATION, self.default_scheduler)

    def sync(self, snapshot: model.Snapshot) -> list[str]:
        """Bring listeners and backends in line with the snapshot; the problems found (for logs and events)."""
        problems: list[str] = []
        wanted: dict[Address, tuple[model.ServicePortInfo, bool]] = {}
        for info in snapshot.services.values():
            if info.protocol not in ("TCP", "UDP"):
                continue
            for address, external in self._addresses(info):
                wanted.setdefault(address, (info, external))
        for address in [a for a in self.servers if a not in wanted]:
            self._remove(self.servers.pop(address))
        for address, (info, external) in wanted.items():
            endpoints = model.usable(info, snapshot.endpoints.get(info.name, ()), self.node_name, external)
            problem = self._update(address, info, external, endpoints)
            if problem:
                problems.append(problem)
        self._freeze_heap()
        return problems

    def _freeze_heap(self) -> None:
        """Once, after the first sync: collect, then move every object alive (modules, clients, the first snapshot)
        to the collector's permanent generation. Connection churn promotes short-lived objects into the oldest
        generation and so triggers full collections, whose pause grows with the heap (25-60 ms, and the backlog
        it leaves doubles that); with the startup heap frozen they scan only what churn left there."""
        if not self._heap_frozen:
            self._heap_frozen = True
            gc.collect()
            gc.freeze()

    def _update(self, address: Address, info: model.ServicePortInfo, external: bool,
                endpoints: tuple[model.EndpointInfo, ...]) -> str | None:
        state = self.servers.get(address)
        name = self._scheduler_name(info)
        if state is None or state.scheduler_name != name:
            try:
                scheduler = schedulers.make(name)
            except ValueError as exc:
                name, scheduler = self.default_scheduler, schedulers.make(self.default_scheduler)
                log.warning("%s: %s; using %s", info.name, exc, name)
            if state is not None:
                state.scheduler_name, state.scheduler = name, scheduler
            else:
                state = self.servers[address] = ServerState(address, info, external, name, scheduler)
        state.info = info
        self._set_backends(state, endpoints)
        if state.backends and state.listener is None:
            return self._listen(state)
        if not state.backends and state.listener is not None:
            self._close_listener(state)
        return None

    def _set_backends(self, state: ServerState, endpoints: tuple[model.EndpointInfo, ...]) -> None:
        weights = _weights(state.info)
        fresh: dict[tuple[str, int], Backend] = {}
        for ep in endpoints:
            backend = state.backends.get((ep.ip, ep.port)) or Backend(ep.ip, ep.port)
            backend.weight = weights.get(ep.ip, weights.get(ep.target, 1))
            backend.node_name, backend.ready, backend.serving = ep.node_name, ep.ready, ep.serving
            backend.terminating = ep.terminating
            fresh[(ep.ip, ep.port)] = backend
        for gone in set(state.backends) - set(fresh):
            self.affinity.forget_backend(state.key, gone)
            if isinstance(state.listener, UDPListener):
                state.listener.drop_backend(gone)
        state.backends = fresh
        state.candidates = list(fresh.values())
        state.label = str(state.info.name)

    def _remove(self, state: ServerState) -> None:
        self._close_listener(state)
        self.affinity.forget_service(state.key)

    # ---- listeners -------------------------------------------------------------------------------------------

    def _socket(self, family: int, kind: int) -> socket.socket:
        return self.netns.socket(family, kind) if self.netns is not None else socket.socket(family, kind)

    def _upstream_socket(self, family: int) -> RawSocket:
        """A non-blocking TCP socket for a backend connection: in the node's namespace, or a bare C socket (the
        data path skips socket.socket's Python-level wrapper)."""
        kind = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        return self.netns.socket(family, kind) if self.netns is not None else RawSocket(family, kind)

    def _listen(self, state: ServerState) -> str | None:
        protocol, ip, port = state.address
        bind_ip, bind_port = ip, port
        if self.netns is not None:  # listen on a free port of the node; a portal redirects the service address
            if ip != ANY_LOCAL and ipaddress.ip_address(ip).version == 6:
                return f"{state.key}: IPv6 service addresses are not proxied in a node namespace yet"
            bind_ip, bind_port = "0.0.0.0", 0  # noqa: S104 — inside the node's own namespace
        family = socket.AF_INET6 if ":" in bind_ip else socket.AF_INET
        try:
            if protocol == "UDP":
                listener = UDPListener(family, bind_ip, bind_port, lambda client: self._pick(state, client[0]),
                                       self.udp_idle_timeout, self._socket)
                state.listener = listener
                self._add_portal(state, listener.sock)
                return None
            sock = self._socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            sock.bind((bind_ip, bind_port))
            sock.listen(4096)
        except OSError as exc:
            with contextlib.suppress(UnboundLocalError):
                sock.close()
            hint = " (not an address of this host)" if exc.errno == errno.EADDRNOTAVAIL else ""
            return f"cannot listen on {state.key} for {state.info.name}: {exc.strerror}{hint}"
        state.listener = sock
        self._poller = relay.poller()
        self._add_portal(state, sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, state, sock)
        return None

    def _add_portal(self, state: ServerState, sock: socket.socket) -> None:
        if self.netns is not None:
            protocol, ip, port = state.address
            state.portal = Portal(protocol, ip, port, sock.getsockname()[1], str(state.info.name))

    def portals(self) -> list[Portal]:
        return [s.portal for s in self.servers.values() if s.portal is not None]

    def _close_listener(self, state: ServerState) -> None:
        listener, state.listener, state.portal = state.listener, None, None
        if isinstance(listener, UDPListener):
            listener.close()
        elif listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()

    def _accept(self, state: ServerState, sock: socket.socket) -> None:
        family = sock.family
        for _ in range(64):
            try:
                fd, peer = sock._accept()  # type: ignore[attr-defined]  # socket.accept() minus its enum lookups
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept on %s: %s", state.key, exc)
                return
            client = RawSocket(family, socket.SOCK_STREAM, 0, fd)
            client.setblocking(False)
            self._forward(state, client, peer[0], ())

    # ---- scheduling and connecting (callbacks on the event loop: no task per connection) ----------------------

    def _pick(self, state: ServerState, client_ip: str, exclude: Collection[tuple[str, int]] = ()) -> Backend | None:
        candidates = [b for b in state.candidates if b.key not in exclude] if exclude else state.candidates
        timeout = state.info.affinity_timeout
        if not timeout:
            return state.scheduler.pick(candidates, client_ip, state.address[1])
        now = time.monotonic()
        sticky = self.affinity.lookup(state.key, client_ip, now)
        chosen = next((b for b in candidates if b.key == sticky), None) if sticky else None
        if chosen is None:
            chosen = state.scheduler.pick(candidates, client_ip, state.address[1])
        if chosen is not None:
            self.affinity.touch(state.key, client_ip, chosen.key, now, timeout)
        return chosen

    def _forward(self, state: ServerState, client: RawSocket, client_ip: str, tried: Collection[tuple[str, int]]
                 ) -> None:
        """Pick a backend not tried yet and connect to it; on failure try the next; with none left, reset.

        On loopback the handshake is usually over before connect() returns EINPROGRESS, so a second connect()
        asks at once (EISCONN: connected, no timer, no registration, no callback). Otherwise the socket joins
        the relay poller: its first output edge reports the handshake's end, an error edge its failure."""
        backend = self._pick(state, client_ip, tried)
        if backend is None:
            self.on_connection(state.label, "refused")
            _reset(client)
            return
        family = socket.AF_INET6 if ":" in backend.ip else socket.AF_INET
        upstream = self._upstream_socket(family)
        address = (backend.ip, backend.port)
        error = upstream.connect_ex(address)
        if error == errno.EINPROGRESS:
            error = upstream.connect_ex(address)
        if error in (0, errno.EISCONN):
            self.on_connection(state.label, "failover" if tried else "ok")
            self._relay(client, upstream, backend, False)
        elif error in (errno.EINPROGRESS, errno.EALREADY):
            self._await_connect(state, client, client_ip, tried, backend, upstream)
        else:
            upstream.close()
            self._next_backend(state, client, client_ip, tried, backend, error)

    def _next_backend(self, state: ServerState, client: RawSocket, client_ip: str,
                      tried: Collection[tuple[str, int]], backend: Backend, error: int) -> None:
        log.info("backend %s:%d: %s; trying the next", backend.ip, backend.port, os.strerror(error))
        self.affinity.forget_backend(state.key, backend.key)
        self._forward(state, client, client_ip, {*tried, backend.key})

    def _await_connect(self, state: ServerState, client: RawSocket, client_ip: str,
                       tried: Collection[tuple[str, int]], backend: Backend, upstream: RawSocket) -> None:
        """Finish a connect that is under way: relay on its output edge, the next backend on failure or after
        `connect_timeout`."""
        poller = self._poller or relay.poller()

        def finish(events: int) -> None:
            if events and not events & (relay.FAILED | select.EPOLLOUT):
                return  # input before the handshake's end cannot be; wait for the output edge
            timer.cancel()
            error = upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & relay.FAILED else 0
            if not events or error:
                poller.close_socket(upstream)
                self._next_backend(state, client, client_ip, tried, backend, error or errno.ETIMEDOUT)
            else:
                self.on_connection(state.label, "failover" if tried else "ok")
                self._relay(client, upstream, backend, bool(events & select.EPOLLIN))

        poller.watch(upstream.fileno(), finish, output=True)
        timer = poller.loop.call_later(self.connect_timeout, finish, 0)

    def _relay(self, client: RawSocket, upstream: RawSocket, backend: Backend, readable: bool) -> None:
        backend.active += 1

        def half_closed() -> None:
            backend.active -= 1
            backend.inactive += 1

        def closed(was_half_closed: bool) -> None:
            self.relays.discard(connection)
            if was_half_closed:
                backend.inactive -= 1
            else:
                backend.active -= 1

        connection = relay.Relay(client, upstream, half_closed, closed, upstream_readable=readable,
                                 relay_poller=self._poller)
        self.relays.add(connection)

    # ---- views -----------------------------------------------------------------------------------------------

    def status(self) -> list[VirtualServer]:
        return [VirtualServer(s.address[0], s.address[1], s.address[2], s.scheduler_name, s.info.affinity_timeout,
                              tuple(s.backends.values()), str(s.info.name))
                for s in self.servers.values()]

    def close(self) -> None:
        for state in self.servers.values():
            self._close_listener(state)
        self.servers.clear()
        for connection in list(self.relays):
            connection.close()


def _weights(info: model.ServicePortInfo) -> dict[str, int]:
    raw = info.annotations.get(schedulers.WEIGHTS_ANNOTATION, "")
    if not raw:
        return {}
    try:
        return schedulers.weights_from_annotation(raw)
    except ValueError as exc:
        log.warning("%s: %s", info.name, exc)
        return {}


def _reset(sock: RawSocket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
