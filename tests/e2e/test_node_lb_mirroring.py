"""Node IPAM + lifecycle, LoadBalancer allocation and EndpointSlice mirroring against the real API server, driven
and observed with the real kubectl where a user would. The controllers run in-process; the test plays the node
agent (it renews the node's Lease) and the user."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

from svcnet.api import errors, resources
from svcnet.client import Client
from svcnet.controllers import nodes
from svcnet.controllers.endpoints_controller import EndpointsController
from svcnet.controllers.loadbalancer_controller import LoadBalancerController
from svcnet.controllers.mirroring_controller import MirroringController
from svcnet.controllers.node_lifecycle import NodeLifecycleController
from tests.e2e.conftest import Server, eventually, fixed_table, running, unique, write

NODES = resources.lookup("", "v1", "nodes")
PODS = resources.lookup("", "v1", "pods")
LEASES = resources.lookup("coordination.k8s.io", "v1", "leases")
NAMESPACES = resources.lookup("", "v1", "namespaces")
GRACE = 2.0


def _now(micro: bool = False) -> str:
    stamp = datetime.datetime.now(datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


async def kubectl(server: Server, *args: str, check: bool = True) -> str:
    return (await asyncio.to_thread(server.kubectl, *args, check=check)).stdout


def _node_yaml(name: str, ready: bool) -> str:
    status = ""
    if ready:
        now = _now()
        status = f"""status:
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: kubelet is posting ready status
    lastHeartbeatTime: "{now}"
    lastTransitionTime: "{now}"
"""
    return f"apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n{status}"


# ---- IPAM ------------------------------------------------------------------------------------------------------


async def test_nodes_get_pod_cidrs_and_keep_them_across_restarts(server: Server, tmp_path: Path) -> None:
    names = [unique("ipam") for _ in range(3)]
    cidr_of = {}

    def ipam(client: Client) -> NodeLifecycleController:
        return NodeLifecycleController(client, "127.250.0.0/23", 24, grace_seconds=3600)

    async def pod_cidr(name: str) -> str:
        return await kubectl(server, "get", "node", name, "-o", "jsonpath={.spec.podCIDR}")

    async with running(server, ipam):
        for name in names[:2]:
            await kubectl(server, "create", "-f", str(write(tmp_path, f"{name}.yaml", _node_yaml(name, True))))
            cidr_of[name] = await eventually(lambda name=name: pod_cidr(name))
        assert sorted(cidr_of.values()) == ["127.250.0.0/24", "127.250.1.0/24"]
        wide = fixed_table(await kubectl(server, "get", "nodes", "-o", "wide"))
        assert {names[0], names[1]} <= {row["NAME"] for row in wide}
        podcidrs = await kubectl(server, "get", "node", names[0], "-o", "jsonpath={.spec.podCIDRs[*]}")
        assert podcidrs == cidr_of[names[0]]

        await kubectl(server, "create", "-f", str(write(tmp_path, "full.yaml", _node_yaml(names[2], True))))

        async def not_available() -> bool:
            out = await kubectl(server, "get", "events", "-A", "--field-selector",
                                f"involvedObject.name={names[2]},reason=CIDRNotAvailable", "-o", "name")
            return bool(out.strip())

        await eventually(not_available)
        assert await pod_cidr(names[2]) == ""

    async with running(server, ipam):  # a new controller rebuilds what is taken from the nodes
        await kubectl(server, "delete", "node", names[0])
        assert await eventually(lambda: pod_cidr(names[2])) == cidr_of[names[0]]
        assert await pod_cidr(names[1]) == cidr_of[names[1]]
    await kubectl(server, "delete", "node", names[1], names[2])


# ---- lifecycle -------------------------------------------------------------------------------------------------


async def _ensure_namespace(client: Client, name: str) -> None:
    with contextlib.suppress(errors.APIError):
        await client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def _ready_pod(client: Client, ns: str, node: str, ip: str) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
                                                       "ports": [{"containerPort": 8080}]}]}}
    pod = await client.create(PODS, ns, body)
    now = _now()
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}
    return await client.update(PODS, pod, "status")


class Kubelet:
    """Renews a node's lease every `period` seconds while `renewing` is set."""

    def __init__(self, client: Client, node: str, period: float = 0.3) -> None:
        self.client, self.node, self.period = client, node, period
        self.renewing = asyncio.Event()

    async def run(self) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "namespace": nodes.LEASE_NAMESPACE},
                "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": _now(True)}}
        await self.client.create(LEASES, nodes.LEASE_NAMESPACE, body)
        while True:
            await self.renewing.wait()
            await self.client.patch(LEASES, nodes.LEASE_NAMESPACE, self.node, {"spec": {"renewTime": _now(True)}})
            await asyncio.sleep(self.period)


async def test_node_without_heartbeat_goes_not_ready_and_comes_back(server: Server, ns: str, tmp_path: Path) -> None:
    name = unique("worker")

    def lifecycle(client: Client) -> NodeLifecycleController:
        return NodeLifecycleController(client, "127.251.0.0/16", 24, grace_seconds=GRACE)

    async with running(server, lifecycle, EndpointsController) as client:
        await _ensure_namespace(client, nodes.LEASE_NAMESPACE)
        kubelet = Kubelet(client, name)
        kubelet.renewing.set()
        renew = asyncio.create_task(kubelet.run())
        try:
            await kubectl(server, "create", "-f", str(write(tmp_path, "node.yaml", _node_yaml(name, True))))
            await _ready_pod(client, ns, name, "127.251.0.5")
            await kubectl(server, "create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
            await _check_alive_while_renewing(server, client, ns, name)

            kubelet.renewing.clear()
            await eventually(lambda: _node_status(server, name, "NotReady"), timeout=GRACE + 10)
            node = await client.get(NODES, None, name)
            ready = nodes.condition(node, "Ready")
            assert ready is not None and ready["reason"] == "NodeStatusUnknown"
            assert ready["message"] == "Kubelet stopped posting node status."
            assert {(t["key"], t["effect"]) for t in node["spec"].get("taints", [])} == {
                (nodes.UNREACHABLE, "NoSchedule"), (nodes.UNREACHABLE, "NoExecute")}
            await eventually(lambda: _pod_ready(client, ns, "False"))
            await eventually(lambda: _not_ready_address(server, ns, "127.251.0.5"))

            kubelet.renewing.set()
            await eventually(lambda: _taints(server, name, ""), timeout=GRACE + 10)
        finally:
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
    await kubectl(server, "delete", "node", name)


async def _check_alive_while_renewing(server: Server, client: Client, ns: str, name: str) -> None:
    await eventually(lambda: _pod_cidr_set(server, name))
    await asyncio.sleep(GRACE + 0.5)  # longer than the grace period: the renewed lease must keep it Ready
    assert await _node_status(server, name, "Ready")
    assert await _taints(server, name, "")
    assert await _pod_ready(client, ns, "True")


async def _pod_cidr_set(server: Server, name: str) -> bool:
    return bool(await kubectl(server, "get", "node", name, "-o", "jsonpath={.spec.podCIDR}"))


async def _node_status(server: Server, name: str, status: str) -> bool:
    rows = fixed_table(await kubectl(server, "get", "node", name))
    return rows[0]["STATUS"] == status


async def _taints(server: Server, name: str, expected: str) -> bool:
    return await kubectl(server, "get", "node", name, "-o", "jsonpath={.spec.taints[*].key}") == expected


async def _pod_ready(client: Client, ns: str, status: str) -> bool:
    pod = await client.get(PODS, ns, "web")
    ready = nodes.condition(pod, "Ready")
    return ready is not None and ready["status"] == status


async def _not_ready_address(server: Server, ns: str, ip: str) -> bool:
    out = await kubectl(server, "get", "endpoints", "web", "-n", ns,
                        "-o", "jsonpath={.subsets[*].notReadyAddresses[*].ip}", check=False)
    return out == ip


# ---- LoadBalancer ----------------------------------------------------------------------------------------------


async def _external_ip(server: Server, ns: str, name: str) -> str:
    rows = fixed_table(await kubectl(server, "get", "svc", name, "-n", ns))
    return rows[0]["EXTERNAL-IP"]


async def test_loadbalancer_services_get_addresses_from_the_pool(server: Server, ns: str) -> None:
    def lb(client: Client) -> LoadBalancerController:
        return LoadBalancerController(client, ("127.240.0.0/30",))  # two usable addresses: .1 and .2

    async with running(server, lb):
        for name in ("one", "two", "three"):
            await kubectl(server, "create", "service", "loadbalancer", name, "--tcp=80:8080", "-n", ns)
        taken = {await eventually(lambda n=n: _assigned(server, ns, n)) for n in ("one", "two")}
        assert taken == {"127.240.0.1", "127.240.0.2"}

        async def pending_with_event() -> bool:
            described = await kubectl(server, "describe", "svc", "three", "-n", ns)
            return "AllocationFailed" in described and "no available IPs" in described

        await eventually(pending_with_event)
        assert await _external_ip(server, ns, "three") == "<pending>"
        described = await kubectl(server, "describe", "svc", "one", "-n", ns)
        assert "IPAllocated" in described
        ingress = json.loads(await kubectl(server, "get", "svc", "one", "-n", ns,
                                           "-o", "jsonpath={.status.loadBalancer.ingress}"))
        assert ingress[0]["ipMode"] == "VIP"

        freed = await _external_ip(server, ns, "one")
        await kubectl(server, "delete", "svc", "one", "-n", ns)
        assert await eventually(lambda: _assigned(server, ns, "three")) == freed


async def _assigned(server: Server, ns: str, name: str) -> str | None:
    ip = await _external_ip(server, ns, name)
    return None if ip in ("<pending>", "<none>", "") else ip


# ---- mirroring ---------------------------------------------------------------------------------------------------

EXTERNAL = """apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  ports:
  - name: http
    port: 80
    targetPort: 9376
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  labels:
    team: storage
subsets:
- addresses:
  - ip: 127.0.0.21
  - ip: 127.0.0.22
  notReadyAddresses:
  - ip: 127.0.0.23
  ports:
  - name: http
    port: 9376
"""


async def test_selectorless_service_endpoints_are_mirrored(server: Server, ns: str, tmp_path: Path) -> None:
    async with running(server, MirroringController):
        await kubectl(server, "create", "-n", ns, "-f", str(write(tmp_path, "ext.yaml", EXTERNAL)))

        async def mirrored() -> dict[str, str] | None:
            rows = fixed_table(await kubectl(server, "get", "endpointslices", "-n", ns))
            return next((r for r in rows if r["NAME"].startswith("ext-mirror-")), None)

        row = await eventually(mirrored)
        assert row["ADDRESSTYPE"] == "IPv4" and row["PORTS"] == "9376"
        assert row["ENDPOINTS"] == "127.0.0.21,127.0.0.22,127.0.0.23"
        body = json.loads(await kubectl(server, "get", "endpointslice", row["NAME"], "-n", ns, "-o", "json"))
        assert body["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslicemirroring-controller.k8s.io"
        assert body["metadata"]["labels"]["kubernetes.io/service-name"] == "ext"
        assert body["metadata"]["labels"]["team"] == "storage"
        assert [e["conditions"]["ready"] for e in body["endpoints"]] == [True, True, False]

        await kubectl(server, "label", "endpoints", "ext", "-n", ns, "endpointslice.kubernetes.io/skip-mirror=true")

        async def gone() -> bool:
            return await mirrored() is None

        await eventually(gone)
        await kubectl(server, "label", "endpoints", "ext", "-n", ns, "endpointslice.kubernetes.io/skip-mirror-")
        await eventually(mirrored)
        await kubectl(server, "delete", "endpoints", "ext", "-n", ns)
        await eventually(gone)
