"""ClientIP affinity: lookup, refresh from the last connection, expiry and forgetting, with an explicit clock."""

from __future__ import annotations

import pytest

from svcnet.proxy import affinity

SVC = "default/web:http"
OTHER = "default/api:grpc"
POD_A = ("10.244.1.5", 8080)
POD_B = ("10.244.1.6", 8080)


def _table(*touches: tuple[str, str, tuple[str, int], float, float]) -> affinity.AffinityTable:
    table = affinity.AffinityTable()
    for service, client, backend, now, timeout in touches:
        table.touch(service, client, backend, now, timeout)
    return table


LOOKUP_CASES = [
    pytest.param(0.0, POD_A, id="same-instant"),
    pytest.param(99.9, POD_A, id="just-before-timeout"),
    pytest.param(100.0, None, id="at-timeout-expired"),
    pytest.param(500.0, None, id="long-after"),
]


@pytest.mark.parametrize(("now", "expected"), LOOKUP_CASES)
def test_lookup_within_timeout(now: float, expected: tuple[str, int] | None) -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0))
    assert table.lookup(SVC, "10.0.0.1", now) == expected


def test_lookup_misses_other_client_and_service() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0))
    assert table.lookup(SVC, "10.0.0.2", 1.0) is None
    assert table.lookup(OTHER, "10.0.0.1", 1.0) is None


def test_touch_refreshes_from_the_last_connection() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0), (SVC, "10.0.0.1", POD_A, 80.0, 100.0))
    assert table.lookup(SVC, "10.0.0.1", 150.0) == POD_A
    assert table.lookup(SVC, "10.0.0.1", 180.0) is None


def test_lookup_does_not_refresh() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0))
    assert table.lookup(SVC, "10.0.0.1", 90.0) == POD_A
    assert table.lookup(SVC, "10.0.0.1", 100.0) is None


def test_touch_replaces_backend_and_timeout() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0), (SVC, "10.0.0.1", POD_B, 10.0, 5.0))
    assert table.lookup(SVC, "10.0.0.1", 14.0) == POD_B
    assert table.lookup(SVC, "10.0.0.1", 15.0) is None


def test_default_timeout() -> None:
    assert affinity.DEFAULT_TIMEOUT_SECONDS == 10800
    table = affinity.AffinityTable()
    table.touch(SVC, "10.0.0.1", POD_A, 0.0)
    assert table.lookup(SVC, "10.0.0.1", 10799.0) == POD_A
    assert table.lookup(SVC, "10.0.0.1", 10800.0) is None


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_touch_rejects_non_positive_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="affinity timeout must be positive"):
        affinity.AffinityTable().touch(SVC, "10.0.0.1", POD_A, 0.0, timeout)


def test_expire_drops_only_stale_entries_and_counts_them() -> None:
    table = _table(
        (SVC, "10.0.0.1", POD_A, 0.0, 10.0),
        (SVC, "10.0.0.2", POD_B, 5.0, 10.0),
        (OTHER, "10.0.0.1", POD_A, 0.0, 10.0),
    )
    assert table.expire(12.0) == 2
    assert [e.client_ip for e in table.entries(SVC)] == ["10.0.0.2"]
    assert table.entries(OTHER) == []
    assert table.expire(12.0) == 0
    assert table.expire(15.0) == 1


def test_forget_backend_only_in_that_service() -> None:
    table = _table(
        (SVC, "10.0.0.1", POD_A, 0.0, 100.0),
        (SVC, "10.0.0.2", POD_B, 0.0, 100.0),
        (SVC, "10.0.0.3", POD_A, 0.0, 100.0),
        (OTHER, "10.0.0.1", POD_A, 0.0, 100.0),
    )
    assert table.forget_backend(SVC, POD_A) == 2
    assert table.lookup(SVC, "10.0.0.1", 1.0) is None
    assert table.lookup(SVC, "10.0.0.2", 1.0) == POD_B
    assert table.lookup(OTHER, "10.0.0.1", 1.0) == POD_A
    assert table.forget_backend(SVC, ("10.244.9.9", 80)) == 0
    assert table.forget_backend("missing/svc:x", POD_A) == 0


def test_forget_backend_matches_port_too() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0))
    assert table.forget_backend(SVC, (POD_A[0], 9090)) == 0
    assert table.lookup(SVC, "10.0.0.1", 1.0) == POD_A


def test_forget_service() -> None:
    table = _table((SVC, "10.0.0.1", POD_A, 0.0, 100.0), (SVC, "10.0.0.2", POD_B, 0.0, 100.0),
                   (OTHER, "10.0.0.1", POD_A, 0.0, 100.0))
    assert table.forget_service(SVC) == 2
    assert table.entries(SVC) == []
    assert table.lookup(OTHER, "10.0.0.1", 1.0) == POD_A
    assert table.forget_service(SVC) == 0


def test_entries_are_sorted_and_show_expiry() -> None:
    table = _table((SVC, "10.0.0.9", POD_B, 3.0, 60.0), (SVC, "10.0.0.1", POD_A, 1.0, 60.0))
    assert table.entries(SVC) == [
        affinity.AffinityEntry("10.0.0.1", POD_A, 1.0, 60.0),
        affinity.AffinityEntry("10.0.0.9", POD_B, 3.0, 60.0),
    ]
    assert [e.expires_at for e in table.entries(SVC)] == [61.0, 63.0]
    assert table.entries(OTHER) == []
