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
    """`sqlite:///abs/path.db`, `sqlite://relative.db`, a plain path, or `etcd://host:port[,host:port]`."""
    if url.startswith("etcd://"):
        from svcnet.store.etcd import EtcdStore

        return await EtcdStore.open(url[len("etcd://"):].split(","))
    from svcnet.store.sqlite import SQLiteStore

    path = url[len("sqlite://"):] if url.startswith("sqlite://") else url
    return await SQLiteStore.open(path)
