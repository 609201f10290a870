"""OpenAPI v3 documents (what kubectl's validation and explain read) and strict field checks against the schemas."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from svcnet.api import openapi, resources, schema

REF = "#/components/schemas/"
GROUP_VERSIONS = resources.group_versions()
PATCHABLE = [r for r in resources.RESOURCES if "patch" in r.verbs]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` and single-element `allOf` wrappers, as kubectl explain does."""
    while True:
        if "$ref" in node:
            node = doc["components"]["schemas"][node["$ref"].removeprefix(REF)]
        elif len(node.get("allOf", [])) == 1:
            node = node["allOf"][0]
        else:
            return node


def item_path(info: resources.ResourceInfo) -> str:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    return f"{base}/namespaces/{{namespace}}/{info.plural}/{{name}}" if info.namespaced \
        else f"{base}/{info.plural}/{{name}}"


# ---- index and hashes --------------------------------------------------------------------------------------------

def test_index_lists_every_group_version() -> None:
    hashes = openapi.document_hashes()
    index = openapi.openapi_v3_index(hashes)
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1",
                                   "apis/networking.k8s.io/v1", "apis/coordination.k8s.io/v1",
                                   "apis/gateway.networking.k8s.io/v1", "apis/gateway.networking.k8s.io/v1beta1",
                                   "apis/networking.k8s.io/v1beta1", "apis/extensions/v1beta1"}
    assert index["paths"]["api/v1"] == {"serverRelativeURL": f"/openapi/v3/api/v1?hash={hashes['api/v1']}"}


def test_document_hash_is_stable_and_content_addressed() -> None:
    v1 = openapi.openapi_v3_document("", "v1")
    digest = openapi.document_hash(v1)
    assert re.fullmatch(r"[0-9A-F]{128}", digest)
    assert digest == openapi.document_hash(dict(reversed(list(v1.items()))))
    assert digest != openapi.document_hash(openapi.openapi_v3_document("apps", "v1"))


def test_documents_are_computed_once() -> None:
    assert openapi.openapi_v3_document("apps", "v1") is openapi.openapi_v3_document("apps", "v1")


# ---- paths kubectl looks up --------------------------------------------------------------------------------------

def test_service_patch_operation_is_what_kubectl_validation_needs() -> None:
    doc = openapi.openapi_v3_document("", "v1")
    assert (doc["openapi"], doc["info"]["title"]) == ("3.0.0", "Kubernetes")
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Service"}
    assert patch["x-kubernetes-action"] == "patch"
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= {p["name"] for p in patch["parameters"]}
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
        "application/apply-patch+yaml"}


@pytest.mark.parametrize("info", PATCHABLE, ids=[r.kind for r in PATCHABLE])
def test_every_kind_has_a_tagged_patch_with_field_validation(info: resources.ResourceInfo) -> None:
    doc = openapi.openapi_v3_document(info.group, info.version)
    patch = doc["paths"][item_path(info)]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": info.group, "version": info.version,
                                                        "kind": info.kind}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}


@pytest.mark.parametrize("info", PATCHABLE, ids=[r.kind for r in PATCHABLE])
def test_collection_and_item_operations(info: resources.ResourceInfo) -> None:
    paths = openapi.openapi_v3_document(info.group, info.version)["paths"]
    item = paths[item_path(info)]
    collection = paths[item_path(info).removesuffix("/{name}")]
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert {"get", "post"} <= set(collection)
    actions = {op["x-kubernetes-action"] for path in (item, collection) for key, op in path.items()
               if key != "parameters"}
    assert {"get", "list", "post", "put", "patch", "delete"} <= actions
    list_schema = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert list_schema.endswith(f".{info.list_kind}")


def test_scale_subresource_is_tagged_with_autoscaling_scale() -> None:
    paths = openapi.openapi_v3_document("apps", "v1")["paths"]
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


# ---- schemas kubectl explain reads -------------------------------------------------------------------------------

@pytest.mark.parametrize(("group", "version"), GROUP_VERSIONS)
def test_components_are_closed_under_refs(group: str, version: str) -> None:
    doc = openapi.openapi_v3_document(group, version)
    names = set(doc["components"]["schemas"])
    assert set(openapi._refs(doc)) <= names  # the closure is the property under test


@pytest.mark.parametrize("info", resources.RESOURCES, ids=[r.kind for r in resources.RESOURCES])
def test_every_kind_has_a_gvk_tagged_schema(info: resources.ResourceInfo) -> None:
    doc = openapi.openapi_v3_document(info.group, info.version)
    tagged = [s for s in doc["components"]["schemas"].values()
              if {"group": info.group, "version": info.version, "kind": info.kind}
              in s.get("x-kubernetes-group-version-kind", [])]
    assert len(tagged) == 1
    assert tagged[0]["description"] and "metadata" in tagged[0]["properties"]


def test_service_spec_ports_resolve_to_service_port() -> None:
    doc = openapi.openapi_v3_document("", "v1")
    service = doc["components"]["schemas"]["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Service"}]
    ports = resolve(doc, service["properties"]["spec"])["properties"]["ports"]
    assert ports["type"] == "array"
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["items"]["allOf"] == [{"$ref": REF + "io.k8s.api.core.v1.ServicePort"}]
    port = resolve(doc, ports["items"])
    assert {"port", "targetPort", "protocol", "nodePort", "name"} <= set(port["properties"])
    assert port["required"] == ["port"]
    assert port["properties"]["port"]["type"] == "integer"
    assert resolve(doc, port["properties"]["targetPort"])["x-kubernetes-int-or-string"] is True


def test_meta_schemas_are_shipped() -> None:
    names = set(openapi.schemas())
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1."
    assert {meta + n for n in ("ObjectMeta", "ListMeta", "Status", "DeleteOptions", "Table", "APIResourceList",
                               "WatchEvent", "Patch")} <= names
    assert "io.k8s.api.autoscaling.v1.Scale" in names
    assert openapi.schema_name("autoscaling", "v1", "Scale") == "io.k8s.api.autoscaling.v1.Scale"
    assert openapi.schema_name("", "v1", "NoSuchKind") is None


# ---- unknown fields and type checks ------------------------------------------------------------------------------

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pc-deployment
  namespace: dev
  labels: {anything.example.com/goes: "yes"}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  selector:
    matchLabels: {app: nginx-pod}
  template:
    metadata:
      labels: {app: nginx-pod}
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.1
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 1, memory: 128Mi}
          requests: {cpu: 0.5, memory: "64Mi"}
      volumes:
      - name: scratch
        emptyDir: {sizeLimit: 1Gi}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: service-nodeport
  namespace: dev
spec:
  selector: {app: nginx-pod}
  type: NodePort
  ports:
  - port: 80
    nodePort: 30002
    targetPort: http
"""


@pytest.mark.parametrize("manifest", [DEPLOYMENT, SERVICE], ids=["deployment", "service"])
def test_valid_seeds_have_no_unknown_fields_or_type_errors(manifest: str) -> None:
    obj = yaml.safe_load(manifest)
    assert schema.check(obj["kind"], obj["apiVersion"], obj) == ([], [])


@pytest.mark.parametrize(("kind", "api_version", "obj", "unknown"), [
    pytest.param("Service", "v1", {"spec": {"foo": 1, "ports": [{"port": 80}, {"port": 81, "bogus": True}]}},
                 ["spec.foo", "spec.ports[1].bogus"], id="service"),
    pytest.param("Service", "v1", {"metadata": {"name": "x", "labelz": {}}, "extra": 1},
                 ["metadata.labelz", "extra"], id="top-level-and-metadata"),
    pytest.param("Deployment", "apps/v1",
                 {"spec": {"template": {"spec": {"containers": [{"name": "c", "imagePullPolicyy": "Always"}]}}}},
                 ["spec.template.spec.containers[0].imagePullPolicyy"], id="nested-template"),
    pytest.param("ConfigMap", "v1", {"data": {"any": "key"}, "binaryData": {}}, [], id="map-keys-free"),
    pytest.param("ControllerRevision", "apps/v1", {"revision": 1, "data": {"spec": {"whatever": [1, "x"]}}}, [],
                 id="raw-extension-free"),
    pytest.param("Pod", "v1", {"metadata": {"managedFields": [
        {"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {".": {}}}}]}}, [],
                 id="managed-fields-free"),
    pytest.param("Widget", "example.com/v1", {"spec": {"anything": 1}}, [], id="kind-without-schema"),
])
def test_unknown_fields(kind: str, api_version: str, obj: dict[str, Any], unknown: list[str]) -> None:
    assert schema.unknown_fields(kind, api_version, {"apiVersion": api_version, "kind": kind, **obj}) == unknown


@pytest.mark.parametrize(("obj", "errors"), [
    pytest.param({"spec": {"ports": [{"port": "eighty"}]}}, 1, id="string-for-int"),
    pytest.param({"spec": {"ports": [{"port": 80, "targetPort": True}]}}, 1, id="bool-for-int-or-string"),
    pytest.param({"spec": {"selector": "app=web"}}, 1, id="string-for-map"),
    pytest.param({"spec": {"ports": [{"port": 80.0, "targetPort": 8080}], "clusterIP": None}}, 0,
                 id="integral-float-and-null"),
])
def test_type_errors(obj: dict[str, Any], errors: int) -> None:
    assert len(schema.check("Service", "v1", obj)[1]) == errors


def test_quantities_accept_numbers_and_strings_only() -> None:
    pod = {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 2, "memory": "1Gi"},
                                                               "requests": {"cpu": [1]}}}]}}
    assert len(schema.check("Pod", "v1", pod)[1]) == 1


def test_python_keyword_fields_keep_their_json_names() -> None:
    """The client models rename `exec`/`continue` for Python; the schema must carry the wire names."""
    schemas = openapi.schemas()
    assert "exec" in schemas["io.k8s.api.core.v1.Probe"]["properties"]
    assert "exec" in schemas["io.k8s.api.core.v1.LifecycleHandler"]["properties"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x",
                                    "readinessProbe": {"exec": {"command": ["true"]}}}]}}
    assert schema.check("Pod", "v1", pod) == ([], [])
