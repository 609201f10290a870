"""The ipvs proxier: each sync compiles the snapshot (`compile.compile_state`), reads the kernel's state back
(IPVS table with connection counts, kube-ipvs0 addresses, ipsets), plans the difference (`diff.plan`) and
applies it: ipsets, then the iptables rules, then addresses and virtual/real servers over netlink. A full sync
(the first one too) first sets the namespace's IPVS sysctls (`sysctls.SYSCTLS`).

Invariants: the same interface as the iptables and nftables proxiers (`sync`, `status`, `close`); every sync
starts from what the kernel holds, so drift heals on the next sync and draining real servers (weight 0) are
deleted by the first sync after their last connection ends (the periodic resync at the latest); `status` is
the kernel's table as last read, so ActiveConn/InActConn are the kernel's; `close` removes everything made.
"""

from __future__ import annotations

import logging

from svcnet.proxy import model
from svcnet.proxy.backends import Backend, VirtualServer
from svcnet.proxy.ipvs import compile as ipvs_compile
from svcnet.proxy.ipvs import diff
from svcnet.proxy.ipvs.apply import IpvsApplier

log = logging.getLogger(__name__)


def listing(state: diff.KernelState, desired: ipvs_compile.Desired | None) -> list[VirtualServer]:
    """The kernel's virtual servers as `show` lists them, named after the service ports that want them."""
    names = {key: vs.service for key, vs in desired.services.items()} if desired is not None else {}
    return [VirtualServer(key.protocol, key.address, key.port, svc.scheduler,
                          svc.timeout if svc.flags & ipvs_compile.F_PERSISTENT else None,
                          tuple(Backend(d.address, d.port, d.weight, d.active, d.inactive) for d in svc.dests),
                          names.get(key, ""))
            for key, svc in sorted(state.services.items())]


class IpvsProxier:
    def __init__(self, node_name: str, node_ips: tuple[str, ...], cluster_cidr: str, netns: str = "",
                 scheduler: str = "rr") -> None:
        self.node = ipvs_compile.NodeConfig(node_name, node_ips, cluster_cidr, scheduler)
        self.applier = IpvsApplier(netns)
        self.desired: ipvs_compile.Desired | None = None
        self.kernel = diff.KernelState()
        self.last_ops: list[diff.Operation] = []

    async def sync(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        desired = ipvs_compile.compile_state(snapshot, self.node)
        problems: list[str] = []
        if full or self.desired is None:
            planned = await self.applier.apply_sysctls()
            for setting in planned.write:
                log.info("ipvs: set %s=%s", setting.name, setting.value)
            if self.desired is None:  # said once, not every resync
                problems = [f"ipvs mode: no {s.name}: {s.without}" for s in planned.absent]
        current = await self.applier.read()
        await self.applier.apply_ipsets(diff.ipset_lines(current.ipsets, desired, ipvs_compile.create_lines()))
        if full or self.desired is None or desired.rules != self.desired.rules:
            await self.applier.apply_rules(desired.rules)
        self.last_ops = diff.plan(current, desired)
        if self.last_ops:
            await self.applier.apply(self.last_ops)
            for op in self.last_ops:
                log.debug("ipvs: %s", op)
        self.desired = desired
        self.kernel = await self.applier.read()
        return problems

    async def refresh(self) -> list[VirtualServer]:
        """Read the kernel's table again (live connection counts) and list it."""
        self.kernel = await self.applier.read()
        return self.status()

    def status(self) -> list[VirtualServer]:
        return listing(self.kernel, self.desired)

    async def close(self) -> None:
        owned = tuple(self.desired.services) if self.desired is not None else ()
        await self.applier.cleanup(owned)
