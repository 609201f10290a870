"""ClientIP session affinity for the userspace proxy: which backend a client sticks to, per service.

Theory of operation: before scheduling a new connection the proxy asks `lookup(service, client, now)`; a hit
bypasses the scheduler. After connecting it calls `touch(service, client, backend, now, timeout)`, which records
the choice or refreshes it. This is IPVS persistence (`ipvsadm -p timeout`) and kube-proxy's
`sessionAffinityConfig.clientIP.timeoutSeconds`: the timeout runs from the client's last connection.

Invariants:
- Pure data: the caller passes `now` (seconds, any monotonic origin); nothing here reads a clock.
- An entry is live while `now < last_seen + timeout`; from `last_seen + timeout` on, `lookup` ignores it.
- `lookup` never mutates; stale entries stay until `expire(now)`, a `forget_*` call or a new `touch` drops
  or replaces them.
- One entry per (service, client IP); a service with no entries left has no key in the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TIMEOUT_SECONDS = 10800  # Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds (3 h)


@dataclass(frozen=True, slots=True)
class AffinityEntry:
    client_ip: str
    backend: tuple[str, int]  # (ip, port)
    last_seen: float
    timeout: float

    @property
    def expires_at(self) -> float:
        return self.last_seen + self.timeout

    def is_live(self, now: float) -> bool:
        return now < self.expires_at


_EntryPredicate = Callable[[AffinityEntry], bool]


class AffinityTable:
    """Affinity entries keyed by service key (e.g. `namespace/name:port`) and client IP."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, AffinityEntry]] = {}

    def lookup(self, service_key: str, client_ip: str, now: float) -> tuple[str, int] | None:
        """The backend the client sticks to, or None if it has no live entry."""
        entry = self._services.get(service_key, {}).get(client_ip)
        return entry.backend if entry is not None and entry.is_live(now) else None

    def touch(
        self, service_key: str, client_ip: str, backend: tuple[str, int], now: float,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """Record that the client connected to backend at now; its timeout restarts from now."""
        if timeout <= 0:
            raise ValueError(f"affinity timeout must be positive, got {timeout}")
        clients = self._services.setdefault(service_key, {})
        clients[client_ip] = AffinityEntry(client_ip, backend, now, timeout)

    def forget_backend(self, service_key: str, backend: tuple[str, int]) -> int:
        """Drop the service's entries that point at a removed backend; returns how many."""
        return self._drop(service_key, lambda entry: entry.backend == backend)

    def forget_service(self, service_key: str) -> int:
        """Drop all of a removed service's entries; returns how many."""
        return len(self._services.pop(service_key, {}))

    def expire(self, now: float) -> int:
        """Drop every entry that is no longer live at now; returns how many."""
        return sum(self._drop(key, lambda entry: not entry.is_live(now)) for key in list(self._services))

    def entries(self, service_key: str) -> list[AffinityEntry]:
        """The service's entries, live or not yet expired away, ordered by client IP (for display)."""
        return sorted(self._services.get(service_key, {}).values(), key=lambda entry: entry.client_ip)

    def _drop(self, service_key: str, doomed: _EntryPredicate) -> int:
        clients = self._services.get(service_key, {})
        stale = [client for client, entry in clients.items() if doomed(entry)]
        for client in stale:
            del clients[client]
        if not clients:
            self._services.pop(service_key, None)
        return len(stale)
