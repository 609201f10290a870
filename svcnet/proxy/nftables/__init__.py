"""svcnet's nftables proxy mode: `compile` turns a proxy Snapshot into one `nft -f` transaction for
`table ip svcnet` with kube-proxy's nftables design (pure, golden-tested); `proxier` applies it in a network
namespace."""

from __future__ import annotations

from svcnet.proxy.nftables.compile import (
    FAMILY,
    TABLE,
    NftChain,
    NftSet,
    Table,
    build_table,
    compile_ruleset,
    delete_ruleset,
    endpoint_name_base,
    render,
    service_name_base,
)

__all__ = [
    "FAMILY",
    "TABLE",
    "NftChain",
    "NftSet",
    "Table",
    "build_table",
    "compile_ruleset",
    "delete_ruleset",
    "endpoint_name_base",
    "render",
    "service_name_base",
]
