"""Forwarding names outside the cluster domain to upstream resolvers, with a cache.

Upstreams come from a resolv.conf (or a flag); an upstream that is one of this server's own addresses is
dropped (a forwarding loop to itself, which CoreDNS's `loop` plugin guards against). Each query tries the
upstreams in order with a timeout; answers are cached by (name, type, class) for their smallest TTL, at most
`max_ttl` seconds; failures are not cached. With no upstream the server answers REFUSED.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import OrderedDict
from pathlib import Path

import dnslib


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    found = []
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                found.append((parts[1], 53))
    return found


def parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "53")
    return host.strip("[]"), int(port or 53)


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], own: set[tuple[str, int]], timeout: float = 2.0,
                 max_ttl: int = 30, max_entries: int = 10000) -> None:
        self.loops = [u for u in upstreams if u in own]
        self.upstreams = [u for u in upstreams if u not in own]
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.max_entries = max_entries
        self.cache: OrderedDict[tuple[str, int, int], tuple[float, bytes]] = OrderedDict()
        self.hits = 0

    def cached(self, request: dnslib.DNSRecord) -> bytes | None:
        key = (str(request.q.qname).lower(), request.q.qtype, request.q.qclass)
        entry = self.cache.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        self.hits += 1
        return entry[1]

    async def query(self, request: dnslib.DNSRecord) -> bytes | None:
        """The upstream's reply (with the request's ID), or None when no upstream answered."""
        hit = self.cached(request)
        if hit is not None:
            return request.header.id.to_bytes(2, "big") + hit[2:]
        packet = bytes(request.pack())
        for host, port in self.upstreams:
            reply = await self._ask(host, port, packet)
            if reply is not None:
                self._store(request, reply)
                return reply
        return None

    async def _ask(self, host: str, port: int, packet: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, packet)
                deadline = loop.time() + self.timeout
                while True:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), max(deadline - loop.time(), 0))
                    if reply[:2] == packet[:2]:
                        return reply
            except (OSError, TimeoutError):
                return None

    def _store(self, request: dnslib.DNSRecord, reply: bytes) -> None:
        try:
            parsed = dnslib.DNSRecord.parse(reply)
        except dnslib.DNSError:
            return
        if parsed.header.rcode not in (dnslib.RCODE.NOERROR, dnslib.RCODE.NXDOMAIN):
            return
        ttls = [rr.ttl for rr in (*parsed.rr, *parsed.auth)] or [self.max_ttl]
        ttl = min(min(ttls), self.max_ttl)
        if ttl <= 0:
            return
        key = (str(request.q.qname).lower(), request.q.qtype, request.q.qclass)
        self.cache[key] = (time.monotonic() + ttl, reply)
        self.cache.move_to_end(key)
        while len(self.cache) > self.max_entries:
            self.cache.popitem(last=False)
