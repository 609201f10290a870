"""svcnet's iptables proxy mode: `compile` turns a proxy Snapshot into kube-proxy-shaped
`iptables-restore` input (pure, golden-tested); `apply` loads it into a network namespace."""

from __future__ import annotations

from svcnet.proxy.iptables.compile import (
    Compiled,
    CompiledState,
    NodeInfo,
    compile_rules,
    endpoint_chain_name,
    jump_rules,
    port_proto_hash,
    service_chain_name,
)

__all__ = [
    "Compiled",
    "CompiledState",
    "NodeInfo",
    "compile_rules",
    "endpoint_chain_name",
    "jump_rules",
    "port_proto_hash",
    "service_chain_name",
]
