"""Change trackers (kube-proxy's ServiceChangeTracker / EndpointsChangeTracker): which objects changed since the
last sync, keeping per object the FIRST previous state and the LATEST current one, so a burst of updates costs
one change and an object that comes back to where it was costs none. Pure.

`relevant` reduces an object to what the proxy uses (spec and status for services, endpoints and ports for
slices) so that, for example, a managedFields or resourceVersion bump is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def relevant(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    kept = {k: obj.get(k) for k in ("spec", "status", "endpoints", "ports", "addressType")}
    return {"labels": meta.get("labels"), "annotations": meta.get("annotations"), **kept}


@dataclass
class ChangeTracker:
    pending: dict[str, tuple[Obj | None, Obj | None]] = field(default_factory=dict)  # key -> (first previous, current)
    total: int = 0

    def update(self, key: str, previous: Obj | None, current: Obj | None) -> bool:
        """Record a change; False when, all pending changes of `key` together, nothing relevant changed."""
        first = self.pending[key][0] if key in self.pending else relevant(previous)
        now = relevant(current)
        if first == now:
            self.pending.pop(key, None)
            return False
        self.pending[key] = (first, now)
        self.total += 1
        return True

    def drain(self) -> set[str]:
        """The keys that changed since the last drain; the tracker starts over."""
        keys = set(self.pending)
        self.pending.clear()
        return keys

    def __len__(self) -> int:
        return len(self.pending)
