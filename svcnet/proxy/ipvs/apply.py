"""Applying the ipvs mode (the I/O half): read the kernel's IPVS table, the addresses of `kube-ipvs0` and the
ipsets back, then carry out `diff.plan`'s operations over netlink (pyroute2 `IPVS` for virtual and real
servers, `IPRoute` for the dummy interface), `ipset restore -exist` for the set members and one
`iptables-restore --noflush` (through the iptables mode's applier) for the rules -- all inside the node's
network namespace when one is given.

Invariants: netlink work runs on a worker thread that enters the namespace and always leaves it (pyroute2's
synchronous API runs an event loop there: a plain asyncio one made here and closed after, never one of the
installed uvloop policy, which cannot carry netlink); commands (`ipset`) start from worker threads with
`subprocess.run`, never with the loop's subprocess support; a failed operation raises OSError (the proxier
then retries with a full sync); ipsets exist before the rules that match them and go only after those rules
are gone; `cleanup` leaves no virtual server on a svcnet address, no `kube-ipvs0`, no KUBE-* chain and no
KUBE-* set.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from svcnet.netns import NETNS_DIR, call_in_netns
from svcnet.proxy.iptables.apply import IptablesApplier
from svcnet.proxy.ipvs import compile as ipvs_compile
from svcnet.proxy.ipvs import sysctls
from svcnet.proxy.ipvs.compile import DUMMY_DEVICE, PERSISTENT_NETMASK, ServiceKey, VirtualService
from svcnet.proxy.ipvs.diff import (
    AddAddress,
    AddDest,
    AddService,
    CurrentDest,
    CurrentService,
    DeleteAddress,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    KernelState,
    Operation,
)
from svcnet.tools import which

T = TypeVar("T")
PROTOCOLS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
MASQ = 0  # IP_VS_CONN_F_MASQ: the forwarding method kube-proxy uses (ipvsadm -m)
OWN_SETS = tuple(spec.name for spec in ipvs_compile.IPSETS)
PROC_SYS = Path("/proc/sys")


def _service(key: ServiceKey, service: VirtualService | None = None) -> Any:
    from pyroute2 import IPVSService

    fields: dict[str, Any] = {"addr": key.address, "port": key.port, "protocol": PROTOCOLS[key.protocol]}
    if service is not None:
        fields.update(sched_name=service.scheduler, timeout=service.timeout, netmask=PERSISTENT_NETMASK,
                      flags={"flags": service.flags, "mask": 0xFFFF})
    return IPVSService(**fields)


def _dest(address: str, port: int, weight: int) -> Any:
    from pyroute2 import IPVSDest

    return IPVSDest(addr=address, port=port, weight=weight, fwd_method=MASQ)


def _read_services(ipvs: Any) -> dict[ServiceKey, CurrentService]:
    found = {}
    for message in ipvs.service("dump"):
        attrs = message.get("IPVS_CMD_ATTR_SERVICE")
        protocol = PROTOCOL_NAMES.get(attrs.get("IPVS_SVC_ATTR_PROTOCOL"))
        address = attrs.get("IPVS_SVC_ATTR_ADDR")
        if protocol is None or not address or attrs.get("IPVS_SVC_ATTR_AF") != socket.AF_INET:
            continue  # firewall-mark or IPv6 services are not svcnet's
        key = ServiceKey(protocol, address, attrs.get("IPVS_SVC_ATTR_PORT"))
        dests = tuple(_read_dest(m.get("IPVS_CMD_ATTR_DEST")) for m in ipvs.dest("dump", service=_service(key)))
        flags = attrs.get("IPVS_SVC_ATTR_FLAGS") or {}
        found[key] = CurrentService(key, attrs.get("IPVS_SVC_ATTR_SCHED_NAME") or "", int(flags.get("flags", 0)),
                                    int(attrs.get("IPVS_SVC_ATTR_TIMEOUT") or 0), dests)
    return found


def _read_dest(attrs: Any) -> CurrentDest:
    return CurrentDest(attrs.get("IPVS_DEST_ATTR_ADDR"), attrs.get("IPVS_DEST_ATTR_PORT"),
                       int(attrs.get("IPVS_DEST_ATTR_WEIGHT") or 0), int(attrs.get("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0),
                       int(attrs.get("IPVS_DEST_ATTR_INACT_CONNS") or 0))


def _dummy_index(ipr: Any, create: bool) -> int | None:
    found = ipr.link_lookup(ifname=DUMMY_DEVICE)
    if not found and create:
        ipr.link("add", ifname=DUMMY_DEVICE, kind="dummy")  # left DOWN, as kube-proxy leaves it
        found = ipr.link_lookup(ifname=DUMMY_DEVICE)
    return found[0] if found else None


def _read_addresses(ipr: Any, index: int | None) -> frozenset[str]:
    if index is None:
        return frozenset()
    return frozenset(m.get("IFA_ADDRESS") for m in ipr.get_addr(index=index, family=socket.AF_INET))


def _apply_one(ipvs: Any, ipr: Any, index: int, op: Operation) -> None:
    if isinstance(op, AddAddress):
        ipr.addr("add", index=index, address=op.address, prefixlen=32)
    elif isinstance(op, DeleteAddress):
        ipr.addr("del", index=index, address=op.address, prefixlen=32)
    elif isinstance(op, AddService | EditService):
        ipvs.service("add" if isinstance(op, AddService) else "set", service=_service(op.service.key, op.service))
    elif isinstance(op, DeleteService):
        ipvs.service("del", service=_service(op.key))
    elif isinstance(op, AddDest | EditDest):
        ipvs.dest("add" if isinstance(op, AddDest) else "set", service=_service(op.key),
                  dest=_dest(op.dest.address, op.dest.port, op.dest.weight))
    elif isinstance(op, DeleteDest):
        ipvs.dest("del", service=_service(op.key), dest=_dest(op.address, op.port, 0))


def _netlink_socket(cls: Callable[..., T], stack: contextlib.ExitStack) -> T:
    """A pyroute2 socket driven by a plain asyncio loop of its own, closed with `stack` (after the socket).
    pyroute2's synchronous API otherwise makes the thread a loop from the installed policy, and uvloop's (the
    policy `svcnet` installs) cannot carry AF_NETLINK datagrams ("invalid family 16"): every netlink call failed
    under `svcnet up`/`svcnet proxy` and leaked its sockets until the process ran out of descriptors."""
    loop = asyncio.SelectorEventLoop()
    stack.callback(loop.close)  # runs after the socket's own close (LIFO): pyroute2 may close it first
    return cls(use_event_loop=loop)


class IpvsApplier:
    def __init__(self, netns: str = "") -> None:
        self.netns = netns
        self.iptables = IptablesApplier(netns)

    async def _netlink(self, fn: Callable[[Any, Any], T]) -> T:
        """Run fn(ipvs, iproute) on a worker thread inside the namespace; netlink errors become OSError."""
        def work() -> T:
            from pyroute2 import IPVS, IPRoute
            from pyroute2.netlink.exceptions import NetlinkError

            try:
                with contextlib.ExitStack() as stack:
                    ipvs = stack.enter_context(_netlink_socket(IPVS, stack))
                    ipr = stack.enter_context(_netlink_socket(IPRoute, stack))
                    return fn(ipvs, ipr)
            except NetlinkError as exc:
                raise OSError(exc.code, f"netlink: {exc}") from exc
        return await self._in_netns(work)

    async def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """A command inside the namespace, started from a worker thread with `subprocess.run` (vfork) and entered
        with `nsenter --net`, as the iptables applier does: uvloop's subprocess support forks the whole proxy."""
        prefix = [which("nsenter"), f"--net={NETNS_DIR / self.netns}", "--"] if self.netns else []
        done = await asyncio.to_thread(subprocess.run, [*prefix, *args], capture_output=True,
                                       input=stdin.encode() if stdin is not None else b"")
        if check and done.returncode != 0:
            raise OSError(f"{' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode()

    async def read(self) -> KernelState:
        def read(ipvs: Any, ipr: Any) -> tuple[dict[ServiceKey, CurrentService], frozenset[str]]:
            return _read_services(ipvs), _read_addresses(ipr, _dummy_index(ipr, create=False))
        services, addresses = await self._netlink(read)
        return KernelState(services, addresses, await self.read_ipsets())

    async def read_ipsets(self) -> dict[str, frozenset[str]]:
        """The members of svcnet's sets (`ipset save` lines `add NAME MEMBER`); a missing set is left out."""
        found: dict[str, set[str]] = {}
        for line in (await self._run(which("ipset"), "save", check=False)).splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] in OWN_SETS:
                if parts[0] == "create":
                    found.setdefault(parts[1], set())
                elif parts[0] == "add":
                    found.setdefault(parts[1], set()).add(parts[2])
        return {name: frozenset(members) for name, members in found.items()}

    async def apply_ipsets(self, lines: Iterable[str]) -> None:
        text = "\n".join(lines)
        if text:
            await self._run(which("ipset"), "restore", "-exist", stdin=text + "\n")

    async def apply_sysctls(self) -> sysctls.Plan:
        """Bring the namespace's IPVS settings to `sysctls.SYSCTLS`; what was written and what is missing.
        ValueError: a required one the kernel lacks."""
        def read() -> dict[str, str | None]:
            found: dict[str, str | None] = {}
            for setting in sysctls.SYSCTLS:
                try:
                    found[setting.path] = (PROC_SYS / setting.path).read_text().strip()
                except FileNotFoundError:
                    found[setting.path] = None
            return found

        def write(changes: tuple[sysctls.Sysctl, ...]) -> None:
            for setting in changes:
                (PROC_SYS / setting.path).write_text(setting.value + "\n")
        planned = sysctls.plan(await self._in_netns(read))
        if planned.write:
            await self._in_netns(lambda: write(planned.write))
        return planned

    async def _in_netns(self, fn: Callable[[], T]) -> T:
        """fn() on a worker thread inside the namespace (/proc/sys/net is the opening thread's namespace's)."""
        return await asyncio.to_thread(lambda: call_in_netns(self.netns, fn) if self.netns else fn())

    async def apply_rules(self, text: str) -> None:
        await self.iptables.apply(text, ipvs_compile.jump_rules())

    async def apply(self, ops: Iterable[Operation]) -> None:
        def apply(ipvs: Any, ipr: Any) -> None:
            index = _dummy_index(ipr, create=True)
            assert index is not None
            for op in ops:
                _apply_one(ipvs, ipr, index, op)
        await self._netlink(apply)

    async def cleanup(self, owned: Iterable[ServiceKey] = ()) -> None:
        """Remove the rules, then the virtual servers in `owned` or on an address of kube-ipvs0, the interface
        and the sets (best effort: each step runs even when an earlier one failed)."""
        keys = set(owned)
        try:
            await self.iptables.cleanup(ipvs_compile.jump_rules())
        finally:
            def clear(ipvs: Any, ipr: Any) -> None:
                index = _dummy_index(ipr, create=False)
                bound = _read_addresses(ipr, index)
                for key in _read_services(ipvs):
                    if key in keys or key.address in bound:
                        ipvs.service("del", service=_service(key))
                if index is not None:
                    ipr.link("del", index=index)
            try:
                await self._netlink(clear)
            finally:
                for name in reversed(OWN_SETS):
                    await self._run(which("ipset"), "destroy", name, check=False)
