"""resolve(): one table of questions and their replies in zone-file syntax, plus the message-level rules."""

from __future__ import annotations

import pytest
from dnslib import CLASS, OPCODE, QTYPE, RCODE, DNSHeader, DNSQuestion, DNSRecord

import tests.unit.dns as cluster
from svcnet.dns import resolver, zone

ZONE = cluster.build()
OK, NX = RCODE.NOERROR, RCODE.NXDOMAIN
H = "service-headliness.dev.svc.cluster.local."
ARPA4 = "in-addr.arpa."


def ask(z: zone.Zone, qname: str, qtype: str = "A") -> DNSRecord:
    reply = resolver.resolve(z, DNSRecord.question(qname, qtype))
    assert reply is not None
    return reply


def text(rrs: list) -> list[str]:
    return [" ".join(str(rr).split()) for rr in rrs]


CASES = [
    # ClusterIP service
    pytest.param("web.dev.svc.cluster.local", "A", OK, ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10"], [],
                 id="clusterip-a"),
    pytest.param("WEB.Dev.SVC.cluster.LOCAL", "A", OK, ["WEB.Dev.SVC.cluster.LOCAL. 5 IN A 10.96.0.10"], [],
                 id="case-insensitive"),
    pytest.param("web.dev.svc.cluster.local", "AAAA", OK, [], [], id="clusterip-aaaa-nodata"),
    pytest.param("dual.dev.svc.cluster.local", "AAAA", OK, ["dual.dev.svc.cluster.local. 5 IN AAAA fd00::20"], [],
                 id="dual-stack-aaaa"),
    pytest.param("dual.dev.svc.cluster.local", "A", OK, ["dual.dev.svc.cluster.local. 5 IN A 10.96.0.20"], [],
                 id="dual-stack-a"),
    pytest.param("noports.dev.svc.cluster.local", "A", OK, ["noports.dev.svc.cluster.local. 5 IN A 10.96.0.30"], [],
                 id="clusterip-without-ports"),
    pytest.param("noports.dev.svc.cluster.local", "SRV", OK, [], [], id="clusterip-without-ports-srv-nodata"),
    pytest.param("_http._tcp.web.dev.svc.cluster.local", "SRV", OK,
                 ["_http._tcp.web.dev.svc.cluster.local. 5 IN SRV 0 100 80 web.dev.svc.cluster.local."],
                 ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10"], id="srv-named-port"),
    pytest.param("_DNS._UDP.web.dev.svc.cluster.local", "SRV", OK,
                 ["_DNS._UDP.web.dev.svc.cluster.local. 5 IN SRV 0 100 53 web.dev.svc.cluster.local."],
                 ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10"], id="srv-udp-case"),
    pytest.param("_http._udp.web.dev.svc.cluster.local", "SRV", NX, [], [], id="srv-wrong-protocol"),
    pytest.param("_http._tcp.web.dev.svc.cluster.local", "A", OK, [], [], id="srv-name-a-nodata"),
    pytest.param("web.dev.svc.cluster.local", "SRV", OK,
                 ["web.dev.svc.cluster.local. 5 IN SRV 0 50 80 web.dev.svc.cluster.local.",
                  "web.dev.svc.cluster.local. 5 IN SRV 0 50 53 web.dev.svc.cluster.local."],
                 ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10"], id="srv-plain-clusterip"),
    pytest.param("dual.dev.svc.cluster.local", "SRV", OK,
                 ["dual.dev.svc.cluster.local. 5 IN SRV 0 50 80 dual.dev.svc.cluster.local."],
                 ["dual.dev.svc.cluster.local. 5 IN A 10.96.0.20", "dual.dev.svc.cluster.local. 5 IN AAAA fd00::20"],
                 id="srv-plain-dual-stack"),
    pytest.param("10-244-1-10.web.dev.svc.cluster.local", "A", OK,
                 ["10-244-1-10.web.dev.svc.cluster.local. 5 IN A 10.244.1.10"], [], id="clusterip-endpoint-name"),
    pytest.param("10-244-1-11.web.dev.svc.cluster.local", "A", NX, [], [], id="clusterip-unready-endpoint"),
    # headless
    pytest.param(H, "A", OK, [f"{H} 5 IN A 10.244.0.5", f"{H} 5 IN A 10.244.0.6", f"{H} 5 IN A 10.244.0.7"], [],
                 id="headless-ready-endpoints"),
    pytest.param("pod-0." + H, "A", OK, [f"pod-0.{H} 5 IN A 10.244.0.5"], [], id="headless-hostname"),
    pytest.param("10-244-0-7." + H, "A", OK, [f"10-244-0-7.{H} 5 IN A 10.244.0.7"], [], id="headless-dashed-ip"),
    pytest.param("pod-3." + H, "A", NX, [], [], id="headless-unready-hostname"),
    pytest.param("x.pod-0." + H, "A", NX, [], [], id="too-long"),
    pytest.param("_http._tcp." + H, "SRV", OK,
                 [f"_http._tcp.{H} 5 IN SRV 0 33 8080 pod-0.{H}", f"_http._tcp.{H} 5 IN SRV 0 33 8080 pod-1.{H}",
                  f"_http._tcp.{H} 5 IN SRV 0 33 8080 10-244-0-7.{H}"],
                 [f"pod-0.{H} 5 IN A 10.244.0.5", f"pod-1.{H} 5 IN A 10.244.0.6",
                  f"10-244-0-7.{H} 5 IN A 10.244.0.7"], id="headless-srv"),
    pytest.param("pod-1." + H, "SRV", OK, [f"pod-1.{H} 5 IN SRV 0 100 8080 pod-1.{H}"],
                 [f"pod-1.{H} 5 IN A 10.244.0.6"], id="endpoint-srv"),
    pytest.param("idle.dev.svc.cluster.local", "A", NX, [], [], id="headless-no-ready-endpoint"),
    pytest.param("_http._tcp.idle.dev.svc.cluster.local", "SRV", NX, [], [], id="headless-no-ready-srv"),
    pytest.param("warm.dev.svc.cluster.local", "A", OK, ["warm.dev.svc.cluster.local. 5 IN A 10.244.2.1"], [],
                 id="publish-not-ready"),
    pytest.param("db-0.db.dev.svc.cluster.local", "AAAA", OK,
                 ["db-0.db.dev.svc.cluster.local. 5 IN AAAA fd00:244::31"], [], id="dual-stack-endpoint"),
    pytest.param("_pg._tcp.db.dev.svc.cluster.local", "SRV", OK,
                 ["_pg._tcp.db.dev.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.dev.svc.cluster.local."],
                 ["db-0.db.dev.svc.cluster.local. 5 IN A 10.244.3.1",
                  "db-0.db.dev.svc.cluster.local. 5 IN AAAA fd00:244::31"], id="dual-stack-endpoint-srv"),
    # ExternalName: the CNAME alone, whatever the type; the server chases it
    pytest.param("service-externalname.dev.svc.cluster.local", "A", OK,
                 ["service-externalname.dev.svc.cluster.local. 5 IN CNAME www.baidu.com."], [], id="externalname-a"),
    pytest.param("service-externalname.dev.svc.cluster.local", "CNAME", OK,
                 ["service-externalname.dev.svc.cluster.local. 5 IN CNAME www.baidu.com."], [],
                 id="externalname-cname"),
    # PTR
    pytest.param("10.0.96.10.in-addr.arpa", "PTR", OK, ["10.0.96.10.in-addr.arpa. 5 IN PTR web.dev.svc.cluster.local."],
                 [], id="ptr-clusterip"),
    pytest.param("5.0.244.10.in-addr.arpa", "PTR", OK, [f"5.0.244.10.in-addr.arpa. 5 IN PTR pod-0.{H}"], [],
                 id="ptr-headless-endpoint"),
    pytest.param("10.1.244.10.in-addr.arpa", "PTR", OK,
                 ["10.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-10.web.dev.svc.cluster.local."], [],
                 id="ptr-clusterip-endpoint"),
    pytest.param("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "PTR", OK,
                 ["0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR "
                  "dual.dev.svc.cluster.local."], [], id="ptr-ipv6"),
    pytest.param("99.0.96.10.in-addr.arpa", "PTR", NX, [], [], id="ptr-unknown-in-service-cidr"),
    pytest.param("0.96.10.in-addr.arpa", "PTR", OK, [], [], id="ptr-empty-non-terminal"),
    pytest.param("10.0.96.10.in-addr.arpa", "A", OK, [], [], id="ptr-name-a-nodata"),
    # pods (insecure)
    pytest.param("10-1-2-3.dev.pod.cluster.local", "A", OK, ["10-1-2-3.dev.pod.cluster.local. 5 IN A 10.1.2.3"], [],
                 id="pod-insecure"),
    pytest.param("fd00--1.dev.pod.cluster.local", "AAAA", OK, ["fd00--1.dev.pod.cluster.local. 5 IN AAAA fd00::1"],
                 [], id="pod-ipv6"),
    pytest.param("10-1-2-3.dev.pod.cluster.local", "AAAA", OK, [], [], id="pod-aaaa-nodata"),
    pytest.param("10-1-2-333.dev.pod.cluster.local", "A", NX, [], [], id="pod-bad-octet"),
    pytest.param("10-1-2.dev.pod.cluster.local", "A", NX, [], [], id="pod-three-octets"),
    pytest.param("web.dev.pod.cluster.local", "A", NX, [], [], id="pod-not-an-ip"),
    pytest.param("10-1-2-3.nons.pod.cluster.local", "A", NX, [], [], id="pod-unknown-namespace"),
    pytest.param("10-1-2-3.lonely.pod.cluster.local", "A", OK,
                 ["10-1-2-3.lonely.pod.cluster.local. 5 IN A 10.1.2.3"], [], id="pod-namespace-of-a-pod"),
    # apex, version, empty non-terminals
    pytest.param("cluster.local", "NS", OK, ["cluster.local. 5 IN NS ns.dns.cluster.local."],
                 ["ns.dns.cluster.local. 5 IN A 10.96.0.53"], id="apex-ns"),
    pytest.param("ns.dns.cluster.local", "A", OK, ["ns.dns.cluster.local. 5 IN A 10.96.0.53"], [], id="ns-address"),
    pytest.param("cluster.local", "A", OK, [], [], id="apex-a-nodata"),
    pytest.param("dns-version.cluster.local", "TXT", OK, ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'], [],
                 id="dns-version"),
    pytest.param("dns-version.cluster.local", "A", OK, [], [], id="dns-version-a-nodata"),
    pytest.param("svc.cluster.local", "A", OK, [], [], id="ent-svc"),
    pytest.param("pod.cluster.local", "A", OK, [], [], id="ent-pod"),
    pytest.param("dev.svc.cluster.local", "A", OK, [], [], id="ent-namespace"),
    pytest.param("kube-system.svc.cluster.local", "SRV", OK, [], [], id="ent-other-namespace"),
    pytest.param("dev.pod.cluster.local", "A", OK, [], [], id="ent-pod-namespace"),
    pytest.param("_tcp.web.dev.svc.cluster.local", "A", OK, [], [], id="ent-protocol"),
    pytest.param("dns.cluster.local", "A", OK, [], [], id="ent-dns"),
    pytest.param("nons.svc.cluster.local", "A", NX, [], [], id="unknown-namespace"),
    pytest.param("nope.dev.svc.cluster.local", "A", NX, [], [], id="unknown-service"),
    pytest.param("other.cluster.local", "A", NX, [], [], id="unknown-subzone"),
    pytest.param("web.dev.svc.cluster.local", "SOA", OK, [], [], id="soa-below-apex-nodata"),
    pytest.param("web.dev.svc.cluster.local", "ANY", OK,
                 ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10",
                  "web.dev.svc.cluster.local. 5 IN SRV 0 50 80 web.dev.svc.cluster.local.",
                  "web.dev.svc.cluster.local. 5 IN SRV 0 50 53 web.dev.svc.cluster.local."],
                 ["web.dev.svc.cluster.local. 5 IN A 10.96.0.10"], id="any"),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answer", "additional"), CASES)
def test_answers(qname: str, qtype: str, rcode: int, answer: list[str], additional: list[str]) -> None:
    reply = ask(ZONE, qname, qtype)
    assert (reply.header.rcode, text(reply.rr), text(reply.ar)) == (rcode, answer, additional)
    assert reply.header.aa == 1 and reply.header.qr == 1
    if answer:
        assert reply.auth == []
    else:  # NXDOMAIN and NODATA carry the apex SOA
        assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


@pytest.mark.parametrize(("qname", "apex"), [
    pytest.param("nope.dev.svc.cluster.local", "cluster.local.", id="cluster-domain"),
    pytest.param("99.0.96.10.in-addr.arpa", "96.10.in-addr.arpa.", id="ipv4-service-cidr"),
    pytest.param("f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                 "0." * 26 + "d.f.ip6.arpa.", id="ipv6-service-cidr"),  # fd00::/112: 28 nibbles
    pytest.param("10.0.96.10.in-addr.arpa", "96.10.in-addr.arpa.", id="ptr-nodata"),
    pytest.param("5.0.244.10.in-addr.arpa", ARPA4, id="known-ptr-outside-cidrs"),
])
def test_negative_answers_carry_the_apex_soa(qname: str, apex: str) -> None:
    reply = ask(ZONE, qname, "TXT")
    (soa,) = reply.auth
    assert (str(soa.rname), soa.ttl, str(soa.rdata.mname), str(soa.rdata.rname)) == (
        apex, 5, "ns.dns.cluster.local.", "hostmaster.cluster.local.")
    assert soa.rdata.times == (ZONE.serial, 7200, 1800, 86400, 5)


def test_soa_at_the_apex() -> None:
    (soa,) = ask(ZONE, "Cluster.Local", "SOA").rr
    assert text([soa]) == [f"Cluster.Local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {ZONE.serial} "
                           "7200 1800 86400 5"]


@pytest.mark.parametrize(("ttl", "answer_ttl", "soa_ttl"), [(5, 5, 5), (30, 30, 30), (3600, 3600, 300), (0, 0, 0)])
def test_ttl_is_configurable(ttl: int, answer_ttl: int, soa_ttl: int) -> None:
    z = cluster.build(ttl=ttl)
    assert ask(z, "web.dev.svc.cluster.local").rr[0].ttl == answer_ttl
    (soa,) = ask(z, "nope.dev.svc.cluster.local").auth
    assert (soa.ttl, soa.rdata.times[-1]) == (soa_ttl, ttl)
    assert ask(z, "dns-version.cluster.local", "TXT").rr[0].ttl == 28800


@pytest.mark.parametrize("qname", [
    "example.com", "cluster.local.example.com", "local", "xcluster.local", "4.3.2.1.in-addr.arpa",
    "in-addr.arpa", "10.in-addr.arpa", ".",
])
def test_names_outside_our_zones_are_not_answered(qname: str) -> None:
    request = DNSRecord.question(qname, "A")
    assert resolver.resolve(ZONE, request) is None
    assert not resolver.in_zone(ZONE, request.q.qname)
    assert not resolver.in_zone(ZONE, qname)


@pytest.mark.parametrize("qname", ["web.dev.svc.cluster.local", "CLUSTER.LOCAL.", "x.96.10.in-addr.arpa",
                                   "10.0.96.10.in-addr.arpa", "5.0.244.10.in-addr.arpa"])
def test_in_zone(qname: str) -> None:
    assert resolver.in_zone(ZONE, qname)


def test_reply_header_echoes_the_query() -> None:
    request = DNSRecord(DNSHeader(id=4242, rd=0), q=DNSQuestion("web.dev.svc.cluster.local"))
    reply = resolver.resolve(ZONE, request)
    assert reply is not None
    assert (reply.header.id, reply.header.qr, reply.header.aa, reply.header.rd, reply.header.ra) == (4242, 1, 1, 0, 0)
    assert reply.questions == request.questions
    assert DNSRecord.parse(reply.pack()).rr == reply.rr  # and it packs


def _request(*questions: DNSQuestion, opcode: int = OPCODE.QUERY) -> DNSRecord:
    return DNSRecord(DNSHeader(id=7, opcode=opcode), questions=list(questions))


WEB = DNSQuestion("web.dev.svc.cluster.local")


@pytest.mark.parametrize(("request_", "rcode"), [
    pytest.param(_request(WEB, WEB), RCODE.FORMERR, id="two-questions"),
    pytest.param(_request(WEB, DNSQuestion("example.com")), RCODE.FORMERR, id="two-questions-one-outside"),
    pytest.param(_request(), RCODE.FORMERR, id="no-question"),
    pytest.param(_request(WEB, opcode=OPCODE.NOTIFY), RCODE.NOTIMP, id="notify"),
    pytest.param(_request(WEB, opcode=OPCODE.UPDATE), RCODE.NOTIMP, id="update"),
    pytest.param(_request(DNSQuestion("example.com"), opcode=OPCODE.STATUS), RCODE.NOTIMP, id="status-outside"),
    pytest.param(_request(DNSQuestion("web.dev.svc.cluster.local", qclass=CLASS.CH)), RCODE.REFUSED, id="chaos"),
    pytest.param(_request(DNSQuestion("cluster.local", QTYPE.AXFR)), RCODE.REFUSED, id="axfr"),
    pytest.param(_request(DNSQuestion("cluster.local", QTYPE.IXFR)), RCODE.REFUSED, id="ixfr"),
])
def test_message_errors(request_: DNSRecord, rcode: int) -> None:
    reply = resolver.resolve(ZONE, request_)
    assert reply is not None
    assert (reply.header.rcode, reply.header.qr, reply.header.aa, reply.header.id) == (rcode, 1, 0, 7)
    assert reply.rr == [] and reply.auth == []


def test_other_class_outside_our_zones_is_forwarded() -> None:
    assert resolver.resolve(ZONE, _request(DNSQuestion("version.bind", QTYPE.TXT, CLASS.CH))) is None


@pytest.mark.parametrize("labels", [
    pytest.param([b"web.dev", b"svc", b"cluster", b"local"], id="dot-inside-a-label"),
    pytest.param([b"web", b"dev.svc", b"cluster", b"local"], id="dot-makes-a-known-name"),
    pytest.param([b"w\x00b", b"dev", b"svc", b"cluster", b"local"], id="nul-byte"),
    pytest.param([b"\xc3\xa9", b"dev", b"svc", b"cluster", b"local"], id="non-ascii"),
    pytest.param([b"10-1-2-3", b"d\x20v", b"pod", b"cluster", b"local"], id="space-in-namespace"),
])
def test_odd_labels_are_nxdomain(labels: list[bytes]) -> None:
    request = _request(DNSQuestion(labels))
    wire = DNSRecord.parse(request.pack())  # as the server receives it
    reply = resolver.resolve(ZONE, wire)
    assert reply is not None and reply.header.rcode == RCODE.NXDOMAIN and reply.rr == []


@pytest.mark.parametrize(("qname", "rcode", "answer"), [
    pytest.param("10-244-0-5.dev.pod.cluster.local", OK, ["10-244-0-5.dev.pod.cluster.local. 5 IN A 10.244.0.5"],
                 id="existing-pod"),
    pytest.param("10-1-2-3.dev.pod.cluster.local", NX, [], id="no-such-pod"),
    pytest.param("10-244-0-5.lonely.pod.cluster.local", NX, [], id="pod-ip-in-other-namespace"),
    pytest.param("dev.pod.cluster.local", OK, [], id="namespace-nodata"),
])
def test_pods_verified(qname: str, rcode: int, answer: list[str]) -> None:
    z = cluster.build(options=zone.ZoneOptions(pod_mode=zone.PodMode.VERIFIED))
    reply = ask(z, qname)
    assert (reply.header.rcode, text(reply.rr)) == (rcode, answer)


@pytest.mark.parametrize(("qname", "rcode"), [
    pytest.param("10-244-0-5.dev.pod.cluster.local", NX, id="pod-name"),
    pytest.param("dev.pod.cluster.local", NX, id="namespace"),
    pytest.param("pod.cluster.local", OK, id="pod-subtree-nodata"),
])
def test_pods_disabled(qname: str, rcode: int) -> None:
    z = cluster.build(options=zone.ZoneOptions(pod_mode=zone.PodMode.DISABLED))
    reply = ask(z, qname)
    assert (reply.header.rcode, reply.rr) == (rcode, [])


def test_without_reverse_cidrs_only_known_ptrs_are_ours() -> None:
    z = cluster.build(options=zone.ZoneOptions())
    assert text(ask(z, "10.0.96.10.in-addr.arpa", "PTR").rr) == [
        "10.0.96.10.in-addr.arpa. 5 IN PTR web.dev.svc.cluster.local."]
    assert resolver.resolve(z, DNSRecord.question("99.0.96.10.in-addr.arpa", "PTR")) is None
    assert ask(z, "cluster.local", "NS").ar == []  # no ns.dns addresses configured
    assert ask(z, "ns.dns.cluster.local").header.rcode == NX


def test_custom_domain() -> None:
    z = zone.build(cluster.SERVICES, cluster.SLICES, cluster.PODS, domain="Corp.Example.")
    assert text(ask(z, "web.dev.svc.corp.example").rr) == ["web.dev.svc.corp.example. 5 IN A 10.96.0.10"]
    assert resolver.resolve(z, DNSRecord.question("web.dev.svc.cluster.local")) is None
