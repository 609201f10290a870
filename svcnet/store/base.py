"""The Store protocol: an etcd-shaped, revisioned key-value store.

Invariants every backend keeps:
- One global revision counter. Every successful write (create, update, delete) takes the next revision; that
  revision is the Kubernetes resourceVersion of the object written.
- `create` succeeds only if the key is absent; `update`/`delete` succeed only if the key's current mod_revision
  equals the expected one (0 means "any" for delete). Failures raise and change nothing.
- `watch(prefix, start_revision)` yields every event with revision >= start_revision on keys under the prefix, in
  revision order, first replaying history and then following live writes. If start_revision is at or below the
  compacted revision it raises `CompactedError` (the API server turns it into 410 Gone).
- `range(..., revision=R)` reads the state as of revision R (R=0: now); R at or below the compacted revision raises
  `CompactedError`.
- An acknowledged write is durable: it survives `kill -9` of the process.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For DELETE, `kv.value` is the last value and `kv.mod_revision` the deletion's revision."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None
    created: bool = False  # PUT that created the key


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int  # the revision the range was read at
    more: bool  # true when `limit` cut the result short


class StoreError(Exception):
    """Base of all store errors."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """The key's mod_revision differs from the expected one; `current` is what is stored now."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compacted through {compacted})")
        self.requested = requested
        self.compacted = compacted


class Store(Protocol):
    async def get(self, key: str, revision: int = 0) -> KeyValue | None: ...

    async def range(
        self, prefix: str, revision: int = 0, start_after: str = "", limit: int = 0
    ) -> RangeResult:
        """Keys starting with `prefix`, sorted by key, only keys > `start_after`; limit 0 = no limit."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue: ...

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue: ...

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Returns the deleted key's tombstone: last value, mod_revision = the deletion's revision."""
        ...

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision` (the latest value of every live key is kept)."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Event]:
        """Events with revision >= start_revision. Raises CompactedError (on first iteration) if too old."""
        ...

    async def close(self) -> None: ...
