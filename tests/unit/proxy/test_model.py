"""The proxy's snapshot: which services proxy, how slices map onto service ports, the traffic policies."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.proxy import model


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    base = {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {**base, **spec}}


def slc(service: str = "web", *endpoints: dict[str, Any], port_name: str = "http", port: int = 8080
        ) -> dict[str, Any]:
    return {"metadata": {"name": f"{service}-x", "namespace": "ns",
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
    first = slc("web", ep("10.0.0.2"), ep("10.0.0.1"))
    second = slc("web", ep("10.0.0.1"), ep("10.0.0.3"))
    other_port = slc("web", ep("10.0.0.9"), port_name="metrics")
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
