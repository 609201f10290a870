"""The kernel settings the ipvs mode needs in the node's network namespace -- kube-proxy's list
(pkg/proxy/ipvs/proxier.go: sysctlVSConnTrack and the rest) -- and the pure decision of what to write.

These are per network namespace and a new namespace starts with the IPVS ones at 0, so nothing sets them for
svcnet's node namespaces unless the proxier does (before this module, only the hand-built lab of
tests/vm/test_ipvs_kernel.py set `vs.conntrack`). Why each one:
- `net/ipv4/vs/conntrack=1`: IPVS keeps netfilter conntrack entries for its connections, so the KUBE-MARK-MASQ
  -> MASQUERADE rules apply to them (NodePort and LoadBalancer traffic from outside, a node's own connections
  to a ClusterIP). Seen under `svcnet up --netns` on Linux 6.1 with it at 0: a NodePort answered only from the
  node's own pod (the others replied straight to the client) and a node could not reach a ClusterIP at all.
- `net/ipv4/vs/expire_nodest_conn=1`: a packet for a deleted real server ends its IPVS connection, so a UDP
  client that keeps its source port reaches the replacement pod instead of sending into the void until the
  entry times out (5 minutes for UDP).
- `net/ipv4/vs/expire_quiescent_template=1`: persistence (ClientIP affinity) templates pointing at a weight-0
  (draining) real server expire, so sticky clients move on.
- `net/ipv4/ip_forward=1`: the node routes between pods, other nodes and clients.
- `net/bridge/bridge-nf-call-iptables=1` where br_netfilter is loaded: replies between two pods on one node's
  bridge pass the netfilter hooks, where IPVS undoes its DNAT (seen on Linux 6.1: without the module, a pod
  reaching a ClusterIP got answers only from itself, none from the other pods of its node). Optional: without
  br_netfilter the file does not exist; the proxier warns once, as loading kernel modules is not its job.
`net/ipv4/vs/conn_reuse_mode` is left alone, as kube-proxy does from Linux 5.9 on (the kernel fixed the stall
its 0 worked around); the ARP settings belong to strictARP, which svcnet does not offer.

Invariants: pure (`plan` takes what was read and returns what to write); a required setting the kernel lacks
is an error naming it, an optional one is reported (`Plan.absent`, for a warning), never skipped silently; a
value already right is not written again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sysctl:
    path: str  # under /proc/sys
    value: str
    without: str = ""  # optional: what goes wrong where the kernel lacks it; required when empty

    @property
    def name(self) -> str:
        """The dotted name `sysctl -w` takes."""
        return self.path.replace("/", ".")


SYSCTLS = (
    Sysctl("net/ipv4/vs/conntrack", "1"),
    Sysctl("net/ipv4/vs/expire_nodest_conn", "1"),
    Sysctl("net/ipv4/vs/expire_quiescent_template", "1"),
    Sysctl("net/ipv4/ip_forward", "1"),
    Sysctl("net/bridge/bridge-nf-call-iptables", "1",
           without="br_netfilter is not loaded: a pod reaching a Service answered by another pod on the same node "
                   "gets no reply (load it: modprobe br_netfilter)"),
)


@dataclass(frozen=True, slots=True)
class Plan:
    write: tuple[Sysctl, ...] = ()
    absent: tuple[Sysctl, ...] = ()  # optional settings this kernel does not have


def plan(current: Mapping[str, str | None], wanted: tuple[Sysctl, ...] = SYSCTLS) -> Plan:
    """What to write, given `current` (path -> value read, None where the file does not exist). Raises
    ValueError naming every required setting this kernel does not have."""
    missing = [s.name for s in wanted if not s.without and current.get(s.path) is None]
    if missing:
        raise ValueError(f"ipvs mode: this kernel lacks {', '.join(missing)} (is the ip_vs module loaded?)")
    return Plan(tuple(s for s in wanted if current.get(s.path) is not None and current[s.path] != s.value),
                tuple(s for s in wanted if current.get(s.path) is None))
