"""The proxy's snapshot: which services proxy, how slices map onto service ports, the traffic policies."""

from __future__ import annotations

import random
from typing import Any

import pytest

from svcnet.proxy import model


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    base = {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {**base, **spec}}


def slc(service: str = "web", *endpoints: dict[str, Any], port_name: str = "http", port: int = 8080,
        name: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name or f"{service}-x", "namespace": "ns",
                         "labels": {model.SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def ep(ip: str, node: str = "n1", ready: bool = True, serving: bool | None = None,
       terminating: bool = False) -> dict[str, Any]:
    conditions = {"ready": ready, "serving": ready if serving is None else serving, "terminating": terminating}
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


NAME = model.ServicePortName("ns", "web", "http", "TCP")


@pytest.mark.parametrize(("spec", "proxied"), [
    ({}, True),
    ({"clusterIP": "None"}, False),
    ({"type": "ExternalName", "externalName": "x.example", "clusterIP": ""}, False),
    ({"clusterIP": ""}, False),
])
def test_which_services_proxy(spec: dict[str, Any], proxied: bool) -> None:
    assert bool(model.service_ports(svc(**spec))) is proxied


def test_service_port_fields() -> None:
    info = model.service_ports(svc(type="LoadBalancer", sessionAffinity="ClientIP", externalIPs=["1.2.3.4"],
                                   externalTrafficPolicy="Local", healthCheckNodePort=32000,
                                   ports=[{"name": "http", "port": 80, "nodePort": 30080}])
                               | {"status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}})[0]
    assert info.name == NAME and info.node_port == 30080 and info.affinity_timeout == model.DEFAULT_AFFINITY_TIMEOUT
    assert info.external_ips == ("1.2.3.4",) and info.load_balancer_ips == ("5.6.7.8",)
    assert info.external_local and not info.internal_local and info.health_check_node_port == 32000


def test_cluster_ip_services_have_no_node_port() -> None:
    info = model.service_ports(svc(ports=[{"name": "http", "port": 80, "nodePort": 30080}]))[0]
    assert info.node_port == 0


def test_slices_map_by_port_name_and_merge_without_duplicates() -> None:
    first = slc("web", ep("10.0.0.2"), ep("10.0.0.1"), name="web-a")
    second = slc("web", ep("10.0.0.1"), ep("10.0.0.3"), name="web-b")
    other_port = slc("web", ep("10.0.0.9"), port_name="metrics", name="web-c")
    snapshot = model.build([svc()], [first, second, other_port, slc("ghost", ep("10.0.0.8"))])
    assert [e.ip for e in snapshot.endpoints[NAME]] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert all(e.port == 8080 for e in snapshot.endpoints[NAME])
    assert set(snapshot.endpoints) == {NAME}


def E(ip: str, **conditions: Any) -> model.EndpointInfo:  # noqa: N802 — reads like a constructor
    return model.EndpointInfo(ip, 80, **conditions)


@pytest.mark.parametrize(("endpoints", "local", "external", "expected"), [
    ([E("a"), E("b", ready=False, serving=False)], False, False, ["a"]),
    ([E("a", ready=False, serving=True, terminating=True), E("b", ready=False, serving=False)], False, False, ["a"]),
    ([E("a", ready=False, serving=True, terminating=True), E("b")], False, False, ["b"]),
    ([E("a", node_name="n1"), E("b", node_name="n2")], True, False, ["a"]),
    ([E("a", node_name="n2")], True, False, []),
    ([E("a", node_name="n2")], True, True, ["a"]),  # internal Local does not restrict external traffic
])
def test_usable_endpoints(endpoints: list[model.EndpointInfo], local: bool, external: bool,
                          expected: list[str]) -> None:
    info = model.ServicePortInfo(NAME, ("10.96.0.10",), 80, "TCP", internal_local=local)
    assert [e.ip for e in model.usable(info, endpoints, "n1", external)] == expected


def test_a_duplicate_endpoint_comes_from_the_slice_whose_key_sorts_first() -> None:
    ready = slc("web", ep("10.0.0.1"), name="web-b")
    not_ready = slc("web", ep("10.0.0.1", ready=False), name="web-a")
    for order in ([ready, not_ready], [not_ready, ready]):
        (only,) = model.build([svc()], order).endpoints[NAME]
        assert only.ready is False


def key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


WEB, API = svc("web"), svc("api", clusterIP="10.96.0.11")
WEB_SLICE, API_SLICE = slc("web", ep("10.0.0.1")), slc("api", ep("10.0.1.1"))

# (case, services and slices before, changes: key -> object or None) -- every step must equal `build` of
# what is there afterwards, and leave untouched service ports' objects as they were.
UPDATES = [
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice": [slc("web", ep("10.0.0.2"))]}, id="endpoint-replaced"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice": [slc("web", ep("10.0.0.1"), ep("10.0.0.2"),
                                                                     name="web-y")]}, id="second-slice-added"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice-gone": [WEB_SLICE]}, id="slice-deleted"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"service-gone": [WEB]}, id="service-deleted"),
    pytest.param([API], [WEB_SLICE, API_SLICE], {"service": [WEB]}, id="service-added-after-its-slice"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"service": [svc("web", ports=[
        {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}])]},
        id="service-port-added"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"service": [svc("web", clusterIP="None")]},
                 id="service-becomes-headless"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice": [
        {**WEB_SLICE, "metadata": {**WEB_SLICE["metadata"], "labels": {model.SERVICE_NAME_LABEL: "api"}}}]},
        id="slice-moves-to-another-service"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice": [{**WEB_SLICE, "addressType": "FQDN"}]},
                 id="slice-becomes-fqdn"),
    pytest.param([WEB, API], [WEB_SLICE, API_SLICE], {"slice": [
        {**WEB_SLICE, "metadata": {**WEB_SLICE["metadata"], "annotations": {"x": "y"}}}]}, id="no-op-change"),
]


@pytest.mark.parametrize(("services", "slices", "changes"), UPDATES)
def test_cache_update_equals_build_and_keeps_untouched_objects(
        services: list[dict[str, Any]], slices: list[dict[str, Any]], changes: dict[str, list[dict[str, Any]]]
) -> None:
    cache = model.SnapshotCache()
    before = cache.resync(services, slices)
    now_services = {key(s): s for s in services}
    now_slices = {key(s): s for s in slices}
    service_changes: dict[str, dict[str, Any] | None] = {}
    slice_changes: dict[str, dict[str, Any] | None] = {}
    for what, objs in changes.items():
        table, changed = (now_services, service_changes) if what.startswith("service") else (now_slices, slice_changes)
        for obj in objs:
            value = None if what.endswith("-gone") else obj
            changed[key(obj)] = value
            if value is None:
                table.pop(key(obj))
            else:
                table[key(obj)] = value
    after = cache.update(service_changes, slice_changes)
    expected = model.build(now_services.values(), now_slices.values())
    assert dict(after.services) == dict(expected.services)
    assert dict(after.endpoints) == dict(expected.endpoints)
    touched = {(s["metadata"]["namespace"], s["metadata"].get("labels", {}).get(model.SERVICE_NAME_LABEL)
                or s["metadata"]["name"]) for objs in changes.values() for s in objs}
    touched |= {("ns", "web")} if any(what.startswith("slice") for what in changes) else set()
    for name, info in before.services.items():
        if (name.namespace, name.name) not in touched:
            assert after.services[name] is info
            assert after.endpoints.get(name) is before.endpoints.get(name)


def test_cache_update_without_a_difference_keeps_the_snapshot() -> None:
    cache = model.SnapshotCache()
    before = cache.resync([WEB], [WEB_SLICE])
    assert cache.update({}, {}) is before
    after = cache.update({key(WEB): WEB}, {key(WEB_SLICE): WEB_SLICE})
    assert after.services[NAME] is before.services[NAME] and after.endpoints[NAME] is before.endpoints[NAME]


def test_cache_resync_forgets_what_is_no_longer_listed() -> None:
    cache = model.SnapshotCache()
    cache.resync([WEB, API], [WEB_SLICE, API_SLICE])
    assert set(cache.resync([API], [API_SLICE]).services) == {model.ServicePortName("ns", "api", "http", "TCP")}
    assert set(cache.resync([WEB], []).endpoints) == set()


def test_sorted_names_is_the_dataclass_order() -> None:
    names = [model.ServicePortName(ns, name, port, proto) for ns in ("b", "a", "") for name in ("web", "api", "w")
             for port in ("http", "", "dns") for proto in ("UDP", "TCP", "SCTP")]
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != names and model.sorted_names(shuffled) == sorted(names)
