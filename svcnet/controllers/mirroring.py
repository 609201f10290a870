"""Which EndpointSlices mirror a user-written Endpoints object, as kube's endpointslicemirroring controller — pure.

Rules:
- only a Service without a selector whose Endpoints (same name) exist is mirrored; Endpoints labelled
  `endpointslice.kubernetes.io/skip-mirror: "true"` or carrying the leader-election annotation are not;
- each subset contributes at most MAX_PER_SUBSET addresses (ready ones first); `addresses` become endpoints with
  `ready: true`, `notReadyAddresses` with `ready: false`; addresses that are not IPs are skipped and counted;
- endpoints are grouped by (address type, ports); subsets with the same ports share a group, duplicates collapse;
  each group is cut into slices of at most MAX_PER_SLICE endpoints;
- a slice copies the Endpoints' labels and annotations (except the last-applied configuration and the
  last-change-trigger time), is labelled with the service name and managed-by
  `endpointslicemirroring-controller.k8s.io`, and is controlled by the Endpoints object (as in kube, so garbage
  collection follows the object it mirrors);
- slice names are deterministic (`<name>-mirror-<hash of group><index>`) so a re-sync updates in place.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",
                       "endpoints.kubernetes.io/last-change-trigger-time")
MAX_PER_SUBSET = 1000
MAX_PER_SLICE = 100


@dataclass(frozen=True, slots=True)
class Mirror:
    slices: list[Obj] = field(default_factory=list)
    invalid: int = 0  # addresses that are not IPs
    over_capacity: int = 0  # addresses beyond MAX_PER_SUBSET in their subset


def should_mirror(service: Obj | None, endpoints: Obj | None) -> bool:
    if service is None or endpoints is None or (service.get("spec") or {}).get("selector"):
        return False
    meta = endpoints.get("metadata") or {}
    return (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true" and \
        LEADER_ANNOTATION not in (meta.get("annotations") or {})


def _ports(subset: Obj) -> list[Obj]:
    out = []
    for port in subset.get("ports") or []:
        entry: Obj = {"name": port.get("name", ""), "port": port.get("port"), "protocol": port.get("protocol", "TCP")}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return sorted(out, key=lambda p: (p["name"], p["port"] or 0, p["protocol"]))


def _endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    """(address type, slice endpoint) of an Endpoints address, or None when its IP does not parse."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip", "")).strip())
    except ValueError:
        return None
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    for key in ("targetRef", "nodeName", "hostname"):
        if address.get(key):
            endpoint[key] = address[key]
    return ("IPv4" if ip.version == 4 else "IPv6"), endpoint


def _group_key(address_type: str, ports: list[Obj]) -> str:
    return json.dumps([address_type, ports], sort_keys=True)


def compute_mirror(service: Obj | None, endpoints: Obj | None) -> Mirror:
    """The desired mirrored slices (empty when nothing should be mirrored) and what was skipped."""
    if not should_mirror(service, endpoints):
        return Mirror()
    assert endpoints is not None
    groups: dict[str, list[Obj]] = {}
    invalid = over = 0
    for subset in endpoints.get("subsets") or []:
        ports = _ports(subset)
        candidates = [(a, True) for a in subset.get("addresses") or []] + \
            [(a, False) for a in subset.get("notReadyAddresses") or []]
        over += max(0, len(candidates) - MAX_PER_SUBSET)
        for address, ready in candidates[:MAX_PER_SUBSET]:
            converted = _endpoint(address, ready)
            if converted is None:
                invalid += 1
                continue
            group = groups.setdefault(_group_key(converted[0], ports), [])
            if converted[1] not in group:
                group.append(converted[1])
    return Mirror(_slices(endpoints, groups), invalid, over)


def _slices(endpoints: Obj, groups: dict[str, list[Obj]]) -> list[Obj]:
    out = []
    for key in sorted(groups):
        address_type, ports = json.loads(key)
        digest = hashlib.sha256(key.encode()).hexdigest()[:5]
        members = groups[key]
        for index in range(0, len(members), MAX_PER_SLICE):
            out.append(_slice(endpoints, f"{digest}{index // MAX_PER_SLICE}", address_type, ports,
                              members[index:index + MAX_PER_SLICE]))
    return out


def _slice(endpoints: Obj, suffix: str, address_type: str, ports: list[Obj], members: list[Obj]) -> Obj:
    meta = endpoints["metadata"]
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    body: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"{meta['name'][:200]}-mirror-{suffix}", "namespace": meta.get("namespace", ""),
                              "labels": labels,
                              "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": meta["name"],
                                                   "uid": meta.get("uid", ""), "controller": True,
                                                   "blockOwnerDeletion": True}]},
                 "addressType": address_type, "endpoints": members, "ports": ports}
    if annotations:
        body["metadata"]["annotations"] = annotations
    return body
