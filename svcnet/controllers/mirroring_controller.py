"""The EndpointSlice mirroring controller: keeps the slices that mirror user-written Endpoints of selectorless
services equal to `mirroring.compute_mirror`, through the API only.

Level-triggered on `namespace/name` (a Service and its Endpoints share it; a mirrored slice names it in its
service-name label). It only ever sees, writes and deletes slices labelled managed-by
`endpointslicemirroring-controller.k8s.io` (the informer selects on that label), so the endpoints controller's
slices are never touched. When the Service or the Endpoints go, or the Service gains a selector, or the Endpoints
are labelled skip-mirror, the mirrored slices are deleted. Skipped addresses are reported as Warning events on the
Endpoints (`InvalidIPAddress`, `TooManyAddressesToMirror`), as kube does.
"""

from __future__ import annotations

import logging
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key
from svcnet.client.events import EventRecorder
from svcnet.controllers import base, mirroring

log = logging.getLogger(__name__)
Obj = dict[str, Any]


SERVICES = resources.require("", "v1", "services")
ENDPOINTS = resources.require("", "v1", "endpoints")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
COMPARED = ("endpoints", "ports", "addressType")


def _same(desired: Obj, current: Obj) -> bool:
    meta_d, meta_c = desired["metadata"], current["metadata"]
    return all(desired.get(f) == current.get(f) for f in COMPARED) and \
        (meta_d.get("labels") or {}) == (meta_c.get("labels") or {}) and \
        (meta_d.get("annotations") or {}) == (meta_c.get("annotations") or {}) and \
        meta_d.get("ownerReferences") == meta_c.get("ownerReferences")


class MirroringController:
    def __init__(self, client: Client, workers: int = 2) -> None:
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.recorder = EventRecorder(client, "endpointslicemirroring-controller")
        self.services = Informer(client, SERVICES)
        self.endpoints = Informer(client, ENDPOINTS)
        self.slices = Informer(client, SLICES, label_selector=f"{mirroring.MANAGED_BY_LABEL}={mirroring.MANAGED_BY}")
        for informer in (self.services, self.endpoints):
            informer.add_handlers(Handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                           on_delete=self._enqueue))
        self.slices.add_handlers(Handlers(on_update=lambda old, new: self._slice_changed(new),
                                          on_delete=self._slice_changed))

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _slice_changed(self, obj: Obj) -> None:
        service = (obj["metadata"].get("labels") or {}).get(mirroring.SERVICE_NAME_LABEL)
        if service:
            self.queue.add(f"{obj['metadata']['namespace']}/{service}")

    def _initial_keys(self) -> list[str]:
        keys = {object_key(e) for e in self.endpoints.items()}
        for existing in self.slices.items():  # slices whose Endpoints went while we were not running
            service = (existing["metadata"].get("labels") or {}).get(mirroring.SERVICE_NAME_LABEL)
            if service:
                keys.add(f"{existing['metadata']['namespace']}/{service}")
        return sorted(keys)

    async def run(self) -> None:
        await base.run_controller("endpointslice-mirroring", [self.services, self.endpoints, self.slices],
                                  self.queue, self.sync, self._initial_keys, self.workers)

    async def sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        endpoints = self.endpoints.get(key)
        mirror = mirroring.compute_mirror(self.services.get(key), endpoints)
        if endpoints is not None and (mirror.invalid or mirror.over_capacity):
            await self._report_skipped(endpoints, mirror)
        wanted = {s["metadata"]["name"]: s for s in mirror.slices}
        existing = {s["metadata"]["name"]: s for s in self.slices.items()
                    if s["metadata"].get("namespace") == namespace and
                    (s["metadata"].get("labels") or {}).get(mirroring.SERVICE_NAME_LABEL) == name}
        for slice_name, body in wanted.items():
            await self._apply(body, existing.get(slice_name))
        for slice_name, current in existing.items():
            if slice_name not in wanted:
                await self._delete(current)

    async def _report_skipped(self, endpoints: Obj, mirror: mirroring.Mirror) -> None:
        ref = {**endpoints, "kind": "Endpoints", "apiVersion": "v1"}
        if mirror.invalid:
            await self.recorder.record(ref, "Warning", "InvalidIPAddress",
                                       f"Skipped {mirror.invalid} invalid IP addresses when mirroring to "
                                       "EndpointSlices")
        if mirror.over_capacity:
            await self.recorder.record(ref, "Warning", "TooManyAddressesToMirror",
                                       f"A max of {mirroring.MAX_PER_SUBSET} addresses can be mirrored to "
                                       f"EndpointSlices per Endpoints subset. {mirror.over_capacity} addresses "
                                       "were skipped")

    async def _apply(self, desired: Obj, current: Obj | None) -> None:
        if current is None:
            try:
                await self.client.create(SLICES, desired["metadata"]["namespace"], desired)
            except errors.APIError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                raise errors.APIError(409, "Conflict", "cache behind the server; retry") from None
            return
        if _same(desired, current):
            return
        metadata = {**current["metadata"], **{k: v for k, v in desired["metadata"].items() if k != "annotations"},
                    "annotations": desired["metadata"].get("annotations") or {}}
        await self.client.update(SLICES, {**desired, "metadata": metadata})

    async def _delete(self, current: Obj) -> None:
        try:
            await self.client.delete(SLICES, current["metadata"]["namespace"], current["metadata"]["name"])
        except errors.APIError as exc:
            if exc.code != 404:
                raise
