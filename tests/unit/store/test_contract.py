"""The Store protocol's promises (base.py), run against every backend: the in-memory fake, SQLite, a real etcd.

Keys live under a per-test namespace (`ns`) and revisions are compared relatively, so the etcd runs share one
server. Write sequences are tables: each step is (op, key, value, ref, expected) where `ref` is the index of an
earlier step whose result's mod_revision is passed as the expected revision (None: 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from svcnet.store import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)

OK = "ok"
Step = tuple[str, str, bytes, int | None, Any]

WRITE_CASES = [
    pytest.param([("create", "a", b"1", None, OK), ("create", "a", b"2", None, KeyExistsError)],
                 {"a": b"1"}, id="create-existing-key-fails"),
    pytest.param([("create", "a", b"1", None, OK), ("update", "a", b"2", 0, OK)], {"a": b"2"},
                 id="update-at-current-revision"),
    pytest.param([("create", "a", b"1", None, OK), ("update", "a", b"2", 0, OK), ("update", "a", b"3", 0, ConflictError)],
                 {"a": b"2"}, id="update-at-stale-revision-conflicts"),
    pytest.param([("create", "a", b"1", None, OK), ("update", "a", b"2", 0, OK), ("delete", "a", b"", 0, ConflictError)],
                 {"a": b"2"}, id="delete-at-stale-revision-conflicts"),
    pytest.param([("create", "a", b"1", None, OK), ("update", "a", b"2", 0, OK), ("delete", "a", b"", 1, OK)], {},
                 id="delete-at-current-revision"),
    pytest.param([("create", "a", b"1", None, OK), ("delete", "a", b"", None, OK)], {}, id="delete-any-revision"),
    pytest.param([("update", "a", b"1", None, KeyNotFoundError)], {}, id="update-missing-key"),
    pytest.param([("delete", "a", b"", None, KeyNotFoundError)], {}, id="delete-missing-key"),
    pytest.param([("create", "a", b"1", None, OK), ("delete", "a", b"", None, OK), ("update", "a", b"2", 0, KeyNotFoundError)],
                 {}, id="update-deleted-key"),
    pytest.param([("create", "a", b"1", None, OK), ("delete", "a", b"", None, OK), ("delete", "a", b"", 0, KeyNotFoundError)],
                 {}, id="delete-deleted-key"),
    pytest.param([("create", "a", b"1", None, OK), ("delete", "a", b"", None, OK), ("create", "a", b"2", None, OK)],
                 {"a": b"2"}, id="recreate-after-delete"),
    pytest.param([("create", "a", b"1", None, OK), ("create", "b", b"2", None, OK), ("update", "a", b"3", 1, ConflictError)],
                 {"a": b"1", "b": b"2"}, id="another-keys-revision-conflicts"),
]


async def _apply(store: Store, key: str, op: str, value: bytes, expected_revision: int) -> KeyValue:
    if op == "create":
        return await store.create(key, value)
    if op == "update":
        return await store.update(key, value, expected_revision)
    return await store.delete(key, expected_revision)


@pytest.mark.parametrize(("steps", "final"), WRITE_CASES)
async def test_write_table(store: Store, ns: str, steps: list[Step], final: dict[str, bytes]) -> None:
    results: list[KeyValue | None] = []
    last: dict[str, bytes] = {}  # key -> latest value, for delete tombstones
    for op, key, value, ref, expected in steps:
        revision_before = await store.current_revision()
        ref_kv = results[ref] if ref is not None else None
        expected_revision = ref_kv.mod_revision if ref_kv else 0
        if expected is OK:
            kv = await _apply(store, f"{ns}/{key}", op, value, expected_revision)
            assert kv.mod_revision > revision_before and await store.current_revision() == kv.mod_revision
            assert kv.value == (last[key] if op == "delete" else value)
            if op == "create":
                assert kv.create_revision == kv.mod_revision
            last[key] = kv.value
            results.append(kv)
            continue
        with pytest.raises(expected) as info:
            await _apply(store, f"{ns}/{key}", op, value, expected_revision)
        assert await store.current_revision() == revision_before, "a failed write changes nothing"
        if isinstance(info.value, ConflictError):
            assert info.value.current == await store.get(f"{ns}/{key}")
        results.append(None)
    state = await store.range(ns + "/")
    assert {kv.key[len(ns) + 1:]: kv.value for kv in state.kvs} == final


async def test_update_keeps_create_revision(store: Store, ns: str) -> None:
    created = await store.create(ns + "/a", b"1")
    updated = await store.update(ns + "/a", b"2", created.mod_revision)
    assert updated.create_revision == created.create_revision < updated.mod_revision
    deleted = await store.delete(ns + "/a", updated.mod_revision)
    assert (deleted.create_revision, deleted.value) == (created.create_revision, b"2")


PREFIX_KEYS = ["/registry/services/a", "/registry/services/b/c", "/registry/servicesx/d", "/registry/service",
               "/registry/services", "/registry/services/\u00fc", "/registry/t"]


@pytest.mark.parametrize(("prefix", "expected"), [
    pytest.param("/registry/services/", ["/registry/services/a", "/registry/services/b/c",
                                         "/registry/services/\u00fc"], id="with-slash"),
    pytest.param("/registry/servicesx/", ["/registry/servicesx/d"], id="neighbour-prefix"),
    pytest.param("/registry/services", ["/registry/services", "/registry/services/a", "/registry/services/b/c",
                                        "/registry/services/\u00fc", "/registry/servicesx/d"], id="without-slash"),
    pytest.param("/registry/nothing/", [], id="empty"),
    pytest.param("", sorted(PREFIX_KEYS), id="everything"),
])
async def test_prefix_isolation(store: Store, ns: str, prefix: str, expected: list[str]) -> None:
    for key in PREFIX_KEYS:
        await store.create(ns + key, key.encode())
    result = await store.range(ns + prefix)
    assert [kv.key[len(ns):] for kv in result.kvs] == expected
    assert [kv.value.decode() for kv in result.kvs] == expected
    assert await store.count(ns + prefix) == len(expected)
    assert not result.more


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
async def test_pagination_at_a_fixed_revision(store: Store, ns: str, limit: int) -> None:
    keys = [f"{ns}/p/{i}" for i in range(7)]
    for key in keys:
        await store.create(key, b"x")
    await store.create(f"{ns}/q/0", b"outside")
    seen: list[str] = []
    page = await store.range(f"{ns}/p/", limit=limit)
    pinned = page.revision
    while True:
        seen += [kv.key for kv in page.kvs]
        assert len(page.kvs) <= limit
        await store.create(f"{ns}/p/{len(seen)}-late", b"after the first page")  # invisible at `pinned`
        if not page.more:
            break
        page = await store.range(f"{ns}/p/", revision=pinned, start_after=seen[-1], limit=limit)
        assert page.revision == pinned
    assert seen == keys


async def test_start_after_outside_prefix(store: Store, ns: str) -> None:
    await store.create(ns + "/p/a", b"1")
    assert (await store.range(ns + "/p/", start_after=ns + "/")).kvs[0].key == ns + "/p/a"
    assert (await store.range(ns + "/p/", start_after=ns + "/q")).kvs == []


async def test_get_and_range_at_every_past_revision(store: Store, ns: str) -> None:
    """Replays a history of writes and checks the state at each revision, before and after a compaction."""
    snapshots: dict[int, dict[str, bytes]] = {}
    state: dict[str, KeyValue] = {}
    for i in range(24):
        key = f"{ns}/k/{i % 5}"
        current = state.get(key)
        if current is None:
            kv = state[key] = await store.create(key, f"v{i}".encode())
        elif i % 4 == 0:
            kv = await store.delete(key, current.mod_revision)
            del state[key]
        else:
            kv = state[key] = await store.update(key, f"v{i}".encode(), current.mod_revision)
        snapshots[kv.mod_revision] = {k: v.value for k, v in state.items()}
    await _check_snapshots(store, ns, snapshots)
    revisions = sorted(snapshots)
    middle = revisions[len(revisions) // 2]
    await store.compact(middle)
    assert await store.compacted_revision() >= middle
    await _check_snapshots(store, ns, {r: s for r, s in snapshots.items() if r > middle})
    for revision in (revisions[0], middle):
        with pytest.raises(CompactedError):
            await store.range(ns + "/k/", revision=revision)
        with pytest.raises(CompactedError):
            await store.get(ns + "/k/0", revision=revision)


async def _check_snapshots(store: Store, ns: str, snapshots: dict[int, dict[str, bytes]]) -> None:
    for revision, expected in snapshots.items():
        result = await store.range(ns + "/k/", revision=revision)
        assert result.revision == revision
        assert {kv.key: kv.value for kv in result.kvs} == expected, f"state at revision {revision}"
        for i in range(5):
            kv = await store.get(f"{ns}/k/{i}", revision=revision)
            assert (kv.value if kv else None) == expected.get(f"{ns}/k/{i}")


async def _collect(store: Store, prefix: str, start: int, stop: Callable[[list[Event]], bool]) -> list[Event]:
    events: list[Event] = []
    async for event in store.watch(prefix, start):
        events.append(event)
        if stop(events):
            break
    return events


async def test_watch_replays_then_follows_concurrent_writes(store: Store, ns: str) -> None:
    history = [await store.create(f"{ns}/w/h{i}", b"old") for i in range(6)]
    await store.create(ns + "/other", b"not watched")
    start = history[2].mod_revision
    written: list[int] = [kv.mod_revision for kv in history[2:]]

    async def writer(n: int) -> None:
        for i in range(25):
            written.append((await store.create(f"{ns}/w/{n}-{i}", b"live")).mod_revision)
            await asyncio.sleep(0)  # interleave with the watcher and the other writers

    watch = asyncio.create_task(_collect(store, ns + "/w/", start, lambda got: len(got) == 4 + 4 * 25))
    await asyncio.gather(*(writer(n) for n in range(4)))
    events = await asyncio.wait_for(watch, 30)
    assert [e.kv.mod_revision for e in events] == sorted(written), "every event once, in order"


async def test_watch_event_shapes(store: Store, ns: str) -> None:
    created = await store.create(ns + "/e/a", b"1")
    updated = await store.update(ns + "/e/a", b"2", created.mod_revision)
    deleted = await store.delete(ns + "/e/a")
    recreated = await store.create(ns + "/e/a", b"3")
    events = await _collect(store, ns + "/e/", created.mod_revision, lambda got: len(got) == 4)
    assert [(e.type, e.created, e.kv, e.prev_kv) for e in events] == [
        (EventType.PUT, True, created, None),
        (EventType.PUT, False, updated, created),
        (EventType.DELETE, False, deleted, updated),
        (EventType.PUT, True, recreated, None),
    ]


async def test_watch_from_a_future_revision(store: Store, ns: str) -> None:
    start = await store.current_revision() + 3
    watch = asyncio.create_task(_collect(store, ns + "/", start, lambda got: len(got) == 2))
    written = [await store.create(f"{ns}/f{i}", b"x") for i in range(5)]
    events = await asyncio.wait_for(watch, 30)
    assert [e.kv for e in events] == [kv for kv in written if kv.mod_revision >= start][:2]


async def test_compaction_keeps_latest_and_expires_history(store: Store, ns: str) -> None:
    kv = await store.create(ns + "/c/a", b"0")
    first = kv.mod_revision
    for i in range(1, 5):
        kv = await store.update(ns + "/c/a", str(i).encode(), kv.mod_revision)
    gone = await store.create(ns + "/c/b", b"b")
    await store.delete(ns + "/c/b", gone.mod_revision)
    top = await store.current_revision()
    await store.compact(top)
    assert await store.compacted_revision() >= top
    await store.compact(first)  # older than the compacted revision: nothing to do
    assert await store.compacted_revision() >= top
    for revision in (first, top):
        with pytest.raises(CompactedError) as info:
            await store.range(ns + "/c/", revision=revision)
        assert info.value.requested == revision
        with pytest.raises(CompactedError):
            await _collect(store, ns + "/c/", revision, lambda got: True)
    assert [(k.key, k.value, k.mod_revision) for k in (await store.range(ns + "/c/")).kvs] == [
        (ns + "/c/a", b"4", kv.mod_revision)]
    recreated = await store.create(ns + "/c/b", b"again")
    assert recreated.mod_revision > top, "revisions are never reused"
    events = await _collect(store, ns + "/c/", top + 1, lambda got: True)
    assert [e.kv for e in events] == [recreated]


async def test_watch_after_compaction_sees_later_events_with_prev(store: Store, ns: str) -> None:
    kv = await store.create(ns + "/x", b"1")
    kv = await store.update(ns + "/x", b"2", kv.mod_revision)
    await store.compact(kv.mod_revision)
    later = await store.update(ns + "/x", b"3", kv.mod_revision)
    events = await _collect(store, ns + "/", later.mod_revision, lambda got: True)
    assert (events[0].kv, events[0].prev_kv) == (later, kv)


async def test_watch_raises_compacted_on_first_iteration(store: Store, ns: str) -> None:
    await store.create(ns + "/a", b"1")
    kv = await store.create(ns + "/b", b"1")
    await store.compact(kv.mod_revision)
    with pytest.raises(CompactedError) as info:
        await anext(store.watch(ns + "/", kv.mod_revision))
    assert info.value.compacted >= kv.mod_revision
