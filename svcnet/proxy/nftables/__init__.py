"""svcnet's nftables proxy mode: `compile` turns a proxy Snapshot into one `nft -f` transaction for
`table ip svcnet` with kube-proxy's nftables design (pure, golden-tested); `diff` turns two tables into a
partial-sync transaction (pure); `proxier` applies them in a network namespace."""

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
from svcnet.proxy.nftables.diff import plan_diff, render_diff

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
    "service_name_base",
    "update_table",
]
