"""The endpoints controller: keeps every selector Service's Endpoints and EndpointSlices equal to what
`endpoints.compute_*` says, through the API only.

Level-triggered: informer handlers only enqueue service keys (a pod change enqueues the services whose selector
matched its old or new labels); `sync(key)` reads the caches, computes the desired objects, and writes only what
differs; failures are retried with backoff. Endpoints of services without a selector are left to their owner.
What it writes carries the trigger-time annotation (`endpoints.trigger_time`); the per-service trigger state
moves on only when a sync's writes all succeeded, so a retried sync still stamps the change that caused it.
"""

from __future__ import annotations

import logging
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key
from svcnet.controllers import base, endpoints

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SERVICES = resources.lookup("", "v1", "services")
PODS = resources.lookup("", "v1", "pods")
ENDPOINTS = resources.lookup("", "v1", "endpoints")
SLICES = resources.lookup("discovery.k8s.io", "v1", "endpointslices")


def _revision(obj: Obj) -> int:
    version = str(obj["metadata"].get("resourceVersion", ""))
    return int(version) if version.isdigit() else 0


def _same(desired: Obj, current: Obj, fields: tuple[str, ...]) -> bool:
    """Whether `current` already is what is desired; the trigger time alone is no reason to write."""
    meta_d, meta_c = desired["metadata"], current["metadata"]
    return all(desired.get(f) == current.get(f) for f in fields) and \
        (meta_d.get("labels") or {}) == (meta_c.get("labels") or {}) and \
        {k: v for k, v in (meta_d.get("annotations") or {}).items() if k != endpoints.TRIGGER_TIME} == \
        {k: v for k, v in (meta_c.get("annotations") or {}).items() if k == endpoints.OVER_CAPACITY}


class EndpointsController:
    def __init__(self, client: Client, workers: int = 2) -> None:
        assert SERVICES and PODS and ENDPOINTS and SLICES
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.services = Informer(client, SERVICES)
        self.pods = Informer(client, PODS)
        self.endpoints = Informer(client, ENDPOINTS)
        self.slices = Informer(client, SLICES, label_selector=f"{endpoints.MANAGED_BY_LABEL}={endpoints.MANAGED_BY}")
        self.services.add_handlers(Handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                            on_delete=self._enqueue))
        self.pods.add_handlers(Handlers(on_add=self._pod_changed, on_update=self._pod_changed_pair,
                                        on_delete=self._pod_changed))
        self.endpoints.add_handlers(Handlers(on_delete=self._enqueue))
        self.slices.add_handlers(Handlers(on_delete=self._slice_changed, on_update=lambda o, n: self._slice_changed(n)))

        self._written: dict[tuple[str, str], Obj] = {}  # what this controller last wrote, by (plural, key)
        self._triggers: dict[str, endpoints.TriggerState] = {}  # service key -> what its last good sync saw

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _fresher(self, info: Any, cached: Obj | None) -> Obj | None:
        """The informer's copy, or our own last write when the informer has not caught up with it yet (so a
        burst of changes does not turn into a run of 409 conflicts)."""
        if cached is None:
            return None
        mine = self._written.get((info.plural, object_key(cached)))
        if mine is None or mine["metadata"].get("uid") != cached["metadata"].get("uid"):
            return cached
        return mine if _revision(mine) > _revision(cached) else cached

    def _remember(self, info: Any, written: Obj) -> None:
        self._written[(info.plural, object_key(written))] = written

    def _slice_changed(self, obj: Obj) -> None:
        service = (obj["metadata"].get("labels") or {}).get(endpoints.SERVICE_NAME_LABEL)
        if service:
            self.queue.add(f"{obj['metadata']['namespace']}/{service}")

    def _pod_changed(self, pod: Obj) -> None:
        self._pod_changed_pair(pod, pod)

    def _pod_changed_pair(self, old: Obj, new: Obj) -> None:
        namespace = new["metadata"].get("namespace")
        label_sets = [old["metadata"].get("labels") or {}, new["metadata"].get("labels") or {}]
        for service in self.services.items():
            selector = service.get("spec", {}).get("selector") or {}
            if service["metadata"].get("namespace") == namespace and selector and \
                    any(endpoints.selector_matches(selector, labels) for labels in label_sets):
                self._enqueue(service)

    async def run(self) -> None:
        await base.run_controller("endpoints", [self.services, self.pods, self.endpoints, self.slices], self.queue,
                                  self.sync, lambda: [object_key(s) for s in self.services.items()], self.workers)

    async def sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        service = self.services.get(key)
        if service is None:
            self._triggers.pop(key, None)
            await self._delete_if_present(ENDPOINTS, self.endpoints.get(key))
            for current in self._slices_of(namespace, name):
                await self._delete_if_present(SLICES, current)
            return
        pods = self.pods.items()
        desired = endpoints.compute_endpoints(service, pods)
        if desired is None:
            return  # no selector: Endpoints belong to whoever wrote them
        trigger, state = endpoints.trigger_time(service, pods, self._triggers.get(key))
        desired = endpoints.with_trigger_time(desired, trigger)
        await self._apply(ENDPOINTS, desired, self._fresher(ENDPOINTS, self.endpoints.get(key)), ("subsets",))
        wanted = {s["metadata"]["name"]: endpoints.with_trigger_time(s, trigger)
                  for s in endpoints.compute_slices(service, pods)}
        existing = {s["metadata"]["name"]: s for s in self._slices_of(namespace, name)}
        for slice_name, body in wanted.items():
            await self._apply(SLICES, body, self._fresher(SLICES, existing.get(slice_name)),
                              ("endpoints", "ports", "addressType"))
        for slice_name, current in existing.items():
            if slice_name not in wanted:
                await self._delete_if_present(SLICES, current)
        self._triggers[key] = state

    def _slices_of(self, namespace: str, service: str) -> list[Obj]:
        return [s for s in self.slices.items() if s["metadata"].get("namespace") == namespace and
                (s["metadata"].get("labels") or {}).get(endpoints.SERVICE_NAME_LABEL) == service]

    async def _apply(self, info: Any, desired: Obj, current: Obj | None, fields: tuple[str, ...]) -> None:
        namespace = desired["metadata"]["namespace"]
        if current is None:
            try:
                self._remember(info, await self.client.create(info, namespace, desired))
            except errors.APIError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                raise errors.APIError(409, "Conflict", "cache behind the server; retry") from None
            return
        if _same(desired, current, fields):
            return
        annotations = {k: v for k, v in (current["metadata"].get("annotations") or {}).items()
                       if k not in (endpoints.OVER_CAPACITY, endpoints.TRIGGER_TIME)}
        annotations.update(desired["metadata"].get("annotations") or {})
        body = {**desired, "metadata": {**current["metadata"], "labels": desired["metadata"].get("labels", {}),
                                        "annotations": annotations}}
        self._remember(info, await self.client.update(info, body))

    async def _delete_if_present(self, info: Any, current: Obj | None) -> None:
        if current is None:
            return
        self._written.pop((info.plural, object_key(current)), None)
        try:
            await self.client.delete(info, current["metadata"]["namespace"], current["metadata"]["name"])
        except errors.APIError as exc:
            if exc.code != 404:
                raise
