"""`meta.k8s.io/v1` Table rendering: the columns kube-apiserver's printers give `kubectl get` — pure.

One row function per kind returns the cells in column order; columns with priority 1 appear only with `-o wide`.
`now` is injected so AGE is deterministic in tests.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Column = tuple[str, str, int, str]  # name, type, priority, description

_NAME: Column = ("Name", "string", 0, "Name must be unique within a namespace.")
_AGE: Column = ("Age", "string", 0, "CreationTimestamp is a timestamp representing the server time when this "
                "object was created.")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text[:19]).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def age(obj: Obj, now: datetime.datetime) -> str:
    created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration((now - created).total_seconds())


def _since(text: str | None, now: datetime.datetime) -> str:
    moment = parse_time(text)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def _join(values: list[str], none: str = "<none>") -> str:
    return ",".join(values) if values else none


def _selector(sel: Obj | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    if "matchLabels" not in sel and "matchExpressions" not in sel:
        parts = [f"{k}={v}" for k, v in sorted(sel.items())]
    return ",".join(parts) or "<none>"


# ---- pods -----------------------------------------------------------------------------------------------------

def _pod_status(pod: Obj) -> str:
    status, meta = pod.get("status", {}), pod.get("metadata", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    initializing = False
    inits = status.get("initContainerStatuses") or []
    for i, cs in enumerate(inits):
        state = cs.get("state", {})
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        initializing = True
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(pod.get('spec', {}).get('initContainers') or [])}"
        break
    if not initializing:
        running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state", {})
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                term = state["terminated"]
                reason = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                else f"ExitCode:{term.get('exitCode')}")
            elif cs.get("ready") and state.get("running"):
                running = True
        if reason == "Completed" and running:
            reason = "Running" if _pod_ready(pod) else "NotReady"
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _restarts(pod: Obj, now: datetime.datetime) -> str:
    total, last = 0, None
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        total += cs.get("restartCount", 0)
        finished = parse_time((cs.get("lastState", {}).get("terminated") or {}).get("finishedAt"))
        if finished and (last is None or finished > last):
            last = finished
    if total and last is not None:
        return f"{total} ({human_duration((now - last).total_seconds())} ago)"
    return str(total)


def _pod_row(pod: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = pod.get("spec", {}), pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    gate_text = "<none>" if not gates else \
        f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", _pod_status(pod),
            _restarts(pod, now), age(pod, now), status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gate_text]


# ---- services and endpoints -----------------------------------------------------------------------------------

def _external_ip(svc: Obj) -> str:
    spec = svc.get("spec", {})
    kind = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return _join(external)
    if kind == "ExternalName":
        return spec.get("externalName") or "<none>"
    ingress = [i.get("ip") or i.get("hostname") for i in svc.get("status", {}).get("loadBalancer", {}).get(
        "ingress") or []]
    addresses = [a for a in ingress if a] + external
    return ",".join(addresses) if addresses else "<pending>"


def _service_ports(svc: Obj) -> str:
    out = []
    for port in svc.get("spec", {}).get("ports") or []:
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        out.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _service_row(svc: Obj, now: datetime.datetime) -> list[Any]:
    spec = svc.get("spec", {})
    cluster_ip = spec.get("clusterIP") or "<none>"
    return [svc["metadata"]["name"], spec.get("type", "ClusterIP"), cluster_ip, _external_ip(svc),
            _service_ports(svc), age(svc, now), _selector(spec.get("selector"))]


def _format_endpoints(pairs: list[str]) -> str:
    if not pairs:
        return "<none>"
    shown = ",".join(pairs[:3])
    return shown + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")


def _endpoints_row(ep: Obj, now: datetime.datetime) -> list[Any]:
    pairs = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or [{}]
        for address in subset.get("addresses") or []:
            for port in ports:
                pairs.append(f"{address.get('ip')}:{port['port']}" if port.get("port") else address.get("ip"))
    return [ep["metadata"]["name"], _format_endpoints(pairs), age(ep, now)]


def _slice_row(es: Obj, now: datetime.datetime) -> list[Any]:
    ports = [str(p.get("port")) if p.get("port") is not None else "<unset>" for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [es["metadata"]["name"], es.get("addressType", ""), _join(ports, "<unset>"),
            _format_endpoints(addresses) if addresses else "<unset>", age(es, now)]


# ---- workloads -------------------------------------------------------------------------------------------------

def _containers(obj: Obj) -> tuple[str, str]:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _deployment_row(d: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = d.get("spec", {}), d.get("status", {})
    names, images = _containers(d)
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now), names, images,
            _selector(spec.get("selector"))]


def _replica_row(rs: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = rs.get("spec", {}), rs.get("status", {})
    names, images = _containers(rs)
    return [rs["metadata"]["name"], spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), age(rs, now), names, images, _selector(spec.get("selector"))]


# ---- cluster objects -------------------------------------------------------------------------------------------

def _node_row(node: Obj, now: datetime.datetime) -> list[Any]:
    status, spec = node.get("status", {}), node.get("spec", {})
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node.get("metadata", {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo", {})
    return [node["metadata"]["name"], state, _join(roles), age(node, now), info.get("kubeletVersion", ""),
            addresses.get("InternalIP") or "<none>", addresses.get("ExternalIP") or "<none>",
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


def _event_row(ev: Obj, now: datetime.datetime) -> list[Any]:
    obj = ev.get("involvedObject", {})
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("metadata", {}).get("creationTimestamp")
    first = ev.get("firstTimestamp") or ev.get("eventTime") or ev.get("metadata", {}).get("creationTimestamp")
    source = ev.get("source", {}).get("component") or ev.get("reportingComponent") or ""
    if ev.get("source", {}).get("host"):
        source += f", {ev['source']['host']}"
    return [_since(last, now), ev.get("type", ""), ev.get("reason", ""),
            f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}", ev.get("message", ""),
            obj.get("fieldPath", ""), source, _since(first, now), ev.get("count", 1), ev["metadata"]["name"]]


def _ingress_row(ing: Obj, now: datetime.datetime) -> list[Any]:
    spec = ing.get("spec", {})
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    addresses = [i.get("ip") or i.get("hostname") for i in ing.get("status", {}).get("loadBalancer", {}).get(
        "ingress") or []]
    return [ing["metadata"]["name"], spec.get("ingressClassName") or "<none>", _join(hosts, "*"),
            ",".join(a for a in addresses if a), "80, 443" if spec.get("tls") else "80", age(ing, now)]


def _ingress_class_row(ic: Obj, now: datetime.datetime) -> list[Any]:
    params = ic.get("spec", {}).get("parameters")
    text = f"{params.get('kind')}/{params.get('name')}" if params else "<none>"
    return [ic["metadata"]["name"], ic.get("spec", {}).get("controller", ""), text, age(ic, now)]


def _owner(obj: Obj) -> str:
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    if not owners:
        return "<none>"
    ref = owners[0]
    group = ref.get("apiVersion", "").rpartition("/")[0]
    kind = ref.get("kind", "").lower() + (f".{group}" if group else "")
    return f"{kind}/{ref.get('name', '')}"


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, datetime.datetime], list[Any]]:
    def row(obj: Obj, now: datetime.datetime) -> list[Any]:
        return [obj["metadata"]["name"], *(cell(obj) for cell in cells), age(obj, now)]
    return row


def _col(name: str, kind: str = "string", priority: int = 0, description: str = "") -> Column:
    return (name, kind, priority, description)


_PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, datetime.datetime], list[Any]]]] = {
    "Pod": ([_NAME, _col("Ready"), _col("Status"), _col("Restarts"), _AGE, _col("IP", priority=1),
             _col("Node", priority=1), _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)],
            _pod_row),
    "Service": ([_NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _AGE,
                 _col("Selector", priority=1)], _service_row),
    "Endpoints": ([_NAME, _col("Endpoints"), _AGE], _endpoints_row),
    "EndpointSlice": ([_NAME, _col("AddressType"), _col("Ports"), _col("Endpoints"), _AGE], _slice_row),
    "Deployment": ([_NAME, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _AGE,
                    _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                   _deployment_row),
    "ReplicaSet": ([_NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), _AGE,
                    _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                   _replica_row),
    "Node": ([_NAME, _col("Status"), _col("Roles"), _AGE, _col("Version"), _col("Internal-IP", priority=1),
              _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node_row),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message"),
               _col("Subobject", priority=1), _col("Source", priority=1), _col("First Seen", priority=1),
               _col("Count", "integer", 1), _col("Name", priority=1)], _event_row),
    "Namespace": ([_NAME, _col("Status"), _AGE], _simple(lambda o: o.get("status", {}).get("phase", ""))),
    "ConfigMap": ([_NAME, _col("Data", "integer"), _AGE],
                  _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "Secret": ([_NAME, _col("Type"), _col("Data", "integer"), _AGE],
               _simple(lambda o: o.get("type", "Opaque"), lambda o: len(o.get("data") or {}))),
    "ServiceAccount": ([_NAME, _col("Secrets", "integer"), _AGE], _simple(lambda o: len(o.get("secrets") or []))),
    "Ingress": ([_NAME, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), _AGE], _ingress_row),
    "IngressClass": ([_NAME, _col("Controller"), _col("Parameters"), _AGE], _ingress_class_row),
    "Lease": ([_NAME, _col("Holder"), _AGE], _simple(lambda o: o.get("spec", {}).get("holderIdentity", ""))),
    "ControllerRevision": ([_NAME, _col("Controller"), _col("Revision", "integer"), _AGE],
                           _simple(_owner, lambda o: o.get("revision", 0))),
}
_PRINTERS["ReplicationController"] = _PRINTERS["ReplicaSet"]


def column_definitions(kind: str) -> list[dict[str, Any]]:
    columns = _PRINTERS.get(kind, ([_NAME, _AGE], None))[0]
    return [{"name": name, "type": typ, "format": "name" if name == "Name" and priority == 0 else "",
             "description": description, "priority": priority} for name, typ, priority, description in columns]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(kind: str, objects: list[Obj], now: datetime.datetime, include_object: str = "Metadata") -> Obj:
    printer = _PRINTERS.get(kind)
    render = printer[1] if printer else (lambda o, n: [o["metadata"]["name"], age(o, n)])
    rows = []
    for obj in objects:
        row: Obj = {"cells": render(obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": column_definitions(kind), "rows": rows}
