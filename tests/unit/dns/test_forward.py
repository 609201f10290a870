"""Forwarding: upstream order, timeouts, loop detection, the answer cache."""

from __future__ import annotations

import asyncio
import socket

import dnslib

from svcnet.dns.forward import Forwarder, parse_upstream, upstreams_from_resolv_conf


class Stub(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.asked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.asked += 1
        reply = dnslib.DNSRecord.parse(data).reply()
        reply.add_answer(dnslib.RR("example.org", rdata=dnslib.A("192.0.2.1"), ttl=30))
        self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]


def _silent_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


async def test_first_answering_upstream_wins_and_is_cached() -> None:
    loop = asyncio.get_running_loop()
    transport, stub = await loop.create_datagram_endpoint(Stub, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    silent, silent_port = _silent_port()
    forwarder = Forwarder([("127.0.0.1", silent_port), ("127.0.0.1", port)], own=set(), timeout=0.2)
    request = dnslib.DNSRecord.question("example.org")
    reply = await forwarder.query(request)
    assert reply is not None and dnslib.DNSRecord.parse(reply).rr[0].rdata == dnslib.A("192.0.2.1")
    again = dnslib.DNSRecord.question("EXAMPLE.org")
    cached = await forwarder.query(again)
    assert cached is not None and cached[:2] == again.header.id.to_bytes(2, "big")
    assert stub.asked == 1 and forwarder.hits == 1
    transport.close()
    silent.close()


async def test_loop_to_itself_is_dropped_and_nothing_answers_none() -> None:
    silent, port = _silent_port()
    forwarder = Forwarder([("127.0.0.1", port), ("127.96.0.10", 53)], own={("127.96.0.10", 53)}, timeout=0.1)
    assert forwarder.loops == [("127.96.0.10", 53)] and forwarder.upstreams == [("127.0.0.1", port)]
    assert await forwarder.query(dnslib.DNSRecord.question("example.org")) is None
    silent.close()


def test_upstream_parsing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("search x\nnameserver 192.0.2.53\nnameserver ::1\noptions ndots:5\n")
    assert upstreams_from_resolv_conf(str(conf)) == [("192.0.2.53", 53), ("::1", 53)]
    assert parse_upstream("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_upstream("::1") == ("::1", 53)
