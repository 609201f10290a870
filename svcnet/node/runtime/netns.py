"""The netns runtime (root only): every pod gets its own network namespace with a veth into the node's bridge,
an address from the podCIDR and a default route via the bridge; the process runtime's sandbox and containers
then run inside that namespace.

The node itself is a network namespace too (`--node-netns`): the bridge, the pod veths' host ends and the routes
live there, never in the machine's root namespace. The agent stays in the root namespace (where the API server
is) and reaches into namespaces by path (`ip -n`, nsenter, and `setns` on a worker thread for probes).
Invariants: names derive from the pod uid, so a retry or restart finds what an earlier attempt left and
replaces it; removing a pod deletes its namespace, which deletes its veth pair.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from svcnet.netns import NETNS_DIR, in_netns, ip
from svcnet.node.runtime.process import ProcessRuntime, Sandbox

BRIDGE = "svcnet0"


def _enable_forwarding() -> None:
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")  # /proc/sys/net follows this thread's namespace


def pod_netns_name(pod_dir: Path) -> str:
    return f"svcnet-pod-{pod_dir.name[:13]}"


class NetnsRuntime(ProcessRuntime):
    def __init__(self, node_netns: str) -> None:
        if os.geteuid() != 0:
            raise ValueError("the netns runtime needs root (use the process runtime otherwise)")
        super().__init__("root")
        self.node_netns = node_netns
        self.network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self._bridge_ready = False

    def configure(self, pod_cidr: str) -> None:
        self.network = ipaddress.ip_network(pod_cidr, strict=False)

    async def _ensure_bridge(self) -> None:
        if self._bridge_ready:
            return
        assert self.network is not None, "configure(pod_cidr) first"
        if not (NETNS_DIR / self.node_netns).exists():
            await ip("netns", "add", self.node_netns)
        n = ("-n", self.node_netns)
        if BRIDGE not in await ip(*n, "-o", "link", "show"):
            await ip(*n, "link", "add", BRIDGE, "type", "bridge")
        gateway = f"{self.network.network_address + 1}/{self.network.prefixlen}"
        if gateway not in await ip(*n, "-o", "addr", "show", "dev", BRIDGE):
            await ip(*n, "addr", "add", gateway, "dev", BRIDGE)
        await ip(*n, "link", "set", BRIDGE, "up")
        await ip(*n, "link", "set", "lo", "up")
        await in_netns(self.node_netns, _enable_forwarding)  # the node routes (hostPort DNAT, other nodes)
        self._bridge_ready = True

    async def start_sandbox(self, pod_dir: Path, ip_address: str, files: dict[str, str]) -> Sandbox:
        await self._ensure_bridge()
        name = pod_netns_name(pod_dir)
        await self._remove_netns(name)
        await ip("netns", "add", name)
        try:
            await self._wire(name, ip_address)
            sandbox = await super().start_sandbox(pod_dir, ip_address, files, ("nsenter", f"--net={NETNS_DIR / name}"))
        except BaseException:
            await self._remove_netns(name)
            raise
        sandbox.extra_nsenter = ("-n",)
        sandbox.netns = name
        return sandbox

    async def _wire(self, netns: str, address: str) -> None:
        assert self.network is not None
        host_end = "veth" + netns[-11:]
        await ip("-n", self.node_netns, "link", "del", host_end, check=False)
        await ip("-n", self.node_netns, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns",
                 netns)
        await ip("-n", self.node_netns, "link", "set", host_end, "master", BRIDGE, "up")
        # hairpin: a pod reaching itself through a node address (hostPort, a Service) gets its frames back
        await ip("-n", self.node_netns, "link", "set", host_end, "type", "bridge_slave", "hairpin", "on")
        p = ("-n", netns)
        await ip(*p, "addr", "add", f"{address}/{self.network.prefixlen}", "dev", "eth0")
        await ip(*p, "link", "set", "eth0", "up")
        await ip(*p, "link", "set", "lo", "up")
        await ip(*p, "route", "add", "default", "via", str(self.network.network_address + 1))

    async def stop_sandbox(self, sandbox: Sandbox) -> None:
        await super().stop_sandbox(sandbox)
        if sandbox.netns:
            await self._remove_netns(sandbox.netns)

    @staticmethod
    async def _remove_netns(name: str) -> None:
        if (NETNS_DIR / name).exists():
            await ip("netns", "del", name, check=False)

    def probe_netns(self) -> str | None:
        return self.node_netns


    async def remove_node_netns(self) -> None:
        """On a clean shutdown: the node namespace (with its bridge) goes too, if this agent created it."""
        await self._remove_netns(self.node_netns)
