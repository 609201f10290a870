"""The kinds svcnet serves: one table that discovery, OpenAPI, routing, storage keys and kubectl tables read.

`RESOURCES` holds the stored kinds, one storage version each; the Gateway API kinds are among them (served as
built-in kinds, with CRD semantics: `custom` marks them). `SERVED` adds the legacy views: kinds served in an older
group-version and kept in another one's storage (`storage_api_version`), converted on every request by
`svcnet.api.conversion`, each request answered with the `deprecation` warning kube-apiserver gives.

Invariants: plural names are unique per group-version; every kind has exactly one storage version (its entry in
`RESOURCES`); a legacy view's storage version is in `RESOURCES`, and it shares that entry's store keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str  # "status", "scale", "log", "exec", ...
    kind: str  # response kind
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = field(default=())
    custom: bool = False  # served like a CRD: no strategic merge patch, no compiled-in types in clients
    storage_api_version: str = ""  # a legacy view: the apiVersion its objects are stored in ("" = this one)
    deprecation: str = ""  # the Warning text every request to this version gets

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_prefix(self) -> str:
        """Key prefix in the store: /registry/<group>/<plural>/ (core group: /registry/<plural>/); a legacy view
        shares its storage version's prefix."""
        group = self.storage_api_version.rpartition("/")[0] if self.storage_api_version else self.group
        return f"/registry/{group}/{self.plural}/" if group else f"/registry/{self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix}{namespace}/{name}"
        return f"{self.storage_prefix}{name}"

    def prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.storage_prefix}{namespace}/"
        return self.storage_prefix

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


_SCALE = Subresource("scale", "Scale", group="autoscaling", version="v1")


def _status(kind: str, group: str = "", version: str = "v1") -> Subresource:
    return Subresource("status", kind, group, version)


GATEWAY = "gateway.networking.k8s.io"
GATEWAY_API: tuple[ResourceInfo, ...] = (
    ResourceInfo(GATEWAY, "v1", "GatewayClass", "gatewayclasses", "gatewayclass", False, ("gc",), ("gateway-api",),
                 subresources=(_status("GatewayClass", GATEWAY),), custom=True),
    ResourceInfo(GATEWAY, "v1", "Gateway", "gateways", "gateway", True, ("gtw",), ("gateway-api",),
                 subresources=(_status("Gateway", GATEWAY),), custom=True),
    ResourceInfo(GATEWAY, "v1", "HTTPRoute", "httproutes", "httproute", True, (), ("gateway-api",),
                 subresources=(_status("HTTPRoute", GATEWAY),), custom=True),
    ResourceInfo(GATEWAY, "v1beta1", "ReferenceGrant", "referencegrants", "referencegrant", True, ("refgrant",),
                 ("gateway-api",), custom=True),
)

RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(_status("Namespace"),)),
    ResourceInfo("", "v1", "Node", "nodes", "node", False, ("no",), subresources=(_status("Node"),)),
    ResourceInfo("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",), subresources=(
        _status("Pod"),
        Subresource("log", "Pod", verbs=("get",)),
        Subresource("exec", "PodExecOptions", verbs=("create", "get")),
        Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
        Subresource("binding", "Binding", verbs=("create",)),
        Subresource("eviction", "Eviction", group="policy", verbs=("create",)),
    )),
    ResourceInfo("", "v1", "Service", "services", "service", True, ("svc",), ("all",),
                 subresources=(_status("Service"),)),
    ResourceInfo("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",)),
    ResourceInfo("", "v1", "Event", "events", "event", True, ("ev",)),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceInfo("", "v1", "Secret", "secrets", "secret", True),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",)),
    ResourceInfo("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", True,
                 ("rc",), ("all",), subresources=(_status("ReplicationController"), _SCALE)),
    ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                 subresources=(_status("Deployment", "apps"), _SCALE)),
    ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                 subresources=(_status("ReplicaSet", "apps"), _SCALE)),
    ResourceInfo("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", True),
    ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True),
    ResourceInfo("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True, ("ing",),
                 subresources=(_status("Ingress", "networking.k8s.io"),)),
    ResourceInfo("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", False),
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    *GATEWAY_API,
)

_INGRESS_DEPRECATED = "{} Ingress is deprecated in v1.{}+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress"


def _legacy_ingress(group: str, deprecated_since: int) -> ResourceInfo:
    return ResourceInfo(group, "v1beta1", "Ingress", "ingresses", "ingress", True, ("ing",),
                        subresources=(_status("Ingress", group, "v1beta1"),),
                        storage_api_version="networking.k8s.io/v1",
                        deprecation=_INGRESS_DEPRECATED.format(f"{group}/v1beta1", deprecated_since))


# Served, not stored: after the stored kinds, so discovery lists networking.k8s.io/v1 first and `kubectl get
# ingress` resolves to it.
LEGACY: tuple[ResourceInfo, ...] = (
    _legacy_ingress("networking.k8s.io", 19),
    _legacy_ingress("extensions", 14),
)
SERVED: tuple[ResourceInfo, ...] = RESOURCES + LEGACY

_BY_GVR: dict[tuple[str, str, str], ResourceInfo] = {(r.group, r.version, r.plural): r for r in SERVED}
_BY_GVK: dict[tuple[str, str, str], ResourceInfo] = {(r.group, r.version, r.kind): r for r in SERVED}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_GVR.get((group, version, plural))


def require(group: str, version: str, plural: str) -> ResourceInfo:
    """A resource every caller knows exists (a component's own kinds); a typo fails at import."""
    info = lookup(group, version, plural)
    if info is None:
        raise KeyError(f"unknown resource {group}/{version}/{plural}")
    return info


def lookup_kind(api_version: str, kind: str) -> ResourceInfo | None:
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def storage_info(info: ResourceInfo) -> ResourceInfo:
    """The stored kind behind `info`: itself, or a legacy view's storage version."""
    if not info.storage_api_version:
        return info
    stored = lookup_kind(info.storage_api_version, info.kind)
    assert stored is not None and not stored.storage_api_version
    return stored


def group_versions() -> list[tuple[str, str]]:
    """Served (group, version) pairs in discovery order, core group first; a group's preferred version first."""
    seen: list[tuple[str, str]] = []
    for r in SERVED:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen
