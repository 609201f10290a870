"""The scheduler against the real API server: pending pods are bound to the least loaded Ready node, honour
nodeSelector, and an unschedulable pod says why (condition + event, visible in `kubectl describe pod`)."""

from __future__ import annotations

import asyncio
from typing import Any

from svcnet.api import resources
from svcnet.client import Client, load_kubeconfig
from svcnet.controllers.scheduler import Scheduler
from tests.e2e.conftest import Server, eventually

POD = resources.lookup("", "v1", "pods")
NODE = resources.lookup("", "v1", "nodes")


async def _node(client: Client, name: str, labels: dict[str, str]) -> None:
    await client.create(NODE, None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
                                                                                      "labels": labels}})
    await client.patch(NODE, None, name, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                       subresource="status")


def _pod(name: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    if selector:
        spec["nodeSelector"] = selector
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_pods_are_spread_and_selectors_honoured(server: Server, ns: str) -> None:
    client = Client(load_kubeconfig(server.kubeconfig))
    task = asyncio.create_task(Scheduler(client).run())
    suffix = ns[-6:]
    try:
        await _node(client, f"n1-{suffix}", {"sched-test": suffix})
        await _node(client, f"n2-{suffix}", {"sched-test": suffix, "disk": "ssd"})
        for i in range(4):
            await client.create(POD, ns, _pod(f"p{i}", {"sched-test": suffix}))
        await client.create(POD, ns, _pod("ssd", {"disk": "ssd", "sched-test": suffix}))
        await client.create(POD, ns, _pod("nowhere", {"disk": "tape"}))

        async def placed() -> dict[str, str] | None:
            pods = (await client.list(POD, ns))["items"]
            nodes = {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in pods}
            return nodes if all(nodes[f"p{i}"] for i in range(4)) and nodes["ssd"] else None

        nodes = await eventually(placed)
        assert nodes["ssd"] == f"n2-{suffix}"
        spread = [nodes[f"p{i}"] for i in range(4)]
        # fewest pods first: p0..p3 alternate over both nodes, then "ssd" lands on n2
        assert sorted(spread) == [f"n1-{suffix}"] * 2 + [f"n2-{suffix}"] * 2, spread
        assert nodes["nowhere"] == ""

        async def explained() -> bool:
            pod = await client.get(POD, ns, "nowhere")
            return any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                       for c in pod.get("status", {}).get("conditions") or [])

        await eventually(explained)
        described = await asyncio.to_thread(server.kubectl, "describe", "pod", "nowhere", "-n", ns)
        assert "FailedScheduling" in described.stdout and "didn't match Pod's node affinity/selector" in \
            described.stdout, described.stdout
    finally:
        task.cancel()
        await client.close()
