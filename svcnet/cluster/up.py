"""`svcnet up`: the whole cluster in one process, loopback mode — the API server (SQLite in the data dir), the
controller manager, one node agent (process runtime), the proxy (userspace) and the cluster DNS, each the same
component that runs alone, talking to the others only through the API.

Addresses (every one a flag of the components; the ranges mirror Kubernetes' with 10 -> 127): services
127.96.0.0/12 with `kubernetes` at .1 and `kube-dns` at 127.96.0.10, pods 127.244.0.0/16, LoadBalancer
addresses 127.240.0.0/24, NodePorts on 127.0.0.1. The DNS server listens on its own "pod" address 127.0.53.1 and
the kube-dns Service (selectorless, with svcnet's EndpointSlice) sends 127.96.0.10:53 there through the proxy,
as a real cluster's kube-dns Service does to the CoreDNS pods.
Invariants: start order API server -> system objects -> controllers, node, proxy, DNS; stop order reversed
(the node agent stops its pods), so nothing started here outlives a clean stop; `<data-dir>/up.json` says
where each component answers, for `svcnet status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from svcnet.api import errors, resources
from svcnet.apiserver.server import APIServer, APIServerConfig
from svcnet.client import Client, load_kubeconfig

log = logging.getLogger(__name__)
SERVICES = resources.require("", "v1", "services")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
NODES = resources.require("", "v1", "nodes")
DNS_SERVICE_IP = "127.96.0.10"
DNS_POD_IP = "127.0.53.1"
POD_CIDR = "127.244.0.0/16"
LB_POOL = "127.240.0.0/24"


@dataclass(frozen=True)
class UpConfig:
    api: APIServerConfig
    node_name: str = socket.gethostname()
    proxy_metrics: tuple[str, int] = ("127.0.0.1", 10249)
    proxy_healthz: tuple[str, int] = ("127.0.0.1", 10256)
    dns_metrics: tuple[str, int] = (DNS_POD_IP, 9153)
    dns_health: tuple[str, int] = (DNS_POD_IP, 8080)


def kube_dns_objects() -> list[tuple[Any, dict[str, Any]]]:
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
               "spec": {"clusterIP": DNS_SERVICE_IP,
                        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "kube-dns-svcnet", "namespace": "kube-system",
                                   "labels": {"kubernetes.io/service-name": "kube-dns",
                                              "endpointslice.kubernetes.io/managed-by": "svcnet-up"}},
                      "addressType": "IPv4",
                      "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
                      "endpoints": [{"addresses": [DNS_POD_IP], "conditions": {"ready": True}}]}
    return [(SERVICES, service), (SLICES, endpoint_slice)]


async def ensure_system_objects(client: Client) -> None:
    for info, obj in kube_dns_objects():
        with contextlib.suppress(errors.APIError):
            await client.create(info, "kube-system", obj)


class Up:
    def __init__(self, config: UpConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.api = APIServer(config.api)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.client: Client | None = None

    @property
    def state_file(self) -> Path:
        return self.config.api.data_dir / "up.json"

    async def start(self) -> None:
        began = time.monotonic()
        await self.api.start()
        self.say(f"  api server          {self.api.url}")
        self.client = Client(load_kubeconfig(str(self.api.kubeconfig_path)), field_manager="svcnet-up")
        await ensure_system_objects(self.client)
        for name, factory in self._components():
            self.tasks[name] = asyncio.create_task(factory(), name=name)
        await self._wait_ready()
        self._write_state()
        self.say(f"  ready in {time.monotonic() - began:.1f} s")

    def _components(self) -> list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]]:
        from svcnet.controllers.manager import ManagerConfig, run_all
        from svcnet.dns.forward import upstreams_from_resolv_conf
        from svcnet.dns.server import DNSConfig, DNSServer
        from svcnet.node.agent import NodeAgent, NodeConfig
        from svcnet.proxy.server import ProxyConfig, ProxyServer

        assert self.client is not None
        client, cfg = self.client, self.config
        own = {(DNS_POD_IP, 53), (DNS_SERVICE_IP, 53)}
        dns = DNSServer(client, DNSConfig(listen=(DNS_POD_IP, 53), upstreams=tuple(
            u for u in upstreams_from_resolv_conf() if u not in own), metrics_address=cfg.dns_metrics,
            health_address=cfg.dns_health))
        node = NodeAgent(client, NodeConfig(name=cfg.node_name, node_ip="127.0.0.1", data_dir=cfg.api.data_dir /
                                            "node", kubelet_port=0, cluster_dns=(DNS_SERVICE_IP,)))
        proxy = ProxyServer(client, ProxyConfig(node_name=cfg.node_name, node_ips=("127.0.0.1",),
                                                metrics_address=cfg.proxy_metrics, healthz_address=cfg.proxy_healthz))
        managers = ManagerConfig(cluster_cidr=POD_CIDR, load_balancer_pool=(LB_POOL,))

        async def controllers() -> None:
            await run_all(client, managers)

        return [("controller-manager", controllers), ("node", node.run),
                ("proxy", proxy.run), ("dns", dns.run)]

    async def _wait_ready(self, timeout: float = 60) -> None:
        checks = {"controller-manager": self._node_has_cidr, "node": self._node_ready,
                  "proxy": lambda: _http_ok(self.config.proxy_healthz, "/healthz"),
                  "dns": lambda: _http_ok(self.config.dns_health, "/ready")}
        pending = dict(checks)
        deadline = time.monotonic() + timeout
        while pending:
            for name in list(pending):
                failed = self.tasks[name].done() and self.tasks[name].exception()
                if failed:
                    raise RuntimeError(f"{name} failed to start: {failed}")
                if await pending[name]():
                    self.say(f"  {name:<19} ready")
                    del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            await asyncio.sleep(0.1)

    async def _node(self) -> dict[str, Any] | None:
        assert self.client is not None
        with contextlib.suppress(errors.APIError, aiohttp.ClientError):
            return await self.client.get(NODES, None, self.config.node_name)
        return None

    async def _node_has_cidr(self) -> bool:
        node = await self._node()
        return bool(node and node.get("spec", {}).get("podCIDR"))

    async def _node_ready(self) -> bool:
        node = await self._node()
        return bool(node) and any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in (node or {}).get("status", {}).get("conditions") or [])

    def _write_state(self) -> None:
        cfg = self.config
        self.state_file.write_text(json.dumps({
            "apiserver": f"{self.api.url}/readyz", "kubeconfig": str(self.api.kubeconfig_path),
            "node": cfg.node_name, "proxy": "http://{}:{}/healthz".format(*cfg.proxy_healthz),
            "proxy_metrics": "http://{}:{}".format(*cfg.proxy_metrics),
            "dns": "http://{}:{}/ready".format(*cfg.dns_health), "dns_address": DNS_SERVICE_IP}, indent=2))

    async def wait(self) -> None:
        """Until a component stops on its own (a failure: it is reported) or the caller cancels."""
        done, _ = await asyncio.wait(self.tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} stopped: {task.exception()}")

    async def stop(self) -> None:
        for name in ("dns", "proxy", "node", "controller-manager"):
            task = self.tasks.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.client is not None:
            await self.client.close()
        await self.api.stop()
        with contextlib.suppress(OSError):
            self.state_file.unlink()


async def _http_ok(address: tuple[str, int], path: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://{address[0]}:{address[1]}{path}", timeout=aiohttp.ClientTimeout(total=1)) as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def status(data_dir: Path) -> list[tuple[str, bool, str]]:
    """(component, healthy, where) for a running `svcnet up`, from its up.json."""
    try:
        state = json.loads((data_dir / "up.json").read_text())
    except (OSError, ValueError):
        return []
    from svcnet.client import load_kubeconfig as load

    rows: list[tuple[str, bool, str]] = []
    client = Client(load(state["kubeconfig"]))
    try:
        try:
            ready = bool(await client.request("GET", "/version"))
        except (errors.APIError, aiohttp.ClientError, OSError):
            ready = False
        rows.append(("apiserver", ready, state["apiserver"]))
        node: dict[str, Any] = {}
        with contextlib.suppress(errors.APIError, aiohttp.ClientError, OSError):
            node = await client.get(NODES, None, state["node"])
        node_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in node.get("status", {}).get("conditions") or [])
        rows.append(("controller-manager", bool(node.get("spec", {}).get("podCIDR")), "podCIDR assigned"))
        rows.append(("node", node_ready, f"node/{state['node']}"))
    finally:
        await client.close()
    for name in ("proxy", "dns"):
        url = state[name]
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        rows.append((name, await _http_ok((host, int(port)), "/" + url.split("/", 3)[3]), url))
    return rows
