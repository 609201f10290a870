"""Change trackers: the first previous and the latest current state per object; no-op changes dropped."""

from __future__ import annotations

import pytest

from svcnet.proxy import tracker
from svcnet.proxy.tracker import ChangeTracker


def obj(rv: str, port: int) -> dict:
    return {"metadata": {"resourceVersion": rv}, "spec": {"ports": [{"port": port}]}}


def test_changes_are_kept_first_previous_latest_current() -> None:
    tracker = ChangeTracker()
    assert tracker.update("ns/a", obj("1", 80), obj("2", 81))
    assert tracker.update("ns/a", obj("2", 81), obj("3", 82))
    assert tracker.pending["ns/a"][0]["spec"]["ports"] == [{"port": 80}]
    assert tracker.pending["ns/a"][1]["spec"]["ports"] == [{"port": 82}]
    assert tracker.drain() == {"ns/a"} and len(tracker) == 0


def test_a_change_undone_before_the_sync_is_no_change() -> None:
    tracker = ChangeTracker()
    tracker.update("ns/a", obj("1", 80), obj("2", 81))
    assert not tracker.update("ns/a", obj("2", 81), obj("3", 80))
    assert tracker.drain() == set()


def test_irrelevant_changes_are_dropped() -> None:
    tracker = ChangeTracker()
    assert not tracker.update("ns/a", obj("1", 80), obj("2", 80))
    assert tracker.update("ns/b", None, obj("1", 80)) and tracker.update("ns/c", obj("1", 80), None)
    assert tracker.drain() == {"ns/b", "ns/c"}


def annotated(ip: str, trigger: str | None) -> dict:
    meta: dict = {"resourceVersion": "1", "labels": {"kubernetes.io/service-name": "web"}}
    if trigger is not None:
        meta["annotations"] = {tracker.TRIGGER_TIME: trigger}
    return {"metadata": meta, "addressType": "IPv4", "endpoints": [{"addresses": [ip]}], "ports": [{"port": 80}]}


T0 = "2026-01-01T00:00:00Z"  # 1767225600
T1 = "2026-01-01T00:00:01.25Z"
START = 1767225600.0 - 10


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(T0, 1767225600.0, id="seconds"),
    pytest.param(T1, 1767225601.25, id="fraction"),
    pytest.param("2026-01-01T00:00:00.123456789Z", 1767225600.123456, id="rfc3339nano"),
    pytest.param("2026-01-01T01:00:00+01:00", 1767225600.0, id="offset"),
    pytest.param("2026-01-01T00:00:00", None, id="no-zone"),
    pytest.param("yesterday", None, id="garbage"),
    pytest.param(None, None, id="absent"),
])
def test_parse_trigger_time(text: str | None, expected: float | None) -> None:
    assert tracker.parse_trigger_time(annotated("10.0.0.1", text)) == expected


# (case, [(previous ip, current ip, trigger) ...] for one key, the trigger times drained)
TRIGGERS = [
    pytest.param([(None, "10.0.0.1", T0)], [1767225600.0], id="added"),
    pytest.param([("10.0.0.1", "10.0.0.2", T0), ("10.0.0.2", "10.0.0.3", T1)], [1767225600.0, 1767225601.25],
                 id="one-per-change"),
    pytest.param([("10.0.0.1", "10.0.0.1", T0)], [], id="annotation-only-is-no-change"),
    pytest.param([("10.0.0.1", "10.0.0.2", "2000-01-01T00:00:00Z")], [], id="before-the-proxy-started"),
    pytest.param([("10.0.0.1", "10.0.0.2", None)], [], id="not-annotated"),
    pytest.param([("10.0.0.1", "10.0.0.2", T0), ("10.0.0.2", None, T1)], [], id="deleted"),
]


@pytest.mark.parametrize(("changes", "expected"), TRIGGERS)
def test_trigger_times_once_per_recorded_change(changes: list, expected: list[float]) -> None:
    changes_tracker = ChangeTracker(reduce=tracker.relevant_slice, started=START)
    for previous, current, trigger in changes:
        changes_tracker.update("ns/web-x", previous and annotated(previous, T0),
                               current and annotated(current, trigger))
    drained = changes_tracker.drain_all()
    assert drained.trigger_times.get("ns/web-x", []) == expected
    assert changes_tracker.drain_all().trigger_times == {}


def test_trigger_times_given_back_after_a_failed_sync_come_first() -> None:
    changes_tracker = ChangeTracker(reduce=tracker.relevant_slice, started=START)
    changes_tracker.update("ns/web-x", annotated("10.0.0.1", None), annotated("10.0.0.2", T0))
    failed = changes_tracker.drain_all()
    changes_tracker.update("ns/web-x", annotated("10.0.0.2", T0), annotated("10.0.0.3", T1))
    changes_tracker.restore_trigger_times(failed.trigger_times)
    assert changes_tracker.drain_all().trigger_times == {"ns/web-x": [1767225600.0, 1767225601.25]}
