"""Strategic merge patch: one table of (original, patch, kind) -> expected, one of patches that must fail."""

from __future__ import annotations

import copy
import json

import pytest

from svcnet.api.errors import APIError
from svcnet.api.smp import apply_strategic_merge_patch

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def svc(ports: list, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bar", "labels": {"app": "bar"}},
            "spec": {"ports": ports, "selector": {"app": "bar"}, **spec}}


def deploy(containers: list, **pod_spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}},
                                                 "spec": {"containers": containers, **pod_spec}}}}


def containers_of(obj: dict) -> list:
    return obj["spec"]["template"]["spec"]["containers"]


HTTP80 = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
NGINX = {"name": "nginx", "image": "nginx:1",
         "ports": [{"containerPort": 80, "protocol": "TCP"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}


def _with(obj: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return out


CASES = [
    pytest.param(
        svc([HTTP80]),
        {"metadata": {"annotations": {LAST_APPLIED: "{}"}, "labels": {"app": "bar2"}},
         "spec": {"$setElementOrder/ports": [{"port": 81}],
                  "ports": [{"name": "http", "port": 81, "targetPort": 8080}, {"$patch": "delete", "port": 80}],
                  "selector": {"app": "bar2"}}},
        "Service",
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "bar", "labels": {"app": "bar2"}, "annotations": {LAST_APPLIED: "{}"}},
         "spec": {"ports": [{"name": "http", "port": 81, "targetPort": 8080}], "selector": {"app": "bar2"}}},
        id="kubectl-apply-changed-port"),
    pytest.param(
        {"metadata": {"labels": {"a": "1", "b": "2"}}}, {"metadata": {"labels": {"a": None, "c": "3"}}}, "ConfigMap",
        {"metadata": {"labels": {"b": "2", "c": "3"}}}, id="map-merge-and-null-deletes"),
    pytest.param(
        {"data": {"x": "1"}}, {"data": {"missing": None}}, "ConfigMap", {"data": {"x": "1"}},
        id="null-for-absent-key-is-a-no-op"),
    pytest.param(
        {"metadata": {"name": "c"}}, {"metadata": {"labels": {"a": None, "b": "1"}}}, "ConfigMap",
        {"metadata": {"name": "c", "labels": {"b": "1"}}}, id="nulls-dropped-from-new-map"),
    pytest.param(
        svc([HTTP80]), {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "Service",
        svc([{**HTTP80, "targetPort": 9090}]), id="service-ports-merge-by-port"),
    pytest.param(
        svc([HTTP80]), {"spec": {"ports": [{"name": "https", "port": 443}]}}, "Service",
        svc([{"name": "https", "port": 443}, HTTP80]), id="new-merge-item-goes-first-like-apimachinery"),
    pytest.param(
        svc([HTTP80, {"name": "https", "port": 443}]),
        {"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}, {"port": 8443}],
                  "ports": [{"name": "alt", "port": 8443}]}},
        "Service", svc([HTTP80, {"name": "https", "port": 443}, {"name": "alt", "port": 8443}]),
        id="set-element-order-appends-in-order"),
    pytest.param(
        svc([HTTP80, {"name": "https", "port": 443}]),
        {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}]}},
        "Service", svc([{"name": "https", "port": 443}, HTTP80]), id="set-element-order-reorders-only"),
    pytest.param(
        svc([HTTP80, {"name": "https", "port": 443}]), {"spec": {"ports": [{"$patch": "delete", "port": 443}]}},
        "Service", svc([HTTP80]), id="patch-delete-list-element"),
    pytest.param(
        svc([HTTP80, {"name": "https", "port": 443}]),
        {"spec": {"ports": [{"name": "only", "port": 1}, {"$patch": "replace"}]}},
        "Service", svc([{"name": "only", "port": 1}]), id="patch-replace-list"),
    pytest.param(
        svc([HTTP80], sessionAffinity="None"),
        {"spec": {"$patch": "replace", "ports": [{"port": 2}], "selector": {"x": "y"}}},
        "Service", {**svc([]), "spec": {"ports": [{"port": 2}], "selector": {"x": "y"}}}, id="patch-replace-map"),
    pytest.param(
        {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}, {"data": {"$patch": "delete"}}, "ConfigMap",
        {"metadata": {"labels": {"a": "1"}}, "data": {}}, id="patch-delete-map"),
    pytest.param(
        {"data": {"k": "v"}}, {"data": {"$patch": "merge", "j": "w"}}, "ConfigMap", {"data": {"k": "v", "j": "w"}},
        id="patch-merge-map-is-the-default"),
    pytest.param(
        deploy([NGINX]),
        {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
             "ports": [{"containerPort": 80, "name": "http"}],
             "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}]}}}},
        "Deployment",
        deploy([{**NGINX, "image": "nginx:2",
                 "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}]),
        id="deployment-containers-env-ports-mounts-merge-by-key"),
    pytest.param(
        deploy([NGINX]),
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["b"], "command": None}]}}}},
        "Deployment", deploy([{**NGINX, "args": ["b"]}]), id="primitive-list-without-strategy-replaced"),
    pytest.param(
        deploy([{**NGINX, "args": ["a", "b"]}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["c"]}]}}}},
        "Deployment", deploy([{**NGINX, "args": ["c"]}]), id="args-replaced-not-merged"),
    pytest.param(
        {"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["b", "c"]}}, "Namespace",
        {"metadata": {"finalizers": ["a", "b", "c"]}}, id="finalizers-merge-as-set"),
    pytest.param(
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}, "Pod",
        {"metadata": {"finalizers": ["a", "c"]}}, id="delete-from-primitive-list"),
    pytest.param(
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$setElementOrder/finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"],
                      "finalizers": ["c"]}}, "Pod",
        {"metadata": {"finalizers": ["c", "a"]}}, id="primitive-set-order-and-delete"),
    pytest.param(
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "RS"}]}},
        {"metadata": {"ownerReferences": [{"uid": "1", "controller": True}, {"uid": "2", "name": "b"}]}}, "Pod",
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "RS", "controller": True},
                                          {"uid": "2", "name": "b"}]}}, id="owner-references-merge-by-uid"),
    pytest.param(
        {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PIDPressure", "status": "False"}],
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "Hostname", "address": "n1"}]}}, "Node",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PIDPressure", "status": "False"}],
                    "addresses": [{"type": "Hostname", "address": "n1"},
                                  {"type": "InternalIP", "address": "10.0.0.1"}]}},
        id="node-status-conditions-and-addresses-by-type"),
    pytest.param(
        deploy([NGINX], volumes=[{"name": "data", "emptyDir": {}}]),
        {"spec": {"template": {"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}}},
        "Deployment", deploy([NGINX], volumes=[{"name": "data", "configMap": {"name": "cm"}}]),
        id="retain-keys-drops-other-volume-source"),
    pytest.param(
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, "Deployment",
        {"spec": {"strategy": {"type": "Recreate"}}}, id="retain-keys-deployment-strategy"),
    pytest.param(
        {"spec": {"ports": [{"port": 80}]}}, {"spec": {"ports": {"port": 81}}}, "Service",
        {"spec": {"ports": {"port": 81}}}, id="type-change-replaces"),
    pytest.param(
        {"metadata": {}}, {"spec": {"ports": [{"port": 80}, {"$patch": "delete", "port": 81}],
                                    "$setElementOrder/ports": [{"port": 80}]}}, "Service",
        {"metadata": {}, "spec": {"ports": [{"port": 80}]}}, id="directives-stripped-when-original-lacks-field"),
    pytest.param(
        {"spec": {"x": {"a": 1}}}, {"spec": {"x": {"$patch": "replace", "b": 2}}}, "Service",
        {"spec": {"x": {"b": 2}}}, id="unknown-field-of-known-kind-still-smp"),
    pytest.param(
        {"spec": {"items": [1, 2], "m": {"a": 1}}},
        {"spec": {"items": [3], "m": {"a": None, "b": 2}}}, "Widget",
        {"spec": {"items": [3], "m": {"b": 2}}}, id="crd-falls-back-to-json-merge-patch"),
    pytest.param(
        {"spec": {"ports": [{"port": 80, "name": "a"}]}}, {"spec": {"ports": [{"port": 80.0, "name": "b"}]}},
        "Service", {"spec": {"ports": [{"port": 80.0, "name": "b"}]}}, id="numeric-merge-keys-compare-as-json"),
]


@pytest.mark.parametrize(("original", "patch", "kind", "expected"), CASES)
def test_apply_strategic_merge_patch(original: dict, patch: dict, kind: str, expected: dict) -> None:
    before = (json.dumps(original, sort_keys=True), json.dumps(patch, sort_keys=True))
    result = apply_strategic_merge_patch(original, patch, kind)
    assert result == expected
    assert "$" not in json.dumps(result) or kind == "Widget"
    assert (json.dumps(original, sort_keys=True), json.dumps(patch, sort_keys=True)) == before


def test_result_shares_nothing_with_inputs() -> None:
    original = svc([HTTP80])
    patch = {"spec": {"selector": {"x": "y"}}}
    result = apply_strategic_merge_patch(original, patch, "Service")
    result["spec"]["ports"][0]["port"] = 1
    result["spec"]["selector"]["x"] = "z"
    assert original["spec"]["ports"][0]["port"] == 80
    assert patch["spec"]["selector"]["x"] == "y"


ERRORS = [
    pytest.param({"spec": {"ports": [{"name": "x"}]}}, 422, "merge key", id="list-element-without-merge-key"),
    pytest.param({"spec": {"ports": [{"$patch": "delete"}]}}, 422, "merge key", id="delete-without-merge-key"),
    pytest.param({"spec": {"$patch": "explode"}}, 400, "unknown patch type", id="bad-map-directive"),
    pytest.param({"spec": {"ports": [{"$patch": "bogus", "port": 1}]}}, 400, "unknown patch type",
                 id="bad-list-directive"),
    pytest.param({"spec": {"ports": [{"$patch": "merge"}]}}, 400, "merging lists", id="merge-directive-in-list"),
    pytest.param({"spec": {"$retainKeys": "ports"}}, 400, "retainKeys", id="retain-keys-not-a-list"),
    pytest.param({"spec": {"$retainKeys": ["type"], "selector": {"a": "b"}}}, 422, "retainKeys",
                 id="patch-key-not-retained"),
    pytest.param({"spec": {"$setElementOrder/ports": {"port": 80}}}, 400, "setElementOrder",
                 id="set-order-not-a-list"),
    pytest.param({"spec": {"$setElementOrder/ports": [{"port": 1}], "ports": [{"port": 2}]}}, 400, "order",
                 id="set-order-does-not-cover-patch"),
    pytest.param({"spec": {"$setElementOrder/ports": [{"name": "x"}], "ports": [{"port": 80}]}}, 422, "merge key",
                 id="set-order-item-without-merge-key"),
    pytest.param({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, 400, "primitive list",
                 id="delete-from-primitive-list-not-a-list"),
    pytest.param({"metadata": {"finalizers": [["a"]]}}, 422, "lists of lists", id="list-of-lists"),
    pytest.param({"spec": {"ports": [1, {"port": 2}]}}, 400, "not identical", id="mixed-element-types"),
    pytest.param({"spec": {"$bogus": 1}}, 400, "directive", id="unknown-directive"),
]


@pytest.mark.parametrize(("patch", "code", "fragment"), ERRORS)
def test_malformed_patches_raise_api_errors(patch: dict, code: int, fragment: str) -> None:
    original = svc([HTTP80])
    original["metadata"]["finalizers"] = ["x"]
    with pytest.raises(APIError) as info:
        apply_strategic_merge_patch(original, patch, "Service")
    assert info.value.code == code
    assert fragment in info.value.message


@pytest.mark.parametrize("patch", [pytest.param([], id="list"), pytest.param("x", id="string"),
                                   pytest.param(None, id="null")])
def test_patch_must_be_an_object(patch: object) -> None:
    with pytest.raises(APIError) as info:
        apply_strategic_merge_patch({}, patch, "Service")  # type: ignore[arg-type]
    assert info.value.code == 400
