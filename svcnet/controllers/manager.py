"""`svcnet controller-manager`: which controllers run, and the settings they share.

Each entry of CONTROLLERS builds one controller from a client and the ManagerConfig; every controller has an
async `run()` that returns only when cancelled. The manager runs them all on one client, so adding a controller
is one line here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from svcnet.client import Client


@dataclass(frozen=True)
class ManagerConfig:
    workers: int = 2
    cluster_cidr: str = "10.244.0.0/16"  # podCIDRs for nodes are cut from it
    node_cidr_mask_size: int = 24
    load_balancer_pool: tuple[str, ...] = field(default=())  # CIDRs or ranges a-b for status.loadBalancer
    node_monitor_grace_seconds: float = 40.0


def _deployments(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.deployment_controller import DeploymentController
    return DeploymentController(client, config.workers)


def _endpoints(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.endpoints_controller import EndpointsController
    return EndpointsController(client, config.workers)


def _replicasets(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.replicaset_controller import ReplicaSetController
    return ReplicaSetController(client, "ReplicaSet", config.workers)


def _replication_controllers(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.replicaset_controller import ReplicaSetController
    return ReplicaSetController(client, "ReplicationController", config.workers)


def _garbage_collector(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.gc_controller import GarbageCollector
    return GarbageCollector(client, config.workers)


def _namespaces(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.namespace_controller import NamespaceController
    return NamespaceController(client, config.workers)


def _scheduler(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.scheduler import Scheduler
    return Scheduler(client)


def _node_lifecycle(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.node_lifecycle import NodeLifecycleController
    return NodeLifecycleController(client, config.cluster_cidr, config.node_cidr_mask_size,
                                   config.node_monitor_grace_seconds, config.workers)


def _loadbalancer(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.loadbalancer_controller import LoadBalancerController
    return LoadBalancerController(client, config.load_balancer_pool, config.workers)


def _mirroring(client: Client, config: ManagerConfig) -> Any:
    from svcnet.controllers.mirroring_controller import MirroringController
    return MirroringController(client, config.workers)


CONTROLLERS: dict[str, Callable[[Client, ManagerConfig], Any]] = {
    "deployment": _deployments,
    "endpoints": _endpoints,
    "replicaset": _replicasets,
    "replicationcontroller": _replication_controllers,
    "scheduler": _scheduler,
    "garbagecollector": _garbage_collector,
    "namespace": _namespaces,
    "nodelifecycle": _node_lifecycle,
    "loadbalancer": _loadbalancer,
    "endpointslicemirroring": _mirroring,
}


def run_all(client: Client, config: ManagerConfig, only: list[str] | None = None) -> Awaitable[Any]:
    """One awaitable that runs every controller (or those named in `only`) until cancelled."""
    names = only or list(CONTROLLERS)
    return asyncio.gather(*(CONTROLLERS[name](client, config).run() for name in names))
