"""The Deployment controller: rolls each Deployment's pod template out through ReplicaSets.

Thin shell around `deployments.plan_sync`: informers on deployments, replicasets and pods only enqueue the key of
the Deployment concerned; `sync(key)` claims the ReplicaSets (adopts orphans that match the selector, releases
owned ones that stopped matching, through ownerReferences with controller=true and blockOwnerDeletion), asks the
pure core for a plan and applies it in order. Invariants: every ReplicaSet write is guarded by the
resourceVersion it was computed from (a stale cache is a 409 and a retry, never a lost update); the Deployment's
annotations and status are written only when they differ, also with a resourceVersion precondition; a rollout
that shows no progress is looked at again when its progress deadline is due.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key
from svcnet.client.events import EventRecorder
from svcnet.controllers import base, deployments, replicas

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _info(group: str, plural: str) -> resources.ResourceInfo:
    info = resources.lookup(group, "v1", plural)
    assert info is not None
    return info


DEPLOYMENTS = _info("apps", "deployments")
REPLICASETS = _info("apps", "replicasets")
PODS = _info("", "pods")
MIN_REQUEUE = 0.5  # seconds: a deadline that is due is checked again no sooner than this


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DeploymentController:
    def __init__(self, client: Client, workers: int = 2,
                 clock: Callable[[], datetime.datetime] = _utcnow) -> None:
        self.client = client
        self.workers = workers
        self.clock = clock
        self.queue = WorkQueue()
        self.events = EventRecorder(client, "deployment-controller")
        self.deployments = Informer(client, DEPLOYMENTS)
        self.replica_sets = Informer(client, REPLICASETS)
        self.pods = Informer(client, PODS)
        self.deployments.add_handlers(Handlers(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n),
                                               on_delete=self._enqueue))
        self.replica_sets.add_handlers(Handlers(on_add=self._rs_changed,
                                                on_update=self._rs_updated,
                                                on_delete=self._rs_changed))
        self.pods.add_handlers(Handlers(on_delete=self._pod_deleted))

    # ---- event handlers: enqueue the Deployment concerned ---------------------------------------------------

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _owner_key(self, obj: Obj, kind: str, cache: Informer) -> str | None:
        ref = replicas.controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return None
        key = f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        owner = cache.get(key)
        return key if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs, "Deployment", self.deployments)
        if key is not None:
            self.queue.add(key)
        elif replicas.controller_ref(rs) is None:  # an orphan: every Deployment that could adopt it
            labels = rs["metadata"].get("labels") or {}
            for deploy in self.deployments.items():
                if deploy["metadata"].get("namespace") == rs["metadata"].get("namespace") and \
                        replicas.selector_of(deploy).matches(labels):
                    self._enqueue(deploy)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self._rs_changed(old)  # a changed owner or labels concern the former Deployment too
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the old pods to be gone."""
        rs_key = self._owner_key(pod, "ReplicaSet", self.replica_sets)
        rs = self.replica_sets.get(rs_key) if rs_key else None
        key = self._owner_key(rs, "Deployment", self.deployments) if rs is not None else None
        if key is not None:
            self.queue.add(key)

    # ---- sync -----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        await base.run_controller("Deployment", [self.deployments, self.replica_sets, self.pods], self.queue,
                                  self.sync, lambda: [object_key(o) for o in self.deployments.items()],
                                  self.workers)

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        deploy = {**copy.deepcopy(cached), "apiVersion": "apps/v1", "kind": "Deployment"}
        owned = await self._claim_replica_sets(deploy)
        plan = deployments.plan_sync(deploy, owned, self._pods_by_rs(deploy, owned), self.clock())
        await self._apply(deploy, plan)
        if plan.requeue_after is not None:
            self.queue.add_after(key, max(plan.requeue_after, MIN_REQUEUE))

    async def _claim_replica_sets(self, deploy: Obj) -> list[Obj]:
        namespace = deploy["metadata"].get("namespace")
        candidates = [rs for rs in self.replica_sets.items() if rs["metadata"].get("namespace") == namespace]
        ownership = replicas.classify(deploy, candidates)
        owned = list(ownership.owned)
        if ownership.adopt and await self._can_adopt(deploy):
            ref = deployments.controller_ref(deploy)
            for rs in ownership.adopt:
                refs = [*(rs["metadata"].get("ownerReferences") or []), ref]
                adopted = await self._patch_owners(rs, refs)
                if adopted is not None:
                    owned.append(adopted)
        for rs in ownership.release:
            refs = [r for r in rs["metadata"].get("ownerReferences") or []
                    if r.get("uid") != deploy["metadata"].get("uid")]
            await self._patch_owners(rs, refs or None)
        return owned

    async def _can_adopt(self, deploy: Obj) -> bool:
        """Adopt only for a Deployment that still exists (same uid) and is not being deleted: read it fresh."""
        meta = deploy["metadata"]
        try:
            fresh = await self.client.get(DEPLOYMENTS, meta.get("namespace"), meta["name"])
        except errors.APIError as exc:
            if exc.code == 404:
                return False
            raise
        return bool(fresh["metadata"].get("uid") == meta.get("uid") and not fresh["metadata"].get("deletionTimestamp"))

    async def _patch_owners(self, rs: Obj, refs: list[Obj] | None) -> Obj | None:
        meta = rs["metadata"]
        patch = {"metadata": {"ownerReferences": refs, "resourceVersion": meta.get("resourceVersion")}}
        try:
            return await self.client.patch(REPLICASETS, meta.get("namespace"), meta["name"], patch)
        except errors.APIError as exc:
            if exc.code != 404:
                raise
            return None

    def _pods_by_rs(self, deploy: Obj, owned: list[Obj]) -> dict[str, list[Obj]]:
        namespace = deploy["metadata"].get("namespace")
        selector = replicas.selector_of(deploy)
        by_uid: dict[str, list[Obj]] = {rs["metadata"].get("uid", ""): [] for rs in owned}
        for pod in self.pods.items():
            ref = replicas.controller_ref(pod)
            if pod["metadata"].get("namespace") == namespace and ref is not None and ref.get("uid") in by_uid and \
                    selector.matches(pod["metadata"].get("labels") or {}):
                by_uid[ref["uid"]].append(pod)
        return by_uid

    # ---- applying a plan ------------------------------------------------------------------------------------

    async def _apply(self, deploy: Obj, plan: deployments.Plan) -> None:
        namespace = deploy["metadata"].get("namespace")
        written: dict[str, str] = {}  # set name → resourceVersion of our own write in this plan
        for action in plan.actions:
            match action:
                case deployments.CreateReplicaSet(replica_set=rs):
                    created = await self._create(deploy, rs)
                    written[created["metadata"]["name"]] = created["metadata"]["resourceVersion"]
                case deployments.UpdateReplicaSet(replica_set=rs):
                    meta = rs["metadata"]
                    meta["resourceVersion"] = written.get(meta["name"], meta.get("resourceVersion", ""))
                    updated = await self.client.update(REPLICASETS, rs)
                    written[meta["name"]] = updated["metadata"]["resourceVersion"]
                case deployments.DeleteReplicaSet(name=name):
                    await self._delete(namespace, name)
                case deployments.RecordEvent(event_type=event_type, reason=reason, message=message):
                    await self.events.record(deploy, event_type, reason, message)
        await self._write_deployment(deploy, plan)

    async def _create(self, deploy: Obj, rs: Obj) -> Obj:
        namespace, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        try:
            return await self.client.create(REPLICASETS, namespace, rs)
        except errors.APIError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise
            existing = await self.client.get(REPLICASETS, namespace, name)
            if not deployments.equal_ignore_hash(existing.get("spec", {}).get("template"),
                                                 rs["spec"]["template"]):
                await self._bump_collision_count(deploy)  # a different template under our hash: rename next time
            raise  # retry: the next sync sees the set in the cache, or hashes with the new collision count

    async def _bump_collision_count(self, deploy: Obj) -> None:
        meta = deploy["metadata"]
        count = int((deploy.get("status") or {}).get("collisionCount") or 0) + 1
        await self.client.patch(DEPLOYMENTS, meta.get("namespace"), meta["name"],
                                {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                                 "status": {"collisionCount": count}}, subresource="status")

    async def _delete(self, namespace: str | None, name: str) -> None:
        try:
            await self.client.delete(REPLICASETS, namespace, name)
        except errors.APIError as exc:
            if exc.code != 404:
                raise

    async def _write_deployment(self, deploy: Obj, plan: deployments.Plan) -> None:
        meta = deploy["metadata"]
        version = meta.get("resourceVersion")
        if plan.annotations is not None:
            current = meta.get("annotations") or {}
            changes: dict[str, str | None] = {k: v for k, v in plan.annotations.items() if current.get(k) != v}
            changes.update({k: None for k in current if k not in plan.annotations})
            written = await self.client.patch(DEPLOYMENTS, meta.get("namespace"), meta["name"],
                                              {"metadata": {"annotations": changes, "resourceVersion": version}})
            version = written["metadata"]["resourceVersion"]
        if plan.status is not None:
            current = deploy.get("status") or {}
            status = {**{k: None for k in current if k not in plan.status}, **plan.status}
            await self.client.patch(DEPLOYMENTS, meta.get("namespace"), meta["name"],
                                    {"metadata": {"resourceVersion": version}, "status": status},
                                    subresource="status")
