"""Conversion between the served versions of a kind and its storage version — pure.

Theory of operation: a kind served in several versions is stored in one (the hub); `convert(obj, api_version)`
takes an object in any served version to any other through the hub, as kube-apiserver's conversion functions do.
Today that is Ingress: `extensions/v1beta1` and `networking.k8s.io/v1beta1` (the form of the pre-1.19 tutorials)
against `networking.k8s.io/v1`:

    v1beta1                                  v1
    spec.backend                       <->   spec.defaultBackend
    backend.serviceName                <->   backend.service.name
    backend.servicePort: 80            <->   backend.service.port.number: 80
    backend.servicePort: "http"        <->   backend.service.port.name: "http"
    backend.resource                   <->   backend.resource
    paths[].pathType missing            ->   ImplementationSpecific (v1beta1's default)

Invariants: never mutates its input; fields it does not know are carried over unchanged (so schema checks still
see them); converting to the object's own version is a copy; v1 -> v1beta1 -> v1 is the identity on defaulted v1
objects. Malformed shapes are carried over as they are, for validation to report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcnet.api.jsontree import clone

__all__ = ["HUB", "convert", "converts"]

Obj = dict[str, Any]

INGRESS_V1 = "networking.k8s.io/v1"
_INGRESS_BETA = ("extensions/v1beta1", "networking.k8s.io/v1beta1")
DEFAULT_PATH_TYPE = "ImplementationSpecific"

# kind -> the storage (hub) apiVersion
HUB: dict[str, str] = {"Ingress": INGRESS_V1}


def converts(kind: str, from_version: str, to_version: str) -> bool:
    """Whether `convert` knows how to take `kind` from one apiVersion to the other."""
    known = {HUB.get(kind, "")} | ({*_INGRESS_BETA} if kind == "Ingress" else set())
    return from_version == to_version or {from_version, to_version} <= known


def convert(obj: Obj, api_version: str) -> Obj:
    """`obj` in `api_version`; raises ValueError for a pair of versions `converts` says no to."""
    kind, source = str(obj.get("kind", "")), str(obj.get("apiVersion", ""))
    if not converts(kind, source, api_version):
        raise ValueError(f"no conversion of {kind} from {source!r} to {api_version!r}")
    result = clone(obj)
    if source == api_version:
        return result
    hub = HUB[kind]
    if source != hub:
        _TO_HUB[kind](result)
    if api_version != hub:
        _FROM_HUB[kind](result)
    result["apiVersion"] = api_version
    return result


# ---- Ingress ---------------------------------------------------------------------------------------------------


def _each_path(spec: Obj) -> list[Obj]:
    rules = spec.get("rules")
    found: list[Obj] = []
    for rule in rules if isinstance(rules, list) else []:
        http = rule.get("http") if isinstance(rule, dict) else None
        paths = http.get("paths") if isinstance(http, dict) else None
        found += [p for p in paths if isinstance(p, dict)] if isinstance(paths, list) else []
    return found


def _rename(obj: Obj, old: str, new: str, convert_value: Callable[[Any], Any]) -> None:
    if old in obj:
        value = obj.pop(old)
        obj[new] = convert_value(value) if isinstance(value, dict) else value


def _backend_to_v1(backend: Obj) -> Obj:
    name, port = backend.pop("serviceName", None), backend.pop("servicePort", None)
    if name is not None or port is not None:
        service: Obj = {"name": name if name is not None else ""}
        if isinstance(port, str):
            service["port"] = {"name": port}
        elif port is not None:
            service["port"] = {"number": port}
        backend["service"] = service
    return backend


def _backend_from_v1(backend: Obj) -> Obj:
    service = backend.pop("service", None)
    if isinstance(service, dict):
        backend["serviceName"] = service.get("name", "")
        port = service.get("port")
        port = port if isinstance(port, dict) else {}
        backend["servicePort"] = port["name"] if port.get("name") else port.get("number", 0)
    elif service is not None:
        backend["service"] = service
    return backend


def _ingress_to_v1(ing: Obj) -> None:
    spec = ing.get("spec")
    if not isinstance(spec, dict):
        return
    _rename(spec, "backend", "defaultBackend", _backend_to_v1)
    for path in _each_path(spec):
        if not path.get("pathType"):
            path["pathType"] = DEFAULT_PATH_TYPE
        _rename(path, "backend", "backend", _backend_to_v1)


def _ingress_from_v1(ing: Obj) -> None:
    spec = ing.get("spec")
    if not isinstance(spec, dict):
        return
    _rename(spec, "defaultBackend", "backend", _backend_from_v1)
    for path in _each_path(spec):
        _rename(path, "backend", "backend", _backend_from_v1)


_TO_HUB: dict[str, Callable[[Obj], None]] = {"Ingress": _ingress_to_v1}
_FROM_HUB: dict[str, Callable[[Obj], None]] = {"Ingress": _ingress_from_v1}
