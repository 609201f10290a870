"""What the Ingress and Gateway API compilers share: configuration, results, problems, conditions — pure.

- `Config` is the controller's configuration (frozen); its `clock` is the only source of time;
- a `Problem` is a human-readable warning about one object (the controller turns it into an Event);
- a `HostRoute` is one compiled route placed on a port and a host pattern, with the tie-breaking order of its
  object (oldest first, then "namespace/name", then rule and match index); `routes.py` assembles them;
- `condition()` keeps `lastTransitionTime` from the existing condition of the same type when its status did not
  change, so an unchanged cluster compiles to an unchanged status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from svcnet.ingress.model import Route, RouteTable

Obj = dict[str, Any]
Objects = Mapping[str, Sequence[Obj]]  # kind ("Ingress", "HTTPRoute", ...) -> objects as the informer holds them
StatusKey = tuple[str, str, str]  # (kind, namespace, name); namespace "" for cluster-scoped kinds
GATEWAY_GROUP = "gateway.networking.k8s.io"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Config:
    ingress_controller: str = "svcnet.io/ingress-controller"
    gateway_controller: str = "svcnet.io/gateway-controller"
    address: str = "127.0.0.1"  # published in status: an IP address or a hostname
    http_port: int = 80
    https_port: int = 443
    watch_ingress_without_class: bool = False
    clock: Callable[[], datetime] = _utc_now


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    namespace: str
    name: str
    reason: str  # CamelCase, as an Event reason
    message: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}: {self.reason}: {self.message}"


class HostKind(StrEnum):
    EXACT = "exact"  # "foo.com"
    ONE_LABEL = "one-label"  # Ingress "*.foo.com": exactly one label before ".foo.com"
    ANY_LABELS = "any-labels"  # Gateway API "*.foo.com": one or more labels
    DEFAULT = "default"  # no host: everything else


@dataclass(frozen=True, slots=True)
class HostRoute:
    """`route` on `port` for `host` ("" for the default host, "*.suffix" for wildcards); `route` None only marks
    that the host exists (an Ingress rule without paths still claims its host)."""

    port: int
    host: str
    host_kind: HostKind
    route: Route | None
    order: tuple[str, str, int, int]  # (creationTimestamp, "kind/namespace/name", rule index, match index)


@dataclass(frozen=True, slots=True)
class Compiled:
    table: RouteTable
    statuses: dict[StatusKey, Obj]  # the status each of our objects should have
    problems: tuple[Problem, ...]


def meta(obj: Obj) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def spec(obj: Obj) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "")


def age_key(obj: Obj) -> tuple[str, str, str]:
    """Oldest first: creationTimestamp (RFC 3339 sorts as text), then namespace, then name."""
    return str(meta(obj).get("creationTimestamp") or ""), namespace_of(obj), name_of(obj)


def generation_of(obj: Obj) -> int:
    value = meta(obj).get("generation")
    return value if isinstance(value, int) else 0


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dict_of(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Conditions:
    """Builds conditions for one object: its generation, the time now, and its existing conditions."""

    generation: int
    now: str
    existing: tuple[Obj, ...] = ()

    def make(self, type_: str, status: bool, reason: str, message: str = "") -> Obj:
        text = "True" if status else "False"
        since = self.now
        for old in self.existing:
            if old.get("type") == type_ and old.get("status") == text and old.get("lastTransitionTime"):
                since = str(old["lastTransitionTime"])
        return {"type": type_, "status": text, "reason": reason, "message": message or reason,
                "observedGeneration": self.generation, "lastTransitionTime": since}


def conditions_for(obj: Obj, now: str, existing: Any = None) -> Conditions:
    """`existing` defaults to `obj.status.conditions`."""
    if existing is None:
        existing = dict_of(obj.get("status")).get("conditions")
    return Conditions(generation_of(obj), now, tuple(c for c in list_of(existing) if isinstance(c, dict)))


def ref_permitted(grants: Sequence[Obj], from_kind: str, from_ns: str, to_kind: str, to_ns: str,
                  to_name: str) -> bool:
    """Gateway API ReferenceGrant: a reference to another namespace needs a grant in the target namespace whose
    `from` names (gateway group, `from_kind`, `from_ns`) and whose `to` names (core group, `to_kind`, and the
    name when it gives one)."""
    if from_ns == to_ns:
        return True
    for grant in grants:
        if namespace_of(grant) != to_ns:
            continue
        grant_spec = spec(grant)
        froms = list_of(grant_spec.get("from"))
        if not any(dict_of(f).get("group") == GATEWAY_GROUP and dict_of(f).get("kind") == from_kind
                   and dict_of(f).get("namespace") == from_ns for f in froms):
            continue
        for to in list_of(grant_spec.get("to")):
            to = dict_of(to)
            if (to.get("group") or "") == "" and to.get("kind") == to_kind and to.get("name") in (None, "", to_name):
                return True
    return False
