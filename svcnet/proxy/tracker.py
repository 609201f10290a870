"""Change trackers (kube-proxy's ServiceChangeTracker / EndpointsChangeTracker): which objects changed since the
last sync, keeping per object the FIRST previous state and the LATEST current one, so a burst of updates costs
one change and an object that comes back to where it was costs none. Pure.

`relevant` reduces an object to what the proxy uses (spec and status for services, endpoints and ports for
slices) so that, for example, a managedFields or resourceVersion bump is a no-op; `relevant_slice` also
leaves out a slice's annotations, which the proxy never reads (kube-proxy compares only a slice's endpoints
and ports).

Trigger times (network programming latency, as kube-proxy's EndpointsChangeTracker): every recorded change of
an object annotated `endpoints.kubernetes.io/last-change-trigger-time` (set by the endpoints controllers: when
the pod or service change that caused it happened) keeps that time, once per change; `drain` hands them over
with the changed keys, so the sync that programs the change observes `now - trigger` once per changed object.
Times not after `started` (changes made before this proxy started) and unparsable ones are ignored, and
deleting an object drops its times (the annotation then dates its last update, not the deletion).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def relevant(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    kept = {k: obj.get(k) for k in ("spec", "status", "endpoints", "ports", "addressType")}
    return {"labels": meta.get("labels"), "annotations": meta.get("annotations"), **kept}


def relevant_slice(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    return {"labels": (obj.get("metadata") or {}).get("labels"),
            **{k: obj.get(k) for k in ("endpoints", "ports", "addressType")}}


def parse_trigger_time(obj: Obj | None) -> float | None:
    """The object's trigger-time annotation as unix seconds (None: absent, or not an RFC 3339 time)."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(TRIGGER_TIME)
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
        return moment.timestamp() if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class Drained:
    keys: set[str]
    trigger_times: dict[str, list[float]]  # key -> the trigger times of its changes, oldest first


@dataclass
class ChangeTracker:
    pending: dict[str, tuple[Obj | None, Obj | None]] = field(default_factory=dict)  # key -> (first previous, current)
    total: int = 0
    reduce: Callable[[Obj | None], Obj | None] = relevant  # what of an object counts
    started: float = float("-inf")  # unix seconds; earlier trigger times are not observed
    trigger_times: dict[str, list[float]] = field(default_factory=dict)

    def update(self, key: str, previous: Obj | None, current: Obj | None) -> bool:
        """Record a change; False when, all pending changes of `key` together, nothing relevant changed."""
        first = self.pending[key][0] if key in self.pending else self.reduce(previous)
        now = self.reduce(current)
        if first == now:
            self.pending.pop(key, None)
            return False
        self.pending[key] = (first, now)
        self.total += 1
        self._note_trigger(key, current)
        return True

    def _note_trigger(self, key: str, current: Obj | None) -> None:
        if current is None:
            self.trigger_times.pop(key, None)
            return
        moment = parse_trigger_time(current)
        if moment is not None and moment > self.started:
            self.trigger_times.setdefault(key, []).append(moment)

    def drain(self) -> set[str]:
        """The keys that changed since the last drain; the tracker starts over (trigger times included)."""
        return self.drain_all().keys

    def drain_all(self) -> Drained:
        """The keys that changed since the last drain and the trigger times of those changes; starts over."""
        drained = Drained(set(self.pending), self.trigger_times)
        self.pending.clear()
        self.trigger_times = {}
        return drained

    def restore_trigger_times(self, times: dict[str, list[float]]) -> None:
        """Give back the trigger times of a drain whose sync failed, so the retry observes them."""
        for key, moments in times.items():
            self.trigger_times[key] = [*moments, *self.trigger_times.get(key, ())]

    def __len__(self) -> int:
        return len(self.pending)
