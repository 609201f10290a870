"""Load-balancing schedulers for the userspace proxy, with the semantics of Linux IPVS (net/netfilter/ipvs).

Theory of operation: a virtual service owns one scheduler, made by `make(name)`. For every new connection the
data path calls `pick(backends, client_ip, dest_ip)` with the service's current backends, in the service's list
order, carrying their weights and live connection counts; the scheduler answers one of them, or None when none
can take it. Schedulers do no I/O and read no clock; the only randomness (`random`) comes from an injected
`random.Random`.

Invariants (all as in IPVS):
- A backend with weight 0 is quiesced: it keeps its connections but is never picked.
- Ties go to the backend that comes first in list order, as the kernel's list scans do.
- State is per scheduler instance and survives changes of the backend list:
  `rr` remembers the last backend it picked (by ip:port) and continues after it; if that backend was removed it
  continues with its old successor, as ip_vs_rr_del_dest moves its pointer back one entry;
  `wrr` restarts from the head of the list with a re-derived current weight when the list or a weight changes
  (ip_vs_wrr_dest_changed);
  `sh` and `dh` rebuild their 256-bucket table when the list (or, for `sh`, a weight) changes.
- The least-connection family computes `overhead / weight` by cross-multiplication, never with floats.

Connection overhead is `active * 256 + inactive` for lc and wlc (ip_vs_dest_conn_overhead) and `active + 1`
for sed and nq.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Protocol

from svcnet.proxy.backends import Backend

DEFAULT = "rr"
SCHEDULER_ANNOTATION = "svcnet.io/scheduler"
WEIGHTS_ANNOTATION = "svcnet.io/weights"

MAX_WEIGHT = 65535  # ipvsadm(8): "The valid values of weight are 0 through to 65535"
HASH_TABLE_BITS = 8
HASH_TABLE_SIZE = 1 << HASH_TABLE_BITS  # IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE
GOLDEN_RATIO_32 = 0x61C88647  # include/linux/hash.h; hash_32() keeps the product's top bits

_HEAD = -1  # wrr's pointer when it rests on the list head rather than on a backend
_U32 = 0xFFFFFFFF


class Scheduler(Protocol):
    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None: ...


# ---------------------------------------------------------------------------------------------------------------
# rr, wrr


class RoundRobin:
    """ip_vs_rr: cycle through the backends with weight > 0, continuing after the last one picked.

    The list of the last pick is kept (callers pass a new sequence when the backends change, as the data path
    does at each sync, and never mutate one they passed): picking again from that very list is one index step,
    and only a new list is searched for the last pick (or its first surviving old successor)."""

    def __init__(self) -> None:
        self._list: Sequence[Backend] = ()  # the list of the last pick
        self._index = -1  # where in it the last pick was

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        count = len(backends)
        start = self._index + 1 if backends is self._list else self._start(backends)
        for step in range(count):
            index = (start + step) % count
            backend = backends[index]
            if backend.weight > 0:
                self._list, self._index = backends, index
                return backend
        return None

    def _start(self, backends: Sequence[Backend]) -> int:
        """Where the scan of a new list begins: after the last pick or, if it is gone, at its first surviving old
        successor."""
        if self._index < 0:
            return 0
        positions = {b.key: i for i, b in enumerate(backends)}
        successors = (b.key for b in self._list[self._index:])  # the last pick itself first
        found = next((positions[key] for key in successors if key in positions), None)
        if found is None:
            return 0
        return found + 1 if backends[found].key == self._list[self._index].key else found


class WeightedRoundRobin:
    """ip_vs_wrr: passes over the list with a falling current weight cw (from max weight down by the gcd).

    Each pass picks, in list order, the backends whose weight is >= cw; with weights 4,3,2 one full cycle is
    A A B A B C A B C.
    """

    def __init__(self) -> None:
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._pos = _HEAD  # index of the last pick, or the list head
        self._cw = 0  # current weight
        self._mw = 0  # max weight, lowered by (di - 1) so that the last pass runs with cw == 1
        self._di = 1  # gcd of the positive weights

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        self._sync(backends)
        if self._mw == 0:
            return None
        index = self._scan([b.weight for b in backends])
        return None if index is None else backends[index]

    def _sync(self, backends: Sequence[Backend]) -> None:
        """On any change of the list or a weight, redo ip_vs_wrr_dest_changed."""
        signature = tuple((b.ip, b.port, b.weight) for b in backends)
        if signature == self._signature:
            return
        self._signature = signature
        weights = [b.weight for b in backends]
        self._pos = _HEAD
        self._di = _gcd_of_positive(weights)
        self._mw = max(weights, default=0) - (self._di - 1)
        if self._cw > self._mw or self._cw == 0:
            self._cw = self._mw
        elif self._di > 1:
            self._cw = (self._cw // self._di) * self._di + 1

    def _scan(self, weights: list[int]) -> int | None:
        """ip_vs_wrr_schedule: the next index with weight >= cw, lowering cw at each wrap past the head."""
        last = index = self._pos
        stop: int | None = None
        last_pass = restarted = False
        while True:
            for candidate in range(index + 1, len(weights)):
                if weights[candidate] >= self._cw or candidate == stop:
                    self._pos = candidate
                    return candidate if weights[candidate] >= self._cw else None
            index = _HEAD
            self._cw -= self._di
            if self._cw <= 0:
                self._cw = self._mw
                if last_pass or last == _HEAD:
                    self._pos = _HEAD
                    return None
                restarted = True
            last_pass = self._cw <= self._di
            if last_pass and restarted and last != _HEAD:
                stop = last


def _gcd_of_positive(weights: Sequence[int]) -> int:
    """ip_vs_wrr_gcd_weight: gcd of the weights > 0, or 1 when there are none."""
    return math.gcd(*(w for w in weights if w > 0)) or 1


# ---------------------------------------------------------------------------------------------------------------
# lc, wlc, sed, nq


def _conn_overhead(backend: Backend) -> int:
    """ip_vs_dest_conn_overhead: active connections weigh 256 times an inactive one."""
    return backend.active * 256 + backend.inactive


def _expected_delay_overhead(backend: Backend) -> int:
    """ip_vs_sed_dest_overhead / ip_vs_nq_dest_overhead: the active connections plus the new one."""
    return backend.active + 1


def _least_weighted(backends: Sequence[Backend], overhead: Callable[[Backend], int]) -> Backend | None:
    """First backend with the least overhead/weight, compared as h1*w2 > h2*w1 like the kernel does."""
    least: Backend | None = None
    least_overhead = 0
    for backend in backends:
        if backend.weight <= 0:
            continue
        current = overhead(backend)
        if least is None or least_overhead * backend.weight > current * least.weight:
            least, least_overhead = backend, current
    return least


class LeastConnection:
    """ip_vs_lc: the least `active*256 + inactive`, weights ignored except that 0 quiesces."""

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        return min((b for b in backends if b.weight > 0), key=_conn_overhead, default=None)


class WeightedLeastConnection:
    """ip_vs_wlc: the least `(active*256 + inactive) / weight`."""

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        return _least_weighted(backends, _conn_overhead)


class ShortestExpectedDelay:
    """ip_vs_sed: the least `(active + 1) / weight`; inactive connections do not count."""

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        return _least_weighted(backends, _expected_delay_overhead)


class NeverQueue:
    """ip_vs_nq: the first backend with no active connection, otherwise as sed."""

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        idle = next((b for b in backends if b.weight > 0 and b.active == 0), None)
        return idle if idle is not None else _least_weighted(backends, _expected_delay_overhead)


# ---------------------------------------------------------------------------------------------------------------
# sh, dh


def hash_key(ip: str) -> int:
    """Bucket of an address as ip_vs_sh / ip_vs_dh compute it today: `hash_32(ntohl(addr), 8)`, the top 8 bits
    of the 32-bit product with GOLDEN_RATIO_32 (IPv6 folded to 32 bits by XOR). sh adds the source port to the
    address only with ipvsadm's sh-port flag, which svcnet does not offer, so both hash the address alone.
    (Older kernels multiplied by Knuth's 2654435761 and kept the low bits; their tables differ.)

    Raises ValueError if ip is not an IP address.
    """
    return _hash_32(_fold_address(ip), HASH_TABLE_BITS)


def _hash_32(value: int, bits: int) -> int:
    """include/linux/hash.h hash_32(): multiply by GOLDEN_RATIO_32 modulo 2**32, keep the top `bits` bits."""
    return ((value * GOLDEN_RATIO_32) & _U32) >> (32 - bits)


def _fold_address(ip: str) -> int:
    """ntohl() of the address; for IPv6 the XOR of its four 32-bit words, as the kernel folds it."""
    value = int(ipaddress.ip_address(ip))
    folded = 0
    while value:
        folded ^= value & _U32
        value >>= 32
    return folded


def build_buckets(backends: Sequence[Backend], weighted: bool) -> tuple[int, ...]:
    """The 256-bucket table (bucket -> index into backends), filled cyclically in list order.

    Weighted (ip_vs_sh_reassign): a backend takes `weight` consecutive buckets, at least one, so a weight-0
    backend still owns a bucket, and picking it yields None. Unweighted (ip_vs_dh_reassign): one bucket each.
    """
    if not backends:
        return ()
    table: list[int] = []
    index = filled = 0
    while len(table) < HASH_TABLE_SIZE:
        table.append(index)
        filled += 1
        if not weighted or filled >= backends[index].weight:
            index, filled = (index + 1) % len(backends), 0
    return tuple(table)


class _BucketTable:
    """A bucket table rebuilt only when the backends (and, if weighted, their weights) change."""

    def __init__(self, weighted: bool) -> None:
        self._weighted = weighted
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._buckets: tuple[int, ...] = ()

    def buckets(self, backends: Sequence[Backend]) -> tuple[int, ...]:
        signature = tuple((b.ip, b.port, b.weight if self._weighted else 1) for b in backends)
        if signature != self._signature:
            self._signature = signature
            self._buckets = build_buckets(backends, self._weighted)
        return self._buckets


class SourceHashing:
    """ip_vs_sh: the backend statically assigned to the client address's bucket; None if it has weight 0.

    `fallback` is ipvsadm's sh-fallback flag: instead of None, walk the table (from the kernel's offset) to the
    next bucket whose backend has a weight.
    """

    def __init__(self, fallback: bool = False) -> None:
        self._table = _BucketTable(weighted=True)
        self._fallback = fallback

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        buckets = self._table.buckets(backends)
        if not buckets:
            return None
        bucket = hash_key(client_ip)
        chosen = backends[buckets[bucket]]
        if chosen.weight > 0:
            return chosen
        return self._fall_back(backends, buckets, bucket) if self._fallback else None

    @staticmethod
    def _fall_back(backends: Sequence[Backend], buckets: tuple[int, ...], bucket: int) -> Backend | None:
        """ip_vs_sh_get_fallback: it adds the offset to the hash twice, so the walk starts at 2*hash."""
        for offset in range(HASH_TABLE_SIZE):
            candidate = backends[buckets[(offset + 2 * bucket) % HASH_TABLE_SIZE]]
            if candidate.weight > 0:
                return candidate
        return None


class DestinationHashing:
    """ip_vs_dh: the backend assigned to the destination address's bucket; None if it has weight 0."""

    def __init__(self) -> None:
        self._table = _BucketTable(weighted=False)

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        buckets = self._table.buckets(backends)
        if not buckets:
            return None
        chosen = backends[buckets[hash_key(dest_ip)]]
        return chosen if chosen.weight > 0 else None


# ---------------------------------------------------------------------------------------------------------------
# random (not an IPVS scheduler)


class RandomChoice:
    """Uniform choice among the backends with weight > 0, from an injected random.Random."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def pick(self, backends: Sequence[Backend], client_ip: str, dest_ip: str) -> Backend | None:
        candidates = [b for b in backends if b.weight > 0]
        return self._rng.choice(candidates) if candidates else None


# ---------------------------------------------------------------------------------------------------------------
# registry and annotations

SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    "rr": RoundRobin,
    "wrr": WeightedRoundRobin,
    "lc": LeastConnection,
    "wlc": WeightedLeastConnection,
    "sed": ShortestExpectedDelay,
    "nq": NeverQueue,
    "sh": SourceHashing,
    "dh": DestinationHashing,
    "random": RandomChoice,
}


def make(name: str) -> Scheduler:
    """A fresh scheduler (with its own state) for one virtual service."""
    factory = SCHEDULERS.get(name)
    if factory is None:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(sorted(SCHEDULERS))}")
    return factory()


_POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DOTTED_NUMBERS = re.compile(r"[0-9]+(\.[0-9]+)+")
_WEIGHT = re.compile(r"[0-9]+")


def weights_from_annotation(value: str) -> dict[str, int]:
    """Parse `10.244.1.5=3,10.244.1.6=1` or `pod-name=3`: key (IP, normalised, or pod name) -> weight.

    Blank input means no weights. Raises ValueError naming the bad entry.
    """
    weights: dict[str, int] = {}
    if not value.strip():
        return weights
    for entry in value.split(","):
        key, weight = _parse_weight_entry(entry)
        if key in weights:
            raise ValueError(f"{WEIGHTS_ANNOTATION}: {key!r} is given more than once")
        weights[key] = weight
    return weights


def _parse_weight_entry(entry: str) -> tuple[str, int]:
    key, sep, weight = (part.strip() for part in entry.partition("="))
    if not sep or not key or not weight:
        raise ValueError(f"{WEIGHTS_ANNOTATION}: entry {entry.strip()!r} is not KEY=WEIGHT")
    return _parse_weight_key(key), _parse_weight(key, weight)


def _parse_weight_key(key: str) -> str:
    try:
        return str(ipaddress.ip_address(key))
    except ValueError:
        pass
    if _DOTTED_NUMBERS.fullmatch(key):
        raise ValueError(f"{WEIGHTS_ANNOTATION}: {key!r} is not a valid IP address")
    if len(key) > 253 or not _POD_NAME.fullmatch(key):
        raise ValueError(f"{WEIGHTS_ANNOTATION}: {key!r} is neither an IP address nor a valid pod name")
    return key


def _parse_weight(key: str, weight: str) -> int:
    if not _WEIGHT.fullmatch(weight) or int(weight) > MAX_WEIGHT:
        raise ValueError(f"{WEIGHTS_ANNOTATION}: weight {weight!r} for {key!r} is not an integer 0..{MAX_WEIGHT}")
    return int(weight)
