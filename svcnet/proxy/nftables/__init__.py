"""svcnet's nftables proxy mode: `compile` turns a proxy Snapshot into one `nft -f` transaction for
`table ip svcnet` with kube-proxy's nftables design (pure, golden-tested); `diff` turns two tables into a
partial-sync transaction (pure), `patched` lets a partial sync copy only what it changes; `proxier` syncs,
`apply` runs the transactions in a network namespace (`nft -f`, or libnftables for partial syncs)."""

from __future__ import annotations

from svcnet.proxy.nftables.compile import (
    FAMILY,
    TABLE,
    NftChain,
    NftSet,
    PortRules,
    Table,
    build_table,
    compile_ruleset,
    delete_ruleset,
    endpoint_name_base,
    port_rules,
    render,
    service_name_base,
    update_table,
)
from svcnet.proxy.nftables.diff import plan_diff, render_diff, render_partial, render_plan

__all__ = [
    "FAMILY",
    "TABLE",
    "NftChain",
    "NftSet",
    "PortRules",
    "Table",
    "build_table",
    "compile_ruleset",
    "delete_ruleset",
    "endpoint_name_base",
    "plan_diff",
    "port_rules",
    "render",
    "render_diff",
    "render_partial",
    "render_plan",
    "service_name_base",
    "update_table",
]
