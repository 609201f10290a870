"""`svcnet proxy`: the kube-proxy of svcnet — informers on Services, EndpointSlices and Nodes feed change
trackers; a bounded-frequency runner rebuilds the snapshot and hands it to the mode's proxier; metrics, health
and the live forwarding table are served like kube-proxy's (10249 and 10256 by default).

Invariants: reads and writes go through the Kubernetes API only (so it also runs against a real cluster); a
sync runs only when a tracked change is pending or the periodic resync is due; a partial sync redoes only the
services whose objects changed (`model.SnapshotCache`), a full one re-reads the informers' caches; network
programming latency is observed once per changed EndpointSlice, from its trigger-time annotation, after the
change is programmed (kube-proxy's metric); the health endpoint turns 503 when a queued change has waited
longer than the health timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from svcnet.api import resources
from svcnet.client import Client, Handlers, Informer, object_key
from svcnet.netns import Entered
from svcnet.proxy import health, healthcheck, metrics, model, show
from svcnet.proxy.iptables.proxier import IptablesProxier
from svcnet.proxy.ipvs.proxier import IpvsProxier
from svcnet.proxy.nftables.proxier import NftablesProxier
from svcnet.proxy.runner import BoundedFrequencyRunner
from svcnet.proxy.tracker import ChangeTracker, relevant_slice
from svcnet.proxy.userspace.portals import Portals
from svcnet.proxy.userspace.proxier import UserspaceProxier

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SERVICES = resources.require("", "v1", "services")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
NODES = resources.require("", "v1", "nodes")
FORWARDING_PATH = "/svcnet/forwarding"


@dataclass(frozen=True)
class ProxyConfig:
    node_name: str
    node_ips: tuple[str, ...] = ()  # empty: the Node's InternalIPs, else 127.0.0.1
    mode: str = "userspace"
    scheduler: str = "rr"
    min_sync_period: float = 0.0
    sync_period: float = 30.0
    connect_timeout: float = 1.0
    udp_idle_timeout: float = 10.0
    metrics_address: tuple[str, int] | None = ("127.0.0.1", 10249)
    healthz_address: tuple[str, int] | None = ("0.0.0.0", 10256)  # noqa: S104 — kube-proxy's default
    netns: str = ""  # root: proxy a node's network namespace (listeners there, REDIRECT portals)
    cluster_cidr: str = "10.244.0.0/16"  # iptables/ipvs: traffic from outside it to a ClusterIP is masqueraded


class ProxyServer:
    def __init__(self, client: Client, config: ProxyConfig) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics.ProxyMetrics()
        self.health = health.HealthState(health_timeout=2 * config.sync_period)
        self.services = Informer(client, SERVICES)
        self.slices = Informer(client, SLICES)
        self.service_changes = ChangeTracker()
        self.slice_changes = ChangeTracker(reduce=relevant_slice, started=time.time())
        self.cache = model.SnapshotCache()
        self.runner = BoundedFrequencyRunner(self._sync, config.min_sync_period, config.sync_period)
        self.entered = Entered(config.netns) if config.netns else None
        self.portals = Portals(config.netns) if config.netns else None
        self.proxier = UserspaceProxier(config.node_name, config.node_ips or ("127.0.0.1",), config.scheduler,
                                        config.connect_timeout, config.udp_idle_timeout,
                                        self.metrics.connection, self.entered)
        self.kernel: IptablesProxier | NftablesProxier | IpvsProxier | None = None
        if config.mode == "iptables":
            self.kernel = IptablesProxier(config.node_name, config.node_ips, config.cluster_cidr, config.netns)
            self.portals = None
        elif config.mode == "nftables":
            self.kernel = NftablesProxier(config.node_name, config.node_ips, config.cluster_cidr, config.netns)
            self.portals = None
        elif config.mode == "ipvs":
            self.kernel = IpvsProxier(config.node_name, config.node_ips, config.cluster_cidr, config.netns,
                                      config.scheduler)
            self.portals = None
        self.nodes = Informer(client, NODES, field_selector=f"metadata.name={config.node_name}")
        self.nodes.add_handlers(Handlers(on_add=self._node_changed, on_update=lambda old, new: self._node_changed(new),
                                         on_delete=lambda node: self.health.set_node_eligible(False)))
        self.services.add_handlers(self._handlers(self.service_changes))
        self.slices.add_handlers(self._handlers(self.slice_changes))
        self.health_checks = healthcheck.HealthCheckServers()
        self.bound: dict[str, tuple[str, int]] = {}  # "metrics"/"healthz" -> the address actually bound
        self.metrics.track_backends(self.status)  # per-backend gauges are refreshed when scraped

    def status(self) -> list[Any]:
        return self.kernel.status() if self.kernel is not None else self.proxier.status()

    def _handlers(self, tracker: ChangeTracker) -> Handlers:
        def changed(old: Obj | None, new: Obj | None) -> None:
            key = object_key(new or old or {})
            if tracker.update(key, old, new):
                if tracker is self.service_changes:
                    self.metrics.changes(services=1)
                else:
                    self.metrics.changes(endpoints=1)
                self._queue()
        return Handlers(on_add=lambda o: changed(None, o), on_update=changed, on_delete=lambda o: changed(o, None))

    def _queue(self) -> None:
        now = time.time()
        self.health.queued(now)
        self.metrics.queued(now)
        self.metrics.pending(services=len(self.service_changes), endpoints=len(self.slice_changes))
        self.runner.request()

    async def _sync(self, full: bool) -> None:
        started = time.monotonic()
        services, slices = self.service_changes.drain(), self.slice_changes.drain_all()
        self.metrics.sync_started()
        snapshot = self._snapshot(services, slices.keys, full)
        try:
            problems = await self._program(snapshot, full)
        except BaseException:
            self.slice_changes.restore_trigger_times(slices.trigger_times)  # the retry observes them
            raise
        self.metrics.programmed_since([t for times in slices.trigger_times.values() for t in times], time.time())
        problems += await self.health_checks.sync(healthcheck.local_counts(snapshot, self.config.node_name))
        for problem in problems:
            log.warning("%s", problem)
        self.metrics.sync_done(time.monotonic() - started, full, time.time())
        self.metrics.pending(services=len(self.service_changes), endpoints=len(self.slice_changes))
        self.health.synced(time.time())

    def _snapshot(self, services: set[str], slices: set[str], full: bool) -> model.Snapshot:
        """The snapshot to program: the changed keys applied to the last one, or, for a full sync, the
        informers' whole caches (either way unchanged service ports keep their objects)."""
        if full:
            return self.cache.resync(self.services.items(), self.slices.items())
        return self.cache.update({key: self.services.get(key) for key in services},
                                 {key: self.slices.get(key) for key in slices})

    async def _program(self, snapshot: model.Snapshot, full: bool) -> list[str]:
        """Hand the snapshot to the mode's proxier; the problems it reports."""
        if self.kernel is not None:
            problems = await self.kernel.sync(snapshot, full)
        else:
            problems = self.proxier.sync(snapshot)
        if self.portals is not None:
            await self.portals.apply(self.proxier.portals())
        return problems

    async def _expire_affinity(self) -> None:
        """ClientIP entries are checked on use; this drops the ones of clients that never came back."""
        while True:
            await asyncio.sleep(60)
            self.proxier.affinity.expire(time.monotonic())

    def _node_changed(self, node: Obj) -> None:
        """Our own Node: whether /healthz may call it eligible, and its addresses for NodePorts."""
        self.health.set_node_eligible(health.is_node_eligible(node))
        ips = tuple(a["address"] for a in node.get("status", {}).get("addresses") or []
                    if a.get("type") in ("InternalIP", "ExternalIP"))
        if not self.config.node_ips and ips and ips != self.proxier.node_ips:
            self.proxier.node_ips = ips
            self.runner.request(full=True)

    async def _serve(self, name: str, app: web.Application, address: tuple[str, int] | None) -> web.AppRunner | None:
        if address is None:
            return None
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, address[0], address[1])
        await site.start()
        server = site._server
        sockets = server.sockets if server is not None else []  # type: ignore[attr-defined]
        self.bound[name] = sockets[0].getsockname()[:2] if sockets else address
        return runner

    def _metrics_app(self) -> web.Application:
        app = health.make_metrics_app(self.metrics, self.config.mode)

        async def forwarding(request: web.Request) -> web.Response:
            if isinstance(self.kernel, IpvsProxier):  # the kernel's live connection counts
                await self.kernel.refresh()
            return web.json_response(show.to_json(self.status()))
        app.router.add_get(FORWARDING_PATH, forwarding)
        return app

    async def run(self) -> None:
        runners = [await self._serve("metrics", self._metrics_app(), self.config.metrics_address),
                   await self._serve("healthz", health.make_health_app(self.health, self.metrics, time.time),
                                     self.config.healthz_address)]
        tasks = [asyncio.create_task(i.run()) for i in (self.services, self.slices, self.nodes)]
        try:
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
            self.runner.request(full=True)
            await asyncio.gather(self.runner.run(), self._expire_affinity(), *tasks)
        finally:
            for task in tasks:
                task.cancel()
            self.proxier.close()
            if self.kernel is not None:
                await self.kernel.close()
            if self.portals is not None:
                await self.portals.clear()
            if self.entered is not None:
                self.entered.close()
            await self.health_checks.close()
            for runner in runners:
                if runner is not None:
                    await runner.cleanup()
