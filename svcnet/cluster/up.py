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

Without root: everything above runs as any user except listening below port 1024, which the cluster DNS (53) and
most Services and pods (80) need. Linux allows it to a process with CAP_NET_BIND_SERVICE, or to anyone on ports
from `net.ipv4.ip_unprivileged_port_start` up (per network namespace; 1024 by default). `check_ports` decides,
before anything starts, whether this process may bind what `up` itself binds; if not, `up` starts nothing and
says how to allow it: that sysctl, kept in `SYSCTL_CONF` — what rootless Docker and Podman document and what
scripts/install.sh writes. No workaround is attempted: a ClusterIP:port must be that address and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from svcnet.api import errors, resources
from svcnet.apiserver.server import APIServer, APIServerConfig
from svcnet.client import Client, load_kubeconfig
from svcnet.cluster import topology
from svcnet.ingress.controller import ensure_classes

log = logging.getLogger(__name__)
SERVICES = resources.require("", "v1", "services")
SLICES = resources.require("discovery.k8s.io", "v1", "endpointslices")
NODES = resources.require("", "v1", "nodes")
DNS_SERVICE_IP = "127.96.0.10"
DNS_POD_IP = "127.0.53.1"
POD_CIDR = "127.244.0.0/16"
LB_POOL = "127.240.0.0/24"
INGRESS_ADDRESS = "127.0.80.1"  # the ingress controller's HTTP (80) and HTTPS (443) listeners in loopback mode


NETNS_DNS_SERVICE_IP = "10.96.0.10"
DNS_PORT = 53
UNPRIVILEGED_PORT_START = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
SYSCTL_CONF = Path("/etc/sysctl.d/60-svcnet-unprivileged-ports.conf")  # scripts/install.sh writes it
CAP_NET_BIND_SERVICE = 10  # bit in /proc/self/status CapEff (capabilities(7))


@dataclass(frozen=True, slots=True)
class PortPrivilege:
    """Whether this process may listen on ports below 1024 (Linux: capabilities(7), ip-sysctl)."""
    can_bind_service: bool  # CAP_NET_BIND_SERVICE is effective (root has it)
    unprivileged_port_start: int  # net.ipv4.ip_unprivileged_port_start of this network namespace

    def may_bind(self, port: int) -> bool:
        return self.can_bind_service or port >= self.unprivileged_port_start


@dataclass(frozen=True, slots=True)
class PortCheck:
    blocked: tuple[tuple[str, int], ...] = ()  # (what, port) that `up` itself must bind and may not: do not start
    note: str = ""  # ports it may not use but does not need itself: say so and start


def read_port_privilege() -> PortPrivilege:
    try:
        start = int(UNPRIVILEGED_PORT_START.read_text())
    except (OSError, ValueError):
        start = 1024  # kernels before 4.11 have no such sysctl: the limit is fixed
    effective = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        status_lines = Path("/proc/self/status").read_text().splitlines()
        effective = int(next(line for line in status_lines if line.startswith("CapEff:")).split()[1], 16)
    return PortPrivilege(bool(effective >> CAP_NET_BIND_SERVICE & 1), start)


def loopback_ports(api_port: int, node_ports: tuple[int, int]) -> tuple[tuple[str, int], ...]:
    """What loopback `svcnet up` binds itself (besides the Services' ports): (what, lowest port)."""
    needed = [(f"the cluster DNS ({DNS_SERVICE_IP}:{DNS_PORT})", DNS_PORT),
              (f"the ingress controller ({INGRESS_ADDRESS}:80 and :443)", 80),
              (f"the NodePort range {node_ports[0]}-{node_ports[1]}", node_ports[0])]
    return tuple(needed + ([(f"the API server's --port {api_port}", api_port)] if api_port else []))


def check_ports(privilege: PortPrivilege, needed: Sequence[tuple[str, int]]) -> PortCheck:
    """Pure: which of `needed` this process may not bind, or a note about the ports below the limit."""
    blocked = tuple((what, port) for what, port in needed if not privilege.may_bind(port))
    if blocked or privilege.may_bind(1):
        return PortCheck(blocked)
    return PortCheck(note=f"Services and pods cannot listen on ports below {privilege.unprivileged_port_start} "
                          f"as this user (net.ipv4.ip_unprivileged_port_start; 0 allows them all)")


def render_port_problem(check: PortCheck, privilege: PortPrivilege) -> str:
    """What `svcnet up` says when it may not start: the limit, who needs it and the fix, as commands."""
    start = privilege.unprivileged_port_start
    needs = " and ".join(what for what, _ in check.blocked)
    return (f"svcnet up: this user may not listen on ports below {start} "
            f"(net.ipv4.ip_unprivileged_port_start = {start}),\n"
            f"but {needs} must, and so must Services and pods on such ports (the built-in nginx listens on 80).\n"
            "Nothing was started. Allow it once, as root, as rootless Docker and Podman document\n"
            "(`sudo scripts/install.sh` in the svcnet checkout does it):\n"
            f"  echo 'net.ipv4.ip_unprivileged_port_start = 0' | sudo tee {SYSCTL_CONF}\n"
            f"  sudo sysctl -p {SYSCTL_CONF}\n"
            "or run svcnet up as root.")


@dataclass(frozen=True)
class UpConfig:
    api: APIServerConfig
    node_name: str = socket.gethostname()
    proxy_metrics: tuple[str, int] = ("127.0.0.1", 10249)
    proxy_healthz: tuple[str, int] = ("127.0.0.1", 10256)
    dns_metrics: tuple[str, int] = (DNS_POD_IP, 9153)
    dns_health: tuple[str, int] = (DNS_POD_IP, 8080)
    ingress_health: tuple[str, int] = (INGRESS_ADDRESS, 10254)
    netns_nodes: int = 0  # > 0: that many nodes as network namespaces (root), see topology.py
    proxy_mode: str = "userspace"  # iptables, nftables or ipvs: netns nodes only, rules in the nodes' namespaces

    def __post_init__(self) -> None:
        if self.netns_nodes:  # its own addresses, so it can run beside a loopback `svcnet up`
            object.__setattr__(self, "dns_metrics", ("127.0.53.2", 9153))
            object.__setattr__(self, "dns_health", ("127.0.53.2", 8080))
            object.__setattr__(self, "ingress_health", ("127.0.80.2", 10254))

    @property
    def dns_service_ip(self) -> str:
        return NETNS_DNS_SERVICE_IP if self.netns_nodes else DNS_SERVICE_IP


@dataclass
class Component:
    name: str
    start: Callable[[], Coroutine[Any, Any, Any]]
    ready: Callable[[], Coroutine[Any, Any, bool]]
    where: str  # for up.json and `svcnet status`


def kube_dns_objects(service_ip: str = DNS_SERVICE_IP, endpoint_ip: str = DNS_POD_IP
                     ) -> list[tuple[Any, dict[str, Any]]]:
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
               "spec": {"clusterIP": service_ip,
                        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "kube-dns-svcnet", "namespace": "kube-system",
                                   "labels": {"kubernetes.io/service-name": "kube-dns",
                                              "endpointslice.kubernetes.io/managed-by": "svcnet-up"}},
                      "addressType": "IPv4",
                      "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
                      "endpoints": [{"addresses": [endpoint_ip], "conditions": {"ready": True}}]}
    return [(SERVICES, service), (SLICES, endpoint_slice)]


async def ensure_system_objects(client: Client, service_ip: str, endpoint_ip: str) -> None:
    for info, obj in kube_dns_objects(service_ip, endpoint_ip):
        with contextlib.suppress(errors.APIError):
            await client.create(info, "kube-system", obj)


class Up:
    def __init__(self, config: UpConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.api = APIServer(config.api)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.components: list[Component] = []
        self.client: Client | None = None
        self.nodes = topology.plan(config.netns_nodes) if config.netns_nodes else []

    @property
    def state_file(self) -> Path:
        return self.config.api.data_dir / "up.json"

    async def start(self) -> None:
        began = time.monotonic()
        if self.nodes:
            await topology.create(self.nodes)
            self.say(f"  topology            {len(self.nodes)} node namespaces, client namespace {topology.CLIENT}")
        await self.api.start()
        self.say(f"  api server          {self.api.url}")
        self.client = Client(load_kubeconfig(str(self.api.kubeconfig_path)), field_manager="svcnet-up")
        dns_endpoint = self.nodes[0].ip if self.nodes else DNS_POD_IP
        await ensure_system_objects(self.client, self.config.dns_service_ip, dns_endpoint)
        await ensure_classes(self.client)
        self.components = self._netns_components() if self.nodes else self._loopback_components()
        for component in self.components:
            self.tasks[component.name] = asyncio.create_task(component.start(), name=component.name)
        await self._wait_ready()
        self._write_state()
        self.say(f"  ready in {time.monotonic() - began:.1f} s")

    def _controllers(self, cluster_cidr: str) -> Component:
        from svcnet.controllers.manager import ManagerConfig, run_all

        assert self.client is not None
        client = self.client
        managers = ManagerConfig(cluster_cidr=cluster_cidr, load_balancer_pool=(self.lb_pool,))

        async def run() -> None:
            await run_all(client, managers)

        first = self.nodes[0].name if self.nodes else self.config.node_name
        return Component("controller-manager", run, lambda: self._node_has_cidr(first), "podCIDR assigned")

    def _dns(self, listen: tuple[str, int], netns: str = "") -> Component:
        from svcnet.dns.forward import upstreams_from_resolv_conf
        from svcnet.dns.server import DNSConfig, DNSServer

        assert self.client is not None
        own = {listen, (self.config.dns_service_ip, 53)}
        dns = DNSServer(self.client, DNSConfig(
            listen=listen, upstreams=tuple(u for u in upstreams_from_resolv_conf() if u not in own),
            metrics_address=self.config.dns_metrics, health_address=self.config.dns_health, netns=netns))
        return Component("dns", dns.run, lambda: _http_ok(self.config.dns_health, "/ready"),
                         "http://{}:{}/ready".format(*self.config.dns_health))

    def _ingress(self, address: str, netns: str = "") -> Component:
        from svcnet.ingress.common import Config
        from svcnet.ingress.controller import ControllerConfig, IngressController
        from svcnet.ingress.proxy import IngressConfig

        assert self.client is not None
        controller = IngressController(self.client, ControllerConfig(
            routes=Config(address=address), server=IngressConfig(bind_address=address, netns=netns or None),
            health_address=self.config.ingress_health))
        return Component("ingress", controller.run, lambda: _http_ok(self.config.ingress_health, "/healthz"),
                         "http://{}:{}/healthz".format(*self.config.ingress_health))

    def _node(self, config: Any) -> Component:
        from svcnet.node.agent import NodeAgent

        assert self.client is not None
        agent = NodeAgent(self.client, config)
        return Component(f"node {config.name}" if self.nodes else "node", agent.run,
                         lambda: self._node_ready(config.name), f"node/{config.name}")

    def _proxy(self, config: Any, label: str) -> Component:
        from svcnet.proxy.server import ProxyServer

        assert self.client is not None
        proxy = ProxyServer(self.client, config)
        healthz = config.healthz_address
        return Component(label, proxy.run, lambda: _http_ok(healthz, "/healthz"),
                         "http://{}:{}/healthz".format(*healthz))

    def _loopback_components(self) -> list[Component]:
        from svcnet.node.agent import NodeConfig
        from svcnet.proxy.server import ProxyConfig

        cfg = self.config
        node = NodeConfig(name=cfg.node_name, node_ip="127.0.0.1", data_dir=cfg.api.data_dir / "node",
                          kubelet_port=0, cluster_dns=(DNS_SERVICE_IP,))
        proxy = ProxyConfig(node_name=cfg.node_name, node_ips=("127.0.0.1",), metrics_address=cfg.proxy_metrics,
                            healthz_address=cfg.proxy_healthz)
        return [self._controllers(POD_CIDR), self._node(node), self._proxy(proxy, "proxy"),
                self._dns((DNS_POD_IP, 53)), self._ingress(INGRESS_ADDRESS)]

    def _netns_components(self) -> list[Component]:
        from svcnet.node.agent import NodeConfig
        from svcnet.proxy.server import ProxyConfig

        components = [self._controllers("10.244.0.0/16")]
        for i, node in enumerate(self.nodes, start=1):
            components.append(self._node(NodeConfig(
                name=node.name, node_ip=node.ip, kubelet_address="127.0.0.1", kubelet_port=0,
                data_dir=self.config.api.data_dir / node.name, pod_cidr=node.pod_cidr, runtime="netns",
                node_netns=node.netns, cluster_dns=(NETNS_DNS_SERVICE_IP,))))
            components.append(self._proxy(ProxyConfig(
                node_name=node.name, netns=node.netns, mode=self.config.proxy_mode, node_ips=(node.ip,),
                cluster_cidr="10.244.0.0/16", metrics_address=(f"127.0.1.{i}", 10249),
                healthz_address=(f"127.0.1.{i}", 10256)), f"proxy {node.name}"))
        components.append(self._dns((self.nodes[0].ip, 53), self.nodes[0].netns))
        components.append(self._ingress(self.nodes[0].ip, self.nodes[0].netns))
        return components

    async def _wait_ready(self, timeout: float = 60) -> None:
        pending = {c.name: c for c in self.components}
        deadline = time.monotonic() + timeout
        while pending:
            for name, component in list(pending.items()):
                task = self.tasks[name]
                failed = task.done() and not task.cancelled() and task.exception()
                if failed:
                    raise RuntimeError(f"{name} failed to start: {failed}")
                if await component.ready():
                    self.say(f"  {name:<19} ready")
                    del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            await asyncio.sleep(0.1)

    async def _get_node(self, name: str) -> dict[str, Any] | None:
        assert self.client is not None
        with contextlib.suppress(errors.APIError, aiohttp.ClientError):
            return await self.client.get(NODES, None, name)
        return None

    async def _node_has_cidr(self, name: str) -> bool:
        node = await self._get_node(name)
        return bool(node and node.get("spec", {}).get("podCIDR"))

    async def _node_ready(self, name: str) -> bool:
        node = await self._get_node(name)
        return bool(node) and any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in (node or {}).get("status", {}).get("conditions") or [])

    def _write_state(self) -> None:
        self.state_file.write_text(json.dumps({
            "apiserver": f"{self.api.url}/readyz", "kubeconfig": str(self.api.kubeconfig_path),
            "components": {c.name: c.where for c in self.components},
            "nodes": {n.name: n.netns for n in self.nodes}, "client_netns": topology.CLIENT if self.nodes else "",
            "dns_address": self.config.dns_service_ip, "ingress_address": self.ingress_address,
            "lb_pool": self.lb_pool}, indent=2))

    @property
    def lb_pool(self) -> str:
        return topology.LB_POOL if self.nodes else LB_POOL

    @property
    def ingress_address(self) -> str:
        return self.nodes[0].ip if self.nodes else INGRESS_ADDRESS

    async def wait(self) -> None:
        """Until a component stops on its own (a failure: it is reported) or the caller cancels."""
        done, _ = await asyncio.wait(self.tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} stopped: {task.exception()}")

    async def stop(self) -> None:
        for component in reversed(self.components):
            task = self.tasks.get(component.name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.client is not None:
            await self.client.close()
        await self.api.stop()
        if self.nodes:
            await topology.destroy(self.nodes)
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
    client = Client(load_kubeconfig(state["kubeconfig"]))
    rows: list[tuple[str, bool, str]] = []
    try:
        try:
            rows.append(("apiserver", bool(await client.request("GET", "/version")), state["apiserver"]))
        except (errors.APIError, aiohttp.ClientError, OSError):
            rows.append(("apiserver", False, state["apiserver"]))
        for name, where in state["components"].items():
            rows.append((name, await _check(client, where), where))
    finally:
        await client.close()
    return rows


async def _check(client: Client, where: str) -> bool:
    if where.startswith("http"):
        host, port = where.split("//")[1].split("/")[0].rsplit(":", 1)
        return await _http_ok((host, int(port)), "/" + where.split("/", 3)[3])
    nodes: list[dict[str, Any]] = []
    with contextlib.suppress(errors.APIError, aiohttp.ClientError, OSError):
        nodes = (await client.list(NODES))["items"]
    if where == "podCIDR assigned":
        return bool(nodes) and all(n.get("spec", {}).get("podCIDR") for n in nodes)
    name = where.removeprefix("node/")
    return any(n["metadata"]["name"] == name and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in n.get("status", {}).get("conditions") or [])
        for n in nodes)
