"""What a ReplicaSet (or ReplicationController) must do to reach its replica count — pure.

Rules (kube's replica set controller):
- a pod belongs to the set when its controller ownerReference carries the set's uid; a pod with no controller
  that matches the selector (and is not terminating) is adopted; an owned pod whose labels stopped matching is
  released;
- active pods are owned, not terminating and not Succeeded/Failed; the set creates `replicas - active` pods from
  its template, or deletes the surplus, first the pods that matter least: unscheduled before scheduled, Pending
  before Unknown before Running, not ready before ready, more restarts first, newer first;
- status counts active pods (`replicas`), those with all template labels (`fullyLabeledReplicas`), the ready ones
  (`readyReplicas`; ready for `minReadySeconds` counts as available) and records `observedGeneration`.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import selectors

Obj = dict[str, Any]
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass
class Ownership:
    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def selector_of(owner: Obj) -> selectors.LabelSelector:
    raw = owner.get("spec", {}).get("selector") or {}
    if owner.get("kind") == "ReplicationController":
        return selectors.selector_from_map(raw)
    return selectors.selector_from_label_selector(raw)


def controller_ref(obj: Obj) -> Obj | None:
    return next((r for r in obj.get("metadata", {}).get("ownerReferences") or [] if r.get("controller")), None)


def terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def classify(owner: Obj, pods: list[Obj]) -> Ownership:
    meta = owner["metadata"]
    selector = selector_of(owner)
    result = Ownership()
    for pod in pods:
        if pod["metadata"].get("namespace") != meta.get("namespace"):
            continue
        ref = controller_ref(pod)
        matches = not selector.empty and selector.matches(pod["metadata"].get("labels") or {})
        if ref is not None and ref.get("uid") == meta.get("uid"):
            (result.owned if matches else result.release).append(pod)
        elif ref is None and matches and not terminating(pod) and not meta.get("deletionTimestamp"):
            result.adopt.append(pod)
    return result


def active(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not terminating(p) and p.get("status", {}).get("phase") not in ("Succeeded",
                                                                                                "Failed")]


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    status = pod.get("status", {})
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = pod["metadata"].get("creationTimestamp") or ""
    return (bool(pod.get("spec", {}).get("nodeName")), _PHASE_RANK.get(status.get("phase", "Pending"), 0),
            pod_ready(pod), -restarts, _invert(created), pod["metadata"]["name"])


def _invert(text: str) -> tuple[int, ...]:
    """Sort newer timestamps first."""
    return tuple(-ord(c) for c in text)


def pods_to_delete(active_pods: list[Obj], surplus: int) -> list[Obj]:
    return sorted(active_pods, key=_deletion_rank)[:max(surplus, 0)]


def pod_from_template(owner: Obj) -> Obj:
    meta = owner["metadata"]
    template = copy.deepcopy(owner.get("spec", {}).get("template") or {})
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": f"{meta['name']}-", "namespace": meta.get("namespace", ""),
                     "labels": template_meta.get("labels") or {},
                     "ownerReferences": [{"apiVersion": owner.get("apiVersion", "apps/v1"), "kind": owner["kind"],
                                          "name": meta["name"], "uid": meta.get("uid", ""), "controller": True,
                                          "blockOwnerDeletion": True}]}
    if template_meta.get("annotations"):
        pod_meta["annotations"] = template_meta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}


def _available(pod: Obj, min_ready: int, now: datetime.datetime) -> bool:
    if not pod_ready(pod):
        return False
    if min_ready <= 0:
        return True
    ready = next(c for c in pod["status"]["conditions"] if c.get("type") == "Ready")
    since = ready.get("lastTransitionTime")
    if not since:
        return False
    moment = datetime.datetime.fromisoformat(since[:19]).replace(tzinfo=datetime.UTC)
    return (now - moment).total_seconds() >= min_ready


def compute_status(owner: Obj, active_pods: list[Obj], now: datetime.datetime) -> Obj:
    template_labels = ((owner.get("spec", {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(owner.get("spec", {}).get("minReadySeconds", 0) or 0)
    status: Obj = {
        "replicas": len(active_pods),
        "fullyLabeledReplicas": sum(1 for p in active_pods if all(
            (p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())),
        "readyReplicas": sum(1 for p in active_pods if pod_ready(p)),
        "availableReplicas": sum(1 for p in active_pods if _available(p, min_ready, now)),
        "observedGeneration": owner["metadata"].get("generation", 1),
    }
    kept = {k: v for k, v in (owner.get("status") or {}).items() if k not in status}
    return {**kept, **{k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}}
