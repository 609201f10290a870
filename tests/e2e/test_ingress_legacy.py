"""The legacy Ingress versions (extensions/v1beta1, networking.k8s.io/v1beta1) with the real kubectl: the seed
tutorial's manifest applies with kube's deprecation warning, reads back as networking.k8s.io/v1 and in the legacy
form; watches through a legacy version convert each event; DefaultIngressClass admission picks the default class."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import Server, killpg, table, write

SEED = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: kubia}
spec:
  rules:
  - host: kubia.example.com
    http:
      paths:
      - path: /kubia
        backend: {serviceName: kubia, servicePort: 80}
      - path: /foo
        backend: {serviceName: bar, servicePort: 80}
"""
EXTENSIONS_WARNING = ("Warning: extensions/v1beta1 Ingress is deprecated in v1.14+, unavailable in v1.22+; use "
                      "networking.k8s.io/v1 Ingress")
NETWORKING_WARNING = ("Warning: networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+, unavailable in v1.22+; "
                      "use networking.k8s.io/v1 Ingress")


def get_json(server: Server, *args: str) -> dict[str, Any]:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def v1_path(path: str, service: str) -> dict[str, Any]:
    return {"path": path, "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": service, "port": {"number": 80}}}}


def test_seed_manifest_applies_with_warning_and_reads_back_in_both_forms(server: Server, ns: str,
                                                                          tmp_path: Path) -> None:
    path = write(tmp_path, "kubia-ingress.yaml", SEED)
    applied = server.kubectl("apply", "-n", ns, "-f", str(path))
    assert applied.stdout.strip() == "ingress.extensions/kubia created", applied
    assert EXTENSIONS_WARNING in applied.stderr, applied

    v1 = yaml.safe_load(server.kubectl("get", "ingress", "kubia", "-n", ns, "-o", "yaml").stdout)
    assert v1["apiVersion"] == "networking.k8s.io/v1"
    assert v1["spec"]["rules"] == [{"host": "kubia.example.com", "http": {"paths": [
        v1_path("/kubia", "kubia"), v1_path("/foo", "bar")]}}]

    legacy_get = server.kubectl("get", "ingresses.v1beta1.extensions", "kubia", "-n", ns, "-o", "yaml")
    assert EXTENSIONS_WARNING in legacy_get.stderr, legacy_get
    legacy = yaml.safe_load(legacy_get.stdout)
    assert legacy["apiVersion"] == "extensions/v1beta1"
    assert legacy["spec"]["rules"][0]["http"]["paths"] == [
        {"path": "/kubia", "pathType": "ImplementationSpecific",
         "backend": {"serviceName": "kubia", "servicePort": 80}},
        {"path": "/foo", "pathType": "ImplementationSpecific", "backend": {"serviceName": "bar", "servicePort": 80}},
    ]

    # applying the same manifest again writes nothing (kubectl still says "configured", as against kube: the
    # server-defaulted pathType makes its patch replace the atomic rules list with an equal one)
    again = server.kubectl("apply", "-n", ns, "-f", str(path))
    assert again.rc == 0 and EXTENSIONS_WARNING in again.stderr, again
    after = get_json(server, "ingress", "kubia", "-n", ns)
    assert after["metadata"]["resourceVersion"] == v1["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == 1
    header, rows = table(server.kubectl("get", "ingress", "-n", ns).stdout)
    assert header == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert rows[0][:3] == ["kubia", "<none>", "kubia.example.com"]

    # a changed port through the legacy version: client-side apply patches it, stored as v1
    write(tmp_path, "kubia-ingress.yaml", SEED.replace("{serviceName: bar, servicePort: 80}",
                                                       "{serviceName: bar, servicePort: http}"))
    changed = server.kubectl("apply", "-n", ns, "-f", str(path))
    assert changed.stdout.strip() == "ingress.extensions/kubia configured", changed
    paths = get_json(server, "ingress", "kubia", "-n", ns)["spec"]["rules"][0]["http"]["paths"]
    assert paths[1]["backend"] == {"service": {"name": "bar", "port": {"name": "http"}}}

    deleted = server.kubectl("delete", "ingresses.v1beta1.extensions", "kubia", "-n", ns)
    assert deleted.stdout.strip() == 'ingress.extensions "kubia" deleted', deleted
    assert server.kubectl("get", "ingress", "kubia", "-n", ns, check=False).rc == 1


def test_networking_v1beta1_default_backend_and_resource_backend(server: Server, ns: str, tmp_path: Path) -> None:
    manifest = {"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress", "metadata": {"name": "beta"},
                "spec": {"backend": {"serviceName": "fallback", "servicePort": "web"},
                         "rules": [{"http": {"paths": [{"path": "/static", "pathType": "Prefix", "backend": {
                             "resource": {"apiGroup": "storage.example.com", "kind": "Bucket", "name": "assets"}}}]}}]}}
    created = server.kubectl("create", "-n", ns, "-f", str(write(tmp_path, "beta.json", json.dumps(manifest))))
    assert created.stdout.strip() == "ingress.networking.k8s.io/beta created", created
    assert NETWORKING_WARNING in created.stderr, created
    v1 = get_json(server, "ingress", "beta", "-n", ns)
    assert v1["spec"]["defaultBackend"] == {"service": {"name": "fallback", "port": {"name": "web"}}}
    assert v1["spec"]["rules"][0]["http"]["paths"][0] == {"path": "/static", "pathType": "Prefix", "backend": {
        "resource": {"apiGroup": "storage.example.com", "kind": "Bucket", "name": "assets"}}}
    beta = get_json(server, "ingresses.v1beta1.networking.k8s.io", "beta", "-n", ns)
    assert beta["spec"]["backend"] == {"serviceName": "fallback", "servicePort": "web"}
    assert "defaultBackend" not in beta["spec"]


def test_invalid_legacy_ingress_is_a_422_with_v1_field_paths(server: Server, ns: str, tmp_path: Path) -> None:
    bad = SEED.replace("servicePort: 80}", "servicePort: 70000}", 1)
    result = server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "bad.yaml", bad)), check=False)
    assert result.rc == 1
    assert 'The Ingress "kubia" is invalid' in result.stderr, result
    assert "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000" in result.stderr, result
    assert EXTENSIONS_WARNING in result.stderr, result


def test_watch_through_legacy_version_converts_events(server: Server, ns: str, tmp_path: Path) -> None:
    proc, reader = server.kubectl_popen("get", "ingresses.v1beta1.extensions", "-n", ns, "--watch",
                                        "--output-watch-events", "-o", "json")

    def event(kind: str, path: str) -> Callable[[str], bool]:
        def matches(line: str) -> bool:
            obj = json.loads(line)
            paths = obj["object"]["spec"]["rules"][0]["http"]["paths"]
            return obj["type"] == kind and any(p["path"] == path for p in paths)
        return matches

    try:
        server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "seed.yaml", SEED)))
        reader.wait_line(event("ADDED", "/foo"), 30, "the ADDED event")
        server.kubectl("apply", "-f", "-", "-n", ns, input=SEED.replace("/foo", "/bar"))
        reader.wait_line(event("MODIFIED", "/bar"), 30, "the MODIFIED event")
    finally:
        killpg(proc)
    for line in reader.lines:
        obj = json.loads(line)["object"]
        assert obj["apiVersion"] == "extensions/v1beta1"
        assert obj["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {"serviceName": "kubia", "servicePort": 80}


def _ingress_class(name: str, default: bool) -> dict[str, Any]:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": annotations}, "spec": {"controller": "svcnet.io/ingress"}}


def test_default_ingress_class_admission(server: Server, ns: str, tmp_path: Path) -> None:
    prefix = ns[-6:]
    classes = [_ingress_class(f"plain-{prefix}", False), _ingress_class(f"default-{prefix}", True)]
    server.kubectl("apply", "-f", str(write(tmp_path, "classes.yaml", yaml.safe_dump_all(classes))))
    try:
        server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "seed.yaml", SEED)))
        assert get_json(server, "ingress", "kubia", "-n", ns)["spec"]["ingressClassName"] == f"default-{prefix}"
        named = SEED.replace("name: kubia}", "name: named}").replace("spec:\n", "spec:\n  ingressClassName: mine\n")
        server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "named.yaml", named)))
        assert get_json(server, "ingress", "named", "-n", ns)["spec"]["ingressClassName"] == "mine"
        annotated = SEED.replace("name: kubia}", "name: annotated, annotations: {kubernetes.io/ingress.class: x}}")
        server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "annotated.yaml", annotated)))
        assert "ingressClassName" not in get_json(server, "ingress", "annotated", "-n", ns)["spec"]
    finally:
        server.kubectl("delete", "ingressclass", f"plain-{prefix}", f"default-{prefix}")
    unclassed = SEED.replace("name: kubia}", "name: unclassed}")
    server.kubectl("apply", "-n", ns, "-f", str(write(tmp_path, "unclassed.yaml", unclassed)))
    assert "ingressClassName" not in get_json(server, "ingress", "unclassed", "-n", ns)["spec"]


def test_discovery_keeps_ingress_on_networking_v1(server: Server) -> None:
    resources = server.kubectl("api-resources", "--api-group=networking.k8s.io").stdout
    assert "networking.k8s.io/v1 " in resources and "v1beta1" not in resources
    versions = server.kubectl("api-versions").stdout.split()
    assert {"extensions/v1beta1", "networking.k8s.io/v1beta1", "networking.k8s.io/v1"} <= set(versions)
    explain = server.kubectl("explain", "ingress.spec.backend", "--api-version=extensions/v1beta1")
    assert "serviceName" in explain.stdout, explain
