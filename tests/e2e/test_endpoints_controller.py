"""The endpoints controller against the real API server: pods' readiness drives Endpoints and EndpointSlices, and
`kubectl describe svc` / `kubectl get endpoints` show them."""

from __future__ import annotations

import asyncio
from typing import Any

from svcnet.api import resources
from svcnet.client import Client, load_kubeconfig
from svcnet.controllers.endpoints_controller import EndpointsController
from tests.e2e.conftest import Server, eventually

SVC = resources.lookup("", "v1", "services")
POD = resources.lookup("", "v1", "pods")
EP = resources.lookup("", "v1", "endpoints")
SLICE = resources.lookup("discovery.k8s.io", "v1", "endpointslices")


async def _make_pod(client: Client, ns: str, name: str, ip: str, ready: bool) -> None:
    await client.create(POD, ns, {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": name, "labels": {"app": "nginx-pod"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}})
    await _set_ready(client, ns, name, ip, ready)


async def _set_ready(client: Client, ns: str, name: str, ip: str, ready: bool) -> None:
    status = {"status": {"phase": "Running", "podIP": ip,
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    await client.patch(POD, ns, name, status, subresource="status")


async def test_endpoints_follow_pod_readiness(server: Server, ns: str) -> None:
    client = Client(load_kubeconfig(server.kubeconfig))
    controller = EndpointsController(client)
    task = asyncio.create_task(controller.run())
    try:
        await client.create(SVC, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                      "spec": {"selector": {"app": "nginx-pod"}, "ports": [{"port": 80}]}})
        for i, ready in enumerate((True, True, False)):
            await _make_pod(client, ns, f"p{i}", f"127.244.0.{i + 10}", ready)

        async def endpoints_are(ready: list[str], not_ready: list[str]) -> bool:
            obj = await client.get(EP, ns, "web")
            subsets = obj.get("subsets") or []
            got = sorted(a["ip"] for s in subsets for a in s.get("addresses", []))
            got_nr = sorted(a["ip"] for s in subsets for a in s.get("notReadyAddresses", []))
            return got == ready and got_nr == not_ready

        await eventually(lambda: endpoints_are(["127.244.0.10", "127.244.0.11"], ["127.244.0.12"]), tolerate=(Exception,))
        await _set_ready(client, ns, "p0", "127.244.0.10", False)
        await eventually(lambda: endpoints_are(["127.244.0.11"], ["127.244.0.10", "127.244.0.12"]), tolerate=(Exception,))

        async def slice_ready() -> dict[str, bool]:
            listed = await client.list(SLICE, ns, label_selector="kubernetes.io/service-name=web")
            return {e["addresses"][0]: e["conditions"]["ready"] for s in listed["items"] for e in s["endpoints"]}

        await eventually(lambda: _eq(slice_ready(), {"127.244.0.10": False, "127.244.0.11": True,
                                                  "127.244.0.12": False}))
        described = await asyncio.to_thread(server.kubectl, "describe", "svc", "web", "-n", ns)
        assert "127.244.0.11:80" in described.stdout, described.stdout

        await client.delete(SVC, ns, "web")

        async def gone() -> bool:
            left = await client.list(SLICE, ns)
            try:
                await client.get(EP, ns, "web")
                return False
            except Exception:  # noqa: BLE001 — 404 is what we wait for
                return not left["items"]

        await eventually(gone, tolerate=(Exception,))
    finally:
        task.cancel()
        await client.close()


async def _eq(value: Any, expected: Any) -> bool:
    return await value == expected
