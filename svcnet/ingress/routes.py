"""The ingress route compiler: Ingress and Gateway API objects → one `RouteTable`, statuses, problems — pure.

`compile_routes(objects, config)` takes the objects as an informer cache holds them (`objects[kind]` is a list
of dicts for Ingress, IngressClass, Service, EndpointSlice, Secret, GatewayClass, Gateway, HTTPRoute,
ReferenceGrant, Namespace; a missing kind is an empty list) and reads the time once from `config.clock`.
It never raises on bad objects: what it cannot use becomes a `Problem` or a status condition.

One address serves everything, so the table is assembled per port from the host routes of both compilers
(`ingress_compile.py`, `gateway_compile.py`):
- ports: the Ingress HTTP and HTTPS ports when we own an Ingress, and the port of every programmed listener;
- per port and host pattern, routes are merged and sorted into ONE precedence order, for Ingress and HTTPRoute
  rules alike: Exact path, then RegularExpression (longer pattern first), then Prefix (longer first); then a
  method match before none; then more header matches; then more query matches; then the older object
  (creationTimestamp), then "kind/namespace/name", then rule index, then match index;
- the Ingress `defaultBackend` (the oldest) closes every VirtualHost on the Ingress ports, and is the default
  host when no rule without host exists;
- a Gateway API wildcard (`*.suffix`, one or more labels) also serves the one-label hosts of that suffix, so
  those merge with an Ingress wildcard of the same suffix;
- certificates: the Ingress ones (oldest Ingress first) on the HTTPS port, each listener's on its port.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from svcnet.ingress.backends import index_services
from svcnet.ingress.common import (
    Compiled,
    Config,
    HostKind,
    HostRoute,
    Obj,
    Objects,
    Problem,
    rfc3339,
)
from svcnet.ingress.gateway_compile import compile_gateways
from svcnet.ingress.ingress_compile import compile_ingresses
from svcnet.ingress.model import Certificate, PathType, PortRoutes, Route, RouteTable, VirtualHost

__all__ = ["Compiled", "Config", "ConfigError", "Problem", "build_table", "compile_routes"]

KINDS = ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret", "GatewayClass", "Gateway", "HTTPRoute",
         "ReferenceGrant", "Namespace")
_PATH_RANK = {PathType.EXACT: 0, PathType.REGEX: 1, PathType.PREFIX: 2}


class ConfigError(ValueError):
    """A configuration the compiler cannot work with; str() says what to change."""


def compile_routes(objects: Objects, config: Config) -> Compiled:
    _check_config(config)
    objects = {kind: [o for o in objects.get(kind) or () if isinstance(o, dict)] for kind in KINDS}
    now = rfc3339(config.clock())
    services = index_services(objects["Service"], objects["EndpointSlice"], objects["Secret"])
    ingress = compile_ingresses(objects, config, services)
    claimed = {config.http_port: (False, "the Ingress HTTP port"), config.https_port: (True, "the Ingress HTTPS port")}
    gateway = compile_gateways(objects, config, services, now, claimed)
    ports: dict[int, bool] = {}
    certificates: dict[int, list[Certificate]] = {}
    fallbacks: dict[int, Route] = {}
    if ingress.statuses:
        ports = {config.http_port: False, config.https_port: True}
        certificates[config.https_port] = list(ingress.certificates)
        if ingress.fallback is not None:
            fallbacks = {config.http_port: ingress.fallback, config.https_port: ingress.fallback}
    for port, tls in gateway.ports.items():
        ports.setdefault(port, tls)
        certificates.setdefault(port, []).extend(gateway.certificates.get(port, ()))
    table = build_table(ports, ingress.routes + gateway.routes, certificates, fallbacks)
    return Compiled(table, {**ingress.statuses, **gateway.statuses}, tuple(ingress.problems + gateway.problems))


def _check_config(config: Config) -> None:
    for what, port in (("http_port", config.http_port), ("https_port", config.https_port)):
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{what} must be a port number 1-65535, not {port!r}")
    if config.http_port == config.https_port:
        raise ConfigError(f"http_port and https_port must differ (both are {config.http_port})")
    if not config.address:
        raise ConfigError("address (the IP address or hostname to publish) must be set")


def build_table(ports: dict[int, bool], entries: Iterable[HostRoute],
                certificates: dict[int, list[Certificate]], fallbacks: dict[int, Route]) -> RouteTable:
    """Groups host routes by port and host pattern and sorts each group into precedence order."""
    grouped: dict[int, dict[tuple[HostKind, str], list[HostRoute]]] = {port: {} for port in ports}
    for entry in entries:
        if entry.port in grouped:
            grouped[entry.port].setdefault((entry.host_kind, entry.host), []).append(entry)
    table: dict[int, PortRoutes] = {}
    for port in sorted(ports):
        table[port] = _port_routes(port, ports[port], grouped[port], certificates.get(port, []),
                                   fallbacks.get(port))
    return RouteTable(table)


def _port_routes(port: int, tls: bool, groups: dict[tuple[HostKind, str], list[HostRoute]],
                 certificates: list[Certificate], fallback: Route | None) -> PortRoutes:
    def vhost(*items: Sequence[HostRoute]) -> VirtualHost:
        return VirtualHost(_sorted_routes([e for group in items for e in group]) + ((fallback,) if fallback else ()))

    by_kind: dict[HostKind, dict[str, list[HostRoute]]] = {kind: {} for kind in HostKind}
    for (kind, host), group in sorted(groups.items()):
        by_kind[kind][host.removeprefix("*")] = group
    one, many = by_kind[HostKind.ONE_LABEL], by_kind[HostKind.ANY_LABELS]
    default = by_kind[HostKind.DEFAULT].get("")
    has_default = default is not None or fallback is not None
    return PortRoutes(
        port=port, tls=tls,
        exact_hosts={host: vhost(group) for host, group in by_kind[HostKind.EXACT].items()},
        wildcard_hosts=tuple((suffix, vhost(one.get(suffix, ()), many.get(suffix, ())))
                             for suffix in sorted(one.keys() | many.keys(), key=_longest_first)),
        suffix_hosts=tuple((suffix, vhost(many[suffix])) for suffix in sorted(many, key=_longest_first)),
        default_host=vhost(default or ()) if has_default else None,
        certificates=tuple(dict.fromkeys(certificates)),
    )


def _longest_first(suffix: str) -> tuple[int, str]:
    return -len(suffix), suffix


def _sorted_routes(entries: list[HostRoute]) -> tuple[Route, ...]:
    unique = {entry.order: entry.route for entry in entries if entry.route is not None}
    return tuple(unique[order] for order in sorted(unique, key=lambda o: (_precedence(unique[o]), o)))


def _precedence(route: Route) -> tuple[int, int, bool, int, int]:
    path = route.path
    length = len(path.prefix) if path.type is PathType.PREFIX else len(path.value)
    return _PATH_RANK[path.type], -length, route.method is None, -len(route.headers), -len(route.query)


def status_changed(obj: Obj, status: Obj) -> bool:
    """Whether `status` differs from the object's current one (the controller writes only then)."""
    return obj.get("status") != status
