"""Revisioned key-value stores behind one etcd-shaped protocol (see base.py)."""

from __future__ import annotations

from svcnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    Store,
    StoreError,
)

__all__ = [
    "CompactedError",
    "ConflictError",
    "Event",
    "EventType",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RangeResult",
    "Store",
    "StoreError",
    "open_store",
]


async def open_store(url: str) -> Store:
    """`sqlite:///abs/path.db`, `sqlite://relative.db` or a plain path."""
    if "://" in url and not url.startswith("sqlite://"):
        raise StoreError(f"unsupported store {url!r}: only sqlite:// is available (the etcd backend is not built yet)")
    from svcnet.store.sqlite import SQLiteStore

    path = url[len("sqlite://"):] if url.startswith("sqlite://") else url
    return await SQLiteStore.open(path)
