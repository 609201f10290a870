"""build(): the zone's names, its invariants, its helpers and its build time."""

from __future__ import annotations

import time
from typing import Any

import pytest

import tests.unit.dns as cluster
from svcnet.dns import zone
from svcnet.dns.zone import RRType
from tests.unit.dns import endpoint, port, service, slice_

ZONE = cluster.build()


def test_keys_are_lower_case_absolute_names_and_rrsets_are_non_empty() -> None:
    for name, rrsets in ZONE.names.items():
        assert name == name.lower() and name.endswith(".") and rrsets
        assert all(rrset and len(set(rrset)) == len(rrset) for rrset in rrsets.values())


def test_every_parent_of_a_name_exists() -> None:
    """No name hides below an NXDOMAIN (RFC 8020): each parent up to its apex owns records or is an ENT."""
    for name in [*ZONE.names, *ZONE.empty]:
        apex = ZONE.apex(name)
        parent = name.partition(".")[2]
        while apex and ZONE.apex(parent) == apex and parent != apex:
            assert ZONE.exists(parent), (name, parent)
            parent = parent.partition(".")[2]


def test_clusterip_ptr_wins_over_an_endpoint_with_the_same_ip() -> None:
    services = [service("a", cluster_ips=("10.96.0.1",)), service("b", cluster_ips=("10.96.0.2",))]
    slices = [slice_("b", [endpoint("10.96.0.1")])]
    z = zone.build(services, slices, [])
    assert z.names["1.0.96.10.in-addr.arpa."] == {RRType.PTR: ("a.dev.svc.cluster.local.",)}


def test_an_endpoint_ip_of_two_services_has_two_ptrs() -> None:
    services = [service("a", cluster_ips=("None",)), service("b", cluster_ips=("None",))]
    slices = [slice_("a", [endpoint("10.0.0.1", "x")]), slice_("b", [endpoint("10.0.0.1")])]
    z = zone.build(services, slices, [])
    assert z.names["1.0.0.10.in-addr.arpa."][RRType.PTR] == ("x.a.dev.svc.cluster.local.",
                                                              "10-0-0-1.b.dev.svc.cluster.local.")


@pytest.mark.parametrize(("slices", "expected"), [
    pytest.param([slice_("h", [endpoint("10.0.0.1")], address_type="FQDN")], None, id="fqdn-slice-ignored"),
    pytest.param([{**slice_("h", [endpoint("10.0.0.1")]), "metadata": {"name": "s", "namespace": "dev"}}], None,
                 id="unlabelled-slice-ignored"),
    pytest.param([slice_("h", [endpoint("10.0.0.1", ready=False)])], None, id="not-ready"),
    pytest.param([slice_("h", [{"addresses": ["10.0.0.1"]}])], ("10.0.0.1",), id="ready-unset-is-ready"),
    pytest.param([slice_("h", [endpoint("10.0.0.1")]), slice_("h", [endpoint("10.0.0.1")], suffix="y")],
                 ("10.0.0.1",), id="address-in-two-slices-once"),
    pytest.param([slice_("h", [endpoint("10.0.0.1")], ns="other")], None, id="slice-of-other-namespace"),
])
def test_headless_addresses(slices: list[dict[str, Any]], expected: tuple[str, ...] | None) -> None:
    z = zone.build([service("h", cluster_ips=("None",))], slices, [])
    rrsets = z.lookup("h.dev.svc.cluster.local.")
    assert (rrsets or {}).get(RRType.A) == expected


def test_tolerate_unready_annotation() -> None:
    svc = service("h", cluster_ips=("None",))
    svc["metadata"]["annotations"] = {zone.TOLERATE_UNREADY: "true"}
    z = zone.build([svc], [slice_("h", [endpoint("10.0.0.1", ready=False)])], [])
    assert z.names["h.dev.svc.cluster.local."][RRType.A] == ("10.0.0.1",)


def test_srv_weights_follow_coredns() -> None:
    """Priority 0, weight ⌊100/n⌋ over the n (address, port) entries; a port-less slice counts but adds none."""
    svc = service("h", cluster_ips=("None",), ports=(port("http", 80),))
    slices = [slice_("h", [endpoint(f"10.0.0.{i}", f"h-{i}") for i in range(1, 4)], (port("http", 80),)),
              slice_("h", [endpoint("10.0.1.1", "bare")], suffix="y")]
    srvs = zone.build([svc], slices, []).names["h.dev.svc.cluster.local."][RRType.SRV]
    assert srvs == tuple((0, 25, 80, f"h-{i}.h.dev.svc.cluster.local.") for i in range(1, 4))


def test_same_port_number_for_tcp_and_udp_is_one_plain_srv() -> None:
    z = zone.build([service("dns", cluster_ips=("10.96.0.10",), ports=(port("dns", 53, "UDP"),
                                                                       port("dns-tcp", 53)))], [], [])
    assert z.names["dns.dev.svc.cluster.local."][RRType.SRV] == ((0, 50, 53, "dns.dev.svc.cluster.local."),)
    assert "_dns-tcp._tcp.dns.dev.svc.cluster.local." in z.names


@pytest.mark.parametrize("spec", [
    pytest.param({"type": "ExternalName", "externalName": "10.1.2.3"}, id="externalname-ip"),
    pytest.param({"type": "ExternalName"}, id="externalname-empty"),
    pytest.param({"type": "ClusterIP"}, id="clusterip-not-allocated"),
])
def test_services_without_records(spec: dict[str, Any]) -> None:
    z = zone.build([{"metadata": {"name": "s", "namespace": "dev"}, "spec": spec}], [], [])
    assert z.lookup("s.dev.svc.cluster.local.") is None
    assert z.exists("dev.svc.cluster.local.")


def test_externalname_trailing_dot() -> None:
    z = zone.build([service("e", type="ExternalName", externalName="db.example.com.")], [], [])
    assert z.names["e.dev.svc.cluster.local."] == {RRType.CNAME: ("db.example.com.",)}


def test_namespaces_given_decide_existence() -> None:
    z = cluster.build(namespaces=[{"metadata": {"name": "dev"}}, {"metadata": {"name": "empty"}}])
    assert z.exists("empty.svc.cluster.local.") and z.exists("empty.pod.cluster.local.")
    assert not z.exists("lonely.svc.cluster.local.") and not z.exists("10-0-0-1.lonely.pod.cluster.local.")


def test_serial_changes_with_the_zone_only() -> None:
    assert cluster.build().serial == ZONE.serial
    moved = [*cluster.SERVICES[:-1], service("kube-dns", ns="kube-system", cluster_ips=("10.96.0.54",))]
    assert zone.build(moved, cluster.SLICES, cluster.PODS, options=cluster.OPTIONS).serial != ZONE.serial
    fewer = zone.build(cluster.SERVICES, cluster.SLICES[1:], cluster.PODS, options=cluster.OPTIONS)
    assert fewer.serial != ZONE.serial
    bumped = [{**s, "metadata": {**s["metadata"], "resourceVersion": "2"}} for s in cluster.SERVICES]
    assert zone.build(bumped, cluster.SLICES, cluster.PODS, options=cluster.OPTIONS).serial != ZONE.serial


@pytest.mark.parametrize("ttl", [-1, 3601])
def test_ttl_bounds(ttl: int) -> None:
    with pytest.raises(ValueError):
        cluster.build(ttl=ttl)


@pytest.mark.parametrize(("label", "ip"), [
    ("10-0-0-1", "10.0.0.1"), ("255-255-255-255", "255.255.255.255"), ("fd00--1", "fd00::1"),
    ("FD00--A", "fd00::a"), ("fd00-0-0-0-0-0-0-1", "fd00::1"), ("--1", "::1"),
    ("10-0-0-256", None), ("10-0-0", None), ("10-0-0-01", None), ("a-b-c-d", None), ("10--0-1", "10::1"),
    ("fe80--1%eth0", None), ("", None), ("web", None), ("1-2-3-4-5", None),
])
def test_parse_pod_label(label: str, ip: str | None) -> None:
    assert zone.parse_pod_label(label) == ip


@pytest.mark.parametrize(("hostname", "ip", "name"), [
    ("Pod-0", "10.0.0.1", "pod-0"), (None, "10.0.0.1", "10-0-0-1"), (None, "fd00::1", "fd00--1"),
    (None, "fd00::", "fd00--0"), ("", "fd00::1:2", "fd00--1-2"),
])
def test_endpoint_hostname(hostname: str | None, ip: str, name: str) -> None:
    assert zone.endpoint_hostname(hostname, ip) == name


@pytest.mark.parametrize(("ip", "name"), [
    ("10.96.0.1", "1.0.96.10.in-addr.arpa."),
    ("fd00::1", "1." + "0." * 27 + "0.0.d.f.ip6.arpa."),
    ("not-an-ip", None), ("1.2.3", None), ("fd00::zz", None),
])
def test_reverse_name(ip: str, name: str | None) -> None:
    assert zone.reverse_name(ip) == name


@pytest.mark.parametrize(("cidr", "first", "count"), [
    ("10.0.0.0/8", "10.in-addr.arpa.", 1),
    ("10.96.0.0/12", "96.10.in-addr.arpa.", 16),
    ("192.168.1.0/24", "1.168.192.in-addr.arpa.", 1),
    ("192.168.1.0/25", "0.1.168.192.in-addr.arpa.", 128),
    ("fd00::/108", "0." * 25 + "d.f.ip6.arpa.", 1),
    ("fd00::/110", "0." * 26 + "d.f.ip6.arpa.", 4),
    ("10.96.0.1/12", "96.10.in-addr.arpa.", 16),
])
def test_reverse_zones(cidr: str, first: str, count: int) -> None:
    zones = zone.reverse_zones(cidr)
    assert (zones[0], len(zones)) == (first, count)


def _many(count: int, endpoints: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`count` services in 100 namespaces, one in ten headless, two named ports, `endpoints` per service."""
    services, slices = [], []
    ports = (port("http", 80), port("metrics", 9090))
    for i in range(count):
        headless = i % 10 == 0
        ip = "None" if headless else f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
        services.append(service(f"svc{i}", ns=f"ns{i % 100}", cluster_ips=(ip,), ports=ports))
        if endpoints:
            eps = [endpoint(f"10.{128 + (i * endpoints + j) // 65536}.{(i * endpoints + j) // 256 % 256}."
                            f"{(i * endpoints + j) % 256}", f"pod-{j}" if headless else None) for j in range(endpoints)]
            slices.append(slice_(f"svc{i}", eps, ports, ns=f"ns{i % 100}"))
    return services, slices


@pytest.mark.parametrize("endpoints", [0, 1])
def test_build_time_for_10000_services(endpoints: int, capsys: pytest.CaptureFixture[str]) -> None:
    """The target is < 100 ms; the assertion allows 1 s to stay robust on loaded CI machines."""
    services, slices = _many(10_000, endpoints)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        z = zone.build(services, slices, [])
        timings.append(time.perf_counter() - started)
    with capsys.disabled():
        print(f"\nzone.build: 10,000 services, {endpoints} endpoint(s) each: {min(timings) * 1000:.1f} ms "
              f"(best of 3), {len(z.names)} names")
    assert min(timings) < 1.0
    assert z.lookup("svc1.ns1.svc.cluster.local.") == {
        RRType.A: ("10.96.0.1",),
        RRType.SRV: ((0, 50, 80, "svc1.ns1.svc.cluster.local."), (0, 50, 9090, "svc1.ns1.svc.cluster.local."))}
