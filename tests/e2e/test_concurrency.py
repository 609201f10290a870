"""Optimistic concurrency under load: 100 concurrent writers increment one ConfigMap counter with GET + PUT and
retry on 409 Conflict; no increment may be lost or counted twice."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from tests.e2e.conftest import Server

WRITERS = 100


def session(server: Server, limit: int = WRITERS) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.admin_token}"},
                                 connector=aiohttp.TCPConnector(ssl=server.ssl_context(), limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def _increment(http: aiohttp.ClientSession, url: str, stats: dict[str, int], field: str = "count") -> None:
    backoff = 0.002
    for _ in range(500):
        async with http.get(url) as response:
            assert response.status == 200, await response.text()
            obj: dict[str, Any] = await response.json()
        obj["data"][field] = str(int(obj["data"][field]) + 1)
        async with http.put(url, json=obj) as response:
            if response.status == 200:
                stats["ok"] += 1
                return
            body = await response.json()
            assert response.status == 409 and body["reason"] == "Conflict", body
            stats["conflicts"] += 1
        await asyncio.sleep(random.uniform(0, backoff))  # jittered back-off before the retry
        backoff = min(backoff * 2, 0.1)
    raise AssertionError("no progress after 500 attempts")


async def test_concurrent_writers_lose_no_increment(server: Server, ns: str) -> None:
    url = f"{server.url}/api/v1/namespaces/{ns}/configmaps"
    async with session(server) as http:
        async with http.post(url, json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "counter"}, "data": {"count": "0"}}) as response:
            assert response.status == 201, await response.text()
            start_rv = int((await response.json())["metadata"]["resourceVersion"])
        stats = {"ok": 0, "conflicts": 0}
        await asyncio.gather(*(_increment(http, f"{url}/counter", stats) for _ in range(WRITERS)))
        async with http.get(f"{url}/counter") as response:
            final = await response.json()
    assert stats["ok"] == WRITERS
    assert final["data"]["count"] == str(WRITERS), (final["data"], stats)
    assert int(final["metadata"]["resourceVersion"]) > start_rv
    print(f"{WRITERS} writers: {stats['conflicts']} conflicts retried")


async def test_concurrent_merge_patches_all_land(server: Server, ns: str) -> None:
    """Patches without a resourceVersion never conflict for the client: each key set by one writer survives."""
    url = f"{server.url}/api/v1/namespaces/{ns}/configmaps"
    async with session(server) as http:
        async with http.post(url, json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "bag"}}) as response:
            assert response.status == 201

        async def put_key(i: int) -> None:
            async with http.patch(f"{url}/bag", json={"data": {f"k{i}": str(i)}},
                                  headers={"Content-Type": "application/merge-patch+json"}) as response:
                assert response.status == 200, await response.text()

        await asyncio.gather(*(put_key(i) for i in range(50)))
        async with http.get(f"{url}/bag") as response:
            data = (await response.json())["data"]
    assert data == {f"k{i}": str(i) for i in range(50)}
