"""Fixtures: one `store` per backend (in-memory fake, SQLite on disk, a real etcd), and a fresh key namespace per
test so tests can share one etcd (revisions are compared relatively, never as absolute numbers)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from svcnet.store import Store, open_store
from svcnet.store.memory import MemoryStore
from tests.unit.store.etcd_server import ETCD, EtcdServer, running_etcd

_namespaces = itertools.count()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    if not ETCD.exists():
        pytest.skip(f"{ETCD} is missing (Debian package etcd-server)")
    with running_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "etcd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        backend: Store = MemoryStore()
    elif request.param == "sqlite":
        backend = await open_store(f"sqlite://{tmp_path / 'state.db'}")
    else:
        server: EtcdServer = request.getfixturevalue("etcd_server")
        backend = await open_store(f"etcd://{server.endpoint}")
    yield backend
    await backend.close()


@pytest.fixture
def ns() -> str:
    """A key prefix no other test uses."""
    return f"/t{next(_namespaces)}"
