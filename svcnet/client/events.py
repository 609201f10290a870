"""Recording Kubernetes Events (v1 core Events) about objects, as components do for `kubectl describe`.

Invariants: recording never raises (an event is information, not control flow); repeats of the same
(object, reason, message) within a recorder bump `count` and `lastTimestamp` on one Event instead of creating
new ones.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from typing import Any

from svcnet.api import errors, resources
from svcnet.client.api import Client

log = logging.getLogger(__name__)
EVENTS = resources.lookup("", "v1", "events")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client = client
        self.source = {"component": component, **({"host": host} if host else {})}
        self._seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    async def record(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        key = (meta.get("uid", ""), reason, message, event_type)
        try:
            if key in self._seen:
                event = self._seen[key]
                event = await self.client.patch(EVENTS, event["metadata"]["namespace"], event["metadata"]["name"],
                                                {"count": event.get("count", 1) + 1, "lastTimestamp": _now()})
            else:
                event = await self.client.create(EVENTS, meta.get("namespace") or "default",
                                                 self._new(obj, event_type, reason, message))
            self._seen[key] = event
        except (errors.APIError, OSError) as exc:
            log.info("could not record event %s for %s: %s", reason, meta.get("name"), exc)

    def _new(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        now = _now()
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name', 'object')}.{secrets.token_hex(8)}",
                         "namespace": meta.get("namespace") or "default"},
            "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                               "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                               "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": event_type, "source": self.source,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.source["component"], "reportingInstance": self.source.get("host", ""),
        }
