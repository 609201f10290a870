"""The node lifecycle + IPAM controller: gives nodes their podCIDR and watches their heartbeats, through the API only.

Level-triggered on node names: a node, its lease (`kube-node-lease/<node>`) or a pod bound to it enqueue the node;
`sync(node)` (1) allocates a podCIDR if the node has none (event `CIDRNotAvailable` when the range is full),
(2) decides from `nodes.is_stale` whether the node is unreachable and writes, only where they differ, its
conditions (nodes/status), its taints (nodes) and its pods' Ready condition (pods/status), then (3) requeues the
node for the moment its grace period runs out. The CIDR set is filled by the informer handlers before any sync
runs, so a restarted controller never hands out a subnet that a node already holds. The clock is injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client, Handlers, Informer, WorkQueue
from svcnet.client.events import EventRecorder
from svcnet.controllers import base, nodes

log = logging.getLogger(__name__)
Obj = dict[str, Any]


NODES = resources.require("", "v1", "nodes")
PODS = resources.require("", "v1", "pods")
LEASES = resources.require("coordination.k8s.io", "v1", "leases")
REQUEUE_SLACK = 0.05  # seconds past the deadline, so the requeued sync sees the node as stale


def _ref(node: Obj) -> Obj:
    return {**node, "kind": "Node", "apiVersion": "v1"}


class NodeLifecycleController:
    def __init__(self, client: Client, cluster_cidr: str, mask: int, grace_seconds: float, workers: int = 2,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.workers = workers
        self.grace = grace_seconds
        self.clock = clock
        self.cidrs = nodes.CIDRSet(cluster_cidr, mask)
        self.queue = WorkQueue()
        self.recorder = EventRecorder(client, "node-controller")
        self.nodes = Informer(client, NODES)
        self.leases = Informer(client, LEASES, namespace=nodes.LEASE_NAMESPACE)
        self.pods = Informer(client, PODS)
        self.nodes.add_handlers(Handlers(on_add=self._node_seen, on_update=lambda old, new: self._node_seen(new),
                                         on_delete=self._node_gone))
        self.leases.add_handlers(Handlers(on_add=self._by_name, on_update=lambda old, new: self._by_name(new)))
        self.pods.add_handlers(Handlers(on_add=self._pod_changed, on_update=lambda old, new: self._pod_changed(new)))

    def _node_seen(self, node: Obj) -> None:
        for cidr in nodes.pod_cidrs(node):
            self.cidrs.occupy(cidr)
        self.queue.add(node["metadata"]["name"])

    def _node_gone(self, node: Obj) -> None:
        freed = nodes.pod_cidrs(node)
        for cidr in freed:
            self.cidrs.release(cidr)
        if freed:  # nodes waiting for a subnet may get this one
            for waiting in self.nodes.items():
                if not nodes.pod_cidrs(waiting):
                    self.queue.add(waiting["metadata"]["name"])

    def _by_name(self, obj: Obj) -> None:
        if self.nodes.get(obj["metadata"]["name"]) is not None:
            self.queue.add(obj["metadata"]["name"])

    def _pod_changed(self, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name and self.nodes.get(node_name) is not None:
            self.queue.add(node_name)

    async def run(self) -> None:
        await base.run_controller("node-lifecycle", [self.nodes, self.leases, self.pods], self.queue, self.sync,
                                  lambda: [n["metadata"]["name"] for n in self.nodes.items()], self.workers)

    async def sync(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        node = await self._ensure_cidr(node)
        now = self.clock()
        lease = self.leases.get(f"{nodes.LEASE_NAMESPACE}/{name}")
        stale = nodes.is_stale(node, lease, now, self.grace)
        if stale:
            node = await self._mark_unknown(node, now)
        await self._set_taints(node, nodes.wanted_taints(node, stale), now)
        if nodes.pods_need_not_ready(node, stale):
            await self._mark_pods_not_ready(name, now)
        if not stale:
            deadline = nodes.last_heartbeat(node, lease) + self.grace
            self.queue.add_after(name, deadline - now + REQUEUE_SLACK)

    async def _ensure_cidr(self, node: Obj) -> Obj:
        if nodes.pod_cidrs(node):
            return node
        cidr = self.cidrs.allocate()
        if cidr is None:
            name = node["metadata"]["name"]
            await self.recorder.record(_ref(node), "Normal", "CIDRNotAvailable",
                                       f"Node {name} status is now: CIDRNotAvailable")
            log.warning("no podCIDR left in %s for node %s", self.cidrs.cluster_cidr, name)
            return node
        patch = {**nodes.cidr_patch(cidr), "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}}
        try:  # the resourceVersion makes a stale cache fail (409, retried) instead of allocating twice
            return await self.client.patch(NODES, None, node["metadata"]["name"], patch)
        except BaseException:
            self.cidrs.release(cidr)
            raise

    async def _mark_unknown(self, node: Obj, now: float) -> Obj:
        conditions = nodes.unknown_conditions(node, now)
        if conditions is None:
            return node
        body = {**node, "status": {**(node.get("status") or {}), "conditions": conditions}}
        updated = await self.client.update(NODES, body, "status")
        name = node["metadata"]["name"]
        await self.recorder.record(_ref(node), "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return updated

    async def _set_taints(self, node: Obj, wanted: list[Obj], now: float) -> None:
        taints = nodes.reconcile_taints(node, wanted, now)
        if taints is None:
            return
        spec = {**(node.get("spec") or {}), "taints": taints}
        if not taints:
            spec.pop("taints")
        await self.client.update(NODES, {**node, "spec": spec})

    async def _mark_pods_not_ready(self, name: str, now: float) -> None:
        for pod in nodes.pods_on(name, self.pods.items()):
            conditions = nodes.pod_not_ready_conditions(pod, now)
            if conditions is None:
                continue
            try:
                await self.client.update(PODS, {**pod, "status": {**pod["status"], "conditions": conditions}},
                                         "status")
            except errors.APIError as exc:
                if exc.code == 404:
                    continue
                raise
            await self.recorder.record({**pod, "kind": "Pod", "apiVersion": "v1"}, "Warning", "NodeNotReady",
                                       "Node is not ready")
