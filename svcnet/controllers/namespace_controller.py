"""The namespace controller: empties a terminating namespace through the API, then releases it (kube's
pkg/controller/namespace).

Theory of operation: deleting a namespace only marks it (deletionTimestamp, phase Terminating); the API server
keeps it while spec.finalizers is non-empty and refuses new content in it. For a namespace that still carries
the `kubernetes` token, a sync deletes every namespaced kind's collection (propagation Background), lists what
is left, records that in the status conditions kube uses (NamespaceContentRemaining, ...), and either looks again
later (content remains: pods terminating on nodes, finalizers) or removes the token with PUT
namespaces/{name}/finalize — after which the API server deletes the namespace once no finalizer is left.

Invariants: everything is written through the API; the namespace is finalized only after a sync found no
content left; the finalize PUT carries the resourceVersion it was computed from (a conflict retries); the pure
parts (`count_left`, `deletion_conditions`, `finalize_body`) take their inputs, the clock included, as arguments.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import errors, resources
from svcnet.api.resources import ResourceInfo
from svcnet.client import Client, Handlers, Informer, WorkQueue, path_for
from svcnet.controllers import base

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAMESPACES = resources.lookup("", "v1", "namespaces")
FINALIZER = "kubernetes"
FINALIZER_ESTIMATE_SECONDS = 15  # kube's guess for how long a finalizer holds an object
MIN_RECHECK_SECONDS = 0.5
MAX_RECHECK_SECONDS = 5.0  # kube waits the whole estimate; checking more often costs one list per kind

CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
# type → (reason, message) when all is well, as kube writes them.
OK_CONDITIONS: dict[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentRemoved", "All content successfully removed"),
}


def content_kinds() -> list[ResourceInfo]:
    """The namespaced kinds a namespace can hold that can be listed and deleted as a collection."""
    return [info for info in resources.RESOURCES
            if info.namespaced and {"list", "deletecollection"} <= set(info.verbs)]


# ---- pure: what is left, and how to say so ----------------------------------------------------------------


@dataclass
class Tally:
    """What a deletion pass left behind."""

    remaining: Counter[str] = field(default_factory=Counter)  # "pods." → count (kube's resource.group)
    finalizers: Counter[str] = field(default_factory=Counter)  # finalizer → objects holding it
    failures: list[str] = field(default_factory=list)  # one message per kind that could not be deleted
    estimate: float = 0.0  # seconds until the rest is likely gone

    @property
    def empty(self) -> bool:
        return not self.failures and not any(self.remaining.values())


def count_left(left: Tally, info: ResourceInfo, items: Iterable[Obj]) -> None:
    """Add what is left of one kind to the tally."""
    for item in items:
        meta = item.get("metadata") or {}
        left.remaining[f"{info.plural}.{info.group}"] += 1
        finalizers = meta.get("finalizers") or []
        left.finalizers.update(finalizers)
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        left.estimate = max(left.estimate, grace, FINALIZER_ESTIMATE_SECONDS if finalizers else 0)


def recheck_after(left: Tally) -> float:
    return min(max(left.estimate, MIN_RECHECK_SECONDS), MAX_RECHECK_SECONDS)


def _failing(left: Tally) -> dict[str, tuple[str, str]]:
    failing: dict[str, tuple[str, str]] = {}
    if left.failures:
        failing[CONTENT_FAILURE] = ("ContentDeletionFailed", f"Failed to delete all resource types, "
                                    f"{len(left.failures)} remaining: {', '.join(sorted(left.failures))}")
    kinds_left = sorted(f"{name} has {n} resource instances" for name, n in left.remaining.items() if n)
    if kinds_left:
        failing[CONTENT_REMAINING] = ("SomeResourcesRemain",
                                      f"Some resources are remaining: {', '.join(kinds_left)}")
    held = sorted(f"{name} in {n} resource instances" for name, n in left.finalizers.items() if n)
    if held:
        failing[FINALIZERS_REMAINING] = ("SomeFinalizerRemain", f"Some finalizers are remaining: {', '.join(held)}")
    return failing


def deletion_conditions(current: list[Obj], left: Tally, now: str) -> list[Obj]:
    """The namespace's status.conditions after a pass: kube's five deletion conditions (True with a reason when
    failing, False otherwise); lastTransitionTime moves only when a condition's status flips."""
    failing = _failing(left)
    by_type = {c.get("type"): c for c in current}
    result = [c for c in current if c.get("type") not in OK_CONDITIONS]
    for ctype, ok in OK_CONDITIONS.items():
        status = "True" if ctype in failing else "False"
        reason, message = failing.get(ctype, ok)
        old = by_type.get(ctype) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else now
        result.append({"type": ctype, "status": status, "lastTransitionTime": since or now, "reason": reason,
                       "message": message})
    return result


def finalize_body(namespace: Obj) -> Obj:
    """The namespace to PUT to /finalize: the same object with the `kubernetes` token taken out."""
    spec = namespace.get("spec") or {}
    kept = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
    return {**namespace, "spec": {**spec, "finalizers": kept}}


def needs_work(namespace: Obj | None) -> bool:
    if namespace is None or not (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return FINALIZER in ((namespace.get("spec") or {}).get("finalizers") or [])


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the shell --------------------------------------------------------------------------------------------


class NamespaceController:
    def __init__(self, client: Client, workers: int = 2) -> None:
        assert NAMESPACES is not None
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.kinds = content_kinds()
        self.namespaces = Informer(client, NAMESPACES)
        self.namespaces.add_handlers(Handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new)))

    def _enqueue(self, namespace: Obj) -> None:
        if needs_work(namespace):
            self.queue.add(namespace["metadata"]["name"])

    async def run(self) -> None:
        await base.run_controller("namespace", [self.namespaces], self.queue, self.sync,
                                  lambda: [n["metadata"]["name"] for n in self.namespaces.items() if needs_work(n)],
                                  self.workers)

    async def sync(self, name: str) -> None:
        assert NAMESPACES is not None
        try:
            namespace = await self.client.get(NAMESPACES, None, name)  # the latest, not the cache's
        except errors.APIError as exc:
            if exc.code == 404:
                return
            raise
        if not needs_work(namespace):
            return
        left = await self._delete_content(name)
        await self._write_status(namespace, left)
        if left.failures:
            raise errors.internal(f"namespace {name}: {'; '.join(left.failures)}")
        if not left.empty:
            log.info("namespace %s: content remains (%s); looking again", name, dict(left.remaining))
            self.queue.add_after(name, recheck_after(left))
            return
        await self._finalize(name)

    async def _delete_content(self, name: str) -> Tally:
        left = Tally()
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        for info in self.kinds:
            try:
                await self.client.request("DELETE", path_for(info, name), body)
                count_left(left, info, (await self.client.list(info, name)).get("items") or [])
            except errors.APIError as exc:
                if exc.code not in (404, 405):  # not served for collections: nothing of it to delete
                    left.failures.append(f"{info.plural}.{info.group}: {exc.message}")
        return left

    async def _write_status(self, namespace: Obj, left: Tally) -> None:
        assert NAMESPACES is not None
        status = namespace.get("status") or {}
        now = rfc3339(datetime.datetime.now(datetime.UTC))
        wanted = {"phase": "Terminating", "conditions": deletion_conditions(status.get("conditions") or [], left,
                                                                             now)}
        if {k: status.get(k) for k in wanted} == wanted:
            return
        try:
            await self.client.patch(NAMESPACES, None, namespace["metadata"]["name"], {"status": wanted},
                                    subresource="status")
        except errors.APIError as exc:
            if exc.code != 404:
                raise

    async def _finalize(self, name: str) -> None:
        assert NAMESPACES is not None
        for _ in range(16):  # kube's retryOnConflictError: re-read and try again
            try:
                namespace = await self.client.get(NAMESPACES, None, name)
                if not needs_work(namespace):
                    return
                await self.client.update(NAMESPACES, finalize_body(namespace), subresource="finalize")
                log.info("namespace %s: content gone, finalized", name)
                return
            except errors.APIError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
        raise errors.conflict("namespaces", name, "too many conflicting writes while finalizing")
