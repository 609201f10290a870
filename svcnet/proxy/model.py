"""The proxy's view of the cluster: services and their endpoints per service port, built by a pure function
from Service and EndpointSlice objects (kube-proxy's ServicePortName / ServicePort / Endpoint model).

Invariants: only services that proxy get a ServicePortInfo (a ClusterIP, not headless, not ExternalName);
endpoints come only from EndpointSlices labelled `kubernetes.io/service-name`, matched to a service port by
port name and protocol, de-duplicated by address and port; `usable` applies the traffic policies: ready
endpoints, else serving-and-terminating ones; `Local` policies keep only this node's endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str  # the port's name ("" for a single unnamed port)
    protocol: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class ServicePortInfo:
    name: ServicePortName
    cluster_ips: tuple[str, ...]
    port: int
    protocol: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int | None = None  # seconds with sessionAffinity ClientIP
    internal_local: bool = False
    external_local: bool = False
    health_check_node_port: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointInfo:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    target: str = ""  # the pod's name, when the slice says


@dataclass(frozen=True)
class Snapshot:
    services: Mapping[ServicePortName, ServicePortInfo]
    endpoints: Mapping[ServicePortName, tuple[EndpointInfo, ...]]


def service_ports(svc: Obj) -> list[ServicePortInfo]:
    spec, meta = svc.get("spec") or {}, svc["metadata"]
    cluster_ips = tuple(ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None")
    if spec.get("type") == "ExternalName" or not cluster_ips:
        return []
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    lb_ips = tuple(i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                   if i.get("ip"))
    external = spec.get("type") in ("NodePort", "LoadBalancer")
    return [ServicePortInfo(
        name=ServicePortName(meta.get("namespace", "default"), meta["name"], p.get("name", ""),
                             p.get("protocol", "TCP")),
        cluster_ips=cluster_ips, port=int(p["port"]), protocol=p.get("protocol", "TCP"),
        node_port=int(p.get("nodePort") or 0) if external else 0,
        external_ips=tuple(spec.get("externalIPs") or ()),
        load_balancer_ips=lb_ips if spec.get("type") == "LoadBalancer" else (),
        affinity_timeout=affinity, internal_local=spec.get("internalTrafficPolicy") == "Local",
        external_local=spec.get("externalTrafficPolicy") == "Local",
        health_check_node_port=int(spec.get("healthCheckNodePort") or 0),
        annotations=dict(meta.get("annotations") or {}))
        for p in spec.get("ports") or []]


def _slice_endpoints(slc: Obj) -> list[tuple[str, str, EndpointInfo]]:
    """(port name, protocol, endpoint) for every address and port of one slice."""
    found = []
    for port in slc.get("ports") or []:
        if port.get("port") is None:
            continue
        for ep in slc.get("endpoints") or []:
            conditions = ep.get("conditions") or {}
            ready = conditions.get("ready") is not False
            serving = conditions.get("serving", ready) is not False
            target = (ep.get("targetRef") or {}).get("name", "")
            for address in ep.get("addresses") or []:
                found.append((port.get("name") or "", port.get("protocol", "TCP"), EndpointInfo(
                    address, int(port["port"]), ep.get("nodeName", ""), ready, serving,
                    bool(conditions.get("terminating")), target)))
    return found


def build(services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
    infos = {info.name: info for svc in services for info in service_ports(svc)}
    collected: dict[ServicePortName, dict[tuple[str, int], EndpointInfo]] = {}
    for slc in slices:
        meta = slc["metadata"]
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service or slc.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        for port_name, protocol, ep in _slice_endpoints(slc):
            key = ServicePortName(meta.get("namespace", "default"), service, port_name, protocol)
            if key in infos:
                collected.setdefault(key, {}).setdefault((ep.ip, ep.port), ep)
    endpoints = {key: tuple(sorted(eps.values(), key=lambda e: (e.ip, e.port))) for key, eps in collected.items()}
    return Snapshot(infos, endpoints)


def usable(info: ServicePortInfo, endpoints: Iterable[EndpointInfo], node_name: str,
           external: bool) -> tuple[EndpointInfo, ...]:
    """The endpoints that may take new connections for this traffic (cluster traffic, or external traffic
    through a NodePort / external / LB address): kube-proxy's CategorizeEndpoints."""
    candidates = list(endpoints)
    if (info.external_local if external else info.internal_local):
        candidates = [e for e in candidates if e.node_name == node_name]
    ready = tuple(e for e in candidates if e.ready)
    if ready:
        return ready
    return tuple(e for e in candidates if e.serving and e.terminating)
