"""Object validation with kube-apiserver's field paths and messages (`pkg/apis/core/validation`,
`apps/validation`, `networking/validation`, `discovery/validation`, apimachinery's ObjectMeta and label rules).

Theory of operation: `validate(kind, obj, old, net)` returns every problem as an `errors.Cause`, in the order
kube-apiserver reports them: ObjectMeta first, then the kind's spec validator from `_VALIDATORS`, then (when `old`
is given, i.e. on update) the kind's immutability rules from `_UPDATE_VALIDATORS`. Objects are expected to be
defaulted first (`defaults.apply_defaults`), exactly as kube defaults before it validates.

svcnet specifics: the ClusterIP / NodePort range checks that kube-apiserver's allocators make are made here, against
`NetworkConfig`, and their messages name the range in force and the flag that changes it. In loopback mode (a
service CIDR inside 127.0.0.0/8, where pods are processes on 127.x addresses) loopback endpoint and external IPs
are accepted; kube rejects them.

Invariants: pure; never mutates its inputs; never raises, whatever the shape of `obj` (a wrong shape is a cause or
is ignored, never an exception); an empty list means valid.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import errors, gateway_validation, resources, selectors
from svcnet.api.errors import Cause

__all__ = ["NetworkConfig", "validate"]

Obj = dict[str, Any]
Causes = list[Cause]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """The address ranges in force: what a requested ClusterIP / NodePort must fall inside."""

    service_cidrs: tuple[IPNetwork, ...] = field(default=(ipaddress.ip_network("10.96.0.0/12"),))
    node_port_range: tuple[int, int] = (30000, 32767)
    allow_loopback: bool = False  # a cluster on one machine's loopback (the API server bound to 127.x)

    @property
    def loopback_mode(self) -> bool:
        return self.allow_loopback or any(c.version == 4 and c.subnet_of(_LOOPBACK) for c in self.service_cidrs)  # type: ignore[arg-type]


def validate(kind: str, obj: Obj, old: Obj | None, net: NetworkConfig) -> Causes:
    """Every validation problem of `obj` (of `kind`); `old` is the stored object on update, else None."""
    if not isinstance(obj, dict):
        return [errors.invalid("", str(obj), "must be an object")]
    ctx = _Context(net, old if isinstance(old, dict) else None)
    causes = _validate_meta(kind, _d(obj.get("metadata")))
    validator = _VALIDATORS.get(kind)
    if validator is not None:
        causes += validator(obj, ctx)
    if ctx.old is not None:
        causes += _validate_meta_update(_d(obj.get("metadata")), _d(ctx.old.get("metadata")))
        update_validator = _UPDATE_VALIDATORS.get(kind)
        if update_validator is not None:
            causes += update_validator(obj, ctx.old, ctx)
    return causes


@dataclass(frozen=True, slots=True)
class _Context:
    net: NetworkConfig
    old: Obj | None


# ---- shape helpers and renderers -------------------------------------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _i(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json(value: Any, sort_keys: bool = True) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)


def _invalid(path: str, value: Any, detail: str) -> Cause:
    """field.Invalid: complex values render as JSON, like kube-apiserver."""
    if isinstance(value, dict | list):
        return Cause(path, errors.INVALID, f"Invalid value: {_json(value)}: {detail}")
    return errors.invalid(path, value, detail)


def _invalid_raw(path: str, rendered: str, detail: str) -> Cause:
    return Cause(path, errors.INVALID, f"Invalid value: {rendered}: {detail}")


def _each(path: str, value: Any, messages: list[str]) -> Causes:
    return [_invalid(path, value, m) for m in messages]


def _not_found(path: str, value: str) -> Cause:
    return Cause(path, "FieldValueNotFound", f'Not found: "{value}"')


def _nonnegative(path: str, value: Any) -> Causes:
    number = _i(value)
    if number is not None and number < 0:
        return [errors.invalid(path, number, "must be greater than or equal to 0")]
    return []


# ---- name and value syntax (apimachinery util/validation) ------------------------------------------------------

_DNS1123_LABEL_RE = re.compile(f"^{selectors.DNS1123_LABEL_FMT}$")
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                      "must start and end with an alphanumeric character")
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_WILDCARD_FMT = "\\*\\." + selectors.DNS1123_SUBDOMAIN_FMT
_WILDCARD_RE = re.compile(f"^{_WILDCARD_FMT}$")
_WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
                 "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character")
_PERCENT_FMT = "[0-9]+%"


def dns1123_label_errors(value: str) -> list[str]:
    errs = [selectors.max_len_error(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        if selectors.is_dns1123_subdomain(value):
            errs.append("must not contain dots")
        else:
            errs.append(selectors.regex_error(_DNS1123_LABEL_MSG, selectors.DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = [selectors.max_len_error(63)] if len(value) > 63 else []
    if not _DNS1035_RE.match(value):
        errs.append(selectors.regex_error(_DNS1035_MSG, _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def wildcard_subdomain_errors(value: str) -> list[str]:
    errs = [selectors.max_len_error(253)] if len(value) > 253 else []
    if not _WILDCARD_RE.match(value):
        errs.append(selectors.regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def port_name_errors(name: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME): at most 15 of [-a-z0-9], one letter, no '--', no edge hyphens."""
    errs = [selectors.max_len_error(15)] if len(name) > 15 else []
    if not re.fullmatch(r"[-a-z0-9]+", name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def config_key_errors(key: str) -> list[str]:
    errs = [selectors.max_len_error(253)] if len(key) > 253 else []
    if not _CONFIG_KEY_RE.match(key):
        errs.append(selectors.regex_error("a valid config key must consist of alphanumeric characters, '-', '_' "
                                          "or '.'", _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _port_number(path: str, value: Any) -> Causes:
    number = _i(value)
    if number is None or not 1 <= number <= 65535:
        return [_invalid(path, value if value is not None else 0, _PORT_RANGE_MSG)]
    return []


def _port_num_or_name(path: str, value: Any) -> Causes:
    if isinstance(value, str):
        return _each(path, value, port_name_errors(value))
    return _port_number(path, value if value is not None else 0)


def _subdomain(path: str, value: str) -> Causes:
    return _each(path, value, selectors.dns1123_subdomain_errors(value))


def _dns_label(path: str, value: str) -> Causes:
    return _each(path, value, dns1123_label_errors(value))


def _protocol(path: str, value: Any) -> Causes:
    if not value:
        return [errors.required(path)]
    if value not in ("SCTP", "TCP", "UDP"):
        return [errors.not_supported(path, value, ["SCTP", "TCP", "UDP"])]
    return []


def _enum(path: str, value: Any, allowed: list[str], required_detail: str = "") -> Causes:
    if not value:
        return [errors.required(path, required_detail)]
    if value not in allowed:
        return [errors.not_supported(path, value, allowed)]
    return []


# ---- IP helpers --------------------------------------------------------------------------------------------


def _parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(_s(value))
    except ValueError:
        return None


def _valid_ip(path: str, value: Any) -> Causes:
    if _parse_ip(value) is None:
        return [errors.invalid(path, _s(value), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def _valid_cidr(path: str, value: str) -> Causes:
    try:
        ipaddress.ip_network(value, strict=False)
        if "/" in value:
            return []
    except ValueError:
        pass
    return [errors.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


def _special_ip(path: str, value: str, net: NetworkConfig) -> Causes:
    """ValidateNonSpecialIP / ValidateEndpointIP; loopback is allowed in svcnet's loopback mode."""
    ip = _parse_ip(value)
    if ip is None:
        return [errors.invalid(path, value, "must be a valid IP address")]
    if ip.is_unspecified:
        return [errors.invalid(path, value, f"may not be unspecified ({value})")]
    if ip.is_loopback and not net.loopback_mode:
        return [errors.invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")]
    if ip.is_link_local and not ip.is_multicast:
        return [errors.invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")]
    if ip in ipaddress.ip_network("224.0.0.0/24") or (ip.version == 6 and ip in ipaddress.ip_network("ff02::/16")):
        return [errors.invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")]
    return []


# ---- ObjectMeta ------------------------------------------------------------------------------------------------

_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Service": dns1035_label_errors,
    "Namespace": dns1123_label_errors,
}
_NAMESPACED = {r.kind: r.namespaced for r in resources.RESOURCES}
TOTAL_ANNOTATION_SIZE = 256 * 1024


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def _validate_meta(kind: str, meta: Obj, path: str = "metadata") -> Causes:
    name_rule = _NAME_RULES.get(kind, selectors.dns1123_subdomain_errors)
    causes: Causes = []
    generate = _s(meta.get("generateName"))
    if generate:
        causes += _each(f"{path}.generateName", generate, name_rule(_mask_trailing_dash(generate)))
    name = _s(meta.get("name"))
    if not name:
        causes.append(errors.required(f"{path}.name", "name or generateName is required"))
    else:
        causes += _each(f"{path}.name", name, name_rule(name))
    namespace = _s(meta.get("namespace"))
    if namespace and _NAMESPACED.get(kind, True):
        causes += _each(f"{path}.namespace", namespace, dns1123_label_errors(namespace))
    elif namespace:
        causes.append(errors.forbidden(f"{path}.namespace", "not allowed on this type"))
    causes += validate_labels(meta.get("labels"), f"{path}.labels")
    causes += _validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return causes


def validate_labels(labels: Any, path: str) -> Causes:
    """unversioned ValidateLabels: every key a qualified name, every value a label value; all at `path`."""
    causes: Causes = []
    for key, value in _d(labels).items():
        causes += _each(path, key, selectors.label_key_errors(key))
        causes += _each(path, _s(value), selectors.label_value_errors(_s(value)))
    return causes


def _validate_annotations(annotations: Any, path: str) -> Causes:
    causes: Causes = []
    total = 0
    for key, value in _d(annotations).items():
        causes += _each(path, key, selectors.label_key_errors(key.lower()))
        total += len(key.encode()) + len(_s(value).encode())
    if total > TOTAL_ANNOTATION_SIZE:
        causes.append(errors.too_long(path, TOTAL_ANNOTATION_SIZE))
    return causes


def _immutable(path: str, new: Any, old: Any, sort_keys: bool = True) -> Causes:
    if new == old:
        return []
    if isinstance(new, dict | list):
        return [_invalid_raw(path, _json(new, sort_keys), "field is immutable")]
    return [_invalid(path, new if new is not None else "", "field is immutable")]


def _validate_meta_update(meta: Obj, old_meta: Obj) -> Causes:
    causes: Causes = []
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if key in old_meta:
            causes += _immutable(f"metadata.{key}", meta.get(key), old_meta.get(key))
    return causes


# ---- label selectors (metav1.LabelSelector) -------------------------------------------------------------------


def _render_label_selector(selector: Obj) -> str:
    """JSON of a metav1.LabelSelector in struct field order (matchLabels, matchExpressions), omitting empties."""
    ordered: Obj = {}
    if selector.get("matchLabels"):
        ordered["matchLabels"] = dict(sorted(_d(selector["matchLabels"]).items()))
    if selector.get("matchExpressions"):
        ordered["matchExpressions"] = [
            {k: e[k] for k in ("key", "operator", "values") if isinstance(e, dict) and e.get(k)}
            for e in _l(selector["matchExpressions"])]
    return _json(ordered, sort_keys=False)


def validate_label_selector(selector: Obj, path: str) -> Causes:
    causes = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(_l(selector.get("matchExpressions"))):
        causes += _validate_selector_requirement(_d(expr), f"{path}.matchExpressions[{i}]")
    return causes


def _validate_selector_requirement(expr: Obj, path: str) -> Causes:
    causes: Causes = []
    op, values = expr.get("operator"), _l(expr.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            causes.append(errors.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            causes.append(errors.forbidden(f"{path}.values",
                                           "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        causes.append(errors.invalid(f"{path}.operator", _s(op), "not a valid selector operator"))
    key = _s(expr.get("key"))
    causes += _each(f"{path}.key", key, selectors.label_key_errors(key))
    for j, value in enumerate(values):
        causes += _each(f"{path}.values[{j}]", _s(value), selectors.label_value_errors(_s(value)))
    return causes


# ---- Service ---------------------------------------------------------------------------------------------------

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
_KUBELET_PORT = 10250
MAX_CLIENT_IP_TIMEOUT = 86400


@dataclass(frozen=True, slots=True)
class _Svc:
    """A service spec seen the way kube's validation sees it after PrepareForCreate/Update (clusterIPs synced)."""

    spec: Obj
    type: str
    cluster_ips: list[str]
    old_spec: Obj | None

    @property
    def headless(self) -> bool:
        return self.cluster_ips == ["None"]

    @property
    def ports(self) -> list[Obj]:
        return [_d(p) for p in _l(self.spec.get("ports"))]

    def carried(self, key: str) -> bool:
        """A type-dependent field left over from the old type; kube's strategy drops it, so it is not an error."""
        old = self.old_spec
        return old is not None and old.get("type") != self.type and self.spec.get(key) == old.get(key)


def _effective_cluster_ips(spec: Obj, old_spec: Obj | None) -> list[str]:
    cluster_ip = _s(spec.get("clusterIP"))
    ips = [_s(ip) for ip in _l(spec.get("clusterIPs"))]
    if cluster_ip and ips and ips[0] != cluster_ip and old_spec is not None and \
            ips == [_s(ip) for ip in _l(old_spec.get("clusterIPs"))] and len(ips) == 1:
        return [cluster_ip]  # clusterIP edited, clusterIPs untouched: kube's normalizeClusterIPs follows clusterIP
    if not ips and cluster_ip:
        return [cluster_ip]
    return ips


def _validate_service(svc: Obj, ctx: _Context) -> Causes:
    spec = _d(svc.get("spec"))
    old_spec = _d(ctx.old.get("spec")) if ctx.old is not None else None
    s = _Svc(spec, _s(spec.get("type")), _effective_cluster_ips(spec, old_spec), old_spec)
    causes: Causes = []
    if not s.ports and not s.headless and s.type != "ExternalName":
        causes.append(errors.required("spec.ports"))
    causes += _service_type_rules(s)
    names: set[str] = set()
    for i, port in enumerate(s.ports):
        causes += _service_port(port, len(s.ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        causes += validate_labels(spec.get("selector"), "spec.selector")
    causes += _session_affinity(spec)
    causes += _cluster_ips(s, ctx.net)
    causes += _external_ips(spec, ctx.net)
    causes += _enum("spec.type", s.type, _SERVICE_TYPES)
    causes += _node_ports(s, ctx.net)
    causes += _duplicate_ports(s)
    causes += _source_ranges(s)
    causes += _traffic_policies(s)
    causes += _allocate_lb_node_ports(s)
    return causes


def _service_type_rules(s: _Svc) -> Causes:
    causes: Causes = []
    if s.type in _NODE_PORT_TYPES and s.headless:
        causes.append(errors.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {s.type} services"))
    if s.type == "LoadBalancer":
        causes += [errors.invalid(f"spec.ports[{i}]", _KUBELET_PORT, f"may not expose port {_KUBELET_PORT} "
                                  "externally since it is used by kubelet")
                   for i, p in enumerate(s.ports) if p.get("port") == _KUBELET_PORT]
    if s.type == "ExternalName":
        causes += _external_name(s)
    return causes


def _external_name(s: _Svc) -> Causes:
    causes: Causes = []
    for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        present = s.cluster_ips if key == "clusterIPs" else s.spec.get(key)
        if present and not s.carried(key) and not (key == "clusterIPs" and s.carried("clusterIP")):
            causes.append(errors.forbidden(f"spec.{key}", "may not be set for ExternalName services"))
    cname = _s(s.spec.get("externalName")).removesuffix(".")
    if cname:
        causes += _subdomain("spec.externalName", cname)
    else:
        causes.append(errors.required("spec.externalName"))
    return causes


def _service_port(port: Obj, require_name: bool, names: set[str], path: str) -> Causes:
    causes: Causes = []
    name = _s(port.get("name"))
    if require_name and not name:
        causes.append(errors.required(f"{path}.name"))
    elif name:
        causes += _dns_label(f"{path}.name", name)
        if name in names:
            causes.append(errors.duplicate(f"{path}.name", name))
        names.add(name)
    causes += _port_number(f"{path}.port", port.get("port"))
    causes += _protocol(f"{path}.protocol", port.get("protocol"))
    causes += _port_num_or_name(f"{path}.targetPort", port.get("targetPort"))
    if port.get("appProtocol") is not None:
        app = _s(port.get("appProtocol"))
        causes += _each(f"{path}.appProtocol", app, selectors.label_key_errors(app))
    return causes


def _session_affinity(spec: Obj) -> Causes:
    affinity = spec.get("sessionAffinity")
    causes = _enum("spec.sessionAffinity", affinity, ["ClientIP", "None"])
    if affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        causes.append(errors.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    if affinity != "ClientIP":
        return causes
    config = spec.get("sessionAffinityConfig")
    detail = "when session affinity type is ClientIP"
    if not isinstance(config, dict):
        return causes + [errors.required("spec.sessionAffinityConfig", detail)]
    client_ip = config.get("clientIP")
    if not isinstance(client_ip, dict):
        return causes + [errors.required("spec.sessionAffinityConfig.clientIP", detail)]
    path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    timeout = client_ip.get("timeoutSeconds")
    if timeout is None:
        return causes + [errors.required(path, detail)]
    if _i(timeout) is None or not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT:
        causes.append(_invalid(path, timeout, f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}"))
    return causes


def _cluster_ips(s: _Svc, net: NetworkConfig) -> Causes:
    if s.type == "ExternalName":
        return []
    causes = _cluster_ip_sync(s)
    causes += _ip_families(s.spec)
    bad = False
    for i, ip in enumerate(s.cluster_ips):
        if i == 0 and ip == "None":
            if len(s.cluster_ips) > 1:
                bad = True
                causes.append(_invalid("spec.clusterIPs", s.cluster_ips, "'None' must be the first and only value"))
            continue
        errs = _valid_ip(f"spec.clusterIPs[{i}]", ip)
        bad = bad or bool(errs)
        causes += errs
    if len(s.cluster_ips) > 2:
        causes.append(_invalid("spec.clusterIPs", s.cluster_ips, "may only hold up to 2 values"))
    if bad:
        return causes
    causes += _dual_stack(s)
    return causes + _cluster_ip_range(s, net)


def _cluster_ip_sync(s: _Svc) -> Causes:
    cluster_ip, listed = _s(s.spec.get("clusterIP")), [_s(ip) for ip in _l(s.spec.get("clusterIPs"))]
    if cluster_ip and listed and s.cluster_ips[0] != cluster_ip:
        return [_invalid("spec.clusterIPs", listed, "first value must match `clusterIP`")]
    if not cluster_ip and listed:
        return [_invalid("spec.clusterIPs", listed, "must be empty when `clusterIP` is not specified")]
    return []


def _ip_families(spec: Obj) -> Causes:
    causes: Causes = []
    seen: set[str] = set()
    for i, family in enumerate(_l(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            causes.append(errors.not_supported(f"spec.ipFamilies[{i}]", _s(family), ["IPv4", "IPv6"]))
        if family in seen:
            causes.append(errors.duplicate(f"spec.ipFamilies[{i}]", _s(family)))
        seen.add(_s(family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        causes.append(errors.not_supported("spec.ipFamilyPolicy", _s(policy),
                                           ["PreferDualStack", "RequireDualStack", "SingleStack"]))
    return causes


def _dual_stack(s: _Svc) -> Causes:
    causes: Causes = []
    ips = [ip for ip in (_parse_ip(x) for x in s.cluster_ips) if ip is not None]
    if len(s.cluster_ips) > 1 and len({ip.version for ip in ips}) != len(ips):
        causes.append(_invalid("spec.clusterIPs", s.cluster_ips, "may specify no more than one IP for each IP family"))
    if s.headless:
        return causes
    families = _l(s.spec.get("ipFamilies"))
    for i, ip in enumerate(ips[:len(families)]):
        want = families[i]
        if want == "IPv4" and ip.version == 6 or want == "IPv6" and ip.version == 4:
            causes.append(errors.invalid(f"spec.clusterIPs[{i}]", s.cluster_ips[i],
                                         f"expected an {want} value as indicated by `ipFamilies[{i}]`"))
    return causes


def _cluster_ip_range(s: _Svc, net: NetworkConfig) -> Causes:
    """The allocator's check, made early: a requested ClusterIP must lie in a service CIDR."""
    held = set(_l((s.old_spec or {}).get("clusterIPs"))) | {_s((s.old_spec or {}).get("clusterIP"))}
    ranges = ",".join(str(c) for c in net.service_cidrs)
    for ip_text in s.cluster_ips:
        ip = _parse_ip(ip_text)
        if ip is None or ip_text in held or any(ip in c for c in net.service_cidrs):
            continue
        return [_invalid("spec.clusterIPs", s.cluster_ips,
                         f"failed to allocate IP {ip_text}: provided IP is not in the valid range. The range of "
                         f"valid IPs is {ranges} (set by the API server's --service-cluster-ip-range flag; pick an "
                         "address inside it, or omit clusterIP to have one allocated)")]
    return []


def _external_ips(spec: Obj, net: NetworkConfig) -> Causes:
    causes: Causes = []
    for i, ip in enumerate(_l(spec.get("externalIPs"))):
        errs = _valid_ip(f"spec.externalIPs[{i}]", ip)
        causes += errs or _special_ip(f"spec.externalIPs[{i}]", _s(ip), net)
    return causes


def _node_ports(s: _Svc, net: NetworkConfig) -> Causes:
    causes: Causes = []
    if s.type == "ClusterIP":
        causes += [errors.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                   for i, p in enumerate(s.ports) if p.get("nodePort") and not s.carried("ports")]
    seen: set[tuple[str, Any]] = set()
    for i, port in enumerate(s.ports):
        if not port.get("nodePort"):
            continue
        key = (_s(port.get("protocol")), port["nodePort"])
        if key in seen:
            causes.append(errors.duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
        seen.add(key)
    if s.type in _NODE_PORT_TYPES:
        causes += _node_port_range(s, net)
    return causes


def _node_port_range(s: _Svc, net: NetworkConfig) -> Causes:
    low, high = net.node_port_range
    held = {_d(p).get("nodePort") for p in _l((s.old_spec or {}).get("ports"))}
    held.add((s.old_spec or {}).get("healthCheckNodePort"))
    detail = f"provided port is not in the valid range. The range of valid ports is {low}-{high}"
    wanted = [(f"spec.ports[{i}].nodePort", p.get("nodePort")) for i, p in enumerate(s.ports)]
    wanted.append(("spec.healthCheckNodePort", s.spec.get("healthCheckNodePort")))
    return [_invalid(path, port, detail) for path, port in wanted
            if port and port not in held and (_i(port) is None or not low <= port <= high)]


def _duplicate_ports(s: _Svc) -> Causes:
    causes: Causes = []
    seen: set[tuple[str, Any]] = set()
    for i, port in enumerate(s.ports):
        key = (_s(port.get("protocol")), port.get("port"))
        if key in seen:
            rendered = _json({"Name": "", "Protocol": key[0], "AppProtocol": None, "Port": key[1], "TargetPort": 0,
                              "NodePort": 0}, sort_keys=False)
            causes.append(Cause(f"spec.ports[{i}]", errors.DUPLICATE, f"Duplicate value: {rendered}"))
        seen.add(key)
    return causes


def _source_ranges(s: _Svc) -> Causes:
    ranges = _l(s.spec.get("loadBalancerSourceRanges"))
    if not ranges:
        return []
    causes: Causes = []
    if s.type != "LoadBalancer" and not s.carried("loadBalancerSourceRanges"):
        causes.append(errors.forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is "
                                       "'LoadBalancer'"))
    for i, value in enumerate(ranges):
        causes += _valid_cidr(f"spec.loadBalancerSourceRanges[{i}]", _s(value).strip())
    return causes


def _externally_accessible(s: _Svc) -> bool:
    return s.type in _NODE_PORT_TYPES or (s.type == "ClusterIP" and bool(s.spec.get("externalIPs")))


def _traffic_policies(s: _Svc) -> Causes:
    causes: Causes = []
    etp = s.spec.get("externalTrafficPolicy")
    if not _externally_accessible(s):
        if etp and not s.carried("externalTrafficPolicy"):
            causes.append(errors.invalid("spec.externalTrafficPolicy", _s(etp),
                                         "may only be set for externally-accessible services"))
    else:
        causes += _enum("spec.externalTrafficPolicy", etp, ["Cluster", "Local"])
    hcnp = s.spec.get("healthCheckNodePort")
    needs_health_check = s.type == "LoadBalancer" and etp == "Local"
    if hcnp and not needs_health_check and not s.carried("healthCheckNodePort"):
        causes.append(_invalid("spec.healthCheckNodePort", hcnp,
                               "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    itp = s.spec.get("internalTrafficPolicy")
    if itp is None and s.type in ("ClusterIP", *_NODE_PORT_TYPES):
        causes.append(errors.required("spec.internalTrafficPolicy"))
    elif itp is not None and itp not in ("Cluster", "Local"):
        causes.append(errors.not_supported("spec.internalTrafficPolicy", _s(itp), ["Cluster", "Local"]))
    return causes


def _allocate_lb_node_ports(s: _Svc) -> Causes:
    value = s.spec.get("allocateLoadBalancerNodePorts")
    if s.type == "LoadBalancer" and value is None:
        return [errors.required("spec.allocateLoadBalancerNodePorts")]
    if s.type != "LoadBalancer" and value is not None and not s.carried("allocateLoadBalancerNodePorts"):
        return [errors.forbidden("spec.allocateLoadBalancerNodePorts",
                                 "may only be used when `type` is 'LoadBalancer'")]
    return []


def _validate_service_update(svc: Obj, old: Obj, ctx: _Context) -> Causes:
    spec, old_spec = _d(svc.get("spec")), _d(old.get("spec"))
    new_type, old_type = _s(spec.get("type")), _s(old_spec.get("type"))
    if "ExternalName" in (new_type, old_type):
        return []
    new_ips = _effective_cluster_ips(spec, old_spec)
    old_ips = _effective_cluster_ips(old_spec, None)
    policy = spec.get("ipFamilyPolicy")
    causes: Causes = []
    if not (new_ips == ["None"] and old_ips == ["None"]):
        causes += _list_changes("spec.clusterIPs", new_ips, old_ips, policy, "clusterIP")
    causes += _list_changes("spec.ipFamilies", _l(spec.get("ipFamilies")), _l(old_spec.get("ipFamilies")), policy,
                            "ipFamily")
    if new_type == old_type == "LoadBalancer" and old_spec.get("externalTrafficPolicy") == "Local" and \
            spec.get("externalTrafficPolicy") == "Local" and old_spec.get("healthCheckNodePort"):
        causes += _immutable("spec.healthCheckNodePort", spec.get("healthCheckNodePort"),
                             old_spec.get("healthCheckNodePort"))
    if new_type == old_type == "LoadBalancer" and spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass"):
        causes.append(_invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set"))
    return causes


def _list_changes(path: str, new: list[Any], old: list[Any], policy: Any, noun: str) -> Causes:
    """validateUpgradeDowngradeClusterIPs / IPFamilies: the primary never changes; a secondary may come or go."""
    if len(old) == len(new):
        return [_invalid(f"{path}[{i}]", new, "may not change once set") for i, v in enumerate(old) if v != new[i]]
    if len(old) < len(new):
        return [_invalid(f"{path}[0]", new, "may not change once set")] if old and new[0] != old[0] else []
    causes: Causes = []
    if not new:
        causes.append(_invalid(f"{path}[0]", new, f"primary {noun} can not be unset"))
    elif new[0] != old[0]:
        causes.append(_invalid(f"{path}[0]", new, "may not change once set"))
    if len(new) == 1 and policy != "SingleStack":
        causes.append(_invalid(f"{path}[0]", new, "`ipFamilyPolicy` must be set to 'SingleStack' when releasing "
                               f"the secondary {noun}"))
    return causes


# ---- Pod specs -------------------------------------------------------------------------------------------------

_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
_MAX_INT32 = 2**31 - 1


def validate_pod_spec(spec: Obj, path: str, is_pod: bool) -> Causes:
    """ValidatePodSpec: containers, volumes and pod-level fields under `path` (e.g. spec.template.spec)."""
    volumes, causes = _volumes(_l(spec.get("volumes")), f"{path}.volumes")
    containers = [_d(c) for c in _l(spec.get("containers"))]
    if not containers:
        causes.append(errors.required(f"{path}.containers"))
    names: set[str] = set()
    for i, container in enumerate(containers):
        causes += _container(container, f"{path}.containers[{i}]", names, volumes, is_pod)
    for i, container in enumerate(_d(c) for c in _l(spec.get("initContainers"))):
        causes += _container(container, f"{path}.initContainers[{i}]", names, volumes, is_pod, init=True)
    causes += _enum(f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES)
    causes += _enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICIES)
    causes += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    for key in ("serviceAccountName", "nodeName"):
        if spec.get(key):
            causes += _subdomain(f"{path}.{key}", _s(spec[key]))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += _dns_label(f"{path}.{key}", _s(spec[key]))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (_i(deadline) is None or not 1 <= deadline <= _MAX_INT32):
        causes.append(_invalid(f"{path}.activeDeadlineSeconds", deadline,
                               f"must be between 1 and {_MAX_INT32}, inclusive"))
    return causes


def _volumes(volumes: list[Any], path: str) -> tuple[set[str], Causes]:
    names: set[str] = set()
    causes: Causes = []
    for i, volume in enumerate(_d(v) for v in volumes):
        name = _s(volume.get("name"))
        if not name:
            causes.append(errors.required(f"{path}[{i}].name"))
        else:
            causes += _dns_label(f"{path}[{i}].name", name)
            if name in names:
                causes.append(errors.duplicate(f"{path}[{i}].name", name))
        names.add(name)
    return names, causes


def _container(c: Obj, path: str, names: set[str], volumes: set[str], is_pod: bool, init: bool = False) -> Causes:
    causes: Causes = []
    name = _s(c.get("name"))
    if not name:
        causes.append(errors.required(f"{path}.name"))
    else:
        causes += _dns_label(f"{path}.name", name)
        if name in names:
            causes.append(errors.duplicate(f"{path}.name", name))
        names.add(name)
    image = _s(c.get("image"))
    if not image:
        causes.append(errors.required(f"{path}.image"))
    elif is_pod and image != image.strip():
        causes.append(errors.invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    causes += _enum(f"{path}.imagePullPolicy", c.get("imagePullPolicy"), _PULL_POLICIES)
    causes += _termination_message_policy(c.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy")
    causes += _container_ports(_l(c.get("ports")), f"{path}.ports")
    causes += _env(_l(c.get("env")), f"{path}.env")
    causes += _volume_mounts(_l(c.get("volumeMounts")), f"{path}.volumeMounts", volumes)
    causes += _probes(c, path, init)
    return causes


def _termination_message_policy(policy: Any, path: str) -> Causes:
    detail = "must be 'File' or 'FallbackToLogsOnError'"
    if not policy:
        return [errors.required(path, detail)]
    if policy not in ("File", "FallbackToLogsOnError"):
        return [errors.invalid(path, _s(policy), detail)]
    return []


def _container_ports(ports: list[Any], path: str) -> Causes:
    causes: Causes = []
    names: set[str] = set()
    for i, port in enumerate(_d(p) for p in ports):
        name = _s(port.get("name"))
        if name:
            msgs = port_name_errors(name)
            if msgs:
                causes += _each(f"{path}[{i}].name", name, msgs)
            elif name in names:
                causes.append(errors.duplicate(f"{path}[{i}].name", name))
            names.add(name)
        if not port.get("containerPort"):
            causes.append(errors.required(f"{path}[{i}].containerPort"))
        else:
            causes += _port_number(f"{path}[{i}].containerPort", port.get("containerPort"))
        if port.get("hostPort"):
            causes += _port_number(f"{path}[{i}].hostPort", port.get("hostPort"))
        causes += _protocol(f"{path}[{i}].protocol", port.get("protocol"))
    return causes


def _env(env: list[Any], path: str) -> Causes:
    causes: Causes = []
    for i, var in enumerate(_d(v) for v in env):
        name = _s(var.get("name"))
        if not name:
            causes.append(errors.required(f"{path}[{i}].name"))
            causes.append(errors.invalid(f"{path}[{i}].name", name, "environment variable name must be non-empty"))
        elif any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in name):
            causes.append(errors.invalid(f"{path}[{i}].name", name, "a valid environment variable name must consist "
                                         "only of printable ASCII characters other than '='"))
        causes += _env_value_from(var, f"{path}[{i}].valueFrom")
    return causes


def _env_value_from(var: Obj, path: str) -> Causes:
    source = var.get("valueFrom")
    if source is None:
        return []
    count = sum(1 for key in _ENV_SOURCES if _d(source).get(key) is not None)
    if count == 0:
        return [errors.invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                               "or `secretKeyRef`")]
    if count > 1:
        return [errors.invalid(path, "", "may not have more than one field specified at a time")]
    if var.get("value"):
        return [errors.invalid(path, "", "may not be specified when `value` is not empty")]
    return []


def _volume_mounts(mounts: list[Any], path: str, volumes: set[str]) -> Causes:
    causes: Causes = []
    for i, mount in enumerate(_d(m) for m in mounts):
        name = _s(mount.get("name"))
        if not name:
            causes.append(errors.required(f"{path}[{i}].name"))
        elif name not in volumes:
            causes.append(_not_found(f"{path}[{i}].name", name))
        if not mount.get("mountPath"):
            causes.append(errors.required(f"{path}[{i}].mountPath"))
    return causes


def _probes(c: Obj, path: str, init: bool) -> Causes:
    causes: Causes = []
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(kind)
        if probe is None:
            continue
        if init and c.get("restartPolicy") != "Always":
            causes.append(errors.forbidden(f"{path}.{kind}", "may not be set for init containers without "
                                           "restartPolicy=Always"))
            continue
        causes += _probe(_d(probe), f"{path}.{kind}")
        threshold = _d(probe).get("successThreshold")
        if kind != "readinessProbe" and threshold != 1:
            causes.append(_invalid(f"{path}.{kind}.successThreshold", threshold, "must be 1"))
        if kind == "readinessProbe" and _d(probe).get("terminationGracePeriodSeconds") is not None:
            causes.append(_invalid(f"{path}.{kind}.terminationGracePeriodSeconds",
                                   _d(probe)["terminationGracePeriodSeconds"], "must not be set for readinessProbes"))
    return causes


def _probe(probe: Obj, path: str) -> Causes:
    causes = _handler(probe, path)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes += _nonnegative(f"{path}.{key}", probe.get(key))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None and (_i(grace) is None or grace <= 0):
        causes.append(_invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    return causes


def _handler(handler: Obj, path: str) -> Causes:
    causes: Causes = []
    found = 0
    for kind in _HANDLERS:
        body = handler.get(kind)
        if body is None:
            continue
        if found:
            causes.append(errors.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        found += 1
        causes += _HANDLER_CHECKS[kind](_d(body), f"{path}.{kind}")
    if not found:
        causes.append(errors.required(path, "must specify a handler type"))
    return causes


def _http_get(action: Obj, path: str) -> Causes:
    causes: Causes = [] if action.get("path") else [errors.required(f"{path}.path")]
    causes += _port_num_or_name(f"{path}.port", action.get("port"))
    scheme = action.get("scheme")
    if scheme not in ("HTTP", "HTTPS"):
        causes.append(errors.not_supported(f"{path}.scheme", _s(scheme), ["HTTP", "HTTPS"]))
    for header in (_d(h) for h in _l(action.get("httpHeaders"))):
        name = _s(header.get("name"))
        if not re.fullmatch(r"[-A-Za-z0-9]+", name):
            causes.append(errors.invalid(f"{path}.httpHeaders", name, selectors.regex_error(
                "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+",
                "X-Header-Name")))
    return causes


def _exec(action: Obj, path: str) -> Causes:
    return [] if _l(action.get("command")) else [errors.required(f"{path}.command")]


def _tcp_socket(action: Obj, path: str) -> Causes:
    return _port_num_or_name(f"{path}.port", action.get("port"))


def _grpc(action: Obj, path: str) -> Causes:
    return _port_number(f"{path}.port", action.get("port"))


_HANDLER_CHECKS: dict[str, Callable[[Obj, str], Causes]] = {
    "exec": _exec, "httpGet": _http_get, "tcpSocket": _tcp_socket, "grpc": _grpc,
}


def _validate_pod(pod: Obj, ctx: _Context) -> Causes:
    return validate_pod_spec(_d(pod.get("spec")), "spec", is_pod=True)


_POD_MUTABLE = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`," \
               "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` " \
               "(allow it to be set to 1 if it was previously negative)"


def _pod_spec_core(spec: Obj, keep_node: bool) -> Obj:
    core = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations",
                                                       "terminationGracePeriodSeconds")}
    if not keep_node:
        core.pop("nodeName", None)
    for key in ("containers", "initContainers"):
        core[key] = [{k: v for k, v in _d(c).items() if k != "image"} for c in _l(spec.get(key))]
    return core


def _validate_pod_update(pod: Obj, old: Obj, ctx: _Context) -> Causes:
    spec, old_spec = _d(pod.get("spec")), _d(old.get("spec"))
    keep_node = bool(old_spec.get("nodeName"))  # binding sets nodeName once
    if _pod_spec_core(spec, keep_node) != _pod_spec_core(old_spec, keep_node):
        return [errors.forbidden("spec", f"pod updates may not change fields other than {_POD_MUTABLE}")]
    return []


# ---- workloads -------------------------------------------------------------------------------------------------


def _pod_template(template: Any, path: str, selector: selectors.LabelSelector | None,
                  owner: str = "ReplicaSet") -> Causes:
    """ValidatePodTemplateSpecForReplicaSet / ForRC: labels must satisfy the selector; restartPolicy Always."""
    if not isinstance(template, dict):
        return [errors.required(path)]
    meta = _d(template.get("metadata"))
    labels = _d(meta.get("labels"))
    causes: Causes = []
    if selector is not None and not selector.empty and not selector.matches(labels):
        causes.append(_invalid(f"{path}.metadata.labels", labels, "`selector` does not match template `labels`"))
    causes += validate_labels(meta.get("labels"), f"{path}.labels")
    causes += _validate_annotations(meta.get("annotations"), f"{path}.annotations")
    spec = _d(template.get("spec"))
    causes += validate_pod_spec(spec, f"{path}.spec", is_pod=False)
    if spec.get("restartPolicy") and spec.get("restartPolicy") != "Always":
        causes.append(errors.not_supported(f"{path}.spec.restartPolicy", _s(spec["restartPolicy"]), ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        detail = f"activeDeadlineSeconds in {owner} is not Supported"
        causes.append(_invalid(f"{path}.spec.activeDeadlineSeconds", spec["activeDeadlineSeconds"], detail)
                      if owner == "ReplicaSet" else errors.forbidden(f"{path}.spec.activeDeadlineSeconds", detail))
    return causes


def _selector_and_template(spec: Obj) -> Causes:
    """The apps/v1 rule: spec.selector required, non-empty, valid, and matching spec.template's labels."""
    raw = spec.get("selector")
    causes: Causes = []
    selector: selectors.LabelSelector | None = selectors.LabelSelector(matches_nothing=True)
    if not isinstance(raw, dict):
        causes.append(errors.required("spec.selector"))
    else:
        causes += validate_label_selector(raw, "spec.selector")
        if not raw.get("matchLabels") and not raw.get("matchExpressions"):
            causes.append(_invalid_raw("spec.selector", _render_label_selector(raw),
                                       "empty selector is invalid for deployment"))
        try:
            selector = selectors.selector_from_label_selector(raw)
        except selectors.SelectorError:
            causes.append(_invalid_raw("spec.selector", _render_label_selector(raw), "invalid label selector"))
            return causes
    return causes + _pod_template(spec.get("template"), "spec.template", selector)


def _validate_deployment(deploy: Obj, ctx: _Context) -> Causes:
    spec = _d(deploy.get("spec"))
    causes = _nonnegative("spec.replicas", spec.get("replicas"))
    causes += _selector_and_template(spec)
    causes += _strategy(_d(spec.get("strategy")), "spec.strategy")
    causes += _nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = _i(spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        causes += _nonnegative("spec.progressDeadlineSeconds", deadline)
        if deadline <= (_i(spec.get("minReadySeconds")) or 0):
            causes.append(errors.invalid("spec.progressDeadlineSeconds", deadline,
                                         "must be greater than minReadySeconds"))
    return causes


def _strategy(strategy: Obj, path: str) -> Causes:
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [errors.forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is "
                                     "'Recreate'")]
        return []
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [errors.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        return _rolling_update(rolling, f"{path}.rollingUpdate")
    return [Cause(path, errors.NOT_SUPPORTED, f"Unsupported value: {_json(strategy, sort_keys=False)}: supported "
                  'values: "Recreate", "RollingUpdate"')]


def _int_or_percent(path: str, value: Any) -> Causes:
    if isinstance(value, str):
        if not re.fullmatch(_PERCENT_FMT, value):
            return [_invalid_raw(path, value, selectors.regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'", _PERCENT_FMT,
                "1%", "93%"))]
        return []
    return _nonnegative(path, value)


def _percent_or_int_value(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(_PERCENT_FMT, value):
        return int(value[:-1])
    return _i(value)


def _rolling_update(rolling: Obj, path: str) -> Causes:
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = _int_or_percent(f"{path}.maxUnavailable", unavailable)
    causes += _int_or_percent(f"{path}.maxSurge", surge)
    if _percent_or_int_value(unavailable) == 0 and _percent_or_int_value(surge) == 0:
        causes.append(_invalid_raw(f"{path}.maxUnavailable", _s(unavailable), "may not be 0 when `maxSurge` is 0"))
    if isinstance(unavailable, str) and (_percent_or_int_value(unavailable) or 0) > 100:
        causes.append(_invalid_raw(f"{path}.maxUnavailable", unavailable, "must not be greater than 100%"))
    return causes


def _validate_replica_set(rs: Obj, ctx: _Context) -> Causes:
    spec = _d(rs.get("spec"))
    causes = _nonnegative("spec.replicas", spec.get("replicas"))
    causes += _nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return causes + _selector_and_template(spec)


def _validate_replication_controller(rc: Obj, ctx: _Context) -> Causes:
    spec = _d(rc.get("spec"))
    causes = _nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    raw = _d(spec.get("selector"))
    if not raw:
        causes.append(errors.required("spec.selector"))
    causes += validate_labels(raw, "spec.selector")
    causes += _nonnegative("spec.replicas", spec.get("replicas"))
    selector = selectors.selector_from_map({str(k): _s(v) for k, v in raw.items()})
    return causes + _pod_template(spec.get("template"), "spec.template", selector, "ReplicationController")


def _selector_json(spec: Obj) -> str:
    return _render_label_selector(_d(spec.get("selector")))


def _validate_selector_immutable(obj: Obj, old: Obj, ctx: _Context) -> Causes:
    new_sel, old_sel = _selector_json(_d(obj.get("spec"))), _selector_json(_d(old.get("spec")))
    if new_sel != old_sel:
        return [_invalid_raw("spec.selector", new_sel, "field is immutable")]
    return []


# ---- Endpoints and EndpointSlices ----------------------------------------------------------------------------


def _validate_endpoints(ep: Obj, ctx: _Context) -> Causes:
    causes: Causes = []
    for i, subset in enumerate(_d(s) for s in _l(ep.get("subsets"))):
        path = f"subsets[{i}]"
        if not _l(subset.get("addresses")) and not _l(subset.get("notReadyAddresses")):
            causes.append(errors.required(path, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_d(a) for a in _l(subset.get(key))):
                causes += _endpoint_address(address, f"{path}.{key}[{j}]", ctx.net)
        ports = [_d(p) for p in _l(subset.get("ports"))]
        for j, port in enumerate(ports):
            causes += _endpoint_port(port, len(ports) > 1, f"{path}.ports[{j}]")
    return causes


def _endpoint_address(address: Obj, path: str, net: NetworkConfig) -> Causes:
    ip = _s(address.get("ip"))
    causes = _valid_ip(f"{path}.ip", ip) or _special_ip(f"{path}.ip", ip, net)
    if address.get("hostname"):
        causes += _dns_label(f"{path}.hostname", _s(address["hostname"]))
    if address.get("nodeName") is not None:
        causes += _subdomain(f"{path}.nodeName", _s(address["nodeName"]))
    return causes


def _endpoint_port(port: Obj, require_name: bool, path: str) -> Causes:
    name = _s(port.get("name"))
    causes: Causes = []
    if require_name and not name:
        causes.append(errors.required(f"{path}.name"))
    elif name:
        causes += _dns_label(f"{path}.name", name)
    causes += _port_number(f"{path}.port", port.get("port"))
    return causes + _protocol(f"{path}.protocol", port.get("protocol"))


_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _validate_endpoint_slice(eps: Obj, ctx: _Context) -> Causes:
    address_type = _s(eps.get("addressType"))
    causes: Causes = []
    for i, endpoint in enumerate(_d(e) for e in _l(eps.get("endpoints"))):
        causes += _slice_endpoint(endpoint, address_type, f"endpoints[{i}]", ctx.net)
    causes += _enum("addressType", address_type, _ADDRESS_TYPES)
    names: set[str] = set()
    for i, port in enumerate(_d(p) for p in _l(eps.get("ports"))):
        name = _s(port.get("name"))
        if name:
            causes += _dns_label(f"ports[{i}].name", name)
        if name in names:
            causes.append(errors.duplicate(f"ports[{i}].name", name))
        names.add(name)
        causes += _protocol(f"ports[{i}].protocol", port.get("protocol"))
    return causes


def _slice_endpoint(endpoint: Obj, address_type: str, path: str, net: NetworkConfig) -> Causes:
    addresses = _l(endpoint.get("addresses"))
    causes: Causes = []
    if not addresses:
        causes.append(errors.required(f"{path}.addresses", "must contain at least 1 address"))
    elif len(addresses) > 100:
        causes.append(Cause(f"{path}.addresses", errors.TOO_MANY,
                            f"Too many: {len(addresses)}: must have at most 100 items"))
    for j, address in enumerate(_s(a) for a in addresses):
        causes += _slice_address(address, address_type, f"{path}.addresses[{j}]", net)
    if endpoint.get("nodeName") is not None:
        causes += _subdomain(f"{path}.nodeName", _s(endpoint["nodeName"]))
    if endpoint.get("hostname") is not None:
        causes += _dns_label(f"{path}.hostname", _s(endpoint["hostname"]))
    return causes


def _slice_address(address: str, address_type: str, path: str, net: NetworkConfig) -> Causes:
    ip = _parse_ip(address)
    if address_type == "IPv4":
        if ip is None or ip.version != 4:
            return [errors.invalid(path, address, "must be a valid IPv4 address")]
        return _special_ip(path, address, net)
    if address_type == "IPv6":
        if ip is None or ip.version != 6:
            return [errors.invalid(path, address, "must be a valid IPv6 address")]
        return _special_ip(path, address, net)
    if address_type == "FQDN":
        return _fqdn(path, address)
    return []


def _fqdn(path: str, name: str) -> Causes:
    name = name.removesuffix(".")
    if msgs := selectors.dns1123_subdomain_errors(name):
        return [errors.invalid(path, name, ",".join(msgs))]
    if len(name.split(".")) < 2:
        return [errors.invalid(path, name, "should be a domain with at least two segments separated by dots")]
    return []


def _validate_endpoint_slice_update(eps: Obj, old: Obj, ctx: _Context) -> Causes:
    return _immutable("addressType", eps.get("addressType"), old.get("addressType"))


# ---- Ingress and IngressClass ----------------------------------------------------------------------------------

_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress(ing: Obj, ctx: _Context) -> Causes:
    spec = _d(ing.get("spec"))
    rules = _l(spec.get("rules"))
    causes: Causes = []
    if not rules and spec.get("defaultBackend") is None:
        causes.append(_invalid_raw("spec", _json(spec.get("rules")),
                                   "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        causes += _ingress_backend(_d(spec["defaultBackend"]), "spec.defaultBackend")
    for i, rule in enumerate(_d(r) for r in rules):
        causes += _ingress_rule(rule, f"spec.rules[{i}]")
    for i, tls in enumerate(_d(t) for t in _l(spec.get("tls"))):
        for j, host in enumerate(_s(h) for h in _l(tls.get("hosts"))):
            causes += _each(f"spec.tls[{i}].hosts[{j}]", host, _host_errors(host))
    if spec.get("ingressClassName") is not None:
        causes += _subdomain("spec.ingressClassName", _s(spec["ingressClassName"]))
    return causes


def _host_errors(host: str) -> list[str]:
    return wildcard_subdomain_errors(host) if "*" in host else selectors.dns1123_subdomain_errors(host)


def _ingress_rule(rule: Obj, path: str) -> Causes:
    host = _s(rule.get("host"))
    causes: Causes = []
    if host:
        if _parse_ip(host) is not None:
            causes.append(errors.invalid(f"{path}.host", host, "must be a DNS name, not an IP address"))
        causes += _each(f"{path}.host", host, _host_errors(host))
    http = rule.get("http")
    if isinstance(http, dict):
        paths = _l(http.get("paths"))
        if not paths:
            causes.append(errors.required(f"{path}.http.paths"))
        for i, item in enumerate(_d(p) for p in paths):
            causes += _ingress_path(item, f"{path}.http.paths[{i}]")
    return causes


def _ingress_path(item: Obj, path: str) -> Causes:
    path_type, value = item.get("pathType"), _s(item.get("path"))
    if path_type is None:
        return [errors.required(f"{path}.pathType", "pathType must be specified")]
    causes: Causes = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(errors.invalid(f"{path}.path", value, "must be an absolute path"))
        causes += [errors.invalid(f"{path}.path", value, f"must not contain '{seq}'")
                   for seq in _INVALID_PATH_SEQUENCES if seq in value]
        causes += [errors.invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
                   for suffix in _INVALID_PATH_SUFFIXES if value.endswith(suffix)]
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(errors.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        causes.append(errors.not_supported(f"{path}.pathType", _s(path_type), _PATH_TYPES))
    return causes + _ingress_backend(_d(item.get("backend")), f"{path}.backend")


def _ingress_backend(backend: Obj, path: str) -> Causes:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [errors.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _typed_reference(_d(resource), f"{path}.resource")
    if service is None:
        return [errors.invalid(path, "", "resource or service backend is required")]
    service = _d(service)
    name = _s(service.get("name"))
    causes = [errors.required(f"{path}.service.name")] if not name else \
        _each(f"{path}.service.name", name, dns1035_label_errors(name))
    port = _d(service.get("port"))
    port_name, number = _s(port.get("name")), port.get("number")
    if port_name and number:
        causes.append(errors.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes += _each(f"{path}.service.port.name", port_name, port_name_errors(port_name))
    elif number:
        causes += _port_number(f"{path}.service.port.number", number)
    else:
        causes.append(errors.required(path, "port name or number is required"))
    return causes


def _typed_reference(ref: Obj, path: str) -> Causes:
    causes: Causes = []
    if ref.get("apiGroup") is not None:
        causes += _subdomain(f"{path}.apiGroup", _s(ref["apiGroup"]))
    for key in ("kind", "name"):
        value = _s(ref.get(key))
        if not value:
            causes.append(errors.required(f"{path}.{key}", f"{key} is required"))
        elif value in (".", ".."):
            causes.append(errors.invalid(f"{path}.{key}", value, f"may not be '{value}'"))
        else:
            causes += [errors.invalid(f"{path}.{key}", value, f"may not contain '{ch}'") for ch in "/%" if ch in value]
    return causes


def _validate_ingress_class(ic: Obj, ctx: _Context) -> Causes:
    controller = _s(_d(ic.get("spec")).get("controller"))
    path = "spec.controller"
    if not controller:
        return [errors.required(path)]
    causes = [errors.too_long(path, 250)] if len(controller) > 250 else []
    host, _, rest = controller.partition("/")
    if not host or not rest:
        return causes + [errors.invalid(path, controller, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    causes += _each(path, host, selectors.dns1123_subdomain_errors(host))
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
        causes.append(errors.invalid(path, rest, selectors.regex_error(
            "Invalid path", r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")))
    return causes


def _validate_ingress_class_update(ic: Obj, old: Obj, ctx: _Context) -> Causes:
    return _immutable("spec.controller", _d(ic.get("spec")).get("controller"), _d(old.get("spec")).get("controller"))


# ---- config, leases, nodes, events -----------------------------------------------------------------------------

MAX_DATA_SIZE = 1024 * 1024


def _decoded_size(value: Any) -> int:
    try:
        return len(base64.b64decode(_s(value), validate=False))
    except (binascii.Error, ValueError):
        return len(_s(value))


def _validate_config_map(cm: Obj, ctx: _Context) -> Causes:
    data, binary = _d(cm.get("data")), _d(cm.get("binaryData"))
    causes: Causes = []
    for key in data:
        causes += _each(f"data[{key}]", key, config_key_errors(key))
        if key in binary:
            causes.append(errors.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    for key in binary:
        causes += _each(f"binaryData[{key}]", key, config_key_errors(key))
        if key in data:
            causes.append(errors.invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
    size = sum(len(_s(v).encode()) for v in data.values()) + sum(_decoded_size(v) for v in binary.values())
    if size > MAX_DATA_SIZE:
        causes.append(errors.too_long("", MAX_DATA_SIZE))
    return causes


def _validate_immutable_data(obj: Obj, old: Obj, keys: tuple[str, ...]) -> Causes:
    if old.get("immutable") is not True:
        return []
    causes: Causes = []
    if obj.get("immutable") is not True:
        causes.append(errors.forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            causes.append(errors.forbidden(key, "field is immutable when `immutable` is set"))
    return causes


def _validate_config_map_update(cm: Obj, old: Obj, ctx: _Context) -> Causes:
    return _validate_immutable_data(cm, old, ("data", "binaryData"))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_secret(secret: Obj, ctx: _Context) -> Causes:
    data = {**_d(secret.get("data")), **{k: base64.b64encode(_s(v).encode()).decode()
                                         for k, v in _d(secret.get("stringData")).items()}}
    causes: Causes = []
    for key in data:
        causes += _each(f"data[{key}]", key, config_key_errors(key))
    if sum(_decoded_size(v) for v in data.values()) > MAX_DATA_SIZE:
        causes.append(errors.too_long("data", MAX_DATA_SIZE))
    kind = _s(secret.get("type"))
    causes += [errors.required(f"data[{key}]") for key in _SECRET_REQUIRED_KEYS.get(kind, ()) if key not in data]
    if kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        causes += [errors.required("data[username]"), errors.required("data[password]")]
    if kind == "kubernetes.io/service-account-token":
        annotation = "kubernetes.io/service-account.name"
        if not _d(_d(secret.get("metadata")).get("annotations")).get(annotation):
            causes.append(errors.required(f"metadata.annotations[{annotation}]"))
    return causes


def _validate_secret_update(secret: Obj, old: Obj, ctx: _Context) -> Causes:
    causes = _immutable("type", secret.get("type"), old.get("type"))
    return causes + _validate_immutable_data(secret, old, ("data",))


def _validate_lease(lease: Obj, ctx: _Context) -> Causes:
    spec = _d(lease.get("spec"))
    causes: Causes = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (_i(duration) is None or duration <= 0):
        causes.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    causes += _nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"))
    return causes


def _validate_node(node: Obj, ctx: _Context) -> Causes:
    spec = _d(node.get("spec"))
    causes: Causes = []
    cidrs = [_s(c) for c in _l(spec.get("podCIDRs"))]
    for i, cidr in enumerate(cidrs):
        causes += _valid_cidr(f"spec.podCIDRs[{i}]", cidr)
    if spec.get("podCIDR") and cidrs and spec["podCIDR"] != cidrs[0]:
        causes.append(errors.invalid("spec.podCIDRs", _s(spec["podCIDR"]),
                                     "node:podCIDRs[0] must be the same value as spec.podCIDR"))
    for i, taint in enumerate(_d(t) for t in _l(spec.get("taints"))):
        causes += _enum(f"spec.taints[{i}].effect", taint.get("effect"), ["NoSchedule", "PreferNoSchedule",
                                                                           "NoExecute"])
        key = _s(taint.get("key"))
        causes += _each(f"spec.taints[{i}].key", key, selectors.label_key_errors(key))
    return causes


def _validate_event(event: Obj, ctx: _Context) -> Causes:
    involved_ns = _s(_d(event.get("involvedObject")).get("namespace"))
    namespace = _s(_d(event.get("metadata")).get("namespace"))
    if (not involved_ns and namespace not in ("", "default")) or (involved_ns and namespace != involved_ns):
        return [errors.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")]
    return []


def _validate_controller_revision(rev: Obj, ctx: _Context) -> Causes:
    return _nonnegative("revision", rev.get("revision"))


def _context_free(check: Callable[[Obj], Causes]) -> Callable[[Obj, _Context], Causes]:
    """A validator that needs no network ranges (the Gateway API kinds') in this table's shape."""
    return lambda obj, ctx: check(obj)


def _context_free_update(check: Callable[[Obj, Obj], Causes]) -> Callable[[Obj, Obj, _Context], Causes]:
    return lambda obj, old, ctx: check(obj, old)


_VALIDATORS: dict[str, Callable[[Obj, _Context], Causes]] = {
    "Service": _validate_service,
    "Pod": _validate_pod,
    "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replica_set,
    "ReplicationController": _validate_replication_controller,
    "Endpoints": _validate_endpoints,
    "EndpointSlice": _validate_endpoint_slice,
    "Ingress": _validate_ingress,
    "IngressClass": _validate_ingress_class,
    "ConfigMap": _validate_config_map,
    "Secret": _validate_secret,
    "Lease": _validate_lease,
    "Node": _validate_node,
    "Event": _validate_event,
    "ControllerRevision": _validate_controller_revision,
    **{kind: _context_free(check) for kind, check in gateway_validation.VALIDATORS.items()},
}

def _validate_node_update(new: Obj, old: Obj, ctx: _Context) -> Causes:
    """kube's ValidateNodeUpdate: a podCIDR once set never changes (pod addresses on the node depend on it)."""
    def cidrs(node: Obj) -> list[Any]:
        spec = node.get("spec") if isinstance(node, dict) else None
        if not isinstance(spec, dict):
            return []
        listed = spec.get("podCIDRs")
        return list(listed) if isinstance(listed, list) and listed else ([spec["podCIDR"]] if spec.get("podCIDR")
                                                                          else [])
    before, after = cidrs(old), cidrs(new)
    if before and after != before:
        return [errors.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')]
    return []


_UPDATE_VALIDATORS: dict[str, Callable[[Obj, Obj, _Context], Causes]] = {
    "Node": _validate_node_update,
    "Service": _validate_service_update,
    "Pod": _validate_pod_update,
    "Deployment": _validate_selector_immutable,
    "ReplicaSet": _validate_selector_immutable,
    "EndpointSlice": _validate_endpoint_slice_update,
    "IngressClass": _validate_ingress_class_update,
    "ConfigMap": _validate_config_map_update,
    "Secret": _validate_secret_update,
    **{kind: _context_free_update(check) for kind, check in gateway_validation.UPDATE_VALIDATORS.items()},
}
