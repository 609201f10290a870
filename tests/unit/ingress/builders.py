"""Plain-dict Kubernetes objects for the ingress compiler tests, as an informer cache holds them."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from svcnet.ingress import match
from svcnet.ingress.common import Config
from svcnet.ingress.model import Decision, RouteTable

Obj = dict[str, Any]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONFIG = Config(address="127.0.0.1", clock=lambda: NOW)
INGRESS_CLASS = "svcnet"
GATEWAY_CLASS = "svcnet"


def when(n: int) -> str:
    """A creationTimestamp: larger n, younger object."""
    return f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"


def _meta(name: str, ns: str | None, created: int = 0, **extra: Any) -> Obj:
    meta: Obj = {"name": name, "creationTimestamp": when(created), "generation": 1, **extra}
    if ns is not None:
        meta["namespace"] = ns
    return meta


def service(name: str, ns: str = "default", ports: Iterable[tuple[str, int]] = (("http", 80),),
            type_: str = "ClusterIP") -> Obj:
    return {"kind": "Service", "metadata": _meta(name, ns),
            "spec": {"type": type_, "clusterIP": "10.96.0.10",
                     "ports": [{"name": n, "port": p, "protocol": "TCP"} if n else {"port": p, "protocol": "TCP"}
                               for n, p in ports]}}


def endpoint_slice(svc: str, ips: Iterable[str], ns: str = "default", ports: Iterable[tuple[str, int]] = (("http", 8080),),
                   not_ready: Iterable[str] = (), suffix: str = "abc") -> Obj:
    endpoints = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]
    endpoints += [{"addresses": [ip], "conditions": {"ready": False}} for ip in not_ready]
    return {"kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": _meta(f"{svc}-{suffix}", ns, labels={"kubernetes.io/service-name": svc}),
            "ports": [{"name": n, "port": p, "protocol": "TCP"} if n else {"port": p, "protocol": "TCP"}
                      for n, p in ports],
            "endpoints": endpoints}


def backend_objects(*names: str, ns: str = "default") -> list[Obj]:
    """For each name a Service (port 80 "http") and a slice with one endpoint 10.0.<i>.1:8080."""
    objs: list[Obj] = []
    for i, name in enumerate(names, start=1):
        objs += [service(name, ns), endpoint_slice(name, [f"10.0.{i}.1"], ns)]
    return objs


def tls_secret(name: str, ns: str = "default", type_: str = "kubernetes.io/tls", crt: bytes = b"CERT",
               key: bytes = b"KEY") -> Obj:
    data = {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()}
    return {"kind": "Secret", "metadata": _meta(name, ns), "type": type_, "data": data}


def ingress_class(name: str = INGRESS_CLASS, controller: str = "svcnet.io/ingress-controller",
                  default: bool = False) -> Obj:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"kind": "IngressClass", "metadata": _meta(name, None, annotations=annotations),
            "spec": {"controller": controller}}


def path(p: str | None, svc: str = "web", port: int | str = 80, type_: str | None = "Prefix") -> Obj:
    port_spec = {"name": port} if isinstance(port, str) else {"number": port}
    entry: Obj = {"backend": {"service": {"name": svc, "port": port_spec}}}
    if p is not None:
        entry["path"] = p
    if type_ is not None:
        entry["pathType"] = type_
    return entry


def rule(host: str | None, *paths: Obj) -> Obj:
    entry: Obj = {"http": {"paths": list(paths)}}
    if host is not None:
        entry["host"] = host
    return entry


def ingress(name: str, *rules: Obj, ns: str = "default", created: int = 0, class_name: str | None = INGRESS_CLASS,
            default_backend: tuple[str, int | str] | None = None, tls: list[Obj] | None = None,
            annotations: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"rules": list(rules)}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default_backend is not None:
        svc, port = default_backend
        spec["defaultBackend"] = {"service": {"name": svc, "port": {"name": port} if isinstance(port, str)
                                              else {"number": port}}}
    if tls is not None:
        spec["tls"] = tls
    return {"kind": "Ingress", "metadata": _meta(name, ns, created, annotations=annotations or {}), "spec": spec,
            "status": {"loadBalancer": {}}}


def gateway_class(name: str = GATEWAY_CLASS, controller: str = "svcnet.io/gateway-controller") -> Obj:
    return {"kind": "GatewayClass", "metadata": _meta(name, None), "spec": {"controllerName": controller}}


def listener(name: str, port: int = 80, protocol: str = "HTTP", hostname: str | None = None,
             from_: str = "Same", selector: Obj | None = None, certs: list[Obj] | None = None,
             kinds: list[Obj] | None = None, mode: str = "Terminate") -> Obj:
    entry: Obj = {"name": name, "port": port, "protocol": protocol,
                  "allowedRoutes": {"namespaces": {"from": from_}}}
    if hostname is not None:
        entry["hostname"] = hostname
    if selector is not None:
        entry["allowedRoutes"]["namespaces"]["selector"] = selector
    if kinds is not None:
        entry["allowedRoutes"]["kinds"] = kinds
    if protocol in ("HTTPS", "TLS"):
        entry["tls"] = {"mode": mode, "certificateRefs": certs if certs is not None
                        else [{"group": "", "kind": "Secret", "name": "gw-cert"}]}
    return entry


def gateway(name: str, *listeners: Obj, ns: str = "default", created: int = 0, cls: str = GATEWAY_CLASS) -> Obj:
    return {"kind": "Gateway", "metadata": _meta(name, ns, created),
            "spec": {"gatewayClassName": cls, "listeners": list(listeners)}}


def parent(name: str = "gw", ns: str | None = None, section: str | None = None, port: int | None = None) -> Obj:
    ref: Obj = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name}
    if ns is not None:
        ref["namespace"] = ns
    if section is not None:
        ref["sectionName"] = section
    if port is not None:
        ref["port"] = port
    return ref


def backend_ref(name: str, port: int = 80, weight: int | None = None, ns: str | None = None,
                kind: str | None = None) -> Obj:
    ref: Obj = {"group": "", "kind": kind or "Service", "name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    if ns is not None:
        ref["namespace"] = ns
    return ref


def http_rule(*backends: Obj, path: tuple[str, str] | None = None, headers: list[Obj] | None = None,
              query: list[Obj] | None = None, method: str | None = None, filters: list[Obj] | None = None,
              matches: list[Obj] | None = None) -> Obj:
    if matches is None:
        m: Obj = {}
        if path is not None:
            m["path"] = {"type": path[0], "value": path[1]}
        if headers:
            m["headers"] = headers
        if query:
            m["queryParams"] = query
        if method:
            m["method"] = method
        matches = [m]
    out: Obj = {"matches": matches, "backendRefs": list(backends)}
    if filters:
        out["filters"] = filters
    return out


def http_route(name: str, *rules: Obj, ns: str = "default", parents: list[Obj] | None = None,
               hostnames: list[str] | None = None, created: int = 0) -> Obj:
    spec: Obj = {"parentRefs": parents if parents is not None else [parent()], "rules": list(rules)}
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {"kind": "HTTPRoute", "metadata": _meta(name, ns, created), "spec": spec}


def reference_grant(ns: str, from_kind: str, from_ns: str, to_kind: str, to_name: str | None = None) -> Obj:
    to: Obj = {"group": "", "kind": to_kind}
    if to_name is not None:
        to["name"] = to_name
    return {"kind": "ReferenceGrant", "metadata": _meta(f"allow-{from_ns}", ns),
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": from_kind, "namespace": from_ns}],
                     "to": [to]}}


def namespace(name: str, **labels: str) -> Obj:
    return {"kind": "Namespace", "metadata": _meta(name, None, labels={"kubernetes.io/metadata.name": name,
                                                                         **labels})}


def objects(*objs: Obj) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for obj in objs:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def get(table: RouteTable, url: str, method: str = "GET", headers: dict[str, str] | None = None,
        port: int = 80, seed: int = 0) -> Decision:
    """Look up `host/path?query` (the URL without scheme)."""
    host, _, rest = url.partition("/")
    path, _, query = ("/" + rest).partition("?")
    return match.lookup(table, port, host, path, method, headers or {}, query, random.Random(seed).random)


def routed(table: RouteTable, url: str, **kwargs: Any) -> str:
    """Which backend (its name), redirect (`=> location`) or status a request gets."""
    decision = get(table, url, **kwargs)
    if decision.location is not None:
        return f"=> {decision.location}"
    if decision.status:
        return str(decision.status)
    assert decision.backend is not None
    return decision.backend.name
