"""ClusterIP and NodePort allocation, persisted as reservation keys in the store.

A reservation is the key `/registry/ranges/serviceips/<ip>` (or `.../servicenodeports/<port>`), created with
create-if-absent, so an address is never handed out twice — not under concurrent creates (the store's create is the
lock) and not after a restart (reservations are durable). The value names the owning service; `repair()` at startup
frees reservations whose owner no longer holds them (a crash between reserving and writing the service).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from svcnet.api import errors
from svcnet.store.base import KeyExistsError, KeyNotFoundError, Store, StoreError

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
_RANDOM_TRIES = 64


class RangeFullError(Exception):
    pass


@dataclass
class _Range:
    """A pool of integers [first, last] reserved under `prefix`; `render` turns an offset into its key suffix."""

    store: Store
    prefix: str
    first: int
    last: int
    render: Callable[[int], str]
    rng: random.Random

    async def reserve(self, value: int, owner: str, dry_run: bool = False) -> bool:
        """Take `value` for `owner`; with dry_run only check that it is free."""
        if dry_run:
            return await self.store.get(self.prefix + self.render(value)) is None
        try:
            await self.store.create(self.prefix + self.render(value), json.dumps({"owner": owner}).encode())
        except KeyExistsError:
            return False
        return True

    async def reserve_any(self, owner: str, dry_run: bool = False) -> int:
        size = self.last - self.first + 1
        for _ in range(min(_RANDOM_TRIES, size)):
            value = self.rng.randint(self.first, self.last)
            if await self.reserve(value, owner, dry_run):
                return value
        # Dense range: walk it from a random start so the answer is exact.
        start = self.rng.randint(0, size - 1)
        for i in range(size):
            value = self.first + (start + i) % size
            if await self.reserve(value, owner, dry_run):
                return value
        raise RangeFullError()

    async def release(self, value: int) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self.store.delete(self.prefix + self.render(value))


class ServiceAllocator:
    """Allocates ClusterIPs from the service CIDR and NodePorts from the node-port range."""

    def __init__(self, store: Store, service_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network,
                 node_ports: tuple[int, int], rng: random.Random | None = None) -> None:
        rng = rng or random.Random()
        self.cidr = service_cidr
        base = int(service_cidr.network_address)
        # The network address and (IPv4) broadcast address are never handed out.
        last = int(service_cidr.broadcast_address) - (1 if service_cidr.version == 4 else 0)
        self._ips = _Range(store, IP_PREFIX, base + 1, last,
                           lambda v: str(ipaddress.ip_address(v)), rng)
        self._ports = _Range(store, PORT_PREFIX, node_ports[0], node_ports[1], str, rng)
        self.node_ports = node_ports
        self.store = store

    def first_ip(self) -> str:
        """The service CIDR's first address: the `kubernetes` service's ClusterIP."""
        return str(ipaddress.ip_address(self._ips.first))

    async def allocate_ip(self, requested: str | None, owner: str, dry_run: bool = False) -> str:
        if requested:
            if not await self._ips.reserve(int(ipaddress.ip_address(requested)), owner, dry_run):
                raise errors.invalid_object("Service", owner.split("/")[-1], [errors.invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated")])
            return requested
        try:
            return str(ipaddress.ip_address(await self._ips.reserve_any(owner, dry_run)))
        except RangeFullError:
            raise errors.internal("failed to allocate a serviceIP: range is full") from None

    async def allocate_port(self, requested: int | None, owner: str, path: str, dry_run: bool = False) -> int:
        if requested:
            if not await self._ports.reserve(requested, owner, dry_run):
                raise errors.invalid_object("Service", owner.split("/")[-1], [errors.invalid(
                    path, requested, "provided port is already allocated")])
            return requested
        try:
            return await self._ports.reserve_any(owner, dry_run)
        except RangeFullError:
            raise errors.internal("failed to allocate a nodePort: range is full") from None

    async def release_ip(self, ip: str) -> None:
        if ip and ip != "None" and ipaddress.ip_address(ip) in self.cidr:
            await self._ips.release(int(ipaddress.ip_address(ip)))

    async def release_port(self, port: int) -> None:
        await self._ports.release(port)

    async def repair(self, held_ips: set[str], held_ports: set[int]) -> int:
        """Free reservations no service holds. Returns how many were freed."""
        freed = 0
        for prefix, held in ((IP_PREFIX, held_ips), (PORT_PREFIX, {str(p) for p in held_ports})):
            result = await self.store.range(prefix)
            for kv in result.kvs:
                if kv.key[len(prefix):] not in held:
                    try:
                        await self.store.delete(kv.key, kv.mod_revision)
                        freed += 1
                    except StoreError:
                        pass
        return freed
