"""What create resets and update carries over, per kind."""

from __future__ import annotations

import pytest

from svcnet.api import resources
from svcnet.apiserver import services, strategies

SVC = resources.lookup("", "v1", "services")
POD = resources.lookup("", "v1", "pods")
CM = resources.lookup("", "v1", "configmaps")
DEPLOY = resources.lookup("apps", "v1", "deployments")


def test_create_resets_service_status_and_sets_generation() -> None:
    obj = strategies.prepare_for_create(SVC, {"metadata": {"name": "a"}, "status": {"loadBalancer": {"x": 1}}})
    assert obj["status"] == {"loadBalancer": {}}
    assert obj["metadata"]["generation"] == 1


def test_create_pod_is_pending_with_qos() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
           "status": {"phase": "Running"}}
    assert strategies.prepare_for_create(POD, pod)["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def _stored(obj: dict) -> dict:
    base = {"metadata": {"name": "x", "namespace": "d", "uid": "u1", "creationTimestamp": "t", "generation": 3}}
    base.update(obj)
    return base


@pytest.mark.parametrize(
    ("info", "old", "new", "sub", "expected_status", "expected_generation"),
    [
        pytest.param(DEPLOY, _stored({"spec": {"replicas": 1}, "status": {"replicas": 1}}),
                     {"metadata": {"name": "x"}, "spec": {"replicas": 2}, "status": {"replicas": 9}}, "",
                     {"replicas": 1}, 4, id="main-update-keeps-status-bumps-generation"),
        pytest.param(DEPLOY, _stored({"spec": {"replicas": 1}, "status": {"replicas": 1}}),
                     {"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"replicas": 1}}, "",
                     {"replicas": 1}, 3, id="metadata-only-keeps-generation"),
        pytest.param(DEPLOY, _stored({"spec": {"replicas": 1}, "status": {"replicas": 1}}),
                     {"metadata": {"name": "x"}, "spec": {"replicas": 7}, "status": {"replicas": 2}}, "status",
                     {"replicas": 2}, 3, id="status-update-keeps-spec"),
    ],
)
def test_prepare_for_update(info, old, new, sub, expected_status, expected_generation) -> None:
    result = strategies.prepare_for_update(info, new, old, sub)
    assert result["status"] == expected_status
    assert result["metadata"]["generation"] == expected_generation
    assert result["metadata"]["uid"] == "u1"
    if sub == "status":
        assert result["spec"] == old["spec"]


def test_update_of_configmap_has_no_generation() -> None:
    old = {"metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}}
    result = strategies.prepare_for_update(CM, {"metadata": {"name": "c"}, "data": {"a": "2"}}, old, "")
    assert "generation" not in result["metadata"]


def test_held_and_keep_allocations() -> None:
    old = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.5",
                                                "clusterIPs": ["10.96.0.5"],
                                                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30002}]}}
    assert services.held(old) == ({"10.96.0.5"}, {30002})
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}}
    kept = services.ServiceHooks(None).keep_allocations(SVC, new, old)  # type: ignore[arg-type]
    assert kept["spec"]["clusterIP"] == "10.96.0.5"
    assert kept["spec"]["ports"][0]["nodePort"] == 30002
    assert "clusterIP" not in new["spec"], "input must not be mutated"
