"""The garbage collector: informers over every kind that can own or be owned feed `garbage.Graph`; a sync of one
uid carries out what `garbage.decide` returns, through the API only.

Invariants: the graph is updated on every event and a uid is enqueued (with its owners and dependents) only when
its ownerReferences, deletion state or finalizers changed; an owner the cache believes gone is confirmed with a
GET before anything is deleted or unlinked because of it (uids never come back, so a confirmed absence is
remembered); deletes carry a uid precondition and the propagation policy kube would use; finalizer removals carry
the resourceVersion they were computed from, so a stale cache gives a 409 and a retry, never a lost finalizer.
"""

from __future__ import annotations

import logging
from typing import Any

from svcnet.api import errors, resources
from svcnet.api.resources import ResourceInfo
from svcnet.client import Client, Handlers, Informer, WorkQueue, path_for
from svcnet.controllers import base, garbage

log = logging.getLogger(__name__)
Obj = dict[str, Any]
IGNORED_KINDS = {("", "Event")}  # as kube: events are never owners worth tracking
RECHECK_SECONDS = 1.0  # an owner the cache missed exists after all: look again once the cache caught up
ABSENT_CACHE_SIZE = 10_000
SMP = "application/strategic-merge-patch+json"


def collectable_kinds() -> list[ResourceInfo]:
    """Every served kind that can be listed, watched and deleted (kube's GC "deletable resources")."""
    wanted = {"list", "watch", "delete"}
    return [info for info in resources.RESOURCES
            if wanted <= set(info.verbs) and (info.group, info.kind) not in IGNORED_KINDS]


class GarbageCollector:
    def __init__(self, client: Client, workers: int = 2) -> None:
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.infos = {(info.group, info.kind): info for info in collectable_kinds()}
        self.graph = garbage.Graph(frozenset(self.infos))
        self.informers = [self._informer(info) for info in self.infos.values()]
        self._absent: set[str] = set()

    def _informer(self, info: ResourceInfo) -> Informer:
        informer = Informer(self.client, info)
        informer.add_handlers(Handlers(on_add=lambda obj: self._observe(info, obj),
                                       on_update=lambda old, new: self._observe(info, new),
                                       on_delete=self._forget))
        return informer

    def _observe(self, info: ResourceInfo, obj: Obj) -> None:
        node = garbage.node_from_object(obj, info.api_version, info.kind)
        previous = self.graph.get(node.uid)
        self.graph.upsert(node)
        if garbage.changed(previous, node):
            self._enqueue([n for n in (previous, node) if n is not None])

    def _forget(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid", "")
        old = self.graph.remove(uid)
        if old is not None:
            self._absent.add(uid)
            self._enqueue([old])

    def _enqueue(self, nodes: list[garbage.Node]) -> None:
        for uid in garbage.related(self.graph, nodes):
            self.queue.add(uid)

    async def run(self) -> None:
        await base.run_controller("garbagecollector", self.informers, self.queue, self.sync,
                                  lambda: list(self.graph.nodes), self.workers)

    async def sync(self, uid: str) -> None:
        for action in garbage.decide(self.graph, uid):
            if not await self._apply(action):
                self.queue.add_after(uid, RECHECK_SECONDS)
                return

    async def _apply(self, action: garbage.Action) -> bool:
        """Carry out one action; False when a presumed-absent owner turned out to exist."""
        if isinstance(action, garbage.RemoveFinalizer):
            await self._remove_finalizer(action.node, action.finalizer)
            return True
        if not await self._all_absent(action.node, action.dangling):
            return False
        if isinstance(action, garbage.Delete):
            await self._delete(action.node, action.policy)
        else:
            await self._remove_owner_refs(action.node, action.uids)
        return True

    # ---- writes -----------------------------------------------------------------------------------------

    def _info(self, node: garbage.Node) -> ResourceInfo:
        info = self.infos.get((node.group, node.kind))
        assert info is not None, f"{node.kind} is not watched"
        return info

    async def _delete(self, node: garbage.Node, policy: garbage.Policy) -> None:
        log.info("garbagecollector: deleting %s %s/%s (%s)", node.kind, node.namespace, node.name, policy)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": str(policy),
                "preconditions": {"uid": node.uid}}
        path = path_for(self._info(node), node.namespace or None, node.name)
        await _tolerate_gone(self.client.request("DELETE", path, body))

    async def _remove_owner_refs(self, node: garbage.Node, uids: tuple[str, ...]) -> None:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid} for uid in uids]}}
        await _tolerate_gone(self.client.patch(self._info(node), node.namespace or None, node.name, patch,
                                               content_type=SMP))

    async def _remove_finalizer(self, node: garbage.Node, finalizer: str) -> None:
        kept = [f for f in node.finalizers if f != finalizer]
        patch = {"metadata": {"finalizers": kept or None, "resourceVersion": node.resource_version}}
        await _tolerate_gone(self.client.patch(self._info(node), node.namespace or None, node.name, patch))

    # ---- confirming absent owners -----------------------------------------------------------------------

    async def _all_absent(self, dependent: garbage.Node, refs: tuple[garbage.OwnerRef, ...]) -> bool:
        for ref in refs:
            if ref.uid not in self._absent and not await self._confirm_absent(dependent, ref):
                return False
        return True

    async def _confirm_absent(self, dependent: garbage.Node, ref: garbage.OwnerRef) -> bool:
        info = self.infos.get((ref.group, ref.kind))
        if info is None:
            return False
        if info.namespaced and not dependent.namespace:
            return True  # a cluster-scoped object cannot be owned by a namespaced one
        try:
            owner = await self.client.get(info, dependent.namespace or None, ref.name)
        except errors.APIError as exc:
            if exc.code != 404:
                raise
            owner = None
        if owner is not None and (owner.get("metadata") or {}).get("uid") == ref.uid:
            return False
        if len(self._absent) >= ABSENT_CACHE_SIZE:
            self._absent.clear()
        self._absent.add(ref.uid)
        return True


async def _tolerate_gone(call: Any) -> None:
    """404: the object is gone already; 409 on a uid precondition: it was replaced — both mean done."""
    try:
        await call
    except errors.APIError as exc:
        if exc.code == 404 or (exc.code == 409 and "Precondition failed: UID" in exc.message):
            return
        raise
