"""The object lifecycle over an in-memory store: the registry's promises, table-driven where it reads well."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from typing import Any

import pytest

from svcnet.api import errors, resources, validation
from svcnet.apiserver import allocator
from svcnet.apiserver.registry import DeleteOptions, Filter, ListOptions, Registry, WriteOptions
from svcnet.store.memory import MemoryStore

SVC = resources.lookup("", "v1", "services")
POD = resources.lookup("", "v1", "pods")
CM = resources.lookup("", "v1", "configmaps")
NS = resources.lookup("", "v1", "namespaces")
NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.UTC)
OPTS = WriteOptions(field_manager="test")


@pytest.fixture
async def registry() -> Registry:
    store = MemoryStore()
    cidr = ipaddress.ip_network("10.96.0.0/24")
    reg = Registry(store, validation.NetworkConfig(service_cidrs=(cidr,), node_port_range=(30000, 30010)),
                   allocator.ServiceAllocator(store, cidr, (30000, 30010)), clock=lambda: NOW)
    for name in ("default", "dev"):
        await reg.create(NS, "", {"metadata": {"name": name}}, OPTS)
    return reg


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": name}, **spec}}


async def test_create_sets_server_fields_and_defaults(registry: Registry) -> None:
    obj = (await registry.create(SVC, "dev", service("web"), OPTS)).obj
    meta = obj["metadata"]
    assert meta["namespace"] == "dev" and meta["uid"] and meta["creationTimestamp"] == "2026-11-22T12:00:00Z"
    assert int(meta["resourceVersion"]) > 0
    assert obj["spec"]["ports"][0]["targetPort"] == 80
    assert ipaddress.ip_address(obj["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/24")


@pytest.mark.parametrize(
    ("namespace", "obj", "code", "reason"),
    [
        pytest.param("nope", service("a"), 404, "NotFound", id="missing-namespace"),
        pytest.param("dev", {**service("a"), "kind": "Pod"}, 400, "BadRequest", id="wrong-kind"),
        pytest.param("dev", {**service("a"), "metadata": {"name": "a", "namespace": "x"}}, 400, "BadRequest",
                     id="namespace-mismatch"),
        pytest.param("dev", {**service("a"), "metadata": {"name": "a", "resourceVersion": "5"}}, 400,
                     "BadRequest", id="resource-version-set"),
        pytest.param("dev", service("a", clusterIP="10.1.0.1"), 422, "Invalid", id="ip-out-of-range"),
        pytest.param("dev", service("Bad_Name"), 422, "Invalid", id="bad-name"),
    ],
)
async def test_create_rejects(registry: Registry, namespace: str, obj: dict, code: int, reason: str) -> None:
    before = await registry.store.current_revision()
    with pytest.raises(errors.APIError) as info:
        await registry.create(SVC, namespace, obj, OPTS)
    assert (info.value.code, info.value.reason) == (code, reason)
    assert await registry.store.current_revision() == before, "a rejected write changes nothing"


async def test_duplicate_create_is_409_and_frees_its_allocation(registry: Registry) -> None:
    await registry.create(SVC, "dev", service("a", clusterIP="10.96.0.50"), OPTS)
    with pytest.raises(errors.APIError) as info:
        await registry.create(SVC, "dev", service("a"), OPTS)
    assert info.value.reason == "AlreadyExists"
    reserved = await registry.store.range(allocator.IP_PREFIX)
    assert [kv.key for kv in reserved.kvs] == [allocator.IP_PREFIX + "10.96.0.50"]


async def test_explicit_ip_taken_is_422(registry: Registry) -> None:
    await registry.create(SVC, "dev", service("a", clusterIP="10.96.0.50"), OPTS)
    with pytest.raises(errors.APIError) as info:
        await registry.create(SVC, "dev", service("b", clusterIP="10.96.0.50"), OPTS)
    assert info.value.code == 422 and "already allocated" in info.value.message


async def test_node_ports_are_distinct_and_freed_on_delete(registry: Registry) -> None:
    ports = set()
    for i in range(11):
        obj = (await registry.create(SVC, "dev", service(f"n{i}", type="NodePort"), OPTS)).obj
        ports.add(obj["spec"]["ports"][0]["nodePort"])
    assert ports == set(range(30000, 30011))
    with pytest.raises(errors.APIError):
        await registry.create(SVC, "dev", service("full", type="NodePort"), OPTS)
    await registry.delete(SVC, "dev", "n3", DeleteOptions())
    again = (await registry.create(SVC, "dev", service("again", type="NodePort"), OPTS)).obj
    assert again["spec"]["ports"][0]["nodePort"] in ports


async def test_concurrent_creates_never_share_an_ip(registry: Registry) -> None:
    results = await asyncio.gather(*(registry.create(SVC, "dev", service(f"s{i}"), OPTS) for i in range(100)))
    ips = [r.obj["spec"]["clusterIP"] for r in results]
    assert len(set(ips)) == 100


async def test_update_with_stale_resource_version_conflicts(registry: Registry) -> None:
    obj = (await registry.create(CM, "dev", {"metadata": {"name": "c"}, "data": {"n": "0"}}, OPTS)).obj
    fresh = (await registry.update(CM, "dev", "c", {**obj, "data": {"n": "1"}}, OPTS)).obj
    assert int(fresh["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])
    with pytest.raises(errors.APIError) as info:
        await registry.update(CM, "dev", "c", {**obj, "data": {"n": "2"}}, OPTS)
    assert info.value.code == 409 and info.value.reason == "Conflict"


async def test_noop_update_keeps_resource_version(registry: Registry) -> None:
    obj = (await registry.create(CM, "dev", {"metadata": {"name": "c"}, "data": {"n": "0"}}, OPTS)).obj
    same = (await registry.update(CM, "dev", "c", obj, OPTS)).obj
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_service_update_keeps_allocated_ip(registry: Registry) -> None:
    obj = (await registry.create(SVC, "dev", service("a"), OPTS)).obj
    body = service("a")
    body["metadata"]["labels"] = {"x": "y"}
    updated = (await registry.update(SVC, "dev", "a", body, OPTS)).obj
    assert updated["spec"]["clusterIP"] == obj["spec"]["clusterIP"]


async def test_patch_merge(registry: Registry) -> None:
    await registry.create(CM, "dev", {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}, OPTS)
    patched = (await registry.patch(CM, "dev", "c", "application/merge-patch+json",
                                    b'{"data":{"a":null,"c":"3"}}', OPTS)).obj
    assert patched["data"] == {"b": "2", "c": "3"}


async def test_dry_run_writes_nothing(registry: Registry) -> None:
    before = await registry.store.current_revision()
    obj = (await registry.create(SVC, "dev", service("a"), WriteOptions(dry_run=True))).obj
    assert obj["spec"]["clusterIP"]
    assert await registry.store.current_revision() == before


async def test_list_with_selectors_and_pages(registry: Registry) -> None:
    for i in range(7):
        body = {"metadata": {"name": f"c{i}", "labels": {"parity": "even" if i % 2 == 0 else "odd"}}}
        await registry.create(CM, "dev", body, OPTS)
    even = await registry.list(CM, "dev", ListOptions(label_selector="parity=even"))
    assert [o["metadata"]["name"] for o in even["items"]] == ["c0", "c2", "c4", "c6"]
    names, token = [], ""
    while True:
        page = await registry.list(CM, "dev", ListOptions(limit=3, continue_token=token))
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"c{i}" for i in range(7)]
    by_name = await registry.list(CM, None, ListOptions(field_selector="metadata.name=c3"))
    assert [o["metadata"]["name"] for o in by_name["items"]] == ["c3"]


async def test_graceful_pod_deletion_and_finalizers(registry: Registry) -> None:
    pod = {"metadata": {"name": "p", "finalizers": ["example.com/hold"]},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}
    await registry.create(POD, "dev", pod, OPTS)
    marked, gone = await registry.delete(POD, "dev", "p", DeleteOptions())
    assert not gone
    assert marked["metadata"]["deletionTimestamp"] == "2026-11-22T12:00:30Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    _, gone = await registry.delete(POD, "dev", "p", DeleteOptions(grace_period_seconds=0))
    assert not gone, "a finalizer still holds it"
    current = await registry.get(POD, "dev", "p")
    current["metadata"]["finalizers"] = []
    await registry.update(POD, "dev", "p", current, OPTS)
    with pytest.raises(errors.APIError) as info:
        await registry.get(POD, "dev", "p")
    assert info.value.code == 404


async def test_watch_filters_by_label_transitions(registry: Registry) -> None:
    start = await registry.store.current_revision()
    await registry.create(CM, "dev", {"metadata": {"name": "c", "labels": {"app": "a"}}}, OPTS)
    obj = await registry.get(CM, "dev", "c")
    obj["metadata"]["labels"] = {"app": "b"}
    await registry.update(CM, "dev", "c", obj, OPTS)
    seen = []
    flt = Filter.parse("ConfigMap", "app=a", "")
    async for event_type, event_obj in registry.watch(CM, "dev", flt, str(start)):
        seen.append((event_type, event_obj["metadata"]["labels"]["app"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "a"), ("DELETED", "b")]


@pytest.mark.parametrize("labels", [None, {}, {"a": "b"}], ids=["no-labels", "empty-labels", "labels"])
async def test_list_json_splices_resource_versions(registry: Registry, labels: dict | None) -> None:
    meta: dict[str, Any] = {"name": "c"}
    if labels is not None:
        meta["labels"] = labels
    await registry.create(CM, "dev", {"metadata": meta, "data": {"x": '"metadata":{'}}, OPTS)
    import json

    spliced = json.loads(await registry.list_json(CM, "dev", ListOptions()))
    assert spliced == await registry.list(CM, "dev", ListOptions())
    assert spliced["items"][0]["metadata"]["resourceVersion"].isdigit()


# ---- legacy Ingress, DefaultIngressClass, custom kinds ---------------------------------------------------------

ING = resources.lookup("networking.k8s.io", "v1", "ingresses")
ING_EXT = resources.lookup("extensions", "v1beta1", "ingresses")
ING_CLASS = resources.lookup("networking.k8s.io", "v1", "ingressclasses")
GATEWAY = resources.lookup("gateway.networking.k8s.io", "v1", "gateways")


def v1_ingress(name: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}


async def test_patch_through_legacy_version_applies_to_the_legacy_form(registry: Registry) -> None:
    await registry.create(ING, "dev", v1_ingress("a"), OPTS)
    body = b'{"spec":{"backend":{"servicePort":"http"}}}'
    result = await registry.patch(ING, "dev", "a", "application/merge-patch+json", body, OPTS, served=ING_EXT)
    assert result.obj["apiVersion"] == "networking.k8s.io/v1"
    assert result.obj["spec"] == {"defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}}}
    with pytest.raises(errors.APIError) as caught:  # the legacy form's apiVersion is the only one it takes
        await registry.patch(ING, "dev", "a", "application/merge-patch+json",
                             b'{"apiVersion":"networking.k8s.io/v1"}', OPTS, served=ING_EXT)
    assert caught.value.code == 400


async def test_default_ingress_class_on_create_only(registry: Registry) -> None:
    await registry.create(ING, "dev", v1_ingress("before"), OPTS)
    await registry.create(ING_CLASS, "", {"metadata": {"name": "main", "annotations": {
        "ingressclass.kubernetes.io/is-default-class": "true"}}, "spec": {"controller": "svcnet.io/ingress"}}, OPTS)
    created = (await registry.create(ING, "dev", v1_ingress("after"), OPTS)).obj
    assert created["spec"]["ingressClassName"] == "main"
    before = await registry.get(ING, "dev", "before")
    updated = await registry.update(ING, "dev", "before", before, OPTS)
    assert "ingressClassName" not in updated.obj["spec"]


async def test_custom_kinds_refuse_strategic_merge_patch_and_ignore_undefaulted_lists(registry: Registry) -> None:
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
          "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
          "status": {"conditions": []}}
    created = (await registry.create(GATEWAY, "dev", gw, OPTS)).obj
    assert [c["type"] for c in created["status"]["conditions"]] == ["Accepted", "Programmed"]  # create resets status
    with pytest.raises(errors.APIError) as caught:
        await registry.patch(GATEWAY, "dev", "g", "application/strategic-merge-patch+json", b"{}", OPTS)
    assert caught.value.code == 415
    same = b'{"spec":{"listeners":[{"name":"http","port":80,"protocol":"HTTP"}]}}'
    result = await registry.patch(GATEWAY, "dev", "g", "application/merge-patch+json", same, OPTS)
    assert result.obj["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert result.obj["metadata"]["generation"] == 1
