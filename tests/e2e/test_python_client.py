"""The official python client (`kubernetes`, configured with `load_kube_config`): list, watch, paging, errors."""

from __future__ import annotations

import json
import threading
from queue import Queue
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Server


@pytest.fixture(scope="module")
def v1(server: Server) -> client.CoreV1Api:
    return client.CoreV1Api(server.python_client())


def service(name: str, port: int = 80, labels: dict[str, str] | None = None) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=port)]))


def test_list_services(v1: client.CoreV1Api, ns: str) -> None:
    everywhere = v1.list_service_for_all_namespaces()
    kubernetes = [s for s in everywhere.items if (s.metadata.namespace, s.metadata.name) == ("default", "kubernetes")]
    assert len(kubernetes) == 1 and kubernetes[0].spec.cluster_ip == "10.96.0.1"
    assert kubernetes[0].spec.ports[0].port == 443
    for i in range(3):
        v1.create_namespaced_service(ns, service(f"s{i}", 80 + i, {"tier": "a" if i < 2 else "b"}))
    listed = v1.list_namespaced_service(ns)
    assert sorted(s.metadata.name for s in listed.items) == ["s0", "s1", "s2"]
    assert int(listed.metadata.resource_version) > 0
    selected = v1.list_namespaced_service(ns, label_selector="tier=a")
    assert sorted(s.metadata.name for s in selected.items) == ["s0", "s1"]
    selected = v1.list_namespaced_service(ns, label_selector="tier in (b),tier!=a")
    assert [s.metadata.name for s in selected.items] == ["s2"]
    by_field = v1.list_namespaced_service(ns, field_selector="metadata.name=s1")
    assert [s.metadata.name for s in by_field.items] == ["s1"]
    svc = v1.read_namespaced_service("s2", ns)
    assert svc.spec.ports[0].port == 82 and svc.spec.ports[0].target_port == 82
    assert svc.spec.cluster_ip and svc.spec.type == "ClusterIP"


def test_list_pages_with_limit_and_continue(v1: client.CoreV1Api, ns: str) -> None:
    for i in range(7):
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm{i}")))
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = v1.list_namespaced_config_map(ns, limit=3, _continue=token)
        pages += 1
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert len(page.items) == 3
    assert pages == 3 and names == [f"cm{i}" for i in range(7)]


def _watch(v1: client.CoreV1Api, ns: str, rv: str, until: str, out: Queue[Any], **kwargs: Any) -> threading.Thread:
    def run() -> None:
        w = watch.Watch()
        try:
            for event in w.stream(v1.list_namespaced_service, ns, resource_version=rv, timeout_seconds=30,
                                  **kwargs):
                obj = event["object"]
                out.put((event["type"], obj.metadata.name, obj.metadata.resource_version))
                if obj.metadata.name == until:
                    w.stop()
        except Exception as exc:  # noqa: BLE001 — handed to the test
            out.put(("EXCEPTION", repr(exc), ""))
        out.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _drain(out: Queue[Any], timeout: float = 30) -> list[tuple[str, str, str]]:
    events = []
    while (item := out.get(timeout=timeout)) is not None:
        events.append(item)
    return events


def test_watch_services(v1: client.CoreV1Api, ns: str) -> None:
    rv = v1.list_namespaced_service(ns).metadata.resource_version
    out: Queue[Any] = Queue()
    thread = _watch(v1, ns, rv, "sentinel", out)
    a = v1.create_namespaced_service(ns, service("a"))
    patched = v1.patch_namespaced_service("a", ns, {"metadata": {"labels": {"changed": "yes"}}})
    v1.delete_namespaced_service("a", ns)
    sentinel = v1.create_namespaced_service(ns, service("sentinel"))
    events = _drain(out)
    thread.join(5)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a"),
                                              ("ADDED", "sentinel")], events
    rvs = [int(r) for _, _, r in events]
    assert rvs == sorted(set(rvs)) and rvs[0] > int(rv)
    assert events[0][2] == a.metadata.resource_version
    assert events[1][2] == patched.metadata.resource_version
    assert events[3][2] == sentinel.metadata.resource_version


def test_watch_with_label_selector_and_from_zero(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_service(ns, service("old", labels={"w": "yes"}))
    v1.create_namespaced_service(ns, service("other"))
    out: Queue[Any] = Queue()
    # resourceVersion "0": starts with the current objects as ADDED
    thread = _watch(v1, ns, "0", "sentinel", out, label_selector="w=yes")
    v1.create_namespaced_service(ns, service("skipped"))
    v1.patch_namespaced_service("other", ns, {"metadata": {"labels": {"w": "yes"}}})  # enters the selection
    v1.patch_namespaced_service("old", ns, {"metadata": {"labels": {"w": "no"}}})  # leaves it
    v1.create_namespaced_service(ns, service("sentinel", labels={"w": "yes"}))
    events = _drain(out)
    thread.join(5)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "old"), ("ADDED", "other"), ("DELETED", "old"),
                                              ("ADDED", "sentinel")], events


def _body(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def test_errors_as_api_exceptions(v1: client.CoreV1Api, ns: str) -> None:
    with pytest.raises(ApiException) as info:
        v1.read_namespaced_service("missing", ns)
    assert info.value.status == 404 and _body(info.value)["reason"] == "NotFound"

    v1.create_namespaced_service(ns, service("dup"))
    with pytest.raises(ApiException) as info:
        v1.create_namespaced_service(ns, service("dup"))
    assert info.value.status == 409 and _body(info.value)["reason"] == "AlreadyExists"

    with pytest.raises(ApiException) as info:
        v1.create_namespaced_service(ns, service("bad", port=0))
    body = _body(info.value)
    assert info.value.status == 422 and body["reason"] == "Invalid"
    fields = [c["field"] for c in body["details"]["causes"]]
    assert fields[0] == "spec.ports[0].port", fields  # (targetPort defaults to 0 too and is reported next)

    stale = v1.read_namespaced_service("dup", ns)
    v1.patch_namespaced_service("dup", ns, {"metadata": {"labels": {"x": "1"}}})
    stale.metadata.labels = {"x": "2"}
    with pytest.raises(ApiException) as info:
        v1.replace_namespaced_service("dup", ns, stale)
    assert info.value.status == 409 and _body(info.value)["reason"] == "Conflict"


def test_replace_keeps_allocated_cluster_ip(v1: client.CoreV1Api, ns: str) -> None:
    created = v1.create_namespaced_service(ns, service("keep"))
    current = v1.read_namespaced_service("keep", ns)
    current.spec.ports[0].port = 8080
    current.spec.ports[0].target_port = 8080
    replaced = v1.replace_namespaced_service("keep", ns, current)
    assert replaced.spec.cluster_ip == created.spec.cluster_ip
    assert replaced.spec.ports[0].port == 8080
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)


def test_apps_and_networking_clients(server: Server, ns: str) -> None:
    api = server.python_client()
    apps = client.AppsV1Api(api)
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pc-deployment"),
        spec=client.V1DeploymentSpec(
            replicas=3, selector=client.V1LabelSelector(match_labels={"app": "nginx-pod"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "nginx-pod"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="nginx", image="nginx:1.17.1")]))))
    apps.create_namespaced_deployment(ns, dep)
    scale = apps.patch_namespaced_deployment_scale("pc-deployment", ns, {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    assert apps.read_namespaced_deployment("pc-deployment", ns).spec.replicas == 5
    net = client.NetworkingV1Api(api)
    ing = client.V1Ingress(metadata=client.V1ObjectMeta(name="ing"), spec=client.V1IngressSpec(rules=[
        client.V1IngressRule(host="nginx.example.com", http=client.V1HTTPIngressRuleValue(paths=[
            client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=client.V1IngressBackend(
                service=client.V1IngressServiceBackend(name="web", port=client.V1ServiceBackendPort(number=80))))]))]))
    net.create_namespaced_ingress(ns, ing)
    assert [i.metadata.name for i in net.list_namespaced_ingress(ns).items] == ["ing"]
    disc = client.DiscoveryV1Api(api)
    es = client.V1EndpointSlice(address_type="IPv4", metadata=client.V1ObjectMeta(
        name="web-1", labels={"kubernetes.io/service-name": "web"}),
        endpoints=[client.V1Endpoint(addresses=["10.244.0.9"])], ports=[client.DiscoveryV1EndpointPort(port=80)])
    disc.create_namespaced_endpoint_slice(ns, es)
    listed = disc.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web")
    assert [e.metadata.name for e in listed.items] == ["web-1"]
