"""Applying compiled iptables rules (the I/O half of the iptables mode): one `iptables-restore --noflush` per
sync inside the node's network namespace (or the current one), the hooks from the built-in chains checked once,
stale UDP conntrack entries of removed endpoints deleted, and everything removed again on `cleanup`.

Commands start from a worker thread with `subprocess.run` (Python's vfork-based spawn), not with the event
loop's subprocess support: uvloop forks the whole proxy process, which stalled the loop for ~20 ms per
restore at 1,000 services on a loaded 2-CPU machine (and the restore waited as long); `nsenter --net` enters
the namespace with one setns where `ip netns exec` also builds a mount namespace (~5 ms less per command).

Invariants: a failed restore raises (the runner retries with a full sync); the hooks are inserted only when
missing; `cleanup` leaves no KUBE-* chain and no hook behind; commands run inside the namespace only (nsenter
fails rather than fall back to the current one).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterable

from svcnet.netns import NETNS_DIR
from svcnet.tools import which

log = logging.getLogger(__name__)
OWN_PREFIXES = ("KUBE-",)


class IptablesApplier:
    def __init__(self, netns: str = "") -> None:
        self.netns = netns
        self.hooked = False

    def _prefix(self) -> list[str]:
        return [which("nsenter"), f"--net={NETNS_DIR / self.netns}", "--"] if self.netns else []

    async def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str]:
        done = await asyncio.to_thread(subprocess.run, [*self._prefix(), *args], capture_output=True,
                                       input=stdin.encode() if stdin is not None else b"")
        if check and done.returncode != 0:
            raise OSError(f"{' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return done.returncode, done.stdout.decode()

    async def apply(self, text: str, hooks: Iterable[list[str]]) -> None:
        await self._run(which("iptables-restore"), "-w", "--noflush", stdin=text)
        if not self.hooked:
            for rule in hooks:  # ["-t", "nat", "PREROUTING", ...match..., "-j", "KUBE-SERVICES"]
                table, chain, rest = rule[:2], rule[2], rule[3:]
                if (await self._run(which("iptables"), "-w", *table, "-C", chain, *rest, check=False))[0] != 0:
                    await self._run(which("iptables"), "-w", *table, "-I", chain, *rest)
            self.hooked = True

    async def forget_udp_flows(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Delete conntrack entries from a service address to an endpoint that left (kube-proxy's UDP cleanup:
        otherwise a client keeps sending to the dead endpoint until the entry times out)."""
        for service_ip, endpoint_ip in pairs:
            await self._run(which("conntrack"), "-D", "-p", "udp", "--orig-dst", service_ip, "--dst-nat",
                            endpoint_ip, check=False)

    async def cleanup(self, hooks: Iterable[list[str]]) -> None:
        for rule in hooks:
            table, chain, rest = rule[:2], rule[2], rule[3:]
            await self._run(which("iptables"), "-w", *table, "-D", chain, *rest, check=False)
        for name in ("nat", "filter"):
            _, saved = await self._run(which("iptables-save"), "-t", name, check=False)
            chains = [line[1:].split()[0] for line in saved.splitlines()
                      if line.startswith(":") and line[1:].startswith(OWN_PREFIXES)]
            if chains:
                text = "\n".join([f"*{name}", *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains),
                                  "COMMIT"]) + "\n"
                await self._run(which("iptables-restore"), "-w", "--noflush", stdin=text, check=False)
        self.hooked = False
