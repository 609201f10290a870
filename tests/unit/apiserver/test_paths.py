"""Resource URL parsing: every URL form kubectl and client-go use."""

from __future__ import annotations

import pytest

from svcnet.api import errors
from svcnet.apiserver import paths


@pytest.mark.parametrize(
    ("group", "version", "rest", "expected"),
    [
        pytest.param("", "v1", ["services"], ("Service", None, "", ""), id="all-namespaces-list"),
        pytest.param("", "v1", ["namespaces", "dev", "services"], ("Service", "dev", "", ""), id="ns-list"),
        pytest.param("", "v1", ["namespaces", "dev", "services", "a"], ("Service", "dev", "a", ""), id="item"),
        pytest.param("", "v1", ["namespaces", "dev", "services", "a", "status"], ("Service", "dev", "a", "status"),
                     id="status"),
        pytest.param("", "v1", ["namespaces", "dev"], ("Namespace", None, "dev", ""), id="namespace-item"),
        pytest.param("", "v1", ["namespaces", "dev", "status"], ("Namespace", None, "dev", "status"),
                     id="namespace-status"),
        pytest.param("", "v1", ["namespaces", "dev", "finalize"], ("Namespace", None, "dev", "finalize"),
                     id="namespace-finalize"),
        pytest.param("", "v1", ["nodes", "n1"], ("Node", None, "n1", ""), id="cluster-item"),
        pytest.param("apps", "v1", ["namespaces", "d", "deployments", "x", "scale"], ("Deployment", "d", "x", "scale"),
                     id="scale"),
        pytest.param("", "v1", ["namespaces", "d", "pods", "p", "log"], ("Pod", "d", "p", "log"), id="log"),
        pytest.param("", "v1", ["watch", "namespaces", "d", "pods"], ("Pod", "d", "", ""), id="legacy-watch"),
    ],
)
def test_parse(group: str, version: str, rest: list[str], expected: tuple[str, str | None, str, str]) -> None:
    target = paths.parse(group, version, rest)
    assert (target.info.kind, target.namespace, target.name, target.subresource) == expected


@pytest.mark.parametrize(
    ("group", "version", "rest"),
    [
        pytest.param("", "v1", ["widgets"], id="unknown-resource"),
        pytest.param("", "v2", ["services"], id="unknown-version"),
        pytest.param("", "v1", ["namespaces", "d", "nodes"], id="cluster-kind-in-namespace"),
        pytest.param("", "v1", ["services", "a"], id="namespaced-item-without-namespace"),
        pytest.param("", "v1", ["namespaces", "d", "services", "a", "scale"], id="missing-subresource"),
        pytest.param("", "v1", ["namespaces", "d", "services", "a", "status", "x"], id="too-deep"),
    ],
)
def test_parse_rejects(group: str, version: str, rest: list[str]) -> None:
    with pytest.raises(errors.APIError) as info:
        paths.parse(group, version, rest)
    assert info.value.code == 404
