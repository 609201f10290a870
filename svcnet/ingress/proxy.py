"""The ingress data plane: an HTTP/1.1 reverse proxy answering from a `RouteTable` (svcnet.ingress.model).

Theory of operation. Each client connection is an asyncio protocol with one `httptools` request parser. When a
request head is complete it is checked (`http1.scan_request`: the smuggling and traversal rules, answered with 400
and a closed connection), looked up in the table that is current at that moment (`lookup`, a pure function), and
then redirected, answered locally (404 like ingress-nginx's default backend, 503/500 for routes without
endpoints), or forwarded to the chosen backend's next endpoint (round robin per backend, kept here). Forwarding
reuses idle keep-alive upstream connections (a pool per endpoint, capped); a connect failure moves on to the next
endpoint (nothing was sent); a reused connection that dies before any response byte is retried once on a fresh
connection for idempotent requests without a body. Bodies stream both ways in either framing, with backpressure
(a full socket buffer pauses reading from the other side), never buffered whole. After a backend's `101` the two
sockets are relayed raw (WebSocket). Timeouts follow nginx: connect 5 s, backend read 60 s (504, or an aborted
response once bytes flowed), client header 60 s, keep-alive idle 75 s; bodies over the limit get 413.

Per-request cost (the hot path, measured by bench/ingress.py). A request to a pooled upstream costs no task or
future: parser callbacks only, one write of the forwarded head (the X-Real-IP / X-Forwarded-Proto / -Port lines
are built once per client connection), and one write of the response head with the body that arrived with it.
The response parser has no per-header callback: the head is cut from the received bytes once llhttp has accepted
it and passed on as sent, minus its hop-by-hop lines (`http1.scan_response_head`). One object per request
(`_Exchange`: the parsed head, its checks and its answer; no `on_message_begin` callback, `on_url` starts it), and
the route lookup of a repeated (port, host, path, method) is a memo hit (`match.lookup`). A few small helpers are
inlined on the pooled path (marked "inline (hot path)"); `bench/ingress.py` and callgrind count the difference.

Routes are data: hosts, paths and header values from Ingress objects are only ever compared against requests and
copied into headers through `http1` (which refuses CR/LF/NUL); nothing is templated into configuration text or
code, so an object cannot inject directives the way an nginx config snippet can.

Invariants:
- one request is in flight per client connection and per upstream connection; pipelined requests wait (their
  bytes are held, reading is paused) until the previous response is complete;
- an upstream connection goes back to the pool only after a complete response to a completely sent request on a
  keep-alive connection; anything else closes it;
- a request answered by a safety rejection never reaches a backend;
- `set_table` swaps the table atomically; requests whose head arrived earlier finish with the old decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools

from svcnet.ingress import http1, tls
from svcnet.ingress.model import Backend, Decision, Route, RouteTable
from svcnet.netns import Entered

log = logging.getLogger(__name__)
_random = random.random

LookupFn = Callable[[RouteTable, int, str, str, str, http1.RequestHead, str, Callable[[], float]], Decision]

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}  # skip a decode
_PIPELINE, _CONNECTING, _BACKPRESSURE, _UPGRADING = 1, 2, 4, 8  # reasons to pause reading a client
_LINGER = 2.0  # seconds to read and discard after a rejection before closing (lets the answer arrive)
_MAX_RESPONSE_HEAD = 64 * 1024  # a longer backend response head is refused (502), like nginx's "too big header"


@dataclass(frozen=True, slots=True)
class IngressConfig:
    bind_address: str = "0.0.0.0"
    connect_timeout: float = 5.0  # proxy-connect-timeout
    response_timeout: float = 60.0  # proxy-read-timeout: between two reads from the backend
    header_timeout: float = 60.0  # client-header-timeout
    body_timeout: float = 60.0  # client-body-timeout: between two reads of a request body
    keepalive_timeout: float = 75.0  # keep-alive idle time of a client connection
    upstream_idle_timeout: float = 60.0  # upstream-keepalive-timeout
    max_idle_per_endpoint: int = 32  # idle upstream connections kept per endpoint
    max_body_size: int = 1 << 20  # proxy-body-size; 0: unlimited
    drain_timeout: float = 10.0  # stop(): how long in-flight requests may take
    backlog: int = 1024
    netns: str | None = None  # listen and connect inside this named network namespace

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "response_timeout", "header_timeout", "body_timeout",
                     "keepalive_timeout", "upstream_idle_timeout", "drain_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"IngressConfig.{name} must be > 0")
        if self.max_body_size < 0 or self.max_idle_per_endpoint < 0:
            raise ValueError("IngressConfig.max_body_size and max_idle_per_endpoint must be >= 0")


def _default_lookup() -> LookupFn:
    try:
        from svcnet.ingress import match  # the pure route matcher
    except ImportError as exc:
        raise RuntimeError(f"svcnet.ingress.match is not available ({exc}); pass lookup=") from exc
    return match.lookup  # type: ignore[no-any-return]


class IngressServer:
    """Listeners for every port of the current table, the upstream pools, counters and timers."""

    def __init__(self, config: IngressConfig | None = None, *, lookup: LookupFn | None = None) -> None:
        self.config = config or IngressConfig()
        self.lookup = lookup or _default_lookup()
        self.table = RouteTable()
        self.counters: dict[tuple[str, int], int] = {}  # (backend name or "-", status) -> responses
        self.upstream_connects = 0
        self.listen_errors: dict[int, str] = {}
        self.stopping = False
        self.clients: set[_Client] = set()
        self.pools: dict[tuple[str, int], list[_Upstream]] = {}
        self.rr: dict[str, int] = {}
        self.entered: Entered | None = None
        self._listeners: dict[int, tuple[bool, asyncio.AbstractServer]] = {}
        self._sni: dict[int, tls.SniContext] = {}
        self._sync: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    # ---- control -------------------------------------------------------------------------------------------

    def set_table(self, table: RouteTable) -> None:
        """Swap in `table` now; listeners follow in the background (`await listeners_synced()` to wait)."""
        for port, routes in table.ports.items():
            if routes.tls:
                self._sni.setdefault(port, tls.SniContext()).update(routes.certificates)
        self.table = table
        self._close_idle_outside(table)
        if self._started:
            self._schedule_sync()

    async def listeners_synced(self) -> None:
        while self._sync is not None and not self._sync.done():
            await asyncio.shield(self._sync)

    async def start(self) -> None:
        if self.config.netns:
            self.entered = Entered(self.config.netns)
        self._started = True
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._schedule_sync()
        await self.listeners_synced()

    async def stop(self) -> None:
        """Stop listening, close idle connections, let in-flight requests finish (up to drain_timeout)."""
        self.stopping = True
        self._started = False
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        for _, server in self._listeners.values():
            server.close()
        self._listeners.clear()
        for client in list(self.clients):
            if client.idle():
                client.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_timeout
        while self.clients and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for client in list(self.clients):
            client.abort()
        for pool in self.pools.values():
            for upstream in pool:
                upstream.transport.close()
        self.pools.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.entered is not None:
            self.entered.close()
            self.entered = None

    def metrics(self) -> dict[str, Any]:
        return {"responses": dict(self.counters), "upstream_connects": self.upstream_connects,
                "client_connections": len(self.clients),
                "idle_upstream_connections": sum(len(p) for p in self.pools.values()),
                "listening": sorted(self._listeners), "listen_errors": dict(self.listen_errors),
                "tls_errors": {port: dict(s.errors) for port, s in self._sni.items() if s.errors}}

    def count(self, backend: str, status: int) -> None:
        key = (backend, status)
        self.counters[key] = self.counters.get(key, 0) + 1

    # ---- listeners -----------------------------------------------------------------------------------------

    def _schedule_sync(self) -> None:
        previous = self._sync

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await previous
            await self._sync_listeners()

        self._sync = asyncio.get_running_loop().create_task(run())

    async def _sync_listeners(self) -> None:
        want = {port: routes.tls for port, routes in self.table.ports.items()}
        for port, (is_tls, server) in list(self._listeners.items()):
            if want.get(port) != is_tls:
                server.close()
                del self._listeners[port]
        for port, is_tls in want.items():
            if port in self._listeners:
                continue
            try:
                server = await self._listen(port, is_tls)
            except OSError as exc:
                self.listen_errors[port] = str(exc)
                log.error("ingress: cannot listen on %s:%d: %s", self.config.bind_address, port, exc)
                continue
            self.listen_errors.pop(port, None)
            self._listeners[port] = (is_tls, server)
        for port in list(self.listen_errors):
            if port not in want:
                del self.listen_errors[port]

    async def _listen(self, port: int, is_tls: bool) -> asyncio.AbstractServer:
        family = socket.AF_INET6 if ":" in self.config.bind_address else socket.AF_INET
        sock = self.entered.socket(family, socket.SOCK_STREAM) if self.entered else socket.socket(family)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.bind_address, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        context = self._sni[port].context if is_tls else None
        return await asyncio.get_running_loop().create_server(
            lambda: _Client(self, port, is_tls), sock=sock, ssl=context, backlog=self.config.backlog)

    # ---- upstream pools ------------------------------------------------------------------------------------

    def take_idle(self, key: tuple[str, int]) -> _Upstream | None:
        pool = self.pools.get(key)
        while pool:
            upstream = pool.pop()
            if not upstream.transport.is_closing():
                return upstream
        return None

    def release(self, upstream: _Upstream) -> None:
        pool = self.pools.setdefault(upstream.key, [])
        if len(pool) >= self.config.max_idle_per_endpoint or self.stopping:
            upstream.transport.close()
            return
        upstream.idle_since = upstream.loop.time()
        pool.append(upstream)

    def forget(self, upstream: _Upstream) -> None:
        pool = self.pools.get(upstream.key)
        if pool and upstream in pool:
            pool.remove(upstream)

    def _close_idle_outside(self, table: RouteTable) -> None:
        live = {(e.ip, e.port) for b in _backends(table) for e in b.endpoints}
        for key in [k for k in self.pools if k not in live]:
            for upstream in self.pools.pop(key):
                upstream.transport.close()

    async def connect(self, ip: str, port: int) -> _Upstream:
        loop = asyncio.get_running_loop()
        self.upstream_connects += 1
        key = (ip, port)
        async with asyncio.timeout(self.config.connect_timeout):
            if self.entered is None:
                _, upstream = await loop.create_connection(lambda: _Upstream(self, key), ip, port)
            else:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                sock = self.entered.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, (ip, port))
                except BaseException:
                    sock.close()
                    raise
                _, upstream = await loop.create_connection(lambda: _Upstream(self, key), sock=sock)
        return upstream

    # ---- timers --------------------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        c = self.config
        tick = max(0.02, min(1.0, c.connect_timeout, c.response_timeout, c.header_timeout, c.body_timeout,
                             c.keepalive_timeout, c.upstream_idle_timeout) / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for client in [cl for cl in self.clients if cl.deadline < now]:
                client.on_timeout()
            for pool in self.pools.values():
                for upstream in [u for u in pool if now - u.idle_since > c.upstream_idle_timeout]:
                    upstream.transport.close()


def _backends(table: RouteTable) -> list[Backend]:
    return [backend for routes in table.ports.values() for vhost in routes.virtual_hosts()
            for route in vhost.routes for backend in route.backends]


_FORWARD_HEAD = b"%b %b HTTP/1.1\r\n%bX-Forwarded-For: %b\r\n%bX-Forwarded-Host: %b\r\n\r\n"
_new_exchange = object.__new__  # _Client.on_url makes an _Exchange with it and sets client, url, headers, up_out


class _Stop(Exception):
    """Raised in a parser callback to stop parsing a connection that is being closed."""


def _head_size(req: _Exchange) -> int:
    return len(req.url) + sum(len(name) + len(value) + 4 for name, value in req.headers)


class _Client(asyncio.Protocol):
    """One downstream connection: parse, check, decide, and drive one exchange at a time."""

    def __init__(self, server: IngressServer, port: int, is_tls: bool) -> None:
        self.server = server
        self.port = port
        self.scheme = "https" if is_tls else "http"
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.req: _Exchange | None = None  # being parsed
        self.active: _Exchange | None = None  # being answered
        self.queue: deque[_Exchange] = deque()
        self.paused = 0
        self.closing = False
        self.in_head = False
        self.head_bytes = 0
        self.timeouts = server.config  # frozen: read once per connection
        self.deadline = self.loop.time() + server.config.header_timeout
        self.peer = b""
        self.forwarded = b""  # "X-Real-IP ... X-Forwarded-Port" lines: the same for every request of a connection
        self.feed_len = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.eof = False
        self.tunnel: Any = None
        self.upgrade_rest = b""
        self.authority = b""  # the last request's authority, and as str:
        self.host = ""

    # -- asyncio callbacks --

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0].encode() if peer else b""
        self.forwarded = b"X-Real-IP: %b\r\nX-Forwarded-Proto: %b\r\nX-Forwarded-Port: %d\r\n" % (
            self.peer, self.scheme.encode(), self.port)
        self.server.clients.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.deadline = self.loop.time() + self.server.config.response_timeout
            self.tunnel.write(data)
            return
        if self.closing:
            return  # lingering: discard
        config = self.timeouts
        self.deadline = self.loop.time() + (config.body_timeout if self.active else config.header_timeout)
        self.feed_len = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgrade_rest = data[exc.args[0]:]
            self._pause(_UPGRADING)
        except httptools.HttpParserError as exc:
            self._on_parse_error(exc)
            return
        active = self.active
        if active is not None and active.up_out:
            active.flush_up()
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > http1.MAX_HEADER_BYTES:
                self.reject(431)

    def eof_received(self) -> bool:
        if self.tunnel is not None:
            return False
        self.eof = True
        if self.active is None or self.closing:
            self.close()
        return True  # keep the write side open for the answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.clients.discard(self)
        if self.active is not None:
            self.active.on_client_lost()
        if self.tunnel is not None:
            self.tunnel.close()

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.pause_reading()
        elif self.active is not None and self.active.up is not None:
            self.active.up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.deadline = self.loop.time() + self.server.config.response_timeout
        if self.tunnel is not None:
            self.tunnel.resume_reading()
        elif self.active is not None and self.active.up is not None:
            self.active.up.transport.resume_reading()

    # -- httptools callbacks --

    def on_url(self, url: bytes) -> None:  # also the start of a message (one callback less than on_message_begin)
        if self.in_head:  # the rest of a target that came in pieces
            self.req.url += url  # type: ignore[union-attr]
            return
        if self.closing:
            raise _Stop
        self.req = req = _new_exchange(_Exchange)  # no __init__ call (hot path): the fields are set here
        req.client = self
        req.url = url
        self.headers = req.headers = []
        req.up_out = []
        self.in_head = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        req = self.req
        assert req is not None
        parser = self.parser
        req.method = method = parser.get_method()
        req.version = version = parser.get_http_version()
        if version != "1.1":
            req.http11 = False
        if not parser.should_keep_alive():
            req.keep = False
        if method == b"HEAD":
            req.head_only = True
        self.headers = []  # trailers, if any, land here and are dropped
        self.in_head = False
        if self.head_bytes + self.feed_len > http1.MAX_HEADER_BYTES and _head_size(req) > http1.MAX_HEADER_BYTES:
            self.reject(431)
            raise _Stop
        self.head_bytes = 0
        if self.active is None and not self.queue:
            self.start(req)
            if self.closing:
                raise _Stop
        else:
            self.queue.append(req)
            self._pause(_PIPELINE)

    def on_body(self, data: bytes) -> None:
        active = self.active
        req = self.req
        if active is not None and active is req:
            active.on_body(data)
        elif req is not None:
            if req.body:
                req.body.append(data)
            else:
                req.body = [data]

    def on_message_complete(self) -> None:
        req = self.req
        assert req is not None
        req.complete = True
        active = self.active
        if active is not None and active is req:
            if active.local or active.chunked or active.up_out or active.response_done:
                active.on_request_complete()
            else:  # on_request_complete's common case, inline (hot path): now the response is awaited
                self.deadline = self.loop.time() + self.timeouts.response_timeout

    # -- requests --

    def start(self, req: _Exchange) -> None:
        if self.closing:
            return
        try:
            if req.version not in ("1.1", "1.0"):
                raise http1.Rejected(505 if req.version >= "2" else 400, "unsupported HTTP version")
            http1.scan_request(req)
            limit = self.timeouts.max_body_size
            if limit and req.content_length > limit:
                raise http1.Rejected(413, "body too large")
        except http1.Rejected as exc:
            self.reject(exc.status)
            return
        except ValueError:
            self.reject(400)
            return
        server = self.server
        authority = req.authority
        if authority != self.authority:  # a keep-alive client sends the same Host: decode it once (and hash it once)
            self.authority, self.host = authority, authority.decode("latin-1")
        req.decision = server.lookup(server.table, self.port, self.host, req.path,
                                     _METHODS.get(req.method) or req.method.decode("ascii"), req, req.query, _random)
        self.active = req
        req.begin()

    def finished(self, exchange: _Exchange, keep: bool) -> None:
        """The response to `exchange` is complete (and written to the transport)."""
        self.active = None
        if self.closing:
            return
        if not exchange.complete:
            self._linger()
            return
        if not keep or self.eof or self.server.stopping:
            self.close()
            return
        self.deadline = self.loop.time() + self.timeouts.keepalive_timeout
        if self.paused:
            self._resume(_UPGRADING | _CONNECTING | _BACKPRESSURE)
        while self.queue and self.active is None and not self.closing:
            req = self.queue.popleft()
            self.start(req)
            active = self.active
            if active is not None and active is req:
                if req.body:
                    for chunk in req.body:
                        active.on_body(chunk)
                    req.body = []
                if req.complete:
                    active.on_request_complete()
                if active.up_out and active.up is not None:
                    active.flush_up()
        if self.paused & _PIPELINE and not self.queue:
            self._resume(_PIPELINE)

    def reject(self, status: int) -> None:
        """Answer `status` with an error page and close the connection (after a short linger)."""
        if self.closing:
            return
        active = self.active
        if active is not None:
            active.abandon()
            self.active = None
            if active.response_started:  # too late for an answer
                self.abort()
                return
        self.server.count("-", status)
        self.transport.write(http1.local_response(status, close=True))
        self._linger()

    def _on_parse_error(self, exc: Exception) -> None:
        if self.closing:
            return
        active = self.active
        if active is not None and active.response_started:
            active.abandon()
            self.abort()
            return
        self.reject(400)

    def on_upgraded(self, upstream: _Upstream) -> None:
        self.tunnel = upstream.transport
        self.paused = 0
        self.deadline = self.loop.time() + self.server.config.response_timeout
        if self.upgrade_rest:
            upstream.transport.write(self.upgrade_rest)
            self.upgrade_rest = b""
        self.transport.resume_reading()

    # -- connection state --

    def idle(self) -> bool:
        return self.active is None and not self.in_head and not self.queue and self.tunnel is None

    def on_timeout(self) -> None:
        if self.closing or self.tunnel is not None:
            self.abort()
        elif self.active is not None:
            self.active.on_timeout()
        elif self.in_head:
            self.reject(408)
        else:
            self.close()

    def _pause(self, reason: int) -> None:
        if not self.paused and not self.closing:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reasons: int) -> None:
        was = self.paused
        self.paused &= ~reasons
        if was and not self.paused and not self.closing:
            self.transport.resume_reading()

    def _linger(self) -> None:
        self.closing = True
        self.queue.clear()
        self.deadline = self.loop.time() + _LINGER
        if self.transport.can_write_eof():
            self.transport.write_eof()
            if self.paused:
                self.transport.resume_reading()
        else:
            self.transport.close()

    def close(self) -> None:
        self.closing = True
        self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.transport.abort()


class _Exchange(http1.RequestHead):
    """One request: its head (parsed by the client's parser, checked and sorted by `http1.scan_request` into the
    `http1.RequestHead` fields), its body while it waits behind a pipelined predecessor, and its answer: a local
    one, or forwarding to a backend endpoint and back.

    One object per request; the class attributes are the starting values (only what differs is set)."""

    version = "1.1"
    keep = True  # the client connection stays open after this exchange
    head_only = False  # a HEAD request
    complete = False  # the whole request (head and body) was read
    body: list[bytes] = []  # noqa: RUF012 - never mutated: replaced by a list of its own when a chunk waits
    decision: Decision

    up: _Upstream | None = None
    sent = False  # request bytes went to some upstream
    body_bytes = 0
    tries = 0
    retried = False
    response_started = False
    response_done = False
    status = 0
    up_eof = False  # the response body ends when the backend closes
    upgrading = False  # the client asked for an upgrade (and sent no body)
    task: asyncio.Task[None] | None = None
    local = False

    client: _Client
    up_out: list[bytes]  # request bytes not yet written to the upstream

    # -- request side --

    def begin(self) -> None:
        if self.upgrade:
            self.upgrading = not self.chunked and self.content_length <= 0
        decision = self.decision
        route = decision.route
        if decision.status or route is None:
            self._answer_local(decision.status or 404)
            return
        if route.redirect is not None:
            self._answer_redirect(route.redirect.status_code, decision.location)
            return
        if decision.backend is None or not decision.backend.endpoints:
            self._answer_local(route.status_when_empty)
            return
        client = self.client
        if self.continue_:
            client.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        backend = decision.backend
        rr = client.server.rr  # self._next_endpoint(), inline (hot path)
        i = rr.get(backend.name, 0)
        rr[backend.name] = i + 1
        endpoint = backend.endpoints[i % len(backend.endpoints)]
        key = endpoint.ip, endpoint.port
        pool = client.server.pools.get(key)  # server.take_idle(key), inline (hot path)
        upstream = None
        while pool:
            upstream = pool.pop()
            if not upstream.transport.is_closing():
                break
            upstream = None
        if upstream is not None:  # the common case: one write of the head to a pooled connection
            self.up = upstream
            upstream.ex = self
            upstream.got_bytes = False
            self.tries = 1
            self.sent = True
            if route.request_headers is None and self.authority and not (self.xff or self.chunked or self.upgrading):
                upstream.transport.write(_FORWARD_HEAD % (  # _request_head's common case, inline (hot path)
                    self.method, self.target, b"".join(self.forward), client.peer, client.forwarded, self.authority))
            else:
                upstream.transport.write(self._request_head(route))
        else:
            self.up_out.append(self._request_head(route))
            self.client._pause(_CONNECTING)
            self.task = self.client.loop.create_task(self._connect(key))

    def _request_head(self, route: Route | None) -> bytes:
        head = self
        client = self.client
        lines = head.forward
        if route is not None and route.request_headers is not None:
            mod = route.request_headers
            lines = http1.modify_headers(lines, mod.set, mod.add, mod.remove)
        xff = head.xff + b", " + client.peer if head.xff else client.peer
        if head.authority and not head.chunked and not self.upgrading:  # the common case: one formatting
            return _FORWARD_HEAD % (
                head.method, head.target, b"".join(lines), xff, client.forwarded, head.authority)
        out = b"%b %b HTTP/1.1\r\n%bX-Forwarded-For: %b\r\n%b" % (
            head.method, head.target, b"".join(lines), xff, client.forwarded)
        if head.authority:
            out += b"X-Forwarded-Host: " + head.authority + b"\r\n"
        if head.chunked:
            out += b"Transfer-Encoding: chunked\r\n"
        if self.upgrading:
            out += b"Connection: upgrade\r\nUpgrade: " + head.upgrade + b"\r\n"
        return out + b"\r\n"

    def on_body(self, data: bytes) -> None:
        if self.response_done:
            return  # answered already (locally, or the backend did not wait): the body is read and dropped
        self.body_bytes += len(data)
        limit = self.client.server.config.max_body_size
        if limit and self.body_bytes > limit:
            if self.response_started:
                self.abandon()
                self.client.abort()
            else:
                self.client.reject(413)
            return
        if self.chunked:
            self.up_out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.up_out.append(data)

    def on_request_complete(self) -> None:
        if self.local:
            self.client.finished(self, self.keep)
            return
        if self.chunked:
            self.up_out.append(b"0\r\n\r\n")
        if self.up is not None and self.up_out:
            self.flush_up()
        if self.response_done:  # the backend answered before the body ended
            self.client.finished(self, self.keep)
        else:
            client = self.client
            client.deadline = client.loop.time() + client.timeouts.response_timeout

    def flush_up(self) -> None:
        up = self.up
        if up is None:
            return
        out = self.up_out
        if out:
            up.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            self.sent = True

    # -- choosing and connecting --

    def _next_endpoint(self) -> tuple[str, int]:
        backend = self.decision.backend
        assert backend is not None
        rr = self.client.server.rr
        i = rr.get(backend.name, 0)
        rr[backend.name] = i + 1
        endpoint = backend.endpoints[i % len(backend.endpoints)]
        return endpoint.ip, endpoint.port

    def _attach(self, upstream: _Upstream) -> None:
        self.up = upstream
        upstream.ex = self
        upstream.got_bytes = False
        self.tries += 1
        self.flush_up()

    async def _connect(self, first: tuple[str, int]) -> None:
        server = self.client.server
        backend = self.decision.backend
        assert backend is not None
        failure = 502
        for attempt in range(len(backend.endpoints)):
            ip, port = first if attempt == 0 else self._next_endpoint()
            try:
                upstream = await server.connect(ip, port)
            except TimeoutError:
                failure = 504
                continue
            except OSError as exc:
                log.debug("ingress: connect %s:%d: %s", ip, port, exc)
                continue
            if self.client.closing:
                upstream.transport.close()
                return
            self.client._resume(_CONNECTING)
            self._attach(upstream)
            return
        self.task = None
        self.fail(failure)

    # -- response side --

    def on_response_head(self, upstream: _Upstream, status: int, head: http1.ResponseHead) -> None:
        headers, length, chunked, upgrade = head
        self.response_started = True
        self.status = status
        client = self.client
        if status == 101:
            self.up_eof = False
            client.transport.write(b"%b%bConnection: upgrade\r\nUpgrade: %b\r\n\r\n"
                                   % (http1.status_line(status), headers, upgrade))
            return
        if self.upgrading:  # the backend refused the upgrade; the client's parser is past the request
            self.keep = False
        tail = b"\r\n"
        if not length and not (self.head_only or status in (204, 304) or status < 200):
            self.up_eof = not chunked
            if self.http11:
                upstream.rechunk = True
                tail = b"Transfer-Encoding: chunked\r\n\r\n"
            else:
                self.keep = False
        if not self.keep or client.server.stopping:
            tail = tail[:-2] + b"Connection: close\r\n\r\n"
        elif not self.http11:
            tail = tail[:-2] + b"Connection: keep-alive\r\n\r\n"
        upstream.down_out += (http1.STATUS_LINES.get(status) or http1.status_line(status)), headers, tail

    def on_response_complete(self, upstream: _Upstream, reusable: bool) -> None:
        client = self.client
        out = upstream.down_out
        if upstream.rechunk:
            upstream.rechunk = False
            out.append(b"0\r\n\r\n")
        if out:
            client.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        self.response_done = True
        server = client.server
        key = (self.decision.backend.name, self.status)  # type: ignore[union-attr]
        server.counters[key] = server.counters.get(key, 0) + 1
        self.up = None
        upstream.ex = None
        pool = server.pools.get(upstream.key)  # server.release(upstream), inline (hot path)
        if (reusable and self.complete and not self.up_out and not server.stopping and pool is not None
                and len(pool) < server.config.max_idle_per_endpoint):
            upstream.idle_since = upstream.loop.time()
            pool.append(upstream)
        elif reusable and self.complete and not self.up_out:
            server.release(upstream)
        else:
            upstream.transport.close()
        client.finished(self, self.keep)

    def on_upgraded(self, upstream: _Upstream, rest: bytes) -> None:
        client = self.client
        client.server.count(self.decision.backend.name, 101)  # type: ignore[union-attr]
        client.active = None
        upstream.ex = None
        upstream.tunnel = client.transport
        if rest:
            client.transport.write(rest)
        client.on_upgraded(upstream)

    def on_upstream_lost(self, upstream: _Upstream) -> None:
        self.up = None
        client = self.client
        if client.closing:
            return
        if not upstream.got_bytes:
            if (upstream.reused and not self.retried and self.method in http1.IDEMPOTENT
                    and self.body_bytes == 0 and not self.chunked and self.content_length <= 0):
                self.retried = True
                self.up_out.insert(0, self._request_head(self.decision.route))
                client._pause(_CONNECTING)
                key = upstream.key
                self.task = client.loop.create_task(self._connect(key))
                return
            self.fail(502)
        elif self.up_eof and self.response_started:
            self.on_response_complete(upstream, reusable=False)
        else:
            client.abort()

    def on_bad_response(self, upstream: _Upstream) -> None:
        upstream.ex = None
        upstream.transport.abort()
        self.up = None
        if self.response_started:
            self.client.abort()
        else:
            self.fail(502)

    def on_timeout(self) -> None:
        if not self.response_started and self.complete:
            self.abandon()
            self.fail(504)
        elif not self.complete and not self.response_started:
            self.abandon()
            self.client.reject(408)
        else:
            self.abandon()
            self.client.abort()

    def fail(self, status: int) -> None:
        """The backend could not answer: 502/504 (the connection stays usable only if the request was read)."""
        client = self.client
        if client.closing:
            return
        backend = self.decision.backend
        client.server.count(backend.name if backend else "-", status)
        keep = self.keep and self.complete
        client.transport.write(http1.local_response(status, close=not keep, head_only=self.head_only))
        self.response_done = True
        client._resume(_CONNECTING)
        client.finished(self, keep)

    def abandon(self) -> None:
        """Drop the upstream side (the client side is handled by the caller)."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        up = self.up
        self.up = None
        if up is not None:
            up.ex = None
            up.transport.abort()

    def on_client_lost(self) -> None:
        self.abandon()

    # -- local answers --

    def _answer_local(self, status: int) -> None:
        client = self.client
        client.server.count("-", status)
        self.status = status
        self.response_done = self.local = True
        self.keep = self.keep and not client.server.stopping
        client.transport.write(http1.local_response(status, close=not self.keep, head_only=self.head_only))
        if self.complete:
            client.finished(self, self.keep)

    def _answer_redirect(self, status: int, location: str | None) -> None:
        client = self.client
        try:
            extra = http1.header_line("Location", location or "")
        except ValueError:
            extra = b""
        if not location or not extra:
            self._answer_local(500)
            return
        client.server.count("-", status)
        self.status = status
        self.response_done = self.local = True
        self.keep = self.keep and not client.server.stopping
        client.transport.write(http1.local_response(status, close=not self.keep, head_only=self.head_only,
                                                    extra=extra))
        if self.complete:
            client.finished(self, self.keep)


class _Upstream(asyncio.Protocol):
    """One connection to a backend endpoint; idle in the pool or serving one exchange.

    The response parser has no per-header callback: while a head is incomplete its bytes are kept in `head_buf`,
    and when llhttp has accepted the head, the head is cut from there and sorted by `http1.scan_response_head`.
    """

    def __init__(self, server: IngressServer, key: tuple[str, int]) -> None:
        self.server = server
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.response_timeout = server.config.response_timeout
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: _Exchange | None = None
        self.in_head = True  # the next bytes belong to a response head
        self.head_buf = b""  # bytes of the head being received (from the start of the message on)
        self.informational = False
        self.down_out: list[bytes] = []
        self.rechunk = False  # the response body is re-framed as chunks for the client
        self.got_bytes = False
        self.reused = False
        self.idle_since = 0.0
        self.tunnel: Any = None
        self.stale = False  # the parser saw a HEAD response's head and must be replaced

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        ex = self.ex
        if ex is None:  # unsolicited bytes on an idle connection
            self.transport.abort()
            return
        self.got_bytes = True
        client = ex.client
        if self.in_head:
            self.head_buf += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.flush_down(client)
            ex.on_upgraded(self, data[exc.args[0]:])
            return
        except httptools.HttpParserError:
            if self.ex is not None:
                self.ex.on_bad_response(self)
            else:
                self.transport.abort()
            return
        if self.stale:
            self.parser = httptools.HttpResponseParser(self)
            self.stale = False
            self.in_head = True
            self.head_buf = b""
        elif self.in_head and len(self.head_buf) > _MAX_RESPONSE_HEAD:
            if self.ex is not None:
                self.ex.on_bad_response(self)
            return
        ex = self.ex
        if ex is not None:  # the response goes on (a complete one set the client's keep-alive deadline instead)
            client = ex.client
            client.deadline = self.loop.time() + self.response_timeout
            if self.down_out:
                self.flush_down(client)

    def flush_down(self, client: _Client) -> None:
        out = self.down_out
        if out:
            client.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forget(self)
        if self.tunnel is not None:
            self.tunnel.close()
            return
        ex = self.ex
        self.ex = None
        if ex is not None:
            ex.on_upstream_lost(self)

    def pause_writing(self) -> None:
        if self.ex is not None:
            self.ex.client._pause(_BACKPRESSURE)
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        if self.ex is not None:
            self.ex.client._resume(_BACKPRESSURE)
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    # -- httptools callbacks (no on_header: see the class docstring) --

    def on_headers_complete(self) -> None:
        ex = self.ex
        if ex is None:
            raise _Stop  # a response nobody asked for (behind a complete one): the connection is dropped
        if self.stale:
            return
        buf = self.head_buf
        start = 0 if buf[0] not in b"\r\n" else len(buf) - len(buf.lstrip(b"\r\n"))  # llhttp skips empty lines
        end = buf.find(b"\r\n\r\n", start) + 4
        if end - start > _MAX_RESPONSE_HEAD:
            raise http1.BadResponse("response head too large")  # llhttp reports it: the exchange gets 502
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 100 Continue / 103 Early Hints: the proxy answered Expect itself
            self.informational = True  # on_message_complete resets it
            self.head_buf = buf[end:]  # the next head starts right after (a 1xx has no body)
            return
        self.in_head = False
        self.head_buf = b""
        ex.on_response_head(self, status, http1.scan_response_head(buf[start:end]))
        if ex.head_only:  # llhttp cannot be told the request was HEAD: end here, parse on afresh
            self.stale = True
            self.reused = True
            ex.on_response_complete(self, self.parser.should_keep_alive())

    def on_body(self, data: bytes) -> None:
        if self.ex is None or self.stale:
            self.transport.abort()  # bytes after a HEAD response's head
        elif self.rechunk:
            self.down_out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.down_out.append(data)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None or self.stale or self.informational:
            self.informational = False
            return
        self.in_head = True
        if ex.status == 101:
            return  # the upgrade exception follows
        self.reused = True
        ex.on_response_complete(self, self.parser.should_keep_alive())
