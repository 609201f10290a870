"""SQLite backend of the Store protocol, on kine's design.

Layout: one append-only table `kine`, one row per write, `id` (AUTOINCREMENT, never reused) is the revision. A row
records the key, whether it created or deleted the key, the key's create revision, the revision of the row it
supersedes (`prev_revision`) and the value. The UNIQUE index on (name, prev_revision) is the concurrency guard: two
writers that both saw revision N of a key cannot both append a successor of N.

Invariants:
- the state at revision R is, per key, its newest row with id <= R unless that row is a deletion;
- WAL journal with synchronous=NORMAL: a committed (acknowledged) write survives kill -9 of the process;
- watchers are fed in-process after each commit; a watcher registers before it replays history and skips live
  events it already replayed, so it sees every event once, in order. A watcher that falls more than
  `WATCH_QUEUE` events behind is ended with `StoreError` (its client re-lists), so writers never wait on readers.
- compaction deletes, at and below the compact revision, every row that is not the newest live row of its key.
"""

from __future__ import annotations

import asyncio
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

WATCH_QUEUE = 100_000
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


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix + "\U0010ffff"


def _create_revision(row: Row) -> int:
    """A creating row is its own create revision (stored as 0, so the insert is one statement)."""
    return row[0] if row[2] else row[4]


def _kv(row: Row) -> KeyValue:
    return KeyValue(row[1], row[6], _create_revision(row), row[0])


class _Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed or not event.kv.key.startswith(self.prefix):
            return
        if self.queue.qsize() >= WATCH_QUEUE:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class SQLiteStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._watchers: set[_Watcher] = set()
        self._revision = self._read_revision()
        self._compacted = self._read_meta("compact_revision")

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        return cls(db)

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
        low = max(prefix, start_after)
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM kine k JOIN (SELECT name, MAX(id) AS id FROM kine "
            "WHERE name >= ? AND name < ? AND name > ? AND id <= ? GROUP BY name) m ON k.id = m.id "
            "WHERE k.deleted = 0 ORDER BY k.name LIMIT ?",
            (low, _prefix_end(prefix), start_after, at, limit + 1 if limit else -1)).fetchall()
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
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            # Rows at or below `revision` that some newer row (also at or below it) supersedes, plus deletions.
            self._db.execute(
                "DELETE FROM kine WHERE id <= ? AND (deleted = 1 OR id < "
                "(SELECT MAX(id) FROM kine k2 WHERE k2.name = kine.name AND k2.id <= ?))", (revision, revision))
            self._db.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (revision,))
        self._compacted = revision

    # ---- watch ---------------------------------------------------------------------------------------------

    def _history(self, prefix: str, start: int, end: int) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, p.id, p.created, p.deleted, p.create_revision, p.prev_revision, p.value "
            "FROM kine k "
            "LEFT JOIN kine p ON p.id = k.prev_revision AND p.name = k.name "
            "WHERE k.name >= ? AND k.name < ? AND k.id >= ? AND k.id <= ? ORDER BY k.id",
            (prefix, _prefix_end(prefix), start, end)).fetchall()
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
        self._watchers.add(watcher)
        try:
            replayed_to = self._revision
            for event in self._history(prefix, start_revision, replayed_to):
                yield event
            while True:
                live = await watcher.queue.get()
                if live is None:
                    raise StoreError("watcher fell too far behind; re-list and watch again")
                if live.kv.mod_revision > replayed_to and live.kv.mod_revision >= start_revision:
                    yield live
        finally:
            self._watchers.discard(watcher)

    async def close(self) -> None:
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._db.close()
