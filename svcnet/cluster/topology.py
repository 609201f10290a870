"""The netns topology of `svcnet up --netns` (root): nodes as network namespaces on one L2 fabric, every one of
them routing to the others' pod ranges, plus a client namespace outside the nodes — all inside namespaces this
module creates, so nothing is added to the machine's own namespace.

    svcnet-fabric  bridge fabric0 (no address: a switch)
    svcnet-node-N  eth0 172.18.0.(10+N)/24 on the fabric, pod bridge svcnet0 10.244.N.1/24 (made by the node
                   agent's netns runtime), routes 10.244.M.0/24 via 172.18.0.(10+M) for every other node M,
                   and 10.96.0.0/12 on eth0 so the node itself reaches ClusterIPs
    svcnet-client  eth0 172.18.0.100/24: "outside the cluster", for NodePorts; it routes the LoadBalancer pool
                   172.18.1.0/24 to every node at once (ECMP), as a router fed by BGP announcements would
    LoadBalancer addresses come from 172.18.1.0/24, which every node also routes on eth0 (its own connections
    are rewritten by the proxy's rules after the route lookup, as for ClusterIPs)
`plan` is pure (names and addresses); `create` and `destroy` run `ip`. `destroy` removes every namespace the plan
names and every pod namespace, whatever state an earlier run (or a kill -9) left.
"""

from __future__ import annotations

from dataclasses import dataclass

from svcnet.netns import NETNS_DIR, in_netns, ip

FABRIC = "svcnet-fabric"
CLIENT = "svcnet-client"
FABRIC_PREFIX = "172.18.0"
CLIENT_IP = f"{FABRIC_PREFIX}.100"
SERVICE_CIDR = "10.96.0.0/12"
LB_POOL = "172.18.1.0/24"  # LoadBalancer addresses, routed to the nodes


@dataclass(frozen=True)
class NodePlan:
    name: str  # the Node's name
    netns: str
    ip: str  # on the fabric
    pod_cidr: str


def plan(nodes: int) -> list[NodePlan]:
    if not 1 <= nodes <= 50:
        raise ValueError("--nodes must be between 1 and 50")
    return [NodePlan(f"node-{i}", f"svcnet-node-{i}", f"{FABRIC_PREFIX}.{10 + i}", f"10.244.{i}.0/24")
            for i in range(1, nodes + 1)]


def _enable_forwarding() -> None:
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # this thread's namespace
        f.write("1\n")


async def _attach(netns: str, address: str, link: str) -> None:
    await ip("-n", FABRIC, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
    await ip("-n", FABRIC, "link", "set", link, "master", "fabric0", "up")
    await ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
    await ip("-n", netns, "link", "set", "eth0", "up")
    await ip("-n", netns, "link", "set", "lo", "up")


async def create(nodes: list[NodePlan]) -> None:
    await destroy(nodes)
    await ip("netns", "add", FABRIC)
    await ip("-n", FABRIC, "link", "add", "fabric0", "type", "bridge")
    await ip("-n", FABRIC, "link", "set", "fabric0", "up")
    for node in nodes:
        await ip("netns", "add", node.netns)
        await _attach(node.netns, node.ip, f"v-{node.name}"[:15])
        await in_netns(node.netns, _enable_forwarding)
        for other in nodes:
            if other is not node:
                await ip("-n", node.netns, "route", "add", other.pod_cidr, "via", other.ip)
        # as a real node's default route does: the node itself can reach ClusterIPs (the proxy's rules act after
        # the route lookup for locally made connections)
        for routed in (SERVICE_CIDR, LB_POOL):
            await ip("-n", node.netns, "route", "add", routed, "dev", "eth0")
    await ip("netns", "add", CLIENT)
    await _attach(CLIENT, CLIENT_IP, "v-client")
    hops = [arg for node in nodes for arg in ("nexthop", "via", node.ip)]
    await ip("-n", CLIENT, "route", "add", LB_POOL, *hops)


async def destroy(nodes: list[NodePlan]) -> None:
    """Remove the topology and any pod namespaces (`svcnet-pod-*`) an agent killed with -9 left behind."""
    pods = [p.name for p in NETNS_DIR.glob("svcnet-pod-*")] if NETNS_DIR.exists() else []
    for name in [*pods, CLIENT, FABRIC, *(n.netns for n in nodes)]:
        if (NETNS_DIR / name).exists():
            await ip("netns", "del", name, check=False)
