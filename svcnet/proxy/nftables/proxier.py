"""The nftables proxier: each sync computes the desired `table ip svcnet` and applies it in one `nft -f`
transaction (inside the node's network namespace when one is given), then deletes the conntrack entries of
UDP endpoints that left. Same interface as the iptables proxier.

A full sync (`full`, or no table known to be in the kernel) writes the whole table: a wholesale replace at start
and after a failure, compiled while `nft` already parses what is ready (`compile.WholeTable`), else an in-place
rewrite that keeps the affinity sets (`compile.build_table`, then `render` against the previous table). A
partial sync redoes only the service ports whose service or endpoints changed (`compile.update_table`) and
sends only the difference (`diff.render_partial`); no difference, no transaction.

Whole tables go to an `nft` process, partial syncs through libnftables in-process (`apply`).

Invariants: `self.table` is what the last successful transaction left in the kernel (with the chains it left
over), or None; any failure sets it to None, so the retry writes the whole table; affinity sets keep what they
learnt across partial and periodic full syncs; `close` deletes the table. The applier is this mode's only I/O.
"""

from __future__ import annotations

from svcnet.proxy import model
from svcnet.proxy.backends import VirtualServer
from svcnet.proxy.iptables.compile import NodeInfo
from svcnet.proxy.iptables.proxier import changed_ports, forwarding_table, stale_udp_flows
from svcnet.proxy.nftables.apply import NftablesApplier
from svcnet.proxy.nftables.compile import Table, WholeTable, build_table, delete_ruleset, render, update_table
from svcnet.proxy.nftables.diff import render_partial


class NftablesProxier:
    def __init__(self, node_name: str, node_ips: tuple[str, ...], cluster_cidr: str, netns: str = "") -> None:
        self.node = NodeInfo(node_name, addresses=node_ips, cluster_cidr=cluster_cidr)
        self.applier = NftablesApplier(netns)
        self.table: Table | None = None
        self.snapshot: model.Snapshot | None = None

    def transaction(self, snapshot: model.Snapshot, full: bool) -> tuple[Table, str, bool]:
        """With a table in the kernel: (the table it holds after this sync, the `nft -f` text that gets it
        there -- "" for nothing to do --, whether that is a partial sync)."""
        previous = self.table
        assert previous is not None, "without a table in the kernel a sync replaces it (_replace)"
        changed = None if full else changed_ports(self.snapshot, snapshot)
        if changed is None:
            table = build_table(snapshot, self.node)
            return table, render(table, previous), False
        return *render_partial(previous, update_table(previous, snapshot, self.node, changed)), True

    async def _replace(self, snapshot: model.Snapshot) -> Table:
        """The whole table written over whatever is there, `nft` reading it while it is compiled."""
        whole = WholeTable(snapshot, self.node)
        await self.applier.apply(whole)
        assert whole.table is not None
        return whole.table

    async def sync(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        try:
            if self.table is None:
                table = await self._replace(snapshot)
            else:
                table, text, partial = self.transaction(snapshot, full)
                if text:
                    await (self.applier.apply_partial if partial else self.applier.apply)(text)
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
        self.applier.close()
        await self.applier.apply(delete_ruleset())
        self.table = None
