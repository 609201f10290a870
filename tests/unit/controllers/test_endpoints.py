"""Endpoints and EndpointSlice computation: the controller rules as a table."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.controllers import endpoints as ep


def svc(name: str = "web", selector: dict | None = None, ports: list | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}] if ports is None
                            else ports, **spec}
    if selector is not False:
        body["selector"] = selector or {"app": "web"}
    return {"metadata": {"name": name, "namespace": "dev", "uid": "svc-uid"}, "spec": body}


def pod(name: str, ip: str | None, ready: bool = True, labels: dict | None = None, phase: str = "Running",
        terminating: bool = False, ports: list | None = None, namespace: str = "dev", **spec: Any) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                            "labels": labels or {"app": "web"}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    containers = [{"name": "c", "image": "nginx", "ports": ports or []}]
    return {"metadata": meta, "spec": {"nodeName": "node-1", "containers": containers, **spec}, "status": status}


def addresses(endpoints: dict, field: str = "addresses") -> list[str]:
    return [a["ip"] for s in endpoints["subsets"] for a in s.get(field, [])]


@pytest.mark.parametrize(
    ("service", "pods", "ready", "not_ready"),
    [
        pytest.param(svc(), [pod("a", "10.0.0.2"), pod("b", "10.0.0.1")], ["10.0.0.1", "10.0.0.2"], [],
                     id="ready-sorted-by-ip"),
        pytest.param(svc(), [pod("a", "10.0.0.1", ready=False)], [], ["10.0.0.1"], id="not-ready"),
        pytest.param(svc(publishNotReadyAddresses=True), [pod("a", "10.0.0.1", ready=False)], ["10.0.0.1"], [],
                     id="publish-not-ready"),
        pytest.param({**svc(), "metadata": {**svc()["metadata"], "annotations": {ep.TOLERATE_UNREADY: "true"}}},
                     [pod("a", "10.0.0.1", ready=False)], ["10.0.0.1"], [], id="tolerate-annotation"),
        pytest.param(svc(), [pod("a", None)], [], [], id="no-ip-yet"),
        pytest.param(svc(), [pod("a", "10.0.0.1", phase="Succeeded")], [], [], id="terminal-phase"),
        pytest.param(svc(), [pod("a", "10.0.0.1", labels={"app": "other"})], [], [], id="selector-mismatch"),
        pytest.param(svc(), [pod("a", "10.0.0.1", namespace="prod")], [], [], id="other-namespace"),
        pytest.param(svc(), [pod("a", "10.0.0.1", terminating=True)], [], [], id="terminating-leaves"),
        pytest.param(svc(publishNotReadyAddresses=True), [pod("a", "10.0.0.1", terminating=True)], ["10.0.0.1"],
                     [], id="terminating-published"),
    ],
)
def test_endpoint_addresses(service: dict, pods: list, ready: list, not_ready: list) -> None:
    result = ep.compute_endpoints(service, pods)
    assert result is not None
    assert addresses(result) == ready
    assert addresses(result, "notReadyAddresses") == not_ready


def test_no_selector_means_not_managed() -> None:
    assert ep.compute_endpoints(svc(selector=False), [pod("a", "10.0.0.1")]) is None
    assert ep.compute_slices(svc(selector=False), [pod("a", "10.0.0.1")]) == []


def test_address_fields_and_ports() -> None:
    result = ep.compute_endpoints(svc(), [pod("a", "10.0.0.1", hostname="h", subdomain="web")])
    assert result is not None
    (subset,) = result["subsets"]
    assert subset["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"] == [{"ip": "10.0.0.1", "nodeName": "node-1", "hostname": "h",
                                    "targetRef": {"kind": "Pod", "namespace": "dev", "name": "a", "uid": "uid-a"}}]


def test_named_target_port_resolves_per_pod() -> None:
    service = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
            pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9090, "protocol": "TCP"}]),
            pod("c", "10.0.0.3", ports=[{"name": "other", "containerPort": 1, "protocol": "TCP"}])]
    result = ep.compute_endpoints(service, pods)
    assert result is not None
    by_port = {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in result["subsets"]}
    assert by_port == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}  # the pod without the named port is in none


def test_over_capacity_truncates_and_annotates() -> None:
    pods = [pod(f"p{i}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(1005)]
    result = ep.compute_endpoints(svc(), pods)
    assert result is not None
    assert len(addresses(result)) == 1000
    assert result["metadata"]["annotations"] == {ep.OVER_CAPACITY: "truncated"}


def test_headless_label() -> None:
    result = ep.compute_endpoints(svc(clusterIP="None"), [pod("a", "10.0.0.1")])
    assert result is not None and result["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_slices_conditions_labels_and_chunking() -> None:
    pods = [pod(f"p{i}", f"10.2.0.{i + 1}", ready=i % 2 == 0) for i in range(150)]
    pods.append(pod("gone", "10.3.0.1", terminating=True))
    slices = ep.compute_slices(svc(), pods)
    assert [len(s["endpoints"]) for s in slices] == [100, 51]
    first = slices[0]
    assert first["metadata"]["labels"][ep.SERVICE_NAME_LABEL] == "web"
    assert first["metadata"]["labels"][ep.MANAGED_BY_LABEL] == ep.MANAGED_BY
    assert first["addressType"] == "IPv4" and first["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    conditions = {e["addresses"][0]: e["conditions"] for s in slices for e in s["endpoints"]}
    assert conditions["10.2.0.1"] == {"ready": True, "serving": True, "terminating": False}
    assert conditions["10.2.0.2"] == {"ready": False, "serving": False, "terminating": False}
    assert conditions["10.3.0.1"] == {"ready": False, "serving": True, "terminating": True}
    assert len({s["metadata"]["name"] for s in slices}) == 2


def test_service_without_pods_keeps_one_empty_slice() -> None:
    (only,) = ep.compute_slices(svc(), [])
    assert only["endpoints"] == [] and only["ports"] == []


# --- trigger time ---------------------------------------------------------------------------------------------

CREATED = "2026-01-01T00:00:00Z"


def svc_at(created: str = CREATED) -> dict:
    service = svc()
    service["metadata"]["creationTimestamp"] = created
    return service


def pod_at(name: str, since: str | None, ready: bool = True, **kw: Any) -> dict:
    p = pod(name, f"10.0.0.{len(name)}", ready=ready, **kw)
    if since is not None:
        p["status"]["conditions"][0]["lastTransitionTime"] = since
    return p


def at(text: str) -> datetime.datetime:
    moment = ep.parse_time(text)
    assert moment is not None
    return moment


def state(service: str | None = CREATED, **pods: str) -> ep.TriggerState:
    return ep.TriggerState(at(service) if service else None, {name: at(t) for name, t in pods.items()})


# (case, service, pods now, state of the last sync (None: never synced), expected trigger time)
TRIGGERS = [
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z")], None, CREATED, id="new-service-its-creation"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z")], state(a="2026-01-01T00:00:05Z"), None,
                 id="nothing-moved"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:09Z", ready=False)], state(a="2026-01-01T00:00:05Z"),
                 "2026-01-01T00:00:09Z", id="pod-readiness-moved"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z"), pod_at("bb", "2026-01-01T00:00:07Z"),
                            pod_at("ccc", "2026-01-01T00:00:08Z")],
                 state(a="2026-01-01T00:00:05Z"), "2026-01-01T00:00:07Z", id="earliest-of-the-changes"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z", labels={"app": "other"})], state(), None,
                 id="unselected-pod-ignored"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z", namespace="prod")], state(), None,
                 id="other-namespace-ignored"),
    pytest.param(svc_at(), [pod_at("a", "2026-01-01T00:00:05Z", phase="Failed")], state(), "2026-01-01T00:00:05Z",
                 id="terminal-pod-counts"),
    pytest.param(svc_at(), [pod_at("a", None)], state(), None, id="no-ready-condition-time"),
    pytest.param(svc_at(), [pod_at("a", "not a time")], state(), None, id="bad-time-ignored"),
    pytest.param(svc_at("2026-01-02T00:00:00Z"), [], state(), "2026-01-02T00:00:00Z", id="service-recreated"),
    pytest.param(svc_at(), [], state(a="2026-01-01T00:00:05Z"), None, id="pod-gone-no-time"),
]


@pytest.mark.parametrize(("service", "pods", "previous", "expected"), TRIGGERS)
def test_trigger_time(service: dict, pods: list, previous: ep.TriggerState | None, expected: str | None) -> None:
    moment, after = ep.trigger_time(service, pods, previous)
    assert (ep.format_time(moment) if moment else None) == expected
    assert ep.trigger_time(service, pods, after)[0] is None  # the same objects again: nothing new


@pytest.mark.parametrize(("text", "formatted"), [
    pytest.param("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", id="whole-seconds"),
    pytest.param("2026-01-01T00:00:00.250000Z", "2026-01-01T00:00:00.25Z", id="trailing-zeros-dropped"),
    pytest.param("2026-01-01T01:00:00.000001+01:00", "2026-01-01T00:00:00.000001Z", id="to-utc"),
])
def test_format_time_is_rfc3339nano(text: str, formatted: str) -> None:
    assert ep.format_time(at(text)) == formatted


@pytest.mark.parametrize(("annotations", "moment", "expected"), [
    pytest.param(None, "2026-01-01T00:00:00Z", {ep.TRIGGER_TIME: "2026-01-01T00:00:00Z"}, id="set"),
    pytest.param({ep.OVER_CAPACITY: "truncated", ep.TRIGGER_TIME: "x"}, None, {ep.OVER_CAPACITY: "truncated"},
                 id="removed-others-kept"),
    pytest.param({ep.TRIGGER_TIME: "x"}, None, None, id="no-annotations-left"),
])
def test_with_trigger_time(annotations: dict | None, moment: str | None, expected: dict | None) -> None:
    obj = {"kind": "EndpointSlice", "metadata": {"name": "web-abc"}}
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    result = ep.with_trigger_time(obj, at(moment) if moment else None)
    assert result["metadata"].get("annotations") == expected and result["metadata"]["name"] == "web-abc"
