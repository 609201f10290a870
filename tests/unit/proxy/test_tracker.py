"""Change trackers: the first previous and the latest current state per object; no-op changes dropped."""

from __future__ import annotations

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
