"""HTTP handlers for resource URLs: query parameters in, registry call, Kubernetes-shaped response out.

Invariants: every response body is JSON with `kind` and `apiVersion`; errors are raised as `APIError` and rendered
as `Status` by the app's middleware; watches stream one JSON event per line, chunked, and end with an ERROR event
(410) when the requested resourceVersion is compacted.

Legacy versions (`extensions/v1beta1` Ingress): the registry works on the storage version; bodies are converted
to it on the way in (patches inside the registry, against the object in the served version), objects and watch
events back to the served version on the way out, and the request is marked (`DEPRECATION`) so the app adds
kube's deprecation `Warning` to whatever response it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from svcnet.api import conversion, errors, resources, tables
from svcnet.apiserver import codec, node_proxy, paths, strategies
from svcnet.apiserver.registry import DeleteOptions, Filter, ListOptions, Registry, WriteOptions
from svcnet.store.base import CompactedError, StoreError

DEFAULT_WATCH_TIMEOUT = 1800
DEPRECATION = web.RequestKey("deprecation", str)
BOOKMARK_INTERVAL = 30.0


def _query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _query_int(request: web.Request, name: str, default: int = 0) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}"') from None


def _write_options(request: web.Request) -> WriteOptions:
    dry_run = request.query.getall("dryRun", [])
    if any(d != "All" for d in dry_run):
        raise errors.bad_request(f'unsupported dry run value: "{dry_run}"; only "All" is supported')
    validation = request.query.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{validation}"')
    manager = request.query.get("fieldManager", "") or _default_manager(request)
    return WriteOptions(dry_run=bool(dry_run), field_manager=manager, field_validation=validation,
                        force=_query_bool(request, "force"))


def _default_manager(request: web.Request) -> str:
    agent = request.headers.get("User-Agent", "")
    return agent.split("/")[0] if agent else "unknown"


def _list_options(request: web.Request) -> ListOptions:
    return ListOptions(
        label_selector=request.query.get("labelSelector", ""),
        field_selector=request.query.get("fieldSelector", ""),
        limit=max(_query_int(request, "limit"), 0),
        continue_token=request.query.get("continue", ""),
        resource_version=request.query.get("resourceVersion", ""),
        resource_version_match=request.query.get("resourceVersionMatch", ""),
    )


async def _delete_options(request: web.Request) -> DeleteOptions:
    body: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            body = codec.decode_object(request.content_type, raw)
    pre = body.get("preconditions") or {}
    grace = body.get("gracePeriodSeconds")
    if "gracePeriodSeconds" in request.query:
        grace = _query_int(request, "gracePeriodSeconds")
    dry = request.query.getall("dryRun", []) or body.get("dryRun") or []
    return DeleteOptions(
        propagation_policy=request.query.get("propagationPolicy", "") or body.get("propagationPolicy") or "",
        grace_period_seconds=grace if isinstance(grace, int) else None,
        precondition_uid=pre.get("uid") or "",
        precondition_rv=pre.get("resourceVersion") or "",
        dry_run="All" in dry,
    )


class ResourceHandlers:
    def __init__(self, registry: Registry, now: Any = None) -> None:
        self.registry = registry
        self.stopping = asyncio.Event()

    def _now(self) -> datetime.datetime:
        return self.registry.clock()

    def respond(self, request: web.Request, info: resources.ResourceInfo, obj: dict[str, Any], status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        """`obj` (in its storage version) as `info`'s version serves it: converted, or as a Table."""
        if codec.wants_table(request.headers.get("Accept")) and obj.get("kind") == info.kind:
            obj = self._table(request, info, [obj], obj["metadata"].get("resourceVersion", ""))
        elif obj.get("kind") == info.kind:
            obj = served_form(info, obj)
        headers = {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else None
        return web.Response(body=codec.encode(obj), status=status, content_type="application/json",
                            headers=headers)

    def _table(self, request: web.Request, info: resources.ResourceInfo, items: list[dict[str, Any]],
               rv: str) -> dict[str, Any]:
        include = request.query.get("includeObject", "Metadata")
        table = tables.to_table(info.kind, items, self._now(), include)
        table.setdefault("metadata", {})["resourceVersion"] = rv
        return table

    async def handle(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        target = paths.parse(group, version, rest)
        if target.info.deprecation:
            request[DEPRECATION] = target.info.deprecation
        method = request.method
        if target.subresource:
            return await self._subresource(request, target)
        if not target.name:
            if method == "GET":
                if target.legacy_watch or _query_bool(request, "watch"):
                    return await self.watch(request, target)
                return await self.list(request, target)
            if method == "POST":
                return await self.create(request, target)
            if method == "DELETE":
                return await self.delete_collection(request, target)
            raise errors.method_not_allowed()
        if method == "GET":
            if target.legacy_watch:
                return await self.watch(request, target)
            obj = await self.registry.get(_stored(target), target.namespace or "", target.name)
            return self.respond(request, target.info, obj)
        if method == "PUT":
            return await self.update(request, target)
        if method == "PATCH":
            return await self.patch(request, target)
        if method == "DELETE":
            return await self.delete(request, target)
        raise errors.method_not_allowed()

    def _incoming(self, target: paths.Target, obj: dict[str, Any], name: str | None) -> dict[str, Any]:
        """A request body sent to a legacy version, in the storage version (others pass as they are)."""
        stored = _stored(target)
        if stored is target.info:
            return obj
        return self.registry.to_storage(stored, target.info, target.namespace or "", obj, name)

    async def list(self, request: web.Request, target: paths.Target) -> web.Response:
        stored = _stored(target)
        wants_table = codec.wants_table(request.headers.get("Accept"))
        if not wants_table and stored is target.info:
            body = await self.registry.list_json(target.info, target.namespace, _list_options(request))
            return web.Response(body=body, content_type="application/json")
        result = await self.registry.list(stored, target.namespace, _list_options(request))
        if not wants_table:
            return web.Response(body=codec.encode(served_list(target.info, result)), content_type="application/json")
        table = self._table(request, target.info, result["items"], result["metadata"]["resourceVersion"])
        if "continue" in result["metadata"]:
            table["metadata"]["continue"] = result["metadata"]["continue"]
        return web.Response(body=codec.encode(table), content_type="application/json")

    async def create(self, request: web.Request, target: paths.Target) -> web.Response:
        opts = _write_options(request)
        obj = codec.decode_object(request.content_type, await request.read())
        obj = self._incoming(target, obj, None)
        result = await self.registry.create(_stored(target), target.namespace or "", obj, opts)
        return self.respond(request, target.info, result.obj, 201, result.warnings)

    async def update(self, request: web.Request, target: paths.Target, subresource: str = "") -> web.Response:
        opts = _write_options(request)
        obj = codec.decode_object(request.content_type, await request.read())
        obj = self._incoming(target, obj, target.name)
        result = await self.registry.update(_stored(target), target.namespace or "", target.name, obj, opts,
                                            subresource)
        return self.respond(request, target.info, result.obj, 201 if result.created else 200, result.warnings)

    async def patch(self, request: web.Request, target: paths.Target, subresource: str = "") -> web.Response:
        opts = _write_options(request)
        body = await request.read()
        if len(body) > codec.MAX_BODY_BYTES:
            raise errors.too_large()
        content_type = request.headers.get("Content-Type", "")
        result = await self.registry.patch(_stored(target), target.namespace or "", target.name, content_type, body,
                                           opts, subresource, served=target.info)
        return self.respond(request, target.info, result.obj, 201 if result.created else 200, result.warnings)

    async def delete(self, request: web.Request, target: paths.Target) -> web.Response:
        opts = await _delete_options(request)
        obj, gone = await self.registry.delete(_stored(target), target.namespace or "", target.name, opts)
        if not gone or target.info.kind in strategies.RETURN_DELETED_OBJECT:
            return self.respond(request, target.info, obj)
        meta = obj["metadata"]
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": {"name": meta["name"], "group": target.info.group, "kind": target.info.plural,
                              "uid": meta.get("uid", "")}}
        return web.Response(body=codec.encode(status), content_type="application/json")

    async def delete_collection(self, request: web.Request, target: paths.Target) -> web.Response:
        if target.info.kind == "Namespace":
            raise errors.method_not_allowed()
        result = await self.registry.delete_collection(_stored(target), target.namespace, _list_options(request),
                                                       await _delete_options(request))
        return web.Response(body=codec.encode(served_list(target.info, result)), content_type="application/json")

    # ---- subresources ---------------------------------------------------------------------------------------

    async def _subresource(self, request: web.Request, target: paths.Target) -> web.StreamResponse:
        sub, method = target.subresource, request.method
        if sub in ("status", "finalize"):
            if method == "GET":
                return self.respond(request, target.info, await self.registry.get(
                    _stored(target), target.namespace or "", target.name))
            kind = "status" if sub == "status" else "finalize"
            if method == "PUT":
                return await self.update(request, target, kind)
            if method == "PATCH":
                return await self.patch(request, target, kind)
            raise errors.method_not_allowed()
        if sub == "scale":
            return await self._scale(request, target)
        if sub == "binding" and method == "POST":
            return await self._bind(request, target)
        if sub in ("log", "exec", "attach", "portforward"):
            return await self._node_stream(request, target)
        raise errors.method_not_allowed()

    async def _scale(self, request: web.Request, target: paths.Target) -> web.Response:
        info, ns = target.info, target.namespace or ""
        if request.method == "GET":
            obj = await self.registry.get(info, ns, target.name)
            return _json(to_scale(obj))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed()
        opts = _write_options(request)
        body = await request.read()
        for _ in range(16):
            obj = await self.registry.get(info, ns, target.name)
            current = to_scale(obj)
            if request.method == "PUT":
                wanted = codec.decode_object(request.content_type, body)
            else:
                from svcnet.api import patch

                wanted = patch.apply_patch(request.headers.get("Content-Type", ""), current, body, "Scale")
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid_object("Scale", target.name, [errors.invalid(
                    "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
            rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise errors.conflict(info.plural, target.name, "the object has been modified; please apply "
                                      "your changes to the latest version and try again", info.group)
            obj["spec"]["replicas"] = replicas
            try:
                result = await self.registry.update(info, ns, target.name, obj, opts)
            except errors.APIError as exc:
                if exc.code == 409 and not rv:
                    continue
                raise
            return _json(to_scale(result.obj))
        raise errors.conflict(info.plural, target.name, "too many concurrent updates", info.group)

    async def _bind(self, request: web.Request, target: paths.Target) -> web.Response:
        binding = codec.decode_object(request.content_type, await request.read())
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise errors.invalid_object("Binding", target.name, [errors.required("target.name")])
        ns = target.namespace or ""
        pod = await self.registry.get(target.info, ns, target.name)
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", target.name, f"pod {target.name} is already assigned to node "
                                  f'"{pod["spec"]["nodeName"]}"')
        pod["spec"]["nodeName"] = node
        await self.registry.update(target.info, ns, target.name, pod, WriteOptions(field_manager="binding"))
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    async def _node_stream(self, request: web.Request, target: paths.Target) -> web.StreamResponse:
        if target.subresource in ("log", "exec", "attach"):
            return await node_proxy.serve(request, self.registry, target)
        pod = await self.registry.get(target.info, target.namespace or "", target.name)
        node = pod.get("spec", {}).get("nodeName")
        if not node:
            raise errors.bad_request(f'pod {target.name} does not have a host assigned')
        raise errors.APIError(503, "ServiceUnavailable",
                              f'the node agent of node "{node}" is not reachable for {target.subresource}')

    # ---- watch ----------------------------------------------------------------------------------------------

    async def watch(self, request: web.Request, target: paths.Target) -> web.StreamResponse:
        info = target.info
        opts = _list_options(request)
        flt = Filter.parse(info.kind, opts.label_selector, opts.field_selector)
        if target.legacy_watch and target.name:
            flt = Filter.parse(info.kind, opts.label_selector, f"metadata.name={target.name}")
        if opts.resource_version not in ("", "0"):
            _query_int(request, "resourceVersion")  # a bad value is a 400 before the stream starts
        timeout = _query_int(request, "timeoutSeconds", DEFAULT_WATCH_TIMEOUT) or DEFAULT_WATCH_TIMEOUT
        bookmarks = _query_bool(request, "allowWatchBookmarks")
        as_table = codec.wants_table(request.headers.get("Accept"))
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        events = self.registry.watch(_stored(target), target.namespace, flt, opts.resource_version)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=1024)
        pump = asyncio.get_running_loop().create_task(_pump(events, queue))
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            await self._stream(request, response, info, queue, deadline, bookmarks, as_table)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, info: resources.ResourceInfo,
                      queue: asyncio.Queue[tuple[str, Any]], deadline: float, bookmarks: bool,
                      as_table: bool) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                async with asyncio.timeout(min(left, BOOKMARK_INTERVAL)):  # no task per event, unlike wait_for
                    kind, payload = await queue.get()
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    await response.write(codec.encode(await self._bookmark(info)) + b"\n")
                continue
            if kind == "end":
                if payload is not None:
                    await response.write(codec.encode({"type": "ERROR", "object": payload}) + b"\n")
                return
            event_type, obj = payload
            if as_table:
                obj = self._table(request, info, [obj], obj["metadata"]["resourceVersion"])
            else:
                obj = served_form(info, obj)
            await response.write(codec.encode({"type": event_type, "object": obj}) + b"\n")

    async def _bookmark(self, info: resources.ResourceInfo) -> dict[str, Any]:
        rv = await self.registry.store.current_revision()
        return {"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version,
                                               "metadata": {"resourceVersion": str(rv)}}}


def _stored(target: paths.Target) -> resources.ResourceInfo:
    return resources.storage_info(target.info)


def served_form(info: resources.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """A stored object as `info`'s version serves it."""
    if not info.storage_api_version or obj.get("apiVersion") == info.api_version:
        return obj
    return conversion.convert(obj, info.api_version)


def served_list(info: resources.ResourceInfo, listed: dict[str, Any]) -> dict[str, Any]:
    if not info.storage_api_version:
        return listed
    return {**listed, "apiVersion": info.api_version, "items": [served_form(info, i) for i in listed["items"]]}


async def _pump(events: AsyncIterator[tuple[str, dict[str, Any]]], queue: asyncio.Queue[tuple[str, Any]]) -> None:
    """Move watch events into a queue; a final ("end", Status|None) marks the end."""
    final: Any = None
    try:
        async for event in events:
            await queue.put(("event", event))
    except CompactedError as exc:
        final = errors.gone(f"too old resource version: {exc.requested - 1} ({exc.compacted})").to_status()
    except errors.APIError as exc:
        final = exc.to_status()
    except StoreError as exc:
        final = errors.gone(f"watch ended: {exc}; re-list and watch again").to_status()
    await queue.put(("end", final))


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    from svcnet.api import selectors

    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    raw_selector = spec.get("selector") or {}
    if "matchLabels" in raw_selector or "matchExpressions" in raw_selector:
        selector = str(selectors.selector_from_label_selector(raw_selector))
    else:
        selector = ",".join(f"{k}={v}" for k, v in sorted(raw_selector.items()))
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector},
    }


def _json(obj: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
