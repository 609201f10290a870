"""LoadBalancer address allocation from a configured IPv4 pool, with MetalLB's semantics — pure.

The pool is a list of CIDRs (`127.240.0.0/29`) and inclusive ranges (`127.240.0.10-127.240.0.20`). A CIDR larger
than /31 gives up its network and broadcast addresses; /31 and /32 give all of theirs.

Rules:
- a service wants an address when `spec.type` is LoadBalancer and `spec.loadBalancerClass` is unset;
- an address is requested by the annotation `metallb.universe.tf/loadBalancerIPs` (comma-separated; the IPv4 one
  counts) or else by `spec.loadBalancerIP`; when both are set they must agree; a requested address must be in the
  pool and free, otherwise the allocation fails and says why;
- otherwise the service gets the lowest free address of the pool, in the order the pool lists them;
- idempotent: a service that holds an address keeps it (after a restart: the address in its status, when it is
  in the pool and nobody else holds it); it changes only when its request names another one;
- an address is held by at most one service (nothing is shared) and is freed by `release` (service deleted or no
  longer wanting one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
IPS_ANNOTATION = "metallb.universe.tf/loadBalancerIPs"


class PoolError(ValueError):
    """A pool entry that is neither an IPv4 CIDR nor an IPv4 `first-last` range."""


@dataclass(frozen=True, slots=True)
class Pool:
    ranges: tuple[tuple[int, int], ...] = ()  # inclusive integer ranges, in configuration order

    def __contains__(self, ip: str) -> bool:
        value = _ipv4_int(ip)
        return value is not None and any(first <= value <= last for first, last in self.ranges)

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)

    def addresses(self) -> Iterator[str]:
        for first, last in self.ranges:
            for value in range(first, last + 1):
                yield str(ipaddress.IPv4Address(value))


@dataclass(frozen=True, slots=True)
class Allocation:
    ip: str | None
    error: str = ""  # why there is no address


def _ipv4_int(ip: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(ip.strip()))
    except ValueError:
        return None


def _is_ipv6(ip: str) -> bool:
    try:
        ipaddress.IPv6Address(ip)
    except ValueError:
        return False
    return True


def _parse_entry(entry: str) -> tuple[int, int]:
    text = entry.strip()
    if "-" in text:
        first, last = (_ipv4_int(part) for part in text.split("-", 1))
        if first is None or last is None or first > last:
            raise PoolError(f"invalid address range {entry!r}: want first-last with IPv4 first <= last")
        return first, last
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError as exc:
        raise PoolError(f"invalid pool entry {entry!r}: {exc}") from None
    first, last = int(network.network_address), int(network.broadcast_address)
    return (first + 1, last - 1) if network.prefixlen < 31 else (first, last)


def parse_pool(entries: tuple[str, ...] | list[str]) -> Pool:
    return Pool(tuple(_parse_entry(e) for e in entries if e.strip()))


def wants_address(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def requested_ip(service: Obj) -> tuple[str | None, str]:
    """(requested IPv4 address or None, error)."""
    annotations = service.get("metadata", {}).get("annotations") or {}
    from_spec = ((service.get("spec") or {}).get("loadBalancerIP") or "").strip() or None
    raw = annotations.get(IPS_ANNOTATION)
    if raw is None:
        if from_spec is not None and _ipv4_int(from_spec) is None:
            return None, f"spec.loadBalancerIP {from_spec!r} is not an IPv4 address"
        return from_spec, ""
    wanted = [part.strip() for part in raw.split(",") if part.strip()]
    v4 = [ip for ip in wanted if _ipv4_int(ip) is not None]
    if len(v4) != 1 or any(ip not in v4 and not _is_ipv6(ip) for ip in wanted):
        return None, f"annotation {IPS_ANNOTATION} {raw!r} must name exactly one IPv4 address"
    if from_spec is not None and from_spec != v4[0]:
        return None, f"spec.loadBalancerIP {from_spec!r} and annotation {IPS_ANNOTATION} {raw!r} disagree"
    return v4[0], ""


def status_ip(service: Obj) -> str | None:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return next((i["ip"] for i in ingress if i.get("ip") and _ipv4_int(i["ip"]) is not None), None)


def ingress_for(ip: str | None) -> list[Obj]:
    return [{"ip": ip, "ipMode": "VIP"}] if ip else []


@dataclass
class Allocator:
    """Who holds which address of `pool`; keys are `namespace/name` of services."""

    pool: Pool
    _by_key: dict[str, str] = field(default_factory=dict)
    _by_ip: dict[str, str] = field(default_factory=dict)

    def holder(self, ip: str) -> str | None:
        return self._by_ip.get(ip)

    def held_by(self, key: str) -> str | None:
        return self._by_key.get(key)

    def assign(self, key: str, ip: str) -> bool:
        """Record that `key` holds `ip`; False when `ip` is outside the pool or held by another service."""
        if ip not in self.pool or self._by_ip.get(ip, key) != key:
            return False
        self.release(key)
        self._by_key[key], self._by_ip[ip] = ip, key
        return True

    def release(self, key: str) -> str | None:
        ip = self._by_key.pop(key, None)
        if ip is not None:
            self._by_ip.pop(ip, None)
        return ip

    def allocate(self, key: str, service: Obj) -> Allocation:
        wanted, error = requested_ip(service)
        if error:
            self.release(key)
            return Allocation(None, error)
        held = self._by_key.get(key)
        if held is not None and wanted in (None, held):
            return Allocation(held)
        if wanted is not None:
            return self._take(key, wanted)
        previous = status_ip(service)
        if previous is not None and self.assign(key, previous):
            return Allocation(previous)
        return self._first_free(key)

    def _take(self, key: str, ip: str) -> Allocation:
        """The requested `ip` for `key`; on failure `key` holds nothing (its status will be cleared)."""
        if ip not in self.pool:
            self.release(key)
            return Allocation(None, f"requested IP {ip} is not in the load balancer pool")
        holder = self._by_ip.get(ip)
        if holder is not None and holder != key:
            self.release(key)
            return Allocation(None, f"requested IP {ip} is already allocated to {holder}")
        self.assign(key, ip)
        return Allocation(ip)

    def _first_free(self, key: str) -> Allocation:
        if not self.pool.ranges:
            return Allocation(None, "no load balancer IP pool is configured")
        if len(self._by_ip) >= len(self.pool):
            return Allocation(None, f"no available IPs: all {len(self.pool)} addresses of the pool are allocated")
        for ip in self.pool.addresses():
            if ip not in self._by_ip:
                self.assign(key, ip)
                return Allocation(ip)
        return Allocation(None, "no available IPs in the pool")  # pragma: no cover — guarded by the count above
