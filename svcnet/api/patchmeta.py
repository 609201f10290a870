"""Patch metadata of the kinds svcnet serves: one table that strategic merge patch and server-side apply read.

Generated once from the Go struct tags of k8s.io/api (core/v1, apps/v1, discovery/v1, networking/v1,
coordination/v1) and k8s.io/apimachinery meta/v1: `patchStrategy` / `patchMergeKey` drive strategic merge patch,
`+listType` / `+listMapKey` / `+mapType=atomic` / `+structType=atomic` drive server-side apply.

Invariants:
- `TYPES[type][field]` names the schema type of the field's value (of each element for lists and maps) when that
  type carries metadata of its own; `None` means "no further metadata below here".
- Fields and types not in the table have no metadata: SMP replaces their lists and merges their maps, SSA treats
  their lists as atomic and their maps as granular (structured-merge-diff's "deduced" schema).
- `always` marks a non-pointer Go struct field: Go always serialises it, so an object never lacks it.
- Kinds map to their root type by name (`ROOT_KINDS`); any other kind (a CRD) has no schema here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldMeta:
    """What the Go struct tags say about one JSON field."""

    type: str | None = None  # schema type of the value, or of each element of a list or map
    strategy: str = ""  # SMP patchStrategy: "merge", "retainKeys", "merge,retainKeys" (default: replace lists)
    merge_key: str = ""  # SMP patchMergeKey
    list_type: str = ""  # SSA +listType: "map", "set" or "atomic" ("" is atomic)
    map_keys: tuple[str, ...] = ()  # SSA +listMapKey
    atomic: bool = False  # SSA +mapType=atomic on the field
    always: bool = False  # non-pointer struct: always present in Go's serialisation

    @property
    def merges_list(self) -> bool:
        return "merge" in self.strategy.split(",")

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in self.strategy.split(",")


NO_META = FieldMeta()

TYPES: dict[str, dict[str, FieldMeta]] = {
    "Affinity": {
        "nodeAffinity": FieldMeta("NodeAffinity"),
        "podAffinity": FieldMeta("PodAffinity"),
        "podAntiAffinity": FieldMeta("PodAntiAffinity"),
    },
    "ConfigMap": {
        "metadata": FieldMeta("ObjectMeta", always=True),
    },
    "Container": {
        "ports": FieldMeta("ContainerPort", strategy="merge", merge_key="containerPort", list_type="map", map_keys=("containerPort", "protocol")),
        "env": FieldMeta("EnvVar", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "resources": FieldMeta("ResourceRequirements", always=True),
        "restartPolicyRules": FieldMeta("ContainerRestartRule", list_type="atomic"),
        "volumeMounts": FieldMeta("VolumeMount", strategy="merge", merge_key="mountPath", list_type="map", map_keys=("mountPath",)),
        "volumeDevices": FieldMeta(strategy="merge", merge_key="devicePath", list_type="map", map_keys=("devicePath",)),
    },
    "ContainerRestartRule": {
        "exitCodes": FieldMeta("ContainerRestartRuleOnExitCodes"),
    },
    "ContainerRestartRuleOnExitCodes": {
        "values": FieldMeta(list_type="set"),
    },
    "ContainerStatus": {
        "resources": FieldMeta("ResourceRequirements"),
        "volumeMounts": FieldMeta(strategy="merge", merge_key="mountPath", list_type="map", map_keys=("mountPath",)),
        "allocatedResourcesStatus": FieldMeta("ResourceStatus", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
    },
    "Deployment": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("DeploymentSpec", always=True),
        "status": FieldMeta("DeploymentStatus", always=True),
    },
    "DeploymentSpec": {
        "selector": FieldMeta("LabelSelector"),
        "template": FieldMeta("PodTemplateSpec", always=True),
        "strategy": FieldMeta(strategy="retainKeys", always=True),
    },
    "DeploymentStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
    },
    "Endpoint": {
        "addresses": FieldMeta(list_type="set"),
        "targetRef": FieldMeta("ObjectReference"),
    },
    "EndpointAddress": {
        "targetRef": FieldMeta("ObjectReference"),
    },
    "EndpointSlice": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "endpoints": FieldMeta("Endpoint", list_type="atomic"),
        "ports": FieldMeta("discovery.EndpointPort", list_type="atomic"),
    },
    "EndpointSubset": {
        "addresses": FieldMeta("EndpointAddress", list_type="atomic"),
        "notReadyAddresses": FieldMeta("EndpointAddress", list_type="atomic"),
        "ports": FieldMeta("EndpointPort", list_type="atomic"),
    },
    "Endpoints": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "subsets": FieldMeta("EndpointSubset", list_type="atomic"),
    },
    "EnvVar": {
        "valueFrom": FieldMeta("EnvVarSource"),
    },
    "EnvVarSource": {
        "fieldRef": FieldMeta("ObjectFieldSelector"),
        "resourceFieldRef": FieldMeta("ResourceFieldSelector"),
        "configMapKeyRef": FieldMeta("ConfigMapKeySelector"),
        "secretKeyRef": FieldMeta("SecretKeySelector"),
        "fileKeyRef": FieldMeta("FileKeySelector"),
    },
    "Event": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "involvedObject": FieldMeta("ObjectReference", always=True),
        "related": FieldMeta("ObjectReference"),
    },
    "Ingress": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("IngressSpec", always=True),
        "status": FieldMeta("IngressStatus", always=True),
    },
    "IngressBackend": {
        "service": FieldMeta("IngressServiceBackend"),
        "resource": FieldMeta("TypedLocalObjectReference"),
    },
    "IngressClass": {
        "metadata": FieldMeta("ObjectMeta", always=True),
    },
    "IngressServiceBackend": {
        "port": FieldMeta("ServiceBackendPort", always=True),
    },
    "IngressSpec": {
        "defaultBackend": FieldMeta("IngressBackend"),
    },
    "Lease": {
        "metadata": FieldMeta("ObjectMeta", always=True),
    },
    "Namespace": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "status": FieldMeta("NamespaceStatus", always=True),
    },
    "NamespaceStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
    },
    "Node": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("NodeSpec", always=True),
        "status": FieldMeta("NodeStatus", always=True),
    },
    "NodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": FieldMeta("NodeSelector"),
        "preferredDuringSchedulingIgnoredDuringExecution": FieldMeta("PreferredSchedulingTerm", list_type="atomic"),
    },
    "NodeAllocatableResourceClaimStatus": {
        "containers": FieldMeta(list_type="set"),
        "mapping": FieldMeta(strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "overhead": FieldMeta(strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
    },
    "NodePodPreemptionPolicy": {
        "disableResizePreemption": FieldMeta(list_type="set"),
    },
    "NodeSelector": {
        "nodeSelectorTerms": FieldMeta("NodeSelectorTerm", list_type="atomic"),
    },
    "NodeSpec": {
        "podCIDRs": FieldMeta(strategy="merge", list_type="set"),
        "podPreemptionPolicy": FieldMeta("NodePodPreemptionPolicy"),
    },
    "NodeStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
        "addresses": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
        "daemonEndpoints": FieldMeta("NodeDaemonEndpoints", always=True),
    },
    "ObjectMeta": {
        "ownerReferences": FieldMeta("OwnerReference", strategy="merge", merge_key="uid", list_type="map", map_keys=("uid",)),
        "finalizers": FieldMeta(strategy="merge", list_type="set"),
    },
    "Pod": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("PodSpec", always=True),
        "status": FieldMeta("PodStatus", always=True),
    },
    "PodAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": FieldMeta("PodAffinityTerm", list_type="atomic"),
        "preferredDuringSchedulingIgnoredDuringExecution": FieldMeta("WeightedPodAffinityTerm", list_type="atomic"),
    },
    "PodAffinityTerm": {
        "labelSelector": FieldMeta("LabelSelector"),
        "namespaceSelector": FieldMeta("LabelSelector"),
    },
    "PodAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": FieldMeta("PodAffinityTerm", list_type="atomic"),
        "preferredDuringSchedulingIgnoredDuringExecution": FieldMeta("WeightedPodAffinityTerm", list_type="atomic"),
    },
    "PodSpec": {
        "volumes": FieldMeta(strategy="merge,retainKeys", merge_key="name", list_type="map", map_keys=("name",)),
        "initContainers": FieldMeta("Container", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "containers": FieldMeta("Container", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "ephemeralContainers": FieldMeta("Container", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "nodeSelector": FieldMeta(atomic=True),
        "imagePullSecrets": FieldMeta("LocalObjectReference", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "affinity": FieldMeta("Affinity"),
        "hostAliases": FieldMeta(strategy="merge", merge_key="ip", list_type="map", map_keys=("ip",)),
        "topologySpreadConstraints": FieldMeta("TopologySpreadConstraint", strategy="merge", merge_key="topologyKey", list_type="map", map_keys=("topologyKey", "whenUnsatisfiable")),
        "schedulingGates": FieldMeta(strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "resourceClaims": FieldMeta(strategy="merge,retainKeys", merge_key="name", list_type="map", map_keys=("name",)),
        "resources": FieldMeta("ResourceRequirements"),
        "evictionResponders": FieldMeta("EvictionResponder", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
    },
    "PodStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
        "hostIPs": FieldMeta(strategy="merge", merge_key="ip", list_type="atomic"),
        "podIPs": FieldMeta(strategy="merge", merge_key="ip", list_type="map", map_keys=("ip",)),
        "initContainerStatuses": FieldMeta("ContainerStatus", list_type="atomic"),
        "containerStatuses": FieldMeta("ContainerStatus", list_type="atomic"),
        "ephemeralContainerStatuses": FieldMeta("ContainerStatus", list_type="atomic"),
        "resourceClaimStatuses": FieldMeta(strategy="merge,retainKeys", merge_key="name", list_type="map", map_keys=("name",)),
        "resources": FieldMeta("ResourceRequirements"),
        "nodeAllocatableResourceClaimStatuses": FieldMeta("NodeAllocatableResourceClaimStatus", strategy="merge", merge_key="resourceClaimName", list_type="map", map_keys=("resourceClaimName",)),
        "volumeHealth": FieldMeta("PodVolumeHealth", list_type="map", map_keys=("name",)),
    },
    "PodTemplateSpec": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("PodSpec", always=True),
    },
    "PodVolumeHealth": {
        "healthConditions": FieldMeta(strategy="merge", merge_key="status", list_type="map", map_keys=("status", "reason")),
    },
    "PreferredSchedulingTerm": {
        "preference": FieldMeta("NodeSelectorTerm", always=True),
    },
    "ReplicaSet": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("ReplicaSetSpec", always=True),
        "status": FieldMeta("ReplicaSetStatus", always=True),
    },
    "ReplicaSetSpec": {
        "selector": FieldMeta("LabelSelector"),
        "template": FieldMeta("PodTemplateSpec", always=True),
    },
    "ReplicaSetStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
    },
    "ReplicationController": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("ReplicationControllerSpec", always=True),
        "status": FieldMeta("ReplicationControllerStatus", always=True),
    },
    "ReplicationControllerSpec": {
        "selector": FieldMeta(atomic=True),
        "template": FieldMeta("PodTemplateSpec"),
    },
    "ReplicationControllerStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
    },
    "ResourceRequirements": {
        "claims": FieldMeta(list_type="map", map_keys=("name",)),
    },
    "ResourceStatus": {
        "resources": FieldMeta(list_type="map", map_keys=("resourceID",)),
    },
    "Secret": {
        "metadata": FieldMeta("ObjectMeta", always=True),
    },
    "Service": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "spec": FieldMeta("ServiceSpec", always=True),
        "status": FieldMeta("ServiceStatus", always=True),
    },
    "ServiceAccount": {
        "metadata": FieldMeta("ObjectMeta", always=True),
        "secrets": FieldMeta("ObjectReference", strategy="merge", merge_key="name", list_type="map", map_keys=("name",)),
        "imagePullSecrets": FieldMeta("LocalObjectReference", list_type="atomic"),
    },
    "ServiceSpec": {
        "ports": FieldMeta("ServicePort", strategy="merge", merge_key="port", list_type="map", map_keys=("port", "protocol")),
        "selector": FieldMeta(atomic=True),
    },
    "ServiceStatus": {
        "conditions": FieldMeta(strategy="merge", merge_key="type", list_type="map", map_keys=("type",)),
    },
    "TopologySpreadConstraint": {
        "labelSelector": FieldMeta("LabelSelector"),
    },
    "VolumeMount": {
        "bindMountOptions": FieldMeta(list_type="set"),
    },
    "WeightedPodAffinityTerm": {
        "podAffinityTerm": FieldMeta("PodAffinityTerm", always=True),
    },
}
ATOMIC_TYPES = frozenset({"ConfigMapKeySelector", "EndpointAddress", "EndpointPort", "EvictionResponder", "FileKeySelector", "LabelSelector", "LocalObjectReference", "NodeSelector", "NodeSelectorTerm", "ObjectFieldSelector", "ObjectReference", "OwnerReference", "ResourceFieldSelector", "SecretKeySelector", "ServiceBackendPort", "TypedLocalObjectReference", "discovery.EndpointPort"})

ROOT_KINDS = frozenset({
    "ConfigMap", "Deployment", "EndpointSlice", "Endpoints", "Event", "Ingress", "IngressClass", "Lease",
    "Namespace", "Node", "Pod", "ReplicaSet", "ReplicationController", "Secret", "Service", "ServiceAccount",
})

# Defaults of list-map key fields (OpenAPI `default`), used by SSA when the applied item omits the key.
KEY_DEFAULTS: dict[str, dict[str, object]] = {
    "ServicePort": {"protocol": "TCP"},
    "ContainerPort": {"protocol": "TCP"},
}


def root_type(kind: str) -> str | None:
    """The schema type of a served kind, or None for kinds without metadata (CRDs)."""
    return kind if kind in ROOT_KINDS else None


def field_meta(type_name: str | None, field: str) -> FieldMeta:
    if type_name is None:
        return NO_META
    return TYPES.get(type_name, {}).get(field, NO_META)


def is_atomic_type(type_name: str | None) -> bool:
    return type_name in ATOMIC_TYPES
