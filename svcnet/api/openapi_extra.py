"""OpenAPI schemas the shipped `openapi_schemas.json` lacks — pure, written by hand (not generated).

The official Python client that `scripts/gen_openapi.py` reads has neither the Gateway API kinds nor the legacy
v1beta1 Ingress, so their schemas live here:

- Gateway API (gateway.networking.k8s.io v1 GatewayClass, Gateway, HTTPRoute; v1beta1 ReferenceGrant), named the
  way kube-apiserver names CRD schemas (`io.k8s.networking.gateway.v1.Gateway`: the group reversed); the field
  structure of the v1.3 standard-channel CRDs, with short descriptions of our own. Value rules (patterns, enums,
  ranges, CEL) are enforced by `gateway_validation`, not repeated here.
- `extensions/v1beta1` and `networking.k8s.io/v1beta1` Ingress, derived from the shipped networking/v1 schemas with
  the v1beta1 differences (`spec.backend`, `serviceName`/`servicePort` backends).

Invariants: every kind and list schema carries `x-kubernetes-group-version-kind`; every `$ref` names a schema in
the shipped file or in this table; names never collide with the shipped ones.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["extra_schemas"]

Schema = dict[str, Any]
_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_GW = "gateway.networking.k8s.io"


def _ref(name: str, description: str = "") -> Schema:
    node: Schema = {"allOf": [{"$ref": _REF + name}]}
    return {**node, "description": description} if description else node


def _str(description: str) -> Schema:
    return {"type": "string", "description": description}


def _int(description: str) -> Schema:
    return {"type": "integer", "format": "int32", "description": description}


def _list(items: Schema, description: str) -> Schema:
    return {"type": "array", "items": items, "description": description}


def _obj(description: str, properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    node: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        node["required"] = list(required)
    return node


def _map(description: str) -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}, "description": description}


def _gvk(group: str, version: str, kind: str) -> list[dict[str, str]]:
    return [{"group": group, "version": version, "kind": kind}]


def _kind(group: str, version: str, kind: str, description: str, spec: Schema,
          status: Schema | None) -> dict[str, Schema]:
    """The kind's schema and its list's, CRD style: apiVersion, kind, metadata, spec (required), status."""
    prefix = ".".join(reversed(group.split("."))) + f".{version}."
    properties: dict[str, Schema] = {
        "apiVersion": _str("APIVersion defines the versioned schema of this representation of an object."),
        "kind": _str("Kind is a string value representing the REST resource this object represents."),
        "metadata": _ref(f"{_META}ObjectMeta", "Standard object's metadata."),
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    item = {**_obj(description, properties, ("spec",)), "x-kubernetes-group-version-kind": _gvk(group, version, kind)}
    listed = _obj(f"{kind}List is a list of {kind}.", {
        "apiVersion": properties["apiVersion"], "kind": properties["kind"],
        "metadata": _ref(f"{_META}ListMeta", "Standard list metadata."),
        "items": _list({"$ref": f"{_REF}{prefix}{kind}"}, f"List of {kind.lower()}s."),
    }, ("items",))
    listed["x-kubernetes-group-version-kind"] = _gvk(group, version, f"{kind}List")
    return {f"{prefix}{kind}": item, f"{prefix}{kind}List": listed}


# ---- shared Gateway API pieces ------------------------------------------------------------------------------------

_GROUP = _str('Group of the referent; "" is the core API group.')
_KIND = _str("Kind of the referent.")
_NAME = _str("Name of the referent.")
_NAMESPACE = _str("Namespace of the referent; the referring object's namespace when unset.")
_PORT = _int("Port number (1-65535).")
_CONDITIONS = _list(_ref(f"{_META}Condition"), "Conditions describe the current state, as reported by the "
                    "controller (a list map keyed by type).")


def _reference(description: str, *extra: str) -> Schema:
    properties = {"group": _GROUP, "kind": _KIND, "name": _NAME}
    if "namespace" in extra:
        properties["namespace"] = _NAMESPACE
    if "port" in extra:
        properties["port"] = _PORT
    return _obj(description, properties, ("name",))


def _parent_ref() -> Schema:
    ref = _reference("ParentReference identifies the parent (usually a Gateway) a route attaches to.", "namespace",
                     "port")
    ref["properties"]["sectionName"] = _str("Name of a section of the parent, e.g. a Gateway listener name.")
    return ref


def _header_modifier(what: str) -> Schema:
    header = _obj("An HTTP header name and value.", {"name": _str("Header name (case-insensitive)."),
                                                      "value": _str("Header value.")}, ("name", "value"))
    return _obj(f"Modifies the {what} headers.", {
        "set": _list(header, "Headers to overwrite (or add when missing)."),
        "add": _list(header, "Headers to add to existing values."),
        "remove": _list({"type": "string"}, "Header names to remove."),
    })


def _path_modifier() -> Schema:
    return _obj("How the path is modified.", {
        "type": _str("ReplaceFullPath or ReplacePrefixMatch."),
        "replaceFullPath": _str("The path that replaces the whole request path."),
        "replacePrefixMatch": _str("The value that replaces the matched path prefix."),
    }, ("type",))


def _filters() -> Schema:
    mirror_ref = _reference("The backend requests are mirrored to.", "namespace", "port")
    filter_ = _obj("HTTPRouteFilter: processing applied to requests (or responses) matched by the rule.", {
        "type": _str("RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite or "
                     "ExtensionRef; the field of the same name carries its configuration."),
        "requestHeaderModifier": _header_modifier("request"),
        "responseHeaderModifier": _header_modifier("response"),
        "requestMirror": _obj("Mirrors requests to another backend; responses are ignored.", {
            "backendRef": mirror_ref,
            "percent": _int("Percentage of requests mirrored (0-100)."),
            "fraction": _obj("Fraction of requests mirrored.", {"numerator": _int("Numerator."),
                                                                "denominator": _int("Denominator (default 100).")},
                             ("numerator",)),
        }, ("backendRef",)),
        "requestRedirect": _obj("Answers with a redirect.", {
            "scheme": _str("http or https."), "hostname": _str("Hostname of the Location header."),
            "path": _path_modifier(), "port": _PORT, "statusCode": {"type": "integer",
                                                                    "description": "301 or 302 (default)."},
        }),
        "urlRewrite": _obj("Rewrites the request before it is forwarded.", {
            "hostname": _str("Replaces the Host header."), "path": _path_modifier()}),
        "extensionRef": _obj("An implementation-specific filter.", {"group": _GROUP, "kind": _KIND, "name": _NAME},
                             ("group", "kind", "name")),
    }, ("type",))
    return _list(filter_, "Filters applied, in order.")


def _http_route_spec() -> Schema:
    match_item = _obj("A header or query parameter match.", {
        "type": _str("Exact (default) or RegularExpression."), "name": _str("Name to match."),
        "value": _str("Value to match.")}, ("name", "value"))
    match = _obj("HTTPRouteMatch: a request matches when every given condition holds.", {
        "path": _obj("Path match (default: PathPrefix /).", {
            "type": _str("Exact, PathPrefix (default) or RegularExpression."), "value": _str("Path (default /).")}),
        "headers": _list(match_item, "Header matches (all must hold)."),
        "queryParams": _list(match_item, "Query parameter matches (all must hold)."),
        "method": _str("HTTP method to match."),
    })
    backend = _reference("HTTPBackendRef: a backend (by default a Service; its port is then required).",
                         "namespace", "port")
    backend["properties"]["weight"] = _int("Relative share of requests (0-1000000, default 1).")
    backend["properties"]["filters"] = _filters()
    rule = _obj("HTTPRouteRule: matches, filters and the backends matching requests go to.", {
        "name": _str("Name of the rule."),
        "matches": _list(match, "Conditions a request must meet (any of them); default: PathPrefix /."),
        "filters": _filters(),
        "backendRefs": _list(backend, "Backends requests are sent to, split by weight."),
        "timeouts": _obj("Timeouts (Gateway API durations, e.g. 10s).", {
            "request": _str("Timeout for the whole request."),
            "backendRequest": _str("Timeout for one request to a backend.")}),
    })
    return _obj("HTTPRouteSpec: how HTTP requests are routed.", {
        "parentRefs": _list(_parent_ref(), "The Gateways (or other parents) the route attaches to."),
        "hostnames": _list({"type": "string"}, "Hostnames matched against the Host header (a leading *. is a "
                           "wildcard)."),
        "rules": _list(rule, "Routing rules; default: one rule matching PathPrefix /."),
    })


def _http_route_status() -> Schema:
    parent = _obj("RouteParentStatus: the route's status as seen by one parent's controller.", {
        "parentRef": _parent_ref(),
        "controllerName": _str("The controller that wrote this entry."),
        "conditions": _CONDITIONS,
    }, ("parentRef", "controllerName"))
    return _obj("HTTPRouteStatus", {"parents": _list(parent, "Status per parent the route refers to.")}, ("parents",))


def _gateway_spec() -> Schema:
    tls = _obj("GatewayTLSConfig: TLS settings of a listener.", {
        "mode": _str("Terminate (default) or Passthrough."),
        "certificateRefs": _list(_reference("A Secret (by default) holding the certificate and key.", "namespace"),
                                 "Certificates for TLS termination."),
        "options": _map("Implementation-specific TLS options."),
    })
    allowed = _obj("AllowedRoutes: which routes may attach to the listener.", {
        "namespaces": _obj("Namespaces routes may come from (default: Same).", {
            "from": _str("All, Selector or Same."),
            "selector": _ref(f"{_META}LabelSelector", "Namespaces selected when from is Selector."),
        }),
        "kinds": _list(_obj("A route kind.", {"group": _GROUP, "kind": _KIND}, ("kind",)), "Route kinds allowed."),
    })
    listener = _obj("Listener: a port, protocol and (optional) hostname the Gateway accepts traffic on.", {
        "name": _str("Name of the listener, unique within the Gateway."),
        "hostname": _str("Hostname requests must match (a leading *. is a wildcard)."),
        "port": _PORT,
        "protocol": _str("HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed implementation-specific protocol."),
        "tls": tls,
        "allowedRoutes": allowed,
    }, ("name", "port", "protocol"))
    address = _obj("GatewaySpecAddress: a requested address.", {
        "type": _str("IPAddress (default), Hostname or an implementation-specific type."),
        "value": _str("The address.")})
    return _obj("GatewaySpec: the listeners of a Gateway and the GatewayClass that implements it.", {
        "gatewayClassName": _str("Name of the GatewayClass."),
        "listeners": _list(listener, "Listeners (1 to 64), names unique."),
        "addresses": _list(address, "Requested addresses."),
        "infrastructure": _obj("Infrastructure settings.", {
            "labels": _map("Labels for resources created for the Gateway."),
            "annotations": _map("Annotations for resources created for the Gateway."),
            "parametersRef": _obj("Implementation-specific parameters.", {"group": _GROUP, "kind": _KIND,
                                                                         "name": _NAME},
                                  ("group", "kind", "name")),
        }),
    }, ("gatewayClassName", "listeners"))


def _gateway_status() -> Schema:
    listener = _obj("ListenerStatus", {
        "name": _str("Name of the listener."),
        "supportedKinds": _list(_obj("A route kind.", {"group": _GROUP, "kind": _KIND}, ("kind",)),
                                "Route kinds the listener supports."),
        "attachedRoutes": _int("Number of routes attached to the listener."),
        "conditions": _CONDITIONS,
    }, ("name", "supportedKinds", "attachedRoutes", "conditions"))
    address = _obj("GatewayStatusAddress", {"type": _str("IPAddress, Hostname or another type."),
                                            "value": _str("The address.")}, ("value",))
    return _obj("GatewayStatus (default: Accepted and Programmed Unknown, reason Pending).", {
        "addresses": _list(address, "Addresses the Gateway is reachable at."),
        "conditions": _CONDITIONS,
        "listeners": _list(listener, "Status per listener."),
    })


def _gateway_api() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    schemas |= _kind(_GW, "v1", "GatewayClass", "GatewayClass: a class of Gateways, implemented by one controller.",
                     _obj("GatewayClassSpec", {
                         "controllerName": _str("Domain-prefixed path of the controller (immutable)."),
                         "parametersRef": _reference("Controller-specific parameters.", "namespace"),
                         "description": _str("Human-readable description."),
                     }, ("controllerName",)),
                     _obj("GatewayClassStatus (default: Accepted Unknown, reason Pending).",
                          {"conditions": _CONDITIONS}))
    schemas |= _kind(_GW, "v1", "Gateway", "Gateway: an instance of a traffic-handling infrastructure.",
                     _gateway_spec(), _gateway_status())
    schemas |= _kind(_GW, "v1", "HTTPRoute", "HTTPRoute: how HTTP requests from a listener reach backends.",
                     _http_route_spec(), _http_route_status())
    from_ = _obj("ReferenceGrantFrom: the namespace and kind of referring objects.",
                 {"group": _GROUP, "kind": _KIND, "namespace": _NAMESPACE}, ("group", "kind", "namespace"))
    to = _obj("ReferenceGrantTo: the kind (and optionally name) of referable objects in this namespace.",
              {"group": _GROUP, "kind": _KIND, "name": _NAME}, ("group", "kind"))
    schemas |= _kind(_GW, "v1beta1", "ReferenceGrant",
                     "ReferenceGrant: allows references from other namespaces to objects in this one.",
                     _obj("ReferenceGrantSpec", {"from": _list(from_, "Who may refer (1 to 16 entries)."),
                                                 "to": _list(to, "What may be referred to (1 to 16 entries).")},
                          ("from", "to")), None)
    return schemas


# ---- legacy Ingress ------------------------------------------------------------------------------------------------


def _legacy_ingress(shipped: dict[str, Schema], package: str, group: str) -> dict[str, Schema]:
    """`<package>.Ingress` in v1beta1 form, from the shipped networking/v1 schemas."""
    v1 = "io.k8s.api.networking.v1."

    def renamed(name: str, replace: dict[str, tuple[str, Schema]]) -> Schema:
        schema = copy.deepcopy(shipped[v1 + name])
        schema.pop("x-kubernetes-group-version-kind", None)
        props = schema.get("properties", {})
        for old, (new, value) in replace.items():
            props.pop(old, None)
            props[new] = value
        return schema

    backend = _obj("IngressBackend describes all endpoints for a given service and port.", {
        "serviceName": _str("Specifies the name of the referenced service."),
        "servicePort": {"x-kubernetes-int-or-string": True, "format": "int-or-string",
                        "description": "Specifies the port of the referenced service."},
        "resource": _ref("io.k8s.api.core.v1.TypedLocalObjectReference",
                         "Resource is an ObjectRef to another Kubernetes resource in the namespace of the Ingress "
                         "object."),
    })
    schemas = {
        f"{package}.IngressBackend": backend,
        f"{package}.HTTPIngressPath": renamed("HTTPIngressPath", {
            "backend": ("backend", _ref(f"{package}.IngressBackend", "Backend defines the referenced service "
                                        "endpoint to which the traffic will be forwarded to."))}),
        f"{package}.HTTPIngressRuleValue": renamed("HTTPIngressRuleValue", {
            "paths": ("paths", _list(_ref(f"{package}.HTTPIngressPath"), "A collection of paths that map "
                                     "requests to backends."))}),
        f"{package}.IngressRule": renamed("IngressRule", {"http": ("http", _ref(f"{package}.HTTPIngressRuleValue"))}),
        f"{package}.IngressSpec": renamed("IngressSpec", {
            "defaultBackend": ("backend", _ref(f"{package}.IngressBackend", "A default backend capable of "
                                               "servicing requests that don't match any rule.")),
            "rules": ("rules", _list(_ref(f"{package}.IngressRule"), "A list of host rules used to configure the "
                                     "Ingress."))}),
        f"{package}.Ingress": renamed("Ingress", {"spec": ("spec", _ref(f"{package}.IngressSpec", "Spec is the "
                                                                        "desired state of the Ingress."))}),
        f"{package}.IngressList": renamed("IngressList", {"items": ("items", _list(_ref(f"{package}.Ingress"),
                                                                                   "Items is the list of Ingress."))}),
    }
    schemas[f"{package}.Ingress"]["x-kubernetes-group-version-kind"] = _gvk(group, "v1beta1", "Ingress")
    schemas[f"{package}.IngressList"]["x-kubernetes-group-version-kind"] = _gvk(group, "v1beta1", "IngressList")
    return schemas


def extra_schemas(shipped: dict[str, Schema]) -> dict[str, Schema]:
    """The hand-written schemas, given the shipped ones (which the legacy Ingress is derived from)."""
    return {**_gateway_api(),
            **_legacy_ingress(shipped, "io.k8s.api.extensions.v1beta1", "extensions"),
            **_legacy_ingress(shipped, "io.k8s.api.networking.v1beta1", "networking.k8s.io")}
