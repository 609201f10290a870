"""Portals for the userspace proxy inside a node's network namespace (root): the service addresses are not
addresses of the node, so iptables REDIRECT rules send traffic for `ClusterIP:port` (and for the NodePort on any
local address) to the port where the proxy listens, as kube-proxy's userspace mode did.

`compile_rules` (pure) writes the whole SVCNET-PORTALS chain as iptables-restore input; `Portals.apply` loads
it with `--noflush` (declaring the chain replaces its rules in one transaction, other chains are untouched) and
makes sure PREROUTING and OUTPUT jump to it; `clear` removes it all. IPv4 only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from svcnet.tools import which

CHAIN = "SVCNET-PORTALS"
ANY_LOCAL = "*"  # a portal for every local address (NodePorts)


@dataclass(frozen=True, order=True)
class Portal:
    protocol: str  # TCP | UDP
    ip: str  # a service address, or ANY_LOCAL
    port: int
    to_port: int
    comment: str = ""


def compile_rules(portals: Iterable[Portal]) -> str:
    lines = ["*nat", f":{CHAIN} - [0:0]"]
    for p in sorted(portals):
        proto = p.protocol.lower()
        match = "-m addrtype --dst-type LOCAL" if p.ip == ANY_LOCAL else f"-d {p.ip}/32"
        comment = p.comment.replace('"', "")
        lines.append(f'-A {CHAIN} {match} -p {proto} -m {proto} --dport {p.port} -m comment --comment "{comment}" '
                     f"-j REDIRECT --to-ports {p.to_port}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class Portals:
    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.loaded: str | None = None

    async def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> int:
        proc = await asyncio.create_subprocess_exec(
            which("ip"), "netns", "exec", self.netns, *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        if check and proc.returncode != 0:
            raise OSError(f"{' '.join(args)} in {self.netns}: {err.decode(errors='replace').strip()}")
        return proc.returncode or 0

    async def apply(self, portals: Iterable[Portal]) -> None:
        rules = compile_rules(portals)
        if rules == self.loaded:
            return
        await self._run(which("iptables-restore"), "-w", "--noflush", stdin=rules)
        for hook in ("PREROUTING", "OUTPUT"):
            if await self._run(which("iptables"), "-w", "-t", "nat", "-C", hook, "-j", CHAIN, check=False) != 0:
                await self._run(which("iptables"), "-w", "-t", "nat", "-I", hook, "-j", CHAIN)
        self.loaded = rules

    async def clear(self) -> None:
        iptables = which("iptables")
        for hook in ("PREROUTING", "OUTPUT"):
            await self._run(iptables, "-w", "-t", "nat", "-D", hook, "-j", CHAIN, check=False)
        await self._run(iptables, "-w", "-t", "nat", "-F", CHAIN, check=False)
        await self._run(iptables, "-w", "-t", "nat", "-X", CHAIN, check=False)
        self.loaded = None
