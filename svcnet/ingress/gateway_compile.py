"""Gateway API v1 (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) → host routes, certificates, statuses — pure.

Rules (gateway-api.sigs.k8s.io, v1):
- a GatewayClass is ours when `spec.controllerName` is ours: `Accepted=True`; a Gateway is ours when its class is;
- listeners: HTTP and HTTPS (TLS mode Terminate, `certificateRefs` to `kubernetes.io/tls` Secrets, in another
  namespace only with a ReferenceGrant); any other protocol is `Accepted=False UnsupportedProtocol`;
- svcnet serves every Gateway and the Ingress ports on ONE address, so listeners on one port share it: the same
  protocol merges (by hostname), a different protocol conflicts (`Conflicted=True ProtocolConflict`) and the
  older claim wins — the Ingress ports (HTTP and HTTPS) are claimed first, then Gateways oldest first, listeners
  in list order; within one Gateway a second listener with the same port, protocol and hostname is
  `Conflicted=True HostnameConflict`. Only listeners that are accepted, unconflicted and resolved are programmed;
- an HTTPRoute attaches to each parentRef (Gateway of ours; sectionName and port narrow the listeners) where a
  listener allows it (`allowedRoutes.namespaces` Same / All / Selector over Namespace labels; `kinds`) and the
  hostnames intersect (listener `*.example.com` covers one or more labels; the more specific name is kept);
  otherwise the parent's `Accepted=False` says why: NoMatchingParent, NotAllowedByListeners,
  NoMatchingListenerHostname; an unsupported filter or an invalid regex is `Accepted=False UnsupportedValue`;
- backendRefs: a ref that does not resolve (InvalidKind, RefNotPermitted, BackendNotFound) sets
  `ResolvedRefs=False` and keeps its weight, answered 500; weight 0 is never chosen; a rule without backends 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from svcnet.api.selectors import LabelSelector, SelectorError, selector_from_label_selector
from svcnet.ingress.backends import ServiceIndex
from svcnet.ingress.common import (
    GATEWAY_GROUP,
    Conditions,
    Config,
    HostKind,
    HostRoute,
    Obj,
    Objects,
    Problem,
    StatusKey,
    age_key,
    conditions_for,
    dict_of,
    list_of,
    meta,
    name_of,
    namespace_of,
    ref_permitted,
    spec,
)
from svcnet.ingress.model import (
    Backend,
    Certificate,
    HeaderModifier,
    MatchType,
    PathMatch,
    PathType,
    Redirect,
    Route,
    ValueMatch,
)

HTTP_PROTOCOLS = {"HTTP": False, "HTTPS": True}  # protocol -> TLS
ROUTE_KIND = {"group": GATEWAY_GROUP, "kind": "HTTPRoute"}
_PATH_TYPES = {"Exact": PathType.EXACT, "PathPrefix": PathType.PREFIX, "RegularExpression": PathType.REGEX}
_MATCH_TYPES = {"Exact": MatchType.EXACT, "RegularExpression": MatchType.REGEX}
Issue = tuple[str, str]  # (reason, message)


@dataclass(slots=True)
class Listener:
    gateway: Obj
    index: int
    name: str
    port: int
    tls: bool
    hostname: str  # "" when none
    kinds: list[Obj]
    unsupported: str = ""  # why Accepted=False
    refs: Issue | None = None  # why ResolvedRefs=False
    conflict: Issue | None = None  # why Conflicted=True
    namespaces_from: str = "Same"
    selector: LabelSelector | None = None
    certificates: list[Certificate] = field(default_factory=list)
    attached: int = 0

    @property
    def programmed(self) -> bool:
        return not self.unsupported and self.refs is None and self.conflict is None

    @property
    def owner(self) -> str:
        return f"Gateway {namespace_of(self.gateway)}/{name_of(self.gateway)}"


@dataclass(slots=True)
class GatewayResult:
    routes: list[HostRoute] = field(default_factory=list)
    certificates: dict[int, list[Certificate]] = field(default_factory=dict)
    ports: dict[int, bool] = field(default_factory=dict)  # programmed listener ports -> TLS
    statuses: dict[StatusKey, Obj] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Context:
    config: Config
    services: ServiceIndex
    grants: tuple[Obj, ...]
    namespace_labels: dict[str, dict[str, str]]
    now: str


def compile_gateways(objects: Objects, config: Config, services: ServiceIndex, now: str,
                     claimed: dict[int, tuple[bool, str]]) -> GatewayResult:
    """`claimed` maps the ports already in use (the Ingress ports) to (TLS, who uses them)."""
    ctx = _Context(config, services, tuple(objects.get("ReferenceGrant", ())),
                   {name_of(n): {str(k): str(v) for k, v in dict_of(meta(n).get("labels")).items()}
                    for n in objects.get("Namespace", ())}, now)
    result = GatewayResult()
    classes = _accept_classes(objects, ctx, result)
    gateways = sorted((g for g in objects.get("Gateway", ()) if spec(g).get("gatewayClassName") in classes),
                      key=age_key)
    listeners = {(namespace_of(g), name_of(g)): _listeners(g, ctx) for g in gateways}
    _resolve_port_claims([lst for g in gateways for lst in listeners[(namespace_of(g), name_of(g))]], dict(claimed))
    for route in sorted(objects.get("HTTPRoute", ()), key=age_key):
        _compile_http_route(route, listeners, ctx, result)
    for gateway in gateways:
        _finish_gateway(gateway, listeners[(namespace_of(gateway), name_of(gateway))], ctx, result)
    return result


def _accept_classes(objects: Objects, ctx: _Context, result: GatewayResult) -> set[str]:
    names = set()
    for gateway_class in objects.get("GatewayClass", ()):
        if spec(gateway_class).get("controllerName") != ctx.config.gateway_controller:
            continue
        names.add(name_of(gateway_class))
        conds = conditions_for(gateway_class, ctx.now)
        result.statuses[("GatewayClass", "", name_of(gateway_class))] = {
            "conditions": [conds.make("Accepted", True, "Accepted", f"handled by {ctx.config.gateway_controller}")]}
    return names


# ---- listeners ----------------------------------------------------------------------------------------------


def _listeners(gateway: Obj, ctx: _Context) -> list[Listener]:
    found: list[Listener] = []
    seen: dict[int, tuple[bool, set[str]]] = {}  # port -> (TLS, hostnames) within this Gateway
    for index, raw in enumerate(list_of(spec(gateway).get("listeners"))):
        listener = _listener(gateway, index, dict_of(raw), ctx)
        found.append(listener)
        if listener.unsupported:
            continue
        tls, hostnames = seen.setdefault(listener.port, (listener.tls, set()))
        if tls != listener.tls:
            listener.conflict = ("ProtocolConflict", f"an earlier listener of this Gateway uses port "
                                 f"{listener.port} for {'HTTPS' if tls else 'HTTP'}")
        elif listener.hostname in hostnames:
            listener.conflict = ("HostnameConflict", f"an earlier listener of this Gateway has port "
                                 f"{listener.port} and hostname {listener.hostname or '(none)'!r}")
        hostnames.add(listener.hostname)
    return found


def _listener(gateway: Obj, index: int, raw: Obj, ctx: _Context) -> Listener:
    protocol = str(raw.get("protocol") or "")
    port = raw.get("port")
    listener = Listener(gateway, index, str(raw.get("name") or f"#{index}"),
                        port if isinstance(port, int) else 0, HTTP_PROTOCOLS.get(protocol, False),
                        str(raw.get("hostname") or "").lower().rstrip("."), [])
    if protocol not in HTTP_PROTOCOLS:
        listener.unsupported = f"protocol {protocol!r} is not supported (HTTP, HTTPS)"
        return listener
    if not 0 < listener.port < 65536:
        listener.unsupported = f"port {port!r} is not a port number 1-65535"
        return listener
    _allowed_routes(listener, dict_of(raw.get("allowedRoutes")))
    if listener.tls:
        _listener_tls(listener, dict_of(raw.get("tls")), ctx)
    return listener


def _allowed_routes(listener: Listener, allowed: Obj) -> None:
    kinds = list_of(allowed.get("kinds"))
    listener.kinds = [dict(ROUTE_KIND)]
    if kinds:
        valid = [k for k in kinds if (dict_of(k).get("group") or GATEWAY_GROUP) == GATEWAY_GROUP
                 and dict_of(k).get("kind") == "HTTPRoute"]
        listener.kinds = [dict(ROUTE_KIND)] if valid else []
        if len(valid) != len(kinds):
            listener.refs = ("InvalidRouteKinds", "only HTTPRoute (gateway.networking.k8s.io) is supported")
    namespaces = dict_of(allowed.get("namespaces"))
    listener.namespaces_from = str(namespaces.get("from") or "Same")
    if listener.namespaces_from == "Selector":
        try:
            listener.selector = selector_from_label_selector(dict_of(namespaces.get("selector")))
        except SelectorError as exc:
            listener.selector = LabelSelector(matches_nothing=True)
            listener.refs = ("InvalidRouteKinds", f"allowedRoutes.namespaces.selector: {exc}")


def _listener_tls(listener: Listener, tls: Obj, ctx: _Context) -> None:
    mode = str(tls.get("mode") or "Terminate")
    if mode != "Terminate":
        listener.unsupported = f"TLS mode {mode!r} is not supported on HTTPS (Terminate)"
        return
    refs = list_of(tls.get("certificateRefs"))
    if not refs:
        listener.refs = ("InvalidCertificateRef", "an HTTPS listener needs certificateRefs")
    gateway_ns = namespace_of(listener.gateway)
    hosts = (listener.hostname,) if listener.hostname else ()
    for ref in refs:
        ref = dict_of(ref)
        name, ns = str(ref.get("name") or ""), str(ref.get("namespace") or gateway_ns)
        if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
            listener.refs = listener.refs or ("InvalidCertificateRef", f"certificateRef {name!r} is not a Secret")
        elif not ref_permitted(ctx.grants, "Gateway", gateway_ns, "Secret", ns, name):
            listener.refs = listener.refs or ("RefNotPermitted", f"no ReferenceGrant in {ns} allows Secret {name}")
        else:
            certificate, problem = ctx.services.certificate(ns, name, hosts)
            if certificate is None:
                listener.refs = listener.refs or ("InvalidCertificateRef", problem)
            else:
                listener.certificates.append(certificate)


def _resolve_port_claims(listeners: list[Listener], claims: dict[int, tuple[bool, str]]) -> None:
    for listener in listeners:
        if listener.unsupported or listener.conflict is not None:
            continue
        tls, owner = claims.setdefault(listener.port, (listener.tls, listener.owner))
        if tls != listener.tls:
            listener.conflict = ("ProtocolConflict", f"port {listener.port} is already served as "
                                 f"{'HTTPS' if tls else 'HTTP'} for {owner}")


# ---- HTTPRoutes ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _RouteRules:
    routes: list[tuple[int, int, Route]] = field(default_factory=list)  # (rule index, match index, route)
    invalid: str = ""  # why the route is not accepted (UnsupportedValue)
    refs: Issue | None = None


def _compile_http_route(route: Obj, listeners: dict[tuple[str, str], list[Listener]], ctx: _Context,
                        result: GatewayResult) -> None:
    ns, name = namespace_of(route), name_of(route)
    parents: list[Obj] = []
    rules: _RouteRules | None = None
    for parent_ref in list_of(spec(route).get("parentRefs")):
        parent_ref = dict_of(parent_ref)
        if (parent_ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP or \
                (parent_ref.get("kind") or "Gateway") != "Gateway":
            continue
        gateway_listeners = listeners.get((str(parent_ref.get("namespace") or ns), str(parent_ref.get("name"))))
        if gateway_listeners is None:
            continue  # not one of our Gateways
        if rules is None:
            rules = _compile_rules(route, ctx)
            for message in ([rules.invalid] if rules.invalid else []) + ([rules.refs[1]] if rules.refs else []):
                result.problems.append(Problem("HTTPRoute", ns, name, "InvalidRoute", message))
        issue, attached = _attach(route, parent_ref, gateway_listeners, rules, ctx)
        for listener, hosts in attached:
            listener.attached += 1
            if listener.programmed:
                _place(route, listener, hosts, rules, result)
        parents.append(_parent_status(route, parent_ref, issue, rules, ctx))
    _route_status(route, parents, ctx, result)


def _attach(route: Obj, parent_ref: Obj, listeners: list[Listener], rules: _RouteRules,
            ctx: _Context) -> tuple[Issue | None, list[tuple[Listener, list[str]]]]:
    section, port = parent_ref.get("sectionName"), parent_ref.get("port")
    candidates = [lst for lst in listeners if (section is None or lst.name == section)
                  and (port is None or lst.port == port)]
    if not candidates:
        return ("NoMatchingParent", "no listener matches the parentRef's sectionName and port"), []
    allowed = [lst for lst in candidates if _allows(lst, namespace_of(route), ctx)]
    if not allowed:
        return ("NotAllowedByListeners", "no matching listener allows this route (allowedRoutes)"), []
    route_hosts = [str(h).lower().rstrip(".") for h in list_of(spec(route).get("hostnames"))]
    attached = [(lst, hosts) for lst in allowed if (hosts := intersect_hostnames(lst.hostname, route_hosts))]
    if not attached:
        return ("NoMatchingListenerHostname", "no route hostname intersects a listener hostname"), []
    if rules.invalid:
        return ("UnsupportedValue", rules.invalid), []
    return None, attached


def _allows(listener: Listener, route_ns: str, ctx: _Context) -> bool:
    if not listener.kinds:
        return False
    if listener.namespaces_from == "All":
        return True
    if listener.namespaces_from == "Selector":
        return listener.selector is not None and listener.selector.matches(ctx.namespace_labels.get(route_ns, {}))
    return route_ns == namespace_of(listener.gateway)


def intersect_hostnames(listener: str, route_hosts: list[str]) -> list[str]:
    """The hostnames a route serves on a listener ("" = any host); a wildcard covers one or more labels."""
    if not route_hosts:
        return [listener]
    if not listener:
        return list(dict.fromkeys(route_hosts))
    found = [host for h in route_hosts if (host := _intersect(listener, h))]
    return list(dict.fromkeys(found))


def _intersect(a: str, b: str) -> str:
    if a == b:
        return a
    wild_a, wild_b = a.startswith("*."), b.startswith("*.")
    if wild_a and b.endswith(a[1:]):
        return b  # b is more specific (exact, or a longer wildcard)
    if wild_b and a.endswith(b[1:]):
        return a
    return ""


def _place(route: Obj, listener: Listener, hosts: list[str], rules: _RouteRules, result: GatewayResult) -> None:
    created, source = age_key(route)[0], f"httproute/{namespace_of(route)}/{name_of(route)}"
    for host in hosts:
        kind = HostKind.DEFAULT if not host else HostKind.ANY_LABELS if host.startswith("*.") else HostKind.EXACT
        for rule_index, match_index, compiled in rules.routes:
            result.routes.append(HostRoute(listener.port, host, kind, compiled,
                                           (created, source, rule_index, match_index)))


def _compile_rules(route: Obj, ctx: _Context) -> _RouteRules:
    rules = _RouteRules()
    for rule_index, rule in enumerate(list_of(spec(route).get("rules"))):
        try:
            _compile_rule(route, rule_index, dict_of(rule), ctx, rules)
        except _Unsupported as exc:
            rules.invalid = rules.invalid or f"rule {rule_index}: {exc}"
    if rules.invalid:
        rules.routes.clear()
    return rules


class _Unsupported(ValueError):
    """Something in a rule that svcnet does not support or that is invalid: the route is not accepted."""


def _compile_rule(route: Obj, rule_index: int, rule: Obj, ctx: _Context, rules: _RouteRules) -> None:
    headers, redirect = _filters(list_of(rule.get("filters")))
    backends: list[Backend] = []
    for ref in list_of(rule.get("backendRefs")):
        backend, issue = _backend_ref(route, dict_of(ref), ctx)
        backends.append(backend)
        if issue is not None and rules.refs is None:
            rules.refs = issue
    source = f"httproute/{namespace_of(route)}/{name_of(route)}/{rule_index}"
    for match_index, match in enumerate(list_of(rule.get("matches")) or [{}]):
        match = dict_of(match)
        path = _path(dict_of(match.get("path")))
        if redirect is not None and redirect.prefix_path is not None and path.type is not PathType.PREFIX:
            raise _Unsupported("ReplacePrefixMatch needs a PathPrefix match")
        method = match.get("method")
        rules.routes.append((rule_index, match_index, Route(
            path, source, method=str(method) if method else None,
            headers=_values(list_of(match.get("headers")), lower=True),
            query=_values(list_of(match.get("queryParams")), lower=False),
            backends=tuple(backends) if redirect is None else (), request_headers=headers, redirect=redirect,
            status_when_empty=500)))


def _path(path: Obj) -> PathMatch:
    path_type = _PATH_TYPES.get(str(path.get("type") or "PathPrefix"))
    value = str(path.get("value") or "/")
    if path_type is None:
        raise _Unsupported(f"path type {path.get('type')!r} is not supported")
    if path_type is not PathType.REGEX and not value.startswith("/"):
        raise _Unsupported(f"path {value!r} does not start with /")
    _check_regex(value, path_type is PathType.REGEX)
    return PathMatch(path_type, value)


def _values(entries: list[object], lower: bool) -> tuple[ValueMatch, ...]:
    found: dict[str, ValueMatch] = {}
    for entry in entries:
        entry = dict_of(entry)
        match_type = _MATCH_TYPES.get(str(entry.get("type") or "Exact"))
        if match_type is None:
            raise _Unsupported(f"match type {entry.get('type')!r} is not supported")
        name = str(entry.get("name") or "")
        name = name.lower() if lower else name
        value = str(entry.get("value") or "")
        _check_regex(value, match_type is MatchType.REGEX)
        found.setdefault(name, ValueMatch(name, value, match_type))  # the first entry for a name counts
    return tuple(found.values())


def _check_regex(value: str, is_regex: bool) -> None:
    if is_regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise _Unsupported(f"invalid regular expression {value!r}: {exc}") from None


def _filters(filters: list[object]) -> tuple[HeaderModifier | None, Redirect | None]:
    headers, redirect = None, None
    for raw in filters:
        item = dict_of(raw)
        kind = item.get("type")
        if kind == "RequestHeaderModifier":
            modifier = dict_of(item.get("requestHeaderModifier"))
            headers = HeaderModifier(
                set=tuple((str(h.get("name")), str(h.get("value"))) for h in map(dict_of, list_of(modifier.get("set")))),
                add=tuple((str(h.get("name")), str(h.get("value"))) for h in map(dict_of, list_of(modifier.get("add")))),
                remove=tuple(str(n).lower() for n in list_of(modifier.get("remove"))))
        elif kind == "RequestRedirect":
            redirect = _redirect(dict_of(item.get("requestRedirect")))
        else:
            raise _Unsupported(f"filter type {kind!r} is not supported (RequestHeaderModifier, RequestRedirect)")
    return headers, redirect


def _redirect(spec_: Obj) -> Redirect:
    path = dict_of(spec_.get("path"))
    path_type = path.get("type")
    if path and path_type not in ("ReplaceFullPath", "ReplacePrefixMatch"):
        raise _Unsupported(f"redirect path type {path_type!r} is not supported")
    port, status = spec_.get("port"), spec_.get("statusCode", 302)
    if status not in (301, 302):
        raise _Unsupported(f"redirect statusCode {status!r} is not supported (301, 302)")
    return Redirect(scheme=str(spec_["scheme"]) if spec_.get("scheme") else None,
                    hostname=str(spec_["hostname"]).lower() if spec_.get("hostname") else None,
                    port=port if isinstance(port, int) else None,
                    full_path=str(path.get("replaceFullPath") or "/") if path_type == "ReplaceFullPath" else None,
                    prefix_path=str(path.get("replacePrefixMatch") or "/")
                    if path_type == "ReplacePrefixMatch" else None,
                    status_code=int(status))


def _backend_ref(route: Obj, ref: Obj, ctx: _Context) -> tuple[Backend, Issue | None]:
    route_ns = namespace_of(route)
    name, ns = str(ref.get("name") or ""), str(ref.get("namespace") or route_ns)
    weight = ref.get("weight", 1)
    weight = weight if isinstance(weight, int) and weight >= 0 else 1
    port = ref.get("port")
    unresolved = Backend(f"{ns}/{name}:{port}", (), weight, 500)
    if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
        return unresolved, ("InvalidKind", f"backendRef {name!r}: kind {ref.get('kind')!r} is not supported")
    if not ref_permitted(ctx.grants, "HTTPRoute", route_ns, "Service", ns, name):
        return unresolved, ("RefNotPermitted", f"backendRef {ns}/{name}: no ReferenceGrant in {ns} allows it")
    if not isinstance(port, int) or isinstance(port, bool):
        return unresolved, ("BackendNotFound", f"backendRef {ns}/{name}: a Service backendRef needs a port")
    backend, problem = ctx.services.backend(ns, name, port, weight, 503)
    if problem:
        return replace(backend, status_when_empty=500), ("BackendNotFound", f"backendRef: {problem}")
    return backend, None


# ---- statuses -----------------------------------------------------------------------------------------------


def _parent_status(route: Obj, parent_ref: Obj, issue: Issue | None, rules: _RouteRules, ctx: _Context) -> Obj:
    existing = None
    for old in list_of(dict_of(route.get("status")).get("parents")):
        old = dict_of(old)
        if old.get("controllerName") == ctx.config.gateway_controller and old.get("parentRef") == parent_ref:
            existing = old.get("conditions")
    conds = conditions_for(route, ctx.now, existing or [])
    accepted = conds.make("Accepted", True, "Accepted") if issue is None else conds.make("Accepted", False, *issue)
    refs = conds.make("ResolvedRefs", True, "ResolvedRefs") if rules.refs is None else \
        conds.make("ResolvedRefs", False, *rules.refs)
    return {"parentRef": parent_ref, "controllerName": ctx.config.gateway_controller, "conditions": [accepted, refs]}


def _route_status(route: Obj, parents: list[Obj], ctx: _Context, result: GatewayResult) -> None:
    old = [dict_of(p) for p in list_of(dict_of(route.get("status")).get("parents"))]
    others = [p for p in old if p.get("controllerName") != ctx.config.gateway_controller]
    if parents or len(others) != len(old):
        result.statuses[("HTTPRoute", namespace_of(route), name_of(route))] = {"parents": others + parents}


def _finish_gateway(gateway: Obj, listeners: list[Listener], ctx: _Context, result: GatewayResult) -> None:
    status = dict_of(gateway.get("status"))
    old_listeners = {dict_of(entry).get("name"): dict_of(entry) for entry in list_of(status.get("listeners"))}
    listener_status = []
    for listener in listeners:
        conds = conditions_for(gateway, ctx.now, old_listeners.get(listener.name, {}).get("conditions") or [])
        listener_status.append({"name": listener.name, "supportedKinds": listener.kinds,
                                "attachedRoutes": listener.attached, "conditions": _listener_conditions(listener, conds)})
        _report_listener(gateway, listener, result)
        if listener.programmed:
            result.ports.setdefault(listener.port, listener.tls)
            result.certificates.setdefault(listener.port, []).extend(listener.certificates)
    valid = sum(1 for lst in listeners if not lst.unsupported)
    programmed = sum(1 for lst in listeners if lst.programmed)
    conds = conditions_for(gateway, ctx.now)
    accepted = conds.make("Accepted", valid > 0, "Accepted" if valid == len(listeners) else "ListenersNotValid")
    ready = conds.make("Programmed", programmed > 0, "Programmed" if programmed else "Invalid")
    address_type = "Hostname" if re.search(r"[a-zA-Z]", ctx.config.address) and ":" not in ctx.config.address \
        else "IPAddress"
    result.statuses[("Gateway", namespace_of(gateway), name_of(gateway))] = {
        "addresses": [{"type": address_type, "value": ctx.config.address}] if programmed else [],
        "conditions": [accepted, ready], "listeners": listener_status}


def _listener_conditions(listener: Listener, conds: Conditions) -> list[Obj]:
    accepted = conds.make("Accepted", False, "UnsupportedProtocol", listener.unsupported) if listener.unsupported \
        else conds.make("Accepted", True, "Accepted")
    conflicted = conds.make("Conflicted", True, *listener.conflict) if listener.conflict \
        else conds.make("Conflicted", False, "NoConflicts")
    refs = conds.make("ResolvedRefs", False, *listener.refs) if listener.refs \
        else conds.make("ResolvedRefs", True, "ResolvedRefs")
    programmed = conds.make("Programmed", True, "Programmed") if listener.programmed \
        else conds.make("Programmed", False, "Invalid")
    return [accepted, conflicted, programmed, refs]


def _report_listener(gateway: Obj, listener: Listener, result: GatewayResult) -> None:
    for reason, message in ((("UnsupportedProtocol", listener.unsupported),) if listener.unsupported else ()) + \
            tuple(issue for issue in (listener.conflict, listener.refs) if issue):
        result.problems.append(Problem("Gateway", namespace_of(gateway), name_of(gateway), reason,
                                       f"listener {listener.name}: {message}"))
