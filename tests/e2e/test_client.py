"""svcnet's own client and informer against the real API server: sync, events, and resuming across a restart."""

from __future__ import annotations

import asyncio
from typing import Any

from svcnet.api import resources
from svcnet.client import Client, Handlers, Informer, load_kubeconfig
from tests.e2e.conftest import Server, eventually

CM = resources.lookup("", "v1", "configmaps")


def _async(condition: Any) -> Any:
    async def check() -> Any:
        return condition()
    return check


def _configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


async def test_informer_follows_changes_and_survives_a_restart(server: Server, ns: str) -> None:
    seen: list[tuple[str, str]] = []
    client = Client(load_kubeconfig(server.kubeconfig))
    informer = Informer(client, CM, ns, watch_timeout=30, max_backoff=0.5)
    informer.add_handlers(Handlers(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                                   on_update=lambda old, new: seen.append(("update", new["data"]["v"])),
                                   on_delete=lambda o: seen.append(("delete", o["metadata"]["name"]))))
    await client.create(CM, ns, _configmap("before", "0"))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 15)
        assert f"{ns}/before" in informer.cache
        await client.create(CM, ns, _configmap("a", "1"))
        await client.patch(CM, ns, "a", {"data": {"v": "2"}})
        await client.delete(CM, ns, "before")
        await eventually(_async(lambda: ("delete", "before") in seen))
        assert seen == [("add", "before"), ("add", "a"), ("update", "2"), ("delete", "before")]

        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        await client.patch(CM, ns, "a", {"data": {"v": "3"}})  # made after the restart, seen by resuming
        await eventually(_async(lambda: ("update", "3") in seen))
        assert informer.cache[f"{ns}/a"]["data"]["v"] == "3"
        assert seen.count(("add", "a")) == 1, "resuming from the resourceVersion replays nothing twice"
    finally:
        task.cancel()
        await client.close()
