"""The nftables proxier: each sync builds the desired `table ip svcnet` (`compile.build_table`) and applies it
in one `nft -f -` transaction (inside the node's network namespace when one is given), then deletes the
conntrack entries of UDP endpoints that left. Same interface as the iptables proxier.

Invariants: `self.table` is what the last successful transaction left in the kernel, or None; with None
(first sync, or after a failure) the transaction replaces the table wholesale, otherwise it rewrites the
table in place so that the affinity sets keep what they learnt. Every sync writes every chain and map, so a
`full` (periodic) sync needs nothing more and does not reset affinity; `close` deletes the table.
The small applier below is this mode's only I/O (kept in this module, as the brief allows no apply.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from svcnet.proxy import model
from svcnet.proxy.backends import VirtualServer
from svcnet.proxy.iptables.apply import IptablesApplier
from svcnet.proxy.iptables.compile import NodeInfo
from svcnet.proxy.iptables.proxier import forwarding_table, stale_udp_flows
from svcnet.proxy.nftables.compile import Table, build_table, delete_ruleset, render
from svcnet.tools import which


class NftablesApplier:
    """Runs `nft -f -` (in `netns` when set) and the UDP conntrack cleanup."""

    def __init__(self, netns: str = "") -> None:
        self.netns = netns
        self.conntrack = IptablesApplier(netns)  # its forget_udp_flows is mode-independent

    async def apply(self, text: str) -> None:
        prefix = [which("ip"), "netns", "exec", self.netns] if self.netns else []
        proc = await asyncio.create_subprocess_exec(*prefix, which("nft"), "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(text.encode())
        if proc.returncode != 0:
            raise OSError(f"nft -f: {err.decode(errors='replace').strip()}")

    async def forget_udp_flows(self, pairs: Iterable[tuple[str, str]]) -> None:
        await self.conntrack.forget_udp_flows(pairs)


class NftablesProxier:
    def __init__(self, node_name: str, node_ips: tuple[str, ...], cluster_cidr: str, netns: str = "") -> None:
        self.node = NodeInfo(node_name, addresses=node_ips, cluster_cidr=cluster_cidr)
        self.applier = NftablesApplier(netns)
        self.table: Table | None = None
        self.snapshot: model.Snapshot | None = None

    async def sync(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        table = build_table(snapshot, self.node)  # complete whether or not `full`
        try:
            await self.applier.apply(render(table, self.table))
        except OSError:
            self.table = None  # the next try replaces the table wholesale
            raise
        self.table = table
        await self.applier.forget_udp_flows(stale_udp_flows(self.snapshot, snapshot))
        self.snapshot = snapshot
        return []

    def status(self) -> list[VirtualServer]:
        return forwarding_table(self.snapshot, self.node.name)

    async def close(self) -> None:
        await self.applier.apply(delete_ruleset())
        self.table = None
