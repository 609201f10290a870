"""Starting and stopping the API server: store, allocator repair, system objects, TLS, kubeconfig, compaction.

Invariants: the server reports ready (/readyz) only after the system objects exist; the kubeconfig is written only
once the API answers; shutdown stops accepting, ends watches, then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from svcnet.api import errors, resources, validation
from svcnet.apiserver import allocator, auth, services
from svcnet.apiserver.app import READY_KEY, create_app
from svcnet.apiserver.registry import ListOptions, Registry, WriteOptions
from svcnet.store import open_store
from svcnet.store.base import Store

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class APIServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    insecure_http: bool = False  # plain HTTP without authentication (loopback tooling only)
    store_url: str = ""  # default: sqlite in data_dir
    extra_sans: list[str] = field(default_factory=list)
    compact_interval: float = 300.0

    @property
    def advertise_address(self) -> str:
        return "127.0.0.1" if self.bind_address in ("0.0.0.0", "::", "") else self.bind_address


class APIServer:
    """An API server bound to a port. `start()` returns once it serves; `stop()` tears it down."""

    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.registry: Registry | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.kubeconfig_path = config.data_dir / "kubeconfig"
        self._compactor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await open_store(cfg.store_url or f"sqlite://{cfg.data_dir / 'state.db'}")
        cidr = ipaddress.ip_network(cfg.service_cidr)
        alloc = allocator.ServiceAllocator(self.store, cidr, cfg.node_port_range)
        loopback = ipaddress.ip_address(cfg.advertise_address).is_loopback
        net = validation.NetworkConfig(service_cidrs=(cidr,), node_port_range=cfg.node_port_range,
                                       allow_loopback=loopback)
        self.registry = Registry(self.store, net, alloc)
        tokens = None if cfg.insecure_http else auth.load_tokens(cfg.data_dir)
        app = create_app(self.registry, tokens)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
        await self.runner.setup()
        ssl_ctx = None
        if not cfg.insecure_http:
            hosts = ["127.0.0.1", "localhost", "::1", cfg.advertise_address, alloc.first_ip(), "kubernetes",
                     "kubernetes.default", "kubernetes.default.svc", *cfg.extra_sans]
            pki = auth.ensure_pki(cfg.data_dir, list(dict.fromkeys(hosts)))
            ssl_ctx = pki.ssl_context()
        site = web.TCPSite(self.runner, cfg.bind_address, cfg.port, ssl_context=ssl_ctx, reuse_address=True)
        await site.start()
        port = self.runner.addresses[0][1] if cfg.port == 0 else cfg.port
        scheme = "http" if cfg.insecure_http else "https"
        host = cfg.advertise_address
        self.url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        await bootstrap(self.registry, alloc, cfg.advertise_address, port)
        app[READY_KEY]["ready"] = True
        ca = None if cfg.insecure_http else cfg.data_dir / "pki" / "ca.crt"
        auth.write_kubeconfig(self.kubeconfig_path, auth.kubeconfig(self.url, tokens.admin if tokens else None, ca))
        if tokens is not None:
            auth.write_kubeconfig(cfg.data_dir / "kubeconfig-readonly",
                                  auth.kubeconfig(self.url, tokens.read_only, ca, auth.READONLY_USER))
        self._compactor = asyncio.get_running_loop().create_task(self._compact_forever())
        log.info("API server ready at %s (kubeconfig %s)", self.url, self.kubeconfig_path)

    async def _compact_forever(self) -> None:
        """Every interval, forget history older than the revision seen one interval ago (as kube-apiserver)."""
        assert self.store is not None
        previous = 0
        while True:
            await asyncio.sleep(self.config.compact_interval)
            current = await self.store.current_revision()
            if previous > await self.store.compacted_revision():
                with contextlib.suppress(Exception):
                    await self.store.compact(previous)
            previous = current

    async def stop(self) -> None:
        if self._compactor is not None:
            self._compactor.cancel()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.registry is not None:
            await self.registry.close()
        if self.store is not None:
            await self.store.close()


async def bootstrap(registry: Registry, alloc: allocator.ServiceAllocator, address: str, port: int) -> None:
    """The objects a cluster has from the start, and a repair of leaked address reservations."""
    system = WriteOptions(field_manager="svcnet-apiserver")
    ns_info = _info("v1", "Namespace")
    for name in SYSTEM_NAMESPACES:
        await _ensure(registry, ns_info, "", {"metadata": {"name": name}}, system)
    svc = {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
           "spec": {"clusterIP": alloc.first_ip(), "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                              "targetPort": port}]}}
    await _ensure(registry, _info("v1", "Service"), "default", svc, system)
    endpoints = {"metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                 "subsets": [{"addresses": [{"ip": address}],
                              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    await _ensure(registry, _info("v1", "Endpoints"), "default", endpoints, system, replace=True)
    family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    slice_ = {"metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
              "addressType": family,
              "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    await _ensure(registry, _info("discovery.k8s.io/v1", "EndpointSlice"), "default", slice_, system,
                  replace=True)
    await _repair_allocations(registry, alloc)


def _info(api_version: str, kind: str) -> resources.ResourceInfo:
    info = resources.lookup_kind(api_version, kind)
    assert info is not None
    return info


async def _ensure(registry: Registry, info: resources.ResourceInfo, namespace: str, obj: dict[str, Any],
                  opts: WriteOptions, replace: bool = False) -> None:
    """Create `obj` if missing; with `replace`, also bring an existing one's non-metadata fields up to date."""
    obj = {"apiVersion": info.api_version, "kind": info.kind, **obj}
    name = obj["metadata"]["name"]
    try:
        current = await registry.get(info, namespace, name)
    except errors.APIError as exc:
        if exc.code != 404:
            raise
        await registry.create(info, namespace, obj, opts)
        return
    if replace:
        await registry.update(info, namespace, name,
                              {**current, **{k: v for k, v in obj.items() if k != "metadata"}}, opts)


async def _repair_allocations(registry: Registry, alloc: allocator.ServiceAllocator) -> None:
    listed = await registry.list(_info("v1", "Service"), None, ListOptions())
    ips: set[str] = set()
    ports: set[int] = set()
    for svc in listed["items"]:
        svc_ips, svc_ports = services.held(svc)
        ips |= svc_ips
        ports |= svc_ports
    freed = await alloc.repair(ips, ports)
    if freed:
        log.info("freed %d leaked address reservations", freed)
