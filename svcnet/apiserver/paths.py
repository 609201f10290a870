"""Parsing of resource URLs into (resource, namespace, name, subresource) — pure.

Forms: /api/v1/<plural>[/<name>[/<sub>]], /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]], the same under
/apis/<group>/<version>, and the legacy `/watch/` prefix after the version.
"""

from __future__ import annotations

from dataclasses import dataclass

from svcnet.api import errors, resources
from svcnet.api.resources import ResourceInfo

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True, slots=True)
class Target:
    info: ResourceInfo
    namespace: str | None  # None: all namespaces (lists) or a cluster-scoped kind
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False


def parse(group: str, version: str, rest: list[str]) -> Target:
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    if not rest:
        raise errors.not_found("", "", group)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    info = resources.lookup(group, version, rest[0])
    if info is None:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    if namespace is not None and not info.namespaced:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 or (sub and info.subresource(sub) is None and not (info.kind == "Namespace"
                                                                        and sub in _NAMESPACE_SUBRESOURCES)):
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    if name and info.namespaced and namespace is None:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    return Target(info, namespace, name, sub, legacy_watch)
