"""The Deployment controller against the real API server, driven by the real kubectl: create, rollout status,
scale, a rolling update that keeps enough pods ready, history, undo (reusing the old ReplicaSet), restart, and
pause/resume.

The Deployment and ReplicaSet controllers run in-process. No node agent runs in these tests, so `_stand_in_node`
stands in for it: a moment after a pod appears it reports the pod Running and Ready through the pods/status
subresource, as a kubelet would once the container started.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer
from svcnet.controllers import deployments
from svcnet.controllers.deployment_controller import DeploymentController
from svcnet.controllers.replicaset_controller import ReplicaSetController
from tests.e2e.conftest import Server, eventually, running

POD = resources.lookup("", "v1", "pods")
RS = resources.lookup("apps", "v1", "replicasets")
DEPLOY = resources.lookup("apps", "v1", "deployments")
EVENT = resources.lookup("", "v1", "events")
STARTUP = 0.15  # seconds the stand-in node takes to "start" a pod's containers
ROLLOUT_TIMEOUT = 60


def _ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or [])


async def _start_pod(client: Client, pod: dict[str, Any]) -> None:
    await asyncio.sleep(STARTUP)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"phase": "Running", "startTime": now,
              "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                             for t in ("Initialized", "ContainersReady", "Ready", "PodScheduled")]}
    with contextlib.suppress(errors.APIError):  # deleted meanwhile
        await client.patch(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], {"status": status},
                           subresource="status")


async def _stand_in_node(client: Client, ns: str) -> None:
    """Stands in for the node agent: every new pod in `ns` becomes Running and Ready shortly after it appears."""
    informer = Informer(client, POD, namespace=ns)
    started: set[asyncio.Task[None]] = set()

    def on_add(pod: dict[str, Any]) -> None:
        task = asyncio.create_task(_start_pod(client, pod))
        started.add(task)
        task.add_done_callback(started.discard)

    informer.add_handlers(Handlers(on_add=on_add))
    try:
        await informer.run()
    finally:
        for task in list(started):
            task.cancel()


def _cluster(server: Server, ns: str) -> Any:
    return running(server, DeploymentController, lambda c: ReplicaSetController(c, "ReplicaSet"),
                   lambda c: _stand_in_node(c, ns))


async def _kubectl(server: Server, *args: str) -> str:
    return (await asyncio.to_thread(server.kubectl, *args, timeout=ROLLOUT_TIMEOUT + 15)).stdout


async def _rollout_status(server: Server, ns: str) -> None:
    out = await _kubectl(server, "rollout", "status", "deploy/web", "-n", ns, f"--timeout={ROLLOUT_TIMEOUT}s")
    assert 'deployment "web" successfully rolled out' in out, out


async def _pods(client: Client, ns: str) -> list[dict[str, Any]]:
    return [p for p in (await client.list(POD, ns))["items"] if not p["metadata"].get("deletionTimestamp")]


async def _ready_images(client: Client, ns: str, count: int) -> set[str] | None:
    """The images of the pods when there are exactly `count` pods and all are ready, else None."""
    pods = await _pods(client, ns)
    if len(pods) != count or not all(_ready(p) for p in pods):
        return None
    return {c["image"] for p in pods for c in p["spec"]["containers"]}


async def _replica_sets(client: Client, ns: str) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in (await client.list(RS, ns))["items"]}


def _revision(obj: dict[str, Any]) -> str:
    return (obj["metadata"].get("annotations") or {}).get(deployments.REVISION, "")


class _ReadySampler:
    """Watches the pods and records the number of ready pods after every change."""

    def __init__(self, client: Client, ns: str) -> None:
        self.informer = Informer(client, POD, namespace=ns)
        self.samples: list[int] = []
        self.informer.add_handlers(Handlers(on_add=self._sample, on_update=lambda o, n: self._sample(n),
                                            on_delete=self._sample))

    def _sample(self, _: dict[str, Any]) -> None:
        if self.informer.synced.is_set():  # the initial list arrives one pod at a time
            self.samples.append(sum(1 for p in self.informer.items() if _ready(p)))


async def test_kubectl_rollout_lifecycle(server: Server, ns: str) -> None:
    async with _cluster(server, ns) as client:
        await _kubectl(server, "create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", ns)
        assert await eventually(lambda: _ready_images(client, ns, 3)) == {"nginx"}
        await _rollout_status(server, ns)
        [first] = (await _replica_sets(client, ns)).values()
        name = first["metadata"]["name"]
        assert first["metadata"]["labels"]["pod-template-hash"] == name.removeprefix("web-")
        assert _revision(first) == "1" and _revision(await client.get(DEPLOY, ns, "web")) == "1"
        events = (await client.list(EVENT, ns))["items"]
        assert any(e["reason"] == "ScalingReplicaSet" and e["message"] == f"Scaled up replica set {name} to 3"
                   for e in events), [e["message"] for e in events]

        await _kubectl(server, "scale", "deploy", "web", "--replicas=5", "-n", ns)
        await eventually(lambda: _ready_images(client, ns, 5))
        await _rollout_status(server, ns)

        sampler = _ReadySampler(client, ns)
        sampling = asyncio.create_task(sampler.informer.run())
        try:
            await sampler.informer.synced.wait()
            await _kubectl(server, "set", "image", "deploy/web", "nginx=nginx:2", "-n", ns)
            await _rollout_status(server, ns)
            assert await eventually(lambda: _ready_images(client, ns, 5)) == {"nginx:2"}
        finally:
            sampling.cancel()
        # 5 replicas, maxUnavailable 25% → 1: at least 4 pods stay ready all along.
        assert len(sampler.samples) > 10 and min(sampler.samples) >= 4, sampler.samples

        history = await _kubectl(server, "rollout", "history", "deploy/web", "-n", ns)
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history

        await _kubectl(server, "rollout", "undo", "deploy/web", "-n", ns)
        await _rollout_status(server, ns)
        assert await eventually(lambda: _ready_images(client, ns, 5)) == {"nginx"}
        sets = await _replica_sets(client, ns)
        assert len(sets) == 2, "the old ReplicaSet was reused, not a new one made"
        assert _revision(sets[name]) == "3" and sets[name]["spec"]["replicas"] == 5
        assert sets[name]["metadata"]["annotations"][deployments.REVISION_HISTORY] == "1"
        assert _revision(await client.get(DEPLOY, ns, "web")) == "3"

        await _kubectl(server, "rollout", "restart", "deploy/web", "-n", ns)
        await _rollout_status(server, ns)
        await eventually(lambda: _ready_images(client, ns, 5))
        assert all("kubectl.kubernetes.io/restartedAt" in (p["metadata"].get("annotations") or {})
                   for p in await _pods(client, ns))
        assert len(await _replica_sets(client, ns)) == 3
        assert _revision(await client.get(DEPLOY, ns, "web")) == "4"
        status = (await client.get(DEPLOY, ns, "web"))["status"]
        assert {c["type"]: c["reason"] for c in status["conditions"]} == \
            {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
        described = await _kubectl(server, "describe", "deploy/web", "-n", ns)
        assert "5 desired | 5 updated | 5 total | 5 available | 0 unavailable" in described, described
        assert f"Scaled up replica set {name} to 3" in described, described


async def test_paused_deployment_waits_for_resume(server: Server, ns: str) -> None:
    async with _cluster(server, ns) as client:
        await _kubectl(server, "create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", ns)
        await _rollout_status(server, ns)
        await _kubectl(server, "rollout", "pause", "deploy/web", "-n", ns)
        await _kubectl(server, "set", "image", "deploy/web", "nginx=nginx:2", "-n", ns)

        async def paused_observed() -> bool:
            deploy = await client.get(DEPLOY, ns, "web")
            status = deploy.get("status", {})
            progressing = deployments.get_condition(status, "Progressing") or {}
            return status.get("observedGeneration") == deploy["metadata"]["generation"] and \
                progressing.get("reason") == "DeploymentPaused"

        await eventually(paused_observed)
        assert len(await _replica_sets(client, ns)) == 1, "no rollout while paused"
        await _kubectl(server, "rollout", "resume", "deploy/web", "-n", ns)
        await _rollout_status(server, ns)
        assert await eventually(lambda: _ready_images(client, ns, 2)) == {"nginx:2"}


async def test_orphan_replica_sets_are_adopted_and_released(server: Server, ns: str) -> None:
    """A matching ReplicaSet without a controller becomes an old set of the Deployment (scaled away); one whose
    labels stop matching is released."""
    async with _cluster(server, ns) as client:
        template = {"metadata": {"labels": {"app": "web", "v": "0"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:0"}]}}
        await client.create(RS, ns, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": "orphan", "labels": {"app": "web"}}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web", "v": "0"}}, "template": template}})
        await _kubectl(server, "create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", ns)
        await _rollout_status(server, ns)
        uid = (await client.get(DEPLOY, ns, "web"))["metadata"]["uid"]

        async def orphan_adopted_and_empty() -> bool:
            orphan = await client.get(RS, ns, "orphan")
            refs = orphan["metadata"].get("ownerReferences") or []
            return refs == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid,
                             "controller": True, "blockOwnerDeletion": True}] and orphan["spec"]["replicas"] == 0

        await eventually(orphan_adopted_and_empty)
        assert await eventually(lambda: _ready_images(client, ns, 2)) == {"nginx"}
        await client.patch(RS, ns, "orphan", {"metadata": {"labels": {"app": "other"}}})

        async def released() -> bool:
            return not (await client.get(RS, ns, "orphan"))["metadata"].get("ownerReferences")

        await eventually(released)
