"""Validation of the Gateway API kinds (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) — pure.

Real clusters install these kinds as CRDs (gateway-api v1.3 standard channel), so kube-apiserver validates them
against the CRD's OpenAPI schema (required, enum, minimum/maximum, pattern) and its CEL rules. This module checks
the same things, with the messages those validators give:

    spec.listeners[0].port: Invalid value: 70000: spec.listeners[0].port in body should be less than or equal to 65535
    spec.listeners[0].tls.mode: Unsupported value: "X": supported values: "Terminate", "Passthrough"
    spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway

svcnet adds two checks the CRDs leave to controllers: a listener protocol is one of the core protocols (or a
domain-prefixed implementation-specific one), and an HTTPS listener needs `tls`.

Invariants: pure; never raises, whatever the shape (type mismatches are rejected earlier, by the schema check);
objects are expected to be defaulted first (`defaults.apply_defaults`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from svcnet.api import errors
from svcnet.api.errors import Cause

__all__ = ["UPDATE_VALIDATORS", "VALIDATORS"]

Obj = dict[str, Any]
Causes = list[Cause]

_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
HOSTNAME_PATTERN = rf"^(\*\.)?{_DNS_SUBDOMAIN}$"
SECTION_NAME_PATTERN = rf"^{_DNS_SUBDOMAIN}$"
CONTROLLER_PATTERN = rf"^{_DNS_SUBDOMAIN}\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
GROUP_PATTERN = rf"^$|^{_DNS_SUBDOMAIN}$"
KIND_PATTERN = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"
_DOMAIN_PROTOCOL = re.compile(rf"^{_DNS_SUBDOMAIN}\/[A-Za-z0-9]+$")

PROTOCOLS = ["HTTP", "HTTPS", "TLS", "TCP", "UDP"]
TLS_MODES = ["Terminate", "Passthrough"]
PATH_TYPES = ["Exact", "PathPrefix", "RegularExpression"]
MATCH_TYPES = ["Exact", "RegularExpression"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
REDIRECT_CODES = [301, 302]
FROM_NAMESPACES = ["All", "Selector", "Same"]
FILTER_FIELDS = {"RequestHeaderModifier": "requestHeaderModifier", "ResponseHeaderModifier": "responseHeaderModifier",
                 "RequestMirror": "requestMirror", "RequestRedirect": "requestRedirect", "URLRewrite": "urlRewrite",
                 "ExtensionRef": "extensionRef"}
PATH_MODIFIERS = ["ReplaceFullPath", "ReplacePrefixMatch"]
MAX_WEIGHT = 1_000_000
_UNSAFE_PATH = ("//", "/./", "/../", "%2f", "%2F", "#")


# ---- schema-style checks -----------------------------------------------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(parent: Obj, key: str, path: str) -> list[tuple[str, Obj]]:
    return [(f"{path}.{key}[{i}]", _d(item)) for i, item in enumerate(_l(parent.get(key)))]


def _rule(path: str, value: Any, message: str) -> Cause:
    """A failed CEL rule: kube names the value's type for objects and lists, and the value for scalars."""
    shown = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else value
    return errors.invalid(path, shown, message)


def _required(obj: Obj, path: str, *keys: str) -> Causes:
    """Missing (or, but for `group` where "" is the core group, empty) required fields."""
    return [errors.required(f"{path}.{k}" if path else k) for k in keys
            if obj.get(k) is None or (obj.get(k) == "" and k != "group")]


def _range(path: str, value: Any, low: int, high: int | None = None) -> Causes:
    if not isinstance(value, int) or isinstance(value, bool):
        return []
    if value < low:
        return [errors.invalid(path, value, f"{path} in body should be greater than or equal to {low}")]
    if high is not None and value > high:
        return [errors.invalid(path, value, f"{path} in body should be less than or equal to {high}")]
    return []


def _pattern(path: str, value: Any, pattern: str) -> Causes:
    if not isinstance(value, str) or re.search(pattern, value):
        return []
    return [errors.invalid(path, value, f"{path} in body should match '{pattern}'")]


def _enum(path: str, value: Any, allowed: list[Any]) -> Causes:
    if value is None or value in allowed:
        return []
    return [errors.not_supported(path, value, [str(a) for a in allowed])]


def _max_items(path: str, value: Any, limit: int) -> Causes:
    return [errors.too_many(path, len(value), limit)] if isinstance(value, list) and len(value) > limit else []


def _min_items(path: str, value: Any, low: int) -> Causes:
    if isinstance(value, list) and len(value) < low:
        return [errors.invalid(path, len(value), f"{path} in body should have at least {low} items")]
    return []


def _object_ref(ref: Obj, path: str, required: tuple[str, ...]) -> Causes:
    """The common reference shape: group, kind, name, namespace (what each of them must look like)."""
    causes = _required(ref, path, *required)
    causes += _pattern(f"{path}.group", ref.get("group"), GROUP_PATTERN)
    causes += _pattern(f"{path}.kind", ref.get("kind"), KIND_PATTERN)
    causes += _pattern(f"{path}.namespace", ref.get("namespace"), NAMESPACE_PATTERN)
    return causes


# ---- GatewayClass ------------------------------------------------------------------------------------------------


def _validate_gateway_class(gc: Obj) -> Causes:
    spec = _d(gc.get("spec"))
    causes = _required(spec, "spec", "controllerName")
    causes += _pattern("spec.controllerName", spec.get("controllerName"), CONTROLLER_PATTERN)
    if isinstance(spec.get("parametersRef"), dict):
        causes += _object_ref(spec["parametersRef"], "spec.parametersRef", ("group", "kind", "name"))
    return causes


def _validate_gateway_class_update(gc: Obj, old: Obj) -> Causes:
    new_name, old_name = _d(gc.get("spec")).get("controllerName"), _d(old.get("spec")).get("controllerName")
    return [] if new_name == old_name else [_rule("spec.controllerName", new_name, "Value is immutable")]


# ---- Gateway -----------------------------------------------------------------------------------------------------


def _validate_gateway(gw: Obj) -> Causes:
    spec = _d(gw.get("spec"))
    causes = _required(spec, "spec", "gatewayClassName", "listeners")
    listeners = spec.get("listeners")
    causes += _min_items("spec.listeners", listeners, 1) + _max_items("spec.listeners", listeners, 64)
    for path, listener in _items(spec, "listeners", "spec"):
        causes += _listener(listener, path)
    causes += _listener_rules(_l(listeners))
    for path, address in _items(spec, "addresses", "spec"):
        causes += _address(address, path)
    return causes


def _listener(listener: Obj, path: str) -> Causes:
    causes = _required(listener, path, "name", "port", "protocol")
    causes += _pattern(f"{path}.name", listener.get("name"), SECTION_NAME_PATTERN)
    causes += _range(f"{path}.port", listener.get("port"), 1, 65535)
    protocol = listener.get("protocol")
    if protocol and protocol not in PROTOCOLS and not _DOMAIN_PROTOCOL.match(str(protocol)):
        causes.append(errors.not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    causes += _pattern(f"{path}.hostname", listener.get("hostname"), HOSTNAME_PATTERN)
    if protocol == "HTTPS" and listener.get("tls") is None:
        causes.append(errors.required(f"{path}.tls", "tls must be specified for protocol HTTPS"))
    tls = listener.get("tls")
    if isinstance(tls, dict):
        causes += _listener_tls(tls, f"{path}.tls")
    namespaces = _d(_d(listener.get("allowedRoutes")).get("namespaces"))
    causes += _enum(f"{path}.allowedRoutes.namespaces.from", namespaces.get("from"), FROM_NAMESPACES)
    for kind_path, kind in _items(_d(listener.get("allowedRoutes")), "kinds", f"{path}.allowedRoutes"):
        causes += _object_ref(kind, kind_path, ("kind",))
    return causes


def _listener_tls(tls: Obj, path: str) -> Causes:
    causes = _enum(f"{path}.mode", tls.get("mode"), TLS_MODES)
    if tls.get("mode", "Terminate") == "Terminate" and not tls.get("certificateRefs") and not tls.get("options"):
        causes.append(_rule(path, tls, "certificateRefs or options must be specified when mode is Terminate"))
    for ref_path, ref in _items(tls, "certificateRefs", path):
        causes += _object_ref(ref, ref_path, ("name",))
    return causes


def _listener_rules(listeners: list[Any]) -> Causes:
    """The CRD's CEL rules over the whole list of listeners."""
    items = [_d(item) for item in listeners]
    messages = []
    if any(item.get("protocol") in ("HTTP", "TCP", "UDP") and item.get("tls") is not None for item in items):
        messages.append("tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
    if any(item.get("protocol") == "HTTPS" and _d(item.get("tls")).get("mode", "Terminate") not in
           ("", "Terminate") for item in items):
        messages.append("tls mode must be Terminate for protocol HTTPS")
    if any(item.get("protocol") in ("TCP", "UDP") and item.get("hostname") for item in items):
        messages.append("hostname must not be specified for protocols ['TCP', 'UDP']")
    names = [item.get("name") for item in items]
    if len(names) != len(set(map(str, names))):
        messages.append("Listener name must be unique within the Gateway")
    combos = [(item.get("port"), item.get("protocol"), item.get("hostname")) for item in items]
    if len(combos) != len(set(map(str, combos))):
        messages.append("Combination of port, protocol and hostname must be unique for each listener")
    return [_rule("spec.listeners", listeners, m) for m in messages]


def _address(address: Obj, path: str) -> Causes:
    causes = _required(address, path, "value")
    if address.get("type") == "Hostname":
        causes += _pattern(f"{path}.value", address.get("value"), HOSTNAME_PATTERN)
    return causes


# ---- HTTPRoute ---------------------------------------------------------------------------------------------------


def _validate_http_route(route: Obj) -> Causes:
    spec = _d(route.get("spec"))
    causes = _max_items("spec.hostnames", spec.get("hostnames"), 16)
    for i, host in enumerate(_l(spec.get("hostnames"))):
        causes += _pattern(f"spec.hostnames[{i}]", host, HOSTNAME_PATTERN)
    causes += _max_items("spec.parentRefs", spec.get("parentRefs"), 32)
    for path, ref in _items(spec, "parentRefs", "spec"):
        causes += _object_ref(ref, path, ("name",)) + _range(f"{path}.port", ref.get("port"), 1, 65535)
        causes += _pattern(f"{path}.sectionName", ref.get("sectionName"), SECTION_NAME_PATTERN)
    causes += _max_items("spec.rules", spec.get("rules"), 16)
    for path, rule in _items(spec, "rules", "spec"):
        causes += _route_rule(rule, path)
    return causes


def _route_rule(rule: Obj, path: str) -> Causes:
    causes = _max_items(f"{path}.matches", rule.get("matches"), 64)
    for match_path, match in _items(rule, "matches", path):
        causes += _route_match(match, match_path)
    causes += _filters(rule, path)
    causes += _max_items(f"{path}.backendRefs", rule.get("backendRefs"), 16)
    for ref_path, ref in _items(rule, "backendRefs", path):
        causes += _backend_ref(ref, ref_path) + _range(f"{ref_path}.weight", ref.get("weight"), 0, MAX_WEIGHT)
        causes += _filters(ref, ref_path)
    redirects = any(_d(f).get("requestRedirect") is not None for f in _l(rule.get("filters")))
    if redirects and rule.get("backendRefs"):
        causes.append(_rule(path, rule, "RequestRedirect filter must not be used together with backendRefs"))
    return causes


def _route_match(match: Obj, path: str) -> Causes:
    route_path = _d(match.get("path"))
    kind, value = route_path.get("type"), route_path.get("value")
    causes = _enum(f"{path}.path.type", kind, PATH_TYPES)
    if kind in ("Exact", "PathPrefix") and isinstance(value, str):
        when = "when type one of ['Exact', 'PathPrefix']"
        if not value.startswith("/"):
            causes.append(_rule(f"{path}.path", route_path,
                                f"value must be an absolute path and start with '/' {when}"))
        causes += [_rule(f"{path}.path", route_path, f"must not contain '{s}' {when}") for s in _UNSAFE_PATH
                   if s in value]
        causes += [_rule(f"{path}.path", route_path, f"must not end with '{s}' {when}") for s in ("/..", "/.")
                   if value.endswith(s)]
    for key in ("headers", "queryParams"):
        for item_path, item in _items(match, key, path):
            causes += _required(item, item_path, "name", "value")
            causes += _enum(f"{item_path}.type", item.get("type"), MATCH_TYPES)
            if key == "headers":
                causes += _pattern(f"{item_path}.name", item.get("name"), HEADER_NAME_PATTERN)
    return causes + _enum(f"{path}.method", match.get("method"), METHODS)


def _backend_ref(ref: Obj, path: str) -> Causes:
    causes = _object_ref(ref, path, ("name",)) + _range(f"{path}.port", ref.get("port"), 1, 65535)
    if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service" and ref.get("port") is None:
        causes.append(_rule(path, ref, "Must have port for Service reference"))
    return causes


def _filters(parent: Obj, path: str) -> Causes:
    filters = [_d(f) for f in _l(parent.get("filters"))]
    causes = _max_items(f"{path}.filters", parent.get("filters"), 16)
    for filter_path, item in _items(parent, "filters", path):
        causes += _filter(item, filter_path)
    types = [f.get("type") for f in filters]
    if "RequestRedirect" in types and "URLRewrite" in types:
        causes.append(_rule(f"{path}.filters", filters, "May specify either httpRouteFilterRequestRedirect or "
                                                        "httpRouteFilterRequestRewrite, but not both"))
    for kind in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"):
        if types.count(kind) > 1:
            causes.append(_rule(f"{path}.filters", filters, f"{kind} filter cannot be repeated"))
    return causes


def _filter(item: Obj, path: str) -> Causes:
    kind = item.get("type")
    causes = _required(item, path, "type") + _enum(f"{path}.type", kind, list(FILTER_FIELDS))
    for filter_type, field in FILTER_FIELDS.items():
        present = item.get(field) is not None
        if present and kind != filter_type:
            causes.append(_rule(path, item, f"filter.{field} must be nil if the filter.type is not {filter_type}"))
        elif not present and kind == filter_type:
            causes.append(_rule(path, item, f"filter.{field} must be specified for {filter_type} filter.type"))
    for field, check in _FILTER_CHECKS.items():
        if isinstance(item.get(field), dict):
            causes += check(item[field], f"{path}.{field}")
    return causes


def _header_modifier(modifier: Obj, path: str) -> Causes:
    causes: Causes = []
    for key in ("set", "add"):
        causes += _max_items(f"{path}.{key}", modifier.get(key), 16)
        for item_path, item in _items(modifier, key, path):
            causes += _required(item, item_path, "name", "value")
            causes += _pattern(f"{item_path}.name", item.get("name"), HEADER_NAME_PATTERN)
    return causes + _max_items(f"{path}.remove", modifier.get("remove"), 16)


def _path_modifier(modifier: Obj, path: str) -> Causes:
    kind = modifier.get("type")
    causes = _required(modifier, path, "type") + _enum(f"{path}.type", kind, PATH_MODIFIERS)
    for wanted, field in (("ReplaceFullPath", "replaceFullPath"), ("ReplacePrefixMatch", "replacePrefixMatch")):
        if kind == wanted and modifier.get(field) is None:
            causes.append(_rule(path, modifier, f"{field} must be specified when type is set to '{wanted}'"))
        elif kind != wanted and modifier.get(field) is not None:
            causes.append(_rule(path, modifier, f"type must be '{wanted}' when {field} is set"))
    return causes


def _redirect(redirect: Obj, path: str) -> Causes:
    causes = _enum(f"{path}.statusCode", redirect.get("statusCode"), REDIRECT_CODES)
    causes += _enum(f"{path}.scheme", redirect.get("scheme"), ["http", "https"])
    causes += _pattern(f"{path}.hostname", redirect.get("hostname"), SECTION_NAME_PATTERN)
    causes += _range(f"{path}.port", redirect.get("port"), 1, 65535)
    if isinstance(redirect.get("path"), dict):
        causes += _path_modifier(redirect["path"], f"{path}.path")
    return causes


def _rewrite(rewrite: Obj, path: str) -> Causes:
    causes = _pattern(f"{path}.hostname", rewrite.get("hostname"), SECTION_NAME_PATTERN)
    if isinstance(rewrite.get("path"), dict):
        causes += _path_modifier(rewrite["path"], f"{path}.path")
    return causes


def _mirror(mirror: Obj, path: str) -> Causes:
    causes = _required(mirror, path, "backendRef")
    if isinstance(mirror.get("backendRef"), dict):
        causes += _backend_ref(mirror["backendRef"], f"{path}.backendRef")
    causes += _range(f"{path}.percent", mirror.get("percent"), 0, 100)
    if mirror.get("percent") is not None and mirror.get("fraction") is not None:
        causes.append(_rule(path, mirror, "Only one of percent or fraction may be specified in "
                                          "HTTPRequestMirrorFilter"))
    fraction = _d(mirror.get("fraction"))
    numerator, denominator = fraction.get("numerator"), fraction.get("denominator", 100)
    if isinstance(numerator, int) and isinstance(denominator, int) and numerator > denominator:
        causes.append(_rule(f"{path}.fraction", fraction, "numerator must be less than or equal to denominator"))
    return causes


def _extension_ref(ref: Obj, path: str) -> Causes:
    return _object_ref(ref, path, ("group", "kind", "name"))


_FILTER_CHECKS: dict[str, Callable[[Obj, str], Causes]] = {
    "requestHeaderModifier": _header_modifier,
    "responseHeaderModifier": _header_modifier,
    "requestRedirect": _redirect,
    "urlRewrite": _rewrite,
    "requestMirror": _mirror,
    "extensionRef": _extension_ref,
}


# ---- ReferenceGrant ----------------------------------------------------------------------------------------------


def _validate_reference_grant(grant: Obj) -> Causes:
    spec = _d(grant.get("spec"))
    causes = _required(spec, "spec", "from", "to")
    for key, required in (("from", ("group", "kind", "namespace")), ("to", ("group", "kind"))):
        causes += _min_items(f"spec.{key}", spec.get(key), 1) + _max_items(f"spec.{key}", spec.get(key), 16)
        for path, ref in _items(spec, key, "spec"):
            causes += _object_ref(ref, path, required)
    return causes


VALIDATORS: dict[str, Callable[[Obj], Causes]] = {
    "GatewayClass": _validate_gateway_class,
    "Gateway": _validate_gateway,
    "HTTPRoute": _validate_http_route,
    "ReferenceGrant": _validate_reference_grant,
}
UPDATE_VALIDATORS: dict[str, Callable[[Obj, Obj], Causes]] = {
    "GatewayClass": _validate_gateway_class_update,
}
