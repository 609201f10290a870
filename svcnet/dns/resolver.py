"""Answers one DNS query from a `Zone`: the pure core of svcnet's cluster DNS server. A message in, a message
out (dnslib objects); no sockets, no clocks, no cache: the server caches encoded replies keyed by question and
owns the transport (EDNS0, truncation, TCP) and the forwarding of the names that are not ours.

Rules (RFC 1035, RFC 2308 and RFC 8020, shaped like CoreDNS's kubernetes plugin):
- Opcode other than QUERY: NOTIMP. Not exactly one question: FORMERR. Both whatever the name.
- A name under no apex of the zone (see `Zone.apex`): None, the server forwards it. `in_zone` says the same.
- Our name, class other than IN, or AXFR/IXFR (no zone transfers): REFUSED.
- The name owns a CNAME (an ExternalName service) and the question is for another type: the CNAME alone; the
  server chases the target.
- The name owns records of the type: NOERROR with them (ANY: every RRset the name owns); an SRV answer carries
  the A/AAAA of its targets (all in the zone) in the additional section, an NS answer its glue.
- The name exists without such records (NODATA) or does not exist (NXDOMAIN): no answer, the apex SOA in the
  authority section. A name with a label holding a dot or a non-printable byte never exists.
Invariants: the reply echoes the ID, opcode, RD and the question; answers in our zones are authoritative (AA);
owner names keep the question's case; TTL is the zone's, dns-version TXT 28800 and SOA min(ttl, 300) as CoreDNS;
RA stays clear (the server sets it when it forwards).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import dnslib
from dnslib import CLASS, OPCODE, QTYPE, RCODE, RR, DNSHeader, DNSLabel, DNSRecord

from svcnet.dns.zone import SOA, VERSION_TTL, RRSets, RRType, SrvData, Zone

_REFUSED_TYPES = frozenset((QTYPE.AXFR, QTYPE.IXFR))
_PRINTABLE = frozenset(range(33, 127)) - {ord(".")}


def _soa(rdata: object) -> Any:
    soa = cast(SOA, rdata)
    return dnslib.SOA(soa.mname, soa.rname, (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum))


def _srv(rdata: object) -> Any:
    priority, weight, port, target = cast(SrvData, rdata)
    return dnslib.SRV(priority, weight, port, target)


_RDATA: dict[int, Callable[[Any], Any]] = {
    RRType.A: dnslib.A, RRType.AAAA: dnslib.AAAA, RRType.CNAME: dnslib.CNAME, RRType.PTR: dnslib.PTR,
    RRType.NS: dnslib.NS, RRType.TXT: dnslib.TXT, RRType.SRV: _srv, RRType.SOA: _soa,
}


def query_name(qname: DNSLabel | str) -> tuple[str, bool]:
    """The zone key of a question name (lower-case, absolute) and whether its labels can name anything at all."""
    labels = DNSLabel(qname).label if isinstance(qname, str) else qname.label
    clean = all(label and _PRINTABLE.issuperset(label) for label in labels)
    return b".".join(labels).lower().decode("ascii", "replace") + ".", clean


def in_zone(zone: Zone, qname: DNSLabel | str) -> bool:
    """Whether svcnet answers `qname` itself (cluster domain, reverse zones) rather than forwarding it."""
    return zone.apex(query_name(qname)[0]) is not None


def resolve(zone: Zone, request: DNSRecord) -> DNSRecord | None:
    """The reply to `request` from `zone`, or None when its name is not ours (the server forwards it)."""
    if request.header.opcode != OPCODE.QUERY:
        return _error(request, RCODE.NOTIMP)
    if len(request.questions) != 1:
        return _error(request, RCODE.FORMERR)
    question = request.questions[0]
    name, clean = query_name(question.qname)
    apex = zone.apex(name)
    if apex is None:
        return None
    if question.qclass != CLASS.IN or question.qtype in _REFUSED_TYPES:
        return _error(request, RCODE.REFUSED)
    reply = _reply(request, RCODE.NOERROR, aa=True)
    rrsets = zone.lookup(name) if clean else None
    if rrsets is None:
        if not (clean and name in zone.empty):
            reply.header.rcode = RCODE.NXDOMAIN
        _add_soa(zone, reply, apex)
    elif not _answer(zone, reply, question.qname, question.qtype, rrsets):
        _add_soa(zone, reply, apex)
    return reply


def _reply(request: DNSRecord, rcode: int, aa: bool) -> DNSRecord:
    header = DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, aa=int(aa),
                       rd=request.header.rd, rcode=rcode)
    return DNSRecord(header, questions=list(request.questions))


def _error(request: DNSRecord, rcode: int) -> DNSRecord:
    return _reply(request, rcode, aa=False)


def _types(qtype: int, rrsets: RRSets) -> tuple[int, ...]:
    """The RRsets that answer `qtype` at a name owning `rrsets`."""
    if qtype == QTYPE.ANY:
        return tuple(rrsets)
    if qtype in rrsets:
        return (qtype,)
    if RRType.CNAME in rrsets:
        return (RRType.CNAME,)
    return ()


def _answer(zone: Zone, reply: DNSRecord, owner: DNSLabel, qtype: int, rrsets: RRSets) -> bool:
    """Adds the answer (and additional) records; False when there are none (NODATA)."""
    types = _types(qtype, rrsets)
    for rtype in types:
        for rdata in rrsets[rtype]:
            reply.add_answer(_rr(zone, owner, rtype, rdata))
    if RRType.SRV in types:
        _add_addresses(zone, reply, [cast(SrvData, srv)[3] for srv in rrsets[RRType.SRV]])
    if RRType.NS in types:
        _add_addresses(zone, reply, [cast(str, ns) for ns in rrsets[RRType.NS]])
    return bool(types)


def _add_addresses(zone: Zone, reply: DNSRecord, targets: list[str]) -> None:
    """The A/AAAA records of in-zone targets, once each, in the additional section."""
    for target in dict.fromkeys(targets):
        rrsets = zone.lookup(target) or {}
        for rtype in (RRType.A, RRType.AAAA):
            for rdata in rrsets.get(rtype, ()):
                reply.add_ar(_rr(zone, target, rtype, rdata))


def _add_soa(zone: Zone, reply: DNSRecord, apex: str) -> None:
    reply.add_auth(_rr(zone, apex, RRType.SOA, zone.soa))


def _rr(zone: Zone, owner: DNSLabel | str, rtype: int, rdata: object) -> RR:
    if rtype == RRType.TXT:
        ttl = VERSION_TTL
    elif rtype == RRType.SOA:
        ttl = zone.soa_ttl
    else:
        ttl = zone.ttl
    return RR(owner, rtype, CLASS.IN, ttl, _RDATA[rtype](rdata))
