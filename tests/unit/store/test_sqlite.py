"""SQLite-only promises: revisions survive reopen, one owner per file, bounded watchers, paged replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from svcnet.store import CompactedError, KeyValue, StoreError
from svcnet.store import sqlite as sqlite_store
from svcnet.store.sqlite import SQLiteStore


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = await SQLiteStore.open(tmp_path / "state.db")
    yield store
    await store.close()


@pytest.mark.parametrize(("prefix", "inside", "outside"), [
    pytest.param("/a/", "/a/\U0010ffff", "/a0", id="ascii"),
    pytest.param("/\ud7ff", "/\ud7ff\U0010ffffx", "/\ue000", id="before-surrogates"),
    pytest.param("/\U0010ffff", "/\U0010ffff\U0010ffff", "0", id="max-code-point"),
])
async def test_prefix_bounds(db: SQLiteStore, prefix: str, inside: str, outside: str) -> None:
    await db.create(inside, b"in")
    await db.create(outside, b"out")
    assert [kv.key for kv in (await db.range(prefix)).kvs] == [inside]


@pytest.mark.parametrize("compact", [False, True], ids=["plain", "newest-row-compacted-away"])
async def test_revisions_stay_monotonic_after_reopen(tmp_path: Path, compact: bool) -> None:
    path = tmp_path / "state.db"
    first = await SQLiteStore.open(path)
    kv = await first.create("/k/a", b"1")
    tombstone = await first.delete("/k/a")
    if compact:
        await first.compact(tombstone.mod_revision)  # removes every row, the newest included
    await first.close()
    second = await SQLiteStore.open(path)
    try:
        assert await second.current_revision() == tombstone.mod_revision
        assert await second.compacted_revision() == (tombstone.mod_revision if compact else 0)
        again = await second.create("/k/a", b"2")
        assert again.mod_revision == tombstone.mod_revision + 1 > kv.mod_revision
    finally:
        await second.close()


async def test_one_process_owns_the_file(db: SQLiteStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="in use"):
        await SQLiteStore.open(tmp_path / "state.db")


async def test_slow_watcher_is_ended_not_waited_for(db: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WATCH_QUEUE", 10)
    first = await db.create("/w/0", b"x")
    events = db.watch("/w/", first.mod_revision)
    assert (await anext(events)).kv == first  # registered, now following live writes
    for i in range(1, 50):  # the watcher reads nothing meanwhile; writers must not wait
        await db.create(f"/w/{i}", b"x")
    seen = []
    with pytest.raises(StoreError, match="behind"):
        async for event in events:
            seen.append(event.kv.mod_revision)
    assert seen == list(range(2, 12)), "what was queued is delivered, then the error"


async def test_close_ends_watchers(db: SQLiteStore) -> None:
    kv = await db.create("/w/0", b"x")
    events = db.watch("/w/", kv.mod_revision)
    await anext(events)
    waiting = asyncio.ensure_future(anext(events))
    await db.close()
    with pytest.raises(StoreError, match="closed"):
        await waiting


async def test_replay_spans_pages(db: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "REPLAY_PAGE", 4)
    written = [(await db.create(f"/r/{i}", b"x")).mod_revision for i in range(11)]
    await db.create("/s/0", b"not watched")
    got = []
    async for event in db.watch("/r/", 1):
        got.append(event.kv.mod_revision)
        if len(got) == len(written):
            break
    assert got == written


async def test_compaction_overtaking_a_replay_ends_it(db: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "REPLAY_PAGE", 4)
    kv = await db.create("/r/a", b"0")
    for i in range(10):
        kv = await db.update("/r/a", str(i).encode(), kv.mod_revision)
    events = db.watch("/r/", 1)
    await anext(events)
    await db.compact(8)  # rows the replay has not read yet are gone
    with pytest.raises(CompactedError):
        async for _ in events:
            pass


async def test_batched_compaction_keeps_exactly_the_latest_live_rows(db: SQLiteStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "COMPACT_BATCH", 3)
    latest: dict[str, KeyValue] = {}
    for i in range(20):
        key = f"/c/{i % 4}"
        current = latest.get(key)
        latest[key] = await (db.update(key, str(i).encode(), current.mod_revision) if current
                             else db.create(key, b"0"))
    await db.delete("/c/3")
    del latest["/c/3"]
    await db.compact(await db.current_revision())
    rows = db._db.execute("SELECT id FROM kine ORDER BY id").fetchall()
    assert [r[0] for r in rows] == sorted(kv.mod_revision for kv in latest.values())
    assert (await db.range("/c/")).kvs == sorted(latest.values(), key=lambda kv: kv.key)
