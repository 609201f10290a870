"""DNS wire details the server needs without a full parse — pure.

`cache_key` is the query minus its ID (flags, counts, question and EDNS together), so identical questions hit
the same pre-encoded answer; `with_id` puts the asker's ID back. `formerr` answers a packet too broken to parse
(FORMERR when the 12-byte header is there, nothing otherwise). `truncate` turns a reply that does not fit the
asker's UDP size into the header and question alone with TC set, so the client retries over TCP.
"""

from __future__ import annotations

import struct

import dnslib

HEADER = 12
DEFAULT_UDP_SIZE = 512
MAX_UDP_SIZE = 4096


def cache_key(packet: bytes) -> bytes:
    return packet[2:]


def with_id(packet: bytes, reply: bytes) -> bytes:
    return packet[:2] + reply[2:]


def formerr(packet: bytes) -> bytes | None:
    if len(packet) < HEADER:
        return None
    ident, flags = struct.unpack("!HH", packet[:4])
    if flags & 0x8000:  # a response: never answer those (no reflection loops)
        return None
    opcode = flags & 0x7800
    return struct.pack("!HHHHHH", ident, 0x8000 | opcode | (flags & 0x0100) | dnslib.RCODE.FORMERR, 0, 0, 0, 0)


def udp_size(request: dnslib.DNSRecord) -> int:
    for rr in request.ar:
        if rr.rtype == dnslib.QTYPE.OPT:
            return max(DEFAULT_UDP_SIZE, min(int(rr.rclass), MAX_UDP_SIZE))
    return DEFAULT_UDP_SIZE


def truncate(reply: dnslib.DNSRecord) -> bytes:
    short = dnslib.DNSRecord(dnslib.DNSHeader(id=reply.header.id, qr=1, aa=reply.header.aa, ra=reply.header.ra,
                                              rd=reply.header.rd, tc=1, rcode=reply.header.rcode),
                             q=reply.q)
    for rr in reply.ar:
        if rr.rtype == dnslib.QTYPE.OPT:
            short.add_ar(rr)
    return bytes(short.pack())
