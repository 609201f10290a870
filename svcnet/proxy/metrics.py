"""The proxy's Prometheus metrics: kube-proxy's own series plus svcnet's per-backend connection view.

Theory of operation: `ProxyMetrics` is a plain recorder. The proxy loop tells it what happened (`changes`,
`queued`, `sync_started`, `sync_done`, `programmed`, `no_local_endpoints`), the health server counts its
answers (`healthz`, `livez`), the data path counts connections (`connection`), and whoever lists the virtual
servers hands them to `observe_backends` -- or, better, names a function that lists them (`track_backends`),
which `render()` calls, so the per-backend gauges cost nothing per sync and are as fresh as the scrape.
`render()` produces the text exposition format served on `:10249/metrics`; nothing here does I/O.

Invariants:
- Every series lives in the instance's own `CollectorRegistry`, never in prometheus_client's global one, so
  several proxies (and tests) in one process never collide.
- The kube-proxy series carry kube-proxy's exact names (subsystem ``kubeproxy``), metric types and buckets
  (pkg/proxy/metrics/metrics.go), including kube's quirks: `network_programming_duration_seconds` has a
  leading ``0`` bucket (component-base `MergeBuckets` starts from a zero element) and
  `sync_proxy_rules_no_local_endpoints_total` is a gauge despite its name.
- The exposition carries no ``*_created`` series: kube-proxy (client_golang) has none, and dropping them here
  keeps the output the same whatever `PROMETHEUS_DISABLE_CREATED_SERIES` says.
- After `observe_backends(servers)` the backend gauges hold exactly the (service, backend) pairs found in
  `servers`; pairs that disappeared are removed, not left at their last value. With `track_backends(source)`
  every `render()` first observes `source()`.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from svcnet.proxy.backends import Backend, VirtualServer

__all__ = [
    "CONTENT_TYPE",
    "NETWORK_PROGRAMMING_BUCKETS",
    "SYNC_BUCKETS",
    "ConnectionResult",
    "ProxyMetrics",
    "backend_label",
    "service_label",
]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""Content type of `ProxyMetrics.render()` (Prometheus text format 0.0.4)."""

SUBSYSTEM = "kubeproxy"

# prometheus.ExponentialBuckets(0.001, 2, 15): 1 ms .. 16.384 s (doubling is exact in binary floating point).
SYNC_BUCKETS: tuple[float, ...] = tuple(0.001 * 2**i for i in range(15))


def _linear(start: float, width: float, count: int) -> list[float]:
    return [start + width * i for i in range(count)]


# metrics.MergeBuckets(LinearBuckets(0.25, 0.25, 2), LinearBuckets(1, 1, 59), LinearBuckets(60, 5, 12),
# LinearBuckets(120, 30, 7)); MergeBuckets starts from a zero element, hence the leading 0.
NETWORK_PROGRAMMING_BUCKETS: tuple[float, ...] = (
    0.0, *_linear(0.25, 0.25, 2), *_linear(1, 1, 59), *_linear(60, 5, 12), *_linear(120, 30, 7)
)


class ConnectionResult(enum.StrEnum):
    """How a proxied connection attempt ended (label ``result`` of svcnet_proxy_connections_total)."""
    OK = "ok"  # connected to the first backend tried
    FAILOVER = "failover"  # connected, but only after at least one backend refused or timed out
    REFUSED = "refused"  # no backend could be reached; the client connection was closed


def service_label(server: VirtualServer) -> str:
    """The ``service`` label: the service port name, or the virtual address when the server has none."""
    return server.service or f"{server.protocol}/{_hostport(server.ip, server.port)}"


def backend_label(backend: Backend) -> str:
    """The ``backend`` label: ``ip:port``, with brackets around an IPv6 address."""
    return _hostport(backend.ip, backend.port)


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"  # only IPv6 addresses have a colon


class ProxyMetrics:
    """kube-proxy compatible metrics plus svcnet's backend gauges, in a registry of their own."""

    CONTENT_TYPE = CONTENT_TYPE

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._define_sync_metrics()
        self._define_change_metrics()
        self._define_svcnet_metrics()
        self._backend_children: dict[tuple[str, str], tuple[Any, Any]] = {}  # (service, backend) -> gauges
        self._backends_source: Callable[[], Iterable[VirtualServer]] | None = None

    def _define_sync_metrics(self) -> None:
        reg = self.registry
        self._sync_duration = Histogram(
            "sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds",
            subsystem=SUBSYSTEM, buckets=SYNC_BUCKETS, registry=reg)
        self._sync_full_duration = Histogram(
            "sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs",
            subsystem=SUBSYSTEM, buckets=SYNC_BUCKETS, registry=reg)
        self._sync_partial_duration = Histogram(
            "sync_partial_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for partial resyncs",
            subsystem=SUBSYSTEM, buckets=SYNC_BUCKETS, registry=reg)
        self._network_programming = Histogram(
            "network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds",
            subsystem=SUBSYSTEM, buckets=NETWORK_PROGRAMMING_BUCKETS, registry=reg)
        self._last_sync = Gauge(
            "sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced",
            subsystem=SUBSYSTEM, registry=reg)
        self._last_queued = Gauge(
            "sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued",
            subsystem=SUBSYSTEM, registry=reg)
        self._no_local_endpoints = Gauge(
            "sync_proxy_rules_no_local_endpoints_total",
            "Number of services with a Local traffic policy and no endpoints",
            ["traffic_policy"], subsystem=SUBSYSTEM, registry=reg)
        self._healthz = Counter(
            "proxy_healthz_total", "Cumulative proxy healthz HTTP status", ["code"],
            subsystem=SUBSYSTEM, registry=reg)
        self._livez = Counter(
            "proxy_livez_total", "Cumulative proxy livez HTTP status", ["code"],
            subsystem=SUBSYSTEM, registry=reg)

    def _define_change_metrics(self) -> None:
        reg = self.registry
        self._endpoint_pending = Gauge(
            "sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes",
            subsystem=SUBSYSTEM, registry=reg)
        self._endpoint_total = Counter(
            "sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes",
            subsystem=SUBSYSTEM, registry=reg)
        self._service_pending = Gauge(
            "sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes",
            subsystem=SUBSYSTEM, registry=reg)
        self._service_total = Counter(
            "sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes",
            subsystem=SUBSYSTEM, registry=reg)

    def _define_svcnet_metrics(self) -> None:
        reg = self.registry
        self._active = Gauge(
            "svcnet_proxy_backend_active_connections", "Established connections per backend",
            ["service", "backend"], registry=reg)
        self._inactive = Gauge(
            "svcnet_proxy_backend_inactive_connections",
            "Closing connections (UDP: recent flows) per backend", ["service", "backend"], registry=reg)
        self._connections = _ConnectionCounts()
        reg.register(self._connections)

    # -- sync loop ---------------------------------------------------------------------------------------

    def changes(self, *, services: int = 0, endpoints: int = 0) -> None:
        """Count change events seen by the change trackers; they stay pending until the next sync starts."""
        if services < 0 or endpoints < 0:
            raise ValueError("change counts cannot be negative")
        self._service_total.inc(services)
        self._service_pending.inc(services)
        self._endpoint_total.inc(endpoints)
        self._endpoint_pending.inc(endpoints)

    def pending(self, *, services: int, endpoints: int) -> None:
        """Set the pending gauges to the trackers' exact sizes (for trackers that coalesce changes)."""
        self._service_pending.set(services)
        self._endpoint_pending.set(endpoints)

    def queued(self, now: float) -> None:
        """A sync was requested at `now` (unix seconds)."""
        self._last_queued.set(now)

    def sync_started(self) -> None:
        """A sync began and drained the change trackers: nothing is pending any more."""
        self._service_pending.set(0)
        self._endpoint_pending.set(0)

    def sync_done(self, duration: float, full: bool, now: float | None = None) -> None:
        """A sync succeeded after `duration` seconds; `now` (default: the clock) becomes the last sync time."""
        self._sync_duration.observe(duration)
        (self._sync_full_duration if full else self._sync_partial_duration).observe(duration)
        self._last_sync.set(self._clock() if now is None else now)

    def programmed(self, latency: float) -> None:
        """One endpoints change reached the data path `latency` seconds after it was made."""
        self._network_programming.observe(latency)

    def programmed_since(self, trigger_times: Iterable[float], now: float) -> None:
        """Changes triggered at `trigger_times` (unix seconds) reached the data path at `now`: one
        observation each, as kube-proxy does per changed EndpointSlice (a clock step back counts as 0)."""
        for moment in trigger_times:
            self._network_programming.observe(max(0.0, now - moment))

    def no_local_endpoints(self, *, internal: int, external: int) -> None:
        """Services with a Local internal/external traffic policy and no local endpoints, as of the last sync."""
        self._no_local_endpoints.labels(traffic_policy="internal").set(internal)
        self._no_local_endpoints.labels(traffic_policy="external").set(external)

    # -- health server -----------------------------------------------------------------------------------

    def healthz(self, code: int) -> None:
        self._healthz.labels(code=str(code)).inc()

    def livez(self, code: int) -> None:
        self._livez.labels(code=str(code)).inc()

    # -- data path ---------------------------------------------------------------------------------------

    def connection(self, service: str, result: ConnectionResult | str) -> None:
        """Count one proxied connection attempt for `service` (a `service_label`). On the data path: one dict
        update (the result is checked the first time a (service, result) pair is seen)."""
        counts = self._connections.counts
        try:
            counts[service, result] += 1
        except KeyError:
            counts[service, ConnectionResult(result).value] = 1

    def track_backends(self, source: Callable[[], Iterable[VirtualServer]] | None) -> None:
        """Observe `source()` (the virtual servers now) at every `render()`; None stops it."""
        self._backends_source = source

    def observe_backends(self, servers: Iterable[VirtualServer]) -> None:
        """Set the backend connection gauges from `servers`, dropping label sets no longer present.

        Several virtual servers of one service (ClusterIP, NodePort, external IPs) may list the same
        backend. Counts of distinct `Backend` objects are summed; one object shared between virtual
        servers is counted once.
        """
        distinct: dict[tuple[str, str], dict[int, Backend]] = {}
        for server in servers:
            svc = service_label(server)
            for backend in server.backends:
                distinct.setdefault((svc, backend_label(backend)), {})[id(backend)] = backend
        totals = {key: (sum(b.active for b in objs.values()), sum(b.inactive for b in objs.values()))
                  for key, objs in distinct.items()}
        children = self._backend_children
        for gone in children.keys() - totals.keys():
            self._active.remove(*gone)
            self._inactive.remove(*gone)
            del children[gone]
        for key, (active, inactive) in totals.items():
            pair = children.get(key)
            if pair is None:
                pair = children[key] = (self._active.labels(*key), self._inactive.labels(*key))
            pair[0].set(active)
            pair[1].set(inactive)

    # -- exposition --------------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition (`CONTENT_TYPE`) of every series, without ``*_created`` samples."""
        if self._backends_source is not None:
            self.observe_backends(self._backends_source())
        return generate_latest(_WithoutCreated(self.registry))


class _ConnectionCounts:
    """svcnet_proxy_connections_total kept as plain integers, read at scrape time: a prometheus_client Counter
    takes a lock and a label lookup per increment, which the data path pays per connection."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("svcnet_proxy_connections", "Proxied connection attempts by outcome",
                                     labels=["service", "result"])
        for (service, result), count in sorted(self.counts.items()):
            family.add_metric([service, result], count)
        yield family


class _WithoutCreated:
    """A collector view of a registry that drops the ``_created`` samples prometheus_client adds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            samples = [s for s in metric.samples if s.name != metric.name + "_created"]
            if len(samples) == len(metric.samples):
                yield metric
                continue
            trimmed = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            trimmed.samples = samples
            yield trimmed
