"""Defaulting, as kube-apiserver applies it on decode (`pkg/apis/core/v1/defaults.go`, `apps/v1/defaults.go`,
`discovery/v1` and the declarative `+default` markers).

Theory of operation: `apply_defaults(kind, obj)` deep-copies `obj` and runs the kind's defaulter from the table
`_DEFAULTERS`; each defaulter fills only fields that are absent (or kube's zero value), so defaulting is
idempotent: `apply_defaults(k, apply_defaults(k, o)) == apply_defaults(k, o)`.

Invariants: pure, never mutates its input, never raises (malformed shapes are left for validation to report).
Only what kubectl users see is defaulted; admission-plugin effects (service accounts, tolerations, priority) are
not defaulting and live elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from svcnet.api.jsontree import clone

__all__ = ["apply_defaults", "image_pull_policy"]

Obj = dict[str, Any]

DEFAULT_CLIENT_IP_TIMEOUT = 10800
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")


def apply_defaults(kind: str, obj: Obj) -> Obj:
    """A defaulted deep copy of `obj`; kinds without defaults come back as an unchanged copy."""
    result = clone(obj)
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None and isinstance(result, dict):
        defaulter(result)
    return result


def _dict(parent: Obj, key: str) -> Obj:
    """parent[key] as a dict, created when absent; a non-dict value is replaced by a scratch dict (never stored)."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


def _dicts(parent: Obj, key: str) -> list[Obj]:
    value = parent.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# ---- Service ---------------------------------------------------------------------------------------------------


def _default_service(svc: Obj) -> None:
    spec = _dict(svc, "spec")
    _default_session_affinity(spec)
    spec.setdefault("type", "ClusterIP")
    if not spec["type"]:
        spec["type"] = "ClusterIP"
    for port in _dicts(spec, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    kind = spec["type"]
    if (kind in _NODE_PORT_TYPES or (kind == "ClusterIP" and spec.get("externalIPs"))) and \
            not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind in ("ClusterIP", *_NODE_PORT_TYPES) and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if kind != "ExternalName":
        _default_cluster_ips(spec)


def _default_session_affinity(spec: Obj) -> None:
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}


def _default_cluster_ips(spec: Obj) -> None:
    """clusterIPs follows clusterIP (kube's normalizeClusterIPs); one family, single stack (svcnet is single-stack)."""
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]
    if not spec.get("ipFamilyPolicy"):
        spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = [_family(cluster_ip or (spec.get("clusterIPs") or [""])[0])]


def _family(ip: Any) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(str(ip)).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


# ---- Pods and pod templates ------------------------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an image with neither tag nor digest, else IfNotPresent (kube's ParseImageName)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus the nested container, probe, port and volume defaults (pods and templates)."""
    for key, value in (("dnsPolicy", "ClusterFirst"), ("restartPolicy", "Always"),
                       ("schedulerName", "default-scheduler")):
        if not spec.get(key):
            spec[key] = value
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    for container in _dicts(spec, "initContainers") + _dicts(spec, "containers"):
        _default_container(container)
    for volume in _dicts(spec, "volumes"):
        _default_volume(volume)


def _default_container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = image_pull_policy(str(container.get("image") or ""))
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in _dicts(container, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for name in _PROBES:
        probe = container.get(name)
        if isinstance(probe, dict):
            _default_probe(probe)
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])
    for env in _dicts(container, "env"):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env.get("valueFrom"), dict) else None
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def _default_probe(probe: Obj) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_handler(probe)


def _default_handler(handler: Obj) -> None:
    http_get = handler.get("httpGet")
    if isinstance(http_get, dict):
        if not http_get.get("path"):
            http_get["path"] = "/"
        if not http_get.get("scheme"):
            http_get["scheme"] = "HTTP"


_SOURCES = ("emptyDir", "hostPath", "secret", "configMap", "persistentVolumeClaim", "downwardAPI", "projected",
            "nfs", "iscsi", "csi", "ephemeral", "image", "gitRepo", "cephfs", "rbd", "fc", "flexVolume", "glusterfs",
            "awsElasticBlockStore", "gcePersistentDisk", "azureDisk", "azureFile", "vsphereVolume", "quobyte",
            "portworxVolume", "scaleIO", "storageos", "photonPersistentDisk", "flocker", "cinder")


def _default_volume(volume: Obj) -> None:
    if not any(volume.get(source) is not None for source in _SOURCES):
        volume["emptyDir"] = {}
    for source in _VOLUME_SOURCES_WITH_MODE:
        body = volume.get(source)
        if isinstance(body, dict) and body.get("defaultMode") is None:
            body["defaultMode"] = 0o644
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def _default_pod(pod: Obj) -> None:
    spec = _dict(pod, "spec")
    for container in _dicts(spec, "initContainers") + _dicts(spec, "containers"):
        _requests_from_limits(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for container in _dicts(spec, "initContainers") + _dicts(spec, "containers"):
            for port in _dicts(container, "ports"):
                if not port.get("hostPort"):
                    port["hostPort"] = port.get("containerPort", 0)
    _default_pod_spec(spec)


def _requests_from_limits(container: Obj) -> None:
    resources = container.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        requests = resources["requests"] = {}
    for name, quantity in resources["limits"].items():
        requests.setdefault(name, quantity)


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        _default_pod_spec(_dict(template, "spec"))


# ---- workloads -------------------------------------------------------------------------------------------------


def _default_deployment(deploy: Obj) -> None:
    spec = _dict(deploy, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def _default_replica_set(rs: Obj) -> None:
    spec = _dict(rs, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


def _default_replication_controller(rc: Obj) -> None:
    spec = _dict(rc, "spec")
    template = spec.get("template")
    labels = template.get("metadata", {}).get("labels") if isinstance(template, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _dict(rc, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# ---- networking and the rest -------------------------------------------------------------------------------


def _default_endpoints(ep: Obj) -> None:
    for subset in _dicts(ep, "subsets"):
        for port in _dicts(subset, "ports"):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def _default_endpoint_slice(slice_: Obj) -> None:
    for port in _dicts(slice_, "ports"):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def _default_secret(secret: Obj) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"


def _default_namespace(ns: Obj) -> None:
    meta = _dict(ns, "metadata")
    if meta.get("name"):
        labels = _dict(meta, "labels")
        labels["kubernetes.io/metadata.name"] = meta["name"]
    status = _dict(ns, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _default_ingress_class(ic: Obj) -> None:
    params = _dict(ic, "spec").get("parameters")
    if isinstance(params, dict) and not params.get("scope"):
        params["scope"] = "Cluster"


def _default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


# ---- Gateway API (the CRDs' schema defaults, gateway-api v1.3 standard channel) -------------------------------

_PENDING = {"lastTransitionTime": "1970-01-01T00:00:00Z", "message": "Waiting for controller", "reason": "Pending",
            "status": "Unknown"}
_GATEWAY_GROUP = "gateway.networking.k8s.io"


def _pending(*types: str) -> list[Obj]:
    return [{**_PENDING, "type": t} for t in types]


def _default_status_conditions(obj: Obj, *types: str) -> None:
    """The CRDs default `status` (and `status.conditions`) to Unknown/Pending conditions until a controller
    writes them."""
    status = obj.get("status")
    if status is None:
        obj["status"] = {"conditions": _pending(*types)}
    elif isinstance(status, dict) and status.get("conditions") is None:
        status["conditions"] = _pending(*types)


def _default_gateway_class(gc: Obj) -> None:
    _default_status_conditions(gc, "Accepted")


def _default_gateway(gw: Obj) -> None:
    spec = _dict(gw, "spec")
    for address in _dicts(spec, "addresses"):
        address.setdefault("type", "IPAddress")
    for listener in _dicts(spec, "listeners"):
        allowed = listener.get("allowedRoutes")
        if allowed is None:
            allowed = listener["allowedRoutes"] = {}
        if isinstance(allowed, dict):
            namespaces = _dict(allowed, "namespaces")
            namespaces.setdefault("from", "Same")
            for kind in _dicts(allowed, "kinds"):
                kind.setdefault("group", _GATEWAY_GROUP)
        tls = listener.get("tls")
        if isinstance(tls, dict):
            tls.setdefault("mode", "Terminate")
            for ref in _dicts(tls, "certificateRefs"):
                ref.setdefault("group", "")
                ref.setdefault("kind", "Secret")
    status = gw.get("status")
    if isinstance(status, dict):
        for address in _dicts(status, "addresses"):
            address.setdefault("type", "IPAddress")
    _default_status_conditions(gw, "Accepted", "Programmed")


def _default_backend_ref(ref: Obj) -> None:
    ref.setdefault("group", "")
    ref.setdefault("kind", "Service")


def _default_route_filters(filters: list[Obj]) -> None:
    for f in filters:
        mirror = f.get("requestMirror")
        if isinstance(mirror, dict):
            if isinstance(mirror.get("backendRef"), dict):
                _default_backend_ref(mirror["backendRef"])
            if isinstance(mirror.get("fraction"), dict):
                mirror["fraction"].setdefault("denominator", 100)
        redirect = f.get("requestRedirect")
        if isinstance(redirect, dict):
            redirect.setdefault("statusCode", 302)


def _default_route_match(match: Obj) -> None:
    path = match.get("path")
    if path is None:
        path = match["path"] = {}
    if isinstance(path, dict):
        path.setdefault("type", "PathPrefix")
        path.setdefault("value", "/")
    for key in ("headers", "queryParams"):
        for item in _dicts(match, key):
            item.setdefault("type", "Exact")


def _default_http_route(route: Obj) -> None:
    spec = _dict(route, "spec")
    for ref in _dicts(spec, "parentRefs"):
        ref.setdefault("group", _GATEWAY_GROUP)
        ref.setdefault("kind", "Gateway")
    if spec.get("rules") is None:
        spec["rules"] = [{}]
    for rule in _dicts(spec, "rules"):
        if rule.get("matches") is None:
            rule["matches"] = [{}]
        for match in _dicts(rule, "matches"):
            _default_route_match(match)
        _default_route_filters(_dicts(rule, "filters"))
        for ref in _dicts(rule, "backendRefs"):
            _default_backend_ref(ref)
            ref.setdefault("weight", 1)
            _default_route_filters(_dicts(ref, "filters"))
    status = route.get("status")
    if isinstance(status, dict):
        for parent in _dicts(status, "parents"):
            parent_ref = parent.get("parentRef")
            if isinstance(parent_ref, dict):
                parent_ref.setdefault("group", _GATEWAY_GROUP)
                parent_ref.setdefault("kind", "Gateway")


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Service": _default_service,
    "Pod": _default_pod,
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replica_set,
    "ReplicationController": _default_replication_controller,
    "Endpoints": _default_endpoints,
    "EndpointSlice": _default_endpoint_slice,
    "Secret": _default_secret,
    "Namespace": _default_namespace,
    "IngressClass": _default_ingress_class,
    "Node": _default_node,
    "GatewayClass": _default_gateway_class,
    "Gateway": _default_gateway,
    "HTTPRoute": _default_http_route,
}
