"""The scheduler: binds every pending pod without a node (and with the default scheduler) to a node.

Level-triggered: pod and node changes enqueue the pods still waiting; `sync` asks `scheduling.choose_node` and
binds through the `pods/binding` subresource, or records why not (a PodScheduled=False condition and a
FailedScheduling event) and waits for the next node change.
"""

from __future__ import annotations

from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue, object_key, path_for
from svcnet.client.events import EventRecorder
from svcnet.controllers import base, scheduling

Obj = dict[str, Any]
PODS = resources.lookup("", "v1", "pods")
NODES = resources.lookup("", "v1", "nodes")
SCHEDULER_NAME = "default-scheduler"


def waiting(pod: Obj) -> bool:
    spec = pod.get("spec", {})
    return not spec.get("nodeName") and not pod["metadata"].get("deletionTimestamp") and \
        spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME and \
        pod.get("status", {}).get("phase", "Pending") == "Pending"


class Scheduler:
    def __init__(self, client: Client, workers: int = 1) -> None:
        assert PODS is not None and NODES is not None
        self.client = client
        self.workers = workers
        self.queue = WorkQueue()
        self.events = EventRecorder(client, SCHEDULER_NAME)
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self.assumed: dict[str, str] = {}  # pod key -> node, bound but not yet seen bound by the informer
        self.pods.add_handlers(Handlers(on_add=self._pod_seen, on_update=lambda o, n: self._pod_seen(n),
                                        on_delete=lambda p: self.assumed.pop(object_key(p), None)))
        self.nodes.add_handlers(Handlers(on_add=self._retry_all, on_update=lambda o, n: self._retry_all(n)))

    def _pod_seen(self, pod: Obj) -> None:
        if pod.get("spec", {}).get("nodeName"):
            self.assumed.pop(object_key(pod), None)
        self._maybe_enqueue(pod)

    def _load(self) -> list[Obj]:
        """Pods as the informer has them, with bindings made but not yet observed counted where they went."""
        pods = self.pods.items()
        if not self.assumed:
            return pods
        return [{**p, "spec": {**p.get("spec", {}), "nodeName": self.assumed[object_key(p)]}}
                if object_key(p) in self.assumed else p for p in pods]

    def _maybe_enqueue(self, pod: Obj) -> None:
        if waiting(pod):
            self.queue.add(object_key(pod))

    def _retry_all(self, _node: Obj) -> None:
        for pod in self.pods.items():
            self._maybe_enqueue(pod)

    async def run(self) -> None:
        await base.run_controller("scheduler", [self.pods, self.nodes], self.queue, self.sync,
                                  lambda: [object_key(p) for p in self.pods.items() if waiting(p)], self.workers)

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not waiting(pod) or key in self.assumed:
            return
        decision = scheduling.choose_node(pod, self.nodes.items(), self._load())
        meta = pod["metadata"]
        if decision.node is None:
            await self._unschedulable(pod, decision.reason)
            return
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": decision.node}}
        try:
            await self.client.request("POST", path_for(PODS, meta["namespace"], meta["name"], "binding"), binding)
        except errors.APIError as exc:
            if exc.code in (404, 409):  # gone, or bound meanwhile
                return
            raise
        self.assumed[key] = decision.node
        await self.events.record(pod, "Normal", "Scheduled",
                                 f"Successfully assigned {meta['namespace']}/{meta['name']} to {decision.node}")

    async def _unschedulable(self, pod: Obj, reason: str) -> None:
        meta = pod["metadata"]
        conditions = [c for c in pod.get("status", {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        current = next((c for c in pod.get("status", {}).get("conditions") or []
                        if c.get("type") == "PodScheduled"), {})
        if current.get("message") != reason:
            conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": reason})
            await self.client.patch(PODS, meta["namespace"], meta["name"], {"status": {"conditions": conditions}},
                                    subresource="status")
            await self.events.record(pod, "Warning", "FailedScheduling", reason)
