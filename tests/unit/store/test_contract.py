"""The Store protocol's promises, run against every backend (SQLite on disk, the in-memory fake)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from svcnet.store import open_store
from svcnet.store.base import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    Store,
)
from svcnet.store.memory import MemoryStore


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store = await open_store(f"sqlite://{tmp_path / 'db'}") if request.param == "sqlite" else MemoryStore()
    yield backend
    await backend.close()


async def test_create_then_exists(store: Store) -> None:
    kv = await store.create("/r/a", b"1")
    assert (kv.create_revision, kv.mod_revision) == (1, 1)
    with pytest.raises(KeyExistsError):
        await store.create("/r/a", b"2")
    assert (await store.get("/r/a")) == kv


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_stale_revision_conflicts_and_changes_nothing(store: Store, op: str) -> None:
    first = await store.create("/r/a", b"1")
    second = await store.update("/r/a", b"2", first.mod_revision)
    with pytest.raises(ConflictError) as info:
        if op == "update":
            await store.update("/r/a", b"3", first.mod_revision)
        else:
            await store.delete("/r/a", first.mod_revision)
    assert info.value.current == second
    assert await store.get("/r/a") == second
    assert await store.current_revision() == second.mod_revision


async def test_missing_key(store: Store) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update("/r/x", b"1", 1)
    with pytest.raises(KeyNotFoundError):
        await store.delete("/r/x")
    assert await store.get("/r/x") is None


async def test_range_at_past_revision_and_prefix_isolation(store: Store) -> None:
    a = await store.create("/registry/services/a", b"a1")
    await store.create("/registry/servicesx/b", b"other")
    await store.update("/registry/services/a", b"a2", a.mod_revision)
    await store.delete("/registry/servicesx/b")
    now = await store.range("/registry/services/")
    assert [(kv.key, kv.value) for kv in now.kvs] == [("/registry/services/a", b"a2")]
    then = await store.range("/registry/services", revision=2)
    assert [(kv.key, kv.value) for kv in then.kvs] == [("/registry/services/a", b"a1"), ("/registry/servicesx/b",
                                                                                        b"other")]
    assert then.revision == 2
    assert await store.count("/registry/services/") == 1


async def test_pagination_with_limit_and_start_after(store: Store) -> None:
    for i in range(7):
        await store.create(f"/p/{i}", str(i).encode())
    seen, start, more = [], "", True
    while more:
        page = await store.range("/p/", start_after=start, limit=3)
        seen += [kv.key for kv in page.kvs]
        start, more = page.kvs[-1].key, page.more
    assert seen == [f"/p/{i}" for i in range(7)]


async def test_watch_replays_then_follows_without_gap_or_duplicate(store: Store) -> None:
    for i in range(5):
        await store.create(f"/w/{i}", b"x")
    await store.create("/other/1", b"x")
    got: list[int] = []

    async def consume() -> None:
        async for event in store.watch("/w/", 3):
            got.append(event.kv.mod_revision)
            if len(got) == 3 + 50:
                return

    task = asyncio.create_task(consume())
    for i in range(50):  # writes race with the replay
        await store.create(f"/w/live{i}", b"y")
        if i % 10 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(task, 10)
    expected = [3, 4, 5] + list(range(7, 57))
    assert got == expected


async def test_watch_event_shapes(store: Store) -> None:
    kv = await store.create("/e/a", b"1")
    upd = await store.update("/e/a", b"2", kv.mod_revision)
    await store.delete("/e/a")
    events = []
    async for event in store.watch("/e/", 1):
        events.append(event)
        if len(events) == 3:
            break
    assert [e.type for e in events] == [EventType.PUT, EventType.PUT, EventType.DELETE]
    assert events[0].created and events[0].prev_kv is None
    assert events[1].prev_kv == kv and not events[1].created
    assert events[2].prev_kv == upd and events[2].kv.value == b"2" and events[2].kv.mod_revision == 3


async def test_compaction_keeps_latest_and_expires_history(store: Store) -> None:
    kv = await store.create("/c/a", b"1")
    for i in range(5):
        kv = await store.update("/c/a", str(i).encode(), kv.mod_revision)
    await store.create("/c/b", b"b")
    await store.delete("/c/b")
    await store.compact(6)
    assert await store.compacted_revision() == 6
    with pytest.raises(CompactedError):
        await store.range("/c/", revision=3)
    with pytest.raises(CompactedError):
        async for _ in store.watch("/c/", 5):
            break
    assert [(k.key, k.value) for k in (await store.range("/c/")).kvs] == [("/c/a", b"4")]
    recreated = await store.create("/c/b", b"again")
    assert recreated.mod_revision == 9


async def test_revisions_stay_monotonic_after_reopen(tmp_path: Path) -> None:
    path = f"sqlite://{tmp_path / 'db'}"
    first = await open_store(path)
    kv = await first.create("/k/a", b"1")
    await first.delete("/k/a")
    await first.close()
    second = await open_store(path)
    assert await second.current_revision() == 2
    again = await second.create("/k/a", b"2")
    assert again.mod_revision == 3 and again.mod_revision > kv.mod_revision
    await second.close()
