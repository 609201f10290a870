"""Errors as kube-apiserver reports them, over HTTP: field causes for invalid objects (a table of manifests) and a
4xx `Status` — never a 500 or a traceback — for malformed requests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in (dicts merge, everything else replaces; None deletes)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def svc(spec: dict[str, Any] | None = None, name: str = "bad-svc", **meta: Any) -> dict[str, Any]:
    base = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
    return merged(base, {"spec": spec or {}, "metadata": meta})


def deploy(spec: dict[str, Any]) -> dict[str, Any]:
    base = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad-deploy"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.17.1"}]}}}}
    return merged(base, {"spec": spec})


def pod_spec(**changes: Any) -> dict[str, Any]:
    return merged({"containers": [{"name": "nginx", "image": "nginx:1.17.1"}]}, changes)


def container(**changes: Any) -> dict[str, Any]:
    return merged({"name": "nginx", "image": "nginx:1.17.1"}, changes)


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad-pod"}, "spec": spec}


def ingress(path: dict[str, Any] | None = None, host: str = "example.com") -> dict[str, Any]:
    base_path = {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}
    the_path = {k: v for k, v in merged(base_path, path or {}).items()}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad-ing"},
            "spec": {"rules": [{"host": host, "http": {"paths": [the_path]}}]}}


def slice_(**changes: Any) -> dict[str, Any]:
    base = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "bad-slice", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    return merged(base, changes)


CLUSTER_IP_FIELDS = ("spec.clusterIP", "spec.clusterIPs", "spec.clusterIPs[0]")
PATH0 = "spec.rules[0].http.paths[0]"
C0 = "spec.template.spec.containers[0]"

INVALID = [
    # --- Service ports
    pytest.param(svc({"ports": [{"port": 0}]}), ("spec.ports[0].port",), id="svc-port-zero"),
    pytest.param(svc({"ports": [{"port": 70000}]}), ("spec.ports[0].port",), id="svc-port-too-big"),
    pytest.param(svc({"ports": [{"port": 80, "targetPort": -1}]}), ("spec.ports[0].targetPort",),
                 id="svc-target-port-negative"),  # 0 means unset: kube defaults it to the port
    pytest.param(svc({"ports": [{"port": 80, "targetPort": 70000}]}), ("spec.ports[0].targetPort",),
                 id="svc-target-port-too-big"),
    pytest.param(svc({"ports": [{"port": 80, "targetPort": "Bad_Name"}]}), ("spec.ports[0].targetPort",),
                 id="svc-target-port-bad-name"),
    pytest.param(svc({"ports": [{"port": 80, "protocol": "ICMP"}]}), ("spec.ports[0].protocol",),
                 id="svc-protocol-unsupported"),
    pytest.param(svc({"ports": []}), ("spec.ports",), id="svc-no-ports"),
    pytest.param(svc({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}), ("spec.ports[1]",),
                 id="svc-duplicate-port"),
    pytest.param(svc({"ports": [{"port": 80}, {"port": 81}]}), ("spec.ports[0].name", "spec.ports[1].name"),
                 id="svc-multiple-ports-unnamed"),
    pytest.param(svc({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}), ("spec.ports[1].name",),
                 id="svc-duplicate-port-name"),
    pytest.param(svc({"ports": [{"name": "Http_Port", "port": 80}]}), ("spec.ports[0].name",),
                 id="svc-port-name-invalid"),
    # --- Service type, addresses, policies
    pytest.param(svc({"type": "Foo"}), ("spec.type",), id="svc-type-unsupported"),
    pytest.param(svc({"clusterIP": "abc"}), CLUSTER_IP_FIELDS, id="svc-cluster-ip-garbage"),
    pytest.param(svc({"clusterIP": "192.168.1.1"}), CLUSTER_IP_FIELDS, id="svc-cluster-ip-out-of-range"),
    pytest.param(svc({"type": "NodePort", "clusterIP": "None"}), CLUSTER_IP_FIELDS, id="svc-headless-nodeport"),
    pytest.param(svc({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}), ("spec.ports[0].nodePort",),
                 id="svc-node-port-out-of-range"),
    pytest.param(svc({"ports": [{"port": 80, "nodePort": 30080}]}), ("spec.ports[0].nodePort",),
                 id="svc-node-port-on-cluster-ip"),
    pytest.param(svc({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30100},
                                                    {"name": "b", "port": 81, "nodePort": 30100}]}),
                 ("spec.ports[1].nodePort",), id="svc-duplicate-node-port"),
    pytest.param(svc({"type": "ExternalName", "selector": None, "ports": None}), ("spec.externalName",),
                 id="svc-external-name-missing"),
    pytest.param(svc({"type": "ExternalName", "externalName": "not a dns name!"}), ("spec.externalName",),
                 id="svc-external-name-invalid"),
    pytest.param(svc({"sessionAffinity": "Sticky"}), ("spec.sessionAffinity",), id="svc-affinity-unsupported"),
    pytest.param(svc({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}),
                 ("spec.sessionAffinityConfig.clientIP.timeoutSeconds",), id="svc-affinity-timeout-zero"),
    pytest.param(svc({"selector": {"app": "bad value!"}}), ("spec.selector",), id="svc-selector-value-invalid"),
    pytest.param(svc({"type": "NodePort", "externalTrafficPolicy": "Foo"}), ("spec.externalTrafficPolicy",),
                 id="svc-external-traffic-policy-unsupported"),
    pytest.param(svc({"internalTrafficPolicy": "Foo"}), ("spec.internalTrafficPolicy",),
                 id="svc-internal-traffic-policy-unsupported"),
    pytest.param(svc({"ipFamilyPolicy": "Foo"}), ("spec.ipFamilyPolicy",), id="svc-ip-family-policy-unsupported"),
    pytest.param(svc({"externalIPs": ["bad"]}), ("spec.externalIPs[0]",), id="svc-external-ip-invalid"),
    pytest.param(svc({"type": "LoadBalancer", "loadBalancerSourceRanges": ["bad"]}),
                 ("spec.loadBalancerSourceRanges[0]", "spec.LoadBalancerSourceRanges[0]"),
                 id="svc-lb-source-range-invalid"),
    # --- metadata
    pytest.param(svc(name="Bad_Name"), ("metadata.name",), id="svc-name-invalid"),
    pytest.param(svc(name="a" * 64), ("metadata.name",), id="svc-name-too-long"),
    pytest.param(svc(name="1svc"), ("metadata.name",), id="svc-name-starts-with-digit"),
    pytest.param(svc(labels={"bad key": "x"}), ("metadata.labels",), id="svc-label-key-invalid"),
    pytest.param(svc(labels={"app": "x" * 64}), ("metadata.labels",), id="svc-label-value-too-long"),
    pytest.param(svc(annotations={"bad key!": "x"}), ("metadata.annotations",), id="svc-annotation-key-invalid"),
    # --- Deployment
    pytest.param(deploy({"replicas": -1}), ("spec.replicas",), id="deploy-replicas-negative"),
    pytest.param(deploy({"template": {"metadata": {"labels": {"app": "b"}}}}), ("spec.template.metadata.labels",),
                 id="deploy-selector-mismatch"),
    pytest.param(deploy({"selector": None}), ("spec.selector",), id="deploy-selector-missing"),
    pytest.param(deploy({"template": {"spec": pod_spec(containers=[container(image=None)])}}), (f"{C0}.image",),
                 id="deploy-image-missing"),
    pytest.param(deploy({"template": {"spec": pod_spec(containers=[container(name="Nginx_1")])}}),
                 (f"{C0}.name",), id="deploy-container-name-invalid"),
    pytest.param(deploy({"template": {"spec": pod_spec(containers=[container(ports=[{"containerPort": 0}])])}}),
                 (f"{C0}.ports[0].containerPort",), id="deploy-container-port-zero"),
    pytest.param(deploy({"template": {"spec": pod_spec(containers=[])}}), ("spec.template.spec.containers",),
                 id="deploy-no-containers"),
    pytest.param(deploy({"template": {"spec": pod_spec(containers=[container(), container()])}}),
                 ("spec.template.spec.containers[1].name",), id="deploy-duplicate-container-names"),
    pytest.param(deploy({"template": {"spec": pod_spec(restartPolicy="Never")}}),
                 ("spec.template.spec.restartPolicy",), id="deploy-restart-policy-never"),
    # --- Pod
    pytest.param(pod(pod_spec(containers=[])), ("spec.containers",), id="pod-no-containers"),
    pytest.param(pod(pod_spec(containers=[container(name=None)])), ("spec.containers[0].name",),
                 id="pod-container-name-missing"),
    pytest.param(pod(pod_spec(containers=[container(imagePullPolicy="Sometimes")])),
                 ("spec.containers[0].imagePullPolicy",), id="pod-pull-policy-unsupported"),
    pytest.param(pod(pod_spec(restartPolicy="Sometimes")), ("spec.restartPolicy",), id="pod-restart-policy"),
    pytest.param(pod(pod_spec(containers=[container(env=[{"name": "A=B", "value": "x"}])])),
                 ("spec.containers[0].env[0].name",), id="pod-env-name-invalid"),
    # --- ConfigMap, Namespace
    pytest.param({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"bad key!": "x"}},
                 ("data[bad key!]",), id="configmap-key-invalid"),
    pytest.param({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}, ("metadata.name",),
                 id="configmap-name-invalid"),
    pytest.param({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad_NS"}}, ("metadata.name",),
                 id="namespace-name-invalid"),
    # --- EndpointSlice
    pytest.param(slice_(addressType="Foo"), ("addressType",), id="slice-address-type-unsupported"),
    pytest.param(slice_(endpoints=[{"addresses": []}]), ("endpoints[0].addresses",), id="slice-no-addresses"),
    # --- Ingress
    pytest.param(ingress({"pathType": None}), (f"{PATH0}.pathType",), id="ingress-path-type-missing"),
    pytest.param(ingress({"backend": {"service": None}}), (f"{PATH0}.backend",), id="ingress-backend-missing"),
    pytest.param(ingress({"path": "foo"}), (f"{PATH0}.path",), id="ingress-path-relative"),
    pytest.param(ingress(host="1.2.3.4"), ("spec.rules[0].host",), id="ingress-host-is-ip"),
    pytest.param(ingress({"backend": {"service": {"port": {"number": None}}}}),
                 (f"{PATH0}.backend", f"{PATH0}.backend.service.port", f"{PATH0}.backend.service.port.name",
                  f"{PATH0}.backend.service.port.number"), id="ingress-service-port-missing"),
]

COLLECTIONS = {
    "Service": "/api/v1/namespaces/{ns}/services",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Namespace": "/api/v1/namespaces",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "EndpointSlice": "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
}


@pytest.fixture(scope="module")
def errors_ns(server: Server) -> str:
    server.create_namespace("api-errors")
    return "api-errors"


def assert_status(response: requests.Response, low: int = 400, high: int = 499) -> dict[str, Any]:
    """A Kubernetes Status error: 4xx (by default), a JSON Status body, no traceback."""
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:2000]
    assert low <= response.status_code <= high, f"{response.status_code}: {response.text[:500]}"
    status = response.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1", status
    assert status["status"] == "Failure" and status["code"] == response.status_code, status
    assert status["message"] and status["reason"], status
    return status


@pytest.mark.parametrize(("obj", "fields"), INVALID)
def test_invalid_object_is_422_naming_the_field(server: Server, errors_ns: str, obj: dict[str, Any],
                                                fields: tuple[str, ...]) -> None:
    path = COLLECTIONS[obj["kind"]].format(ns=errors_ns)
    response = server.http("POST", path + "?fieldValidation=Strict", obj)
    if response.status_code == 201:  # keep the table independent: remove what should not exist
        server.http("DELETE", f"{path}/{obj['metadata']['name']}")
    status = assert_status(response, 422, 422)
    assert status["reason"] == "Invalid"
    name = obj["metadata"]["name"]
    group = obj["apiVersion"].rpartition("/")[0]
    qualified = f'{obj["kind"]}.{group}' if group else obj["kind"]  # kube: Deployment.apps "x" is invalid
    assert status["message"].startswith(f'{qualified} "{name}" is invalid: '), status["message"]
    details = status["details"]
    assert details["name"] == name and details["kind"] == obj["kind"]
    causes = details.get("causes") or []
    assert any(c.get("field") in fields for c in causes), f"expected one of {fields}, got {causes}"
    for cause in causes:
        assert cause["reason"].startswith("FieldValue") and cause["message"], cause
        assert f"{cause['field']}: {cause['message']}" in status["message"]


def test_table_has_at_least_30_cases() -> None:
    assert len(INVALID) >= 30


def test_invalid_update_is_422_and_changes_nothing(server: Server, errors_ns: str) -> None:
    path = f"/api/v1/namespaces/{errors_ns}/services"
    created = server.http("POST", path, svc(name="valid"))
    assert created.status_code == 201, created.text
    obj = created.json()
    obj["spec"]["ports"][0]["port"] = 0
    status = assert_status(server.http("PUT", f"{path}/valid", obj), 422, 422)
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.ports[0].port"]
    # clusterIP is immutable
    obj = server.http("GET", f"{path}/valid").json()
    obj["spec"]["clusterIP"] = obj["spec"]["clusterIPs"][0] = "10.100.100.100"
    status = assert_status(server.http("PUT", f"{path}/valid", obj), 422, 422)
    assert {c["field"] for c in status["details"]["causes"]} & set(CLUSTER_IP_FIELDS), status
    after = server.http("GET", f"{path}/valid").json()
    assert after["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


def test_duplicate_create_is_409_already_exists(server: Server, errors_ns: str) -> None:
    path = f"/api/v1/namespaces/{errors_ns}/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"}}
    assert server.http("POST", path, cm).status_code == 201
    status = assert_status(server.http("POST", path, cm), 409, 409)
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'
    assert status["details"] == {"name": "twice", "kind": "configmaps"}


@pytest.mark.parametrize("validation", ["Warn", "Ignore"])
def test_unknown_fields_are_dropped_not_stored(server: Server, errors_ns: str, validation: str) -> None:
    """kube's decoder drops unknown fields; Warn adds a warning, Strict (tested elsewhere) rejects."""
    name = f"unknown-{validation.lower()}"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "bogus": 1}, "data": {"k": "v"},
          "spec": {"x": 1}}
    response = server.http("POST", f"/api/v1/namespaces/{errors_ns}/configmaps?fieldValidation={validation}", cm)
    assert response.status_code == 201, response.text
    warning = response.headers.get("Warning", "")
    if validation == "Warn":
        assert 'unknown field \\"spec\\"' in warning or 'unknown field "spec"' in warning, warning
    for obj in (response.json(), server.http("GET", f"/api/v1/namespaces/{errors_ns}/configmaps/{name}").json()):
        assert "spec" not in obj and "bogus" not in obj["metadata"], obj
        assert obj["data"] == {"k": "v"}


def test_stale_update_is_409_conflict(server: Server, errors_ns: str) -> None:
    path = f"/api/v1/namespaces/{errors_ns}/configmaps"
    first = server.http("POST", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stale"}})
    obj = first.json()
    obj["data"] = {"a": "1"}
    assert server.http("PUT", f"{path}/stale", obj).status_code == 200
    obj["data"] = {"a": "2"}
    status = assert_status(server.http("PUT", f"{path}/stale", obj), 409, 409)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _alias_bomb(levels: int) -> str:
    """A tiny YAML document whose aliases expand to 10**levels strings (kube's YAML decoder refuses
    "excessive aliasing"; expanding it blindly turns 450 bytes into megabytes, or gigabytes at 8 levels)."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: bomb",
             "x0: &x0 [" + ",".join(['"aaaaaaaaaa"'] * 10) + "]"]
    lines += [f"x{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


MB5 = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
                  "data": {"big": "x" * (5 * 1024 * 1024)}})

MALFORMED = [
    pytest.param("POST", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ', "application/json",
                 id="malformed-json"),
    pytest.param("POST", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n", "application/yaml",
                 id="malformed-yaml"),
    pytest.param("POST", "apiVersion: v1\n  kind: ConfigMap\n bad-indent", "application/yaml",
                 id="malformed-yaml-indent"),
    pytest.param("POST", MB5, "application/json", id="body-5mb"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ct"}}', "text/plain",
                 id="wrong-content-type"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ct"}}',
                 "application/x-www-form-urlencoded", id="form-content-type"),
    pytest.param("POST", '[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"arr"}}]', "application/json",
                 id="json-array"),
    pytest.param("POST", "- a\n- b\n", "application/yaml", id="yaml-list"),
    pytest.param("POST", '"just a string"', "application/json", id="json-string"),
    pytest.param("POST", "null", "application/json", id="json-null"),
    pytest.param("POST", "42", "application/json", id="json-number"),
    pytest.param("POST", "", "application/json", id="empty-body"),
    pytest.param("POST", _nested(100_000), "application/json", id="nested-array-100k"),
    pytest.param("POST", _nested_object(50_000), "application/json", id="nested-object-50k"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":'
                 + _nested_object(900) + "}", "application/json", id="nested-900-in-data"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep2"},"spec":'
                 + _nested_object(900) + "}", "application/json", id="nested-900-unknown-field"),
    pytest.param("POST", "a: " + "[" * 5000 + "]" * 5000 + "\n", "application/yaml", id="nested-yaml-5000"),
    pytest.param("POST", b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"\xff\xfe"}}',
                 "application/json", id="invalid-utf8"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"Service","metadata":{"name":"kind-mismatch"}}',
                 "application/json", id="kind-mismatch"),
    pytest.param("POST", '{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"version-mismatch"}}',
                 "application/json", id="api-version-mismatch"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":"not-an-object"}', "application/json",
                 id="metadata-not-object"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":"str"}',
                 "application/json", id="data-wrong-type"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":[1]}}',
                 "application/json", id="labels-wrong-type"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":7}}', "application/json",
                 id="name-wrong-type"),
    pytest.param("POST", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"5"}}',
                 "application/json", id="create-with-resource-version"),
    pytest.param("POST", b"\x00\x01\x02binary", "application/vnd.kubernetes.protobuf", id="garbage-protobuf"),
    pytest.param("POST", _alias_bomb(6), "application/yaml", id="yaml-alias-bomb"),
]


@pytest.mark.parametrize(("method", "body", "content_type"), MALFORMED)
def test_malformed_request_is_a_4xx_status(server: Server, errors_ns: str, method: str, body: str | bytes,
                                           content_type: str) -> None:
    path = f"/api/v1/namespaces/{errors_ns}/configmaps"
    try:
        response = server.http(method, path, data=body, headers={"Content-Type": content_type})
    except requests.ConnectionError as exc:  # the server may close the connection on a huge body...
        assert len(body) > 3 * 1024 * 1024, f"connection dropped: {exc}"
        assert server.http("GET", "/readyz").status_code == 200  # ...as kube may; it must keep serving
        return
    assert_status(response)
    if len(body) > 3 * 1024 * 1024:
        assert response.status_code == 413
    if content_type in ("text/plain", "application/x-www-form-urlencoded"):
        assert response.status_code == 415
    assert server.http("GET", "/readyz").status_code == 200


PATCHES = [
    pytest.param("application/json-patch+json", '{"op":"add"}', id="json-patch-not-a-list"),
    pytest.param("application/json-patch+json", '[{"op":"frobnicate","path":"/data"}]', id="json-patch-bad-op"),
    pytest.param("application/json-patch+json", '[{"op":"remove","path":"/data/missing"}]',
                 id="json-patch-missing-path"),
    pytest.param("application/json-patch+json", "[{", id="json-patch-malformed"),
    pytest.param("application/merge-patch+json", "{", id="merge-patch-malformed"),
    pytest.param("application/merge-patch+json", "[]", id="merge-patch-array"),
    pytest.param("application/strategic-merge-patch+json", "{", id="strategic-patch-malformed"),
    pytest.param("application/strategic-merge-patch+json", '{"data":{"$patch":"frobnicate"}}',
                 id="strategic-patch-bad-directive"),
    pytest.param("application/strategic-merge-patch+json", '{"metadata":{"name":"other"}}', id="patch-rename"),
    pytest.param("application/apply-patch+yaml", "a: [b", id="apply-malformed"),
    pytest.param("application/json", '{"data":{"a":"b"}}', id="patch-plain-json-content-type"),
    pytest.param("text/plain", '{"data":{"a":"b"}}', id="patch-text-plain"),
    pytest.param("application/merge-patch+json", _nested_object(50_000), id="merge-patch-deep"),
    pytest.param("application/strategic-merge-patch+json", '{"data":' + _nested_object(900) + "}",
                 id="strategic-patch-deep-900"),
]


@pytest.mark.parametrize(("content_type", "body"), PATCHES)
def test_bad_patch_is_a_4xx_status(server: Server, errors_ns: str, content_type: str, body: str) -> None:
    path = f"/api/v1/namespaces/{errors_ns}/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "patch-target"}, "data": {"k": "v"}}
    created = server.http("POST", path, cm)
    assert created.status_code in (201, 409), created.text
    before = server.http("GET", f"{path}/patch-target").json()
    query = "?fieldManager=e2e" if content_type == "application/apply-patch+yaml" else ""
    response = server.http("PATCH", f"{path}/patch-target{query}", data=body,
                           headers={"Content-Type": content_type})
    assert_status(response)
    if content_type in ("application/json", "text/plain"):
        assert response.status_code == 415
    after = server.http("GET", f"{path}/patch-target").json()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


BAD_REQUESTS = [
    pytest.param("GET", "/api/v1/namespaces/default/services?labelSelector=app%3D%3D%3Dx", id="bad-label-selector"),
    pytest.param("GET", "/api/v1/namespaces/default/services?labelSelector=a+in+(", id="unclosed-set-selector"),
    pytest.param("GET", "/api/v1/namespaces/default/services?fieldSelector=spec.nosuch%3Dx",
                 id="unsupported-field-selector"),
    pytest.param("GET", "/api/v1/namespaces/default/services?watch=true&resourceVersion=abc", id="watch-bad-rv"),
    pytest.param("GET", "/api/v1/namespaces/default/services?limit=abc", id="bad-limit"),
    pytest.param("GET", "/api/v1/namespaces/default/services?continue=garbage", id="bad-continue"),
    pytest.param("GET", "/api/v1/namespaces/default/frobnicators", id="unknown-resource"),
    pytest.param("GET", "/apis/nosuch.example.com/v1/things", id="unknown-group"),
    pytest.param("GET", "/api/v1/namespaces/default/services/kubernetes/nosuchsub", id="unknown-subresource"),
    pytest.param("GET", "/api/v1/namespaces/default/services/nope", id="missing-object"),
    pytest.param("POST", "/api/v1/namespaces/default/services/kubernetes", id="post-to-item"),
    pytest.param("PUT", "/api/v1/namespaces/default/services", id="put-to-collection"),
    pytest.param("DELETE", "/api/v1/namespaces/default/services/nope", id="delete-missing"),
    pytest.param("POST", "/api/v1/namespaces/default/services?dryRun=Some", id="bad-dry-run"),
    pytest.param("POST", "/api/v1/namespaces/default/services?fieldValidation=Loose", id="bad-field-validation"),
    pytest.param("GET", "/api/v1/namespaces/default/pods/nope/log", id="log-missing-pod"),
]


@pytest.mark.parametrize(("method", "path"), BAD_REQUESTS)
def test_bad_request_is_a_4xx_status(server: Server, method: str, path: str) -> None:
    body = '{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":80}]}}'
    response = server.http(method, path, data=body if method in ("POST", "PUT") else None,
                           headers={"Content-Type": "application/json"})
    status = assert_status(response)
    if "nope" in path and "log" not in path:
        assert response.status_code == 404 and status["reason"] == "NotFound"
