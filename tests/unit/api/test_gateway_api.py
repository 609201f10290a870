"""The Gateway API kinds: the CRDs' defaults, validation with field causes, printer columns, OpenAPI."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.api import defaults, openapi, resources, schema, tables, validation

NET = validation.NetworkConfig()
PENDING = {"lastTransitionTime": "1970-01-01T00:00:00Z", "message": "Waiting for controller", "reason": "Pending",
           "status": "Unknown"}


def obj(kind: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    version = "v1beta1" if kind == "ReferenceGrant" else "v1"
    meta = {"name": "x"} if kind == "GatewayClass" else {"name": "x", "namespace": "default"}
    return {"apiVersion": f"gateway.networking.k8s.io/{version}", "kind": kind, "metadata": meta, "spec": spec,
            **extra}


def listener(**fields: Any) -> dict[str, Any]:
    return {"name": "http", "port": 80, "protocol": "HTTP", **fields}


# ---- defaults ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "spec", "expected_spec", "expected_status"), [
    pytest.param("GatewayClass", {"controllerName": "svcnet.io/gw"}, {"controllerName": "svcnet.io/gw"},
                 {"conditions": [{**PENDING, "type": "Accepted"}]}, id="gatewayclass-status"),
    pytest.param("Gateway", {"gatewayClassName": "c", "listeners": [listener(), listener(
        name="https", port=443, protocol="HTTPS", tls={"certificateRefs": [{"name": "cert"}]})]},
        {"gatewayClassName": "c", "listeners": [
            listener(allowedRoutes={"namespaces": {"from": "Same"}}),
            listener(name="https", port=443, protocol="HTTPS", allowedRoutes={"namespaces": {"from": "Same"}},
                     tls={"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "cert"}]})]},
        {"conditions": [{**PENDING, "type": "Accepted"}, {**PENDING, "type": "Programmed"}]},
        id="gateway-listeners-tls-status"),
    pytest.param("HTTPRoute", {}, {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}, None,
                 id="httproute-empty-spec-no-status"),
    pytest.param("HTTPRoute", {"parentRefs": [{"name": "gw"}], "rules": [{
        "matches": [{"headers": [{"name": "x", "value": "1"}], "queryParams": [{"name": "q", "value": "2"}]}],
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}],
        "backendRefs": [{"name": "svc", "port": 80}]}]},
        {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}], "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"name": "x", "value": "1", "type": "Exact"}],
                         "queryParams": [{"name": "q", "value": "2", "type": "Exact"}]}],
            "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 302}}],
            "backendRefs": [{"group": "", "kind": "Service", "name": "svc", "port": 80, "weight": 1}]}]},
        None, id="httproute-refs-matches-filters"),
])
def test_defaults(kind: str, spec: dict[str, Any], expected_spec: dict[str, Any],
                  expected_status: dict[str, Any] | None) -> None:
    defaulted = defaults.apply_defaults(kind, obj(kind, spec))
    assert defaulted["spec"] == expected_spec
    assert defaulted.get("status") == expected_status
    assert defaults.apply_defaults(kind, defaulted) == defaulted  # idempotent


def test_status_written_by_a_controller_is_kept() -> None:
    written = {"conditions": [{**PENDING, "type": "Accepted", "status": "True", "reason": "Accepted"}]}
    gc = defaults.apply_defaults("GatewayClass", obj("GatewayClass", {"controllerName": "a.io/b"}, status=written))
    assert gc["status"] == written


# ---- validation --------------------------------------------------------------------------------------------------

def causes(kind: str, spec: dict[str, Any], old_spec: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    new = defaults.apply_defaults(kind, obj(kind, spec))
    old = defaults.apply_defaults(kind, obj(kind, old_spec)) if old_spec is not None else None
    return [(c.field, c.message) for c in validation.validate(kind, new, old, NET)]


GATEWAY_CASES = [
    pytest.param({"gatewayClassName": "c", "listeners": [listener()]}, [], id="valid"),
    pytest.param({}, [("spec.gatewayClassName", "Required value"), ("spec.listeners", "Required value")],
                 id="required"),
    pytest.param({"gatewayClassName": "c", "listeners": [{}]}, [
        ("spec.listeners[0].name", "Required value"), ("spec.listeners[0].port", "Required value"),
        ("spec.listeners[0].protocol", "Required value")], id="listener-required"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(port=0)]}, [
        ("spec.listeners[0].port", "Invalid value: 0: spec.listeners[0].port in body should be greater than or "
                                   "equal to 1")], id="port-range"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(protocol="SCTP")]}, [
        ("spec.listeners[0].protocol", 'Unsupported value: "SCTP": supported values: "HTTP", "HTTPS", "TLS", "TCP", '
                                       '"UDP"')], id="protocol"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(protocol="example.com/quic")]}, [],
                 id="domain-prefixed-protocol"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(hostname="*.example.com"),
                                                         listener(name="b", hostname="a.*.com")]}, [
        ("spec.listeners[1].hostname", "Invalid value: \"a.*.com\": spec.listeners[1].hostname in body should match "
                                       "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")],
                 id="wildcard-only-as-prefix"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(), listener(port=81)]}, [
        ("spec.listeners", 'Invalid value: "array": Listener name must be unique within the Gateway')],
                 id="unique-names"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(protocol="HTTPS", port=443)]}, [
        ("spec.listeners[0].tls", "Required value: tls must be specified for protocol HTTPS")], id="https-needs-tls"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(protocol="HTTPS", port=443, tls={})]}, [
        ("spec.listeners[0].tls", 'Invalid value: "object": certificateRefs or options must be specified when mode '
                                  "is Terminate")], id="terminate-needs-certificates"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(protocol="TLS", port=443,
                                                                  tls={"mode": "Passthrough"})]}, [],
                 id="tls-passthrough"),
    pytest.param({"gatewayClassName": "c", "listeners": [listener(tls={"certificateRefs": [{"name": "c"}]})]}, [
        ("spec.listeners", "Invalid value: \"array\": tls must not be specified for protocols ['HTTP', 'TCP', "
                           "'UDP']")], id="no-tls-on-http"),
]


@pytest.mark.parametrize(("spec", "expected"), GATEWAY_CASES)
def test_gateway_validation(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("Gateway", spec) == expected


def rule(**fields: Any) -> dict[str, Any]:
    return {"backendRefs": [{"name": "svc", "port": 80}], **fields}


ROUTE_CASES = [
    pytest.param({"hostnames": ["a.example.com", "*.b.example.com"], "rules": [rule()]}, [], id="valid"),
    pytest.param({"rules": [{"matches": [{"path": {"type": "Exact", "value": "x"}}]}]}, [
        ("spec.rules[0].matches[0].path", "Invalid value: \"object\": value must be an absolute path and start with "
                                          "'/' when type one of ['Exact', 'PathPrefix']")], id="absolute-path"),
    pytest.param({"rules": [{"matches": [{"path": {"type": "RegularExpression", "value": ".*"}}]}]}, [],
                 id="regex-path-any-value"),
    pytest.param({"rules": [{"backendRefs": [{"name": "svc", "port": 80, "weight": 1_000_001}]}]}, [
        ("spec.rules[0].backendRefs[0].weight", "Invalid value: 1000001: spec.rules[0].backendRefs[0].weight in body "
                                                "should be less than or equal to 1000000")], id="weight"),
    pytest.param({"rules": [{"backendRefs": [{"name": "svc"}]}]}, [
        ("spec.rules[0].backendRefs[0]", 'Invalid value: "object": Must have port for Service reference')],
                 id="service-port-required"),
    pytest.param({"rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]}]}, [
        ("spec.rules[0].filters[0].requestRedirect.statusCode", 'Unsupported value: 307: supported values: "301", '
                                                                '"302"')], id="redirect-code"),
    pytest.param({"rules": [{"filters": [{"type": "URLRewrite"}]}]}, [
        ("spec.rules[0].filters[0]", 'Invalid value: "object": filter.urlRewrite must be specified for URLRewrite '
                                     "filter.type")], id="filter-config-missing"),
    pytest.param({"rules": [{"filters": [{"type": "URLRewrite", "requestRedirect": {}, "urlRewrite": {}}]}]}, [
        ("spec.rules[0].filters[0]", 'Invalid value: "object": filter.requestRedirect must be nil if the '
                                     "filter.type is not RequestRedirect")], id="filter-config-mismatched"),
    pytest.param({"rules": [rule(filters=[{"type": "RequestRedirect", "requestRedirect": {}}])]}, [
        ("spec.rules[0]", 'Invalid value: "object": RequestRedirect filter must not be used together with '
                          "backendRefs")], id="redirect-and-backends"),
    pytest.param({"rules": [{"filters": [{"type": "Bogus"}]}]}, [
        ("spec.rules[0].filters[0].type", 'Unsupported value: "Bogus": supported values: "RequestHeaderModifier", '
                                          '"ResponseHeaderModifier", "RequestMirror", "RequestRedirect", '
                                          '"URLRewrite", "ExtensionRef"')], id="filter-type"),
    pytest.param({"parentRefs": [{}]}, [("spec.parentRefs[0].name", "Required value")], id="parent-name"),
]


@pytest.mark.parametrize(("spec", "expected"), ROUTE_CASES)
def test_http_route_validation(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("HTTPRoute", spec) == expected


def test_gateway_class_and_reference_grant_validation() -> None:
    assert causes("GatewayClass", {}) == [("spec.controllerName", "Required value")]
    assert causes("GatewayClass", {"controllerName": "a.io/b"}, {"controllerName": "a.io/c"}) == [
        ("spec.controllerName", 'Invalid value: "a.io/b": Value is immutable')]
    assert causes("ReferenceGrant", {"from": [{"group": "", "kind": "HTTPRoute", "namespace": "a"}],
                                     "to": [{"group": "", "kind": "Service"}]}) == []
    assert causes("ReferenceGrant", {"from": [], "to": [{"kind": "Service"}]}) == [
        ("spec.from", "Invalid value: 0: spec.from in body should have at least 1 items"),
        ("spec.to[0].group", "Required value")]


# ---- tables and OpenAPI ------------------------------------------------------------------------------------------

NOW = datetime.datetime(2025, 1, 1, 0, 10, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("kind", "spec", "status", "header", "cells"), [
    pytest.param("GatewayClass", {"controllerName": "a.io/b"}, None,
                 ["Name", "Controller", "Accepted", "Age", "Description"], ["x", "a.io/b", "Unknown", "10m", ""],
                 id="gatewayclass"),
    pytest.param("Gateway", {"gatewayClassName": "c", "listeners": []},
                 {"addresses": [{"value": "127.0.0.5"}], "conditions": [{"type": "Programmed", "status": "True"}]},
                 ["Name", "Class", "Address", "Programmed", "Age"], ["x", "c", "127.0.0.5", "True", "10m"],
                 id="gateway"),
    pytest.param("HTTPRoute", {"hostnames": ["a.example.com", "b.example.com"]}, None, ["Name", "Hostnames", "Age"],
                 ["x", '["a.example.com","b.example.com"]', "10m"], id="httproute"),
    pytest.param("ReferenceGrant", {}, None, ["Name", "Age"], ["x", "10m"], id="referencegrant"),
])
def test_tables(kind: str, spec: dict[str, Any], status: dict[str, Any] | None, header: list[str],
                cells: list[Any]) -> None:
    item = defaults.apply_defaults(kind, obj(kind, spec, **({"status": status} if status else {})))
    item["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    table = tables.to_table(kind, [item], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == header
    assert table["rows"][0]["cells"] == cells


@pytest.mark.parametrize("info", resources.GATEWAY_API, ids=[r.kind for r in resources.GATEWAY_API])
def test_openapi_has_schema_and_no_strategic_merge_patch(info: resources.ResourceInfo) -> None:
    doc = openapi.openapi_v3_document(info.group, info.version)
    name = openapi.schema_name(info.group, info.version, info.kind)
    assert name is not None and name in doc["components"]["schemas"]
    item = f"/apis/{info.group}/{info.version}/" + ("namespaces/{namespace}/" if info.namespaced else "") + \
        f"{info.plural}/{{name}}"
    patch_types = set(doc["paths"][item]["patch"]["requestBody"]["content"])
    assert "application/merge-patch+json" in patch_types
    assert "application/strategic-merge-patch+json" not in patch_types


def test_schema_check_knows_gateway_fields() -> None:
    gw = obj("Gateway", {"gatewayClassName": "c", "listeners": [listener(bogus=1, port="80")]})
    unknown, mismatched = schema.check("Gateway", "gateway.networking.k8s.io/v1", gw)
    assert unknown == ["spec.listeners[0].bogus"]
    assert mismatched == ["json: cannot unmarshal string into Go struct field Gateway.spec.listeners[0].port of "
                          "type integer"]
