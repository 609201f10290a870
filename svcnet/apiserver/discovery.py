"""Discovery documents (legacy and aggregated v2) and /version, computed from the resource table.

Pure: documents are plain dicts built from `svcnet.api.resources.SERVED`. A group lists its versions in the order
of that table, the preferred (storage) version first, so `kubectl get ingress` means networking.k8s.io/v1 although
v1beta1 and extensions/v1beta1 are served too.
"""

from __future__ import annotations

from typing import Any

from svcnet.api import resources
from svcnet.api.resources import ResourceInfo

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBERNETES_MINOR = "32"


def version_info() -> dict[str, str]:
    return {
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v1.{KUBERNETES_MINOR}.0-svcnet",
        "gitCommit": "svcnet",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "python3.11",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def wants_aggregated(accept: str | None) -> bool:
    return "as=APIGroupDiscoveryList" in (accept or "") and "v=v2" in (accept or "")


def _subresource_entries(info: ResourceInfo) -> list[dict[str, Any]]:
    return [
        {
            "subresource": s.name,
            "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
            "verbs": list(s.verbs),
        }
        for s in info.subresources
    ]


def _aggregated_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = _subresource_entries(info)
    return entry


def _in_group(group: str) -> list[ResourceInfo]:
    return [r for r in resources.SERVED if r.group == group]


def _groups() -> dict[str, list[str]]:
    """Served groups in discovery order, each with its versions, the preferred one first."""
    groups: dict[str, list[str]] = {}
    for group, version in resources.group_versions():
        groups.setdefault(group, []).append(version)
    return groups


def aggregated(core: bool) -> dict[str, Any]:
    """`/api` (core=True) or `/apis` (core=False) in the apidiscovery.k8s.io/v2 form."""
    items = []
    for group, versions in _groups().items():
        if (group == "") != core:
            continue
        infos = _in_group(group)
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{
                "version": version,
                "resources": [_aggregated_resource(r) for r in infos if r.version == version],
                "freshness": "Current",
            } for version in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def legacy_api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def legacy_group_list() -> dict[str, Any]:
    groups = []
    for group, versions in _groups().items():
        if not group:
            continue
        listed = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
        groups.append({"name": group, "versions": listed, "preferredVersion": listed[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def legacy_group(group: str) -> dict[str, Any] | None:
    for entry in legacy_group_list()["groups"]:
        if entry["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    infos = [r for r in _in_group(group) if r.version == version]
    if not infos:
        return None
    entries: list[dict[str, Any]] = []
    for r in infos:
        entry: dict[str, Any] = {
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                                   "kind": s.kind, "verbs": list(s.verbs)}
            if s.group:
                sub["group"], sub["version"] = s.group, s.version
            entries.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}
