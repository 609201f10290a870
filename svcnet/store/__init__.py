"""Revisioned key-value stores behind one etcd-shaped protocol (see base.py).

Backends: sqlite.py (single process, kine's design), etcd.py (a real etcd v3), memory.py (tests). Backends are
imported lazily by `open_store`, so importing the protocol never pulls in aiohttp or sqlite3.
"""

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
    """`sqlite:///abs/path.db`, `sqlite://relative.db`, a plain path, or `etcd://host:port[,host:port...]`."""
    if url.startswith("etcd://"):
        from svcnet.store.etcd import EtcdStore

        hosts = [h.strip() for h in url[len("etcd://"):].rstrip("/").split(",") if h.strip()]
        return await EtcdStore.open([f"http://{h}" for h in hosts])
    if "://" in url and not url.startswith("sqlite://"):
        raise StoreError(f"unsupported store {url!r}: use sqlite:///path/to/db or etcd://host:port[,host:port]")
    from svcnet.store.sqlite import SQLiteStore

    path = url[len("sqlite://"):] if url.startswith("sqlite://") else url
    return await SQLiteStore.open(path)
