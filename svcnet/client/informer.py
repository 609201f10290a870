"""List + watch one resource into an in-memory cache and tell handlers what changed (client-go's informer).

Invariants: after `synced` is set the cache equals the server's state as of the last event seen; a watch that
ends is resumed from the last resourceVersion (bookmarks advance it); a 410 Gone re-lists, and the re-list's
differences reach the handlers as add/update/delete, so no change is lost; connection failures back off
exponentially (capped) and retry forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from svcnet.api import errors
from svcnet.api.resources import ResourceInfo
from svcnet.client.api import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


@dataclass
class Handlers:
    on_add: Callable[[Obj], None] = lambda obj: None
    on_update: Callable[[Obj, Obj], None] = lambda old, new: None
    on_delete: Callable[[Obj], None] = lambda obj: None


@dataclass
class Informer:
    client: Client
    info: ResourceInfo
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""
    watch_timeout: int = 300
    max_backoff: float = 10.0
    cache: dict[str, Obj] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    handlers: list[Handlers] = field(default_factory=list)
    resource_version: str = ""

    def add_handlers(self, handlers: Handlers) -> None:
        self.handlers.append(handlers)

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def items(self) -> list[Obj]:
        return list(self.cache.values())

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not self.resource_version:
                    await self._relist()
                await self._watch()
                backoff = 0.1
            except errors.APIError as exc:
                if exc.code == 410:
                    self.resource_version = ""  # too old: re-list
                    continue
                log.warning("%s informer: %s", self.info.plural, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.info("%s informer: connection problem (%s); retrying in %.1fs", self.info.plural, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _relist(self) -> None:
        listed = await self.client.list(self.info, self.namespace, self.label_selector, self.field_selector)
        fresh = {object_key(obj): obj for obj in listed.get("items", [])}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self._emit("delete", old, None)
        for key, obj in fresh.items():
            old = self.cache.get(key)
            self.cache[key] = obj
            if old is None:
                self._emit("add", obj, None)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("update", old, obj)
        self.resource_version = listed["metadata"]["resourceVersion"]
        self.synced.set()

    async def _watch(self) -> None:
        async for kind, obj in self.client.watch(self.info, self.namespace, self.resource_version,
                                                 self.watch_timeout, self.label_selector, self.field_selector):
            self.resource_version = obj.get("metadata", {}).get("resourceVersion") or self.resource_version
            if kind == "BOOKMARK":
                continue
            key = object_key(obj)
            old = self.cache.get(key)
            if kind == "DELETED":
                self.cache.pop(key, None)
                self._emit("delete", obj, None)
            else:
                self.cache[key] = obj
                self._emit("add", obj, None) if old is None else self._emit("update", old, obj)

    def _emit(self, what: str, obj: Obj, new: Obj | None) -> None:
        for handlers in self.handlers:
            try:
                if what == "add":
                    handlers.on_add(obj)
                elif what == "update":
                    handlers.on_update(obj, new or obj)
                else:
                    handlers.on_delete(obj)
            except Exception:  # noqa: BLE001 — one bad handler must not stop the informer
                log.exception("%s informer handler failed", self.info.plural)
