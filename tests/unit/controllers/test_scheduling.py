"""Node choice: fit rules, fewest-pods-first, deterministic ties, kube-scheduler's wording when nothing fits."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers import scheduling


def node(name: str, ready: bool = True, labels: dict | None = None, cordoned: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"unschedulable": cordoned},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(node_name: str = "", selector: dict | None = None, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"nodeName": node_name, "nodeSelector": selector or {}}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("the_pod", "nodes", "running", "expected"),
    [
        pytest.param(pod(), [node("b"), node("a")], [], scheduling.Decision("a"), id="tie-by-name"),
        pytest.param(pod(), [node("a"), node("b")], [pod("a"), pod("a"), pod("b")], scheduling.Decision("b"),
                     id="fewest-pods"),
        pytest.param(pod(), [node("a"), node("b")], [pod("a"), pod("a", phase="Succeeded")],
                     scheduling.Decision("b"), id="finished-pods-do-not-count"),
        pytest.param(pod(selector={"disk": "ssd"}), [node("a"), node("b", labels={"disk": "ssd"})], [],
                     scheduling.Decision("b"), id="node-selector"),
        pytest.param(pod(), [node("a", ready=False), node("b", cordoned=True)], [],
                     scheduling.Decision(None, "0/2 nodes are available: 1 node(s) were not ready, "
                                               "1 node(s) were unschedulable."), id="nothing-fits"),
        pytest.param(pod(selector={"x": "y"}), [node("a")], [],
                     scheduling.Decision(None, "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                                               "affinity/selector."), id="selector-misfit"),
        pytest.param(pod(), [], [], scheduling.Decision(None, "no nodes available to schedule pods"),
                     id="no-nodes"),
    ],
)
def test_choose_node(the_pod: dict, nodes: list, running: list, expected: scheduling.Decision) -> None:
    assert scheduling.choose_node(the_pod, nodes, running) == expected
