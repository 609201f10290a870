"""`svcnet doctor`'s checklist as tables: each check over hand-built facts, the parsers over API-shaped dicts, and
the verdict for the five faults of issue 6 (no matching pod, wrong targetPort, unready pod, localhost-only app,
healthy service)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from svcnet.cluster import doctor
from svcnet.cluster.doctor import Status

NS, NAME, CLUSTER_IP = "dev", "web", "10.96.0.20"
IPS = ("10.244.1.2", "10.244.1.3", "10.244.1.4")


def pod(i: int, *, ready: bool = True, labels: dict[str, str] | None = None, ports: tuple[int, ...] = (80,),
        port_name: str = "", probe_messages: tuple[str, ...] = (), state: str = "running") -> doctor.PodFacts:
    return doctor.PodFacts(
        f"web-{i}", IPS[i], labels if labels is not None else {"app": "nginx-pod"}, "Running", ready,
        "" if ready else "ContainersNotReady: containers with unready status: [nginx]",
        (doctor.ContainerFacts("nginx", ready, state, "" if state == "running" else "CrashLoopBackOff", 0, True),),
        tuple(doctor.ContainerPort("nginx", p, port_name) for p in ports), probe_messages)


def healthy(n: int = 3, target: int | str = 80) -> doctor.Facts:
    pods = tuple(pod(i) for i in range(n))
    svc = doctor.ServiceFacts(NS, NAME, "ClusterIP", CLUSTER_IP, {"app": "nginx-pod"},
                              (doctor.ServicePort("", 80, target),))
    return doctor.Facts(
        NS, NAME, svc, pods, pods, doctor.EndpointsFacts(tuple((p.ip, 80) for p in pods), (), True),
        tuple(doctor.PodProbe(p.name, p.ip, 80, True) for p in pods),
        (doctor.AddressProbe(CLUSTER_IP, 80, True),),
        doctor.DNSFacts(f"{NAME}.{NS}.svc.cluster.local", "10.96.0.10:53", (CLUSTER_IP,)))


def with_service(facts: doctor.Facts, **changes: Any) -> doctor.Facts:
    assert facts.service is not None
    return dataclasses.replace(facts, service=dataclasses.replace(facts.service, **changes))


def no_match() -> doctor.Facts:
    base = with_service(healthy(), selector={"app": "nginx"})
    return dataclasses.replace(base, pods=(), endpoints=doctor.EndpointsFacts(found=True), pod_probes=())


def wrong_target() -> doctor.Facts:
    base = with_service(healthy(), ports=(doctor.ServicePort("", 80, 8080),))
    probes = tuple(doctor.PodProbe(p.name, p.ip, 8080, False, "connection refused", (80,), False,
                                   "nothing listens on 127.0.0.1:8080 either") for p in base.pods)
    return dataclasses.replace(base, endpoints=doctor.EndpointsFacts(tuple((ip, 8080) for ip in IPS), (), True),
                               pod_probes=probes)


def unready() -> doctor.Facts:
    pods = (pod(0, ready=False, probe_messages=("Readiness probe failed: HTTP probe failed with statuscode: 404",
                                                "Readiness probe failed: connection refused")),)
    return dataclasses.replace(healthy(1), pods=pods, namespace_pods=pods,
                               endpoints=doctor.EndpointsFacts((), ((IPS[0], 80),), True))


def localhost_only() -> doctor.Facts:
    base = healthy(1)
    probe = doctor.PodProbe("web-0", IPS[0], 80, False, "connection refused", (), True,
                            "pid 42 of the pod listens on 127.0.0.1:80")
    return dataclasses.replace(base, pod_probes=(probe,), cluster_ip_probes=(
        doctor.AddressProbe(CLUSTER_IP, 80, True),))


def statuses(check: Callable[[doctor.Facts], doctor.Check], facts: doctor.Facts) -> tuple[Status, str, str]:
    result = check(facts)
    return result.status, result.detail, result.fix


CASES = [
    # (check, facts, status, words expected in detail + fix)
    pytest.param(doctor.check_service_exists, healthy(), Status.OK, "ClusterIP 10.96.0.20", id="exists"),
    pytest.param(doctor.check_service_exists, doctor.Facts(NS, NAME, None), Status.FAIL, "dev/web does not exist",
                 id="missing"),
    pytest.param(doctor.check_selector, healthy(), Status.OK, "matches 3 pod", id="selector-ok"),
    pytest.param(doctor.check_selector, no_match(), Status.FAIL, "app=nginx matches no pod (pods here are "
                 "labelled app=nginx-pod)", id="selector-none"),
    pytest.param(doctor.check_selector, dataclasses.replace(no_match(), namespace_pods=()), Status.FAIL,
                 "no pods in namespace dev", id="selector-empty-namespace"),
    pytest.param(doctor.check_selector, dataclasses.replace(no_match(), namespace_pods=(pod(0, labels={"x": "y"}),)),
                 Status.FAIL, "labelled x=y", id="selector-other-keys"),
    pytest.param(doctor.check_selector, with_service(healthy(), selector={}), Status.SKIP, "no selector",
                 id="selectorless"),
    pytest.param(doctor.check_selector, with_service(healthy(), type="ExternalName", external_name="a.example"),
                 Status.SKIP, "ExternalName", id="externalname"),
    pytest.param(doctor.check_pods_ready, healthy(), Status.OK, "3 of 3", id="ready"),
    pytest.param(doctor.check_pods_ready, unready(), Status.FAIL, "web-0: Readiness probe failed: connection "
                 "refused", id="unready-probe-last-message"),
    pytest.param(doctor.check_pods_ready, dataclasses.replace(healthy(), pods=(pod(0), pod(1, ready=False))),
                 Status.WARN, "1 of 2", id="some-unready"),
    pytest.param(doctor.check_pods_ready, dataclasses.replace(healthy(), pods=(pod(0, ready=False,
                 state="waiting"),)), Status.FAIL, "container nginx is waiting (CrashLoopBackOff)", id="crashing"),
    pytest.param(doctor.check_pods_ready, no_match(), Status.SKIP, "no pods", id="ready-no-pods"),
    pytest.param(doctor.check_endpoints, healthy(), Status.OK, "3 ready endpoint(s): 10.244.1.2:80", id="endpoints"),
    pytest.param(doctor.check_endpoints, unready(), Status.FAIL, "no ready endpoints (1 not ready)",
                 id="endpoints-not-ready"),
    pytest.param(doctor.check_endpoints, no_match(), Status.FAIL, "kubectl get endpoints web", id="no-endpoints"),
    pytest.param(doctor.check_endpoints, dataclasses.replace(with_service(healthy(), ports=(
        doctor.ServicePort("", 80, "http"),)), endpoints=doctor.EndpointsFacts()), Status.FAIL,
        "'http' is not a port name", id="endpoints-named-port-missing"),
    pytest.param(doctor.check_ports, healthy(), Status.OK, "80->80", id="ports-ok"),
    pytest.param(doctor.check_ports, with_service(healthy(), ports=(doctor.ServicePort("", 80, "http"),)),
                 Status.FAIL, "'http' of service port 80 is not a port name in pod web-0 (it declares 80)",
                 id="named-missing"),
    pytest.param(doctor.check_ports, dataclasses.replace(with_service(healthy(1), ports=(
        doctor.ServicePort("", 80, "http"),)), pods=(pod(0, port_name="http"),)), Status.OK, "80->http",
        id="named-ok"),
    pytest.param(doctor.check_ports, with_service(healthy(), ports=(doctor.ServicePort("", 80, 8080),)),
                 Status.WARN, "8080 is not a declared containerPort", id="undeclared"),
    pytest.param(doctor.check_ports, wrong_target(), Status.FAIL, "set the Service's targetPort to 80",
                 id="wrong-target"),
    pytest.param(doctor.check_listening, healthy(), Status.OK, "3 pod address(es) accept", id="listening"),
    pytest.param(doctor.check_listening, localhost_only(), Status.FAIL, "127.0.0.1:80 only", id="localhost"),
    pytest.param(doctor.check_listening, wrong_target(), Status.FAIL, "accepts port 80", id="listen-wrong-port"),
    pytest.param(doctor.check_listening, dataclasses.replace(healthy(1), pod_probes=(doctor.PodProbe(
        "web-0", IPS[0], 80, False, "connection refused", (), None, "run `kubectl exec`"),)), Status.FAIL,
        "nothing accepts connections on pod web-0 (10.244.1.2:80): connection refused (run `kubectl exec`)",
        id="refused-unknown"),
    pytest.param(doctor.check_listening, dataclasses.replace(healthy(), pod_probes=()), Status.SKIP, "no pod IP",
                 id="listen-untried"),
    pytest.param(doctor.check_cluster_ip, healthy(), Status.OK, "10.96.0.20:80 accepts TCP", id="clusterip"),
    pytest.param(doctor.check_cluster_ip, dataclasses.replace(healthy(), cluster_ip_probes=(doctor.AddressProbe(
        CLUSTER_IP, 80, False, "connection refused"),)), Status.FAIL, "proxy", id="clusterip-refused"),
    pytest.param(doctor.check_cluster_ip, with_service(healthy(), cluster_ip="None"), Status.SKIP, "headless",
                 id="clusterip-headless"),
    pytest.param(doctor.check_dns, healthy(), Status.OK, "web.dev.svc.cluster.local -> 10.96.0.20", id="dns"),
    pytest.param(doctor.check_dns, dataclasses.replace(healthy(), dns=doctor.DNSFacts(
        "web.dev.svc.cluster.local", "x", (), "NXDOMAIN")), Status.FAIL, "NXDOMAIN", id="dns-nxdomain"),
    pytest.param(doctor.check_dns, dataclasses.replace(healthy(), dns=doctor.DNSFacts(
        "web.dev.svc.cluster.local", "x", ("10.96.0.99",))), Status.FAIL, "expected 10.96.0.20", id="dns-stale"),
    pytest.param(doctor.check_dns, dataclasses.replace(healthy(), dns=doctor.DNSFacts(
        "web.dev.svc.cluster.local", "x", error="no answer (timed out)")), Status.FAIL, "timed out",
        id="dns-down"),
    pytest.param(doctor.check_dns, dataclasses.replace(with_service(healthy(), cluster_ip="None"),
                 dns=doctor.DNSFacts("web.dev.svc.cluster.local", "x", IPS)), Status.OK, "10.244.1.2",
                 id="dns-headless"),
    pytest.param(doctor.check_dns, dataclasses.replace(healthy(), dns=None), Status.SKIP, "--dns", id="dns-none"),
]


@pytest.mark.parametrize(("check", "facts", "status", "words"), CASES)
def test_check(check: Callable[[doctor.Facts], doctor.Check], facts: doctor.Facts, status: Status,
               words: str) -> None:
    got, detail, fix = statuses(check, facts)
    assert got is status, (detail, fix)
    assert words in f"{detail} {fix}"
    assert (fix != "") == (status is Status.FAIL) or status is Status.WARN


def test_checks_run_in_the_seeds_order() -> None:
    assert [c.name for c in doctor.checks(healthy())] == [
        "service exists", "selector matches pods", "pods ready", "endpoints exist", "port vs targetPort",
        "app listens on pod IP", "ClusterIP forwards", "DNS name resolves"]


VERDICTS = [
    pytest.param(no_match(), "FAULT: the selector app=nginx matches no pod (pods here are labelled app=nginx-pod) — "
                 "fix the Service's selector", id="selector-matches-nothing"),
    pytest.param(wrong_target(), "FAULT: targetPort 8080 is wrong: pod web-0 refuses it but accepts its declared "
                 "port 80 — set the Service's targetPort to 80", id="wrong-targetport"),
    pytest.param(unready(), "FAULT: 1 of 1 pod(s) not Ready — pod web-0: Readiness probe failed: connection "
                 "refused — make the readiness probe pass", id="unready-pod"),
    pytest.param(localhost_only(), "FAULT: the application in pod web-0 (10.244.1.2:80) listens on 127.0.0.1:80 "
                 "only, not on its pod IP — make it bind 0.0.0.0", id="bound-to-localhost"),
    pytest.param(healthy(), "OK: service dev/web forwards to 3 ready pods", id="healthy"),
    pytest.param(doctor.Facts(NS, NAME, None), "FAULT: service dev/web does not exist", id="no-service"),
]


@pytest.mark.parametrize(("facts", "expected"), VERDICTS)
def test_verdict(facts: doctor.Facts, expected: str) -> None:
    line = doctor.verdict(doctor.checks(facts), facts)
    assert line.startswith(expected), line
    assert "\n" not in line


def test_verdict_names_the_first_warning_when_nothing_fails() -> None:
    facts = with_service(healthy(), ports=(doctor.ServicePort("", 80, 8080),))
    facts = dataclasses.replace(facts, pod_probes=tuple(dataclasses.replace(p, port=8080) for p in facts.pod_probes))
    assert doctor.verdict(doctor.checks(facts), facts) == (
        "OK: service dev/web forwards to 3 ready pods (warning: targetPort 8080 is not a declared containerPort of "
        "pod web-0 (it declares 80))")


# ---- parsing API objects ----------------------------------------------------------------------------------------

POD = {
    "metadata": {"name": "web-0", "namespace": NS, "uid": "u1", "labels": {"app": "nginx-pod"}},
    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}],
                             "readinessProbe": {"tcpSocket": {"port": 80}}}]},
    "status": {"phase": "Running", "podIP": IPS[0],
               "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                               "message": "containers with unready status: [nginx]"}],
               "containerStatuses": [{"name": "nginx", "ready": False, "restartCount": 2,
                                      "state": {"running": {"startedAt": "x"}}}]},
}


def event(name: str, uid: str, message: str, at: str, reason: str = "Unhealthy") -> dict[str, Any]:
    return {"reason": reason, "message": message, "lastTimestamp": at,
            "involvedObject": {"kind": "Pod", "name": name, "uid": uid}}


def test_parse_pod_keeps_its_own_unhealthy_events_in_time_order() -> None:
    events = [event("web-0", "u1", "Readiness probe failed: late", "2024-01-01T00:00:09Z"),
              event("web-0", "u1", "Readiness probe failed: early", "2024-01-01T00:00:01Z"),
              event("web-0", "old-uid", "Readiness probe failed: a previous pod", "2024-01-01T00:00:05Z"),
              event("web-1", "u2", "Readiness probe failed: another pod", "2024-01-01T00:00:05Z"),
              event("web-0", "u1", "Started", "2024-01-01T00:00:05Z", reason="Started")]
    facts = doctor.parse_pod(POD, events)
    assert facts.probe_messages == ("Readiness probe failed: early", "Readiness probe failed: late")
    assert not facts.ready and facts.ready_reason.startswith("ContainersNotReady: containers with unready")
    assert facts.ports == (doctor.ContainerPort("nginx", 80, "http"),)
    assert facts.containers == (doctor.ContainerFacts("nginx", False, "running", "", 2, True),)


def test_parse_service_and_resolve_target_ports() -> None:
    svc = doctor.parse_service({"metadata": {"name": NAME, "namespace": NS}, "spec": {
        "clusterIP": CLUSTER_IP, "selector": {"app": "nginx-pod"},
        "ports": [{"port": 80, "targetPort": "http"}, {"port": 81}, {"port": 82, "targetPort": "nope"}]}})
    target = doctor.parse_pod(POD)
    assert [doctor.resolve_target_port(p, target) for p in svc.ports] == [80, 81, None]
    assert doctor.selector_matches(svc.selector, target.labels)
    assert not doctor.selector_matches({}, target.labels)


def test_parse_endpoints_merges_endpoints_and_slices() -> None:
    endpoints = {"subsets": [{"addresses": [{"ip": IPS[0]}], "notReadyAddresses": [{"ip": IPS[1]}],
                              "ports": [{"port": 80}]}]}
    slices = [{"ports": [{"port": 80}], "endpoints": [
        {"addresses": [IPS[0]], "conditions": {"ready": True}},
        {"addresses": [IPS[2]], "conditions": {"ready": False}}]}]
    assert doctor.parse_endpoints(endpoints, slices) == doctor.EndpointsFacts(
        ((IPS[0], 80),), ((IPS[1], 80), (IPS[2], 80)), True)
    assert doctor.parse_endpoints(None) == doctor.EndpointsFacts()
