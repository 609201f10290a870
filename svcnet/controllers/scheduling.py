"""Choosing a node for a pod — pure.

A node fits when its Ready condition is True, it is not cordoned (`spec.unschedulable`) and its labels satisfy
the pod's `nodeSelector`. Among fitting nodes the one running the fewest (non-terminal) pods wins; ties go to
the node name, so the choice is deterministic. When nothing fits, the reason reads like kube-scheduler's:
`0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) were not ready.`
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR = "node(s) didn't match Pod's node affinity/selector"


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None
    reason: str = ""


def node_ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions") or [])


def _misfit(pod: Obj, node: Obj) -> str:
    if not node_ready(node):
        return NOT_READY
    if node.get("spec", {}).get("unschedulable"):
        return UNSCHEDULABLE
    labels = node.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod.get("spec", {}).get("nodeSelector") or {}).items()):
        return SELECTOR
    return ""


def choose_node(pod: Obj, nodes: list[Obj], pods: list[Obj]) -> Decision:
    load = Counter(p.get("spec", {}).get("nodeName") for p in pods
                   if p.get("spec", {}).get("nodeName") and p.get("status", {}).get("phase") not in
                   ("Succeeded", "Failed"))
    fitting, misfits = [], Counter[str]()
    for node in nodes:
        problem = _misfit(pod, node)
        if problem:
            misfits[problem] += 1
        else:
            fitting.append(node["metadata"]["name"])
    if fitting:
        return Decision(min(fitting, key=lambda name: (load[name], name)))
    if not nodes:
        return Decision(None, "no nodes available to schedule pods")
    details = ", ".join(f"{count} {why}" for why, count in sorted(misfits.items()))
    return Decision(None, f"0/{len(nodes)} nodes are available: {details}.")
