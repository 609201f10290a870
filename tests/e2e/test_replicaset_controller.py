"""The ReplicaSet and ReplicationController controller against the real API server: scale up, down, adoption of
an orphan pod, status, and `kubectl scale` driving it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from svcnet.api import resources
from svcnet.client import Client, load_kubeconfig
from svcnet.controllers.replicaset_controller import ReplicaSetController
from tests.e2e.conftest import Server, eventually

POD = resources.lookup("", "v1", "pods")


def _owner(kind: str, replicas: int) -> tuple[Any, dict[str, Any]]:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    if kind == "ReplicaSet":
        info = resources.lookup("apps", "v1", "replicasets")
        return info, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                               "template": template}}
    info = resources.lookup("", "v1", "replicationcontrollers")
    return info, {"apiVersion": "v1", "kind": kind, "metadata": {"name": "web"},
                  "spec": {"replicas": replicas, "selector": {"app": "web"}, "template": template}}


@pytest.mark.parametrize("kind", ["ReplicaSet", "ReplicationController"])
async def test_replicas_follow_spec(server: Server, ns: str, kind: str) -> None:
    client = Client(load_kubeconfig(server.kubeconfig))
    controller = ReplicaSetController(client, kind)
    task = asyncio.create_task(controller.run())
    info, body = _owner(kind, 3)
    try:
        orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        await client.create(POD, ns, orphan)
        owner = await client.create(info, ns, body)

        async def owned_pods(count: int) -> list[dict[str, Any]] | None:
            pods = (await client.list(POD, ns))["items"]
            mine = [p for p in pods if any(r.get("uid") == owner["metadata"]["uid"]
                                           for r in p["metadata"].get("ownerReferences") or [])]
            return mine if len(pods) == count and len(mine) == count else None

        pods = await eventually(lambda: owned_pods(3))
        assert "orphan" in {p["metadata"]["name"] for p in pods}, "the matching orphan was adopted"
        resource = "rs" if kind == "ReplicaSet" else "rc"
        await asyncio.to_thread(server.kubectl, "scale", resource, "web", "-n", ns, "--replicas=1")
        await eventually(lambda: owned_pods(1))
        await client.patch(info, ns, "web", {"spec": {"replicas": 4}})
        await eventually(lambda: owned_pods(4))

        async def status_replicas() -> bool:
            return (await client.get(info, ns, "web")).get("status", {}).get("replicas") == 4

        await eventually(status_replicas)
    finally:
        task.cancel()
        await client.close()
