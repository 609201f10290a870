"""An in-memory Store with the full protocol semantics, for unit tests of the code paths above the store.

Not durable. Keeps every revision until compacted, like the real backends, so range-at-revision, watch replay and
410 behaviour can be tested without a disk.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator

from svcnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
)


class MemoryStore:
    def __init__(self) -> None:
        self._log: list[Event] = []  # every event, in revision order
        self._live: dict[str, KeyValue] = {}
        self._revision = 0
        self._compacted = 0
        self._changed = asyncio.Condition()

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        if revision == 0:
            return self._live.get(key)
        return self._state_at(revision).get(key)

    def _state_at(self, revision: int) -> dict[str, KeyValue]:
        if revision <= self._compacted:
            raise CompactedError(revision, self._compacted)
        state = dict(self._live)
        for event in reversed(self._log):
            if event.kv.mod_revision <= revision:
                break
            if event.prev_kv is None or event.created:
                state.pop(event.kv.key, None)
            else:
                state[event.kv.key] = event.prev_kv
        return state

    async def range(self, prefix: str, revision: int = 0, start_after: str = "", limit: int = 0) -> RangeResult:
        state = self._live if revision == 0 else self._state_at(revision)
        keys = sorted(k for k in state if k.startswith(prefix) and k > start_after)
        more = bool(limit) and len(keys) > limit
        keys = keys[:limit] if limit else keys
        return RangeResult([state[k] for k in keys], revision or self._revision, more)

    async def count(self, prefix: str) -> int:
        return sum(1 for k in self._live if k.startswith(prefix))

    async def _append(self, event: Event) -> KeyValue:
        self._log.append(event)
        async with self._changed:
            self._changed.notify_all()
        return event.kv

    async def create(self, key: str, value: bytes) -> KeyValue:
        if key in self._live:
            raise KeyExistsError(key)
        self._revision += 1
        kv = KeyValue(key, value, self._revision, self._revision)
        self._live[key] = kv
        return await self._append(Event(EventType.PUT, kv, None, created=True))

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        current = self._live.get(key)
        if current is None:
            raise KeyNotFoundError(key)
        if current.mod_revision != expected_mod_revision:
            raise ConflictError(key, current)
        self._revision += 1
        kv = KeyValue(key, value, current.create_revision, self._revision)
        self._live[key] = kv
        return await self._append(Event(EventType.PUT, kv, current))

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        current = self._live.get(key)
        if current is None:
            raise KeyNotFoundError(key)
        if expected_mod_revision and current.mod_revision != expected_mod_revision:
            raise ConflictError(key, current)
        self._revision += 1
        del self._live[key]
        tombstone = KeyValue(key, current.value, current.create_revision, self._revision)
        return await self._append(Event(EventType.DELETE, tombstone, current))

    async def current_revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    async def compact(self, revision: int) -> None:
        revision = min(revision, self._revision)
        self._compacted = max(self._compacted, revision)
        revisions = [e.kv.mod_revision for e in self._log]
        del self._log[: bisect.bisect_right(revisions, self._compacted)]

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Event]:
        if start_revision <= self._compacted:
            raise CompactedError(start_revision, self._compacted)
        next_revision = start_revision
        while True:
            revisions = [e.kv.mod_revision for e in self._log]
            for event in self._log[bisect.bisect_left(revisions, next_revision):]:
                next_revision = event.kv.mod_revision + 1
                if event.kv.key.startswith(prefix):
                    yield event
            await self._wait_beyond(next_revision - 1)

    async def _wait_beyond(self, revision: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._revision > revision)

    async def close(self) -> None:
        return None
