"""Wire helpers: cache keys without the ID, FORMERR for broken packets, truncation with TC."""

from __future__ import annotations

import dnslib
import pytest

from svcnet.dns import wire


def test_cache_key_ignores_the_id_and_with_id_restores_it() -> None:
    a = dnslib.DNSRecord.question("x.cluster.local")
    b = dnslib.DNSRecord.question("x.cluster.local")
    a.header.id, b.header.id = 1, 2
    assert wire.cache_key(bytes(a.pack())) == wire.cache_key(bytes(b.pack()))
    assert wire.with_id(bytes(b.pack()), bytes(a.pack()))[:2] == b"\x00\x02"


@pytest.mark.parametrize(("packet", "expected"), [
    (b"", None),
    (b"\x01\x02\x01", None),  # no full header: nothing to answer
    (b"\x12\x34\x01\x00" + b"\x00" * 8, b"\x12\x34\x81\x01" + b"\x00" * 8),  # RD kept, FORMERR
    (b"\x12\x34\x81\x00" + b"\x00" * 8, None),  # a response: never answered
])
def test_formerr(packet: bytes, expected: bytes | None) -> None:
    assert wire.formerr(packet) == expected


def test_udp_size_from_edns() -> None:
    q = dnslib.DNSRecord.question("x")
    assert wire.udp_size(q) == 512
    q.add_ar(dnslib.EDNS0(udp_len=1232))
    assert wire.udp_size(q) == 1232
    big = dnslib.DNSRecord.question("x")
    big.add_ar(dnslib.EDNS0(udp_len=65000))
    assert wire.udp_size(big) == wire.MAX_UDP_SIZE


def test_truncate_keeps_header_and_question_and_sets_tc() -> None:
    reply = dnslib.DNSRecord.question("many.cluster.local").reply()
    for i in range(100):
        reply.add_answer(dnslib.RR("many.cluster.local", rdata=dnslib.A(f"10.0.0.{i}")))
    short = dnslib.DNSRecord.parse(wire.truncate(reply))
    assert short.header.tc == 1 and not short.rr and str(short.q.qname) == "many.cluster.local."
