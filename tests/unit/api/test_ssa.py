"""Server-side apply and managedFields: golden FieldsV1, merges, pruning, conflicts and Update ownership."""

from __future__ import annotations

import copy
import json

import pytest

from svcnet.api import fieldpath, ssa
from svcnet.api.errors import APIError

T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"
PORT80 = 'k:{"port":80,"protocol":"TCP"}'


def svc(ports: list | None = None, labels: dict | None = None, **spec: object) -> dict:
    metadata: dict = {"name": "bar", "namespace": "dev"}
    if labels is not None:
        metadata["labels"] = labels
    body: dict = {"apiVersion": "v1", "kind": "Service", "metadata": metadata}
    if ports is not None:
        spec = {"ports": ports, **spec}
    if spec:
        body["spec"] = dict(spec)
    return body


def entries(obj: dict) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def fields_of(obj: dict, manager: str, operation: str = "Apply") -> dict:
    return entries(obj)[(manager, operation)]["fieldsV1"]


def strip(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


BASE = svc([{"name": "http", "port": 80, "targetPort": 8080}], labels={"app": "bar"}, selector={"app": "bar"})


# --- FieldsV1 ----------------------------------------------------------------------------------------------------

FIELDSETS = [
    pytest.param(
        BASE, "Service",
        {"f:metadata": {"f:labels": {"f:app": {}}},
         "f:spec": {"f:ports": {PORT80: {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}},
                    "f:selector": {}}},
        id="service-ports-keyed-by-port-and-defaulted-protocol-selector-atomic"),
    pytest.param(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["a"]},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
             {"name": "c", "image": "i", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}],
              "args": ["x"]}]}}}}, "Deployment",
        {"f:metadata": {"f:finalizers": {'v:"a"': {}}},
         "f:spec": {"f:selector": {}, "f:template": {"f:spec": {"f:containers": {'k:{"name":"c"}': {
             ".": {}, "f:args": {}, "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
             "f:image": {}, "f:name": {},
             "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}}},
        id="deployment-containers-env-ports-sets-atomic-selector"),
    pytest.param(
        {"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": {"b": 1}, "l": [1],
                                                                                    "e": {}}},
        "Widget", {"f:spec": {"f:a": {"f:b": {}}, "f:e": {}, "f:l": {}}}, id="crd-deduced-lists-atomic"),
]


@pytest.mark.parametrize(("applied", "kind", "expected"), FIELDSETS)
def test_apply_records_fields_v1(applied: dict, kind: str, expected: dict) -> None:
    result = ssa.apply(None, applied, "kubectl", False, T0, kind)
    entry = entries(result)[("kubectl", "Apply")]
    assert entry == {"manager": "kubectl", "operation": "Apply", "apiVersion": applied["apiVersion"], "time": T0,
                     "fieldsType": "FieldsV1", "fieldsV1": expected}
    assert strip(result) == applied


def test_fields_v1_round_trips() -> None:
    encoded = fields_of(ssa.apply(None, BASE, "kubectl", False, T0, "Service"), "kubectl")
    assert fieldpath.encode(fieldpath.decode(encoded)) == encoded


@pytest.mark.parametrize(("path", "text"), [
    pytest.param(((("f", "spec"), ("f", "ports"), ("k", '{"port":80,"protocol":"TCP"}'), ("f", "targetPort"))),
                 '.spec.ports[port=80,protocol="TCP"].targetPort', id="key"),
    pytest.param((("f", "metadata"), ("f", "finalizers"), ("v", '"a"')), '.metadata.finalizers[="a"]', id="value"),
])
def test_render_paths(path: tuple, text: str) -> None:
    assert fieldpath.render(path) == text


@pytest.mark.parametrize("fields", [
    pytest.param({"f:spec": 1}, id="leaf-not-object"),
    pytest.param({"x:spec": {}}, id="unknown-element-kind"),
    pytest.param({"k:{bad": {}}, id="bad-key-json"),
    pytest.param([], id="not-an-object"),
])
def test_decode_rejects_malformed_fields_v1(fields: object) -> None:
    with pytest.raises(APIError) as info:
        fieldpath.decode(fields)
    assert info.value.code == 400


# --- apply -------------------------------------------------------------------------------------------------------


def test_apply_twice_is_idempotent() -> None:
    first = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    second = ssa.apply(first, BASE, "kubectl", False, T1, "Service")
    assert second == first


APPLY_CASES = [
    pytest.param(
        svc([{"name": "http", "port": 80, "targetPort": 9090}], labels={"app": "bar"}, selector={"app": "bar"}),
        svc([{"name": "http", "port": 80, "targetPort": 9090}], labels={"app": "bar"}, selector={"app": "bar"}),
        id="change-own-field"),
    pytest.param(
        svc([{"name": "http", "port": 80}], selector={"app": "bar"}),
        svc([{"name": "http", "port": 80}], selector={"app": "bar"}),
        id="dropped-fields-are-removed"),
    pytest.param(
        svc([{"name": "https", "port": 443}], labels={"app": "bar"}, selector={"app": "bar"}),
        svc([{"name": "https", "port": 443}], labels={"app": "bar"}, selector={"app": "bar"}),
        id="dropped-list-item-removed"),
    pytest.param(
        svc([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}],
            labels={"app": "bar", "tier": "web"}, selector={"app": "bar"}),
        svc([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}],
            labels={"app": "bar", "tier": "web"}, selector={"app": "bar"}),
        id="added-item-and-label"),
]


@pytest.mark.parametrize(("second", "expected"), APPLY_CASES)
def test_reapply_by_same_manager(second: dict, expected: dict) -> None:
    live = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    result = ssa.apply(live, second, "kubectl", False, T1, "Service")
    assert strip(result) == expected
    assert list(entries(result)) == [("kubectl", "Apply")]


def test_pruning_keeps_fields_another_manager_owns() -> None:
    live = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    shared = svc([{"name": "http", "port": 80, "targetPort": 8080}], labels={"app": "bar"})
    live = ssa.apply(live, shared, "other", False, T1, "Service")
    result = ssa.apply(live, svc(selector={"app": "bar"}), "kubectl", False, T2, "Service")
    assert strip(result) == svc([{"name": "http", "port": 80, "targetPort": 8080}], labels={"app": "bar"},
                                selector={"app": "bar"})
    assert fields_of(result, "kubectl") == {"f:spec": {"f:selector": {}}}


def test_pruning_leaves_unowned_fields_alone() -> None:
    live = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    live["spec"]["clusterIP"] = "10.0.0.1"  # set by the server, owned by nobody
    result = ssa.apply(live, svc(selector={"app": "bar"}), "kubectl", False, T1, "Service")
    assert result["spec"] == {"selector": {"app": "bar"}, "clusterIP": "10.0.0.1"}
    assert "labels" not in result["metadata"]


def test_apply_merges_lists_per_key_and_keeps_live_order() -> None:
    live = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    other = svc([{"name": "https", "port": 443}])
    result = ssa.apply(live, other, "second", False, T1, "Service")
    assert [p["port"] for p in result["spec"]["ports"]] == [80, 443]
    assert set(entries(result)) == {("kubectl", "Apply"), ("second", "Apply")}


def test_conflict_with_client_side_apply_manager() -> None:
    created = ssa.update_managed_fields(None, BASE, "kubectl-client-side-apply", "Update", T0, "Service")
    changed = svc([{"name": "http", "port": 80, "targetPort": 9090}], labels={"app": "bar"},
                  selector={"app": "bar"})
    with pytest.raises(APIError) as info:
        ssa.apply(created, changed, "kubectl", False, T1, "Service")
    error = info.value
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
                             '.spec.ports[port=80,protocol="TCP"].targetPort')
    assert [c.to_dict() for c in error.causes] == [{
        "reason": "FieldManagerConflict", "message": 'conflict with "kubectl-client-side-apply" using v1',
        "field": '.spec.ports[port=80,protocol="TCP"].targetPort'}]


def test_conflicts_listed_per_manager() -> None:
    live = ssa.apply(None, BASE, "alpha", False, T0, "Service")
    changed = svc([{"name": "web", "port": 80, "targetPort": 1}], labels={"app": "x"})
    with pytest.raises(APIError) as info:
        ssa.apply(live, changed, "beta", False, T1, "Service")
    assert info.value.message == (
        'Apply failed with 3 conflicts: conflicts with "alpha":\n- .metadata.labels.app\n'
        '- .spec.ports[port=80,protocol="TCP"].name\n- .spec.ports[port=80,protocol="TCP"].targetPort')
    assert len(info.value.causes) == 3


def test_same_value_is_shared_not_a_conflict() -> None:
    live = ssa.apply(None, BASE, "alpha", False, T0, "Service")
    result = ssa.apply(live, svc(labels={"app": "bar"}), "beta", False, T1, "Service")
    assert fields_of(result, "beta") == {"f:metadata": {"f:labels": {"f:app": {}}}}
    assert "f:metadata" in fields_of(result, "alpha")


def test_force_moves_ownership() -> None:
    created = ssa.update_managed_fields(None, BASE, "kubectl-client-side-apply", "Update", T0, "Service")
    changed = svc([{"name": "http", "port": 80, "targetPort": 9090}])
    result = ssa.apply(created, changed, "kubectl", True, T1, "Service")
    assert result["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 9090}]
    csa = fields_of(result, "kubectl-client-side-apply", "Update")
    assert "f:targetPort" not in csa["f:spec"]["f:ports"][PORT80]
    assert "f:name" in csa["f:spec"]["f:ports"][PORT80]
    assert fields_of(result, "kubectl")["f:spec"]["f:ports"][PORT80]["f:targetPort"] == {}


BAD_APPLIES = [
    pytest.param({"kind": "Service", "metadata": {"name": "x"}}, 400, "apiVersion", id="no-api-version"),
    pytest.param({"apiVersion": "v1", "metadata": {"name": "x"}}, 400, "kind", id="no-kind"),
    pytest.param({"apiVersion": "v1", "kind": "Pod"}, 400, "kind", id="wrong-kind"),
    pytest.param({"apiVersion": "v1", "kind": "Service", "metadata": {"managedFields": [{}]}}, 400,
                 "managedFields", id="managed-fields-in-config"),
    pytest.param({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"name": "x"}]}}, 422, "key",
                 id="list-item-without-key"),
    pytest.param({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 1}, {"port": 1}]}}, 422,
                 "duplicate", id="duplicate-list-keys"),
    pytest.param([], 400, "object", id="not-an-object"),
]


@pytest.mark.parametrize(("applied", "code", "fragment"), BAD_APPLIES)
def test_bad_apply_configurations(applied: object, code: int, fragment: str) -> None:
    with pytest.raises(APIError) as info:
        ssa.apply(None, applied, "kubectl", False, T0, "Service")  # type: ignore[arg-type]
    assert info.value.code == code
    assert fragment in info.value.message


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(b'{"apiVersion":"v1","kind":"Service"}', {"apiVersion": "v1", "kind": "Service"}, id="json"),
    pytest.param(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  when: 2024-01-01\n",
                 {"apiVersion": "v1", "kind": "ConfigMap", "data": {"when": "2024-01-01"}}, id="yaml-no-timestamps"),
])
def test_decode_apply_body(body: bytes, expected: dict) -> None:
    assert ssa.decode_apply_body(body) == expected


@pytest.mark.parametrize("body", [pytest.param(b"- a\n", id="list"), pytest.param(b"a: [", id="bad-yaml"),
                                  pytest.param(b"\xff", id="not-utf8")])
def test_decode_apply_body_rejects(body: bytes) -> None:
    with pytest.raises(APIError) as info:
        ssa.decode_apply_body(body)
    assert info.value.code == 400


# --- update ------------------------------------------------------------------------------------------------------


def test_create_owns_everything_but_server_fields() -> None:
    obj = {**BASE, "metadata": {**BASE["metadata"], "uid": "u", "resourceVersion": "1", "generation": 1,
                                "creationTimestamp": T0, "annotations": {"a": "b"}},
           "status": {"loadBalancer": {}}}
    result = ssa.update_managed_fields(None, obj, "kubectl-create", "Update", T0, "Service")
    assert entries(result)[("kubectl-create", "Update")] == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1", "fieldsV1": {
            "f:metadata": {"f:annotations": {".": {}, "f:a": {}}, "f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {".": {}, PORT80: {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}},
                       "f:selector": {}}}}


def test_update_moves_changed_fields_but_creator_keeps_the_map() -> None:
    created = ssa.update_managed_fields(None, svc(labels={"app": "bar"}), "creator", "Update", T0, "Service")
    edited = svc(labels={"app": "baz"})
    edited["metadata"]["managedFields"] = created["metadata"]["managedFields"]
    result = ssa.update_managed_fields(created, edited, "kubectl-edit", "Update", T1, "Service")
    assert fields_of(result, "creator", "Update") == {"f:metadata": {"f:labels": {}}}
    assert fields_of(result, "kubectl-edit", "Update") == {"f:metadata": {"f:labels": {"f:app": {}}}}
    assert entries(result)[("kubectl-edit", "Update")]["time"] == T1


def test_update_drops_entries_left_empty() -> None:
    live = ssa.apply(None, svc(labels={"app": "bar"}), "alpha", False, T0, "Service")
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["app"] = "baz"
    result = ssa.update_managed_fields(live, edited, "kubectl-edit", "Update", T1, "Service")
    assert list(entries(result)) == [("kubectl-edit", "Update")]


def test_update_without_changes_keeps_entries_and_times() -> None:
    created = ssa.update_managed_fields(None, BASE, "creator", "Update", T0, "Service")
    again = ssa.update_managed_fields(created, copy.deepcopy(created), "Go-http-client", "Update", T1, "Service")
    assert again["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_update_removal_leaves_every_manager() -> None:
    live = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    removed = copy.deepcopy(live)
    del removed["metadata"]["labels"]
    result = ssa.update_managed_fields(live, removed, "editor", "Update", T1, "Service")
    assert "f:metadata" not in fields_of(result, "kubectl")
    assert ("editor", "Update") not in entries(result)


def test_status_changes_are_never_owned() -> None:
    live = ssa.update_managed_fields(None, BASE, "creator", "Update", T0, "Service")
    new = {**copy.deepcopy(live), "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
    result = ssa.update_managed_fields(live, new, "controller", "Update", T1, "Service")
    assert ("controller", "Update") not in entries(result)


def test_managed_fields_reset_with_empty_entry() -> None:
    live = ssa.update_managed_fields(None, BASE, "creator", "Update", T0, "Service")
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{}]
    result = ssa.update_managed_fields(live, new, "x", "Update", T1, "Service")
    assert "managedFields" not in result["metadata"]


def test_update_does_not_mutate_inputs() -> None:
    old = ssa.apply(None, BASE, "kubectl", False, T0, "Service")
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "x"}
    snapshot = json.dumps([old, new], sort_keys=True)
    ssa.update_managed_fields(old, new, "editor", "Update", T1, "Service")
    ssa.apply(old, svc(selector={"app": "y"}), "kubectl", True, T1, "Service")
    assert json.dumps([old, new], sort_keys=True) == snapshot


def test_deployment_create_matches_kube_shape() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}
    result = ssa.update_managed_fields(None, deploy, "kubectl-create", "Update", T0, "Deployment")
    spec = fields_of(result, "kubectl-create", "Update")["f:spec"]
    assert spec["f:strategy"] == {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}}
    assert spec["f:template"]["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert spec["f:template"]["f:spec"]["f:containers"] == {
        ".": {}, 'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}}
