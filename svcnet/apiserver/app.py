"""The aiohttp application: discovery, OpenAPI, health, metrics and resource routes, behind auth.

Invariants: no request produces a traceback or a non-Status error body; an unexpected exception becomes a 500
`Status` and is logged. Anonymous requests reach only the public paths; the read-only user only reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from svcnet.api import errors, openapi
from svcnet.apiserver import codec, discovery
from svcnet.apiserver.auth import PUBLIC_PATHS, READ_VERBS, Tokens
from svcnet.apiserver.handlers import DEPRECATION, ResourceHandlers
from svcnet.apiserver.registry import Registry

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REGISTRY_KEY = web.AppKey("registry", Registry)
HANDLERS_KEY = web.AppKey("handlers", ResourceHandlers)
TOKENS_KEY = web.AppKey("tokens", object)
METRICS_KEY = web.AppKey("metrics", object)
READY_KEY = web.AppKey("ready", dict)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("apiserver_request_total", "API requests by verb, resource and code.",
                                ["verb", "resource", "code"], registry=self.registry)
        self.latency = Histogram("apiserver_request_duration_seconds", "API request latency (non-watch).",
                                 ["verb", "resource"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.watchers = Gauge("apiserver_longrunning_requests", "Open watch streams.", ["resource"],
                              registry=self.registry)


def _verb(request: web.Request, path_parts: list[str]) -> str:
    method = request.method
    if len(path_parts) >= 3 and path_parts[-3] == "pods" and path_parts[-1] in ("exec", "attach", "portforward"):
        return "create"  # a websocket upgrade is a GET, but it runs code in the pod: kube checks "create"
    if method == "GET":
        if request.query.get("watch") in ("true", "1") or "watch" in path_parts[:4]:
            return "watch"
        return "get" if _is_item(path_parts) else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


def _is_item(parts: list[str]) -> bool:
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return len(rest) >= 2


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.APIError as exc:
        return _status_response(exc)
    except RecursionError:
        return _status_response(errors.bad_request("the request is nested too deeply"))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _status_response(errors.APIError(exc.status, exc.reason.replace(" ", ""), exc.reason))
        raise
    except Exception as exc:  # noqa: BLE001 — the boundary: log it, answer a Status, never a traceback
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status_response(errors.internal(type(exc).__name__))


def _status_response(exc: errors.APIError) -> web.Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return web.Response(body=codec.encode(exc.to_status()), status=exc.code, content_type="application/json",
                        headers=headers)


def auth_middleware(tokens: Tokens | None) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if tokens is None or request.path in PUBLIC_PATHS or request.path.startswith(("/healthz/", "/livez/",
                                                                                      "/readyz/")):
            return await handler(request)
        user = tokens.user_for(request.headers.get("Authorization"))
        if user is None:
            raise errors.unauthorized()
        parts = [p for p in request.path.split("/") if p]
        if user.read_only and _verb(request, parts) not in READ_VERBS:
            raise _forbidden(user.name, request, parts)
        return await handler(request)

    return middleware


def _forbidden(user: str, request: web.Request, parts: list[str]) -> errors.APIError:
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    group = "" if parts[:1] == ["api"] else (parts[1] if len(parts) > 1 else "")
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    return errors.forbidden_request(user, _verb(request, parts), resource, group, namespace, name)


def metrics_middleware(metrics: Metrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        verb = _verb(request, parts)
        resource = _resource_label(parts)
        start = time.perf_counter()
        if verb == "watch":
            metrics.watchers.labels(resource).inc()
        try:
            response = await handler(request)
        finally:
            if verb == "watch":
                metrics.watchers.labels(resource).dec()
        metrics.requests.labels(verb, resource, str(response.status)).inc()
        if verb != "watch":
            metrics.latency.labels(verb, resource).observe(time.perf_counter() - start)
        return response

    return middleware


def _resource_label(parts: list[str]) -> str:
    if parts[:1] not in (["api"], ["apis"]):
        return ""
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["watch"]:
        rest = rest[1:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return rest[0] if rest else ""


def create_app(registry: Registry, tokens: Tokens | None) -> web.Application:
    metrics = Metrics()
    app = web.Application(client_max_size=codec.MAX_BODY_BYTES + 1024,
                          middlewares=[error_middleware, auth_middleware(tokens), metrics_middleware(metrics)])
    handlers = ResourceHandlers(registry)
    app[REGISTRY_KEY] = registry
    app[HANDLERS_KEY] = handlers
    app[METRICS_KEY] = metrics
    app[READY_KEY] = {"ready": False}
    routes = _Routes(app, handlers, metrics)
    app.router.add_get("/version", routes.version)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, routes.health)
        app.router.add_get(path + "/{check:.*}", routes.health)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/api", routes.api)
    app.router.add_get("/apis", routes.apis)
    app.router.add_get("/openapi/v3", routes.openapi_index)
    app.router.add_get("/openapi/v3/{path:.+}", routes.openapi_document)
    app.router.add_route("*", "/api/{version}", routes.core_version)
    app.router.add_route("*", "/api/{version}/{rest:.+}", routes.core_resource)
    app.router.add_get("/apis/{group}", routes.group)
    app.router.add_route("*", "/apis/{group}/{version}", routes.group_version)
    app.router.add_route("*", "/apis/{group}/{version}/{rest:.+}", routes.group_resource)
    app.on_shutdown.append(routes.on_shutdown)
    app.on_response_prepare.append(_deprecation_warning)
    return app


async def _deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    """Every response to a deprecated version, errors included, carries kube's `Warning: 299 - "..."`."""
    text = request.get(DEPRECATION)
    if text:
        response.headers.add("Warning", f'299 - "{text}"')


def _json(obj: Any, content_type: str = "application/json") -> web.Response:
    response = web.Response(body=codec.encode(obj), status=200)
    response.headers["Content-Type"] = content_type
    return response


class _Routes:
    def __init__(self, app: web.Application, handlers: ResourceHandlers, metrics: Metrics) -> None:
        self.app = app
        self.handlers = handlers
        self.prometheus = metrics
        self._openapi_hashes = {gv: openapi.document_hash(openapi.openapi_v3_document(*_split_gv(gv)))
                                for gv in openapi_group_versions()}

    async def on_shutdown(self, app: web.Application) -> None:
        self.handlers.stopping.set()

    async def version(self, request: web.Request) -> web.Response:
        return _json(discovery.version_info())

    async def health(self, request: web.Request) -> web.Response:
        check = request.match_info.get("check", "")
        ready = self.app[READY_KEY]["ready"] or request.path.startswith("/livez")
        if not ready:
            return web.Response(text="[-]svcnet-startup failed: not finished\nhealthz check failed\n", status=500)
        if "verbose" in request.query:
            return web.Response(text="[+]ping ok\n[+]etcd ok\n[+]svcnet-startup ok\nhealthz check passed\n")
        return web.Response(text="ok" if not check else "ok")

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.prometheus.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def api(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept")):
            return _json(discovery.aggregated(core=True), discovery.AGGREGATED_CONTENT_TYPE)
        return _json(discovery.legacy_api_versions())

    async def apis(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept")):
            return _json(discovery.aggregated(core=False), discovery.AGGREGATED_CONTENT_TYPE)
        return _json(discovery.legacy_group_list())

    async def openapi_index(self, request: web.Request) -> web.Response:
        return _json(openapi.openapi_v3_index(self._openapi_hashes))

    async def openapi_document(self, request: web.Request) -> web.Response:
        gv = request.match_info["path"]
        if gv not in self._openapi_hashes:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        response = _json(openapi.openapi_v3_document(*_split_gv(gv)))
        if request.query.get("hash") == self._openapi_hashes[gv]:
            response.headers["Cache-Control"] = "public, immutable"
            response.headers["Expires"] = "Fri, 01 Jan 2100 00:00:00 GMT"
        return response

    async def core_version(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed()
        return self._resource_list("", request.match_info["version"])

    async def group(self, request: web.Request) -> web.Response:
        doc = discovery.legacy_group(request.match_info["group"])
        if doc is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return _json(doc)

    async def group_version(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed()
        return self._resource_list(request.match_info["group"], request.match_info["version"])

    def _resource_list(self, group: str, version: str) -> web.Response:
        doc = discovery.resource_list(group, version)
        if doc is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return _json(doc)

    async def core_resource(self, request: web.Request) -> web.StreamResponse:
        rest = [p for p in request.match_info["rest"].split("/") if p]
        return await self.handlers.handle(request, "", request.match_info["version"], rest)

    async def group_resource(self, request: web.Request) -> web.StreamResponse:
        rest = [p for p in request.match_info["rest"].split("/") if p]
        return await self.handlers.handle(request, request.match_info["group"], request.match_info["version"], rest)


def openapi_group_versions() -> list[str]:
    from svcnet.api import resources

    return [f"apis/{g}/{v}" if g else f"api/{v}" for g, v in resources.group_versions()]


def _split_gv(path: str) -> tuple[str, str]:
    parts = path.split("/")
    return ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
