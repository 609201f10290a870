"""Service health checks on `healthCheckNodePort`, as kube-proxy answers them for LoadBalancer services with
`externalTrafficPolicy: Local`: any GET gets 200 when this node has a ready endpoint of the service and 503 when
it has none, so an external load balancer sends traffic only to nodes that can serve it locally.

`local_counts` (pure) computes what to serve from a snapshot; `HealthCheckServers.sync` opens a listener per
port that appears and closes the ones that disappear. Body and headers are kube-proxy's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from aiohttp import web

from svcnet.proxy import model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceHealth:
    namespace: str
    name: str
    local_endpoints: int


def local_counts(snapshot: model.Snapshot, node_name: str) -> dict[int, ServiceHealth]:
    """healthCheckNodePort -> the service and its number of ready endpoints on this node."""
    found: dict[int, ServiceHealth] = {}
    for info in snapshot.services.values():
        if not (info.external_local and info.health_check_node_port):
            continue
        local = {(e.ip, e.port) for e in snapshot.endpoints.get(info.name, ()) if e.node_name == node_name and e.ready}
        previous = found.get(info.health_check_node_port)
        count = len(local) + (previous.local_endpoints if previous else 0)
        found[info.health_check_node_port] = ServiceHealth(info.name.namespace, info.name.name, count)
    return found


def body(health: ServiceHealth) -> tuple[int, bytes]:
    payload = {"service": {"namespace": health.namespace, "name": health.name},
               "localEndpoints": health.local_endpoints, "serviceProxyHealthy": True}
    return (200 if health.local_endpoints else 503), json.dumps(payload).encode()


class HealthCheckServers:
    def __init__(self, address: str = "0.0.0.0") -> None:  # noqa: S104 — kube-proxy listens on all addresses
        self.address = address
        self.current: dict[int, ServiceHealth] = {}
        self.runners: dict[int, web.AppRunner] = {}

    def _app(self, port: int) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            status, payload = body(self.current[port])
            return web.Response(status=status, body=payload, headers={
                "Content-Type": "application/json", "X-Content-Type-Options": "nosniff",
                "X-Load-Balancing-Endpoint-Weight": str(self.current[port].local_endpoints)})
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", answer)
        return app

    async def sync(self, wanted: dict[int, ServiceHealth]) -> list[str]:
        self.current = dict(wanted)
        problems = []
        for port in [p for p in self.runners if p not in wanted]:
            await self.runners.pop(port).cleanup()
        for port in [p for p in wanted if p not in self.runners]:
            runner = web.AppRunner(self._app(port), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, self.address, port).start()
            except OSError as exc:
                await runner.cleanup()
                problems.append(f"healthCheckNodePort {port}: {exc.strerror}")
                continue
            self.runners[port] = runner
        return problems

    async def close(self) -> None:
        await self.sync({})
