"""Per-kind server behaviour that is not validation: what create resets, what update keeps, generation rules.

Pure functions over dicts, mirroring kube-apiserver's registry strategies (PrepareForCreate / PrepareForUpdate).
"""

from __future__ import annotations

from typing import Any

from svcnet.api.jsontree import clone
from svcnet.api.resources import ResourceInfo

# Kinds whose main endpoint ignores status (it is written through /status) and whose create resets it.
_STATUS_RESET_ON_CREATE = {"Service", "Deployment", "ReplicaSet", "ReplicationController", "Ingress"}
# Kinds that may be created by a PUT to a missing name (kube's AllowCreateOnUpdate).
CREATE_ON_UPDATE = {"Endpoints", "Event", "Lease", "Node", "EndpointSlice"}
# Kinds without spec, for which every change counts as a generation change.
_NO_GENERATION = {"Event", "Endpoints", "ConfigMap", "Secret", "Lease", "Namespace", "Node", "ServiceAccount",
                  "EndpointSlice", "ControllerRevision"}
# Kinds whose DELETE answers with the deleted object rather than a Status (kube's ReturnDeletedObject).
RETURN_DELETED_OBJECT = {"Pod", "Service", "ServiceAccount"}
NAMESPACE_FINALIZER = "kubernetes"  # spec.finalizers token the namespace controller removes via /finalize
SERVER_METADATA = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "managedFields", "selfLink")


def has_status_subresource(info: ResourceInfo) -> bool:
    return info.subresource("status") is not None


def prepare_for_create(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    obj = clone(obj)
    meta = obj.setdefault("metadata", {})
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(field, None)
    if info.custom and has_status_subresource(info):  # CRD strategy: create cannot set status
        obj.pop("status", None)
    elif info.kind in _STATUS_RESET_ON_CREATE:
        obj["status"] = {"loadBalancer": {}} if info.kind == "Service" else {}
    elif info.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
    elif info.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        _require_namespace_finalizer(obj)
    if info.kind not in _NO_GENERATION:
        meta["generation"] = 1
    return obj


def _require_namespace_finalizer(ns: dict[str, Any]) -> None:
    """kube: every new namespace carries the "kubernetes" finalizer, whatever spec.finalizers the client sent."""
    spec = ns.setdefault("spec", {})
    if isinstance(spec, dict):
        finalizers = list(spec.get("finalizers") or [])
        spec["finalizers"] = finalizers if NAMESPACE_FINALIZER in finalizers else [*finalizers, NAMESPACE_FINALIZER]


def _qos_class(pod: dict[str, Any]) -> str:
    containers = pod.get("spec", {}).get("containers", [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and (not r.get("requests") or r["requests"] == r["limits"]) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_for_update(info: ResourceInfo, new: dict[str, Any], old: dict[str, Any],
                       subresource: str) -> dict[str, Any]:
    """Carry server-owned fields over from `old`; for /status keep everything but status, for the main
    resource keep status (kinds with a status subresource)."""
    new = clone(new)
    if subresource == "status":
        merged = clone(old)
        merged["status"] = new.get("status", {})
        _carry_metadata(merged, old)
        return merged
    if has_status_subresource(info) and "status" in old:
        new["status"] = clone(old["status"])
    elif has_status_subresource(info):
        new.pop("status", None)
    _carry_metadata(new, old)
    if info.kind == "Namespace" and subresource != "finalize":  # only /finalize changes spec.finalizers
        _carry_namespace_finalizers(new, old)
    if info.kind not in _NO_GENERATION and _spec_changed(new, old):
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
    return new


def _carry_metadata(new: dict[str, Any], old: dict[str, Any]) -> None:
    meta = new.setdefault("metadata", {})
    old_meta = old["metadata"]
    for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "name", "namespace"):
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)


def _carry_namespace_finalizers(new: dict[str, Any], old: dict[str, Any]) -> None:
    old_finalizers = (old.get("spec") or {}).get("finalizers")
    spec = new.get("spec")
    if not isinstance(spec, dict):
        spec = new["spec"] = {}
    if old_finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = clone(old_finalizers)


def _spec_changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    ignore = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in new.items() if k not in ignore} != {k: v for k, v in old.items() if k not in ignore}
