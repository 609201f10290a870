"""Schedulers: each one's choices, as tables, against the kernel's ip_vs_*.c behaviour."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

import pytest

from svcnet.proxy import schedulers
from svcnet.proxy.backends import Backend

CLIENT = "10.0.0.1"
VIP = "10.96.0.10"


def _backends(spec: str) -> list[Backend]:
    """`A:4 B:3 C:2` -> backends A, B, C (10.244.0.1, .2, .3) with those weights; a bare name has weight 1."""
    result = []
    for item in spec.split():
        name, _, weight = item.partition(":")
        result.append(_backend(name, int(weight or 1)))
    return result


def _backend(name: str, weight: int = 1, active: int = 0, inactive: int = 0) -> Backend:
    return Backend(ip=f"10.244.0.{ord(name) - ord('A') + 1}", port=8080, weight=weight, active=active,
                   inactive=inactive)


def _name(backend: Backend | None) -> str:
    return "-" if backend is None else chr(ord("A") + int(backend.ip.rsplit(".", 1)[1]) - 1)


def _sequence(scheduler: schedulers.Scheduler, backends: Sequence[Backend], count: int) -> str:
    return "".join(_name(scheduler.pick(backends, CLIENT, VIP)) for _ in range(count))


# --- every scheduler --------------------------------------------------------------------------------------------

ALL = sorted(schedulers.SCHEDULERS)


@pytest.mark.parametrize("name", ALL)
def test_empty_list_gives_none(name: str) -> None:
    assert schedulers.make(name).pick([], CLIENT, VIP) is None


@pytest.mark.parametrize("name", ALL)
def test_all_quiesced_gives_none(name: str) -> None:
    assert schedulers.make(name).pick(_backends("A:0 B:0"), CLIENT, VIP) is None


@pytest.mark.parametrize("name", ALL)
def test_zero_weight_never_picked(name: str) -> None:
    scheduler = schedulers.make(name)
    backends = [_backend("A", 0), _backend("B", 2, active=3), _backend("C", 0), _backend("D", 1, active=1)]
    picks = {_name(scheduler.pick(backends, f"10.1.{i // 256}.{i % 256}", f"10.96.{i // 256}.{i % 256}"))
             for i in range(1024)}
    assert picks <= {"B", "D", "-"}
    assert picks & {"B", "D"}


def test_make_returns_fresh_state() -> None:
    first, second = schedulers.make("rr"), schedulers.make("rr")
    backends = _backends("A B")
    assert _sequence(first, backends, 1) == "A"
    assert _sequence(second, backends, 1) == "A"


def test_make_unknown_lists_known() -> None:
    with pytest.raises(ValueError, match=r"unknown scheduler 'maglev'; known: dh, lc, nq, random, rr, sed, sh, wlc, wrr"):
        schedulers.make("maglev")


def test_default_and_annotation_names() -> None:
    assert schedulers.DEFAULT == "rr" and schedulers.DEFAULT in schedulers.SCHEDULERS
    assert schedulers.SCHEDULER_ANNOTATION == "svcnet.io/scheduler"
    assert schedulers.WEIGHTS_ANNOTATION == "svcnet.io/weights"


# --- rr ---------------------------------------------------------------------------------------------------------

RR_CASES = [
    pytest.param("A B C", 7, "ABCABCA", id="cycles-in-list-order"),
    pytest.param("A:1 B:0 C:5", 4, "ACAC", id="skips-quiesced-ignores-weights"),
    pytest.param("A", 3, "AAA", id="single"),
]


@pytest.mark.parametrize(("spec", "count", "expected"), RR_CASES)
def test_rr_sequence(spec: str, count: int, expected: str) -> None:
    assert _sequence(schedulers.RoundRobin(), _backends(spec), count) == expected


RR_CHANGE_CASES = [
    pytest.param("A B C", 2, "A C", "CACA", id="removed-last-pick-continues-with-its-successor"),
    pytest.param("A B C", 1, "B C", "BCBC", id="removed-first-pick"),
    pytest.param("A B C D", 2, "A D", "DADA", id="removed-pick-and-successor"),
    pytest.param("A B C", 3, "A B", "ABAB", id="removed-tail-pick-wraps"),
    pytest.param("A B C", 2, "A B C D", "CDAB", id="added-at-end-keeps-place"),
    pytest.param("A B C", 2, "C B A", "ACBA", id="reordered-continues-after-last-pick"),
    pytest.param("A B C", 1, "A B:0 C", "CACA", id="quiesced-successor-skipped"),
]


@pytest.mark.parametrize(("before", "picks", "after", "expected"), RR_CHANGE_CASES)
def test_rr_keeps_its_place_when_the_list_changes(before: str, picks: int, after: str, expected: str) -> None:
    scheduler = schedulers.RoundRobin()
    _sequence(scheduler, _backends(before), picks)
    assert _sequence(scheduler, _backends(after), len(expected)) == expected


# --- wrr --------------------------------------------------------------------------------------------------------

WRR_CASES = [
    # passes with cw = 4, 3, 2, 1 (gcd 1): {A} {A B} {A B C} {A B C}
    pytest.param("A:4 B:3 C:2", "AABABCABC" * 2, id="4-3-2-kernel-cycle"),
    # gcd 2: mw = 4 - (2 - 1) = 3, passes cw = 3, 1
    pytest.param("A:4 B:2", "AAB" * 3, id="gcd-2"),
    pytest.param("A:5 B:1 C:1", "AAAAABC" * 2, id="bursty-heavy-first"),
    pytest.param("A:2 B:0 C:1", "AAC" * 2, id="quiesced-skipped"),
    pytest.param("A:1 B:1 C:1", "ABC" * 2, id="equal-is-rr"),
    # gcd 3: mw = 6 - 2 = 4, passes cw = 4 {B}, 1 {A B}
    pytest.param("A:3 B:6", "BAB" * 3, id="gcd-3"),
]


@pytest.mark.parametrize(("spec", "expected"), WRR_CASES)
def test_wrr_sequence(spec: str, expected: str) -> None:
    assert _sequence(schedulers.WeightedRoundRobin(), _backends(spec), len(expected)) == expected


def test_wrr_full_cycle_matches_weights() -> None:
    picks = Counter(_sequence(schedulers.WeightedRoundRobin(), _backends("A:7 B:5 C:3 D:1"), 16))
    assert picks == {"A": 7, "B": 5, "C": 3, "D": 1}


def test_wrr_list_change_restarts_from_head_keeping_current_weight() -> None:
    scheduler = schedulers.WeightedRoundRobin()
    assert _sequence(scheduler, _backends("A:4 B:3 C:2"), 3) == "AAB"  # now cw = 3
    # ip_vs_wrr_dest_changed: pointer back to the head, cw = 3 still <= mw = 4 (gcd 1 keeps it)
    assert _sequence(scheduler, _backends("A:4 B:3"), 9) == "ABABABAAB"


def test_wrr_weight_change_rounds_cw_to_new_gcd() -> None:
    scheduler = schedulers.WeightedRoundRobin()
    assert _sequence(scheduler, _backends("A:4 B:3 C:2"), 2) == "AA"  # cw = 3
    # gcd 2, mw = 4 - 1 = 3; cw 3 -> (3 // 2) * 2 + 1 = 3; passes 3, 1
    assert _sequence(scheduler, _backends("A:4 B:2 C:2"), 8) == "AABCAABC"


def test_wrr_same_list_objects_with_new_counts_keep_state() -> None:
    scheduler = schedulers.WeightedRoundRobin()
    backends = _backends("A:2 B:1")
    assert _sequence(scheduler, backends, 1) == "A"
    backends[0].active = 5  # counts are not part of wrr's state
    assert _sequence(scheduler, backends, 5) == "ABAAB"


# --- lc, wlc, sed, nq -------------------------------------------------------------------------------------------

# backends as (name, weight, active, inactive)
LEAST_CASES = [
    # lc: active*256 + inactive, weights ignored
    pytest.param("lc", [("A", 1, 1, 0), ("B", 1, 0, 255)], "B", id="lc-inactive-below-one-active"),
    pytest.param("lc", [("A", 1, 1, 0), ("B", 1, 0, 300)], "A", id="lc-active-counts-256"),
    pytest.param("lc", [("A", 1, 2, 0), ("B", 1, 2, 0), ("C", 1, 3, 0)], "A", id="lc-tie-first"),
    pytest.param("lc", [("A", 10, 1, 0), ("B", 1, 0, 10)], "B", id="lc-ignores-weight"),
    pytest.param("lc", [("A", 0, 0, 0), ("B", 1, 9, 9)], "B", id="lc-quiesced-idle-skipped"),
    # wlc: (active*256 + inactive) / weight
    pytest.param("wlc", [("A", 1, 1, 0), ("B", 3, 2, 0)], "B", id="wlc-weight-divides"),
    pytest.param("wlc", [("A", 2, 2, 0), ("B", 1, 1, 0)], "A", id="wlc-tie-first"),
    pytest.param("wlc", [("A", 1, 0, 10), ("B", 1, 0, 5)], "B", id="wlc-inactive-counts"),
    pytest.param("wlc", [("A", 0, 0, 0), ("B", 1, 5, 0), ("C", 2, 9, 0)], "C", id="wlc-quiesced-first-skipped"),
    pytest.param("wlc", [("A", 3, 1, 0), ("B", 1, 0, 100)], "A", id="wlc-256-over-3-below-100-over-1"),
    # sed: (active + 1) / weight, inactive ignored
    pytest.param("sed", [("A", 1, 0, 0), ("B", 3, 1, 0)], "B", id="sed-fast-busy-beats-slow-idle"),
    pytest.param("sed", [("A", 1, 0, 100), ("B", 1, 1, 0)], "A", id="sed-ignores-inactive"),
    pytest.param("sed", [("A", 2, 1, 0), ("B", 1, 0, 0)], "A", id="sed-tie-first"),
    pytest.param("sed", [("A", 0, 0, 0), ("B", 1, 4, 0)], "B", id="sed-quiesced-skipped"),
    # nq: an idle backend first, else sed
    pytest.param("nq", [("A", 1, 0, 0), ("B", 3, 1, 0)], "A", id="nq-idle-first"),
    pytest.param("nq", [("A", 1, 2, 0), ("B", 1, 0, 0), ("C", 1, 0, 0)], "B", id="nq-first-idle-in-list-order"),
    pytest.param("nq", [("A", 3, 2, 0), ("B", 1, 1, 0), ("C", 0, 0, 0)], "A", id="nq-quiesced-idle-skipped-then-sed"),
    pytest.param("nq", [("A", 1, 1, 50), ("B", 1, 2, 0)], "A", id="nq-sed-ignores-inactive"),
]


@pytest.mark.parametrize(("name", "table", "expected"), LEAST_CASES)
def test_least_connection_family(name: str, table: list[tuple[str, int, int, int]], expected: str) -> None:
    backends = [_backend(n, weight, active, inactive) for n, weight, active, inactive in table]
    assert _name(schedulers.make(name).pick(backends, CLIENT, VIP)) == expected


def test_wlc_spreads_by_weight_as_connections_accumulate() -> None:
    backends = _backends("A:3 B:1")
    scheduler = schedulers.make("wlc")
    for _ in range(8):
        chosen = scheduler.pick(backends, CLIENT, VIP)
        assert chosen is not None
        chosen.active += 1
    assert [b.active for b in backends] == [6, 2]


# --- sh, dh -----------------------------------------------------------------------------------------------------

HASH_CASES = [
    # hash_32(0x0A000001, 8): 0x0A000001 * 0x61C88647 mod 2**32 = 0x27C88647 -> top byte 0x27
    pytest.param("10.0.0.1", 0x27, id="10.0.0.1"),
    pytest.param("10.0.0.5", 174, id="10.0.0.5"),
    pytest.param("10.0.0.6", 16, id="10.0.0.6"),
    pytest.param("0.0.0.1", 0x61, id="golden-ratio-top-byte"),
    pytest.param("::1", 0x61, id="ipv6-folds-to-low-word"),
    pytest.param("2001:db8::1", 63, id="ipv6-xor-of-words-0x20010db9"),
    pytest.param("255.255.255.255", 0x9E, id="product-wraps-at-32-bits"),
]


@pytest.mark.parametrize(("ip", "bucket"), HASH_CASES)
def test_hash_key(ip: str, bucket: int) -> None:
    assert schedulers.hash_key(ip) == bucket


BUCKET_CASES = [
    pytest.param("A:3 B:1", True, [0, 0, 0, 1], {0: 192, 1: 64}, id="sh-weighted"),
    pytest.param("A:2 B:0 C:1", True, [0, 0, 1, 2], {0: 128, 1: 64, 2: 64}, id="sh-zero-weight-holds-one-bucket"),
    pytest.param("A:3 B:1", False, [0, 1, 0, 1], {0: 128, 1: 128}, id="dh-unweighted"),
    pytest.param("A B C", True, [0, 1, 2, 0], {0: 86, 1: 85, 2: 85}, id="uneven-remainder-goes-first"),
]


@pytest.mark.parametrize(("spec", "weighted", "head", "counts"), BUCKET_CASES)
def test_build_buckets(spec: str, weighted: bool, head: list[int], counts: dict[int, int]) -> None:
    table = schedulers.build_buckets(_backends(spec), weighted)
    assert len(table) == schedulers.HASH_TABLE_SIZE
    assert list(table[:4]) == head
    assert Counter(table) == counts


SH_CASES = [  # buckets: 10.0.0.1 -> 39, 10.0.0.5 -> 174, 10.0.0.6 -> 16
    pytest.param("A B", "10.0.0.6", "A", id="even-bucket"),
    pytest.param("A B", "10.0.0.1", "B", id="odd-bucket"),
    pytest.param("A:3 B:1", "10.0.0.5", "A", id="weighted-bucket-174"),
    pytest.param("A:3 B:1", "10.0.0.1", "B", id="weighted-bucket-39"),
    pytest.param("A:2 B:0 C:1", "10.0.0.5", "-", id="quiesced-bucket-no-fallback"),
]


@pytest.mark.parametrize(("spec", "client", "expected"), SH_CASES)
def test_sh_picks_the_client_bucket(spec: str, client: str, expected: str) -> None:
    assert _name(schedulers.SourceHashing().pick(_backends(spec), client, VIP)) == expected


def test_sh_fallback_walks_from_twice_the_hash() -> None:
    # 10.0.0.5 hashes to bucket 174 -> B (174 % 4 == 2 in A A B C); the kernel walk starts at bucket
    # 2 * 174 % 256 == 92 -> A (a walk from 175 would have found C)
    scheduler = schedulers.SourceHashing(fallback=True)
    assert _name(scheduler.pick(_backends("A:2 B:0 C:1"), "10.0.0.5", VIP)) == "A"


def test_sh_is_stable_per_client_and_ignores_destination() -> None:
    scheduler = schedulers.make("sh")
    backends = _backends("A B C D")
    first = {f"10.1.0.{i}": scheduler.pick(backends, f"10.1.0.{i}", VIP) for i in range(64)}
    for client, chosen in first.items():
        assert scheduler.pick(backends, client, "10.96.7.7") is chosen


def test_sh_spreads_clients_over_weights() -> None:
    scheduler = schedulers.make("sh")
    backends = _backends("A:3 B:1")
    picks = Counter(_name(scheduler.pick(backends, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", VIP))
                    for i in range(8192))
    assert 0.70 < picks["A"] / 8192 < 0.80


def test_sh_rebuilds_table_on_weight_change() -> None:
    scheduler = schedulers.make("sh")
    assert _name(scheduler.pick(_backends("A B"), "10.0.0.1", VIP)) == "B"  # bucket 39 of A B
    assert _name(scheduler.pick(_backends("A:2 B"), "10.0.0.1", VIP)) == "A"  # bucket 39 of A A B


DH_CASES = [  # buckets: 10.0.0.1 -> 39, 10.0.0.6 -> 16, 10.0.0.13 -> 189
    pytest.param("A B", "10.0.0.6", "A", id="even-bucket"),
    pytest.param("A B", "10.0.0.1", "B", id="odd-bucket"),
    pytest.param("A:3 B:1", "10.0.0.13", "B", id="weights-do-not-fill"),  # weighted (sh) would give A
    pytest.param("A:1 B:0", "10.0.0.1", "-", id="quiesced-bucket"),
]


@pytest.mark.parametrize(("spec", "dest", "expected"), DH_CASES)
def test_dh_picks_the_destination_bucket(spec: str, dest: str, expected: str) -> None:
    scheduler = schedulers.DestinationHashing()
    for client in ("10.0.0.5", "192.168.9.9"):
        assert _name(scheduler.pick(_backends(spec), client, dest)) == expected


# --- random -----------------------------------------------------------------------------------------------------


def test_random_is_reproducible_with_an_injected_rng() -> None:
    backends = _backends("A B:0 C D")
    one = schedulers.RandomChoice(random.Random(7))
    two = schedulers.RandomChoice(random.Random(7))
    assert _sequence(one, backends, 50) == _sequence(two, backends, 50)


def test_random_is_uniform_among_weighted() -> None:
    picks = Counter(_sequence(schedulers.RandomChoice(random.Random(1)), _backends("A:1 B:0 C:9 D:1"), 3000))
    assert set(picks) == {"A", "C", "D"}
    assert all(900 < count < 1100 for count in picks.values())


# --- weights annotation -----------------------------------------------------------------------------------------

WEIGHTS_OK = [
    pytest.param("10.244.1.5=3,10.244.1.6=1", {"10.244.1.5": 3, "10.244.1.6": 1}, id="ips"),
    pytest.param("web-7d9f-abcde=3", {"web-7d9f-abcde": 3}, id="pod-name"),
    pytest.param(" a=1 , 10.0.0.1 = 0 ", {"a": 1, "10.0.0.1": 0}, id="spaces-and-zero"),
    pytest.param("2001:DB8:0:0::1=2", {"2001:db8::1": 2}, id="ipv6-normalised"),
    pytest.param("", {}, id="empty"),
    pytest.param("   ", {}, id="blank"),
    pytest.param("x=65535", {"x": 65535}, id="max-weight"),
]


@pytest.mark.parametrize(("value", "expected"), WEIGHTS_OK)
def test_weights_from_annotation(value: str, expected: dict[str, int]) -> None:
    assert schedulers.weights_from_annotation(value) == expected


WEIGHTS_BAD = [
    pytest.param("a", "entry 'a' is not KEY=WEIGHT", id="no-equals"),
    pytest.param("=3", "entry '=3' is not KEY=WEIGHT", id="no-key"),
    pytest.param("a=", "entry 'a=' is not KEY=WEIGHT", id="no-weight"),
    pytest.param("a=1,,b=2", "entry '' is not KEY=WEIGHT", id="empty-entry"),
    pytest.param("a=-1", "weight '-1' for 'a' is not an integer 0..65535", id="negative"),
    pytest.param("a=1.5", "weight '1.5' for 'a' is not an integer 0..65535", id="fraction"),
    pytest.param("a=65536", "weight '65536' for 'a' is not an integer 0..65535", id="too-big"),
    pytest.param("a=x", "weight 'x' for 'a' is not an integer 0..65535", id="not-a-number"),
    pytest.param("10.244.1.500=1", "'10.244.1.500' is not a valid IP address", id="bad-ip"),
    pytest.param("Web_1=1", "'Web_1' is neither an IP address nor a valid pod name", id="bad-pod-name"),
    pytest.param("a=1,a=2", "'a' is given more than once", id="duplicate"),
    pytest.param("10.0.0.1=1,10.0.0.01=2", "not a valid IP address", id="leading-zero-ip"),
]


@pytest.mark.parametrize(("value", "message"), WEIGHTS_BAD)
def test_weights_from_annotation_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="svcnet.io/weights: .*" + re.escape(message)):
        schedulers.weights_from_annotation(value)
