"""`svcnet ingress`: the ingress controller — informers feed the pure route compiler, the HTTP server serves the
compiled table, and the compiled statuses are written back through the API.

Theory of operation (level-triggered, like the DNS server): any change of a watched object schedules one
recompile `recompile_delay` later (bursts coalesce); a recompile swaps the new table into the server (requests
already in flight finish on the table they started with) and then writes the status of each of our objects whose
status differs from the desired one (`PUT …/status` with the cached resourceVersion: a conflict is harmless, the
newer object's event recompiles again). A periodic resync recompiles anyway, so a failed status write is retried.
Problems (unknown services, bad secrets, …) are logged when the set of problems changes, not on every compile.

Invariants: nothing is served until every informer has synced (the listeners open with the first table); the
Gateway API informers run only when the API server serves gateway.networking.k8s.io (a real cluster without the
CRDs still gets Ingress); this module does I/O only — routing decisions live in `routes` and `match`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from svcnet.api import errors, resources
from svcnet.api.resources import ResourceInfo
from svcnet.client import Client, Handlers, Informer
from svcnet.ingress import routes
from svcnet.ingress.common import Config as RoutesConfig
from svcnet.ingress.common import Problem, StatusKey
from svcnet.ingress.proxy import IngressConfig, IngressServer

log = logging.getLogger(__name__)
GATEWAY_GROUP = "gateway.networking.k8s.io"
CORE_KINDS: dict[str, tuple[str, str, str]] = {
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "IngressClass": ("networking.k8s.io", "v1", "ingressclasses"),
    "Service": ("", "v1", "services"),
    "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices"),
    "Secret": ("", "v1", "secrets"),
    "Namespace": ("", "v1", "namespaces"),
}
GATEWAY_KINDS: dict[str, tuple[str, str, str]] = {
    "GatewayClass": (GATEWAY_GROUP, "v1", "gatewayclasses"),
    "Gateway": (GATEWAY_GROUP, "v1", "gateways"),
    "HTTPRoute": (GATEWAY_GROUP, "v1", "httproutes"),
    "ReferenceGrant": (GATEWAY_GROUP, "v1beta1", "referencegrants"),
}
CLASS_NAME = "svcnet"


@dataclass(frozen=True)
class ControllerConfig:
    routes: RoutesConfig = RoutesConfig()
    server: IngressConfig = IngressConfig()
    health_address: tuple[str, int] | None = ("127.0.0.1", 10254)  # ingress-nginx's /healthz and /metrics port
    recompile_delay: float = 0.02
    resync_period: float = 30.0


def class_objects(default: bool = True) -> list[tuple[ResourceInfo, dict[str, Any]]]:
    """The IngressClass and GatewayClass named `svcnet` that select this controller (`svcnet up` creates them)."""
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    config = RoutesConfig()
    ingress_class = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                     "metadata": {"name": CLASS_NAME, "annotations": annotations},
                     "spec": {"controller": config.ingress_controller}}
    gateway_class = {"apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": CLASS_NAME},
                     "spec": {"controllerName": config.gateway_controller,
                              "description": "svcnet's built-in ingress and Gateway API controller"}}
    return [(resources.require(*CORE_KINDS["IngressClass"]), ingress_class),
            (resources.require("gateway.networking.k8s.io", "v1", "gatewayclasses"), gateway_class)]


async def ensure_classes(client: Client, default: bool = True) -> None:
    """Create the `svcnet` classes where missing (an existing class of that name is left as it is)."""
    for info, obj in class_objects(default):
        with contextlib.suppress(errors.APIError):
            await client.create(info, None, obj)


class IngressController:
    def __init__(self, client: Client, config: ControllerConfig) -> None:
        self.client = client
        self.config = config
        self.server = IngressServer(config.server)
        self.informers: dict[str, Informer] = {}
        self.compiled: routes.Compiled | None = None
        self.problems: tuple[Problem, ...] = ()
        self.compiles = 0
        self._pending = False
        self._writes: asyncio.Task[None] | None = None

    async def _serves_gateway_api(self) -> bool:
        try:
            await self.client.request("GET", f"/apis/{GATEWAY_GROUP}/v1")
        except errors.APIError as exc:
            if exc.code == 404:
                log.warning("the API server does not serve %s: Gateway API objects are ignored", GATEWAY_GROUP)
                return False
            raise
        return True

    async def _make_informers(self) -> None:
        kinds = dict(CORE_KINDS)
        if await self._serves_gateway_api():
            kinds.update(GATEWAY_KINDS)
        changed = Handlers(on_add=lambda o: self._changed(), on_update=lambda o, n: self._changed(),
                           on_delete=lambda o: self._changed())
        for kind, gvr in kinds.items():
            informer = Informer(self.client, resources.require(*gvr))
            informer.add_handlers(changed)
            self.informers[kind] = informer

    # ---- compiling -----------------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.compiled is None or self._pending:
            return
        self._pending = True
        asyncio.get_running_loop().call_later(self.config.recompile_delay, self.recompile)

    def recompile(self) -> None:
        self._pending = False
        compiled = routes.compile_routes({kind: inf.items() for kind, inf in self.informers.items()},
                                         self.config.routes)
        self.compiled = compiled
        self.compiles += 1
        self.server.set_table(compiled.table)
        if compiled.problems != self.problems:
            for problem in sorted(set(compiled.problems) - set(self.problems), key=str):
                log.warning("%s", problem)
            self.problems = compiled.problems
        if self._writes is None or self._writes.done():
            self._writes = asyncio.get_running_loop().create_task(self._write_statuses(compiled.statuses))
        else:  # a write round is running: look again when it ends
            self._writes.add_done_callback(lambda _: self._changed())

    async def _write_statuses(self, statuses: dict[StatusKey, dict[str, Any]]) -> None:
        for (kind, namespace, name), status in statuses.items():
            informer = self.informers.get(kind)
            current = informer.get(f"{namespace}/{name}" if namespace else name) if informer else None
            if current is None or current.get("status") == status:
                continue
            try:
                await self.client.update(informer.info, {**current, "status": status},  # type: ignore[union-attr]
                                         subresource="status")
            except errors.APIError as exc:
                if exc.code not in (404, 409):
                    log.warning("writing the status of %s %s/%s: %s", kind, namespace, name, exc)
            except OSError as exc:
                log.info("writing the status of %s %s/%s: %s (retried at the next resync)", kind, namespace,
                         name, exc)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_period)
            self.recompile()

    # ---- health and metrics --------------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self.compiled is not None and not self.server.listen_errors

    def render_metrics(self) -> str:
        lines = ["# HELP svcnet_ingress_requests_total Responses by backend and status code.",
                 "# TYPE svcnet_ingress_requests_total counter"]
        for (backend, status), count in sorted(self.server.counters.items()):
            lines.append(f'svcnet_ingress_requests_total{{backend="{backend}",status="{status}"}} {count}')
        lines += ["# HELP svcnet_ingress_compiles_total Route table compilations.",
                  "# TYPE svcnet_ingress_compiles_total counter", f"svcnet_ingress_compiles_total {self.compiles}",
                  "# HELP svcnet_ingress_upstream_connects_total New connections to backends.",
                  "# TYPE svcnet_ingress_upstream_connects_total counter",
                  f"svcnet_ingress_upstream_connects_total {self.server.upstream_connects}"]
        return "\n".join(lines) + "\n"

    def _app(self) -> web.Application:
        async def healthz(request: web.Request) -> web.Response:
            if self.healthy():
                return web.Response(text="ok")
            why = "; ".join(f"port {p}: {e}" for p, e in self.server.listen_errors.items()) or "not synced"
            return web.Response(status=503, text=why)

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(text=self.render_metrics(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        return app

    # ---- running -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        await self._make_informers()
        runner: web.AppRunner | None = None
        if self.config.health_address:
            runner = web.AppRunner(self._app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, *self.config.health_address).start()
        tasks = [asyncio.create_task(i.run()) for i in self.informers.values()]
        try:
            await asyncio.gather(*(i.synced.wait() for i in self.informers.values()))
            await self.server.start()
            self.recompile()
            await self.server.listeners_synced()
            for port, error in self.server.listen_errors.items():
                log.error("cannot listen on port %d: %s", port, error)
            tasks.append(asyncio.create_task(self._resync()))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await self.server.stop()
            if runner is not None:
                await runner.cleanup()
