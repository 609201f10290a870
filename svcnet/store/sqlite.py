"""SQLite backend of the Store protocol, on kine's design.

Layout: one append-only table `kine`, one row per write, `id` (AUTOINCREMENT, never reused) is the revision. A row
records the key, whether it created or deleted the key, the key's create revision, the revision of the row it
supersedes (`prev_revision`) and the value. The UNIQUE index on (name, prev_revision) is the concurrency guard: two
writers that both saw revision N of a key cannot both append a successor of N.

Invariants:
- the state at revision R is, per key, its newest row with id <= R unless that row is a deletion;
- AUTOINCREMENT keeps `sqlite_sequence`, so a revision is never reused, even after the newest row is compacted;
- WAL journal with synchronous=NORMAL: every write is its own transaction, committed (write(2) into the WAL)
  before it is acknowledged, so it survives kill -9 of the process (not a power cut: that would need FULL);
- one process owns the database (an exclusive flock on `<db>.lock`): the current revision is cached and
  watchers are fed in-process right after each commit, on the event loop thread, so no polling is needed;
- a watcher registers before it replays history and skips live events it already replayed, so it sees every
  event once, in order. Replay is paged; a compaction that overtakes a replay ends it with CompactedError.
  A watcher that falls more than `WATCH_QUEUE` events behind is ended with `StoreError` (its client re-lists),
  so writers never wait on readers;
- compaction records the revision in `meta`, then deletes, at and below it, every row that is not the newest live
  row of its key (so the state at every revision above it is intact), in batches that let the loop run.

Unlike kine there is no `lease` column (the protocol has no leases) and no `old_value`: an event's previous value
is the row its `prev_revision` names, which compaction never removes while a later row of the key exists.

SQLite calls run inline on the event loop: a write (one autocommit INSERT) takes ~0.1 ms, ~8.5-11k creates/s from
32 tasks. A writer thread with group commit could batch commits, but the API server in front costs far more per
write, so the simpler inline design stays until a benchmark says otherwise.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from svcnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    StoreError,
)

WATCH_QUEUE = 100_000  # events a watcher may fall behind before it is ended
REPLAY_PAGE = 1_000  # rows read per history query while replaying
COMPACT_BATCH = 10_000  # revisions whose superseded rows one compaction transaction deletes
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision ON kine (name, prev_revision);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = "k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value"
Row = tuple[int, str, int, int, int, int, bytes]


def _prefix_end(prefix: str) -> str | bytes:
    """The smallest value greater than every key starting with `prefix`.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so incrementing the last code point works
    (skipping the surrogates, which UTF-8 cannot hold). With no such string, a BLOB: SQLite sorts every BLOB after
    every TEXT."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return b"\xff"
    last = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if 0xD800 <= last < 0xE000 else last)


def _lock(path: str) -> int | None:
    """Take the single-owner lock of a database file; None for in-memory databases."""
    if path == ":memory:":
        return None
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"{path} is in use by another process") from None
    return fd


def _create_revision(row: Row) -> int:
    """A creating row is its own create revision (stored as 0, so the insert is one statement)."""
    return row[0] if row[2] else row[4]


def _kv(row: Row) -> KeyValue:
    return KeyValue(row[1], row[6], _create_revision(row), row[0])


class _Watcher:
    """A live-event queue; None in the queue means "ended", with `error` saying why."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.error: StoreError | None = None

    def offer(self, event: Event) -> None:
        if self.error is not None or not event.kv.key.startswith(self.prefix):
            return
        if self.queue.qsize() >= WATCH_QUEUE:
            self.end(StoreError(f"watcher fell more than {WATCH_QUEUE} events behind; re-list and watch again"))
            return
        self.queue.put_nowait(event)

    def end(self, error: StoreError) -> None:
        if self.error is None:
            self.error = error
            self.queue.put_nowait(None)


class SQLiteStore:
    def __init__(self, db: sqlite3.Connection, lock_fd: int | None) -> None:
        self._db = db
        self._lock_fd = lock_fd
        self._watchers: set[_Watcher] = set()
        self._revision = self._read_revision()
        self._compacted = self._read_meta("compact_revision")

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(path)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return cls(db, lock_fd)

    def _read_revision(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
        return int(row[0]) if row else 0

    def _read_meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    # ---- reads ---------------------------------------------------------------------------------------------

    def _check_revision(self, revision: int) -> None:
        if revision and revision <= self._compacted:
            raise CompactedError(revision, self._compacted)

    def _latest(self, key: str, revision: int = 0) -> Row | None:
        bound = revision or self._revision
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM kine k WHERE k.name = ? AND k.id <= ? ORDER BY k.id DESC LIMIT 1",
            (key, bound)).fetchone()
        return row

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        self._check_revision(revision)
        row = self._latest(key, revision)
        return None if row is None or row[3] else _kv(row)

    async def range(self, prefix: str, revision: int = 0, start_after: str = "", limit: int = 0) -> RangeResult:
        self._check_revision(revision)
        at = revision or self._revision
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM kine k JOIN (SELECT name, MAX(id) AS id FROM kine "
            "WHERE name >= ? AND name < ? AND name > ? AND id <= ? GROUP BY name) m ON k.id = m.id "
            "WHERE k.deleted = 0 ORDER BY k.name LIMIT ?",
            (prefix, _prefix_end(prefix), start_after, at, limit + 1 if limit else -1)).fetchall()
        more = bool(limit) and len(rows) > limit
        return RangeResult([_kv(r) for r in (rows[:limit] if limit else rows)], at, more)

    async def count(self, prefix: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM kine k JOIN (SELECT name, MAX(id) AS id FROM kine WHERE name >= ? AND name < ? "
            "GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0", (prefix, _prefix_end(prefix))).fetchone()
        return int(row[0])

    async def current_revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    # ---- writes --------------------------------------------------------------------------------------------

    def _append(self, key: str, created: bool, deleted: bool, create_revision: int, prev: int,
                value: bytes) -> int:
        try:
            cursor = self._db.execute(
                "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value) "
                "VALUES (?, ?, ?, ?, ?, ?)", (key, int(created), int(deleted), create_revision, prev, value))
        except sqlite3.IntegrityError:
            raise ConflictError(key, None) from None
        return int(cursor.lastrowid or 0)

    def _commit(self, event: Event) -> KeyValue:
        self._revision = event.kv.mod_revision
        for watcher in list(self._watchers):
            watcher.offer(event)
        return event.kv

    async def create(self, key: str, value: bytes) -> KeyValue:
        latest = self._latest(key)
        if latest is not None and not latest[3]:
            raise KeyExistsError(key)
        try:
            revision = self._append(key, True, False, 0, latest[0] if latest else 0, value)
        except ConflictError:
            raise KeyExistsError(key) from None
        return self._commit(Event(EventType.PUT, KeyValue(key, value, revision, revision), None, created=True))

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        latest = self._latest(key)
        if latest is None or latest[3]:
            raise KeyNotFoundError(key)
        if latest[0] != expected_mod_revision:
            raise ConflictError(key, _kv(latest))
        try:
            revision = self._append(key, False, False, _create_revision(latest), latest[0], value)
        except ConflictError:
            raise ConflictError(key, await self.get(key)) from None
        return self._commit(Event(EventType.PUT, KeyValue(key, value, _create_revision(latest), revision),
                                  _kv(latest)))

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        latest = self._latest(key)
        if latest is None or latest[3]:
            raise KeyNotFoundError(key)
        if expected_mod_revision and latest[0] != expected_mod_revision:
            raise ConflictError(key, _kv(latest))
        try:
            revision = self._append(key, False, True, _create_revision(latest), latest[0], latest[6])
        except ConflictError:
            raise ConflictError(key, await self.get(key)) from None
        tombstone = KeyValue(key, latest[6], _create_revision(latest), revision)
        return self._commit(Event(EventType.DELETE, tombstone, _kv(latest)))

    async def compact(self, revision: int) -> None:
        revision = min(revision, self._revision)
        if revision <= self._compacted:
            return
        # Record first: from now on reads at or below `revision` fail, so deleting its rows in batches (the loop
        # runs in between) is never observed. A crash between batches leaves rows the next compaction removes.
        self._db.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (revision,))
        self._compacted = revision
        for low in range(0, revision, COMPACT_BATCH):
            # Rows at or below `revision` that some newer row (also at or below it) supersedes, plus deletions.
            self._db.execute(
                "DELETE FROM kine WHERE id > ? AND id <= ? AND (deleted = 1 OR id < "
                "(SELECT MAX(id) FROM kine k2 WHERE k2.name = kine.name AND k2.id <= ?))",
                (low, min(low + COMPACT_BATCH, revision), revision))
            await asyncio.sleep(0)

    # ---- watch ---------------------------------------------------------------------------------------------

    def _history(self, prefix: str, start: int, end: int) -> list[Event]:
        """Up to REPLAY_PAGE events under `prefix` with start <= revision <= end, in order."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, p.id, p.created, p.deleted, p.create_revision, p.prev_revision, p.value "
            "FROM kine k "
            "LEFT JOIN kine p ON p.id = k.prev_revision "
            "WHERE k.id >= ? AND k.id <= ? AND k.name >= ? AND k.name < ? ORDER BY k.id LIMIT ?",
            (start, end, prefix, _prefix_end(prefix), REPLAY_PAGE)).fetchall()
        events = []
        for row in rows:
            kv = _kv(row[:7])
            prev_row = (row[7], row[1], *row[8:])
            prev = _kv(prev_row) if row[7] is not None and not row[9] else None
            kind = EventType.DELETE if row[3] else EventType.PUT
            events.append(Event(kind, kv, prev, created=bool(row[2])))
        return events

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Event]:
        if start_revision <= self._compacted:
            raise CompactedError(start_revision, self._compacted)
        watcher = _Watcher(prefix)
        self._watchers.add(watcher)  # before the replay reads: every later commit reaches the queue
        try:
            replayed_to = self._revision
            async for event in self._replay(prefix, start_revision, replayed_to):
                yield event
            while True:
                live = await watcher.queue.get()
                if live is None:
                    assert watcher.error is not None
                    raise watcher.error
                if live.kv.mod_revision > replayed_to and live.kv.mod_revision >= start_revision:
                    yield live
        finally:
            self._watchers.discard(watcher)

    async def _replay(self, prefix: str, start: int, end: int) -> AsyncIterator[Event]:
        """History in pages; between pages the consumer runs, so a compaction may overtake the replay."""
        while start <= end:
            if start <= self._compacted:
                raise CompactedError(start, self._compacted)
            page = self._history(prefix, start, end)
            for event in page:
                yield event
            if len(page) < REPLAY_PAGE:
                return
            start = page[-1].kv.mod_revision + 1

    async def close(self) -> None:
        for watcher in list(self._watchers):
            watcher.end(StoreError("the store was closed"))
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
