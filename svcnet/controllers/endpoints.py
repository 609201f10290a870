"""What a Service's Endpoints and EndpointSlices should contain, computed from the service and its pods — pure.

Rules (kube's endpoints and EndpointSlice controllers):
- only services with a selector get computed endpoints; pods are those in the service's namespace whose labels
  match the selector, that have a pod IP and are not in a terminal phase (Succeeded/Failed);
- a pod is a ready address when its Ready condition is True; otherwise it is a not-ready address — unless the
  service publishes not-ready addresses (`publishNotReadyAddresses`, or the legacy annotation
  `service.alpha.kubernetes.io/tolerate-unready-endpoints: "true"`), which makes every address ready;
- a terminating pod (deletionTimestamp set) leaves Endpoints unless not-ready addresses are published; in
  EndpointSlices it stays with `terminating: true`, `serving` = its readiness and `ready: false`;
- ports come from each service port's targetPort: a number as is, a name looked up in the pod's container ports
  (a pod without that port name is left out of that port's set); addresses with the same resolved ports share a
  subset (Endpoints) or a slice (EndpointSlices, at most 100 endpoints each);
- Endpoints hold at most 1000 addresses; beyond that they are truncated and annotated `over-capacity: truncated`;
- trigger time (`endpoints.kubernetes.io/last-change-trigger-time`, kube's TriggerTimeTracker, read by
  kube-proxy for its network programming latency): the earliest of the changes seen since the service's last
  sync -- a selected pod whose Ready condition moved (its lastTransitionTime), a service created anew -- or,
  for a service seen for the first time, its creationTimestamp; no such change, no annotation. Written only
  together with a real change (the annotation alone never causes a write).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_ADDRESSES = 1000
MAX_SLICE_ENDPOINTS = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def publishes_not_ready(service: Obj) -> bool:
    annotations = service.get("metadata", {}).get("annotations") or {}
    return bool(service.get("spec", {}).get("publishNotReadyAddresses")) or \
        annotations.get(TOLERATE_UNREADY, "").lower() == "true"


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def _eligible(pod: Obj) -> bool:
    status = pod.get("status", {})
    return bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")


def selected_pods(service: Obj, pods: list[Obj]) -> list[Obj]:
    selector = service.get("spec", {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    return sorted((p for p in pods if p["metadata"].get("namespace") == namespace and _eligible(p)
                   and selector_matches(selector, p["metadata"].get("labels") or {})),
                  key=lambda p: (p["status"]["podIP"], p["metadata"]["name"]))


def resolve_target_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in pod.get("spec", {}).get("containers") or []:
        for container_port in container.get("ports") or []:
            if container_port.get("name") == target and \
                    container_port.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return int(container_port["containerPort"])
    return None


def _endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    ports = []
    for port in service.get("spec", {}).get("ports") or []:
        number = resolve_target_port(port, pod)
        if number is None:
            continue
        entry: Obj = {"name": port.get("name", ""), "port": number, "protocol": port.get("protocol", "TCP")}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        ports.append(entry)
    return ports


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta.get("uid", "")}


def _hostname(service: Obj, pod: Obj) -> str:
    spec = pod.get("spec", {})
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        return str(spec["hostname"])
    return ""


def _address(service: Obj, pod: Obj) -> Obj:
    address: Obj = {"ip": pod["status"]["podIP"], "targetRef": _target_ref(pod)}
    if pod.get("spec", {}).get("nodeName"):
        address["nodeName"] = pod["spec"]["nodeName"]
    if hostname := _hostname(service, pod):
        address["hostname"] = hostname
    return address


def _ports_key(ports: list[Obj]) -> str:
    return json.dumps(sorted(ports, key=lambda p: (p["name"], p["port"], p["protocol"])), sort_keys=True)


def compute_endpoints(service: Obj, pods: list[Obj]) -> Obj | None:
    """The desired Endpoints object (without server fields), or None when the service has no selector."""
    spec = service.get("spec", {})
    if not spec.get("selector"):
        return None
    tolerate = publishes_not_ready(service)
    headless = spec.get("clusterIP") == "None"
    groups: dict[str, Obj] = {}
    total = 0
    for pod in selected_pods(service, pods):
        if _terminating(pod) and not tolerate:
            continue
        ports = _endpoint_ports(service, pod)
        if not ports and not (headless and not spec.get("ports")):
            continue
        subset = groups.setdefault(_ports_key(ports), {"ports": ports, "addresses": [], "notReadyAddresses": []})
        ready = tolerate or pod_ready(pod)
        subset["addresses" if ready else "notReadyAddresses"].append(_address(service, pod))
        total += 1
    meta = service["metadata"]
    labels = dict(meta.get("labels") or {})
    if headless:
        labels["service.kubernetes.io/headless"] = ""
    endpoints: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": meta["name"], "namespace": meta.get("namespace", "")},
                      "subsets": _subsets(groups)}
    if labels:
        endpoints["metadata"]["labels"] = labels
    if total > MAX_ENDPOINTS_ADDRESSES:
        endpoints["subsets"] = _truncate(endpoints["subsets"], MAX_ENDPOINTS_ADDRESSES)
        endpoints["metadata"]["annotations"] = {OVER_CAPACITY: "truncated"}
    return endpoints


def _subsets(groups: dict[str, Obj]) -> list[Obj]:
    subsets = []
    for key in sorted(groups):
        subset = {k: v for k, v in groups[key].items() if v}
        if subset.get("addresses") or subset.get("notReadyAddresses"):
            subsets.append(subset)
    return subsets


def _truncate(subsets: list[Obj], limit: int) -> list[Obj]:
    out, left = [], limit
    for subset in subsets:
        kept = dict(subset)
        for kind in ("addresses", "notReadyAddresses"):
            kept[kind] = subset.get(kind, [])[:left]
            left -= len(kept[kind])
        out.append({k: v for k, v in kept.items() if v})
    return [s for s in out if s.get("addresses") or s.get("notReadyAddresses")]


def compute_slices(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The desired EndpointSlices of a service with a selector, with deterministic names (service name + a hash
    of the port set + an index) so that a re-sync updates in place."""
    if not service.get("spec", {}).get("selector"):
        return []
    tolerate = publishes_not_ready(service)
    groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
    for pod in selected_pods(service, pods):
        ports = _endpoint_ports(service, pod)
        groups.setdefault(_ports_key(ports), (ports, []))[1].append(_slice_endpoint(service, pod, tolerate))
    if not groups:
        groups[_ports_key([])] = ([], [])
    slices = []
    for key in sorted(groups):
        ports, endpoints = groups[key]
        digest = hashlib.sha256(key.encode()).hexdigest()[:5]
        chunks = [endpoints[i:i + MAX_SLICE_ENDPOINTS] for i in range(0, len(endpoints), MAX_SLICE_ENDPOINTS)]
        for index, chunk in enumerate(chunks or [[]]):
            slices.append(_slice(service, f"{digest}{index}", ports, chunk))
    return slices


def _slice_endpoint(service: Obj, pod: Obj, tolerate: bool) -> Obj:
    terminating = _terminating(pod)
    serving = tolerate or pod_ready(pod)
    endpoint: Obj = {"addresses": [pod["status"]["podIP"]],
                     "conditions": {"ready": serving and (tolerate or not terminating), "serving": serving,
                                    "terminating": terminating},
                     "targetRef": _target_ref(pod)}
    if pod.get("spec", {}).get("nodeName"):
        endpoint["nodeName"] = pod["spec"]["nodeName"]
    if hostname := _hostname(service, pod):
        endpoint["hostname"] = hostname
    return endpoint


def _slice(service: Obj, suffix: str, ports: list[Obj], endpoints: list[Obj]) -> Obj:
    meta = service["metadata"]
    name = f"{meta['name'][:56]}-{suffix}"
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY}
    family = "IPv6" if service.get("spec", {}).get("ipFamilies", ["IPv4"])[0] == "IPv6" else "IPv4"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": meta.get("namespace", ""), "labels": labels,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                              "uid": meta.get("uid", ""), "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": family, "endpoints": endpoints, "ports": ports}


# --- trigger time -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerState:
    """The trigger times one sync of a service saw: the service's own and each matching pod's, by pod name."""
    service: datetime.datetime | None = None
    pods: Mapping[str, datetime.datetime] = field(default_factory=dict)


def parse_time(text: object) -> datetime.datetime | None:
    """An RFC 3339 timestamp (None: absent, or not a time with a zone)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with the fraction's trailing zeros dropped (Go's time.RFC3339Nano)."""
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def _pod_trigger_time(pod: Obj) -> datetime.datetime | None:
    ready = next((c for c in pod.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    return parse_time(ready.get("lastTransitionTime")) if ready else None


def trigger_time(service: Obj, pods: list[Obj], previous: TriggerState | None
                 ) -> tuple[datetime.datetime | None, TriggerState]:
    """(the trigger time for this sync's writes, None for none; the state for the next sync). `pods` may be
    all pods: those in the service's namespace matching its selector count, whatever their phase."""
    selector = service.get("spec", {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    pod_times = {p["metadata"]["name"]: moment for p in pods
                 if p["metadata"].get("namespace") == namespace
                 and selector_matches(selector, p["metadata"].get("labels") or {})
                 and (moment := _pod_trigger_time(p)) is not None}
    created = parse_time(service["metadata"].get("creationTimestamp"))
    state = TriggerState(created, pod_times)
    if previous is None:
        return created, state
    changed = [moment for name, moment in pod_times.items()
               if (before := previous.pods.get(name)) is None or moment > before]
    if created is not None and (previous.service is None or created > previous.service):
        changed.append(created)
    return min(changed, default=None), state


def with_trigger_time(obj: Obj, moment: datetime.datetime | None) -> Obj:
    """`obj` (a desired Endpoints or EndpointSlice) annotated with `moment`, or without the annotation."""
    annotations = {k: v for k, v in (obj["metadata"].get("annotations") or {}).items() if k != TRIGGER_TIME}
    if moment is not None:
        annotations[TRIGGER_TIME] = format_time(moment)
    meta = {k: v for k, v in obj["metadata"].items() if k != "annotations"}
    if annotations:
        meta["annotations"] = annotations
    return {**obj, "metadata": meta}
