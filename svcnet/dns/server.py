"""`svcnet dns`: the cluster DNS server — informers on Services and EndpointSlices feed `zone.build`; queries
are answered from pre-encoded replies where possible, from the zone otherwise, and names outside the cluster
domain are forwarded.

Hot path: a UDP datagram whose bytes (minus the ID) were seen since the last zone change is answered with one
dict lookup and the ID patched in. A miss is parsed with dnslib and resolved; a packet that does not parse gets
FORMERR (or is dropped when even the header is missing) and never stops the server. Until the informers have
synced every query gets SERVFAIL. A changed Service or slice rebuilds the zone within `rebuild_delay` and clears
the answer cache, so a deleted service's name disappears at once. TCP carries the same answers, length-prefixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dnslib
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from svcnet.api import resources
from svcnet.client import Client, Handlers, Informer
from svcnet.dns import resolver, wire, zone
from svcnet.dns.forward import Forwarder
from svcnet.netns import Entered

log = logging.getLogger(__name__)
SERVICES = resources.require("", "v1", "services")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
MAX_CACHED = 200_000
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
                   2.048, 4.096, 8.192)


@dataclass(frozen=True)
class DNSConfig:
    listen: tuple[str, int] = ("127.96.0.10", 53)
    domain: str = "cluster.local"
    ttl: int = 5
    upstreams: tuple[tuple[str, int], ...] = ()
    rebuild_delay: float = 0.02
    metrics_address: tuple[str, int] | None = ("127.0.0.1", 9153)
    health_address: tuple[str, int] | None = ("127.0.0.1", 8080)
    netns: str = ""  # serve DNS from inside this network namespace (a node's), the rest stays here


@dataclass
class Stats:
    requests: dict[str, int] = field(default_factory=dict)  # by query type
    responses: dict[str, int] = field(default_factory=dict)  # by rcode
    cache_hits: int = 0
    cache_misses: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    builds: int = 0
    last_build_seconds: float = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency[i] += 1
                break
        else:
            self.latency[-1] += 1
        self.latency_sum += seconds


class _Collector:
    """CoreDNS's metric names, read from plain counters at scrape time (nothing on the hot path)."""

    def __init__(self, stats: Stats, forwarder: Forwarder) -> None:
        self.stats, self.forwarder = stats, forwarder

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily("coredns_dns_requests", "DNS requests by type.", labels=["type"])
        for qtype, count in self.stats.requests.items():
            requests.add_metric([qtype], count)
        responses = CounterMetricFamily("coredns_dns_responses", "DNS responses by rcode.", labels=["rcode"])
        for rcode, count in self.stats.responses.items():
            responses.add_metric([rcode], count)
        hits = CounterMetricFamily("coredns_cache_hits", "Answers from the pre-encoded cache.", labels=["type"])
        hits.add_metric(["success"], self.stats.cache_hits)
        hits.add_metric(["forward"], self.forwarder.hits)
        misses = CounterMetricFamily("coredns_cache_misses", "Queries that needed the zone.")
        misses.add_metric([], self.stats.cache_misses)
        buckets, total = [], 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.stats.latency, strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), total))
        latency = HistogramMetricFamily("coredns_dns_request_duration_seconds",
                                        "Time to answer a query that missed the cache.")
        latency.add_metric([], buckets, self.stats.latency_sum)
        builds = CounterMetricFamily("svcnet_dns_zone_builds", "Zone rebuilds.")
        builds.add_metric([], self.stats.builds)
        build = GaugeMetricFamily("svcnet_dns_zone_build_seconds", "How long the last zone rebuild took.")
        build.add_metric([], self.stats.last_build_seconds)
        yield from (requests, responses, hits, misses, latency, builds, build)


class DNSServer:
    def __init__(self, client: Client, config: DNSConfig) -> None:
        self.client = client
        self.config = config
        self.zone: zone.Zone | None = None
        self.cache: dict[bytes, bytes] = {}
        self.stats = Stats()
        self.forwarder = Forwarder(list(config.upstreams), {config.listen})
        if self.forwarder.loops:
            log.warning("dropped upstreams that are this server itself (a forwarding loop): %s",
                        self.forwarder.loops)
        self.services = Informer(client, SERVICES)
        self.slices = Informer(client, SLICES)
        changed = Handlers(on_add=lambda o: self._changed(), on_update=lambda o, n: self._changed(),
                           on_delete=lambda o: self._changed())
        self.services.add_handlers(changed)
        self.slices.add_handlers(changed)
        self._rebuild_pending = False
        self.zone_options = zone.ZoneOptions(dns_ips=(config.listen[0],))
        self.transport: asyncio.DatagramTransport | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self.stats, self.forwarder))  # type: ignore[arg-type]

    # ---- the zone ----------------------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.zone is None or self._rebuild_pending:
            return
        self._rebuild_pending = True
        asyncio.get_running_loop().call_later(self.config.rebuild_delay, self._rebuild)

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        started = time.perf_counter()
        self.zone = zone.build(self.services.items(), self.slices.items(), [], self.config.domain, self.config.ttl,
                               options=self.zone_options)
        self.cache = {}
        self.stats.builds += 1
        self.stats.last_build_seconds = time.perf_counter() - started

    # ---- answering ---------------------------------------------------------------------------------------------

    def answer_cached(self, packet: bytes) -> bytes | None:
        reply = self.cache.get(packet[2:])
        if reply is not None:
            self.stats.cache_hits += 1
            return packet[:2] + reply[2:]
        return None

    async def answer(self, packet: bytes, tcp: bool = False) -> bytes | None:
        """The reply to one query packet (None: drop it)."""
        started = time.perf_counter()
        self.stats.cache_misses += 1
        try:
            request = dnslib.DNSRecord.parse(packet)
        except (dnslib.DNSError, ValueError, IndexError, struct.error, UnicodeError):
            self._count("FORMERR", "other")
            return wire.formerr(packet)
        if request.header.qr:
            return None
        reply, cacheable = await self._resolve(request)
        if self.forwarder.upstreams and request.header.rd:
            reply.header.ra = 1  # recursion is available: other names are forwarded
        data = bytes(reply.pack())
        if not tcp and len(data) > wire.udp_size(request):
            data = wire.truncate(reply)
        elif cacheable and not tcp and len(self.cache) < MAX_CACHED:
            self.cache[packet[2:]] = data
        self._count(dnslib.RCODE.get(reply.header.rcode), dnslib.QTYPE.get(request.q.qtype) if request.questions
                    else "none")
        self.stats.observe(time.perf_counter() - started)
        return data

    def _count(self, rcode: str, qtype: str) -> None:
        self.stats.responses[rcode] = self.stats.responses.get(rcode, 0) + 1
        self.stats.requests[qtype] = self.stats.requests.get(qtype, 0) + 1

    async def _resolve(self, request: dnslib.DNSRecord) -> tuple[dnslib.DNSRecord, bool]:
        """(reply, whether it may be cached as bytes until the zone changes)."""
        if self.zone is None:
            reply = request.reply()
            reply.header.rcode = dnslib.RCODE.SERVFAIL
            return reply, False
        local = resolver.resolve(self.zone, request)
        if local is not None:
            return await self._chase(request, local)
        if not self.forwarder.upstreams:
            reply = request.reply()
            reply.header.rcode = dnslib.RCODE.REFUSED
            return reply, False
        forwarded = await self.forwarder.query(request)
        if forwarded is None:
            reply = request.reply()
            reply.header.rcode = dnslib.RCODE.SERVFAIL
            return reply, False
        return dnslib.DNSRecord.parse(forwarded), False

    async def _chase(self, request: dnslib.DNSRecord, reply: dnslib.DNSRecord) -> tuple[dnslib.DNSRecord, bool]:
        """An ExternalName's CNAME gets the target's records appended when an upstream resolves them."""
        cnames = [rr for rr in reply.rr if rr.rtype == dnslib.QTYPE.CNAME]
        if not cnames or request.q.qtype == dnslib.QTYPE.CNAME or not self.forwarder.upstreams:
            return reply, True
        target = str(cnames[-1].rdata)
        if self.zone is not None and resolver.in_zone(self.zone, dnslib.DNSLabel(target)):
            return reply, True
        followed = await self.forwarder.query(dnslib.DNSRecord.question(target, dnslib.QTYPE.get(request.q.qtype)))
        if followed is not None:
            with contextlib.suppress(dnslib.DNSError):
                for rr in dnslib.DNSRecord.parse(followed).rr:
                    reply.add_answer(rr)
        return reply, False

    # ---- transports --------------------------------------------------------------------------------------------

    async def serve_udp(self) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                cached = server.answer_cached(data)
                if cached is not None:
                    transport.sendto(cached, addr)
                else:
                    loop.create_task(server._reply_udp(data, addr))

            def error_received(self, exc: Exception) -> None:
                log.debug("udp: %s", exc)

        if self.config.netns:
            sock = self._netns_socket(socket.SOCK_DGRAM)
            transport, _ = await loop.create_datagram_endpoint(Protocol, sock=sock)
        else:
            transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=self.config.listen)
        self.transport = transport

    async def _reply_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.answer(data)
        except Exception:  # noqa: BLE001 — one bad query must never stop the server
            log.exception("query from %s failed", addr)
            reply = wire.formerr(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def _netns_socket(self, kind: int) -> socket.socket:
        with Entered(self.config.netns) as entered:
            sock = entered.socket(socket.AF_INET6 if ":" in self.config.listen[0] else socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.config.listen)
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
        return sock

    async def serve_tcp(self) -> asyncio.AbstractServer:
        if self.config.netns:
            return await asyncio.start_server(self._tcp_client, sock=self._netns_socket(socket.SOCK_STREAM))
        return await asyncio.start_server(self._tcp_client, *self.config.listen)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))[0]
                data = await asyncio.wait_for(reader.readexactly(size), 10)
                try:
                    reply = await self.answer(data, tcp=True)
                except Exception:  # noqa: BLE001
                    log.exception("tcp query failed")
                    reply = wire.formerr(data)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    # ---- health and metrics ------------------------------------------------------------------------------------

    def _apps(self) -> web.Application:
        async def health(request: web.Request) -> web.Response:
            return web.Response(text="OK")

        async def ready(request: web.Request) -> web.Response:
            return web.Response(text="OK") if self.zone is not None else web.Response(status=503, text="not ready")

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_get("/ready", ready)
        app.router.add_get("/metrics", metrics)
        return app

    async def run(self) -> None:
        await self.serve_udp()
        tcp = await self.serve_tcp()
        runners = []
        for address in {a for a in (self.config.health_address, self.config.metrics_address) if a}:
            runner = web.AppRunner(self._apps(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, *address).start()
            runners.append(runner)
        tasks = [asyncio.create_task(i.run()) for i in (self.services, self.slices)]
        try:
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
            self._rebuild()
            log.info("zone %s built in %.1f ms", self.config.domain, self.stats.last_build_seconds * 1000)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if self.transport is not None:
                self.transport.close()
            tcp.close()
            for runner in runners:
                await runner.cleanup()
