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

import asyncio
import ctypes
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from svcnet.node.runtime.process import ProcessRuntime, Sandbox
from svcnet.tools import which

BRIDGE = "svcnet0"
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


async def ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(which("ip"), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode()


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def call_in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run `fn` on this thread inside network namespace `netns` (sockets it creates stay there), then return."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            return fn()
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)


async def in_netns(netns: str, fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(call_in_netns, netns, fn)


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


def connect_in(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected from inside `netns` (raises OSError/TimeoutError on failure)."""
    return call_in_netns(netns, lambda: socket.create_connection((host, port), timeout=timeout))
