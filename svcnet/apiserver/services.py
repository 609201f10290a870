"""Service-specific write hooks: ClusterIP and NodePort allocation around a store write.

`allocating(old, new)` reserves what `new` holds and `old` did not before the write, gives the reservations back if
the write fails, and frees what `old` held and `new` no longer does after it succeeds. So a service's addresses
are reserved exactly while some stored service holds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from svcnet.api.jsontree import clone
from svcnet.api.resources import ResourceInfo
from svcnet.apiserver.allocator import ServiceAllocator

_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def held(svc: dict[str, Any] | None) -> tuple[set[str], set[int]]:
    """The ClusterIPs and node ports a stored service holds."""
    if not svc:
        return set(), set()
    spec = svc.get("spec", {})
    ips = {ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"}
    ports = {p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(spec["healthCheckNodePort"])
    return ips, ports


def _owner(svc: dict[str, Any]) -> str:
    meta = svc["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _drop_type_dependent_fields(spec: dict[str, Any], old_spec: dict[str, Any]) -> None:
    """A type change clears what the old type allocated and the user left as it was (kube's
    dropTypeDependentFields): node ports when leaving NodePort/LoadBalancer, the ClusterIP for ExternalName."""
    new_type, old_type = spec.get("type", "ClusterIP"), old_spec.get("type", "ClusterIP")
    if new_type == old_type:
        return
    if old_type in _NODE_PORT_TYPES and new_type not in _NODE_PORT_TYPES:
        old_ports = {p.get("nodePort") for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if port.get("nodePort") in old_ports:
                port.pop("nodePort", None)
        for field in ("healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
            if spec.get(field) == old_spec.get(field):
                spec.pop(field, None)
    if new_type == "ExternalName":
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(field) == old_spec.get(field):
                spec.pop(field, None)


def _writable_spec(svc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `svc` whose top level, spec and spec.ports[*] -- all that `_fill` changes -- are its own; the rest
    (metadata, managedFields...) is shared with `svc`, which stays untouched."""
    svc = dict(svc)
    spec = svc.get("spec")
    if isinstance(spec, dict):
        spec = svc["spec"] = dict(spec)
        ports = spec.get("ports")
        if isinstance(ports, list):
            spec["ports"] = [dict(p) if isinstance(p, dict) else p for p in ports]
    return svc


class ServiceHooks:
    def __init__(self, allocator: ServiceAllocator) -> None:
        self.allocator = allocator

    def keep_allocations(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        """An update that leaves clusterIP / nodePorts unset keeps the ones already allocated (as kube does)."""
        if info.kind != "Service":
            return new
        new = clone(new)
        spec, old_spec = new.setdefault("spec", {}), old.get("spec", {})
        _drop_type_dependent_fields(spec, old_spec)
        if spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName":
            if not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIPs") and old_spec.get("clusterIPs") and \
                    spec.get("clusterIP") == old_spec.get("clusterIP"):
                spec["clusterIPs"] = list(old_spec["clusterIPs"])
        if spec.get("type") in _NODE_PORT_TYPES and old_spec.get("type") in _NODE_PORT_TYPES:
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports") or []}
            for port in spec.get("ports") or []:
                kept = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if not port.get("nodePort") and kept:
                    port["nodePort"] = kept
            if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort") and \
                    spec.get("externalTrafficPolicy") == "Local":
                spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
        return new

    @contextlib.asynccontextmanager
    async def allocating(self, info: ResourceInfo, old: dict[str, Any] | None, new: dict[str, Any],
                         dry_run: bool) -> AsyncIterator[dict[str, Any]]:
        if info.kind != "Service":
            yield new
            return
        new = _writable_spec(new)
        old_ips, old_ports = held(old)
        taken_ips: list[str] = []
        taken_ports: list[int] = []
        try:
            await self._fill(new, old_ips, old_ports, taken_ips, taken_ports, dry_run)
            if dry_run:
                taken_ips, taken_ports = [], []  # nothing was reserved
            yield new
        except BaseException:
            await self._give_back(taken_ips, taken_ports)
            raise
        if not dry_run:
            new_ips, new_ports = held(new)
            await self._give_back(list(old_ips - new_ips), list(old_ports - new_ports))

    async def _fill(self, svc: dict[str, Any], old_ips: set[str], old_ports: set[int],
                    taken_ips: list[str], taken_ports: list[int], dry_run: bool) -> None:
        spec = svc.setdefault("spec", {})
        owner = _owner(svc)
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        else:
            requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
            if requested not in old_ips:
                requested = await self.allocator.allocate_ip(requested, owner, dry_run)
                taken_ips.append(requested)
            spec["clusterIP"], spec["clusterIPs"] = requested, [requested]
        if kind not in _NODE_PORT_TYPES:
            return
        skip_unset = kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if wanted in old_ports or (not wanted and skip_unset):
                continue
            port["nodePort"] = await self.allocator.allocate_port(wanted, owner, f"spec.ports[{i}].nodePort",
                                                                  dry_run)
            taken_ports.append(port["nodePort"])
        if spec.get("externalTrafficPolicy") == "Local" and kind == "LoadBalancer":
            wanted = spec.get("healthCheckNodePort")
            if wanted not in old_ports:
                spec["healthCheckNodePort"] = await self.allocator.allocate_port(
                    wanted, owner, "spec.healthCheckNodePort", dry_run)
                taken_ports.append(spec["healthCheckNodePort"])

    async def _give_back(self, ips: list[str], ports: list[int]) -> None:
        for ip in ips:
            await self.allocator.release_ip(ip)
        for port in ports:
            await self.allocator.release_port(port)

    async def release(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        if info.kind == "Service":
            ips, ports = held(obj)
            await self._give_back(list(ips), list(ports))
