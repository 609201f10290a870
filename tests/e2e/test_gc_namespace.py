"""Garbage collection and namespace deletion against the real API server, driven by the real kubectl: the
ReplicaSet controller, the garbage collector and the namespace controller run in-process.

A finalizer the test holds (`example.com/hold`) keeps an object around where the test must observe an
in-between state (an owner waiting for its dependents, a namespace waiting for its content); the test then
releases it and waits for the end state — no sleeps, only deadlines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from svcnet.api import resources
from svcnet.client import Client
from svcnet.controllers.gc_controller import GarbageCollector
from svcnet.controllers.namespace_controller import NamespaceController
from svcnet.controllers.replicaset_controller import ReplicaSetController
from tests.e2e.conftest import Result, Server, eventually, running, unique

PODS = resources.lookup("", "v1", "pods")
REPLICASETS = resources.lookup("apps", "v1", "replicasets")
HOLD = "example.com/hold"
REPLICASET = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: c, image: nginx}
"""


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    """A client, with the ReplicaSet controller, the garbage collector and the namespace controller running."""
    async with running(server, ReplicaSetController, GarbageCollector, NamespaceController) as client:
        yield client


async def kubectl(server: Server, *args: str, input: str | None = None, check: bool = True) -> Result:
    return await asyncio.to_thread(server.kubectl, *args, input=input, check=check)


async def get_json(server: Server, *args: str) -> Any:
    return json.loads((await kubectl(server, "get", *args, "-o", "json")).stdout)


async def pods(client: Client, ns: str) -> list[dict[str, Any]]:
    assert PODS is not None
    return (await client.list(PODS, ns))["items"]


async def replicaset_with_pods(server: Server, client: Client, ns: str) -> list[dict[str, Any]]:
    await kubectl(server, "apply", "-n", ns, "-f", "-", input=REPLICASET)

    async def owned() -> list[dict[str, Any]] | None:
        found = [p for p in await pods(client, ns) if p["metadata"].get("ownerReferences")]
        return found if len(found) == 2 else None

    return await eventually(owned)


async def gone(server: Server, *args: str) -> bool:
    result = await kubectl(server, "get", *args, check=False)
    return result.rc == 1 and "NotFound" in result.stderr


async def test_delete_replicaset_deletes_its_pods(server: Server, client: Client, ns: str) -> None:
    await replicaset_with_pods(server, client, ns)
    result = await kubectl(server, "delete", "rs", "web", "-n", ns)
    assert result.stdout.strip() == 'replicaset.apps "web" deleted'

    async def no_pods() -> bool:
        return await pods(client, ns) == []

    await eventually(no_pods)


async def test_delete_replicaset_orphaning_its_pods(server: Server, client: Client, ns: str) -> None:
    before = await replicaset_with_pods(server, client, ns)
    await kubectl(server, "delete", "rs", "web", "-n", ns, "--cascade=orphan")  # waits until the RS is gone
    assert await gone(server, "rs", "web", "-n", ns)
    after = await pods(client, ns)
    assert sorted(p["metadata"]["uid"] for p in after) == sorted(p["metadata"]["uid"] for p in before)
    assert all(not p["metadata"].get("ownerReferences") for p in after), after
    assert all(not p["metadata"].get("deletionTimestamp") for p in after)


async def test_foreground_deletion_waits_for_the_pods(server: Server, client: Client, ns: str) -> None:
    held, other = await replicaset_with_pods(server, client, ns)
    held_name = held["metadata"]["name"]
    await kubectl(server, "patch", "pod", held_name, "-n", ns, "--type=merge",
                  "-p", json.dumps({"metadata": {"finalizers": [HOLD]}}))
    await kubectl(server, "delete", "rs", "web", "-n", ns, "--cascade=foreground", "--wait=false")

    async def only_held_pod_left() -> bool:
        left = await pods(client, ns)
        return [p["metadata"]["name"] for p in left] == [held_name] and \
            bool(left[0]["metadata"].get("deletionTimestamp"))

    await eventually(only_held_pod_left)
    owner = await get_json(server, "rs", "web", "-n", ns)
    assert owner["metadata"]["deletionTimestamp"] and "foregroundDeletion" in owner["metadata"]["finalizers"]
    await kubectl(server, "patch", "pod", held_name, "-n", ns, "--type=merge",
                  "-p", json.dumps({"metadata": {"finalizers": None}}))
    await eventually(lambda: gone(server, "rs", "web", "-n", ns))
    assert await pods(client, ns) == []


async def test_delete_namespace_removes_everything(server: Server, client: Client) -> None:
    name = unique("doomed")
    await kubectl(server, "create", "namespace", name)
    ns = await get_json(server, "namespace", name)
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    await replicaset_with_pods(server, client, name)
    await kubectl(server, "create", "configmap", "settings", "-n", name, "--from-literal=a=b")
    await kubectl(server, "create", "service", "clusterip", "front", "-n", name, "--tcp=80:8080")
    result = await kubectl(server, "delete", "namespace", name)  # kubectl waits until it is gone
    assert result.stdout.strip() == f'namespace "{name}" deleted'
    assert await gone(server, "namespace", name)
    for kind in ("pods", "replicasets", "configmaps", "services", "endpoints"):
        listed = await get_json(server, kind, "-n", name)
        assert listed["items"] == [], (kind, listed["items"])


async def test_terminating_namespace_refuses_content_until_emptied(server: Server, client: Client) -> None:
    name = unique("terminating")
    await kubectl(server, "create", "namespace", name)
    await kubectl(server, "apply", "-n", name, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": [HOLD]}}))
    await kubectl(server, "delete", "namespace", name, "--wait=false")

    async def content_remains() -> dict[str, Any] | None:
        ns = await get_json(server, "namespace", name)
        conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
        remaining = conditions.get("NamespaceFinalizersRemaining", {})
        return ns if remaining.get("status") == "True" else None

    ns = await eventually(content_remains)
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    conditions = {c["type"]: c for c in ns["status"]["conditions"]}
    assert conditions["NamespaceFinalizersRemaining"]["message"] == \
        f"Some finalizers are remaining: {HOLD} in 1 resource instances"
    assert conditions["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    late = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    refused = await kubectl(server, "apply", "-n", name, "-f", "-", input=late, check=False)
    assert refused.rc == 1 and "Error from server (Forbidden)" in refused.stderr, refused
    assert f"unable to create new content in namespace {name} because it is being terminated" in refused.stderr
    await kubectl(server, "patch", "configmap", "held", "-n", name, "--type=merge",
                  "-p", json.dumps({"metadata": {"finalizers": None}}))
    await eventually(lambda: gone(server, "namespace", name))
