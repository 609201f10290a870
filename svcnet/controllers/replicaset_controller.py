"""The ReplicaSet / ReplicationController controller: keeps each set's active pods at `spec.replicas`.

Level-triggered like every controller here, plus kube's expectations: after asking for N creates or deletes a
set is not synced again until the informer has seen them (or a timeout passes), so a cache that lags behind the
server never causes double creates or deletes.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key
from svcnet.controllers import base, replicas

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = resources.lookup("", "v1", "pods")
EXPECTATION_TIMEOUT = 300.0
BURST = 100


@dataclass
class _Expectation:
    adds: int
    deletes: int
    since: float


class Expectations:
    """Per owner key: how many pod adds/deletes were requested and not yet observed."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._pending: dict[str, _Expectation] = {}
        self._clock = clock

    def expect(self, key: str, adds: int = 0, deletes: int = 0) -> None:
        self._pending[key] = _Expectation(adds, deletes, self._clock())

    def observed(self, key: str, added: bool) -> None:
        pending = self._pending.get(key)
        if pending is None:
            return
        if added:
            pending.adds = max(pending.adds - 1, 0)
        else:
            pending.deletes = max(pending.deletes - 1, 0)

    def lower(self, key: str, adds: int = 0, deletes: int = 0) -> None:
        """Requests that failed will never be observed."""
        pending = self._pending.get(key)
        if pending is not None:
            pending.adds = max(pending.adds - adds, 0)
            pending.deletes = max(pending.deletes - deletes, 0)

    def satisfied(self, key: str) -> bool:
        pending = self._pending.get(key)
        return pending is None or (pending.adds == 0 and pending.deletes == 0) or \
            self._clock() - pending.since > EXPECTATION_TIMEOUT

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


class ReplicaSetController:
    def __init__(self, client: Client, kind: str = "ReplicaSet", workers: int = 2) -> None:
        info = resources.lookup_kind("apps/v1", kind) if kind == "ReplicaSet" else resources.lookup_kind("v1", kind)
        assert info is not None and PODS is not None
        self.info = info
        self.kind = kind
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.expectations = Expectations()
        self.sets = Informer(client, info)
        self.pods = Informer(client, PODS)
        self.sets.add_handlers(Handlers(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n),
                                        on_delete=self._set_deleted))
        self.pods.add_handlers(Handlers(on_add=lambda p: self._pod_event(p, added=True),
                                        on_update=lambda o, n: self._pod_updated(o, n),
                                        on_delete=lambda p: self._pod_event(p, added=False)))

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _set_deleted(self, obj: Obj) -> None:
        self.expectations.forget(object_key(obj))
        self._enqueue(obj)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = replicas.controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        owner = self.sets.get(key)
        return key if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _pod_event(self, pod: Obj, added: bool) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.observed(key, added)
            self.queue.add(key)
        elif replicas.controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if replicas.terminating(new) and not replicas.terminating(old):
            key = self._owner_key(new)
            if key is not None:
                self.expectations.observed(key, added=False)
        for pod in (old, new):
            key = self._owner_key(pod)
            if key is not None:
                self.queue.add(key)
            elif replicas.controller_ref(pod) is None:
                self._enqueue_matching(pod)

    def _enqueue_matching(self, pod: Obj) -> None:
        labels = pod["metadata"].get("labels") or {}
        for owner in self.sets.items():
            if owner["metadata"].get("namespace") == pod["metadata"].get("namespace") and \
                    replicas.selector_of(owner).matches(labels):
                self._enqueue(owner)

    async def run(self) -> None:
        await base.run_controller(self.kind, [self.sets, self.pods], self.queue, self.sync,
                                  lambda: [object_key(o) for o in self.sets.items()], self.workers)

    async def sync(self, key: str) -> None:
        owner = self.sets.get(key)
        if owner is None or not self.expectations.satisfied(key):
            return
        namespace = owner["metadata"].get("namespace", "")
        ownership = replicas.classify(owner, self.pods.items())
        await self._adopt_and_release(owner, ownership)
        active = replicas.active(ownership.owned + ownership.adopt)
        if not owner["metadata"].get("deletionTimestamp"):
            await self._scale(key, owner, namespace, active)
        await self._write_status(owner, active)

    async def _adopt_and_release(self, owner: Obj, ownership: replicas.Ownership) -> None:
        ref = replicas.pod_from_template(owner)["metadata"]["ownerReferences"]
        for pod in ownership.adopt:
            patch = {"metadata": {"ownerReferences": ref}}
            await self._ignore_gone(self.client.patch(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                                      patch))
        for pod in ownership.release:
            others = [r for r in pod["metadata"].get("ownerReferences") or []
                      if r.get("uid") != owner["metadata"].get("uid")]
            await self._ignore_gone(self.client.patch(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                                      {"metadata": {"ownerReferences": others or None}}))

    async def _scale(self, key: str, owner: Obj, namespace: str, active: list[Obj]) -> None:
        diff = int(owner.get("spec", {}).get("replicas", 1)) - len(active)
        if diff > 0:
            count = min(diff, BURST)
            self.expectations.expect(key, adds=count)
            results = await asyncio.gather(*(self.client.create(PODS, namespace, replicas.pod_from_template(owner))
                                             for _ in range(count)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            self.expectations.lower(key, adds=len(failed))
            if failed:
                raise failed[0] if isinstance(failed[0], errors.APIError) else errors.internal(str(failed[0]))
        elif diff < 0:
            doomed = replicas.pods_to_delete(active, -diff)
            self.expectations.expect(key, deletes=len(doomed))
            for pod in doomed:
                try:
                    await self.client.delete(PODS, namespace, pod["metadata"]["name"])
                except errors.APIError as exc:
                    self.expectations.lower(key, deletes=1)
                    if exc.code != 404:
                        raise

    async def _write_status(self, owner: Obj, active: list[Obj]) -> None:
        status = replicas.compute_status(owner, active, datetime.datetime.now(datetime.UTC))
        current = owner.get("status") or {}
        if status != current:
            meta = owner["metadata"]
            patch = {**{k: None for k in current if k not in status}, **status}  # counts that fell to 0 go
            await self._ignore_gone(self.client.patch(self.info, meta.get("namespace"), meta["name"],
                                                      {"status": patch}, subresource="status"))

    @staticmethod
    async def _ignore_gone(call: Any) -> None:
        try:
            await call
        except errors.APIError as exc:
            if exc.code != 404:
                raise
