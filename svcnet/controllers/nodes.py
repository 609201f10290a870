"""Node IPAM and node health, as kube's nodeipam (range allocator) and nodelifecycle controllers decide them — pure.

IPAM (`CIDRSet`): the cluster CIDR is cut into subnets of `mask` bits; a node without `spec.podCIDR` gets the
lowest free one in `spec.podCIDR` and `spec.podCIDRs`. Invariants: a subnet is held by at most one node; the set
of held subnets is rebuilt from the nodes themselves (`occupy` every podCIDR seen), so allocation survives a
restart of the controller; a podCIDR outside the cluster CIDR or of another size is never occupied.

Health: a node proves it is alive by renewing its Lease (`kube-node-lease/<node>`, `spec.renewTime`) or by
posting its Ready condition (`lastHeartbeatTime`); its creation time counts as the first heartbeat. When the
latest heartbeat is older than the grace period the node is *stale*:
- its Ready, MemoryPressure, DiskPressure and PIDPressure conditions become Unknown (`NodeStatusUnknown`,
  "Kubelet stopped posting node status."; a condition never posted is added as `NodeStatusNeverUpdated`);
  `lastHeartbeatTime` is kept, `lastTransitionTime` is now;
- it carries the taints `node.kubernetes.io/unreachable` NoSchedule and NoExecute (NoExecute with `timeAdded`);
- every pod bound to it gets its Ready condition False (kube's MarkPodsNotReady: status only, reason untouched).
A node that is not stale carries `node.kubernetes.io/not-ready` taints when its own Ready condition is False and
no taints of ours otherwise: a fresh lease lifts the unreachable taints even before the node agent sets its
conditions back (kube keeps them until Ready is True; here the lease is the authority on reachability).
Taints are compared by (key, effect); other taints are never touched.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."


class CIDRError(ValueError):
    """The cluster CIDR and mask size do not describe a usable range."""


# ---- IPAM -----------------------------------------------------------------------------------------------------


@dataclass
class CIDRSet:
    """The subnets of `cluster_cidr` with prefix length `mask`, and which of them are held."""

    cluster_cidr: str
    mask: int
    _network: Network = field(init=False)
    _used: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        try:
            self._network = ipaddress.ip_network(self.cluster_cidr)
        except ValueError as exc:
            raise CIDRError(f"cluster CIDR {self.cluster_cidr!r}: {exc}") from None
        if not self._network.prefixlen <= self.mask <= self._network.max_prefixlen:
            raise CIDRError(f"node CIDR mask size {self.mask} does not fit cluster CIDR {self.cluster_cidr}")

    @property
    def size(self) -> int:
        return 1 << (self.mask - self._network.prefixlen)

    def _index(self, cidr: str) -> int | None:
        try:
            subnet = ipaddress.ip_network(cidr)
        except ValueError:
            return None
        if subnet.version != self._network.version or subnet.prefixlen != self.mask or \
                not subnet.subnet_of(self._network):  # type: ignore[arg-type]
            return None
        return (int(subnet.network_address) - int(self._network.network_address)) >> (
            self._network.max_prefixlen - self.mask)

    def _subnet(self, index: int) -> str:
        base = int(self._network.network_address) + (index << (self._network.max_prefixlen - self.mask))
        return f"{ipaddress.ip_address(base)}/{self.mask}"

    def occupy(self, cidr: str) -> bool:
        """Mark `cidr` held; False when it is not one of this set's subnets."""
        index = self._index(cidr)
        if index is None:
            return False
        self._used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.discard(index)

    def allocate(self) -> str | None:
        """Hold and return the lowest free subnet, or None when the range is full."""
        for index in range(self.size):
            if index not in self._used:
                self._used.add(index)
                return self._subnet(index)
        return None

    def used(self) -> int:
        return len(self._used)


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def cidr_patch(cidr: str) -> Obj:
    return {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}


# ---- time -----------------------------------------------------------------------------------------------------


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 Time or MicroTime; None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def format_time(now: float) -> str:
    return datetime.datetime.fromtimestamp(int(now), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- health ---------------------------------------------------------------------------------------------------


def condition(node_or_pod: Obj, kind: str) -> Obj | None:
    return next((c for c in (node_or_pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind),
                None)


def last_heartbeat(node: Obj, lease: Obj | None) -> float:
    """The newest of: lease renewTime, Ready lastHeartbeatTime, node creationTimestamp (0 when none parse)."""
    ready = condition(node, "Ready") or {}
    candidates = [parse_time((lease or {}).get("spec", {}).get("renewTime")),
                  parse_time(ready.get("lastHeartbeatTime")),
                  parse_time(node.get("metadata", {}).get("creationTimestamp"))]
    return max((c for c in candidates if c is not None), default=0.0)


def is_stale(node: Obj, lease: Obj | None, now: float, grace: float) -> bool:
    return now - last_heartbeat(node, lease) > grace


def unknown_conditions(node: Obj, now: float) -> list[Obj] | None:
    """The node's conditions with the monitored ones set to Unknown; None when nothing changes."""
    stamp = format_time(now)
    created = node.get("metadata", {}).get("creationTimestamp") or stamp
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    changed = False
    for kind in CONDITION_TYPES:
        current = next((c for c in conditions if c.get("type") == kind), None)
        if current is None:
            conditions.append({"type": kind, "status": "Unknown", "reason": NEVER_REASON, "message": NEVER_MESSAGE,
                               "lastHeartbeatTime": created, "lastTransitionTime": stamp})
            changed = True
        elif current.get("status") != "Unknown":
            current.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                           lastTransitionTime=stamp)
            changed = True
    return conditions if changed else None


def _taints_for(key: str) -> list[Obj]:
    return [{"key": key, "effect": "NoSchedule"}, {"key": key, "effect": "NoExecute"}]


def wanted_taints(node: Obj, stale: bool) -> list[Obj]:
    """The taints of ours (unreachable / not-ready) the node should carry."""
    if stale:
        return _taints_for(UNREACHABLE)
    ready = condition(node, "Ready")
    return _taints_for(NOT_READY) if ready is not None and ready.get("status") == "False" else []


def reconcile_taints(node: Obj, wanted: list[Obj], now: float) -> list[Obj] | None:
    """The node's full taint list with ours replaced by `wanted`; None when it already matches."""
    ours = {UNREACHABLE, NOT_READY}
    current = list((node.get("spec") or {}).get("taints") or [])
    have = {(t.get("key"), t.get("effect")) for t in current if t.get("key") in ours}
    want = {(t["key"], t["effect"]) for t in wanted}
    if have == want:
        return None
    kept = [t for t in current if t.get("key") not in ours or (t.get("key"), t.get("effect")) in want]
    for taint in wanted:
        if (taint["key"], taint["effect"]) not in have:
            kept.append({**taint, "timeAdded": format_time(now)} if taint["effect"] == "NoExecute" else taint)
    return kept


def pods_need_not_ready(node: Obj, stale: bool) -> bool:
    """kube marks pods not ready when the node's Ready is not True; here: stale, or Ready said False."""
    ready = condition(node, "Ready")
    return stale or (ready is not None and ready.get("status") == "False")


def pod_not_ready_conditions(pod: Obj, now: float) -> list[Obj] | None:
    """The pod's conditions with Ready set to False; None when it has no Ready condition or it is False already."""
    conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
    for entry in conditions:
        if entry.get("type") == "Ready":
            if entry.get("status") == "False":
                return None
            entry.update(status="False", lastTransitionTime=format_time(now))
            return conditions
    return None


def pods_on(node_name: str, pods: Iterable[Obj]) -> list[Obj]:
    return [p for p in pods if (p.get("spec") or {}).get("nodeName") == node_name]
