"""Discovery documents carry what kubectl needs (short names, subresources, the v2 shape)."""

from __future__ import annotations

from svcnet.apiserver import discovery


def _resources(doc: dict, group: str) -> dict[str, dict]:
    item = next(i for i in doc["items"] if i["metadata"]["name"] == group)
    return {r["resource"]: r for r in item["versions"][0]["resources"]}


def test_aggregated_core_has_short_names_and_pod_subresources() -> None:
    core = _resources(discovery.aggregated(core=True), "")
    assert core["services"]["shortNames"] == ["svc"]
    assert core["services"]["scope"] == "Namespaced"
    assert core["nodes"]["scope"] == "Cluster"
    subs = {s["subresource"] for s in core["pods"]["subresources"]}
    assert {"status", "log", "exec", "attach", "portforward", "binding"} <= subs


def test_aggregated_groups_list_scale_with_autoscaling_kind() -> None:
    apps = _resources(discovery.aggregated(core=False), "apps")
    scale = next(s for s in apps["deployments"]["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert "" not in {i["metadata"]["name"] for i in discovery.aggregated(core=False)["items"]}


def test_wants_aggregated_only_for_v2_accept() -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    assert discovery.wants_aggregated(accept)
    assert not discovery.wants_aggregated("application/json, */*")


def test_legacy_documents() -> None:
    groups = {g["name"] for g in discovery.legacy_group_list()["groups"]}
    assert {"apps", "discovery.k8s.io", "networking.k8s.io", "coordination.k8s.io"} <= groups
    v1 = discovery.resource_list("", "v1")
    assert v1 is not None
    names = {r["name"] for r in v1["resources"]}
    assert {"services", "services/status", "pods/log", "replicationcontrollers/scale"} <= names
    assert discovery.resource_list("", "v9") is None
    assert discovery.version_info()["minor"] == "32"


def test_legacy_ingress_versions_come_after_the_preferred_one() -> None:
    items = discovery.aggregated(core=False)["items"]
    names = [i["metadata"]["name"] for i in items]
    assert names.count("networking.k8s.io") == 1
    assert names.index("networking.k8s.io") < names.index("extensions")
    networking = next(i for i in items if i["metadata"]["name"] == "networking.k8s.io")
    assert [v["version"] for v in networking["versions"]] == ["v1", "v1beta1"]
    assert [r["resource"] for r in networking["versions"][1]["resources"]] == ["ingresses"]
    legacy = {g["name"]: g for g in discovery.legacy_group_list()["groups"]}
    assert legacy["networking.k8s.io"]["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in legacy["networking.k8s.io"]["versions"]] == ["v1", "v1beta1"]
    assert legacy["extensions"]["versions"] == [{"groupVersion": "extensions/v1beta1", "version": "v1beta1"}]


def test_gateway_api_kinds_with_short_names_and_category() -> None:
    gateway = _resources(discovery.aggregated(core=False), "gateway.networking.k8s.io")
    assert gateway["gatewayclasses"]["scope"] == "Cluster" and gateway["gatewayclasses"]["shortNames"] == ["gc"]
    assert gateway["gateways"]["shortNames"] == ["gtw"] and gateway["gateways"]["categories"] == ["gateway-api"]
    assert [s["subresource"] for s in gateway["httproutes"]["subresources"]] == ["status"]
    v1beta1 = discovery.resource_list("gateway.networking.k8s.io", "v1beta1")
    assert v1beta1 is not None
    assert [(r["name"], r.get("shortNames")) for r in v1beta1["resources"]] == [("referencegrants", ["refgrant"])]
