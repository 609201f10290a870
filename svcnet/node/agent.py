"""`svcnet node`: the node agent (kubelet's role) — registers its Node, keeps a Lease fresh, and runs the pods
bound to it through a runtime, one PodWorker per pod.

Invariants: the agent reads and writes only through the Kubernetes API (so it also joins a real cluster's API);
pods are watched with the field selector `spec.nodeName=<name>`; a pod's address comes from the node's
podCIDR and is kept across agent restarts when it is free; a clean shutdown stops every pod process and sandbox
(processes also die with the agent, so a `kill -9` leaves none behind) and the next start runs the pods again.
The kubelet-style HTTP API for logs/exec/attach listens on the node address (no authentication yet: bind it to
loopback or a node-internal address only).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from svcnet.api import annotations, errors, resources
from svcnet.client import Client, Handlers, Informer, object_key
from svcnet.client.events import EventRecorder
from svcnet.node import podspec
from svcnet.node.access import ContainerRef
from svcnet.node.hostports import IptablesHostPorts, RelayHostPorts
from svcnet.node.images import Catalog
from svcnet.node.ipam import PodIPs
from svcnet.node.pod_worker import PodWorker
from svcnet.node.runtime.netns import NetnsRuntime
from svcnet.node.runtime.process import ContainerProcess, ProcessRuntime

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = resources.lookup("", "v1", "pods")
NODES = resources.lookup("", "v1", "nodes")
SERVICES = resources.lookup("", "v1", "services")
LEASES = resources.lookup("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = resources.lookup("", "v1", "configmaps")
SECRETS = resources.lookup("", "v1", "secrets")
VERSION = "v1.32.0-svcnet"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    node_ip: str = "127.0.0.1"
    kubelet_address: str = ""  # where the kubelet API listens when not on node_ip (a node in a network namespace)
    data_dir: Path = Path("/var/lib/svcnet/node")
    kubelet_port: int = 10250  # 0 picks a free port
    pod_cidr: str = ""  # set on the Node when it has none (otherwise the controller manager assigns one)
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    max_pods: int = 110
    restart_backoff: float = 10.0
    lease_seconds: float = 40.0
    image_catalog: Path | None = None
    runtime: str = "process"  # or "netns" (root): pods in network namespaces behind a bridge in `node_netns`
    node_netns: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    def __init__(self, client: Client, config: NodeConfig, runtime: ProcessRuntime | None = None) -> None:
        assert PODS and NODES and SERVICES and LEASES and CONFIGMAPS and SECRETS
        self.client = client
        self.config = config
        self.runtime = runtime or _make_runtime(config)
        self.catalog = Catalog.load(config.image_catalog)
        self.hostports: RelayHostPorts | IptablesHostPorts = IptablesHostPorts(self.runtime.node_netns) \
            if isinstance(self.runtime, NetnsRuntime) else RelayHostPorts()
        self.recorder = EventRecorder(client, "kubelet", config.name)
        self.pods = Informer(client, PODS, field_selector=f"spec.nodeName={config.name}")
        self.services = Informer(client, SERVICES)
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self.ips: PodIPs | None = None
        self.kubelet_port = config.kubelet_port
        self.http: aiohttp.ClientSession
        self._host_resolv = _read("/etc/resolv.conf")
        self.pods.add_handlers(Handlers(on_add=self._pod_changed, on_update=lambda old, new: self._pod_changed(new),
                                        on_delete=self._pod_deleted))

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        runner = await self._serve_kubelet_api()
        tasks = [asyncio.create_task(self.services.run())]
        try:
            await self._register()
            await self.services.synced.wait()
            tasks += [asyncio.create_task(self._heartbeat()), asyncio.create_task(self.pods.run())]
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await self._stop_pods()
            if isinstance(self.runtime, NetnsRuntime) and self.config.node_netns.startswith("svcnet-"):
                await self.runtime.remove_node_netns()
            if runner is not None:
                await runner.cleanup()
            await self.http.close()

    async def _stop_pods(self) -> None:
        workers = [w.task for w in self.workers.values() if w.task is not None]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _serve_kubelet_api(self) -> Any:
        try:
            from aiohttp import web

            from svcnet.node import kubelet_api
        except ImportError:
            log.warning("the kubelet API (logs/exec) is not available in this build")
            return None
        runner = web.AppRunner(kubelet_api.make_app(self))
        await runner.setup()
        site = web.TCPSite(runner, self.config.kubelet_address or self.config.node_ip, self.config.kubelet_port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.kubelet_port = sockets[0].getsockname()[1]
        return runner

    # ---- the Node and its Lease --------------------------------------------------------------------------------

    def _node_status(self) -> Obj:
        now = _now()
        cpus = str(os.cpu_count() or 1)
        memory = f"{_memory_kib()}Ki"
        capacity = {"cpu": cpus, "memory": memory, "pods": str(self.config.max_pods), "ephemeral-storage": "0"}
        conditions = [("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory "
                       "available"), ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk "
                       "pressure"), ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID "
                       "available"), ("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
        uname = platform.uname()
        return {"capacity": capacity, "allocatable": capacity,
                "addresses": [{"type": "InternalIP", "address": self.config.node_ip},
                              {"type": "Hostname", "address": self.config.name}],
                "conditions": [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now,
                                "lastTransitionTime": now} for t, s, r, m in conditions],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": {"machineID": _read("/etc/machine-id").strip(), "systemUUID": "", "bootID": "",
                             "kernelVersion": uname.release, "osImage": _os_image(),
                             "containerRuntimeVersion": "svcnet-process://1", "kubeletVersion": VERSION,
                             "kubeProxyVersion": VERSION, "operatingSystem": "linux",
                             "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine,
                                                                                         uname.machine)}}

    async def _register(self) -> None:
        labels = {"kubernetes.io/hostname": self.config.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": self._node_status()["nodeInfo"]["architecture"], **self.config.labels}
        node: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.config.name, "labels": labels},
                     "spec": {}}
        if self.config.kubelet_address:
            node["metadata"]["annotations"] = {annotations.KUBELET_ADDRESS: self.config.kubelet_address}
        if self.config.pod_cidr:
            node["spec"] = {"podCIDR": self.config.pod_cidr, "podCIDRs": [self.config.pod_cidr]}
        try:
            current = await self.client.create(NODES, None, node)
        except errors.APIError as exc:
            if exc.code != 409:
                raise
            current = await self.client.get(NODES, None, self.config.name)
            if self.config.kubelet_address:
                current = await self.client.patch(NODES, None, self.config.name, {"metadata": node["metadata"]})
            if self.config.pod_cidr and not current.get("spec", {}).get("podCIDR"):
                current = await self.client.patch(NODES, None, self.config.name, {"spec": node["spec"]})
        await self._write_node_status()
        self._take_pod_cidr(current)

    def _take_pod_cidr(self, node: Obj) -> None:
        cidr = node.get("spec", {}).get("podCIDR")
        if cidr and self.ips is None:
            if isinstance(self.runtime, NetnsRuntime):
                self.runtime.configure(cidr)
            self.ips = PodIPs(cidr)
            log.info("node %s: pod addresses from %s", self.config.name, cidr)
            for worker in self.workers.values():
                worker.wake.set()

    async def _write_node_status(self) -> Obj:
        node: Obj = await self.client.patch(NODES, None, self.config.name, {"status": self._node_status()},
                                            subresource="status")
        return node

    async def _heartbeat(self) -> None:
        interval = max(self.config.lease_seconds / 4, 0.2)
        status_every = max(int(60 / interval), 1)
        beat = 0
        while True:
            try:
                await self._renew_lease()
                node = await self.client.get(NODES, None, self.config.name)
                self._take_pod_cidr(node)
                ready = next((c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"),
                             {})
                if beat % status_every == 0 or ready.get("status") != "True":
                    await self._write_node_status()
            except (errors.APIError, aiohttp.ClientError, OSError) as exc:
                log.warning("node %s heartbeat: %s", self.config.name, exc)
            beat += 1
            await asyncio.sleep(interval)

    async def _renew_lease(self) -> None:
        assert LEASES is not None
        spec = {"holderIdentity": self.config.name, "leaseDurationSeconds": int(self.config.lease_seconds),
                "renewTime": _micro_now()}
        try:
            await self.client.patch(LEASES, "kube-node-lease", self.config.name, {"spec": spec})
        except errors.APIError as exc:
            if exc.code != 404:
                raise
            await self.client.create(LEASES, "kube-node-lease", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": "kube-node-lease"}, "spec": spec})

    # ---- pods --------------------------------------------------------------------------------------------------

    def _pod_changed(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and \
                not pod["metadata"].get("deletionTimestamp"):
            return  # finished before this agent started
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        worker.task = asyncio.create_task(worker.run())
        worker.task.add_done_callback(lambda _: self.workers.pop(uid, None))

    def _pod_deleted(self, pod: Obj) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.deleted()

    def pod_dir(self, uid: str) -> Path:
        return self.config.data_dir / "pods" / uid

    def allocate_ip(self, pod: Obj) -> str | None:
        if pod.get("spec", {}).get("hostNetwork"):
            return self.config.node_ip
        if self.ips is None:
            return None
        return self.ips.allocate((pod.get("status") or {}).get("podIP", ""))

    def release_ip(self, ip: str) -> None:
        if self.ips is not None and ip != self.config.node_ip:
            self.ips.release(ip)

    def resolv_conf(self, pod: Obj) -> str:
        return podspec.resolv_conf(pod, list(self.config.cluster_dns), self.config.cluster_domain, self._host_resolv)

    async def container_env(self, pod: Obj, container: Obj, pod_ip: str) -> dict[str, str]:
        namespace = pod["metadata"].get("namespace", "default")
        config_maps, secrets = await self._referenced(namespace, container)
        ctx = podspec.PodContext(pod_ip, self.config.node_ip, self.config.name, config_maps, secrets)
        return podspec.container_env(pod, container, ctx, self.services.items())

    async def _referenced(self, namespace: str, container: Obj) -> tuple[dict[str, Obj], dict[str, Obj]]:
        wanted: dict[str, set[str]] = {"configmap": set(), "secret": set()}
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
                if key in source:
                    wanted[kind].add(source[key].get("name", ""))
        for entry in container.get("envFrom") or []:
            for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
                if key in entry:
                    wanted[kind].add(entry[key].get("name", ""))
        found: dict[str, dict[str, Obj]] = {"configmap": {}, "secret": {}}
        for kind, info in (("configmap", CONFIGMAPS), ("secret", SECRETS)):
            assert info is not None
            for name in wanted[kind]:
                with contextlib.suppress(errors.APIError):
                    found[kind][name] = (await self.client.get(info, namespace, name)).get("data") or {}
        return found["configmap"], found["secret"]

    async def write_status(self, namespace: str, name: str, uid: str, status: Obj) -> Obj:
        assert PODS is not None
        result: Obj = await self.client.patch(PODS, namespace, name, {"metadata": {"uid": uid}, "status": status},
                                              subresource="status")
        return result

    async def remove_pod(self, pod: Obj) -> None:
        assert PODS is not None
        meta = pod["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}}
        path = f"/api/v1/namespaces/{meta.get('namespace', 'default')}/pods/{meta['name']}"
        with contextlib.suppress(errors.APIError):
            await self.client.request("DELETE", path, body)

    async def event(self, pod: Obj, event_type: str, reason: str, message: str) -> None:
        with contextlib.suppress(errors.APIError, aiohttp.ClientError, OSError):
            await self.recorder.record(pod, event_type, reason, message)

    # ---- ContainerAccess (for the kubelet API) -----------------------------------------------------------------

    def _find(self, namespace: str, pod: str, container: str) -> tuple[PodWorker, Any]:
        worker = next((w for w in self.workers.values() if object_key(w.pod) == f"{namespace}/{pod}"), None)
        if worker is None:
            raise LookupError(f'pod "{pod}" not found in namespace "{namespace}" on node "{self.config.name}"')
        candidates = [*worker.containers, *worker.init]
        chosen = next((c for c in candidates if c.name == container), None) if container else worker.containers[0]
        if chosen is None:
            raise LookupError(f'container "{container}" not found in pod "{namespace}/{pod}"')
        return worker, chosen

    def container(self, namespace: str, pod: str, container: str) -> ContainerRef:
        worker, chosen = self._find(namespace, pod, container)
        sandbox = worker.sandbox
        pod_dir = sandbox.pod_dir if sandbox else self.pod_dir(worker.uid)
        running = chosen.process is not None and chosen.process.running
        return ContainerRef(namespace, pod, chosen.name, pod_dir / "logs" / chosen.name,
                            sandbox.exec_prefix() if sandbox else (), self._exec_env(worker, chosen),
                            str(chosen.spec.get("workingDir") or pod_dir), running,
                            stdin_once=bool(chosen.spec.get("stdinOnce")))

    def _exec_env(self, worker: PodWorker, chosen: Any) -> dict[str, str]:
        ip = worker.sandbox.ip if worker.sandbox else ""
        ctx = podspec.PodContext(ip, self.config.node_ip, self.config.name)
        try:
            env = podspec.container_env(worker.pod, {**chosen.spec, "env": [v for v in chosen.spec.get("env") or []
                                                                           if "valueFrom" not in v]},
                                        ctx, self.services.items())
        except podspec.SpecError:
            env = {}
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        return {"PATH": path, **env}

    def _process(self, ref: ContainerRef) -> ContainerProcess | None:
        _, chosen = self._find(ref.namespace, ref.pod, ref.container)
        process: ContainerProcess | None = chosen.process
        return process

    async def output(self, ref: ContainerRef) -> Any:
        process = self._process(ref)
        if process is None:
            return
        async for item in self.runtime.follow(process):
            yield item

    def stdin(self, ref: ContainerRef) -> asyncio.StreamWriter | None:
        process = self._process(ref)
        return process.proc.stdin if process is not None and process.running else None


def _make_runtime(config: NodeConfig) -> ProcessRuntime:
    if config.runtime == "process":
        return ProcessRuntime()
    if config.runtime == "netns":
        return NetnsRuntime(config.node_netns or f"svcnet-node-{config.name}")
    raise ValueError(f"unknown runtime {config.runtime!r} (process or netns)")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"
