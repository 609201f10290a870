"""The iptables proxier: each sync compiles the snapshot (`compile.compile_rules`, partial when only some
service ports changed) and applies it in one `iptables-restore --noflush` (`apply.IptablesApplier`), then deletes
the conntrack entries of UDP endpoints that left.

Invariants: a failed restore forgets the compiled state, so the retry is a full sync; `changed` is derived
exactly by comparing the previous snapshot with the new one; `close` removes every rule and chain it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from svcnet.proxy import model
from svcnet.proxy.backends import Backend, VirtualServer
from svcnet.proxy.iptables.apply import IptablesApplier
from svcnet.proxy.iptables.compile import CompiledState, NodeInfo, compile_rules, jump_rules

K = TypeVar("K")


def changed_ports(old: model.Snapshot | None, new: model.Snapshot) -> set[model.ServicePortName] | None:
    """The service ports whose service or endpoints differ (None: no previous snapshot, everything)."""
    if old is None:
        return None
    return (_differing(old.services, new.services, None)
            | _differing(old.endpoints, new.endpoints, ()))


def _differing(before: Mapping[K, object], after: Mapping[K, object], absent: object) -> set[K]:
    """The keys whose value differs (a missing key counts as `absent`). Identical objects are skipped without
    comparing them, and two mappings with the same keys in the same order are walked side by side without
    hashing a key: a new snapshot mostly reuses the previous one's objects."""
    if before is after:
        return set()
    if len(before) == len(after):
        changed = set()
        for (key, was), (now_key, value) in zip(before.items(), after.items(), strict=True):
            if key is not now_key and key != now_key:
                break
            if was is not value and was != value:
                changed.add(now_key)
        else:
            return changed
    changed = {n for n, value in after.items() if (was := before.get(n, absent)) is not value and was != value}
    return changed | {n for n, was in before.items() if n not in after and was != absent}


def stale_udp_flows(old: model.Snapshot | None, new: model.Snapshot) -> list[tuple[str, str]]:
    """(service address, endpoint IP) pairs for UDP endpoints that left a service port still or no longer there."""
    if old is None:
        return []
    pairs = []
    for name, info in old.services.items():
        if info.protocol != "UDP":
            continue
        kept = {e.ip for e in new.endpoints.get(name, ())}
        gone = {e.ip for e in old.endpoints.get(name, ())} - kept
        addresses = (*info.cluster_ips, *info.external_ips, *info.load_balancer_ips)
        pairs += [(address, ip) for ip in sorted(gone) for address in addresses]
    return pairs


def forwarding_table(snapshot: model.Snapshot | None, node_name: str) -> list[VirtualServer]:
    """What kernel rules send where, for `svcnet proxy show` (no connection counts: the kernel keeps no
    per-backend tally for iptables or nftables rules)."""
    if snapshot is None:
        return []
    servers = []
    for name, info in sorted(snapshot.services.items()):
        endpoints = model.usable(info, snapshot.endpoints.get(name, ()), node_name, external=False)
        backends = tuple(Backend(e.ip, e.port, node_name=e.node_name) for e in endpoints)
        servers += [VirtualServer(info.protocol, ip, info.port, "random", info.affinity_timeout, backends,
                                  str(name)) for ip in info.cluster_ips]
    return servers


class IptablesProxier:
    def __init__(self, node_name: str, node_ips: tuple[str, ...], cluster_cidr: str, netns: str = "") -> None:
        self.node = NodeInfo(node_name, addresses=node_ips, cluster_cidr=cluster_cidr)
        self.applier = IptablesApplier(netns)
        self.state: CompiledState | None = None
        self.snapshot: model.Snapshot | None = None

    async def sync(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        changed = None if full or self.state is None else changed_ports(self.snapshot, snapshot)
        compiled = compile_rules(snapshot, self.node, self.state, changed)
        try:
            await self.applier.apply(compiled.text, jump_rules())
        except OSError:
            self.state = None  # the next try is a full sync
            raise
        self.state = compiled.state
        await self.applier.forget_udp_flows(stale_udp_flows(self.snapshot, snapshot))
        self.snapshot = snapshot
        return []

    def status(self) -> list[VirtualServer]:
        return forwarding_table(self.snapshot, self.node.name)

    async def close(self) -> None:
        await self.applier.cleanup(jump_rules())
