"""`svcnet doctor`: seed 004's Service troubleshooting checklist as pure functions over gathered facts.

Theory of operation: `doctor_gather` reads the API and probes the network once and fills a `Facts`; here,
`checks(facts)` runs one small pure function per item of the checklist, in the seed's order, and `verdict(checks)`
turns the first failure into one line naming the fault and its fix. The objects read from the API are turned
into facts by the pure `parse_*` helpers, so the whole diagnosis is testable from plain dicts.

The checklist, in order (seed 004, "排除服务故障"):
  1. the Service exists;
  2. its selector matches pods (if not: which labels the namespace's pods do have);
  3. those pods are Ready (if not: the readiness probe's last message);
  4. the Service has endpoints (`kubectl get endpoints`);
  5. `port` vs `targetPort` vs the containers' ports (a named targetPort must exist in the pods, a numeric one
     should be a declared containerPort);
  6. the application accepts connections on the pod IP, not only on localhost;
  7. the ClusterIP forwards (TCP, not ping: a ClusterIP is virtual);
  8. the DNS name resolves to the right address.

Invariants: no I/O and no clock here; every check returns exactly one `Check`; a check whose prerequisite is
missing (no Service, no pods, nothing probed) returns SKIP rather than guessing; a network fact that was not
gathered is `None` ("unknown"), never False; `verdict` is always exactly one line.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]


class Status(enum.Enum):
    OK = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ip: str = ""  # "" or "None" (headless)
    selector: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    external_name: str = ""
    publish_not_ready: bool = False

    @property
    def headless(self) -> bool:
        return self.cluster_ip in ("", "None")


@dataclass(frozen=True, slots=True)
class ContainerPort:
    container: str
    port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    name: str
    ready: bool
    state: str  # running | waiting | terminated
    reason: str = ""
    restart_count: int = 0
    has_readiness_probe: bool = False


@dataclass(frozen=True, slots=True)
class PodFacts:
    name: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    phase: str = "Running"
    ready: bool = True
    ready_reason: str = ""  # the Ready condition's reason and message when not ready
    containers: tuple[ContainerFacts, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    probe_messages: tuple[str, ...] = ()  # Unhealthy events, oldest first
    terminating: bool = False


@dataclass(frozen=True, slots=True)
class EndpointsFacts:
    ready: tuple[tuple[str, int], ...] = ()  # (ip, port)
    not_ready: tuple[tuple[str, int], ...] = ()
    found: bool = False  # an Endpoints object or an EndpointSlice exists


@dataclass(frozen=True, slots=True)
class PodProbe:
    """What a TCP connection to one pod's target port showed."""

    pod: str
    ip: str
    port: int
    accepts: bool | None  # None: not tried
    error: str = ""
    open_declared: tuple[int, ...] = ()  # declared containerPorts that do accept on the pod IP
    localhost_only: bool | None = None  # a process of the pod listens on 127.0.0.1:port only; None: unknown
    localhost_note: str = ""  # how that was (or could not be) established


@dataclass(frozen=True, slots=True)
class AddressProbe:
    """A TCP connection to the ClusterIP:port."""

    address: str
    port: int
    accepts: bool | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class DNSFacts:
    name: str
    server: str
    answers: tuple[str, ...] = ()  # A records (or CNAME targets)
    rcode: str = "NOERROR"
    error: str = ""  # no answer at all (timeout, unreachable)


@dataclass(frozen=True, slots=True)
class Facts:
    namespace: str
    name: str
    service: ServiceFacts | None
    pods: tuple[PodFacts, ...] = ()  # the pods the selector matches
    namespace_pods: tuple[PodFacts, ...] = ()  # every pod of the namespace (for the label hint)
    endpoints: EndpointsFacts = EndpointsFacts()
    pod_probes: tuple[PodProbe, ...] = ()
    cluster_ip_probes: tuple[AddressProbe, ...] = ()
    dns: DNSFacts | None = None


# ---- parsing API objects into facts (pure) ----------------------------------------------------------------------

def parse_service(svc: Obj) -> ServiceFacts:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ports = tuple(ServicePort(p.get("name", ""), int(p.get("port", 0)), p.get("targetPort", p.get("port", 0)),
                              p.get("protocol", "TCP")) for p in spec.get("ports") or [])
    return ServiceFacts(meta.get("namespace", ""), meta.get("name", ""), spec.get("type", "ClusterIP"),
                        spec.get("clusterIP") or "", dict(spec.get("selector") or {}), ports,
                        spec.get("externalName", ""), bool(spec.get("publishNotReadyAddresses")))


def _container(spec: Obj, status: Obj | None) -> ContainerFacts:
    state = (status or {}).get("state") or {"waiting": {"reason": "ContainerCreating"}}
    kind = next(iter(state), "waiting")
    return ContainerFacts(spec.get("name", ""), bool((status or {}).get("ready")), kind,
                          (state.get(kind) or {}).get("reason", ""), int((status or {}).get("restartCount", 0)),
                          bool(spec.get("readinessProbe")))


def parse_pod(pod: Obj, events: Iterable[Obj] = ()) -> PodFacts:
    """A pod and the Unhealthy events about it (events about other objects are ignored)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    containers = tuple(_container(c, statuses.get(c.get("name"))) for c in spec.get("containers") or [])
    ports = tuple(ContainerPort(c.get("name", ""), int(p.get("containerPort", 0)), p.get("name", ""),
                                p.get("protocol", "TCP"))
                  for c in spec.get("containers") or [] for p in c.get("ports") or [])
    ready: Obj = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    reason = ": ".join(x for x in (ready.get("reason", ""), ready.get("message", "")) if x)
    mine = [e for e in events if e.get("reason") == "Unhealthy" and _about(e, meta)]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return PodFacts(meta.get("name", ""), status.get("podIP", ""), dict(meta.get("labels") or {}),
                    status.get("phase", "Pending"), ready.get("status") == "True", reason, containers, ports,
                    tuple(e.get("message", "") for e in mine), bool(meta.get("deletionTimestamp")))


def _about(event: Obj, meta: Obj) -> bool:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    if involved.get("kind", "Pod") != "Pod" or involved.get("name") != meta.get("name"):
        return False
    return not (involved.get("uid") and meta.get("uid")) or involved.get("uid") == meta.get("uid")


def parse_endpoints(endpoints: Obj | None, slices: Iterable[Obj] = ()) -> EndpointsFacts:
    """Endpoints and EndpointSlices together: an address counts when either lists it."""
    ready: set[tuple[str, int]] = set()
    not_ready: set[tuple[str, int]] = set()
    slices = list(slices)
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [int(p.get("port", 0)) for p in subset.get("ports") or []] or [0]
        ready |= {(a.get("ip", ""), p) for a in subset.get("addresses") or [] for p in ports}
        not_ready |= {(a.get("ip", ""), p) for a in subset.get("notReadyAddresses") or [] for p in ports}
    for es in slices:
        ports = [int(p.get("port") or 0) for p in es.get("ports") or []] or [0]
        for ep in es.get("endpoints") or []:
            target: set[tuple[str, int]] = ready if (ep.get("conditions") or {}).get("ready", True) is not False else not_ready
            target |= {(ip, p) for ip in ep.get("addresses") or [] for p in ports}
    return EndpointsFacts(tuple(sorted(ready)), tuple(sorted(not_ready - ready)),
                          endpoints is not None or bool(slices))


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def resolve_target_port(port: ServicePort, pod: PodFacts) -> int | None:
    """The pod port a service port sends to: a number as is, a name looked up in the pod's containers."""
    if isinstance(port.target_port, int) or str(port.target_port).isdigit():
        return int(port.target_port)
    return next((p.port for p in pod.ports if p.name == port.target_port and p.protocol == port.protocol), None)


# ---- the checks (pure) ------------------------------------------------------------------------------------------

def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _svc(facts: Facts) -> str:
    return f"{facts.namespace}/{facts.name}"


def check_service_exists(facts: Facts) -> Check:
    name = "service exists"
    svc = facts.service
    if svc is None:
        return Check(name, Status.FAIL, f"service {_svc(facts)} does not exist",
                     f"create it, or check the name and namespace (`kubectl get svc -n {facts.namespace}`)")
    if svc.type == "ExternalName":
        return Check(name, Status.OK, f"{svc.type} service {_svc(facts)} -> {svc.external_name}")
    address = "headless (clusterIP: None)" if svc.headless else f"ClusterIP {svc.cluster_ip}"
    ports = ", ".join(f"{p.port}->{p.target_port}/{p.protocol}" for p in svc.ports) or "no ports"
    return Check(name, Status.OK, f"{svc.type} service {_svc(facts)}, {address}, ports {ports}")


def _skip(name: str, facts: Facts, *, needs_selector: bool = False, needs_pods: bool = False) -> Check | None:
    svc = facts.service
    if svc is None:
        return Check(name, Status.SKIP, "no service")
    if svc.type == "ExternalName":
        return Check(name, Status.SKIP, "an ExternalName service has no pods, endpoints or ClusterIP")
    if needs_selector and not svc.selector:
        return Check(name, Status.SKIP, "the service has no selector: its endpoints are managed by hand")
    if needs_pods and not facts.pods:
        return Check(name, Status.SKIP, "no pods matched")
    return None


def _label_hint(facts: Facts) -> str:
    assert facts.service is not None
    if not facts.namespace_pods:
        return f"there are no pods in namespace {facts.namespace}"
    keys = set(facts.service.selector)
    near = sorted({f"{k}={v}" for p in facts.namespace_pods for k, v in p.labels.items() if k in keys})
    if near:
        return "pods here are labelled " + ", ".join(near)
    seen = sorted({_labels(p.labels) or "<no labels>" for p in facts.namespace_pods})
    return "pods here are labelled " + "; ".join(seen[:3]) + (" …" if len(seen) > 3 else "")


def check_selector(facts: Facts) -> Check:
    name = "selector matches pods"
    if skipped := _skip(name, facts, needs_selector=True):
        return skipped
    assert facts.service is not None
    selector = _labels(facts.service.selector)
    if not facts.pods:
        return Check(name, Status.FAIL, f"the selector {selector} matches no pod ({_label_hint(facts)})",
                     "fix the Service's selector (or the pods' labels)")
    return Check(name, Status.OK, f"the selector {selector} matches {len(facts.pods)} pod(s): "
                 + ", ".join(p.name for p in facts.pods))


def _why_unready(pod: PodFacts) -> str:
    waiting = [c for c in pod.containers if c.state != "running"]
    if pod.probe_messages:
        return pod.probe_messages[-1]
    if waiting:
        return "; ".join(f"container {c.name} is {c.state}" + (f" ({c.reason})" if c.reason else "")
                         for c in waiting)
    return pod.ready_reason or f"phase {pod.phase}"


def check_pods_ready(facts: Facts) -> Check:
    name = "pods ready"
    if skipped := _skip(name, facts, needs_pods=True):
        return skipped
    unready = [p for p in facts.pods if not p.ready]
    if not unready:
        return Check(name, Status.OK, f"{len(facts.pods)} of {len(facts.pods)} pod(s) Ready")
    worst = unready[0]
    detail = (f"{len(unready)} of {len(facts.pods)} pod(s) not Ready — pod {worst.name}: {_why_unready(worst)}")
    probe = any(c.has_readiness_probe for c in worst.containers)
    fix = ("make the readiness probe pass (or fix the probe): an unready pod is not part of the service"
           if probe or worst.probe_messages else "get the pod's containers running (`kubectl describe pod`)")
    if len(unready) < len(facts.pods):
        return Check(name, Status.WARN, detail, fix)
    return Check(name, Status.FAIL, detail, fix)


def _missing_named_port(facts: Facts) -> tuple[ServicePort, PodFacts] | None:
    if facts.service is None:
        return None
    for port in facts.service.ports:
        for pod in facts.pods:
            if resolve_target_port(port, pod) is None:
                return port, pod
    return None


def check_endpoints(facts: Facts) -> Check:
    name = "endpoints exist"
    if skipped := _skip(name, facts):
        return skipped
    ep = facts.endpoints
    listing = ", ".join(f"{ip}:{port}" for ip, port in ep.ready[:6]) + (" …" if len(ep.ready) > 6 else "")
    if ep.ready:
        return Check(name, Status.OK, f"{len(ep.ready)} ready endpoint(s): {listing}")
    fix = f"see `kubectl get endpoints {facts.name} -n {facts.namespace}`"
    if (missing := _missing_named_port(facts)) and any(p.ready for p in facts.pods):
        port, pod = missing
        return Check(name, Status.FAIL, f"no endpoints: targetPort {port.target_port!r} is not a port name of "
                     f"pod {pod.name}", "name the containers' port so, or set targetPort to a declared port")
    if ep.not_ready:
        return Check(name, Status.FAIL, f"no ready endpoints ({len(ep.not_ready)} not ready)",
                     "make the pods Ready: only ready pods receive traffic")
    if facts.service is not None and not facts.service.selector:
        return Check(name, Status.FAIL, "no endpoints, and the service has no selector to make them",
                     "add a selector, or create the Endpoints/EndpointSlice for it")
    return Check(name, Status.FAIL, "no endpoints", fix)


def _declared(pod: PodFacts) -> str:
    return ", ".join(f"{p.name}={p.port}" if p.name else str(p.port) for p in pod.ports) or "no ports"


def check_ports(facts: Facts) -> Check:
    name = "port vs targetPort"
    if skipped := _skip(name, facts, needs_pods=True):
        return skipped
    assert facts.service is not None
    if missing := _missing_named_port(facts):
        port, pod = missing
        return Check(name, Status.FAIL, f"targetPort {port.target_port!r} of service port {port.port} is not a "
                     f"port name in pod {pod.name} (it declares {_declared(pod)})",
                     "set targetPort to a containerPort's name or number")
    warnings = []
    for port in facts.service.ports:
        for pod in facts.pods:
            target = resolve_target_port(port, pod)
            if any(p.port == target for p in pod.ports):
                continue
            wrong = _wrong_target(facts, pod, target)
            if wrong:
                return Check(name, Status.FAIL, f"targetPort {target} is wrong: pod {pod.name} refuses it but "
                             f"accepts its declared port {wrong}", f"set the Service's targetPort to {wrong}")
            warnings.append(f"targetPort {target} is not a declared containerPort of pod {pod.name} "
                            f"(it declares {_declared(pod)})")
    if warnings:
        return Check(name, Status.WARN, warnings[0], "declare the port in the pod, or check the targetPort")
    pairs = ", ".join(f"{p.port}->{p.target_port}" for p in facts.service.ports)
    return Check(name, Status.OK, f"service ports {pairs} reach declared container ports")


def _wrong_target(facts: Facts, pod: PodFacts, target: int | None) -> int | None:
    for probe in facts.pod_probes:
        if probe.pod == pod.name and probe.port == target and probe.accepts is False and probe.open_declared:
            return probe.open_declared[0]
    return None


def check_listening(facts: Facts) -> Check:
    name = "app listens on pod IP"
    if skipped := _skip(name, facts, needs_pods=True):
        return skipped
    tried = [p for p in facts.pod_probes if p.accepts is not None]
    if not tried:
        return Check(name, Status.SKIP, "no pod IP and port could be tried")
    for probe in tried:
        if probe.accepts:
            continue
        where = f"pod {probe.pod} ({probe.ip}:{probe.port})"
        if probe.localhost_only:
            return Check(name, Status.FAIL, f"the application in {where} listens on 127.0.0.1:{probe.port} only, "
                         f"not on its pod IP", "make it bind 0.0.0.0 (or $POD_IP), not localhost")
        if probe.open_declared:
            return Check(name, Status.FAIL, f"{where} refuses the connection but accepts port "
                         f"{probe.open_declared[0]}", f"set the Service's targetPort to {probe.open_declared[0]}")
        note = f" ({probe.localhost_note})" if probe.localhost_note else ""
        return Check(name, Status.FAIL, f"nothing accepts connections on {where}: {probe.error}{note}",
                     "check the port the application listens on and that it binds 0.0.0.0, not localhost")
    listing = ", ".join(f"{p.ip}:{p.port}" for p in tried[:4]) + (" …" if len(tried) > 4 else "")
    return Check(name, Status.OK, f"{len(tried)} pod address(es) accept TCP: {listing}")


def check_cluster_ip(facts: Facts) -> Check:
    name = "ClusterIP forwards"
    if skipped := _skip(name, facts):
        return skipped
    assert facts.service is not None
    if facts.service.headless:
        return Check(name, Status.SKIP, "headless service: clients connect to the pod IPs that DNS returns")
    tried = [p for p in facts.cluster_ip_probes if p.accepts is not None]
    if not tried:
        return Check(name, Status.SKIP, "no TCP port to try (a ClusterIP is virtual: it cannot be pinged)")
    for probe in tried:
        if not probe.accepts and not facts.endpoints.ready:
            return Check(name, Status.FAIL, f"{probe.address}:{probe.port} does not accept TCP: {probe.error} "
                         "(the service has no ready endpoint to forward to)", "fix the endpoints first (above)")
        if not probe.accepts:
            return Check(name, Status.FAIL, f"{probe.address}:{probe.port} does not accept TCP: {probe.error}",
                         "check that the proxy (kube-proxy) runs on this node and sees the service; try from "
                         "inside the cluster, a ClusterIP is not reachable from outside")
    listing = ", ".join(f"{p.address}:{p.port}" for p in tried)
    return Check(name, Status.OK, f"{listing} accepts TCP (tested with a connection: a ClusterIP is not pingable)")


def expected_addresses(facts: Facts) -> tuple[str, ...]:
    svc = facts.service
    if svc is None:
        return ()
    if svc.type == "ExternalName":
        return (svc.external_name.rstrip(".") + ".",)
    if svc.headless:
        return tuple(sorted({ip for ip, _ in facts.endpoints.ready}))
    return (svc.cluster_ip,)


def check_dns(facts: Facts) -> Check:
    name = "DNS name resolves"
    if facts.service is None:
        return Check(name, Status.SKIP, "no service")
    dns = facts.dns
    if dns is None:
        return Check(name, Status.SKIP, "no cluster DNS server to ask (give --dns)")
    want = expected_addresses(facts)
    if dns.error:
        return Check(name, Status.FAIL, f"{dns.name} @{dns.server}: {dns.error}",
                     "check the cluster DNS (is it running, is --dns its address?)")
    if dns.rcode != "NOERROR" or not dns.answers:
        if not want:
            return Check(name, Status.OK, f"{dns.name}: {dns.rcode}, as expected with no ready endpoints")
        return Check(name, Status.FAIL, f"{dns.name} @{dns.server}: {dns.rcode}, no answer (expected "
                     f"{', '.join(want)})", "check that the DNS server watches this API server")
    if set(dns.answers) != set(want):
        return Check(name, Status.FAIL, f"{dns.name} -> {', '.join(dns.answers)}, expected {', '.join(want)}",
                     "the DNS answer is stale: check the DNS server's connection to the API")
    return Check(name, Status.OK, f"{dns.name} -> {', '.join(dns.answers)}")


CHECKS: tuple[Callable[[Facts], Check], ...] = (
    check_service_exists, check_selector, check_pods_ready, check_endpoints, check_ports, check_listening,
    check_cluster_ip, check_dns,
)


def checks(facts: Facts) -> list[Check]:
    return [check(facts) for check in CHECKS]


def verdict(results: list[Check], facts: Facts | None = None) -> str:
    """One line: the first failure and its fix, else what works (and the first warning)."""
    for check in results:
        if check.status is Status.FAIL:
            return f"FAULT: {check.detail} — {check.fix}" if check.fix else f"FAULT: {check.detail}"
    where = f"service {_svc(facts)}" if facts is not None else "the service"
    ready = sum(p.ready for p in facts.pods) if facts is not None else 0
    line = f"OK: {where} forwards to {ready} ready pod{'' if ready == 1 else 's'}" \
        if facts is not None and facts.pods else f"OK: {where} passes every check"
    warning = next((c for c in results if c.status is Status.WARN), None)
    return f"{line} (warning: {warning.detail})" if warning else line
