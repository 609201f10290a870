"""The Gateway API kinds (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) with the real kubectl: apply (which,
for kinds kubectl has no Go types for, sends merge patches), get tables, describe, explain, patch, server-side
apply, status defaults, generation, 422s with field causes, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import Server, table, write

GW = "gateway.networking.k8s.io/v1"


def doc(kind: str, name: str, spec: dict[str, Any], api_version: str = GW) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


def gateway(name: str, class_name: str, port: int = 80) -> dict[str, Any]:
    return doc("Gateway", name, {"gatewayClassName": class_name,
                                 "listeners": [{"name": "http", "port": port, "protocol": "HTTP"}]})


def route(name: str, gateway_name: str, hostnames: list[str]) -> dict[str, Any]:
    return doc("HTTPRoute", name, {"parentRefs": [{"name": gateway_name}], "hostnames": hostnames,
                                   "rules": [{"backendRefs": [{"name": "kubia", "port": 80}]}]})


def get_json(server: Server, *args: str) -> dict[str, Any]:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def apply(server: Server, tmp_path: Path, ns: str, *docs: dict[str, Any]) -> str:
    path = write(tmp_path, "gateway-api.yaml", yaml.safe_dump_all(docs))
    return server.kubectl("apply", "-n", ns, "-f", str(path)).stdout


def test_apply_get_describe_patch_delete(server: Server, ns: str, tmp_path: Path) -> None:
    gc_name = f"svcnet-{ns[-6:]}"
    gc = doc("GatewayClass", gc_name, {"controllerName": "svcnet.io/gateway-controller"})
    out = apply(server, tmp_path, ns, gc, gateway("web", gc_name), route("kubia", "web", ["kubia.example.com"]))
    assert out.split("\n")[:3] == [f"gatewayclass.gateway.networking.k8s.io/{gc_name} created",
                                   "gateway.gateway.networking.k8s.io/web created",
                                   "httproute.gateway.networking.k8s.io/kubia created"], out

    # the CRDs' defaults, status included
    stored_gc = get_json(server, "gc", gc_name)
    assert stored_gc["status"]["conditions"] == [{"lastTransitionTime": "1970-01-01T00:00:00Z", "message":
                                                  "Waiting for controller", "reason": "Pending", "status": "Unknown",
                                                  "type": "Accepted"}]
    gw = get_json(server, "gtw", "web", "-n", ns, "--show-managed-fields")
    assert [c["type"] for c in gw["status"]["conditions"]] == ["Accepted", "Programmed"]
    assert gw["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    hr = get_json(server, "httproute", "kubia", "-n", ns)
    assert hr["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web"}]
    assert hr["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                    "backendRefs": [{"group": "", "kind": "Service", "name": "kubia", "port": 80,
                                                     "weight": 1}]}]
    assert hr["metadata"]["generation"] == 1

    # tables: the CRDs' printer columns
    header, rows = table(server.kubectl("get", "gatewayclass", gc_name).stdout)
    assert header == ["NAME", "CONTROLLER", "ACCEPTED", "AGE"] and rows[0][:3] == [gc_name,
                                                                                   "svcnet.io/gateway-controller",
                                                                                   "Unknown"]
    header, rows = table(server.kubectl("get", "gateway", "-n", ns).stdout)
    assert header == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert rows[0][0] == "web" and rows[0][1] == gc_name and "Unknown" in rows[0]
    header, rows = table(server.kubectl("get", "httproutes", "-n", ns).stdout)
    assert header == ["NAME", "HOSTNAMES", "AGE"] and rows[0][:2] == ["kubia", '["kubia.example.com"]']
    listed = server.kubectl("get", "gateway-api", "-n", ns).stdout
    assert "gateway.gateway.networking.k8s.io/web" in listed and "httproute.gateway.networking.k8s.io/kubia" in listed

    described = server.kubectl("describe", "gateway", "web", "-n", ns).stdout
    assert "Gateway Class Name:" in described and "Waiting for controller" in described, described

    # apply update: a merge patch (kubectl has no Go types for these kinds); the spec change bumps generation
    out = apply(server, tmp_path, ns, gc, gateway("web", gc_name), route("kubia", "web", ["kubia.example.org"]))
    assert "httproute.gateway.networking.k8s.io/kubia configured" in out, out
    hr = get_json(server, "httproute", "kubia", "-n", ns)
    assert hr["spec"]["hostnames"] == ["kubia.example.org"] and hr["metadata"]["generation"] == 2
    # the Gateway's patch re-sent its (atomic, defaulted) listeners unchanged: nothing was written
    assert get_json(server, "gateway", "web", "-n", ns, "--show-managed-fields") == \
        gw

    # edit-style patches: merge and JSON patch work, strategic merge patch is refused as for CRDs
    server.kubectl("patch", "gateway", "web", "-n", ns, "--type=merge", "-p",
                   '{"spec":{"listeners":[{"name":"http","port":8080,"protocol":"HTTP"}]}}')
    gw = get_json(server, "gateway", "web", "-n", ns)
    assert gw["spec"]["listeners"][0]["port"] == 8080 and gw["metadata"]["generation"] == 2
    server.kubectl("patch", "httproute", "kubia", "-n", ns, "--type=json", "-p",
                   '[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":5}]')
    assert get_json(server, "httproute", "kubia", "-n", ns)["spec"]["rules"][0]["backendRefs"][0]["weight"] == 5
    smp = server.kubectl("patch", "gateway", "web", "-n", ns, "-p", '{"metadata":{"labels":{"a":"b"}}}',
                         check=False)
    assert smp.rc == 1 and "application/strategic-merge-patch+json is not supported" in smp.stderr, smp

    # the status subresource: a controller's write is kept, a spec write through it is not
    status = {"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                         "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}
    server.kubectl("patch", "gatewayclass", gc_name, "--subresource=status", "--type=merge", "-p",
                   json.dumps(status))
    header, rows = table(server.kubectl("get", "gc", gc_name).stdout)
    assert rows[0][2] == "True"

    deleted = server.kubectl("delete", "httproute", "kubia", "-n", ns)
    assert deleted.stdout.strip() == 'httproute.gateway.networking.k8s.io "kubia" deleted'
    server.kubectl("delete", "gateway", "web", "-n", ns)
    server.kubectl("delete", "gatewayclass", gc_name)
    assert server.kubectl("get", "gc", gc_name, check=False).rc == 1


def test_server_side_apply_and_reference_grant(server: Server, ns: str, tmp_path: Path) -> None:
    grant = doc("ReferenceGrant", "allow-routes", {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "other"}],
        "to": [{"group": "", "kind": "Service"}]}, "gateway.networking.k8s.io/v1beta1")
    path = write(tmp_path, "ssa.yaml", yaml.safe_dump_all([grant, route("ssa", "web", ["a.example.com"])]))
    out = server.kubectl("apply", "--server-side", "-n", ns, "-f", str(path)).stdout
    assert "referencegrant.gateway.networking.k8s.io/allow-routes serverside-applied" in out, out
    header, rows = table(server.kubectl("get", "refgrant", "-n", ns).stdout)
    assert header == ["NAME", "AGE"] and rows[0][0] == "allow-routes"
    write(tmp_path, "ssa.yaml", yaml.safe_dump_all([grant, route("ssa", "web", ["b.example.com"])]))
    server.kubectl("apply", "--server-side", "-n", ns, "-f", str(path))
    hr = get_json(server, "httproute", "ssa", "-n", ns, "--show-managed-fields")
    assert hr["spec"]["hostnames"] == ["b.example.com"] and hr["metadata"]["generation"] == 2
    assert any(m["manager"] == "kubectl" and m["operation"] == "Apply" for m in hr["metadata"]["managedFields"])


def test_invalid_objects_are_422_with_causes(server: Server, ns: str, tmp_path: Path) -> None:
    bad_gateway = doc("Gateway", "bad", {"gatewayClassName": "x", "listeners": [
        {"name": "a", "port": 70000, "protocol": "HTTP"},
        {"name": "a", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Terminate"}}]})
    result = server.kubectl("create", "-n", ns, "-f", str(write(tmp_path, "bad.json", json.dumps(bad_gateway))),
                            check=False)
    assert result.rc == 1
    for expected in ('The Gateway "bad" is invalid',
                     "spec.listeners[0].port: Invalid value: 70000: spec.listeners[0].port in body should be less "
                     "than or equal to 65535",
                     'spec.listeners[1].tls: Invalid value: "object": certificateRefs or options must be specified '
                     "when mode is Terminate",
                     'spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway'):
        assert expected in result.stderr, result

    bad_route = doc("HTTPRoute", "bad", {"hostnames": ["*.ok.example.com", "bad_host"], "rules": [{
        "matches": [{"path": {"type": "PathPrefix", "value": "no-slash"}}],
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}],
        "backendRefs": [{"name": "svc", "weight": 2_000_000}]}]})
    response = server.http("POST", f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes", bad_route)
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "HTTPRoute"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"spec.hostnames[1]", "spec.rules[0].matches[0].path",
                      "spec.rules[0].filters[0].requestRedirect.statusCode", "spec.rules[0].backendRefs[0]",
                      "spec.rules[0].backendRefs[0].weight", "spec.rules[0]"}, status

    unknown = doc("GatewayClass", f"unknown-{ns[-6:]}", {"controllerName": "svcnet.io/x", "bogus": 1})
    result = server.kubectl("apply", "-f", str(write(tmp_path, "unknown.json", json.dumps(unknown))), check=False)
    assert result.rc == 1 and 'unknown field "spec.bogus"' in result.stderr, result


def test_discovery_and_explain(server: Server) -> None:
    resources = server.kubectl("api-resources", "--api-group=gateway.networking.k8s.io").stdout
    header, rows = table(resources)
    assert sorted(row[0] for row in rows) == ["gatewayclasses", "gateways", "httproutes", "referencegrants"]
    assert ["gatewayclasses", "gc", "gateway.networking.k8s.io/v1", "false", "GatewayClass"] in rows
    explain = server.kubectl("explain", "gateway.spec.listeners")
    assert "protocol" in explain.stdout and "allowedRoutes" in explain.stdout, explain
