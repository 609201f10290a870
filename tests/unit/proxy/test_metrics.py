"""ProxyMetrics: kube-proxy's names, types and buckets, svcnet's backend gauges, and the text exposition."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from svcnet.proxy.backends import Backend, VirtualServer
from svcnet.proxy.metrics import (
    CONTENT_TYPE,
    NETWORK_PROGRAMMING_BUCKETS,
    SYNC_BUCKETS,
    ConnectionResult,
    ProxyMetrics,
)


def families(metrics: ProxyMetrics) -> dict[str, str]:
    """name -> type, as a scraper sees them."""
    return {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}


def value(metrics: ProxyMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def bucket_bounds(metrics: ProxyMetrics, histogram: str) -> list[str]:
    text = metrics.render().decode()
    return [line.split('le="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith(f"{histogram}_bucket{{")]


def test_kube_proxy_names_and_types() -> None:
    metrics = ProxyMetrics()
    metrics.no_local_endpoints(internal=0, external=0)
    metrics.healthz(200)
    metrics.livez(200)
    found = families(metrics)
    # text_string_to_metric_families strips _total from counter family names
    assert {name: found.get(name) for name in [
        "kubeproxy_sync_proxy_rules_duration_seconds",
        "kubeproxy_sync_full_proxy_rules_duration_seconds",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds",
        "kubeproxy_network_programming_duration_seconds",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
        "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
        "kubeproxy_sync_proxy_rules_endpoint_changes",
        "kubeproxy_sync_proxy_rules_service_changes_pending",
        "kubeproxy_sync_proxy_rules_service_changes",
        "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
        "kubeproxy_proxy_healthz",
        "kubeproxy_proxy_livez",
    ]} == {
        "kubeproxy_sync_proxy_rules_duration_seconds": "histogram",
        "kubeproxy_sync_full_proxy_rules_duration_seconds": "histogram",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds": "histogram",
        "kubeproxy_network_programming_duration_seconds": "histogram",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds": "gauge",
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds": "gauge",
        "kubeproxy_sync_proxy_rules_endpoint_changes_pending": "gauge",
        "kubeproxy_sync_proxy_rules_endpoint_changes": "counter",
        "kubeproxy_sync_proxy_rules_service_changes_pending": "gauge",
        "kubeproxy_sync_proxy_rules_service_changes": "counter",
        "kubeproxy_sync_proxy_rules_no_local_endpoints_total": "gauge",  # a gauge in kube too
        "kubeproxy_proxy_healthz": "counter",
        "kubeproxy_proxy_livez": "counter",
    }
    text = metrics.render().decode()
    for exposed in ["kubeproxy_sync_proxy_rules_endpoint_changes_total 0.0",
                    "kubeproxy_sync_proxy_rules_service_changes_total 0.0",
                    'kubeproxy_proxy_healthz_total{code="200"} 1.0',
                    'kubeproxy_proxy_livez_total{code="200"} 1.0']:
        assert exposed in text.splitlines()


def test_no_created_series() -> None:
    metrics = ProxyMetrics()
    metrics.sync_done(0.1, full=True, now=1.0)
    metrics.healthz(503)
    metrics.connection("default/web:http", "ok")
    assert "_created" not in metrics.render().decode()


def test_sync_buckets_are_exponential_from_1ms() -> None:
    assert SYNC_BUCKETS == (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
                            2.048, 4.096, 8.192, 16.384)
    metrics = ProxyMetrics()
    for name in ["sync_proxy_rules_duration_seconds", "sync_full_proxy_rules_duration_seconds",
                 "sync_partial_proxy_rules_duration_seconds"]:
        bounds = bucket_bounds(metrics, f"kubeproxy_{name}")
        assert [float(b) for b in bounds[:-1]] == list(SYNC_BUCKETS) and bounds[-1] == "+Inf"


def test_network_programming_buckets_match_kube() -> None:
    expected = [0.0, 0.25, 0.5, *range(1, 60), *range(60, 120, 5), *range(120, 301, 30)]
    assert list(NETWORK_PROGRAMMING_BUCKETS) == expected
    assert len(expected) == 81  # MergeBuckets' leading zero + 2 + 59 + 12 + 7
    bounds = bucket_bounds(ProxyMetrics(), "kubeproxy_network_programming_duration_seconds")
    assert bounds[0] == "0.0" and bounds[-2] == "300.0" and bounds[-1] == "+Inf"


@pytest.mark.parametrize(("full", "observed", "idle"), [
    pytest.param(True, "sync_full_proxy_rules_duration_seconds", "sync_partial_proxy_rules_duration_seconds",
                 id="full"),
    pytest.param(False, "sync_partial_proxy_rules_duration_seconds", "sync_full_proxy_rules_duration_seconds",
                 id="partial"),
])
def test_sync_done_observes_total_and_kind(full: bool, observed: str, idle: str) -> None:
    metrics = ProxyMetrics(clock=lambda: 1700000000.5)
    metrics.sync_done(0.003, full)
    assert value(metrics, "kubeproxy_sync_proxy_rules_duration_seconds_count") == 1
    assert value(metrics, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", le="0.004") == 1
    assert value(metrics, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", le="0.002") == 0
    assert value(metrics, f"kubeproxy_{observed}_count") == 1
    assert value(metrics, f"kubeproxy_{idle}_count") == 0
    assert value(metrics, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") == 1700000000.5


def test_sync_done_with_explicit_time() -> None:
    metrics = ProxyMetrics(clock=lambda: pytest.fail("clock read"))
    metrics.sync_done(0.5, full=False, now=42.0)
    assert value(metrics, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") == 42.0


def test_changes_pend_until_a_sync_starts() -> None:
    metrics = ProxyMetrics()
    metrics.changes(services=2, endpoints=5)
    metrics.changes(endpoints=1)
    metrics.queued(100.0)
    assert value(metrics, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds") == 100.0
    assert value(metrics, "kubeproxy_sync_proxy_rules_service_changes_pending") == 2
    assert value(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_pending") == 6
    metrics.sync_started()
    assert value(metrics, "kubeproxy_sync_proxy_rules_service_changes_pending") == 0
    assert value(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_pending") == 0
    assert value(metrics, "kubeproxy_sync_proxy_rules_service_changes_total") == 2
    assert value(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_total") == 6
    metrics.pending(services=1, endpoints=3)
    assert value(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_pending") == 3
    with pytest.raises(ValueError):
        metrics.changes(services=-1)


def test_programmed_and_no_local_endpoints() -> None:
    metrics = ProxyMetrics()
    metrics.programmed(0.3)
    metrics.programmed(61.0)
    assert value(metrics, "kubeproxy_network_programming_duration_seconds_bucket", le="0.5") == 1
    assert value(metrics, "kubeproxy_network_programming_duration_seconds_bucket", le="65.0") == 2
    metrics.no_local_endpoints(internal=1, external=3)
    assert value(metrics, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", traffic_policy="internal") == 1
    assert value(metrics, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", traffic_policy="external") == 3


@pytest.mark.parametrize(("triggers", "now", "buckets"), [
    pytest.param([100.0], 100.1, {"0.25": 1, "0.5": 1}, id="one-change"),
    pytest.param([99.0, 99.9, 100.0], 100.1, {"0.25": 2, "0.5": 2, "2.0": 3}, id="one-per-change"),
    pytest.param([101.0], 100.0, {"0.0": 1}, id="clock-stepped-back-counts-as-zero"),
    pytest.param([], 100.0, {"0.25": 0}, id="nothing-triggered"),
])
def test_programmed_since_observes_each_trigger(triggers: list[float], now: float,
                                                 buckets: dict[str, int]) -> None:
    metrics = ProxyMetrics()
    metrics.programmed_since(triggers, now)
    assert value(metrics, "kubeproxy_network_programming_duration_seconds_count") == len(triggers)
    for le, count in buckets.items():
        assert value(metrics, "kubeproxy_network_programming_duration_seconds_bucket", le=le) == count


def test_health_codes_counted_per_code() -> None:
    metrics = ProxyMetrics()
    for code in (200, 200, 503):
        metrics.healthz(code)
    metrics.livez(503)
    assert value(metrics, "kubeproxy_proxy_healthz_total", code="200") == 2
    assert value(metrics, "kubeproxy_proxy_healthz_total", code="503") == 1
    assert value(metrics, "kubeproxy_proxy_livez_total", code="503") == 1
    assert value(metrics, "kubeproxy_proxy_livez_total", code="200") is None


def test_connections_by_result() -> None:
    metrics = ProxyMetrics()
    metrics.connection("default/web:http", ConnectionResult.OK)
    metrics.connection("default/web:http", "failover")
    metrics.connection("default/web:http", "refused")
    metrics.connection("default/web:http", "ok")
    for result, count in [("ok", 2), ("failover", 1), ("refused", 1)]:
        assert value(metrics, "svcnet_proxy_connections_total", service="default/web:http", result=result) == count
    with pytest.raises(ValueError):
        metrics.connection("default/web:http", "timeout")


def web(ip: str, port: int, *backends: Backend, service: str = "default/web:http") -> VirtualServer:
    return VirtualServer("TCP", ip, port, "rr", None, tuple(backends), service=service)


def test_observe_backends_sets_and_removes_label_sets() -> None:
    metrics = ProxyMetrics()
    a, b = Backend("10.244.1.2", 8080, active=3, inactive=1), Backend("10.244.2.2", 8080, active=1)
    metrics.observe_backends([web("10.96.0.20", 80, a, b)])
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="default/web:http", backend="10.244.1.2:8080") == 3
    assert value(metrics, "svcnet_proxy_backend_inactive_connections",
                 service="default/web:http", backend="10.244.1.2:8080") == 1
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="default/web:http", backend="10.244.2.2:8080") == 1

    a.active = 0
    metrics.observe_backends([web("10.96.0.20", 80, a)])
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="default/web:http", backend="10.244.1.2:8080") == 0
    for gauge in ["svcnet_proxy_backend_active_connections", "svcnet_proxy_backend_inactive_connections"]:
        assert value(metrics, gauge, service="default/web:http", backend="10.244.2.2:8080") is None
    assert "10.244.2.2" not in metrics.render().decode()

    metrics.observe_backends([])
    assert "svcnet_proxy_backend_active_connections{" not in metrics.render().decode()


def test_observe_backends_across_virtual_servers_of_one_service() -> None:
    metrics = ProxyMetrics()
    shared = Backend("10.244.1.2", 8080, active=2)
    own_a, own_b = Backend("10.244.3.3", 8080, active=1), Backend("10.244.3.3", 8080, active=4)
    metrics.observe_backends([
        web("10.96.0.20", 80, shared, own_a),  # ClusterIP
        web("192.168.49.2", 30080, shared, own_b),  # NodePort, same Backend object for `shared`
        web("fd00::20", 80, Backend("fd00:10:244::5", 8080, active=7), service=""),
    ])
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="default/web:http", backend="10.244.1.2:8080") == 2  # counted once
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="default/web:http", backend="10.244.3.3:8080") == 5  # distinct objects add up
    assert value(metrics, "svcnet_proxy_backend_active_connections",
                 service="TCP/[fd00::20]:80", backend="[fd00:10:244::5]:8080") == 7


def test_registries_are_private() -> None:
    first, second = ProxyMetrics(), ProxyMetrics()  # no "Duplicated timeseries" error
    first.healthz(200)
    assert value(second, "kubeproxy_proxy_healthz_total", code="200") is None
    assert prometheus_client.REGISTRY.get_sample_value("kubeproxy_proxy_healthz_total", {"code": "200"}) is None


def test_render_is_text_format() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert ProxyMetrics.CONTENT_TYPE == CONTENT_TYPE
    text = ProxyMetrics().render().decode()
    assert text.startswith("# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency in seconds\n")
    assert "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n" in text


def test_tracked_backends_are_observed_at_each_render_only() -> None:
    metrics = ProxyMetrics()
    backend = Backend("10.244.1.2", 8080, active=1)
    servers = [web("10.96.0.20", 80, backend)]
    calls: list[int] = []

    def source() -> list[VirtualServer]:
        calls.append(1)
        return servers

    metrics.track_backends(source)
    assert calls == []  # nothing per sync: only a scrape lists the servers
    assert 'backend="10.244.1.2:8080",service="default/web:http"} 1.0' in metrics.render().decode()
    backend.active, servers[:] = 4, [web("10.96.0.20", 80, backend)]
    assert 'backend="10.244.1.2:8080",service="default/web:http"} 4.0' in metrics.render().decode()
    servers.clear()
    assert "svcnet_proxy_backend_active_connections{" not in metrics.render().decode()
    assert len(calls) == 3
    metrics.track_backends(None)
    metrics.render()
    assert len(calls) == 3
