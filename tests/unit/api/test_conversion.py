"""Conversion of Ingress between extensions/v1beta1, networking.k8s.io/v1beta1 and networking.k8s.io/v1."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api import conversion
from svcnet.api.jsontree import clone

EXT, BETA, V1 = "extensions/v1beta1", "networking.k8s.io/v1beta1", "networking.k8s.io/v1"


def ingress(api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "kubia", "namespace": "default"},
            "spec": spec, "status": {"loadBalancer": {}}}


def rule(*paths: dict[str, Any], host: str = "kubia.example.com") -> dict[str, Any]:
    return {"host": host, "http": {"paths": list(paths)}}


RESOURCE = {"apiGroup": "storage.example.com", "kind": "Bucket", "name": "assets"}

# (id, legacy spec, v1 spec): legacy -> v1 gives the v1 spec; v1 -> legacy gives the legacy spec with pathType set
CASES = [
    pytest.param(
        {"rules": [rule({"path": "/kubia", "backend": {"serviceName": "kubia", "servicePort": 80}})]},
        {"rules": [rule({"path": "/kubia", "pathType": "ImplementationSpecific",
                         "backend": {"service": {"name": "kubia", "port": {"number": 80}}}})]},
        id="seed-path-number-port-no-path-type"),
    pytest.param(
        {"backend": {"serviceName": "fallback", "servicePort": "http"}},
        {"defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}}},
        id="default-backend-named-port"),
    pytest.param(
        {"rules": [rule({"path": "/s", "pathType": "Prefix", "backend": {"resource": RESOURCE}})]},
        {"rules": [rule({"path": "/s", "pathType": "Prefix", "backend": {"resource": RESOURCE}})]},
        id="resource-backend-kept"),
    pytest.param(
        {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
         "rules": [{"host": "no-http.example.com"}]},
        {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
         "rules": [{"host": "no-http.example.com"}]},
        id="class-tls-and-rule-without-http-unchanged"),
]


@pytest.mark.parametrize(("legacy", "v1"), CASES)
@pytest.mark.parametrize("version", [EXT, BETA])
def test_legacy_to_v1_and_back(version: str, legacy: dict[str, Any], v1: dict[str, Any]) -> None:
    original = ingress(version, legacy)
    kept = clone(original)
    converted = conversion.convert(original, V1)
    assert original == kept  # never mutated
    assert converted == ingress(V1, v1)
    back = conversion.convert(converted, version)
    assert conversion.convert(back, V1) == converted  # v1 -> v1beta1 -> v1 is the identity
    for path in (p for r in back["spec"].get("rules", []) for p in (r.get("http") or {}).get("paths", [])):
        assert path["pathType"] in ("ImplementationSpecific", "Prefix")
        assert "service" not in path["backend"]


def test_between_legacy_versions_and_to_itself() -> None:
    beta = ingress(BETA, {"backend": {"serviceName": "a", "servicePort": 80}})
    assert conversion.convert(beta, EXT) == {**beta, "apiVersion": EXT}
    assert conversion.convert(beta, BETA) == beta


def test_unknown_fields_and_odd_shapes_are_carried_over() -> None:
    odd = ingress(EXT, {"bogus": 1, "rules": "not-a-list", "backend": {"serviceName": "a", "extra": True}})
    assert conversion.convert(odd, V1)["spec"] == {"bogus": 1, "rules": "not-a-list",
                                                  "defaultBackend": {"extra": True, "service": {"name": "a"}}}
    assert conversion.convert(ingress(EXT, "not-a-dict"), V1)["spec"] == "not-a-dict"  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "source", "target"), [
    pytest.param("Service", "v1", "v2", id="no-such-version"),
    pytest.param("Ingress", V1, "networking.k8s.io/v2", id="unknown-target"),
])
def test_unsupported_pairs_raise(kind: str, source: str, target: str) -> None:
    assert not conversion.converts(kind, source, target)
    with pytest.raises(ValueError, match="no conversion"):
        conversion.convert({"apiVersion": source, "kind": kind}, target)
