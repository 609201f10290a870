"""hostPort: a container port published on the node's address, as the kubelet's CNI portmap plugin does.

`mappings` (pure) lists what a pod asks for. The process runtime relays TCP from `hostIP:hostPort` to
`podIP:containerPort` in the agent (`RelayHostPorts`); the netns runtime programs DNAT rules in the node's own
network namespace (`IptablesHostPorts`: chain SVCNET-HOSTPORTS in the nat table, one rule per mapping,
commented with the pod's uid, plus a masquerade so a pod reaching another pod through the node's address gets its
replies back). Invariant: `remove(uid)` undoes everything `add` did for that pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from svcnet.tools import which

log = logging.getLogger(__name__)
CHAIN = "SVCNET-HOSTPORTS"


@dataclass(frozen=True)
class Mapping:
    protocol: str  # tcp | udp
    host_ip: str
    host_port: int
    pod_port: int


def mappings(pod: dict[str, Any], node_ip: str) -> list[Mapping]:
    found = []
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(Mapping(str(port.get("protocol", "TCP")).lower(), port.get("hostIP") or node_ip,
                                     int(port["hostPort"]), int(port["containerPort"])))
    return found


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class RelayHostPorts:
    """TCP relays in the agent (process runtime). UDP hostPorts are refused with a clear error."""

    def __init__(self) -> None:
        self.servers: dict[str, list[asyncio.Server]] = {}

    async def add(self, uid: str, pod_ip: str, wanted: list[Mapping]) -> None:
        for m in wanted:
            if m.protocol != "tcp":
                raise OSError(f"hostPort {m.host_port}/{m.protocol.upper()}: the process runtime publishes TCP only")
            server = await asyncio.start_server(self._relay(pod_ip, m.pod_port), m.host_ip, m.host_port,
                                                reuse_address=True)
            self.servers.setdefault(uid, []).append(server)

    @staticmethod
    def _relay(pod_ip: str, port: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(pod_ip, port), 5)
            except (OSError, TimeoutError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            for w in (writer, up_writer):
                w.close()
        return handle

    async def remove(self, uid: str) -> None:
        for server in self.servers.pop(uid, []):
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()


class IptablesHostPorts:
    """DNAT rules inside the node's network namespace (netns runtime)."""

    def __init__(self, node_netns: str) -> None:
        self.node_netns = node_netns
        self.rules: dict[str, list[list[str]]] = {}
        self._chain_ready = False
        self._lock = asyncio.Lock()  # pods start concurrently: the chain is made once

    async def _iptables(self, *args: str, check: bool = True) -> int:
        proc = await asyncio.create_subprocess_exec(which("ip"), "netns", "exec", self.node_netns, which("iptables"),
                                                    "-w", *args,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if check and proc.returncode != 0:
            raise OSError(f"iptables {' '.join(args)}: {err.decode(errors='replace').strip()}")
        return proc.returncode or 0

    async def _ensure_chain(self) -> None:
        async with self._lock:
            if not self._chain_ready:
                await self._make_chain()

    async def _make_chain(self) -> None:
        await self._iptables("-t", "nat", "-N", CHAIN, check=False)
        rules = [[hook, "-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN] for hook in ("PREROUTING", "OUTPUT")]
        rules.append(["POSTROUTING", "-m", "conntrack", "--ctstate", "DNAT", "-m", "comment", "--comment",
                      "svcnet hostPort hairpin", "-j", "MASQUERADE"])
        for rule in rules:
            if await self._iptables("-t", "nat", "-C", *rule, check=False) != 0:
                await self._iptables("-t", "nat", "-A", *rule)
        self._chain_ready = True

    async def add(self, uid: str, pod_ip: str, wanted: list[Mapping]) -> None:
        if not wanted:
            return
        await self._ensure_chain()
        for m in wanted:
            rule = [CHAIN, "-p", m.protocol, "--dport", str(m.host_port), "-m", "comment", "--comment", uid,
                    "-j", "DNAT", "--to-destination", f"{pod_ip}:{m.pod_port}"]
            await self._iptables("-t", "nat", "-A", *rule)
            self.rules.setdefault(uid, []).append(rule)

    async def remove(self, uid: str) -> None:
        for rule in self.rules.pop(uid, []):
            await self._iptables("-t", "nat", "-D", *rule, check=False)
