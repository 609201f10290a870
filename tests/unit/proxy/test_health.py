"""Proxy health: the state machine as a table, kube-proxy's exact JSON bytes, and both aiohttp apps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from svcnet.proxy.health import (
    DEFAULT_HEALTH_TIMEOUT,
    HealthState,
    IPFamily,
    format_go_time,
    is_node_eligible,
    make_health_app,
    make_metrics_app,
    render_body,
)
from svcnet.proxy.metrics import CONTENT_TYPE, ProxyMetrics

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
V4, V6 = IPFamily.IPV4, IPFamily.IPV6

Event = tuple[str, float] | tuple[str, float, IPFamily]


def replay(events: Sequence[Event], timeout: float = 60.0) -> HealthState:
    state = HealthState(health_timeout=timeout)
    for kind, at, *family in events:
        getattr(state, kind)(T0 + at, *family)
    return state


HEALTH_CASES = [
    pytest.param([], 1000, True, id="fresh"),
    pytest.param([("synced", 0)], 1000, True, id="synced-nothing-queued"),
    pytest.param([("synced", 0), ("queued", 10)], 69.9, True, id="queued-not-late-yet"),
    pytest.param([("synced", 0), ("queued", 10)], 70, False, id="queued-exactly-timeout"),
    pytest.param([("synced", 0), ("queued", 10), ("queued", 50)], 75, False, id="oldest-queued-counts"),
    pytest.param([("synced", 0), ("queued", 10), ("synced", 65)], 1000, True, id="sync-clears-pending"),
    pytest.param([("queued", 10), ("synced", 65), ("queued", 66)], 125, True, id="new-queue-after-sync"),
    pytest.param([("queued", 0)], 60, False, id="never-synced-but-late"),
    pytest.param([("synced", 0, V4), ("synced", 0, V6), ("queued", 1, V6)], 61, False, id="one-family-late"),
    pytest.param([("queued", 1, V6), ("synced", 2, V4)], 61, False, id="other-family-sync-does-not-help"),
    pytest.param([("queued", 1, V6), ("synced", 2, V6)], 61, True, id="own-family-sync"),
]


@pytest.mark.parametrize(("events", "at", "healthy"), HEALTH_CASES)
def test_healthy(events: Sequence[Event], at: float, healthy: bool) -> None:
    state = replay(events)
    assert state.healthy(T0 + at) is healthy
    assert state.livez(T0 + at)[0] == (200 if healthy else 503)


def test_default_timeout_and_validation() -> None:
    assert HealthState().health_timeout == DEFAULT_HEALTH_TIMEOUT == 60.0
    with pytest.raises(ValueError):
        HealthState(health_timeout=0)


@pytest.mark.parametrize(("ts", "text"), [
    pytest.param(None, "0001-01-01T00:00:00Z", id="go-zero-time"),
    pytest.param(T0, "2023-11-14T22:13:20Z", id="whole-second"),
    pytest.param(T0 + 0.5, "2023-11-14T22:13:20.5Z", id="trailing-zeros-dropped"),
    pytest.param(T0 + 0.123456, "2023-11-14T22:13:20.123456Z", id="microseconds"),
    pytest.param(0.0, "1970-01-01T00:00:00Z", id="epoch"),
])
def test_format_go_time(ts: float | None, text: str) -> None:
    assert format_go_time(ts) == text


def test_healthz_body_healthy_is_kube_bytes() -> None:
    state = replay([("synced", 0)])
    code, body = state.healthz(T0 + 5.25)
    assert code == 200
    assert render_body(body) == (
        b'{"lastUpdated":"2023-11-14T22:13:25.25Z","currentTime":"2023-11-14T22:13:25.25Z",'
        b'"nodeEligible":true,"healthy":true,'
        b'"status":{"IPv4":{"lastUpdated":"2023-11-14T22:13:20Z","healthy":true}}}'
    )
    assert state.healthz_body(T0 + 5.25) == body


def test_livez_body_unhealthy_reports_real_last_update() -> None:
    state = replay([("synced", 0, V4), ("synced", 1, V6), ("queued", 2, V6)])
    code, body = state.livez(T0 + 70)
    assert code == 503
    assert body == {
        "lastUpdated": "2023-11-14T22:13:21Z",  # most recent sync of any family, not "now"
        "currentTime": "2023-11-14T22:14:30Z",
        "healthy": False,
        "status": {
            "IPv4": {"lastUpdated": "2023-11-14T22:13:20Z", "healthy": True},
            "IPv6": {"lastUpdated": "2023-11-14T22:13:21Z", "healthy": False},
        },
    }
    assert list(body) == ["lastUpdated", "currentTime", "healthy", "status"]
    assert state.livez_body(T0 + 70) == body


def test_fresh_state_has_no_status() -> None:
    assert HealthState().livez_body(T0) == {
        "lastUpdated": "2023-11-14T22:13:20Z", "currentTime": "2023-11-14T22:13:20Z", "healthy": True,
    }


def test_never_synced_family_reports_go_zero_time() -> None:
    body = replay([("queued", 0)]).livez_body(T0 + 60)
    assert body["lastUpdated"] == "0001-01-01T00:00:00Z"
    assert body["status"] == {"IPv4": {"lastUpdated": "0001-01-01T00:00:00Z", "healthy": False}}


def test_ineligible_node_fails_healthz_but_not_livez() -> None:
    state = replay([("synced", 0)])
    code, body = state.healthz(T0 + 1, node_eligible=False)
    assert code == 503
    assert body["nodeEligible"] is False and body["healthy"] is True  # proxier health alone, like kube
    assert body["lastUpdated"] == "2023-11-14T22:13:20Z"
    state.set_node_eligible(False)
    assert state.healthz(T0 + 1)[0] == 503
    assert state.livez(T0 + 1)[0] == 200
    assert state.healthz_body(T0 + 1)["nodeEligible"] is True  # explicit argument, default True


@pytest.mark.parametrize(("node", "eligible"), [
    pytest.param({"metadata": {"name": "n1"}, "spec": {}}, True, id="plain"),
    pytest.param({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "node.kubernetes.io/unschedulable",
                                                                   "effect": "NoSchedule"}]}}, True,
                 id="other-taint"),
    pytest.param({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler",
                                                                   "value": "1", "effect": "NoSchedule"}]}},
                 False, id="autoscaler-taint"),
    pytest.param({"metadata": {"name": "n1", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {}}, False,
                 id="being-deleted"),
    pytest.param(None, False, id="gone"),
])
def test_is_node_eligible(node: dict[str, Any] | None, eligible: bool) -> None:
    assert is_node_eligible(node) is eligible


# -- HTTP ----------------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Any]]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(app: web.Application) -> TestClient[web.Request, web.Application]:
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_health_app_healthy_then_late(serve: Callable[[web.Application], Any]) -> None:
    clock, state, metrics = FakeClock(T0), HealthState(), ProxyMetrics()
    state.synced(T0)
    client = await serve(make_health_app(state, metrics, clock))

    resp = await client.get("/healthz")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    raw = await resp.read()
    assert raw == render_body(state.healthz_body(T0))
    assert b"lastUpdated" in raw  # what the kube e2e "should check kube-proxy urls" looks for

    state.queued(T0 + 1)
    clock.now = T0 + 61
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert json.loads(await resp.read())["lastUpdated"] == "2023-11-14T22:13:20Z"
    resp = await client.get("/livez")
    assert resp.status == 503
    assert "nodeEligible" not in json.loads(await resp.read())

    state.synced(T0 + 62)
    clock.now = T0 + 62
    assert (await client.get("/livez")).status == 200

    assert metrics.registry.get_sample_value("kubeproxy_proxy_healthz_total", {"code": "200"}) == 1
    assert metrics.registry.get_sample_value("kubeproxy_proxy_healthz_total", {"code": "503"}) == 1
    assert metrics.registry.get_sample_value("kubeproxy_proxy_livez_total", {"code": "503"}) == 1
    assert metrics.registry.get_sample_value("kubeproxy_proxy_livez_total", {"code": "200"}) == 1


async def test_health_app_node_not_eligible(serve: Callable[[web.Application], Any]) -> None:
    state = HealthState()
    state.set_node_eligible(False)
    client = await serve(make_health_app(state, ProxyMetrics(), FakeClock(T0)))
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert json.loads(await resp.read())["nodeEligible"] is False
    assert (await client.get("/livez")).status == 200


@pytest.mark.parametrize(("method", "path", "status"), [
    pytest.param("GET", "/", 404, id="root"),
    pytest.param("GET", "/healthz/", 404, id="trailing-slash"),
    pytest.param("GET", "/metrics", 404, id="metrics-on-health-port"),
    pytest.param("POST", "/healthz", 405, id="post"),
    pytest.param("DELETE", "/livez", 405, id="delete"),
    pytest.param("HEAD", "/healthz", 200, id="head"),
])
async def test_health_app_other_requests(serve: Callable[[web.Application], Any], method: str, path: str,
                                         status: int) -> None:
    client = await serve(make_health_app(HealthState(), ProxyMetrics(), FakeClock(T0)))
    resp = await client.request(method, path)
    assert resp.status == status


async def test_metrics_app(serve: Callable[[web.Application], Any]) -> None:
    metrics = ProxyMetrics()
    metrics.sync_done(0.02, full=True, now=T0)
    client = await serve(make_metrics_app(metrics, "userspace"))

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    text = await resp.text()
    assert "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1.0" in text.splitlines()
    assert "kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09" in text.splitlines()

    resp = await client.get("/proxyMode")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert await resp.read() == b"userspace"

    resp = await client.get("/healthz")
    assert (resp.status, await resp.read()) == (200, b"ok")


@pytest.mark.parametrize(("method", "path", "status"), [
    pytest.param("GET", "/", 404, id="root"),
    pytest.param("GET", "/livez", 404, id="livez-on-metrics-port"),
    pytest.param("GET", "/proxymode", 404, id="case-sensitive"),
    pytest.param("POST", "/metrics", 405, id="post-metrics"),
    pytest.param("PUT", "/proxyMode", 405, id="put-mode"),
])
async def test_metrics_app_other_requests(serve: Callable[[web.Application], Any], method: str, path: str,
                                          status: int) -> None:
    client = await serve(make_metrics_app(ProxyMetrics(), "userspace"))
    assert (await client.request(method, path)).status == status
