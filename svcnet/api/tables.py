"""`meta.k8s.io/v1` Table rendering: the columns kube-apiserver's printers give `kubectl get` — pure.

Theory of operation: `_PRINTERS` maps a kind to (columns, row function). A row function returns the cells in
column order — always all of them, wide ones included, as kube-apiserver's TableConvertor does (it prints with
`Wide: true`; kubectl hides `priority: 1` columns unless `-o wide`). Unknown kinds get NAME AGE.

Invariants:
- `len(row["cells"]) == len(columnDefinitions)` for every kind;
- `now` is injected, so AGE and the other "… ago" cells are deterministic;
- the cell texts follow kubernetes `pkg/printers/internalversion/printers.go` (v1.32): `<none>`, `<pending>`,
  `<unset>`, `<unknown>` placeholders, "+ N more..." after three entries, HumanDuration ages;
- column descriptions are Kubernetes' own field docs, read from the shipped OpenAPI schemas where the printer
  takes them from a field.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any

from svcnet.api import openapi

Obj = dict[str, Any]
Now = datetime.datetime
RowFn = Callable[[Obj, Now], list[Any]]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_MAX_LISTED = 3  # printers list three entries, then "+ N more..."
_POD_ROW_CONDITIONS = {
    "Succeeded": "The pod has completed successfully.",
    "Failed": "The pod failed.",
}


# ---- time ------------------------------------------------------------------------------------------------------

def parse_time(text: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp (`metav1.Time`/`MicroTime`, always UTC on the wire) to an aware datetime."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text[:19]).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kube's `duration.HumanDuration`: `5s`, `3m2s`, `15m`, `2h5m`, `20h`, `2d3h`, `30d`, `2y45d`."""
    s = int(seconds)  # Go truncates toward zero; up to one second in the future counts as now
    if s < -1:
        return "<invalid>"
    s = max(s, 0)
    minutes, hours = s // 60, s // 3600
    days = hours // 24
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return _two_units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def since(text: str | None, now: Now) -> str:
    """`translateTimestampSince`: the age of a timestamp, `<unknown>` when unset."""
    moment = parse_time(text)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def age(obj: Obj, now: Now) -> str:
    return since(obj.get("metadata", {}).get("creationTimestamp"), now)


# ---- shared formatting -----------------------------------------------------------------------------------------

def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _list_with_more(items: list[str], empty: str) -> str:
    """The first three items, then ` + N more...`; `empty` when there are none."""
    if not items:
        return empty
    shown = ",".join(items[:_MAX_LISTED])
    return f"{shown} + {len(items) - _MAX_LISTED} more..." if len(items) > _MAX_LISTED else shown


def format_labels(labels: dict[str, str] | None) -> str:
    """`labels.FormatLabels`: `a=1,b=2` sorted by key, `<none>` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_label_selector(selector: Obj | None) -> str:
    """A `metav1.LabelSelector` as `labels.Selector.String()`: requirements sorted by key, `""` when empty."""
    if not selector:
        return ""
    requirements = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, values = expr.get("key", ""), ",".join(sorted(expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                "DoesNotExist": f"!{key}"}.get(expr.get("operator", ""), "<error>")
        requirements.append((key, text))
    return ",".join(text for _, text in sorted(requirements, key=lambda kv: kv[0]))


def _containers(template: Obj | None) -> list[str]:
    """[names, images] of a pod template's containers (`layoutContainerCells`)."""
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)]


def _lb_ingress(status: Obj | None) -> str:
    """Load-balancer ingress points: IP, else hostname; sorted and de-duplicated (a `sets.String`)."""
    points = {i.get("ip") or i.get("hostname") for i in ((status or {}).get("loadBalancer") or {}).get(
        "ingress") or []}
    return ",".join(sorted(p for p in points if p))


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# ---- pods ------------------------------------------------------------------------------------------------------

def _restartable(container: Obj | None) -> bool:
    """A sidecar: an init container with `restartPolicy: Always`."""
    return container is not None and container.get("restartPolicy") == "Always"


def _finished_at(cs: Obj) -> datetime.datetime | None:
    return parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))


def _later(a: datetime.datetime | None, b: datetime.datetime | None) -> datetime.datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


class _PodSummary:
    """The mutable tally `printPod` keeps while it walks init and app container statuses."""

    def __init__(self, pod: Obj) -> None:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        self.pod, self.spec, self.status = pod, spec, status
        self.reason = status.get("reason") or status.get("phase") or ""
        if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
               for c in status.get("conditions") or []):
            self.reason = "SchedulingGated"
        self.inits = {c.get("name"): c for c in spec.get("initContainers") or []}
        self.total = len(spec.get("containers") or []) + sum(1 for c in self.inits.values() if _restartable(c))
        self.ready = 0
        self.restarts = 0
        self.last_restart: datetime.datetime | None = None
        self.sidecar_restarts: tuple[int, datetime.datetime | None] = (0, None)

    def walk_init_containers(self) -> bool:
        """Tally init containers; True while the pod is still initializing (reason set to `Init:…`)."""
        sidecar_restarts, sidecar_last = 0, None
        initializing = False
        for i, cs in enumerate(self.status.get("initContainerStatuses") or []):
            self.restarts += cs.get("restartCount", 0)
            self.last_restart = _later(self.last_restart, _finished_at(cs))
            sidecar = _restartable(self.inits.get(cs.get("name")))
            if sidecar:
                sidecar_restarts += cs.get("restartCount", 0)
                sidecar_last = _later(sidecar_last, _finished_at(cs))
            state = cs.get("state") or {}
            term, wait = state.get("terminated"), state.get("waiting") or {}
            if term and term.get("exitCode", 0) == 0:
                continue
            if sidecar and cs.get("started"):
                self.ready += 1 if cs.get("ready") else 0
                continue
            initializing = True
            if term:
                self.reason = _terminated_reason(term, "Init:")
            elif wait.get("reason") and wait["reason"] != "PodInitializing":
                self.reason = "Init:" + wait["reason"]
            else:
                self.reason = f"Init:{i}/{len(self.inits)}"
            break
        self.sidecar_restarts = (sidecar_restarts, sidecar_last)
        return initializing

    def walk_containers(self) -> None:
        """Tally app containers, last first; the reason becomes the first waiting/terminated one found."""
        self.restarts, self.last_restart = self.sidecar_restarts
        running = False
        for cs in reversed(self.status.get("containerStatuses") or []):
            self.restarts += cs.get("restartCount", 0)
            self.last_restart = _later(self.last_restart, _finished_at(cs))
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                self.reason = state["waiting"]["reason"]
            elif state.get("terminated") is not None:
                self.reason = _terminated_reason(state["terminated"])
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                self.ready += 1
        if self.reason == "Completed" and running:
            self.reason = "Running" if _condition_true(self.status, "Ready") else "NotReady"


def _condition_true(status: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def _readiness_gates(spec: Obj, status: Obj) -> str:
    gates = spec.get("readinessGates") or []
    if not gates:
        return "<none>"
    first: dict[str, str] = {}
    for condition in status.get("conditions") or []:
        first.setdefault(condition.get("type"), condition.get("status"))
    ready = sum(1 for g in gates if first.get(g.get("conditionType")) == "True")
    return f"{ready}/{len(gates)}"


def _pod_row(pod: Obj, now: Now) -> list[Any]:
    summary = _PodSummary(pod)
    initializing = summary.walk_init_containers()
    if not initializing or _condition_true(summary.status, "Initialized"):
        summary.walk_containers()
    status, spec, meta = summary.status, summary.spec, pod.get("metadata") or {}
    reason = summary.reason
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts += f" ({human_duration((now - summary.last_restart).total_seconds())} ago)"
    pod_ips = status.get("podIPs") or [{"ip": status.get("podIP")}]
    return [_name(pod), f"{summary.ready}/{summary.total}", reason, restarts, age(pod, now),
            pod_ips[0].get("ip") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", _readiness_gates(spec, status)]


def _pod_conditions(pod: Obj) -> list[Obj] | None:
    """Row conditions: `Completed` for pods that succeeded or failed (kubectl uses them to dim rows)."""
    phase = (pod.get("status") or {}).get("phase")
    message = _POD_ROW_CONDITIONS.get(phase or "")
    if message is None:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# ---- services and endpoints ------------------------------------------------------------------------------------

def _external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    external = list(spec.get("externalIPs") or [])
    kind = spec.get("type")
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = _lb_ingress(svc.get("status"))
        return ",".join(([ingress] if ingress else []) + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_ports(ports: list[Obj]) -> str:
    out = []
    for port in ports:
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        out.append(f"{port.get('port', 0)}{node_port}/{port.get('protocol', '')}")
    return ",".join(out) or "<none>"


def _service_row(svc: Obj, now: Now) -> list[Any]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_name(svc), spec.get("type", ""), cluster_ips[0] if cluster_ips else "<none>", _external_ip(svc),
            _service_ports(spec.get("ports") or []), age(svc, now), format_labels(spec.get("selector"))]


def _format_endpoints(subsets: list[Obj]) -> str:
    """`formatEndpoints`: ip:port per (port, address), ports outer; `<none>` without subsets."""
    if not subsets:
        return "<none>"
    pairs: list[str] = []
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            pairs.extend(addresses)
        for port in ports:
            pairs.extend(_host_port(ip, port.get("port", 0)) for ip in addresses)
    return _list_with_more(pairs, "")


def _endpoints_row(ep: Obj, now: Now) -> list[Any]:
    return [_name(ep), _format_endpoints(ep.get("subsets") or []), age(ep, now)]


def _slice_port(port: Obj) -> str:
    if port.get("port") is not None:
        return str(port["port"])
    return str(port["name"]) if port.get("name") is not None else "*"


def _slice_row(es: Obj, now: Now) -> list[Any]:
    ports = [_slice_port(p) for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_name(es), es.get("addressType", ""), _list_with_more(ports, "<unset>"),
            _list_with_more(addresses, "<unset>"), age(es, now)]


def _ingress_hosts(rules: list[Obj]) -> str:
    """`formatHosts`: up to three hosts; `*` when no rule names one; the "more" count counts all rules."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        more = more or len(hosts) == _MAX_LISTED
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    return ",".join(hosts) + (f" + {len(rules) - _MAX_LISTED} more..." if more else "")


def _ingress_row(ing: Obj, now: Now) -> list[Any]:
    spec = ing.get("spec") or {}
    return [_name(ing), spec.get("ingressClassName") or "<none>", _ingress_hosts(spec.get("rules") or []),
            _lb_ingress(ing.get("status")), "80, 443" if spec.get("tls") else "80", age(ing, now)]


def _ingress_class_row(ic: Obj, now: Now) -> list[Any]:
    spec = ic.get("spec") or {}
    params = spec.get("parameters")
    text = "<none>"
    if params:
        group = f".{params['apiGroup']}" if params.get("apiGroup") is not None else ""
        text = f"{params.get('kind', '')}{group}/{params.get('name', '')}"
    return [_name(ic), spec.get("controller", ""), text, age(ic, now)]


# ---- workloads -------------------------------------------------------------------------------------------------

def _deployment_row(d: Obj, now: Now) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [_name(d), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now),
            *_containers(spec.get("template")), format_label_selector(spec.get("selector"))]


def _replica_counts(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0)]


def _replicaset_row(rs: Obj, now: Now) -> list[Any]:
    spec = rs.get("spec") or {}
    return [_name(rs), *_replica_counts(rs), age(rs, now), *_containers(spec.get("template")),
            format_label_selector(spec.get("selector")) or "<none>"]


def _rc_row(rc: Obj, now: Now) -> list[Any]:
    spec = rc.get("spec") or {}
    return [_name(rc), *_replica_counts(rc), age(rc, now), *_containers(spec.get("template")),
            format_labels(spec.get("selector"))]


def _controller_of(obj: Obj) -> str:
    """`kind[.group]/name` of the owner reference with `controller: true`, `<none>` without one."""
    ref = next((r for r in obj.get("metadata", {}).get("ownerReferences") or [] if r.get("controller")), None)
    if ref is None:
        return "<none>"
    group = str(ref.get("apiVersion", "")).rpartition("/")[0]
    kind = str(ref.get("kind", "")) + (f".{group}" if group else "")
    return f"{kind.lower()}/{ref.get('name', '')}" if kind else str(ref.get("name", ""))


# ---- cluster objects -------------------------------------------------------------------------------------------

def _node_roles(labels: dict[str, str]) -> str:
    roles = {k.removeprefix("node-role.kubernetes.io/") for k in labels if k.startswith("node-role.kubernetes.io/")}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    return next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == kind), "<none>")


def _node_row(node: Obj, now: Now) -> list[Any]:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    states = ["Unknown" if not ready else "Ready" if ready[-1] == "True" else "NotReady"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [_name(node), ",".join(states), _node_roles(node.get("metadata", {}).get("labels") or {}),
            age(node, now), info.get("kubeletVersion", ""), _node_address(status, "InternalIP"),
            _node_address(status, "ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def _event_source(ev: Obj) -> str:
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def _event_row(ev: Obj, now: Now) -> list[Any]:
    involved = ev.get("involvedObject") or {}
    first = since(ev.get("firstTimestamp") or ev.get("eventTime"), now)
    last = since(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 1
    if ev.get("series"):
        last = since(ev["series"].get("lastObservedTime"), now)
        count = ev["series"].get("count", 0)
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, ev.get("type", ""), ev.get("reason", ""), target, involved.get("fieldPath", ""),
            _event_source(ev), str(ev.get("message", "")).strip(), first, count, _name(ev)]


def _condition_status(obj: Obj, kind: str) -> str:
    """`.status.conditions[?(@.type==kind)].status`, as a CRD printer column gives it ("" when absent)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((str(c.get("status", "")) for c in conditions if isinstance(c, dict) and c.get("type") == kind), "")


def _gateway_addresses(gw: Obj) -> str:
    """`.status.addresses[*].value`: several results joined by spaces, as the JSONPath printer does."""
    addresses = (gw.get("status") or {}).get("addresses") or []
    return " ".join(str(a.get("value", "")) for a in addresses if isinstance(a, dict))


def _gateway_class_row(gc: Obj, now: Now) -> list[Any]:
    spec = gc.get("spec") or {}
    return [_name(gc), spec.get("controllerName", ""), _condition_status(gc, "Accepted"), age(gc, now),
            spec.get("description", "")]


def _json_cell(value: Any) -> str:
    """A CRD printer column of type string over a list prints it as JSON (`["a.example.com"]`)."""
    return json.dumps(value, separators=(",", ":")) if value else ""


def _simple(*cells: Callable[[Obj], Any]) -> RowFn:
    """Row function for NAME, the given cells, AGE."""
    def row(obj: Obj, now: Now) -> list[Any]:
        return [_name(obj), *(cell(obj) for cell in cells), age(obj, now)]
    return row


# ---- columns ---------------------------------------------------------------------------------------------------

Column = tuple[str, str, int, str]  # name, type, priority, description (or "<schema>#<field>" to look up)

_NAME: Column = ("Name", "string", 0, f"{_META}#name")
_AGE: Column = ("Age", "string", 0, f"{_META}#creationTimestamp")
_CONTAINERS: Column = ("Containers", "string", 1, "Names of each container in the template.")
_IMAGES: Column = ("Images", "string", 1, "Images referenced by each container in the template.")


def _col(name: str, doc: str, kind: str = "string", priority: int = 0) -> Column:
    return (name, kind, priority, doc)


def _wide(name: str, doc: str) -> Column:
    return (name, "string", 1, doc)


def _replica_columns(spec: str, status: str) -> list[Column]:
    return [_NAME, _col("Desired", f"{spec}#replicas", "integer"), _col("Current", f"{status}#replicas", "integer"),
            _col("Ready", f"{status}#readyReplicas", "integer"), _AGE, _CONTAINERS, _IMAGES,
            _wide("Selector", f"{spec}#selector")]


_PRINTERS: dict[str, tuple[list[Column], RowFn]] = {
    "Pod": ([_NAME, _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
             _col("Status", "The aggregate status of the containers in this pod."),
             _col("Restarts", "The number of times the containers in this pod have been restarted and when the "
                              "last container in this pod has restarted."), _AGE,
             _wide("IP", f"{_CORE}PodStatus#podIP"), _wide("Node", f"{_CORE}PodSpec#nodeName"),
             _wide("Nominated Node", f"{_CORE}PodStatus#nominatedNodeName"),
             _wide("Readiness Gates", f"{_CORE}PodSpec#readinessGates")], _pod_row),
    "Service": ([_NAME, _col("Type", f"{_CORE}ServiceSpec#type"), _col("Cluster-IP", f"{_CORE}ServiceSpec#clusterIP"),
                 _col("External-IP", f"{_CORE}ServiceSpec#externalIPs"), _col("Port(s)", f"{_CORE}ServiceSpec#ports"),
                 _AGE, _wide("Selector", f"{_CORE}ServiceSpec#selector")], _service_row),
    "Endpoints": ([_NAME, _col("Endpoints", f"{_CORE}Endpoints#subsets"), _AGE], _endpoints_row),
    "EndpointSlice": ([_NAME, _col("AddressType", "io.k8s.api.discovery.v1.EndpointSlice#addressType"),
                       _col("Ports", "io.k8s.api.discovery.v1.EndpointSlice#ports"),
                       _col("Endpoints", "io.k8s.api.discovery.v1.EndpointSlice#endpoints"), _AGE], _slice_row),
    "Deployment": ([_NAME, _col("Ready", "Number of the pod with ready state"),
                    _col("Up-to-date", f"{_APPS}DeploymentStatus#updatedReplicas"),
                    _col("Available", f"{_APPS}DeploymentStatus#availableReplicas"), _AGE, _CONTAINERS, _IMAGES,
                    _wide("Selector", f"{_APPS}DeploymentSpec#selector")], _deployment_row),
    "ReplicaSet": (_replica_columns(f"{_APPS}ReplicaSetSpec", f"{_APPS}ReplicaSetStatus"), _replicaset_row),
    "ReplicationController": (_replica_columns(f"{_CORE}ReplicationControllerSpec",
                                               f"{_CORE}ReplicationControllerStatus"), _rc_row),
    "Namespace": ([_NAME, _col("Status", "The status of the namespace"), _AGE],
                  _simple(lambda o: (o.get("status") or {}).get("phase", ""))),
    "Node": ([_NAME, _col("Status", "The status of the node"), _col("Roles", "The roles of the node"), _AGE,
              _col("Version", f"{_CORE}NodeSystemInfo#kubeletVersion"),
              _wide("Internal-IP", f"{_CORE}NodeStatus#addresses"), _wide("External-IP", f"{_CORE}NodeStatus#addresses"),
              _wide("OS-Image", f"{_CORE}NodeSystemInfo#osImage"),
              _wide("Kernel-Version", f"{_CORE}NodeSystemInfo#kernelVersion"),
              _wide("Container-Runtime", f"{_CORE}NodeSystemInfo#containerRuntimeVersion")], _node_row),
    "Event": ([_col("Last Seen", f"{_CORE}Event#lastTimestamp"), _col("Type", f"{_CORE}Event#type"),
               _col("Reason", f"{_CORE}Event#reason"), _col("Object", f"{_CORE}Event#involvedObject"),
               _wide("Subobject", f"{_CORE}ObjectReference#fieldPath"), _wide("Source", f"{_CORE}Event#source"),
               _col("Message", f"{_CORE}Event#message"), _wide("First Seen", f"{_CORE}Event#firstTimestamp"),
               _wide("Count", f"{_CORE}Event#count"), ("Name", "string", 1, f"{_META}#name")], _event_row),
    "ConfigMap": ([_NAME, _col("Data", f"{_CORE}ConfigMap#data"), _AGE],
                  _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "Secret": ([_NAME, _col("Type", f"{_CORE}Secret#type"), _col("Data", f"{_CORE}Secret#data"), _AGE],
               _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}))),
    "ServiceAccount": ([_NAME, _col("Secrets", f"{_CORE}ServiceAccount#secrets"), _AGE],
                       _simple(lambda o: len(o.get("secrets") or []))),
    "Ingress": ([_NAME, _col("Class", "The name of the IngressClass resource that should be used for additional "
                                      "configuration"),
                 _col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
                 _col("Address", "Address is a list containing ingress points for the load-balancer"),
                 _col("Ports", "Ports of TLS configurations that open"), _AGE], _ingress_row),
    "IngressClass": ([_NAME, _col("Controller", "Controller that is responsible for handling this class"),
                      _col("Parameters", "A reference to a resource with additional parameters"), _AGE],
                     _ingress_class_row),
    "Lease": ([_NAME, _col("Holder", "io.k8s.api.coordination.v1.LeaseSpec#holderIdentity"), _AGE],
              _simple(lambda o: (o.get("spec") or {}).get("holderIdentity") or "")),
    # Gateway API: the CRDs' additionalPrinterColumns
    "GatewayClass": ([_NAME, _col("Controller", "Domain-prefixed path of the controller"),
                      _col("Accepted", "The status of the Accepted condition"), _AGE,
                      _wide("Description", "Human-readable description")],
                     _gateway_class_row),
    "Gateway": ([_NAME, _col("Class", "Name of the GatewayClass"),
                 _col("Address", "Addresses the Gateway is reachable at"),
                 _col("Programmed", "The status of the Programmed condition"), _AGE],
                _simple(lambda o: (o.get("spec") or {}).get("gatewayClassName", ""), _gateway_addresses,
                        lambda o: _condition_status(o, "Programmed"))),
    "HTTPRoute": ([_NAME, _col("Hostnames", "Hostnames matched against the Host header"), _AGE],
                  _simple(lambda o: _json_cell((o.get("spec") or {}).get("hostnames")))),
    "ReferenceGrant": ([_NAME, _AGE], _simple()),
    "ControllerRevision": ([_NAME, _col("Controller", "Controller of the object"),
                            _col("Revision", f"{_APPS}ControllerRevision#revision"), _AGE],
                           _simple(_controller_of, lambda o: o.get("revision", 0))),
}
_GENERIC: tuple[list[Column], RowFn] = ([_NAME, _AGE], _simple())


def _describe(doc: str) -> str:
    """A literal description, or `<schema name>#<field>` resolved against the shipped OpenAPI schemas."""
    schema_name, hash_, field = doc.partition("#")
    if not hash_:
        return doc
    prop = openapi.schemas().get(schema_name, {}).get("properties", {}).get(field, {})
    return str(prop.get("description", ""))


@functools.cache
def _column_definitions(kind: str) -> tuple[tuple[tuple[str, Any], ...], ...]:
    columns = _PRINTERS.get(kind, _GENERIC)[0]
    return tuple(
        (("name", name), ("type", typ), ("format", "name" if doc == f"{_META}#name" else ""),
         ("description", _describe(doc)), ("priority", priority))
        for name, typ, priority, doc in columns)


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """`columnDefinitions` for `kind` (NAME AGE for kinds without a printer); a fresh list each call."""
    return [dict(column) for column in _column_definitions(kind)]


table_column_definitions = column_definitions


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(kind: str, objects: list[Obj], now: Now, include_object: str = "Metadata") -> Obj:
    """A `meta.k8s.io/v1` Table of `objects` (all of `kind`); `metadata` is left for the caller to fill.

    `include_object` is the `includeObject` query parameter: `None`, `Metadata` (PartialObjectMetadata) or
    `Object` (the whole object).
    """
    render = _PRINTERS.get(kind, _GENERIC)[1]
    rows = []
    for obj in objects:
        row: Obj = {"cells": render(obj, now)}
        if kind == "Pod" and (conditions := _pod_conditions(obj)):
            row["conditions"] = conditions
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": column_definitions(kind), "rows": rows}
