"""EndpointSlice mirroring: which Endpoints are mirrored and into which slices, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers import mirroring as m

PORTS = [{"name": "http", "port": 8080, "protocol": "TCP"}]


def svc(selector: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80}]}
    if selector:
        spec["selector"] = selector
    return {"metadata": {"name": "ext", "namespace": "dev", "uid": "svc-uid"}, "spec": spec}


def eps(*subsets: dict, labels: dict | None = None, annotations: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "ext", "namespace": "dev", "uid": "ep-uid"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "subsets": list(subsets)}


def subset(ready: list[str] | tuple[str, ...] = (), not_ready: list[str] | tuple[str, ...] = (),
           ports: list | None = None) -> dict[str, Any]:
    return {"addresses": [{"ip": ip} for ip in ready], "notReadyAddresses": [{"ip": ip} for ip in not_ready],
            "ports": PORTS if ports is None else ports}


def summary(mirror: m.Mirror) -> list[tuple[str, list[int], list[tuple[str, bool]]]]:
    return [(s["addressType"], [p["port"] for p in s["ports"]],
             [(e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"]]) for s in mirror.slices]


@pytest.mark.parametrize(
    ("service", "endpoints", "expected"),
    [
        pytest.param(svc(), eps(subset(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"])),
                     [("IPv4", [8080], [("10.0.0.1", True), ("10.0.0.2", True), ("10.0.0.3", False)])],
                     id="ready-and-not-ready"),
        pytest.param(svc({"app": "web"}), eps(subset(["10.0.0.1"])), [], id="service-with-selector"),
        pytest.param(None, eps(subset(["10.0.0.1"])), [], id="no-service"),
        pytest.param(svc(), None, [], id="no-endpoints"),
        pytest.param(svc(), eps(subset(["10.0.0.1"]), labels={m.SKIP_MIRROR_LABEL: "true"}), [], id="skip-mirror"),
        pytest.param(svc(), eps(subset(["10.0.0.1"]), labels={m.SKIP_MIRROR_LABEL: "false"}),
                     [("IPv4", [8080], [("10.0.0.1", True)])], id="skip-mirror-false"),
        pytest.param(svc(), eps(subset(["10.0.0.1"]), annotations={m.LEADER_ANNOTATION: "{}"}), [],
                     id="leader-election-record"),
        pytest.param(svc(), eps(subset(["10.0.0.1"]), subset(["10.0.0.2", "10.0.0.1"])),
                     [("IPv4", [8080], [("10.0.0.1", True), ("10.0.0.2", True)])], id="same-ports-merge-dedupe"),
        pytest.param(svc(), eps(subset(["10.0.0.1"]), subset(["10.0.0.2"], ports=[{"port": 9090}])),
                     [("IPv4", [9090], [("10.0.0.2", True)]), ("IPv4", [8080], [("10.0.0.1", True)])],
                     id="different-ports-separate"),
        pytest.param(svc(), eps(subset(["10.0.0.1", "fd00::0001"])),
                     [("IPv4", [8080], [("10.0.0.1", True)]), ("IPv6", [8080], [("fd00::1", True)])],
                     id="families-split-and-canonical"),
        pytest.param(svc(), eps(subset(["not-an-ip", "10.0.0.1"])), [("IPv4", [8080], [("10.0.0.1", True)])],
                     id="invalid-skipped"),
        pytest.param(svc(), eps(), [], id="no-subsets"),
    ],
)
def test_mirror(service: dict | None, endpoints: dict | None, expected: list) -> None:
    assert sorted(summary(m.compute_mirror(service, endpoints))) == sorted(expected)


def test_slice_metadata() -> None:
    endpoints = eps(subset(["10.0.0.1"]), labels={"team": "a"},
                    annotations={"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    endpoints["subsets"][0]["addresses"][0].update(nodeName="n1", hostname="h",
                                                   targetRef={"kind": "Pod", "name": "p", "namespace": "dev"})
    (only,) = m.compute_mirror(svc(), endpoints).slices
    assert only["metadata"]["labels"] == {"team": "a", m.SERVICE_NAME_LABEL: "ext", m.MANAGED_BY_LABEL: m.MANAGED_BY}
    assert only["metadata"]["annotations"] == {"note": "x"}
    assert only["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints", "name": "ext",
                                                    "uid": "ep-uid", "controller": True, "blockOwnerDeletion": True}]
    assert only["metadata"]["name"].startswith("ext-mirror-")
    assert only["endpoints"] == [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "nodeName": "n1",
                                  "hostname": "h", "targetRef": {"kind": "Pod", "name": "p", "namespace": "dev"}}]
    assert only["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert m.compute_mirror(svc(), endpoints).slices == [only], "names and content are deterministic"


@pytest.mark.parametrize(
    ("ready", "not_ready", "sizes", "over"),
    [
        pytest.param(100, 0, [100], 0, id="exactly-one-slice"),
        pytest.param(150, 60, [100, 100, 10], 0, id="split-by-100"),
        pytest.param(1000, 5, [100] * 10, 5, id="subset-capped-at-1000"),
    ],
)
def test_slice_sizes(ready: int, not_ready: int, sizes: list[int], over: int) -> None:
    ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(ready + not_ready)]
    mirror = m.compute_mirror(svc(), eps(subset(ips[:ready], ips[ready:])))
    assert [len(s["endpoints"]) for s in mirror.slices] == sizes
    assert mirror.over_capacity == over
    assert len({s["metadata"]["name"] for s in mirror.slices}) == len(sizes)


def test_invalid_addresses_are_counted() -> None:
    assert m.compute_mirror(svc(), eps(subset(["x", "y", "10.0.0.1"]))).invalid == 2
