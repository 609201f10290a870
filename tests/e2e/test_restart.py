"""ClusterIP / NodePort allocation and what survives an API server restart: reservations and watch history.

The server of this module uses a small service range (10.100.0.0/26: 62 usable addresses, .1 is the `kubernetes`
service) so that exhaustion, reuse and the restart guarantees are observable rather than left to chance.
The tests run in order; each removes the services it created.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from queue import Queue
from typing import Any

import aiohttp
import pytest
from kubernetes import client, watch

from tests.e2e.conftest import Server, start_server

CIDR = ipaddress.ip_network("10.100.0.0/26")
USABLE = CIDR.num_addresses - 2
NODE_PORTS = range(30000, 32768)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, "--service-cluster-ip-range", str(CIDR))


def _svc(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **(spec or {})}}


class Api:
    """Concurrent requests with aiohttp and the admin token."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def _many(self, requests: list[tuple[str, str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.server.admin_token}"},
                connector=aiohttp.TCPConnector(ssl=self.server.ssl_context(), limit=100),
                timeout=aiohttp.ClientTimeout(total=60)) as http:
            async def one(method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
                async with http.request(method, self.server.url + path, json=body) as response:
                    return response.status, await response.json()

            return await asyncio.gather(*(one(*r) for r in requests))

    def many(self, requests: list[tuple[str, str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        return asyncio.run(self._many(requests))

    def create_services(self, ns: str, objs: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        return self.many([("POST", f"/api/v1/namespaces/{ns}/services", obj) for obj in objs])

    def delete_services(self, ns: str, names: list[str]) -> None:
        results = self.many([("DELETE", f"/api/v1/namespaces/{ns}/services/{n}", None) for n in names])
        assert all(status == 200 for status, _ in results), results

    def held_ips(self) -> dict[str, str]:
        """ClusterIP -> namespace/name over all services."""
        items = self.server.http("GET", "/api/v1/services").json()["items"]
        return {ip: f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in items
                for ip in s["spec"].get("clusterIPs") or [] if ip != "None"}

    def cleanup(self, ns: str) -> None:
        items = self.server.http("GET", f"/api/v1/namespaces/{ns}/services").json()["items"]
        self.delete_services(ns, [s["metadata"]["name"] for s in items])


@pytest.fixture
def api(server: Server) -> Api:
    return Api(server)


def _ips(results: list[tuple[int, dict[str, Any]]]) -> list[str]:
    assert all(status == 201 for status, _ in results), [b for s, b in results if s != 201][:3]
    return [body["spec"]["clusterIP"] for _, body in results]


def test_concurrent_creates_get_distinct_cluster_ips(api: Api, ns: str) -> None:
    before = api.held_ips()
    ips = _ips(api.create_services(ns, [_svc(f"s{i}") for i in range(50)]))
    assert len(set(ips)) == 50, sorted(ips)
    assert all(ipaddress.ip_address(ip) in CIDR for ip in ips)
    assert not set(ips) & set(before), "a new service got an address another service holds"
    assert not set(ips) & {str(CIDR.network_address), str(CIDR.broadcast_address)}
    held = api.held_ips()
    assert all(held[ip] == f"{ns}/s{i}" for i, ip in enumerate(ips))
    api.cleanup(ns)
    assert set(api.held_ips()) == set(before)


def test_node_ports_are_distinct_and_in_range(api: Api, server: Server, ns: str) -> None:
    spec = {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}
    results = api.create_services(ns, [_svc(f"np{i}", spec) for i in range(20)])
    assert all(status == 201 for status, _ in results), results[:2]
    ports = [p["nodePort"] for _, body in results for p in body["spec"]["ports"]]
    assert len(ports) == 40 and len(set(ports)) == 40
    assert all(p in NODE_PORTS for p in ports)
    taken = ports[0]
    status = server.http("POST", f"/api/v1/namespaces/{ns}/services",
                         _svc("clash", {"type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]}))
    assert status.status_code == 422, status.text
    assert [c["field"] for c in status.json()["details"]["causes"]] == ["spec.ports[0].nodePort"]
    assert "provided port is already allocated" in status.json()["message"]
    api.cleanup(ns)
    # freed: the same node port can be requested again
    again = server.http("POST", f"/api/v1/namespaces/{ns}/services",
                        _svc("clash", {"type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]}))
    assert again.status_code == 201, again.text
    api.cleanup(ns)


def test_ip_is_reusable_after_delete(api: Api, server: Server, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/services"
    ip = server.http("POST", path, _svc("first")).json()["spec"]["clusterIP"]
    clash = server.http("POST", path, _svc("second", {"clusterIP": ip}))
    assert clash.status_code == 422, clash.text
    assert "already allocated" in clash.json()["message"]
    assert server.http("DELETE", f"{path}/first").status_code == 200
    second = server.http("POST", path, _svc("second", {"clusterIP": ip}))
    assert second.status_code == 201, second.text
    assert second.json()["spec"]["clusterIP"] == ip
    # a rejected create (invalid) leaves no reservation behind
    bad = server.http("POST", path, _svc("bad", {"ports": [{"port": 0}]}))
    assert bad.status_code == 422
    api.cleanup(ns)
    assert server.http("POST", path, _svc("third", {"clusterIP": ip})).status_code == 201
    api.cleanup(ns)


def test_full_range_then_the_freed_ip_is_handed_out(api: Api, server: Server, ns: str) -> None:
    free = USABLE - len(api.held_ips())
    ips = _ips(api.create_services(ns, [_svc(f"f{i}") for i in range(free)]))
    assert len(set(ips)) == free
    assert len(api.held_ips()) == USABLE
    full = server.http("POST", f"/api/v1/namespaces/{ns}/services", _svc("one-too-many"))
    assert full.status_code != 201 and full.json()["kind"] == "Status", full.text
    assert "range is full" in full.json()["message"]
    api.delete_services(ns, ["f7"])
    reused = server.http("POST", f"/api/v1/namespaces/{ns}/services", _svc("one-too-many"))
    assert reused.status_code == 201, reused.text
    assert reused.json()["spec"]["clusterIP"] == ips[7]
    api.cleanup(ns)


def test_restart_never_hands_out_an_ip_a_service_holds(api: Api, server: Server, ns: str) -> None:
    ips = _ips(api.create_services(ns, [_svc(f"r{i}") for i in range(40)]))
    api.delete_services(ns, [f"r{i}" for i in range(0, 40, 4)])  # 10 deleted, 30 survive
    survivors = api.held_ips()
    assert len(survivors) == 31 and set(ips) - set(survivors) == {ips[i] for i in range(0, 40, 4)}
    server.restart()
    assert api.held_ips() == survivors
    free = USABLE - len(survivors)
    new_ips = _ips(api.create_services(ns, [_svc(f"after{i}") for i in range(free)]))
    assert len(set(new_ips)) == free
    assert not set(new_ips) & set(survivors), "after a restart a held ClusterIP was handed out again"
    full = server.http("POST", f"/api/v1/namespaces/{ns}/services", _svc("one-too-many"))
    assert full.status_code != 201, full.text
    # a specific held address is refused after the restart as well
    clash = server.http("POST", f"/api/v1/namespaces/{ns}/services", _svc("clash", {"clusterIP": ips[1]}))
    assert clash.status_code == 422, clash.text
    api.cleanup(ns)


def _headless(name: str, labels: dict[str, str] | None = None) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name, labels=labels), spec=client.V1ServiceSpec(
        cluster_ip="None", selector={"app": name}, ports=[client.V1ServicePort(port=80)]))


def _watch_thread(v1: client.CoreV1Api, ns: str, rv: str, until: str | None,
                  out: Queue[Any]) -> threading.Thread:
    def run() -> None:
        w = watch.Watch()
        try:
            for event in w.stream(v1.list_namespaced_service, ns, resource_version=rv, timeout_seconds=60):
                obj = event["object"]
                out.put((event["type"], obj.metadata.name, obj.metadata.resource_version))
                if obj.metadata.name == until:
                    w.stop()
        except Exception as exc:  # noqa: BLE001 — the connection drops when the server stops
            out.put(("EXCEPTION", repr(exc), ""))
        out.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _next(out: Queue[Any], timeout: float = 20) -> Any:
    return out.get(timeout=timeout)


def test_watch_resumes_after_restart_without_gaps_or_repeats(server: Server, ns: str) -> None:
    v1 = client.CoreV1Api(server.python_client())
    v1.create_namespaced_service(ns, _headless("before-1"))
    rv0 = v1.list_namespaced_service(ns).metadata.resource_version
    out: Queue[Any] = Queue()
    first = _watch_thread(v1, ns, rv0, None, out)
    b2 = v1.create_namespaced_service(ns, _headless("before-2"))
    m1 = v1.patch_namespaced_service("before-1", ns, {"metadata": {"labels": {"step": "1"}}})
    seen = [_next(out), _next(out)]
    assert seen == [("ADDED", "before-2", b2.metadata.resource_version),
                    ("MODIFIED", "before-1", m1.metadata.resource_version)], seen
    last_rv = seen[-1][2]
    # a change the first watcher may or may not see, made before the restart
    gap = v1.create_namespaced_service(ns, _headless("gap-1"))

    server.stop()
    rest = []
    while (item := _next(out)) is not None:  # the open watch ends when the server goes away
        rest.append(item)
    first.join(5)
    assert not first.is_alive()
    assert all(e[0] == "EXCEPTION" or e[1] == "gap-1" for e in rest), rest

    server.start()
    v1 = client.CoreV1Api(server.python_client())
    expected: list[tuple[str, str, str | None]] = [("ADDED", "gap-1", gap.metadata.resource_version)]
    a1 = v1.create_namespaced_service(ns, _headless("after-1"))
    expected.append(("ADDED", "after-1", a1.metadata.resource_version))
    m2 = v1.patch_namespaced_service("before-2", ns, {"metadata": {"labels": {"step": "2"}}})
    expected.append(("MODIFIED", "before-2", m2.metadata.resource_version))
    v1.delete_namespaced_service("before-1", ns)
    expected.append(("DELETED", "before-1", None))
    for step in ("3", "4"):
        m = v1.patch_namespaced_service("after-1", ns, {"metadata": {"labels": {"step": step}}})
        expected.append(("MODIFIED", "after-1", m.metadata.resource_version))
    sentinel = v1.create_namespaced_service(ns, _headless("sentinel"))
    expected.append(("ADDED", "sentinel", sentinel.metadata.resource_version))

    out = Queue()
    resumed = _watch_thread(v1, ns, last_rv, "sentinel", out)
    events = []
    while (item := _next(out)) is not None:
        events.append(item)
    resumed.join(5)
    assert [(t, n) for t, n, _ in events] == [(t, n) for t, n, _ in expected], events
    for got, want in zip(events, expected, strict=True):
        if want[2] is not None:
            assert got[2] == want[2], (got, want)
    rvs = [int(rv) for _, _, rv in events]
    assert rvs == sorted(set(rvs)) and rvs[0] > int(last_rv), rvs
