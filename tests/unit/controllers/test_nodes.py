"""Node IPAM and node health: the nodeipam and nodelifecycle rules as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers import nodes

T0 = nodes.parse_time("2026-01-01T00:00:00Z")
assert T0 is not None


def at(seconds: float) -> str:
    return nodes.format_time(T0 + seconds)


def node(name: str = "n1", cidr: str | None = None, ready: str | None = "True", heartbeat: float | None = 0,
         taints: list | None = None, created: float = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cidr:
        spec.update(podCIDR=cidr, podCIDRs=[cidr])
    if taints is not None:
        spec["taints"] = taints
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                           "lastHeartbeatTime": at(heartbeat or 0), "lastTransitionTime": at(0)})
    return {"metadata": {"name": name, "creationTimestamp": at(created)}, "spec": spec,
            "status": {"conditions": conditions}}


def lease(renewed: float) -> dict[str, Any]:
    stamp = nodes.format_time(T0 + renewed).replace("Z", ".250000Z")  # MicroTime
    return {"metadata": {"name": "n1", "namespace": nodes.LEASE_NAMESPACE}, "spec": {"renewTime": stamp}}


# ---- IPAM -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "mask", "occupied", "expected"),
    [
        pytest.param("10.244.0.0/16", 24, [], ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"], id="in-order"),
        pytest.param("10.244.0.0/16", 24, ["10.244.0.0/24", "10.244.2.0/24"],
                     ["10.244.1.0/24", "10.244.3.0/24", "10.244.4.0/24"], id="rebuilt-after-restart"),
        pytest.param("10.244.0.0/23", 24, [], ["10.244.0.0/24", "10.244.1.0/24", None], id="full-range"),
        pytest.param("10.244.0.0/24", 24, ["10.244.0.0/24"], [None], id="single-subnet-taken"),
        pytest.param("10.244.0.0/23", 24, ["10.99.0.0/24", "10.244.0.0/25", "junk"],
                     ["10.244.0.0/24", "10.244.1.0/24", None], id="foreign-cidrs-ignored"),
        pytest.param("127.244.0.0/16", 26, [], ["127.244.0.0/26", "127.244.0.64/26"], id="small-mask"),
        pytest.param("fd00:10::/48", 64, [], ["fd00:10::/64", "fd00:10:0:1::/64"], id="ipv6"),
    ],
)
def test_cidr_allocation(cluster: str, mask: int, occupied: list[str], expected: list[str | None]) -> None:
    cidrs = nodes.CIDRSet(cluster, mask)
    for cidr in occupied:
        cidrs.occupy(cidr)
    assert [cidrs.allocate() for _ in expected] == expected


def test_release_makes_a_subnet_free_again() -> None:
    cidrs = nodes.CIDRSet("10.0.0.0/23", 24)
    first, second = cidrs.allocate(), cidrs.allocate()
    assert cidrs.allocate() is None
    assert first is not None and second is not None
    cidrs.release(first)
    assert cidrs.allocate() == first


@pytest.mark.parametrize(("cluster", "mask"), [pytest.param("10.0.0.0/16", 8, id="mask-wider-than-range"),
                                                 pytest.param("10.0.0.0/16", 33, id="mask-too-long"),
                                                 pytest.param("not-a-cidr", 24, id="garbage")])
def test_bad_cluster_cidr(cluster: str, mask: int) -> None:
    with pytest.raises(nodes.CIDRError):
        nodes.CIDRSet(cluster, mask)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(node(), [], id="none"),
        pytest.param(node(cidr="10.0.1.0/24"), ["10.0.1.0/24"], id="both-fields"),
        pytest.param({"spec": {"podCIDR": "10.0.2.0/24"}}, ["10.0.2.0/24"], id="legacy-field-only"),
    ],
)
def test_pod_cidrs(body: dict, expected: list[str]) -> None:
    assert nodes.pod_cidrs(body) == expected


# ---- health ---------------------------------------------------------------------------------------------------

GRACE = 40.0


@pytest.mark.parametrize(
    ("body", "the_lease", "now", "stale"),
    [
        pytest.param(node(heartbeat=0), None, 39, False, id="ready-heartbeat-fresh"),
        pytest.param(node(heartbeat=0), None, 41, True, id="ready-heartbeat-old"),
        pytest.param(node(heartbeat=0), lease(30), 60, False, id="lease-keeps-it-alive"),
        pytest.param(node(heartbeat=30), lease(0), 60, False, id="status-keeps-it-alive"),
        pytest.param(node(heartbeat=0), lease(10), 51, True, id="both-old"),
        pytest.param(node(ready=None, created=100), None, 120, False, id="new-node-gets-grace"),
        pytest.param(node(ready=None, created=0), None, 41, True, id="never-posted"),
    ],
)
def test_staleness(body: dict, the_lease: dict | None, now: float, stale: bool) -> None:
    assert nodes.is_stale(body, the_lease, T0 + now, GRACE) is stale


def test_lease_microtime_counts() -> None:
    assert nodes.last_heartbeat(node(heartbeat=0), lease(5)) == pytest.approx(T0 + 5.25)


def by_type(conditions: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conditions}


def test_unknown_conditions_keep_heartbeat_and_add_missing() -> None:
    conditions = nodes.unknown_conditions(node(heartbeat=3), T0 + 100)
    assert conditions is not None
    found = by_type(conditions)
    assert found["Ready"] == {"type": "Ready", "status": "Unknown", "reason": nodes.UNKNOWN_REASON,
                              "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": at(3),
                              "lastTransitionTime": at(100)}
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert found[kind]["status"] == "Unknown"
        assert found[kind]["reason"] == nodes.NEVER_REASON
    assert nodes.unknown_conditions({**node(), "status": {"conditions": conditions}}, T0 + 200) is None


UNREACHABLE = [{"key": nodes.UNREACHABLE, "effect": "NoSchedule"},
               {"key": nodes.UNREACHABLE, "effect": "NoExecute", "timeAdded": at(50)}]
OTHER = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("body", "stale", "expected"),
    [
        pytest.param(node(), True, UNREACHABLE, id="stale-gets-unreachable"),
        pytest.param(node(taints=[OTHER]), True, [OTHER, *UNREACHABLE], id="foreign-taints-kept"),
        pytest.param(node(taints=UNREACHABLE), True, None, id="already-tainted"),
        pytest.param(node(taints=[*UNREACHABLE, OTHER]), False, [OTHER], id="fresh-lease-lifts-taints"),
        pytest.param(node(ready="Unknown", taints=UNREACHABLE), False, [], id="back-before-agent-updates"),
        pytest.param(node(ready="False"), False,
                     [{"key": nodes.NOT_READY, "effect": "NoSchedule"},
                      {"key": nodes.NOT_READY, "effect": "NoExecute", "timeAdded": at(50)}], id="agent-says-false"),
        pytest.param(node(ready="False", taints=[{"key": nodes.NOT_READY, "effect": "NoSchedule"}]), True,
                     UNREACHABLE, id="not-ready-becomes-unreachable"),
        pytest.param(node(), False, None, id="healthy-untouched"),
    ],
)
def test_taints(body: dict, stale: bool, expected: list | None) -> None:
    assert nodes.reconcile_taints(body, nodes.wanted_taints(body, stale), T0 + 50) == expected


def pod(ready: str | None, node_name: str = "n1") -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "lastTransitionTime": at(0)})
    return {"metadata": {"name": "p", "namespace": "dev"}, "spec": {"nodeName": node_name},
            "status": {"phase": "Running", "conditions": conditions}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(pod("True"), [{"type": "PodScheduled", "status": "True"},
                                   {"type": "Ready", "status": "False", "lastTransitionTime": at(60)}],
                     id="ready-becomes-false"),
        pytest.param(pod("False"), None, id="already-false"),
        pytest.param(pod(None), None, id="no-ready-condition"),
    ],
)
def test_pod_not_ready(body: dict, expected: list | None) -> None:
    assert nodes.pod_not_ready_conditions(body, T0 + 60) == expected


@pytest.mark.parametrize(
    ("body", "stale", "expected"),
    [
        pytest.param(node(), True, True, id="stale"),
        pytest.param(node(ready="False"), False, True, id="agent-says-false"),
        pytest.param(node(), False, False, id="healthy"),
        pytest.param(node(ready="Unknown"), False, False, id="back-agent-pending"),
    ],
)
def test_pods_need_not_ready(body: dict, stale: bool, expected: bool) -> None:
    assert nodes.pods_need_not_ready(body, stale) is expected


def test_pods_on() -> None:
    assert nodes.pods_on("n1", [pod("True"), pod("True", "n2")]) == [pod("True")]
