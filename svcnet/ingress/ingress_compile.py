"""networking.k8s.io/v1 Ingress → host routes, certificates, statuses and problems — pure.

Rules (kubernetes.io/docs/concepts/services-networking/ingress/):
- an Ingress is ours when `spec.ingressClassName` names an IngressClass whose `spec.controller` is ours, else
  when the legacy annotation `kubernetes.io/ingress.class` names one; without either, when
  `watch_ingress_without_class` is set or one of our IngressClasses is the default
  (`ingressclass.kubernetes.io/is-default-class: "true"`);
- `rules[].host` is exact or `*.suffix` (the wildcard covers exactly one label); a rule without host goes to the
  default host; a rule without `http` still claims its host (its requests fall to the defaultBackend);
- pathType Exact, Prefix (element-wise) and ImplementationSpecific (treated as Prefix; an empty path is "/");
- every route is placed on both Ingress ports (HTTP and HTTPS carry the same routes);
- Ingresses merge oldest first: the same (host, path type, path) in a newer Ingress is a conflict and is
  dropped with a problem; only the oldest `defaultBackend` is used; it becomes the last route of every host;
- `spec.tls[]`: the Secret (same namespace) must be `kubernetes.io/tls` with `tls.crt`/`tls.key`; its certificate
  serves `hosts` on the HTTPS port; certificates keep Ingress age order;
- a backend that does not resolve still routes (to no endpoints: 503) and is reported;
- each of our Ingresses gets `status.loadBalancer.ingress: [{ip | hostname: address}]`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from svcnet.ingress.backends import ServiceIndex
from svcnet.ingress.common import (
    Config,
    HostKind,
    HostRoute,
    Obj,
    Objects,
    Problem,
    StatusKey,
    age_key,
    dict_of,
    list_of,
    meta,
    name_of,
    namespace_of,
    spec,
)
from svcnet.ingress.model import Backend, Certificate, PathMatch, PathType, Route

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
_PATH_TYPES = {"Exact": PathType.EXACT, "Prefix": PathType.PREFIX, "ImplementationSpecific": PathType.PREFIX}


@dataclass(slots=True)
class IngressResult:
    routes: list[HostRoute] = field(default_factory=list)
    fallback: Route | None = None  # the oldest defaultBackend
    certificates: list[Certificate] = field(default_factory=list)
    statuses: dict[StatusKey, Obj] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    seen: dict[tuple[str, PathType, str], str] = field(default_factory=dict)  # route key -> first Ingress


def compile_ingresses(objects: Objects, config: Config, services: ServiceIndex) -> IngressResult:
    result = IngressResult()
    ours = _our_ingresses(objects, config)
    for ingress in sorted(ours, key=age_key):
        _compile_ingress(ingress, config, services, result)
        result.statuses[("Ingress", namespace_of(ingress), name_of(ingress))] = ingress_status(config.address)
    return result


def ingress_status(address: str) -> Obj:
    try:
        ipaddress.ip_address(address)
        entry = {"ip": address}
    except ValueError:
        entry = {"hostname": address}
    return {"loadBalancer": {"ingress": [entry]}}


def _our_ingresses(objects: Objects, config: Config) -> list[Obj]:
    classes = [c for c in objects.get("IngressClass", ()) if spec(c).get("controller") == config.ingress_controller]
    names = {name_of(c) for c in classes}
    default = any(dict_of(meta(c).get("annotations")).get(DEFAULT_CLASS_ANNOTATION) == "true" for c in classes)
    ours = []
    for ingress in objects.get("Ingress", ()):
        class_name = spec(ingress).get("ingressClassName")
        annotation = dict_of(meta(ingress).get("annotations")).get(CLASS_ANNOTATION)
        if class_name:
            mine = class_name in names
        elif annotation:
            mine = annotation in names
        else:
            mine = config.watch_ingress_without_class or default
        if mine:
            ours.append(ingress)
    return ours


def _compile_ingress(ingress: Obj, config: Config, services: ServiceIndex, result: IngressResult) -> None:
    ns, name = namespace_of(ingress), name_of(ingress)
    source = f"ingress/{ns}/{name}"
    created = age_key(ingress)[0]
    for rule_index, rule in enumerate(list_of(spec(ingress).get("rules"))):
        rule = dict_of(rule)
        host = str(rule.get("host") or "").lower().rstrip(".")
        kind = _host_kind(host)
        if kind is None:
            result.problems.append(Problem("Ingress", ns, name, "InvalidHost",
                                           f"rule {rule_index}: host {host!r} is not a DNS name or *.suffix"))
            continue
        order = (created, f"ingress/{ns}/{name}", rule_index, -1)
        for port in (config.http_port, config.https_port):
            result.routes.append(HostRoute(port, host, kind, None, order))
        paths = list_of(dict_of(rule.get("http")).get("paths"))
        for path_index, path in enumerate(paths):
            route = _compile_path(ingress, rule_index, dict_of(path), host, services, result)
            if route is not None:
                for port in (config.http_port, config.https_port):
                    result.routes.append(HostRoute(port, host, kind, route, order[:2] + (rule_index, path_index)))
    _compile_default_backend(ingress, source, services, result)
    _compile_tls(ingress, services, result)


def _host_kind(host: str) -> HostKind | None:
    if not host:
        return HostKind.DEFAULT
    labels = host[2:].split(".") if host.startswith("*.") else host.split(".")
    if not all(label and "*" not in label for label in labels):
        return None
    return HostKind.ONE_LABEL if host.startswith("*.") else HostKind.EXACT


def _compile_path(ingress: Obj, rule_index: int, path: Obj, host: str, services: ServiceIndex,
                  result: IngressResult) -> Route | None:
    ns, name = namespace_of(ingress), name_of(ingress)
    where = f"rule {rule_index} path {path.get('path') or '/'!r}"
    path_type = _PATH_TYPES.get(str(path.get("pathType") or "ImplementationSpecific"))
    value = str(path.get("path") or "/")
    if path_type is None or not value.startswith("/"):
        result.problems.append(Problem("Ingress", ns, name, "InvalidPath",
                                       f"{where}: pathType {path.get('pathType')!r} with path {value!r} is not "
                                       "supported (Exact, Prefix or ImplementationSpecific, path starting with /)"))
        return None
    match = PathMatch(path_type, value)
    key = (host, path_type, match.prefix if path_type is PathType.PREFIX else value)
    first = result.seen.setdefault(key, f"{ns}/{name}")
    if first != f"{ns}/{name}":
        result.problems.append(Problem("Ingress", ns, name, "Conflict",
                                       f"{where} on host {host or '*'!r} is already routed by the older Ingress "
                                       f"{first}; ignored"))
        return None
    backend = _backend(ingress, dict_of(path.get("backend")), where, services, result)
    return Route(match, f"ingress/{ns}/{name}", backends=(backend,))


def _backend(ingress: Obj, backend: Obj, where: str, services: ServiceIndex, result: IngressResult) -> Backend:
    ns, name = namespace_of(ingress), name_of(ingress)
    service = dict_of(backend.get("service"))
    port_spec = dict_of(service.get("port"))
    port: int | str | None = port_spec.get("number") if port_spec.get("number") else port_spec.get("name")
    if not service.get("name") or not isinstance(port, int | str) or isinstance(port, bool):
        what = "a resource backend is not supported" if backend.get("resource") else "no service name and port"
        result.problems.append(Problem("Ingress", ns, name, "InvalidBackend", f"{where}: {what}"))
        return Backend(f"{ns}/<invalid>", ())
    resolved, problem = services.backend(ns, str(service["name"]), port)
    if problem:
        reason = "ServiceNotFound" if not services.has_service(ns, str(service["name"])) else "ServicePortNotFound"
        result.problems.append(Problem("Ingress", ns, name, reason, f"{where}: {problem}"))
    return resolved


def _compile_default_backend(ingress: Obj, source: str, services: ServiceIndex, result: IngressResult) -> None:
    default = spec(ingress).get("defaultBackend")
    if not isinstance(default, dict):
        return
    ns, name = namespace_of(ingress), name_of(ingress)
    if result.fallback is not None:
        result.problems.append(Problem("Ingress", ns, name, "Conflict",
                                       f"defaultBackend ignored: the older {result.fallback.source} has one"))
        return
    backend = _backend(ingress, default, "defaultBackend", services, result)
    result.fallback = Route(PathMatch(PathType.PREFIX, "/"), source, backends=(backend,))


def _compile_tls(ingress: Obj, services: ServiceIndex, result: IngressResult) -> None:
    ns, name = namespace_of(ingress), name_of(ingress)
    for index, tls in enumerate(list_of(spec(ingress).get("tls"))):
        tls = dict_of(tls)
        secret = str(tls.get("secretName") or "")
        if not secret:
            result.problems.append(Problem("Ingress", ns, name, "InvalidTLS", f"tls[{index}] has no secretName"))
            continue
        hosts = tuple(str(h).lower().rstrip(".") for h in list_of(tls.get("hosts")))
        certificate, problem = services.certificate(ns, secret, hosts)
        if certificate is None:
            result.problems.append(Problem("Ingress", ns, name, "InvalidTLS", f"tls[{index}]: {problem}"))
        elif certificate not in result.certificates:
            result.certificates.append(certificate)
