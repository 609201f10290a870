"""The LoadBalancer controller: gives services of type LoadBalancer an address from the pool, through the API only.

Level-triggered on service keys. The allocator's holdings are rebuilt by the informer handlers from the addresses
already in services' status before any sync runs (a restart keeps every address where it is). `sync(key)` asks
the allocator, then makes `status.loadBalancer` say exactly that (services/status), with an `IPAllocated` event
when an address is written or a Warning `AllocationFailed` saying why there is none. A service that is deleted or
stops wanting an address frees it, and every service still waiting is enqueued again, so a pending service gets
the address as soon as one frees up. Services with `spec.loadBalancerClass` belong to another implementation
and are never touched.
"""

from __future__ import annotations

import logging
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key
from svcnet.client.events import EventRecorder
from svcnet.controllers import base, loadbalancer

log = logging.getLogger(__name__)
Obj = dict[str, Any]


SERVICES = resources.require("", "v1", "services")


def _ref(service: Obj) -> Obj:
    return {**service, "kind": "Service", "apiVersion": "v1"}


class LoadBalancerController:
    def __init__(self, client: Client, pool: tuple[str, ...], workers: int = 2) -> None:
        self.client = client
        self.workers = workers
        self.allocator = loadbalancer.Allocator(loadbalancer.parse_pool(pool))
        self.queue = WorkQueue()
        self.recorder = EventRecorder(client, "loadbalancer-controller")
        self.services = Informer(client, SERVICES)
        self.services.add_handlers(Handlers(on_add=self._seen, on_update=lambda old, new: self._seen(new),
                                            on_delete=lambda svc: self.queue.add(object_key(svc))))

    def _seen(self, service: Obj) -> None:
        key = object_key(service)
        ip = loadbalancer.status_ip(service)
        if loadbalancer.wants_address(service) and ip is not None and self.allocator.held_by(key) is None:
            self.allocator.assign(key, ip)  # adopt what a previous run wrote; refused if someone else holds it
        self.queue.add(key)

    async def run(self) -> None:
        await base.run_controller("loadbalancer", [self.services], self.queue, self.sync,
                                  lambda: [object_key(s) for s in self.services.items()], self.workers)

    async def sync(self, key: str) -> None:
        service = self.services.get(key)
        if service is None or not loadbalancer.wants_address(service):
            await self._release(key, service)
            return
        allocation = self.allocator.allocate(key, service)
        if allocation.ip is None:
            await self._write_status(service, None)
            await self.recorder.record(_ref(service), "Warning", "AllocationFailed",
                                       f"Failed to allocate IP for {key!r}: {allocation.error}")
            return
        if await self._write_status(service, allocation.ip):
            await self.recorder.record(_ref(service), "Normal", "IPAllocated", f"Assigned IP [{allocation.ip!r}]")

    async def _release(self, key: str, service: Obj | None) -> None:
        freed = self.allocator.release(key)
        if freed is None:
            return
        if service is not None and (service.get("spec") or {}).get("loadBalancerClass") is None and \
                loadbalancer.status_ip(service) == freed:
            await self._write_status(service, None)
        for waiting in self.services.items():
            waiting_key = object_key(waiting)
            if loadbalancer.wants_address(waiting) and self.allocator.held_by(waiting_key) is None:
                self.queue.add(waiting_key)

    async def _write_status(self, service: Obj, ip: str | None) -> bool:
        """Make status.loadBalancer.ingress name `ip` (or nothing); True when something was written."""
        status = service.get("status") or {}
        ingress = loadbalancer.ingress_for(ip)
        if ((status.get("loadBalancer") or {}).get("ingress") or []) == ingress:
            return False
        body = {**service, "status": {**status, "loadBalancer": {"ingress": ingress} if ingress else {}}}
        try:
            await self.client.update(SERVICES, body, "status")
        except errors.APIError as exc:
            if exc.code == 404:
                return False
            raise
        return True
