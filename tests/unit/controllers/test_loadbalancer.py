"""LoadBalancer address allocation: pool parsing and the allocator's rules as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers import loadbalancer as lb


def svc(name: str = "web", ip: str | None = None, annotation: str | None = None, status: str | None = None,
        kind: str = "LoadBalancer", cls: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "ports": [{"port": 80}]}
    if ip is not None:
        spec["loadBalancerIP"] = ip
    if cls is not None:
        spec["loadBalancerClass"] = cls
    meta: dict[str, Any] = {"name": name, "namespace": "dev"}
    if annotation is not None:
        meta["annotations"] = {lb.IPS_ANNOTATION: annotation}
    return {"metadata": meta, "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": status}]} if status else {}}}


@pytest.mark.parametrize(
    ("entries", "addresses"),
    [
        pytest.param(["10.0.0.0/29"], [f"10.0.0.{i}" for i in range(1, 7)], id="cidr-skips-network-broadcast"),
        pytest.param(["10.0.0.0/31"], ["10.0.0.0", "10.0.0.1"], id="slash31-keeps-both"),
        pytest.param(["10.0.0.7/32"], ["10.0.0.7"], id="slash32"),
        pytest.param(["10.0.0.5-10.0.0.7"], ["10.0.0.5", "10.0.0.6", "10.0.0.7"], id="range-inclusive"),
        pytest.param([" 10.0.0.5 - 10.0.0.5 "], ["10.0.0.5"], id="range-spaces"),
        pytest.param(["10.0.1.9-10.0.1.9", "10.0.0.0/30"], ["10.0.1.9", "10.0.0.1", "10.0.0.2"], id="config-order"),
        pytest.param(["10.0.0.3/30"], ["10.0.0.1", "10.0.0.2"], id="host-bits-ignored"),
        pytest.param([], [], id="empty"),
    ],
)
def test_parse_pool(entries: list[str], addresses: list[str]) -> None:
    pool = lb.parse_pool(entries)
    assert list(pool.addresses()) == addresses
    assert len(pool) == len(addresses)


@pytest.mark.parametrize("entry", [pytest.param("10.0.0.9-10.0.0.1", id="backwards"),
                                   pytest.param("fd00::/120", id="ipv6"),
                                   pytest.param("10.0.0.1-fd00::1", id="mixed"),
                                   pytest.param("pool", id="garbage")])
def test_bad_pool_entry(entry: str) -> None:
    with pytest.raises(lb.PoolError):
        lb.parse_pool([entry])


@pytest.mark.parametrize(
    ("service", "wants"),
    [
        pytest.param(svc(), True, id="loadbalancer"),
        pytest.param(svc(kind="ClusterIP"), False, id="clusterip"),
        pytest.param(svc(kind="NodePort"), False, id="nodeport"),
        pytest.param(svc(cls="example.com/other"), False, id="other-class"),
    ],
)
def test_wants_address(service: dict, wants: bool) -> None:
    assert lb.wants_address(service) is wants


POOL = ["10.0.0.0/30"]  # 10.0.0.1 and 10.0.0.2


def allocator(holdings: dict[str, str] | None = None, pool: list[str] | None = None) -> lb.Allocator:
    result = lb.Allocator(lb.parse_pool(POOL if pool is None else pool))
    for key, ip in (holdings or {}).items():
        assert result.assign(key, ip)
    return result


@pytest.mark.parametrize(
    ("holdings", "service", "ip", "error"),
    [
        pytest.param({}, svc(), "10.0.0.1", "", id="first-free"),
        pytest.param({"dev/a": "10.0.0.1"}, svc(), "10.0.0.2", "", id="next-free"),
        pytest.param({"dev/web": "10.0.0.2"}, svc(), "10.0.0.2", "", id="keeps-its-address"),
        pytest.param({}, svc(status="10.0.0.2"), "10.0.0.2", "", id="keeps-status-address-after-restart"),
        pytest.param({"dev/a": "10.0.0.2"}, svc(status="10.0.0.2"), "10.0.0.1", "", id="status-address-taken"),
        pytest.param({}, svc(status="192.168.0.1"), "10.0.0.1", "", id="status-address-outside-pool"),
        pytest.param({}, svc(ip="10.0.0.2"), "10.0.0.2", "", id="spec-loadbalancerip"),
        pytest.param({}, svc(annotation="10.0.0.2"), "10.0.0.2", "", id="metallb-annotation"),
        pytest.param({}, svc(annotation="fd00::5, 10.0.0.2"), "10.0.0.2", "", id="annotation-dual-stack"),
        pytest.param({}, svc(ip="10.0.0.2", annotation="10.0.0.2"), "10.0.0.2", "", id="both-agree"),
        pytest.param({"dev/web": "10.0.0.1"}, svc(ip="10.0.0.2"), "10.0.0.2", "", id="request-changed"),
        pytest.param({"dev/a": "10.0.0.1", "dev/b": "10.0.0.2"}, svc(), None, "all 2 addresses", id="exhausted"),
        pytest.param({}, svc(ip="10.0.0.9"), None, "not in the load balancer pool", id="request-outside-pool"),
        pytest.param({"dev/a": "10.0.0.2"}, svc(ip="10.0.0.2"), None, "already allocated to dev/a",
                     id="request-taken"),
        pytest.param({}, svc(ip="10.0.0.1", annotation="10.0.0.2"), None, "disagree", id="both-disagree"),
        pytest.param({}, svc(annotation="10.0.0.1,10.0.0.2"), None, "exactly one IPv4", id="two-ipv4"),
        pytest.param({}, svc(annotation="bogus"), None, "exactly one IPv4", id="annotation-garbage"),
        pytest.param({}, svc(ip="bogus"), None, "not an IPv4 address", id="spec-garbage"),
    ],
)
def test_allocate(holdings: dict[str, str], service: dict, ip: str | None, error: str) -> None:
    allocation = allocator(holdings).allocate("dev/web", service)
    assert allocation.ip == ip
    assert error in allocation.error and bool(error) is (ip is None)


def test_empty_pool_says_so() -> None:
    assert "no load balancer IP pool" in allocator(pool=[]).allocate("dev/web", svc()).error


def test_allocation_is_idempotent_and_release_frees() -> None:
    alloc = allocator()
    first = alloc.allocate("dev/a", svc("a")).ip
    assert alloc.allocate("dev/a", svc("a")).ip == first
    second = alloc.allocate("dev/b", svc("b")).ip
    assert {first, second} == {"10.0.0.1", "10.0.0.2"}
    assert alloc.allocate("dev/c", svc("c")).ip is None
    assert alloc.release("dev/a") == first
    assert alloc.allocate("dev/c", svc("c")).ip == first
    assert alloc.holder(first) == "dev/c"


def test_failed_request_frees_the_old_address() -> None:
    alloc = allocator({"dev/web": "10.0.0.1"})
    assert alloc.allocate("dev/web", svc(ip="10.0.0.9")).ip is None
    assert alloc.holder("10.0.0.1") is None


@pytest.mark.parametrize(
    ("key", "ip", "accepted"),
    [
        pytest.param("dev/b", "10.0.0.1", False, id="held-by-other"),
        pytest.param("dev/a", "10.0.0.1", True, id="same-holder"),
        pytest.param("dev/b", "10.9.9.9", False, id="outside-pool"),
        pytest.param("dev/b", "10.0.0.2", True, id="free"),
    ],
)
def test_assign(key: str, ip: str, accepted: bool) -> None:
    assert allocator({"dev/a": "10.0.0.1"}).assign(key, ip) is accepted


@pytest.mark.parametrize(
    ("service", "ip"),
    [
        pytest.param(svc(status="10.0.0.1"), "10.0.0.1", id="ip"),
        pytest.param(svc(), None, id="pending"),
        pytest.param({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}}, None, id="hostname"),
    ],
)
def test_status_ip(service: dict, ip: str | None) -> None:
    assert lb.status_ip(service) == ip


def test_ingress_for() -> None:
    assert lb.ingress_for("10.0.0.1") == [{"ip": "10.0.0.1", "ipMode": "VIP"}]
    assert lb.ingress_for(None) == []
