"""The nftables proxier: each sync computes the desired `table ip svcnet` and applies it in one `nft -f -`
transaction (inside the node's network namespace when one is given), then deletes the conntrack entries of
UDP endpoints that left. Same interface as the iptables proxier.

A full sync (`full`, or no table known to be in the kernel) builds the whole table (`compile.build_table`)
and writes all of it: wholesale replace after a failure or at start, else an in-place rewrite that keeps the
affinity sets. A partial sync redoes only the service ports whose service or endpoints changed
(`compile.update_table`) and sends only the difference (`diff.render_diff`); no difference, no transaction.

Invariants: `self.table` is what the last successful transaction left in the kernel, or None; any failure
sets it to None, so the retry writes the whole table; affinity sets keep what they learnt across partial and
periodic full syncs; `close` deletes the table. The small applier below is this mode's only I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from svcnet.proxy import model
from svcnet.proxy.backends import VirtualServer
from svcnet.proxy.iptables.apply import IptablesApplier
from svcnet.proxy.iptables.compile import NodeInfo
from svcnet.proxy.iptables.proxier import changed_ports, forwarding_table, stale_udp_flows
from svcnet.proxy.nftables.compile import Table, build_table, delete_ruleset, render, update_table
from svcnet.proxy.nftables.diff import render_diff
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

    def transaction(self, snapshot: model.Snapshot, full: bool) -> tuple[Table, str]:
        """The table this sync wants and the `nft -f` text that gets the kernel there ("" for nothing to do)."""
        changed = None if full or self.table is None else changed_ports(self.snapshot, snapshot)
        if self.table is None or changed is None:
            table = build_table(snapshot, self.node)
            return table, render(table, self.table)
        table = update_table(self.table, snapshot, self.node, changed)
        return table, render_diff(self.table, table)

    async def sync(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        table, text = self.transaction(snapshot, full)
        try:
            if text:
                await self.applier.apply(text)
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
