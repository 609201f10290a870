"""A small async Kubernetes API client (aiohttp): CRUD, patch and watch on the kinds of `svcnet.api.resources`.

Invariants: every non-2xx answer is raised as `APIError` rebuilt from the server's `Status`; watch yields
(type, object) pairs and ends on stream end; an ERROR event is raised as `APIError` (410 means: re-list).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from svcnet.api import errors
from svcnet.api.resources import ResourceInfo
from svcnet.client.config import ClientConfig

USER_AGENT = "svcnet/0.1"


def _status_error(status: int, body: bytes) -> errors.APIError:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict) or doc.get("kind") != "Status":
        return errors.APIError(status, "Unknown", body.decode(errors="replace")[:500] or f"HTTP {status}")
    details = doc.get("details") or {}
    causes = [errors.Cause(c.get("field", ""), c.get("reason", ""), c.get("message", ""))
              for c in details.get("causes") or []]
    return errors.APIError(int(doc.get("code") or status), doc.get("reason", ""), doc.get("message", ""),
                           details.get("name", ""), details.get("group", ""), details.get("kind", ""), causes)


def path_for(info: ResourceInfo, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{quote(namespace)}"
    path = f"{base}/{info.plural}"
    if name:
        path += f"/{quote(name)}"
    if subresource:
        path += f"/{subresource}"
    return path


class Client:
    def __init__(self, config: ClientConfig, field_manager: str = "svcnet") -> None:
        self.config = config
        self.field_manager = field_manager
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._session = aiohttp.ClientSession(headers=headers,
                                              connector=aiohttp.TCPConnector(ssl=config.ssl_context()))

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._session.request(method, self.config.server + path, data=data, params=params,
                                         headers=headers) as response:
            raw = await response.read()
            if response.status >= 300:
                raise _status_error(response.status, raw)
            loaded: dict[str, Any] = json.loads(raw) if raw else {}
            return loaded

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        return await self.request("GET", path_for(info, namespace, name))

    async def list(self, info: ResourceInfo, namespace: str | None = None, label_selector: str = "",
                   field_selector: str = "") -> dict[str, Any]:
        params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        return await self.request("GET", path_for(info, namespace), params=params)

    async def create(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path_for(info, namespace), obj, {"fieldManager": self.field_manager})

    async def update(self, info: ResourceInfo, obj: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        meta = obj["metadata"]
        path = path_for(info, meta.get("namespace"), meta["name"], subresource)
        return await self.request("PUT", path, obj, {"fieldManager": self.field_manager})

    async def patch(self, info: ResourceInfo, namespace: str | None, name: str, patch: dict[str, Any],
                    subresource: str = "", content_type: str = "application/merge-patch+json") -> dict[str, Any]:
        return await self.request("PATCH", path_for(info, namespace, name, subresource), patch,
                                  {"fieldManager": self.field_manager}, content_type)

    async def delete(self, info: ResourceInfo, namespace: str | None, name: str,
                     grace_period_seconds: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        return await self.request("DELETE", path_for(info, namespace, name), body)

    async def watch(self, info: ResourceInfo, namespace: str | None, resource_version: str,
                    timeout_seconds: int = 300, label_selector: str = "",
                    field_selector: str = "") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        params.update({k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector))
                       if v})
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self._session.get(self.config.server + path_for(info, namespace), params=params,
                                     timeout=timeout) as response:
            if response.status >= 300:
                raise _status_error(response.status, await response.read())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    raise _status_error(int(obj.get("code") or 500), json.dumps(obj).encode())
                yield event["type"], event["object"]
