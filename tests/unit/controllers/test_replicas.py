"""ReplicaSet rules: ownership/adoption, deletion order, template pods, status — as tables."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.controllers import replicas

NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.UTC)


def rs(replicas_: int = 3, uid: str = "rs-uid", kind: str = "ReplicaSet") -> dict[str, Any]:
    selector: dict[str, Any] = {"app": "web"} if kind == "ReplicationController" else {"matchLabels": {"app": "web"}}
    return {"apiVersion": "apps/v1" if kind == "ReplicaSet" else "v1", "kind": kind,
            "metadata": {"name": "web-abc", "namespace": "dev", "uid": uid, "generation": 2},
            "spec": {"replicas": replicas_, "selector": selector,
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, owner: str | None = "rs-uid", labels: dict | None = None, node: str = "n1",
        phase: str = "Running", ready: bool = True, restarts: int = 0, created: str = "2026-11-22T10:00:00Z",
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "dev", "labels": labels or {"app": "web", "tier": "fe"},
                            "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web-abc", "uid": owner, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T11:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": "2026-11-22T11:59:00Z"}],
                       "containerStatuses": [{"restartCount": restarts}]}}


def names(pods: list) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


@pytest.mark.parametrize("kind", ["ReplicaSet", "ReplicationController"])
def test_classify_owned_adopted_released_and_foreign(kind: str) -> None:
    pods = [pod("mine"), pod("orphan", owner=None), pod("foreign", owner="other-uid"),
            pod("moved", labels={"app": "other"}), pod("orphan-dying", owner=None, deleting=True),
            pod("orphan-nomatch", owner=None, labels={"app": "x"})]
    result = replicas.classify(rs(kind=kind), pods)
    assert (names(result.owned), names(result.adopt), names(result.release)) == (["mine"], ["orphan"], ["moved"])


def test_active_excludes_terminal_and_terminating() -> None:
    pods = [pod("a"), pod("b", phase="Succeeded"), pod("c", phase="Failed"), pod("d", deleting=True)]
    assert names(replicas.active(pods)) == ["a"]


def test_deletion_order() -> None:
    pods = [pod("ready-old"), pod("not-ready", ready=False), pod("unscheduled", node="", phase="Pending"),
            pod("pending", phase="Pending"), pod("restarty", restarts=5),
            pod("ready-new", created="2026-11-22T11:00:00Z")]
    order = names(replicas.pods_to_delete(pods, 6))
    assert order == ["unscheduled", "pending", "not-ready", "restarty", "ready-new", "ready-old"]
    assert names(replicas.pods_to_delete(pods, 0)) == []


def test_pod_from_template() -> None:
    made = replicas.pod_from_template(rs())
    assert made["metadata"]["generateName"] == "web-abc-"
    assert made["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert made["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                      "name": "web-abc", "uid": "rs-uid", "controller": True,
                                                      "blockOwnerDeletion": True}
    assert made["spec"]["containers"][0]["image"] == "nginx"


def test_status_counts() -> None:
    owner = rs()
    owner["spec"]["minReadySeconds"] = 120
    pods = [pod("a"), pod("b", ready=False), pod("c", labels={"app": "web"})]
    status = replicas.compute_status(owner, pods, NOW)
    # zero counts are omitted, as kube's omitempty does
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "observedGeneration": 2}
    owner["spec"]["minReadySeconds"] = 30
    assert replicas.compute_status(owner, pods, NOW)["availableReplicas"] == 2
