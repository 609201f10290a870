"""The ingress HTTP proxy over real loopback sockets: aiohttp or raw-socket backends, real curl and raw bytes as
clients, a hand-built RouteTable looked up by the real `svcnet.ingress.match.lookup`.

Covers routing, round robin, upstream keep-alive reuse, connect-failure failover, 404/500/502/503/504, redirects,
header modifiers, X-Forwarded-*, chunked and large streamed bodies both ways with backpressure, WebSocket,
HTTP/1.0, HEAD, pipelining, 413, every request-smuggling / traversal rejection (400 and the backend saw nothing),
backend response heads (hop-by-hop headers cut out of the head passed on as sent, 1xx, malformed or oversized
heads answered 502), and a `set_table` that removes an endpoint. No sleeps: every wait is a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace

import aiohttp
import httptools
import pytest
from aiohttp import web

from svcnet.ingress import http1, proxy
from svcnet.ingress.model import (
    Backend,
    Endpoint,
    HeaderModifier,
    PathMatch,
    PathType,
    PortRoutes,
    Redirect,
    Route,
    RouteTable,
    VirtualHost,
)
from svcnet.netns import call_in_netns

DEADLINE = 10.0


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# ---- backends ------------------------------------------------------------------------------------------------


@dataclass
class AppBackend:
    """An aiohttp backend that records what reached it."""

    name: str
    ip: str
    port: int = 0
    requests: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.ip, self.port)

    async def start(self) -> AppBackend:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/chunked", self._chunked)
        app.router.add_get("/slow", self._slow)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port(self.ip)
        await web.TCPSite(self.runner, self.ip, self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _record(self, request: web.Request) -> None:
        self.requests.append(request)
        self.peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]

    async def _echo(self, request: web.Request) -> web.Response:
        self._record(request)
        body = await request.read()
        self.bodies.append(body)
        return web.Response(text=f"{self.name} {request.method} {request.path_qs} {len(body)}",
                            headers={"X-Backend": self.name})

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(5):
            await response.write(f"part{i};".encode())
        await response.write_eof()
        return response

    async def _slow(self, request: web.Request) -> web.Response:
        self._record(request)
        await self.release.wait()
        return web.Response(text="late")

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self._record(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(f"{self.name} echo {msg.data}")
        return ws


class Sink:
    """A raw TCP backend that records connections and bytes and answers nothing unless told to."""

    def __init__(self, ip: str = "127.0.0.3") -> None:
        self.ip = ip
        self.port = 0
        self.connections = 0
        self.received = bytearray()
        self.server: asyncio.AbstractServer | None = None
        self.handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.ip, self.port)

    async def start(self) -> Sink:
        self.port = free_port(self.ip)
        self.server = await asyncio.start_server(self._serve, self.ip, self.port)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.handler is not None:
                await self.handler(reader, writer)
            else:
                while data := await reader.read(65536):
                    self.received += data
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


# ---- tables and the server -----------------------------------------------------------------------------------


def prefix(path: str, *backends: Backend, **kwargs: object) -> Route:
    return Route(PathMatch(PathType.PREFIX, path), "ingress/default/test", backends=backends, **kwargs)  # type: ignore[arg-type]


def table(port: int, hosts: dict[str, tuple[Route, ...]], default: tuple[Route, ...] | None = None,
          **port_kwargs: object) -> RouteTable:
    vhosts = {host: VirtualHost(routes) for host, routes in hosts.items()}
    default_host = VirtualHost(default) if default is not None else None
    return RouteTable({port: PortRoutes(port, exact_hosts=vhosts, default_host=default_host, **port_kwargs)})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(routes: RouteTable, **config: object) -> AsyncIterator[proxy.IngressServer]:
    server = proxy.IngressServer(proxy.IngressConfig(bind_address="127.0.0.1", **config))  # type: ignore[arg-type]
    server.set_table(routes)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def backends() -> AsyncIterator[tuple[AppBackend, AppBackend]]:
    a = await AppBackend("A", "127.0.0.2").start()
    b = await AppBackend("B", "127.0.0.2").start()
    yield a, b
    a.release.set()
    b.release.set()
    await a.stop()
    await b.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = await Sink().start()
    yield s
    await s.stop()


# ---- clients -------------------------------------------------------------------------------------------------


async def curl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec("curl", "-sS", "--max-time", "10", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def curl_status(port: int, path: str = "/", host: str = "a.test", *args: str) -> tuple[int, str]:
    code, out, err = await curl("-o", "-", "-w", "\n%{http_code}", "-H", f"Host: {host}", *args,
                                f"http://127.0.0.1:{port}{path}")
    assert code == 0, err
    body, _, status = out.rpartition("\n")
    return int(status), body


async def raw(port: int, data: bytes, timeout: float = DEADLINE) -> bytes:
    """Send `data`, read until the proxy closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()


# ---- routing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "path", "status", "body"), [
    pytest.param("a.test", "/a/x", 200, "A GET /a/x 0", id="host a, prefix /a"),
    pytest.param("a.test", "/b", 200, "B GET /b 0", id="host a, prefix /b"),
    pytest.param("A.TEST:80", "/a", 200, "A GET /a 0", id="host case and port ignored"),
    pytest.param("b.test", "/anything?q=1", 200, "B GET /anything?q=1 0", id="host b"),
    pytest.param("a.test", "/c", 404, "default backend - 404", id="no path"),
    pytest.param("c.test", "/a", 404, "default backend - 404", id="no host"),
    pytest.param("a.test", "/%61/x", 200, "A GET /%61/x 0", id="matched decoded, forwarded as sent"),
])
async def test_routes_to_the_right_backend(backends: tuple[AppBackend, AppBackend], host: str, path: str,
                                           status: int, body: str) -> None:
    a, b = backends
    port = free_port()
    routes = table(port, {"a.test": (prefix("/a", Backend("ns/a:80", (a.endpoint,))),
                                     prefix("/b", Backend("ns/b:80", (b.endpoint,)))),
                          "b.test": (prefix("/", Backend("ns/b:80", (b.endpoint,))),)})
    async with running(routes):
        assert await curl_status(port, path, host) == (status, body)


async def test_round_robin_over_endpoints(backends: tuple[AppBackend, AppBackend]) -> None:
    a, b = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/ab:80", (a.endpoint, b.endpoint))),)})):
        names = [(await curl_status(port, "/"))[1].split()[0] for _ in range(6)]
    assert names == ["A", "B", "A", "B", "A", "B"]


async def test_upstream_connections_are_reused(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)})) as server:
        for _ in range(5):  # five client connections, one after another
            assert (await curl_status(port, "/x"))[0] == 200
        urls = [f"http://127.0.0.1:{port}/{i}" for i in range(5)]  # five requests on one client connection
        code, _, err = await curl("-H", "Host: a.test", *urls)
        assert code == 0, err
        assert len(a.requests) == 10
        assert len(a.peers) == 1
        assert server.upstream_connects == 1


async def test_a_dead_endpoint_costs_no_failed_request(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    dead = Endpoint("127.0.0.2", free_port("127.0.0.2"))  # nothing listens: connection refused
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (dead, a.endpoint))),)})) as server:
        results = [await curl_status(port, f"/{i}") for i in range(4)]
    assert [status for status, _ in results] == [200, 200, 200, 200]
    assert server.counters == {("ns/a:80", 200): 4}


@pytest.mark.parametrize(("route", "status"), [
    pytest.param(prefix("/", Backend("ns/none:80", ())), 503, id="no endpoints: 503"),
    pytest.param(prefix("/", Backend("ns/unresolved:80", (), status_when_empty=500)), 500, id="unresolved: 500"),
    pytest.param(prefix("/", Backend("ns/dead:80", (Endpoint("127.0.0.2", 1),))), 502, id="refused: 502"),
])
async def test_error_statuses(route: Route, status: int) -> None:
    port = free_port()
    async with running(table(port, {"a.test": (route,)})) as server:
        got, body = await curl_status(port, "/")
        assert got == status
        assert f"<title>{status} " in body
        assert sum(server.counters.values()) == 1


async def test_a_slow_backend_gets_504(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)}),
                       response_timeout=0.3):
        assert (await curl_status(port, "/slow"))[0] == 504


async def test_redirect() -> None:
    port = free_port()
    route = prefix("/old", redirect=Redirect(scheme="https", prefix_path="/new", status_code=301))
    async with running(table(port, {"a.test": (route,)})):
        code, out, err = await curl("-si", "-H", "Host: a.test", f"http://127.0.0.1:{port}/old/page?x=1")
    assert code == 0, err
    assert out.startswith("HTTP/1.1 301 ")
    assert "Location: https://a.test/new/page?x=1\r\n" in out


async def test_headers_sent_to_the_backend(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    modifier = HeaderModifier(set=(("X-Set", "s"),), add=(("X-Add", "2"),), remove=("X-Remove",))
    route = prefix("/", Backend("ns/a:80", (a.endpoint,)), request_headers=modifier)
    async with running(table(port, {"a.test": (route,)})):
        status, _ = await curl_status(port, "/h", "a.test", "-H", "X-Set: old", "-H", "X-Add: 1",
                                      "-H", "X-Remove: gone", "-H", "X-Forwarded-For: 10.1.2.3",
                                      "-H", "Connection: keep-alive, X-Hop", "-H", "X-Hop: hop",
                                      "-H", "X-Real-IP: spoofed", "-H", "Keep-Alive: timeout=5")
    assert status == 200
    headers = a.requests[0].headers
    assert headers.getall("X-Set") == ["s"]
    assert headers.getall("X-Add") == ["1", "2"]
    assert "X-Remove" not in headers
    assert headers["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1"
    assert headers.getall("X-Real-IP") == ["127.0.0.1"]
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] == "a.test"
    assert headers["X-Forwarded-Port"] == str(port)
    assert headers["Host"] == "a.test"
    for hop in ("X-Hop", "Keep-Alive"):
        assert hop not in headers


# ---- bodies --------------------------------------------------------------------------------------------------


async def test_chunked_both_ways(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)})):
        code, out, err = await curl("-H", "Host: a.test", "-H", "Transfer-Encoding: chunked", "--data-binary",
                                    "hello chunked world", f"http://127.0.0.1:{port}/up")
        assert (code, out) == (0, "A POST /up 19"), err
        assert a.bodies == [b"hello chunked world"]
        code, out, err = await curl("-si", "-H", "Host: a.test", f"http://127.0.0.1:{port}/chunked")
        assert code == 0, err
        assert "Transfer-Encoding: chunked" in out
        assert out.endswith("part0;part1;part2;part3;part4;")


async def test_http10_client_gets_a_close_delimited_body(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)})):
        answer = await raw(port, b"GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower() and b"Connection: close" in head
        assert body == b"part0;part1;part2;part3;part4;"
        answer = await raw(port, b"GET /x HTTP/1.0\r\n\r\n")  # no Host: the default host, if any
        assert answer.startswith(b"HTTP/1.1 404 ")


async def test_head_and_pipelining(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)})):
        answer = await raw(port, b"HEAD /1 HTTP/1.1\r\nHost: a.test\r\n\r\n"
                                 b"GET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n"
                                 b"POST /3 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc"
                                 b"GET /4 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    parts = answer.split(b"HTTP/1.1 200 OK\r\n")
    assert len(parts) == 5, answer
    assert parts[1].endswith(b"\r\n\r\n")  # HEAD: no body
    assert parts[2].endswith(b"A GET /2 0")
    assert parts[3].endswith(b"A POST /3 3")
    assert parts[4].endswith(b"A GET /4 0")
    assert [r.path for r in a.requests] == ["/1", "/2", "/3", "/4"]
    assert len(a.peers) == 1


async def _fill(writer: asyncio.StreamWriter, total: int) -> int:
    """Write up to `total` bytes; return how many went out before the writes stalled (backpressure)."""
    sent = 0
    chunk = b"x" * (1 << 16)
    while sent < total:
        writer.write(chunk)
        sent += len(chunk)
        try:
            await asyncio.wait_for(writer.drain(), 0.5)
        except TimeoutError:
            return sent
    return sent


def _buffered(server: proxy.IngressServer) -> int:
    total = 0
    for client in server.clients:
        total += client.transport.get_write_buffer_size()
        if client.active is not None and client.active.up is not None:
            total += client.active.up.transport.get_write_buffer_size()
    return total


async def test_large_upload_streams_with_backpressure(sink: Sink) -> None:
    size = 64 << 20
    reading = asyncio.Event()
    received = 0

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        await reading.wait()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: %d\r\n" % size in head
        while received < size:
            data = await reader.read(1 << 20)
            if not data:
                break
            received += len(data)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    sink.handler = slow_reader
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)}),
                       max_body_size=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /big HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % size)
        sent = await _fill(writer, size)
        assert sent < size // 2, "the proxy kept reading although the backend did not"
        assert _buffered(server) < 8 << 20
        reading.set()
        rest = asyncio.create_task(_fill(writer, size - sent))
        answer = await asyncio.wait_for(reader.readuntil(b"ok"), DEADLINE)
        await rest
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert received == size


async def test_large_download_streams_with_backpressure(sink: Sink) -> None:
    size = 64 << 20
    written = 0
    stalled = asyncio.Event()

    async def big_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (1 << 16, b"y" * (1 << 16))
        while written < size:
            writer.write(chunk)
            written += 1 << 16
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except TimeoutError:
                stalled.set()
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    sink.handler = big_chunked
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n")
        await asyncio.wait_for(stalled.wait(), DEADLINE)  # the client reads nothing yet: the backend must stall
        assert written < size // 2
        assert _buffered(server) < 8 << 20
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        body = 0
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), DEADLINE)
            n = int(line.strip(), 16)
            if n == 0:
                break
            body += len(await reader.readexactly(n + 2)) - 2
        writer.close()
    assert body == size


async def test_body_size_limit(sink: Sink) -> None:
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)}),
                       max_body_size=1000) as server:
        answer = await raw(port, b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert server.upstream_connects == 0
        status, _ = await curl_status(port, "/", "a.test", "--data-binary", "x" * 5000,
                                      "-H", "Transfer-Encoding: chunked")
        assert status == 413
    assert sink.received.count(b"x") <= 1000  # a chunked body is cut off at the limit


async def test_websocket_upgrade_echo(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)})) as server:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"http://127.0.0.1:{port}/ws", headers={"Host": "a.test"}) as ws:
            for text in ("one", "two" * 10000):
                await ws.send_str(text)
                msg = await asyncio.wait_for(ws.receive(), DEADLINE)
                assert msg.data == f"A echo {text}"
        assert server.counters == {("ns/a:80", 101): 1}


async def test_removed_endpoint_gets_no_new_requests(backends: tuple[AppBackend, AppBackend]) -> None:
    a, b = backends
    port = free_port()
    both = table(port, {"a.test": (prefix("/", Backend("ns/ab:80", (a.endpoint, b.endpoint))),)})
    async with running(both) as server:
        for _ in range(2):
            await curl_status(port, "/")
        assert len(a.requests) == len(b.requests) == 1
        server.set_table(table(port, {"a.test": (prefix("/", Backend("ns/ab:80", (a.endpoint,))),)}))
        for _ in range(4):
            assert (await curl_status(port, "/"))[1].startswith("A ")
        assert len(b.requests) == 1


async def test_set_table_opens_and_closes_listeners(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    first, second = free_port(), free_port()
    route = (prefix("/", Backend("ns/a:80", (a.endpoint,))),)
    async with running(table(first, {"a.test": route})) as server:
        server.set_table(table(second, {"a.test": route}))
        await server.listeners_synced()
        assert (await curl_status(second, "/"))[0] == 200
        code, _, _ = await curl(f"http://127.0.0.1:{first}/")
        assert code == 7  # connection refused: the old port is closed
        assert server.metrics()["listening"] == [second]


async def test_stop_drains_in_flight_requests(backends: tuple[AppBackend, AppBackend]) -> None:
    a, _ = backends
    port = free_port()
    server = proxy.IngressServer(proxy.IngressConfig(bind_address="127.0.0.1"))
    server.set_table(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (a.endpoint,))),)}))
    await server.start()
    request = asyncio.create_task(curl_status(port, "/slow"))
    await until(lambda: len(a.requests) == 1, "the slow request to arrive")
    stopping = asyncio.create_task(server.stop())
    await until(lambda: not server.metrics()["listening"], "the listener to close")
    a.release.set()
    assert await request == (200, "late")
    await stopping


# ---- backend responses ---------------------------------------------------------------------------------------

_NGINX_HEAD = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
               b"Connection: keep-alive\r\nETag: \"x\"\r\n\r\n")


@pytest.mark.parametrize(("raw", "headers", "length", "chunked", "upgrade"), [
    pytest.param(_NGINX_HEAD, b"Server: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nETag: \"x\"\r\n",
                 True, False, b"", id="nginx: Connection cut, the rest as sent"),
    pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", b"", False, False, b"", id="no headers"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", b"X-A: 1\r\n", False, False, b"", id="nothing to cut"),
    pytest.param(b"HTTP/1.1 200 OK\r\nKEEP-ALIVE: 5\r\nTe: x\r\nX: 1\r\nTrailer: Y\r\nProxy-Connection: a\r\n"
                 b"connection: close\r\nZ: 2\r\n\r\n", b"X: 1\r\nZ: 2\r\n", False, False, b"",
                 id="every hop-by-hop name, any case"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked \r\nX: 1\r\n\r\n", b"X: 1\r\n", False, True,
                 b"", id="chunked last: chunked"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", b"", False, False, b"",
                 id="chunked not last: read until close"),
    pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: k\r\n\r\n", b"Sec-WebSocket-Accept: k\r\n", False, False, b"WebSocket",
                 id="upgrade value kept as sent"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTEx: 1\r\nX-Connection: 2\r\nContent-Lengthy: 3\r\n\r\n",
                 b"TEx: 1\r\nX-Connection: 2\r\nContent-Lengthy: 3\r\n", False, False, b"",
                 id="names that only start or end like framing ones"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTrailer: X-Chunked\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\n",
                 b"Content-Length: 1\r\n", True, False, b"h2c", id="only Transfer-Encoding says chunked"),
    pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"", False, False, b"", id="all cut"),
    pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\nX: 1\r\nTE: a\r\nY: 2\r\nUpgrade:\t a b \r\n\r\n",
                 b"X: 1\r\nY: 2\r\n", False, False, b"a b", id="first, middle and last cut"),
])
def test_scan_response_head(raw: bytes, headers: bytes, length: bool, chunked: bool, upgrade: bytes) -> None:
    assert http1.scan_response_head(raw) == (headers, length, chunked, upgrade)


def _reference_scan(raw: bytes) -> http1.ResponseHead:
    """What `scan_response_head` must answer, written the slow and obvious way: line by line."""
    kept, length, chunked, upgrade = [], False, False, b""
    for line in raw.split(b"\r\n")[1:-2]:
        name, _, value = line.partition(b":")
        lname = name.lower()
        if lname == b"content-length":
            length = True
        elif lname == b"transfer-encoding":
            chunked = value.rstrip(b" \t").lower().endswith(b"chunked")
        elif lname == b"upgrade":
            upgrade = value.strip(b" \t")
        if lname not in http1.HOP_BY_HOP:
            kept.append(line + b"\r\n")
    return b"".join(kept), length, chunked, upgrade


def test_scan_response_head_agrees_with_a_line_by_line_scan() -> None:
    rng = random.Random(11)
    names = [b"Connection", b"Keep-Alive", b"Proxy-Connection", b"TE", b"Trailer", b"Transfer-Encoding", b"Upgrade",
             b"Content-Length", b"Content-Type", b"Connectionx", b"X-Upgrade", b"Tex", b"Server", b"ETag"]
    values = [b"", b" chunked", b"gzip, chunked ", b"chunked, gzip", b" keep-alive", b"\tWebSocket \t", b" 1"]
    for _ in range(3000):
        lines = [rng.choice(names) + b":" + rng.choice(values) for _ in range(rng.randrange(0, 7))]
        lines = [bytes(c ^ 32 if 97 <= c | 32 <= 122 and rng.random() < 0.3 else c for c in line) for line in lines]
        raw = b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
        assert http1.scan_response_head(raw) == _reference_scan(raw), raw


class _Recorder:
    def __init__(self) -> None:
        self.heads = 0

    def on_headers_complete(self) -> None:
        self.heads += 1


MALFORMED_RESPONSES = [
    pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", id="bare LF line ends"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok", id="bare LF in the head"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 2\r\n\r\nok", id="bare CR in the head"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 2\r\n\r\nok", id="obs-fold"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", id="space before colon"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", id="two CLs"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                 id="CL and TE"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", id="NUL in a value"),
    pytest.param(b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 2\r\n\r\nok", id="line without colon"),
]


@pytest.mark.parametrize("response", MALFORMED_RESPONSES)
def test_llhttp_refuses_what_scan_response_head_relies_on(response: bytes) -> None:
    """`scan_response_head` copies header lines as sent: this pins the strictness of llhttp that makes it safe."""
    recorder = _Recorder()
    with pytest.raises(httptools.HttpParserError):
        httptools.HttpResponseParser(recorder).feed_data(response)
    assert recorder.heads == 0


def _answering(*parts: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A sink handler that reads one request head and writes `parts` one after another."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for part in parts:
            writer.write(part)
            await writer.drain()
        await reader.read()  # until the proxy closes or pools the connection and the test ends
    return answer


async def test_response_head_passes_on_without_hop_by_hop_headers(sink: Sink) -> None:
    sink.handler = _answering(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: ",
                              b"keep-alive\r\nKeep-Alive: timeout=5\r\nX-Kept: 1\r\nTransfer-",
                              b"Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})) as server:
        answer = await raw(port, b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"HTTP/1.1 200 OK", b"X-Kept: 1", b"Transfer-Encoding: chunked",
                                    b"Connection: close"]
    assert body == b"3\r\nabc\r\n0\r\n\r\n"
    assert server.counters == {("ns/sink:80", 200): 1}


@pytest.mark.parametrize("response", [
    *MALFORMED_RESPONSES,
    pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-Big: %s\r\n" % (b"b" * 1000) * 70 + b"Content-Length: 2\r\n\r\nok",
                 id="head over 64 KiB"),
])
async def test_malformed_backend_response_gets_502(sink: Sink, response: bytes) -> None:
    sink.handler = _answering(response)
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})) as server:
        answer = await raw(port, b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
        assert server.counters == {("ns/sink:80", 502): 1}
        assert server.metrics()["idle_upstream_connections"] == 0


# ---- safety --------------------------------------------------------------------------------------------------

_H = b"Host: a.test\r\n"
UNSAFE = [
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="CL and TE"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", id="two CLs"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                 id="repeated CL"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Content-Length: 3, 4\r\n\r\nabcd", id="CL list"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Content-Length: +3\r\n\r\nabc", id="CL sign"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: gzip\r\n\r\nabc", id="TE not chunked"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                 id="TE unknown coding"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
                 id="TE not ending in chunked"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", id="TE xchunked"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A: b\r\n c\r\n\r\n", id="obs-fold"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A : b\r\n\r\n", id="space before colon"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A\t: b\r\n\r\n", id="tab before colon"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A: b\rX-B: c\r\n\r\n", id="CR in value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A: b\nX-B: c\r\n\r\n", id="LF in value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-A: b\x00c\r\n\r\n", id="NUL in value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-\x00A: b\r\n\r\n", id="NUL in name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X\rA: b\r\n\r\n", id="CR in name"),
    pytest.param(b"GET /a\rb HTTP/1.1\r\n" + _H + b"\r\n", id="CR in target"),
    pytest.param(b"GET /a\nb HTTP/1.1\r\n" + _H + b"\r\n", id="LF in target"),
    pytest.param(b"GET /a\x00b HTTP/1.1\r\n" + _H + b"\r\n", id="NUL in target"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                 id="chunk size not hex"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
                 id="negative chunk size"),
    pytest.param(b"POST / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\na\r\n",
                 id="chunk size overflow"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="HTTP/1.1 without Host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", id="two Hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", id="repeated Host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n", id="slash in Host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n", id="userinfo in Host"),
    pytest.param(b"GET a/b HTTP/1.1\r\n" + _H + b"\r\n", id="target not origin-form"),
    pytest.param(b"GET * HTTP/1.1\r\n" + _H + b"\r\n", id="asterisk for GET"),
    pytest.param(b"GET ftp://a.test/ HTTP/1.1\r\n" + _H + b"\r\n", id="absolute-form, other scheme"),
    pytest.param(b"CONNECT a.test:443 HTTP/1.1\r\n" + _H + b"\r\n", id="CONNECT authority-form"),
    pytest.param(b"GET /a/../b HTTP/1.1\r\n" + _H + b"\r\n", id="dot-dot segment"),
    pytest.param(b"GET /a/./b HTTP/1.1\r\n" + _H + b"\r\n", id="dot segment"),
    pytest.param(b"GET /.. HTTP/1.1\r\n" + _H + b"\r\n", id="trailing dot-dot"),
    pytest.param(b"GET /%2e%2e/etc HTTP/1.1\r\n" + _H + b"\r\n", id="encoded dot-dot"),
    pytest.param(b"GET /%2E./etc HTTP/1.1\r\n" + _H + b"\r\n", id="half-encoded dot-dot"),
    pytest.param(b"GET /..%2fetc HTTP/1.1\r\n" + _H + b"\r\n", id="dot-dot encoded slash"),
    pytest.param(b"GET /a%2Fb HTTP/1.1\r\n" + _H + b"\r\n", id="encoded slash"),
    pytest.param(b"GET /a%5cb HTTP/1.1\r\n" + _H + b"\r\n", id="encoded backslash"),
    pytest.param(b"GET /a\\..\\b HTTP/1.1\r\n" + _H + b"\r\n", id="backslash"),
    pytest.param(b"GET /a%00b HTTP/1.1\r\n" + _H + b"\r\n", id="encoded NUL"),
    pytest.param(b"GET /a%zz HTTP/1.1\r\n" + _H + b"\r\n", id="bad percent-encoding"),
    pytest.param(b"GET /a#frag HTTP/1.1\r\n" + _H + b"\r\n", id="fragment"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"\r\nGET /a/../b HTTP/1.1\r\n" + _H + b"\r\n",
                 id="pipelined bad request"),
]


@pytest.mark.parametrize("request_bytes", UNSAFE)
async def test_unsafe_requests_get_400_and_never_reach_the_backend(sink: Sink, request_bytes: bytes) -> None:
    port = free_port()
    pipelined = request_bytes.count(b" HTTP/1.1\r\n") > 1
    if pipelined:  # the first (good) request is answered, then the bad one is refused
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sink.received += await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            while data := await reader.read(65536):
                sink.received += data
        sink.handler = answer
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})) as server:
        answer = await raw(port, request_bytes)
        if pipelined:
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.split(b"HTTP/1.1 ")[-1].startswith(b"400 "), answer
        assert b"Connection: close" in answer
        if pipelined:
            assert sink.received.count(b"HTTP/1.1") == 1 and b".." not in sink.received
        else:
            assert server.upstream_connects == 0
            assert sink.connections == 0 and not sink.received
        assert server.counters[("-", 400)] == 1


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-Big: " + b"a" * (33 << 10) + b"\r\n\r\n", id="one big header"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(40))
                 + b"\r\n", id="many headers"),
    pytest.param(b"GET / HTTP/1.1\r\n" + _H + b"X-Endless: " + b"c" * (256 << 10), id="a header that never ends"),
])
async def test_header_section_over_32k_gets_431(sink: Sink, request_bytes: bytes) -> None:
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})) as server:
        answer = await raw(port, request_bytes)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert server.upstream_connects == 0 and sink.connections == 0


@pytest.mark.parametrize(("request_bytes", "target"), [
    pytest.param(b"OPTIONS * HTTP/1.1\r\n" + _H + b"\r\n", "*", id="OPTIONS *"),
    pytest.param(b"GET http://a.test/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n", "/x?y=1", id="absolute-form"),
    pytest.param(b"GET /.well-known/x HTTP/1.1\r\n" + _H + b"\r\n", "/.well-known/x", id="dot file is no segment"),
    pytest.param(b"GET /a%20b HTTP/1.1\r\n" + _H + b"\r\n", "/a%20b", id="encoded space kept"),
])
async def test_accepted_targets(sink: Sink, request_bytes: bytes, target: str) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sink.received += await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    sink.handler = answer
    port = free_port()
    async with running(table(port, {"a.test": (prefix("/", Backend("ns/sink:80", (sink.endpoint,))),)})):
        response = await raw(port, request_bytes.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    assert response.startswith(b"HTTP/1.1 204 ")
    assert sink.received.split(b" ")[1] == target.encode()
    assert b"\r\nHost: a.test\r\n" in sink.received


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="connect_timeout"):
        proxy.IngressConfig(connect_timeout=0)
    assert replace(proxy.IngressConfig(), max_body_size=5).max_body_size == 5


# ---- network namespace -----------------------------------------------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip(8) to create a network namespace")
    name = f"svcnet-ingress-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


async def test_listens_and_connects_inside_the_namespace(netns: str) -> None:
    backend = AppBackend("NS", "127.0.0.1")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend._echo)
    backend.runner = web.AppRunner(app, access_log=None)
    await backend.runner.setup()
    sock = call_in_netns(netns, lambda: socket.socket())
    sock.bind(("127.0.0.1", 0))
    backend.port = sock.getsockname()[1]
    await web.SockSite(backend.runner, sock).start()
    port = free_port()
    try:
        async with running(table(port, {"a.test": (prefix("/", Backend("ns/a:80", (backend.endpoint,))),)}),
                           netns=netns):
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", netns, "curl", "-sS", "--max-time", "10", "-H", "Host: a.test",
                f"http://127.0.0.1:{port}/in", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            assert out == b"NS GET /in 0", err
            code, _, _ = await curl(f"http://127.0.0.1:{port}/")  # from the host's namespace: nothing listens
            assert code == 7
    finally:
        await backend.stop()
