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
