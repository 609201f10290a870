"""Endpoint categorisation for the kernel proxy modes (kube-proxy's CategorizeEndpoints) — pure.

A service port's traffic takes up to two paths: the Cluster path (every usable endpoint, any node) and the Local
path (this node's endpoints only), depending on `internalTrafficPolicy`, `externalTrafficPolicy` and whether the
port is reachable from outside (NodePort, externalIPs, LoadBalancer addresses). `categorize` decides which paths
a port uses and with which endpoints; the iptables and nftables compilers extend `PortEndpoints` with their own
chain names. IPv4 only, like those modes: IPv6 addresses and endpoints are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from svcnet.proxy import model

P = TypeVar("P", bound="PortEndpoints")


def v4(addresses: Sequence[str]) -> tuple[str, ...]:
    if len(addresses) == 1 and ":" not in addresses[0] and addresses[0]:  # most often: one IPv4 address
        return tuple(addresses)
    return tuple(a for a in addresses if a and ":" not in a) if addresses else ()


def sorted_endpoints(endpoints: Iterable[model.EndpointInfo]) -> tuple[model.EndpointInfo, ...]:
    return tuple(sorted(endpoints, key=model.ENDPOINT_ORDER))


def v4_endpoints(endpoints: Iterable[model.EndpointInfo]) -> tuple[model.EndpointInfo, ...]:
    """The IPv4 endpoints, sorted (IPv4 sorts first: a last one that is IPv4 means all are)."""
    eps = sorted(endpoints, key=model.ENDPOINT_ORDER)
    if eps and eps[-1].order[0] != _IPV4:
        eps = [e for e in eps if e.order[0] == _IPV4]
    return tuple(eps)


_IPV4 = b"\x04"[0]


@dataclass(slots=True)
class PortEndpoints:
    """One service port with its endpoints categorised as kube's CategorizeEndpoints does. Never modified, but
    not frozen: one is made per service port and sync, and a frozen dataclass's __init__ costs three times as
    much (~1 µs x 9 fields)."""

    info: model.ServicePortInfo
    cluster_ip: str
    cluster_eps: tuple[model.EndpointInfo, ...]  # empty unless the Cluster path is used
    local_eps: tuple[model.EndpointInfo, ...]  # empty unless the Local path is used
    has_endpoints: bool  # usable endpoints on any node
    proto: str  # "tcp", "udp" or "sctp"
    external_ips: tuple[str, ...]  # the IPv4 ones
    lb_ips: tuple[str, ...]  # the IPv4 ones

    @property
    def name(self) -> str:
        return str(self.info.name)

    @property
    def accessible(self) -> bool:
        return bool(self.info.node_port or self.external_ips or self.lb_ips)

    @property
    def external_local(self) -> bool:
        return self.info.external_local and self.accessible

    @property
    def has_internal(self) -> bool:
        return bool(self.local_eps) if self.info.internal_local else self.has_endpoints

    @property
    def has_external(self) -> bool:
        return bool(self.local_eps) if self.external_local else self.has_endpoints

    @property
    def reachable(self) -> tuple[model.EndpointInfo, ...]:
        """Every endpoint either path uses, sorted (local_eps is usually empty or within cluster_eps)."""
        if not self.local_eps or self.local_eps == self.cluster_eps:
            return self.cluster_eps
        if not self.cluster_eps:
            return self.local_eps
        return sorted_endpoints(set(self.cluster_eps) | set(self.local_eps))


def categorize(info: model.ServicePortInfo, endpoints: Sequence[model.EndpointInfo], node: str,
               kind: Callable[..., P], *extra: object) -> P | None:
    """The port's paths and their endpoints as `kind(<PortEndpoints' fields>, *extra)` (a subclass that adds
    the `extra` fields); None when it has no IPv4 ClusterIP (nothing to program)."""
    cluster_ips = v4(info.cluster_ips)
    if not cluster_ips:
        return None
    eps = v4_endpoints(endpoints)
    external_ips, lb_ips = v4(info.external_ips), v4(info.load_balancer_ips)
    accessible = bool(info.node_port or external_ips or lb_ips)
    everywhere = model.ready_or_terminating(eps)
    uses_cluster = not info.internal_local or accessible
    uses_local = info.internal_local or (accessible and info.external_local)
    # usable() keeps only this node's endpoints for the side of the traffic whose policy is Local
    local = model.usable(info, eps, node, external=not info.internal_local) if uses_local else ()
    return kind(info, cluster_ips[0], everywhere if uses_cluster else (), local, bool(everywhere),
                info.protocol.lower(), external_ips, lb_ips, *extra)
