"""kube-proxy's health endpoints: the health state machine (pure) and the two small aiohttp apps that serve it.

Theory of operation (pkg/proxy/healthcheck/proxy_health.go): the proxy calls `HealthState.queued(now)` each
time a Service or EndpointSlice change queues a sync, and `HealthState.synced(now)` after each successful sync.
Per IP family the state keeps the last successful sync and the *oldest* still-pending queued update. A
family is unhealthy once an update has waited `health_timeout` seconds (kube-proxy: 2 × sync period) without
a successful sync since; the proxy is healthy when every family is. `/livez` reports exactly that; `/healthz`
also fails (503) while the node is not eligible (being deleted, or tainted ToBeDeletedByClusterAutoscaler).

The bodies have kube-proxy's JSON shape and byte layout (Go `json.Marshal` of `ProxyHealth`): compact, keys
in the order ``lastUpdated, currentTime, nodeEligible (healthz only), healthy, status``; ``status`` maps
``IPv4``/``IPv6`` to ``{"lastUpdated", "healthy"}`` and is omitted while empty; times are RFC 3339 in UTC with
trailing zeros of the fraction dropped (Go's RFC3339Nano), and Go's zero time for "never".

Invariants:
- `HealthState` holds data only: every method takes `now` (unix seconds); nothing reads a clock or does I/O.
  The apps take the clock as a parameter. It is not locked: call it from the event loop's thread.
- `queued` never moves the oldest pending time forward; `synced` clears it for that family.
- A 200 answer reports ``lastUpdated`` = ``currentTime`` (kube-proxy keeps this for old clients); a 503 reports
  the real last successful sync.
- One deliberate difference from kube-proxy: kube only judges families that have synced at least once (a
  proxier that has never synced counts as "starting up" and stays healthy however long an update waits);
  here an update that has waited `health_timeout` is unhealthy whether or not a sync ever succeeded.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from svcnet.proxy.metrics import CONTENT_TYPE, ProxyMetrics

__all__ = [
    "DEFAULT_HEALTH_TIMEOUT",
    "TO_BE_DELETED_TAINT",
    "HealthState",
    "IPFamily",
    "ProxierHealth",
    "ProxyHealth",
    "format_go_time",
    "is_node_eligible",
    "make_health_app",
    "make_metrics_app",
    "render_body",
]

DEFAULT_HEALTH_TIMEOUT = 60.0
"""2 × kube-proxy's default sync period (30 s)."""

TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"

_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_JSON_HEADERS = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


class IPFamily(enum.StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"


@dataclass(frozen=True, slots=True)
class ProxierHealth:
    """The health of the proxier of one IP family."""
    last_updated: float | None  # last successful sync, None if none yet
    healthy: bool


@dataclass(frozen=True, slots=True)
class ProxyHealth:
    """The health of the whole proxy at `current_time`, before any HTTP-level adjustment."""
    last_updated: float | None  # the most recent successful sync of any family
    current_time: float
    healthy: bool
    status: Mapping[IPFamily, ProxierHealth]


class HealthState:
    """When updates were queued and syncs succeeded, per IP family; judges health at a given time."""

    def __init__(self, health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> None:
        if health_timeout <= 0:
            raise ValueError("health_timeout must be positive")
        self.health_timeout = health_timeout
        self.node_eligible = True  # eligible while starting up, until a node event says otherwise
        self._last_updated: dict[IPFamily, float] = {}
        self._oldest_pending: dict[IPFamily, float] = {}

    def queued(self, now: float, family: IPFamily = IPFamily.IPV4) -> None:
        """A change needs a sync of `family`'s rules; keeps the oldest such time until the next sync."""
        self._oldest_pending.setdefault(family, now)

    def synced(self, now: float, family: IPFamily = IPFamily.IPV4) -> None:
        """`family`'s rules now reflect every change queued so far."""
        self._oldest_pending.pop(family, None)
        self._last_updated[family] = now

    def set_node_eligible(self, eligible: bool) -> None:
        """Record the node's eligibility (see `is_node_eligible`); only /healthz looks at it."""
        self.node_eligible = eligible

    def health(self, now: float) -> ProxyHealth:
        status = {family: self._family_health(family, now)
                  for family in sorted({*self._last_updated, *self._oldest_pending})}
        return ProxyHealth(
            last_updated=max(self._last_updated.values(), default=None),
            current_time=now,
            healthy=all(h.healthy for h in status.values()),
            status=status,
        )

    def _family_health(self, family: IPFamily, now: float) -> ProxierHealth:
        pending = self._oldest_pending.get(family)
        late = pending is not None and now - pending >= self.health_timeout
        return ProxierHealth(last_updated=self._last_updated.get(family), healthy=not late)

    def healthy(self, now: float) -> bool:
        """False once some family has had an update queued for `health_timeout` without a sync since."""
        return self.health(now).healthy

    def healthz(self, now: float, node_eligible: bool | None = None) -> tuple[int, dict[str, Any]]:
        """Status code and body of /healthz; `node_eligible` defaults to the recorded eligibility."""
        eligible = self.node_eligible if node_eligible is None else node_eligible
        health = self.health(now)
        ok = health.healthy and eligible
        return (200 if ok else 503), _body(health, ok, eligible)

    def livez(self, now: float) -> tuple[int, dict[str, Any]]:
        """Status code and body of /livez (node eligibility plays no part)."""
        health = self.health(now)
        return (200 if health.healthy else 503), _body(health, health.healthy, None)

    def healthz_body(self, now: float, node_eligible: bool = True) -> dict[str, Any]:
        return self.healthz(now, node_eligible)[1]

    def livez_body(self, now: float) -> dict[str, Any]:
        return self.livez(now)[1]


def _body(health: ProxyHealth, ok: bool, node_eligible: bool | None) -> dict[str, Any]:
    last_updated = health.current_time if ok else health.last_updated
    body: dict[str, Any] = {
        "lastUpdated": format_go_time(last_updated),
        "currentTime": format_go_time(health.current_time),
    }
    if node_eligible is not None:
        body["nodeEligible"] = node_eligible
    body["healthy"] = health.healthy
    if health.status:
        body["status"] = {
            family.value: {"lastUpdated": format_go_time(h.last_updated), "healthy": h.healthy}
            for family, h in sorted(health.status.items())
        }
    return body


def render_body(body: Mapping[str, Any]) -> bytes:
    """Serialise like Go's json.Marshal: compact, key order kept."""
    return json.dumps(body, separators=(",", ":")).encode()


def format_go_time(ts: float | None) -> str:
    """A unix time as Go marshals a UTC time.Time (RFC3339Nano, microsecond precision here); None is Go's zero."""
    if ts is None:
        return _GO_ZERO_TIME
    moment = datetime.fromtimestamp(ts, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def is_node_eligible(node: Mapping[str, Any] | None) -> bool:
    """kube-proxy's rule: a node is eligible unless missing, being deleted, or tainted ToBeDeleted."""
    if node is None or node.get("metadata", {}).get("deletionTimestamp"):
        return False
    taints = node.get("spec", {}).get("taints") or []
    return not any(taint.get("key") == TO_BE_DELETED_TAINT for taint in taints)


def make_health_app(state: HealthState, metrics: ProxyMetrics,
                    clock: Callable[[], float] = time.time) -> web.Application:
    """The :10256 app: /healthz and /livez, counted in kubeproxy_proxy_{healthz,livez}_total{code}."""

    async def healthz(_request: web.Request) -> web.Response:
        code, body = state.healthz(clock())
        metrics.healthz(code)
        return web.Response(status=code, body=render_body(body), headers=_JSON_HEADERS)

    async def livez(_request: web.Request) -> web.Response:
        code, body = state.livez(clock())
        metrics.livez(code)
        return web.Response(status=code, body=render_body(body), headers=_JSON_HEADERS)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    return app


def make_metrics_app(metrics: ProxyMetrics, mode: str) -> web.Application:
    """The :10249 app: /metrics (Prometheus text), /proxyMode (the mode name, no newline), /healthz ("ok")."""
    text_headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}

    async def serve_metrics(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def proxy_mode(_request: web.Request) -> web.Response:
        return web.Response(body=mode.encode(), headers=text_headers)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(body=b"ok", headers=text_headers)

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/proxyMode", proxy_mode)
    app.router.add_get("/healthz", healthz)
    return app
