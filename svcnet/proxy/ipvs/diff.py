"""What a sync of the ipvs mode changes: the kernel state read back (virtual servers with their real servers
and connection counts, the addresses on `kube-ipvs0`, the ipset members) against the desired state, as a list
of operations, so a sync touches only what changed.

Theory of operation. Operations come in an order the kernel accepts: addresses are bound first, then virtual
servers added or edited (scheduler, persistence), real servers added or edited (weight), and only then is
anything taken away -- real servers, virtual servers, addresses. A real server that is no longer wanted drains
as with kube-proxy's graceful termination (pkg/proxy/ipvs/graceful_termination.go): while a TCP real server
still has connections (active or inactive) its weight goes to 0, so it gets no new connections while the ones
it has finish; a later sync, when it has none, deletes it. UDP and SCTP real servers are deleted at once
(IPVS keeps no state worth draining there). A real server that comes back gets its weight again.

Invariants:
- Pure: (KernelState, Desired) -> operations; equal states give no operation.
- A virtual server that is not wanted is deleted with its real servers (one operation); the ones of another
  owner cannot be told apart, so the proxier reads only its own namespace.
- Every operation renders as the `ipvsadm` / `ip` / `ipset` command that would do the same (`str(op)`), for
  golden files and logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from svcnet.proxy.ipvs.compile import DUMMY_DEVICE, Desired, RealServer, ServiceKey, VirtualService

_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
HASHED = 0x2  # IP_VS_SVC_F_HASHED: set by the kernel on every listed service, never by svcnet


@dataclass(frozen=True, slots=True)
class CurrentDest:
    address: str
    port: int
    weight: int
    active: int = 0
    inactive: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return self.address, self.port


@dataclass(frozen=True, slots=True)
class CurrentService:
    key: ServiceKey
    scheduler: str
    flags: int
    timeout: int
    dests: tuple[CurrentDest, ...] = ()


@dataclass(frozen=True, slots=True)
class KernelState:
    services: Mapping[ServiceKey, CurrentService] = field(default_factory=dict)
    addresses: frozenset[str] = frozenset()  # on kube-ipvs0
    ipsets: Mapping[str, frozenset[str]] = field(default_factory=dict)  # existing sets only


def _vs(key: ServiceKey) -> str:
    return f"{_FLAG.get(key.protocol, '-t')} {key.address}:{key.port}"


def _service_args(service: VirtualService) -> str:
    return f"{_vs(service.key)} -s {service.scheduler}" + (
        f" -p {service.persistent}" if service.persistent is not None else "")


@dataclass(frozen=True, slots=True)
class AddAddress:
    address: str

    def __str__(self) -> str:
        return f"ip addr add {self.address}/32 dev {DUMMY_DEVICE}"


@dataclass(frozen=True, slots=True)
class DeleteAddress:
    address: str

    def __str__(self) -> str:
        return f"ip addr del {self.address}/32 dev {DUMMY_DEVICE}"


@dataclass(frozen=True, slots=True)
class AddService:
    service: VirtualService

    def __str__(self) -> str:
        return f"ipvsadm -A {_service_args(self.service)}"


@dataclass(frozen=True, slots=True)
class EditService:
    service: VirtualService

    def __str__(self) -> str:
        return f"ipvsadm -E {_service_args(self.service)}"


@dataclass(frozen=True, slots=True)
class DeleteService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"ipvsadm -D {_vs(self.key)}"


@dataclass(frozen=True, slots=True)
class AddDest:
    key: ServiceKey
    dest: RealServer

    def __str__(self) -> str:
        return f"ipvsadm -a {_vs(self.key)} -r {self.dest.address}:{self.dest.port} -m -w {self.dest.weight}"


@dataclass(frozen=True, slots=True)
class EditDest:
    key: ServiceKey
    dest: RealServer

    def __str__(self) -> str:
        return f"ipvsadm -e {_vs(self.key)} -r {self.dest.address}:{self.dest.port} -m -w {self.dest.weight}"


@dataclass(frozen=True, slots=True)
class DeleteDest:
    key: ServiceKey
    address: str
    port: int

    def __str__(self) -> str:
        return f"ipvsadm -d {_vs(self.key)} -r {self.address}:{self.port}"


Operation = AddAddress | DeleteAddress | AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest


def _service_changed(current: CurrentService, wanted: VirtualService) -> bool:
    return (current.scheduler != wanted.scheduler or (current.flags & ~HASHED) != wanted.flags
            or (wanted.persistent is not None and current.timeout != wanted.timeout))


def drains(protocol: str) -> bool:
    """kube's IsRsGracefulTerminationNeeded: only TCP real servers are left to drain."""
    return protocol not in ("UDP", "SCTP")


def _dest_ops(current: CurrentService | None, wanted: VirtualService) -> tuple[list[Operation], list[Operation]]:
    """(additions and edits, deletions) for the real servers of one wanted virtual server."""
    have = {d.key: d for d in current.dests} if current is not None else {}
    grow: list[Operation] = []
    shrink: list[Operation] = []
    for dest in wanted.dests:
        found = have.pop(dest.key, None)
        if found is None:
            grow.append(AddDest(wanted.key, dest))
        elif found.weight != dest.weight:
            grow.append(EditDest(wanted.key, dest))
    for gone in sorted(have.values(), key=lambda d: d.key):
        busy = gone.active + gone.inactive > 0
        if not (busy and drains(wanted.key.protocol)):
            shrink.append(DeleteDest(wanted.key, gone.address, gone.port))
        elif gone.weight != 0:
            shrink.append(EditDest(wanted.key, RealServer(gone.address, gone.port, 0)))
    return grow, shrink


def plan(current: KernelState, desired: Desired) -> list[Operation]:
    """The operations that turn `current` into `desired` (ipsets aside: see `ipset_lines`)."""
    ops: list[Operation] = [AddAddress(a) for a in sorted(desired.addresses - current.addresses)]
    shrink: list[Operation] = []
    for key, wanted in desired.services.items():
        have = current.services.get(key)
        if have is None:
            ops.append(AddService(wanted))
        elif _service_changed(have, wanted):
            ops.append(EditService(wanted))
        grow, gone = _dest_ops(have, wanted)
        ops += grow
        shrink += gone
    ops += shrink
    ops += [DeleteService(key) for key in sorted(current.services) if key not in desired.services]
    ops += [DeleteAddress(a) for a in sorted(current.addresses - desired.addresses)]
    return ops


def ipset_lines(current: Mapping[str, frozenset[str]], desired: Desired, creates: list[str]) -> list[str]:
    """`ipset restore -exist` lines that bring the sets to `desired`: create the missing sets (`creates` are the
    create lines of every set), then add the missing members and delete the extra ones."""
    lines = [line for line in creates if line.split()[1] not in current]
    for name in sorted(desired.ipsets):
        have, want = current.get(name, frozenset()), desired.ipsets[name]
        lines += [f"add {name} {m}" for m in sorted(want - have)]
        lines += [f"del {name} {m}" for m in sorted(have - want)]
    return lines
