"""etcd-only promises, against a real etcd on loopback (the shared behavioural table in test_contract.py runs on
etcd too, through the `store` fixture). Skipped with a reason when /usr/bin/etcd is missing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from svcnet.store import CompactedError, StoreError, open_store
from svcnet.store.etcd import EtcdStore
from tests.unit.store.etcd_server import ETCD, EtcdServer, running_etcd

pytestmark = pytest.mark.skipif(not ETCD.exists(), reason=f"{ETCD} is missing (Debian package etcd-server)")


@pytest.fixture
async def etcd(etcd_server: EtcdServer) -> AsyncIterator[EtcdStore]:
    store = await EtcdStore.open([f"http://{etcd_server.endpoint}"])
    yield store
    await store.close()


async def test_fails_over_from_an_unreachable_endpoint(etcd_server: EtcdServer, ns: str) -> None:
    dead = EtcdServer.free_port()
    store = await open_store(f"etcd://127.0.0.1:{dead},{etcd_server.endpoint}")
    try:
        kv = await store.create(ns + "/a", b"1")
        assert await store.get(ns + "/a") == kv
    finally:
        await store.close()


async def test_open_fails_clearly_when_nothing_answers() -> None:
    with pytest.raises(StoreError, match="no etcd endpoint reachable"):
        await open_store(f"etcd://127.0.0.1:{EtcdServer.free_port()}")


async def test_compaction_is_shared_between_apiservers(etcd: EtcdStore, etcd_server: EtcdServer, ns: str) -> None:
    other = await EtcdStore.open([f"http://{etcd_server.endpoint}"])
    try:
        old = await etcd.create(ns + "/a", b"1")
        await etcd.update(ns + "/a", b"2", old.mod_revision)
        await other.compact(await other.current_revision())
        with pytest.raises(CompactedError):  # told by etcd, not by its own record
            await etcd.range(ns + "/", revision=old.mod_revision)
        assert await etcd.compacted_revision() == await other.compacted_revision() > old.mod_revision
    finally:
        await other.close()


async def test_watch_carries_large_values(etcd: EtcdStore, ns: str) -> None:
    values = [bytes([65 + i]) * (300_000 + i) for i in range(3)]  # each event spans many HTTP chunks
    start = await etcd.current_revision() + 1
    for i, value in enumerate(values):
        await etcd.create(f"{ns}/big{i}", value)
    got = []
    async for event in etcd.watch(ns + "/", start):
        got.append(event.kv.value)
        if len(got) == len(values):
            break
    assert got == values


async def test_watch_ends_with_an_error_when_etcd_goes_away(tmp_path: Path, ns: str) -> None:
    with running_etcd(tmp_path / "etcd") as server:
        store = await EtcdStore.open([f"http://{server.endpoint}"])
        try:
            first = await store.create(ns + "/a", b"1")
            events = store.watch(ns + "/", first.mod_revision)
            assert (await anext(events)).kv == first
            waiting = asyncio.ensure_future(anext(events))
            server.kill()
            with pytest.raises(StoreError, match="lost"):
                await asyncio.wait_for(waiting, 30)
        finally:
            await store.close()
