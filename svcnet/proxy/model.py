"""The proxy's view of the cluster: services and their endpoints per service port, built from Service and
EndpointSlice objects (kube-proxy's ServicePortName / ServicePort / Endpoint model).

Theory of operation: `SnapshotCache` keeps, per Service, its port infos and, per EndpointSlice, the endpoints it
lists. `update(services, slices)` takes only the objects that changed (key -> object, None when deleted), redoes
only the services they touch, and returns the next `Snapshot`: a copy of the previous one in which every
unchanged service port keeps the very same `ServicePortInfo` and endpoints tuple (so a proxier comparing two
snapshots skips them by identity). `build` is the same for a whole list of objects. No I/O, no clock.

Invariants: only services that proxy get a ServicePortInfo (a ClusterIP, not headless, not ExternalName);
endpoints come only from EndpointSlices labelled `kubernetes.io/service-name`, matched to a service port by
port name and protocol, de-duplicated by address and port (the slice whose key sorts first wins); a snapshot
from `update` equals, as data, `build` of the same objects; `usable` applies the traffic policies: ready
endpoints, else serving-and-terminating ones; `Local` policies keep only this node's endpoints.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
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


def sorted_names(names: Iterable[ServicePortName]) -> list[ServicePortName]:
    """`sorted(names)` in the dataclass's own order, without its Python-level __lt__ per comparison (~8 of
    them per name: 70 ms of a 5,000-service table build)."""
    return sorted(names, key=attrgetter("namespace", "name", "port", "protocol"))


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
    # derived once (a proxy compiles each endpoint into every sync): "ip:port" ("[ip]:port" for IPv6), and the
    # sort key of (address, port): IPv4 before IPv6, each in numeric order, anything else last (b"\xff")
    address: str = field(init=False, repr=False, compare=False)
    order: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}")
        object.__setattr__(self, "order", _address_order(self.ip) + (self.port % (1 << 32)).to_bytes(4, "big"))


def _address_order(ip: str) -> bytes:
    try:
        return b"\x06" + socket.inet_pton(socket.AF_INET6, ip) if ":" in ip else \
            b"\x04" + socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError):
        return b"\xff" + ip.encode(errors="replace")


ENDPOINT_ORDER = attrgetter("order")


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


ServiceID = tuple[str, str]  # (namespace, name)
SliceEndpoints = tuple[tuple[str, str, EndpointInfo], ...]  # (port name, protocol, endpoint)


def _namespace(obj: Obj) -> str:
    return obj["metadata"].get("namespace") or "default"


def _slice_service(slc: Obj) -> ServiceID | None:
    """The service a slice feeds (None: no service-name label, or an address type the proxy ignores)."""
    service = (slc["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service or slc.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
        return None
    return _namespace(slc), service


class SnapshotCache:
    """The current `Snapshot`, kept up to date from changed Services and EndpointSlices (see the module doc)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot({}, {})
        self._ports: dict[ServiceID, dict[ServicePortName, ServicePortInfo]] = {}
        self._service_ids: dict[str, ServiceID] = {}  # service key -> its id
        self._slices: dict[str, tuple[ServiceID, SliceEndpoints]] = {}  # slice key -> (service, endpoints)
        self._slice_keys: dict[ServiceID, set[str]] = {}  # service -> keys of the slices that feed it
        self._names: dict[ServiceID, set[ServicePortName]] = {}  # service -> its names in the snapshot

    def update(self, services: Mapping[str, Obj | None], slices: Mapping[str, Obj | None]) -> Snapshot:
        """The snapshot after these changes (key -> the object now, None for deleted); every service port
        that no change touched keeps its objects."""
        touched = {sid for key, svc in services.items() if (sid := self._set_service(key, svc)) is not None}
        for key, slc in slices.items():
            touched.update(self._set_slice(key, slc))
        if not touched:
            return self.snapshot
        infos, endpoints = dict(self.snapshot.services), dict(self.snapshot.endpoints)
        for sid in sorted(touched):
            self._refresh(sid, infos, endpoints)
        self.snapshot = Snapshot(infos, endpoints)
        return self.snapshot

    def resync(self, services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
        """The snapshot of exactly these objects (what is known and not listed is deleted)."""
        listed_services = {_key(svc): svc for svc in services}
        listed_slices = {_key(slc): slc for slc in slices}
        return self.update({**dict.fromkeys(self._service_ids), **listed_services},
                           {**dict.fromkeys(self._slices), **listed_slices})

    def _set_service(self, key: str, svc: Obj | None) -> ServiceID | None:
        sid = self._service_ids.pop(key, None)
        if svc is None:
            if sid is not None:
                self._ports.pop(sid, None)
            return sid
        new_sid = (_namespace(svc), svc["metadata"]["name"])
        if sid is not None and sid != new_sid:  # cannot happen for one key; stay consistent regardless
            self._ports.pop(sid, None)
        self._service_ids[key] = new_sid
        old = self._ports.get(new_sid, {})
        infos = {info.name: info for info in service_ports(svc)}
        self._ports[new_sid] = {name: old[name] if old.get(name) == info else info for name, info in infos.items()}
        return new_sid

    def _set_slice(self, key: str, slc: Obj | None) -> set[ServiceID]:
        touched = set()
        was = self._slices.pop(key, None)
        if was is not None:
            touched.add(was[0])
            self._slice_keys[was[0]].discard(key)
        sid = _slice_service(slc) if slc is not None else None
        if slc is not None and sid is not None:
            self._slices[key] = (sid, tuple(_slice_endpoints(slc)))
            self._slice_keys.setdefault(sid, set()).add(key)
            touched.add(sid)
        return touched

    def _endpoints_of(self, sid: ServiceID, infos: Mapping[ServicePortName, ServicePortInfo]
                      ) -> dict[ServicePortName, tuple[EndpointInfo, ...]]:
        collected: dict[ServicePortName, dict[tuple[str, int], EndpointInfo]] = {}
        for key in sorted(self._slice_keys.get(sid, ())):
            for port_name, protocol, ep in self._slices[key][1]:
                name = ServicePortName(sid[0], sid[1], port_name, protocol)
                if name in infos:
                    collected.setdefault(name, {}).setdefault((ep.ip, ep.port), ep)
        return {name: tuple(sorted(eps.values(), key=lambda e: (e.ip, e.port))) for name, eps in collected.items()}

    def _refresh(self, sid: ServiceID, infos: dict[ServicePortName, ServicePortInfo],
                 endpoints: dict[ServicePortName, tuple[EndpointInfo, ...]]) -> None:
        """Bring one service's entries in `infos` and `endpoints` up to date, reusing equal values."""
        ports = self._ports.get(sid, {})
        wanted = self._endpoints_of(sid, ports)
        for gone in self._names.pop(sid, set()) - ports.keys():
            infos.pop(gone, None)
            endpoints.pop(gone, None)
        for name, info in ports.items():
            infos[name] = info
            eps = wanted.get(name)
            if not eps:
                endpoints.pop(name, None)
            elif endpoints.get(name) != eps:
                endpoints[name] = eps
        if ports:
            self._names[sid] = set(ports)
        if not ports and not self._slice_keys.get(sid):
            self._ports.pop(sid, None)
            self._slice_keys.pop(sid, None)


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def build(services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
    """The snapshot of these objects, one per namespace/name as an informer holds them."""
    return SnapshotCache().resync(services, slices)


def usable(info: ServicePortInfo, endpoints: Sequence[EndpointInfo], node_name: str,
           external: bool) -> tuple[EndpointInfo, ...]:
    """The endpoints that may take new connections for this traffic (cluster traffic, or external traffic
    through a NodePort / external / LB address): kube-proxy's CategorizeEndpoints."""
    if (info.external_local if external else info.internal_local):
        endpoints = [e for e in endpoints if e.node_name == node_name]
    return ready_or_terminating(endpoints)


def ready_or_terminating(endpoints: Sequence[EndpointInfo]) -> tuple[EndpointInfo, ...]:
    """The ready endpoints, else (none ready) the serving and terminating ones."""
    ready = tuple(filter(_READY, endpoints))
    return ready if ready else tuple(e for e in endpoints if e.serving and e.terminating)


_READY = attrgetter("ready")
