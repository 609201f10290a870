"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts the API server works on — pure.

kubectl's typed generators (`create deployment|service|configmap|secret|namespace|serviceaccount|ingress|job`,
`debug`) POST `application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a `runtime.Unknown` message
{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose `raw` is the object's own message.
`decode_object` returns the dict a JSON client would have sent for the same Go object.

Data: the field tables (message -> field number -> [json name, type, optional|repeated|map]) are
`protobuf_schema.json`, transcribed mechanically from Kubernetes' generated.proto (scripts/gen_protobuf.py). Go's
gogo-protobuf writes every non-pointer field, zero or not, while encoding/json drops the zero values of `omitempty`
fields; `_KEEP_ZERO` lists the scalar fields whose zero value is still JSON (pointer or non-omitempty fields) and
`_INLINE` the embedded structs whose fields merge into their parent — both derived from types.go by
tests/unit/api/derive_go_tags.py.

Invariants: any malformed, truncated or unsupported input raises `ProtobufError` and nothing else; every loop
consumes at least one byte per step; message nesting is bounded by `MAX_DEPTH`; unknown field numbers are skipped;
a field absent from the wire is absent from the result; kind/apiVersion come from the envelope.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import math
import struct
from collections.abc import Callable, Iterator
from importlib import resources as importlib_resources
from typing import Any

MAGIC = b"k8s\x00"
MAX_DEPTH = 64

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = _META + "ObjectMeta"
_PACKAGES = {"": "core", "apps": "apps", "discovery.k8s.io": "discovery", "networking.k8s.io": "networking",
             "coordination.k8s.io": "coordination", "autoscaling": "autoscaling"}



class ProtobufError(ValueError):
    """A protobuf body that is malformed, truncated, too deep or of an unsupported kind."""


# ---- wire format ---------------------------------------------------------------------------------------------

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_MASK64 = (1 << 64) - 1


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The base-128 varint at `pos` (at most 10 bytes, truncated to 64 bits) and the position after it."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
    raise ProtobufError("varint longer than 10 bytes")


def _take(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(data):
        raise ProtobufError("truncated field")
    return data[pos:end], end


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) per field: an int for varints, the raw bytes for the other wire types."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise ProtobufError(f"invalid field number {number}")
        value: int | bytes
        if wire == _VARINT:
            value, pos = read_varint(data, pos)
        elif wire == _FIXED64:
            value, pos = _take(data, pos, 8)
        elif wire == _FIXED32:
            value, pos = _take(data, pos, 4)
        elif wire == _BYTES:
            length, pos = read_varint(data, pos)
            value, pos = _take(data, pos, length)
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


# ---- scalars -------------------------------------------------------------------------------------------------

def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("invalid UTF-8 in a string field") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ProtobufError("a float field holds NaN or infinity, which JSON cannot carry")
    return value


# scalar type -> (wire type, converter from the wire value)
_SCALARS: dict[str, tuple[int, Callable[[Any], Any]]] = {
    "string": (_BYTES, _text),
    "bytes": (_BYTES, lambda raw: base64.b64encode(raw).decode("ascii")),
    "bool": (_VARINT, bool),
    "int32": (_VARINT, lambda v: _signed(v, 32)),
    "int64": (_VARINT, lambda v: _signed(v, 64)),
    "uint32": (_VARINT, lambda v: v & 0xFFFFFFFF),
    "uint64": (_VARINT, lambda v: v),
    "sint32": (_VARINT, lambda v: _zigzag(v & 0xFFFFFFFF)),
    "sint64": (_VARINT, _zigzag),
    "fixed32": (_FIXED32, lambda raw: struct.unpack("<I", raw)[0]),
    "sfixed32": (_FIXED32, lambda raw: struct.unpack("<i", raw)[0]),
    "float": (_FIXED32, lambda raw: _finite(struct.unpack("<f", raw)[0])),
    "fixed64": (_FIXED64, lambda raw: struct.unpack("<Q", raw)[0]),
    "sfixed64": (_FIXED64, lambda raw: struct.unpack("<q", raw)[0]),
    "double": (_FIXED64, lambda raw: _finite(struct.unpack("<d", raw)[0])),
}
_ZERO: dict[str, Any] = {"string": "", "bytes": ""}


def _scalar(kind: str, wire: int, raw: int | bytes) -> Any:
    spec = _SCALARS.get(kind)
    if spec is None:
        raise ProtobufError(f"unsupported field type {kind}")
    if wire != spec[0]:
        raise ProtobufError(f"wire type {wire} does not fit a {kind} field")
    return spec[1](raw)


def _packed(kind: str, raw: bytes) -> list[Any]:
    """The elements of a packed repeated numeric field."""
    wire = _SCALARS[kind][0]
    out, pos = [], 0
    while pos < len(raw):
        value: int | bytes
        if wire == _VARINT:
            value, pos = read_varint(raw, pos)
        else:
            value, pos = _take(raw, pos, 8 if wire == _FIXED64 else 4)
        out.append(_scalar(kind, wire, value))
    return out


# ---- tables --------------------------------------------------------------------------------------------------

@functools.cache
def _schema() -> dict[str, dict[str, list[str]]]:
    text = importlib_resources.files("svcnet.api").joinpath("protobuf_schema.json").read_text()
    loaded: dict[str, dict[str, list[str]]] = json.loads(text)
    return loaded


@functools.cache
def _field_sets(table: str) -> dict[str, frozenset[int]]:
    source = _KEEP_ZERO if table == "keep" else _INLINE
    return {f"k8s.io.{message}": frozenset(numbers) for message, numbers in source.items()}


def _flag(table: str, message: str, number: int) -> bool:
    return number in _field_sets(table).get(message, frozenset())


# ---- messages ------------------------------------------------------------------------------------------------

def _value(kind: str, wire: int, raw: int | bytes, depth: int) -> Any:
    if kind in _schema():
        if wire != _BYTES or not isinstance(raw, bytes):
            raise ProtobufError(f"wire type {wire} does not fit the message field {kind}")
        return decode_message(kind, raw, depth + 1)
    return _scalar(kind, wire, raw)


def decode_message(message: str, data: bytes, depth: int = 0) -> Any:
    """The JSON form of one message (a dict, or a string/int/None for the special meta types)."""
    if depth > MAX_DEPTH:
        raise ProtobufError(f"messages nested deeper than {MAX_DEPTH}")
    special = _SPECIAL.get(message)
    if special is not None:
        return special(data, depth)
    table = _schema().get(message)
    if table is None:
        raise ProtobufError(f"unknown message {message}")
    out: dict[str, Any] = {}
    for number, wire, raw in iter_fields(data):
        spec = table.get(str(number))
        if spec is not None:
            _store(out, message, number, spec, wire, raw, depth)
    return out


def _store(out: dict[str, Any], message: str, number: int, spec: list[str], wire: int, raw: int | bytes,
           depth: int) -> None:
    name, kind, label = spec
    if label == "map":
        key, value = _map_entry(kind, wire, raw, depth)
        out.setdefault(name, {})[key] = value
    elif label == "repeated":
        if wire == _BYTES and kind in _SCALARS and _SCALARS[kind][0] != _BYTES and isinstance(raw, bytes):
            out.setdefault(name, []).extend(_packed(kind, raw))
        else:
            out.setdefault(name, []).append(_value(kind, wire, raw, depth))
    elif _flag("inline", message, number):
        inner = _value(kind, wire, raw, depth)
        if isinstance(inner, dict):
            out.update(inner)
    else:
        value = _value(kind, wire, raw, depth)
        if kind in _SCALARS and value in (0, "") and not _flag("keep", message, number):
            out.pop(name, None)  # a Go zero value of an omitempty field: JSON leaves it out
        else:
            out[name] = value


def _map_entry(kinds: str, wire: int, raw: int | bytes, depth: int) -> tuple[Any, Any]:
    key_kind, _, value_kind = kinds.partition(",")
    if wire != _BYTES or not isinstance(raw, bytes):
        raise ProtobufError("a map entry is not length-delimited")
    key: Any = _ZERO.get(key_kind, 0)
    value: Any = None
    for number, entry_wire, entry_raw in iter_fields(raw):
        if number == 1:
            key = _value(key_kind, entry_wire, entry_raw, depth)
        elif number == 2:
            value = _value(value_kind, entry_wire, entry_raw, depth)
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise ProtobufError(f"unsupported map key type {key_kind}")
    if value is None:
        value = _value(value_kind, _BYTES, b"", depth) if value_kind in _schema() else _ZERO.get(value_kind, 0)
    return str(key), value


# ---- messages whose JSON form is not an object ---------------------------------------------------------------

def _plain_fields(data: bytes, depth: int) -> dict[int, int | bytes]:
    del depth
    return {number: raw for number, _, raw in iter_fields(data)}


def _int_field(fields: dict[int, int | bytes], number: int, bits: int) -> int:
    raw = fields.get(number, 0)
    if not isinstance(raw, int):
        raise ProtobufError(f"field {number} is not a varint")
    return _signed(raw, bits)


def _str_field(fields: dict[int, int | bytes], number: int) -> str:
    raw = fields.get(number, b"")
    if not isinstance(raw, bytes):
        raise ProtobufError(f"field {number} is not a string")
    return _text(raw)


def _time(data: bytes, depth: int, micro: bool = False) -> str | None:
    """meta/v1 Time (RFC 3339, seconds) and MicroTime (microseconds); an empty message is Go's zero time: null."""
    if not data:
        return None
    fields = _plain_fields(data, depth)
    seconds, nanos = _int_field(fields, 1, 64), _int_field(fields, 2, 32)
    try:
        moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufError(f"timestamp {seconds} out of range") from None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if not 1 <= moment.year <= 9999:
        raise ProtobufError(f"timestamp {seconds} out of range")
    return f"{text}.{max(nanos, 0) // 1000:06d}Z" if micro else f"{text}Z"


def _int_or_string(data: bytes, depth: int) -> int | str:
    fields = _plain_fields(data, depth)
    return _str_field(fields, 3) if _int_field(fields, 1, 64) == 1 else _int_field(fields, 2, 32)


def _quantity(data: bytes, depth: int) -> str:
    return _str_field(_plain_fields(data, depth), 1) or "0"


def _embedded_json(data: bytes, depth: int) -> Any:
    """RawExtension / FieldsV1: field 1 holds JSON (or, for RawExtension, a nested protobuf object)."""
    raw = _plain_fields(data, depth).get(1, b"")
    if not isinstance(raw, bytes):
        raise ProtobufError("embedded raw data is not length-delimited")
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return _decode_envelope(raw, depth + 1)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtobufError("embedded raw data is neither JSON nor Kubernetes protobuf") from None


def _verbs(data: bytes, depth: int) -> list[str]:
    del depth
    return [_scalar("string", wire, raw) for number, wire, raw in iter_fields(data) if number == 1]


_SPECIAL: dict[str, Callable[[bytes, int], Any]] = {
    _META + "Time": _time,
    _META + "MicroTime": lambda data, depth: _time(data, depth, micro=True),
    _META + "FieldsV1": _embedded_json,
    _META + "Verbs": _verbs,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _quantity,
}


# ---- the envelope --------------------------------------------------------------------------------------------

def message_for(api_version: str, kind: str) -> str:
    """The top-level message for an (apiVersion, kind): one of the tables' objects with ObjectMeta metadata."""
    group, _, version = api_version.rpartition("/")
    package = _PACKAGES.get(group)
    name = f"k8s.io.api.{package}.{version}.{kind}"
    metadata = _schema().get(name, {}).get("1", [])
    if package is None or metadata[:2] != ["metadata", _OBJECT_META]:
        raise ProtobufError(f"unsupported kind {kind!r} in {api_version!r} for a protobuf body")
    return name


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of a `k8s\\x00` + runtime.Unknown body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope (magic bytes k8s\\x00)")
    type_meta, raw, encoding, content_type = b"", b"", "", ""
    for number, wire, value in iter_fields(body[len(MAGIC):]):
        if number in (1, 2) and wire == _BYTES and isinstance(value, bytes):
            type_meta, raw = (value, raw) if number == 1 else (type_meta, value)
        elif number in (3, 4):
            text = _scalar("string", wire, value)
            encoding, content_type = (text, content_type) if number == 3 else (encoding, text)
    if encoding or content_type not in ("", "application/vnd.kubernetes.protobuf"):
        raise ProtobufError(f"unsupported inner encoding {encoding or content_type!r}")
    meta = {number: _scalar("string", wire, value) for number, wire, value in iter_fields(type_meta)
            if number in (1, 2)}
    if not meta.get(1) or not meta.get(2):
        raise ProtobufError("the envelope names no apiVersion/kind")
    return meta[1], meta[2], raw


def _decode_envelope(body: bytes, depth: int) -> dict[str, Any]:
    api_version, kind, raw = _envelope(body)
    obj = decode_message(message_for(api_version, kind), raw, depth)
    return {"apiVersion": api_version, "kind": kind, **obj}


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf request body (with the k8s envelope) as the JSON object a JSON client would have sent."""
    try:
        return _decode_envelope(bytes(body), 0)
    except ProtobufError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, struct.error) as exc:  # defence in depth
        raise ProtobufError(f"malformed protobuf body: {exc}") from None


# ---- data: Go marshalling facts derived from types.go (tests/unit/api/derive_go_tags.py) ----------------------

_KEEP_ZERO: dict[str, tuple[int, ...]] = {
    "api.apps.v1.ControllerRevision": (3,), "api.apps.v1.DaemonSetCondition": (1, 2),
    "api.apps.v1.DaemonSetSpec": (6,), "api.apps.v1.DaemonSetStatus": (1, 2, 3, 4, 9),
    "api.apps.v1.DeploymentCondition": (1, 2), "api.apps.v1.DeploymentSpec": (1, 6, 9),
    "api.apps.v1.DeploymentStatus": (8, 9), "api.apps.v1.ReplicaSetCondition": (1, 2),
    "api.apps.v1.ReplicaSetSpec": (1,), "api.apps.v1.ReplicaSetStatus": (1, 7),
    "api.apps.v1.RollingUpdateStatefulSetStrategy": (1,), "api.apps.v1.StatefulSetCondition": (1, 2),
    "api.apps.v1.StatefulSetOrdinals": (1,), "api.apps.v1.StatefulSetSpec": (1, 5, 8),
    "api.apps.v1.StatefulSetStatus": (2, 9, 11),
    "api.autoscaling.v1.ContainerResourceMetricSource": (1, 2, 5),
    "api.autoscaling.v1.ContainerResourceMetricStatus": (1, 2, 4),
    "api.autoscaling.v1.CrossVersionObjectReference": (1, 2), "api.autoscaling.v1.ExternalMetricSource": (1,),
    "api.autoscaling.v1.ExternalMetricStatus": (1,),
    "api.autoscaling.v1.HorizontalPodAutoscalerCondition": (1, 2, 6),
    "api.autoscaling.v1.HorizontalPodAutoscalerSpec": (2, 3, 4),
    "api.autoscaling.v1.HorizontalPodAutoscalerStatus": (1, 3, 4, 5), "api.autoscaling.v1.MetricSpec": (1,),
    "api.autoscaling.v1.MetricStatus": (1,), "api.autoscaling.v1.ObjectMetricSource": (2,),
    "api.autoscaling.v1.ObjectMetricStatus": (2,), "api.autoscaling.v1.PodsMetricSource": (1,),
    "api.autoscaling.v1.PodsMetricStatus": (1,), "api.autoscaling.v1.ResourceMetricSource": (1, 2),
    "api.autoscaling.v1.ResourceMetricStatus": (1, 2), "api.autoscaling.v1.ScaleStatus": (1,),
    "api.coordination.v1.LeaseSpec": (1, 2, 5, 6, 7), "api.core.v1.AWSElasticBlockStoreVolumeSource": (1,),
    "api.core.v1.AppArmorProfile": (1, 2), "api.core.v1.AttachedVolume": (1, 2),
    "api.core.v1.AzureDiskVolumeSource": (1, 2, 3, 4, 5, 6),
    "api.core.v1.AzureFilePersistentVolumeSource": (1, 2, 4), "api.core.v1.AzureFileVolumeSource": (1, 2),
    "api.core.v1.CSIPersistentVolumeSource": (1, 2), "api.core.v1.CSIVolumeSource": (1, 2, 3),
    "api.core.v1.CinderPersistentVolumeSource": (1,), "api.core.v1.CinderVolumeSource": (1,),
    "api.core.v1.ClientIPConfig": (1,), "api.core.v1.ClusterTrustBundleProjection": (1, 2, 4, 5, 6),
    "api.core.v1.ComponentCondition": (1, 2), "api.core.v1.ConfigMap": (4,),
    "api.core.v1.ConfigMapEnvSource": (2,), "api.core.v1.ConfigMapKeySelector": (2, 3),
    "api.core.v1.ConfigMapNodeConfigSource": (1, 2, 5), "api.core.v1.ConfigMapProjection": (4,),
    "api.core.v1.ConfigMapVolumeSource": (3, 4, 5), "api.core.v1.Container": (1, 24),
    "api.core.v1.ContainerExtendedResourceRequest": (1, 2, 3), "api.core.v1.ContainerPort": (3,),
    "api.core.v1.ContainerResizePolicy": (1, 2), "api.core.v1.ContainerStateTerminated": (1,),
    "api.core.v1.ContainerStatus": (1, 4, 5, 6, 7, 9, 15), "api.core.v1.DaemonEndpoint": (1,),
    "api.core.v1.DownwardAPIVolumeFile": (1, 4, 5), "api.core.v1.DownwardAPIVolumeSource": (2, 3),
    "api.core.v1.EmptyDirVolumeSource": (3,), "api.core.v1.EndpointAddress": (1, 4),
    "api.core.v1.EndpointPort": (2, 4), "api.core.v1.EnvVar": (1,),
    "api.core.v1.EphemeralContainerCommon": (1, 24), "api.core.v1.Event": (14, 15),
    "api.core.v1.EvictionResponder": (1, 2), "api.core.v1.FCVolumeSource": (2,),
    "api.core.v1.FileKeySelector": (1, 2, 3, 4), "api.core.v1.FlexPersistentVolumeSource": (1,),
    "api.core.v1.FlexVolumeSource": (1,), "api.core.v1.GCEPersistentDiskVolumeSource": (1,),
    "api.core.v1.GRPCAction": (1, 2, 3), "api.core.v1.GitRepoVolumeSource": (1,),
    "api.core.v1.GlusterfsPersistentVolumeSource": (1, 2, 4), "api.core.v1.GlusterfsVolumeSource": (1, 2),
    "api.core.v1.HTTPGetAction": (6,), "api.core.v1.HTTPHeader": (1, 2), "api.core.v1.HostAlias": (1,),
    "api.core.v1.HostIP": (1,), "api.core.v1.HostPathVolumeSource": (1, 2),
    "api.core.v1.ISCSIPersistentVolumeSource": (1, 2, 3, 12), "api.core.v1.ISCSIVolumeSource": (1, 2, 3, 12),
    "api.core.v1.KeyToPath": (1, 2, 3, 4), "api.core.v1.Lifecycle": (3,), "api.core.v1.LimitRangeItem": (1,),
    "api.core.v1.LinuxContainerUser": (1, 2), "api.core.v1.LoadBalancerIngress": (3,),
    "api.core.v1.LocalVolumeSource": (1, 2), "api.core.v1.ModifyVolumeStatus": (2,),
    "api.core.v1.NFSVolumeSource": (1, 2), "api.core.v1.NamespaceCondition": (1, 2),
    "api.core.v1.NodeAddress": (1, 2), "api.core.v1.NodeAllocatableMappedResources": (1,),
    "api.core.v1.NodeAllocatableOverheadResources": (1,),
    "api.core.v1.NodeAllocatableResourceClaimStatus": (1,), "api.core.v1.NodeCondition": (1, 2),
    "api.core.v1.NodeFeatures": (1,), "api.core.v1.NodeRuntimeHandler": (1,),
    "api.core.v1.NodeRuntimeHandlerFeatures": (1, 2), "api.core.v1.NodeSelectorRequirement": (1, 2),
    "api.core.v1.NodeSwapStatus": (1,), "api.core.v1.NodeSystemInfo": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "api.core.v1.ObjectFieldSelector": (2,), "api.core.v1.PersistentVolumeClaimCondition": (1, 2),
    "api.core.v1.PersistentVolumeClaimSpec": (5, 6, 9), "api.core.v1.PersistentVolumeClaimStatus": (8,),
    "api.core.v1.PersistentVolumeClaimVolumeSource": (1,), "api.core.v1.PersistentVolumeSpec": (8, 10),
    "api.core.v1.PhotonPersistentDiskVolumeSource": (1,), "api.core.v1.PodAffinityTerm": (3,),
    "api.core.v1.PodCertificateProjection": (3, 8), "api.core.v1.PodCondition": (1, 2),
    "api.core.v1.PodDNSConfigOption": (2,), "api.core.v1.PodExtendedResourceClaimStatus": (2,),
    "api.core.v1.PodIP": (1,), "api.core.v1.PodLogOptions": (4, 7, 8, 10), "api.core.v1.PodOS": (1,),
    "api.core.v1.PodReadinessGate": (1,), "api.core.v1.PodResourceClaim": (1, 3, 4),
    "api.core.v1.PodResourceClaimStatus": (1, 2), "api.core.v1.PodSchedulingGate": (1,),
    "api.core.v1.PodSchedulingGroup": (1,), "api.core.v1.PodSecurityContext": (2, 3, 5, 6, 9, 12, 13),
    "api.core.v1.PodSpec": (4, 5, 21, 25, 27, 29, 30, 31, 35, 37, 41), "api.core.v1.PodVolumeHealth": (1,),
    "api.core.v1.PortStatus": (1, 2, 3), "api.core.v1.PortworxVolumeSource": (1,),
    "api.core.v1.Preconditions": (1,), "api.core.v1.PreferredSchedulingTerm": (1,), "api.core.v1.Probe": (7,),
    "api.core.v1.ProjectedVolumeSource": (2, 3), "api.core.v1.QuobyteVolumeSource": (1, 2),
    "api.core.v1.RBDPersistentVolumeSource": (2,), "api.core.v1.RBDVolumeSource": (2,),
    "api.core.v1.RangeAllocation": (2, 3), "api.core.v1.ReplicationControllerCondition": (1, 2),
    "api.core.v1.ReplicationControllerSpec": (1,), "api.core.v1.ReplicationControllerStatus": (1,),
    "api.core.v1.ResourceClaim": (1,), "api.core.v1.ResourceFieldSelector": (2,),
    "api.core.v1.ResourceHealth": (1, 6), "api.core.v1.ResourceStatus": (1,),
    "api.core.v1.ScaleIOPersistentVolumeSource": (1, 2), "api.core.v1.ScaleIOVolumeSource": (1, 2),
    "api.core.v1.ScopedResourceSelectorRequirement": (1, 2), "api.core.v1.SeccompProfile": (1, 2),
    "api.core.v1.Secret": (5,), "api.core.v1.SecretEnvSource": (2,), "api.core.v1.SecretKeySelector": (2, 3),
    "api.core.v1.SecretProjection": (4,), "api.core.v1.SecretVolumeSource": (3, 4, 5),
    "api.core.v1.SecurityContext": (2, 4, 5, 6, 7, 8, 9), "api.core.v1.ServiceAccount": (4,),
    "api.core.v1.ServiceAccountTokenProjection": (2, 3, 4), "api.core.v1.ServicePort": (3, 6),
    "api.core.v1.ServiceSpec": (17, 20, 21, 22, 23), "api.core.v1.SleepAction": (1,),
    "api.core.v1.Sysctl": (1, 2), "api.core.v1.Taint": (1, 3), "api.core.v1.Toleration": (5,),
    "api.core.v1.TopologySelectorLabelRequirement": (1,),
    "api.core.v1.TopologySpreadConstraint": (1, 2, 3, 5, 6, 7),
    "api.core.v1.TypedLocalObjectReference": (1, 2, 3), "api.core.v1.TypedObjectReference": (1, 2, 3, 4),
    "api.core.v1.Volume": (1,), "api.core.v1.VolumeDevice": (1, 2),
    "api.core.v1.VolumeHealthCondition": (1, 2), "api.core.v1.VolumeMount": (1, 3, 5, 7),
    "api.core.v1.VolumeMountStatus": (1, 2, 4), "api.core.v1.VsphereVirtualDiskVolumeSource": (1,),
    "api.core.v1.WeightedPodAffinityTerm": (1,), "api.core.v1.WindowsSecurityContextOptions": (1, 2, 3, 4),
    "api.discovery.v1.Endpoint": (3, 6, 7), "api.discovery.v1.EndpointConditions": (1, 2, 3),
    "api.discovery.v1.EndpointPort": (1, 2, 3, 4), "api.discovery.v1.EndpointSlice": (4,),
    "api.discovery.v1.ForNode": (1,), "api.discovery.v1.ForZone": (1,),
    "api.networking.v1.HTTPIngressPath": (3,), "api.networking.v1.IPBlock": (1,),
    "api.networking.v1.IngressClassParametersReference": (1, 2, 3, 4, 5),
    "api.networking.v1.IngressPortStatus": (1, 2, 3), "api.networking.v1.IngressServiceBackend": (1,),
    "api.networking.v1.IngressSpec": (4,), "api.networking.v1.NetworkPolicyPort": (1, 3),
    "apimachinery.pkg.apis.meta.v1.APIGroup": (1,), "apimachinery.pkg.apis.meta.v1.APIResource": (1, 2, 3, 6),
    "apimachinery.pkg.apis.meta.v1.APIResourceList": (1,),
    "apimachinery.pkg.apis.meta.v1.ApplyOptions": (2, 3),
    "apimachinery.pkg.apis.meta.v1.Condition": (1, 2, 5, 6),
    "apimachinery.pkg.apis.meta.v1.DeleteOptions": (1, 3, 4, 6),
    "apimachinery.pkg.apis.meta.v1.Duration": (1,),
    "apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement": (1, 2),
    "apimachinery.pkg.apis.meta.v1.FieldsV1": (1,), "apimachinery.pkg.apis.meta.v1.GroupKind": (1, 2),
    "apimachinery.pkg.apis.meta.v1.GroupResource": (1, 2),
    "apimachinery.pkg.apis.meta.v1.GroupVersion": (1, 2),
    "apimachinery.pkg.apis.meta.v1.GroupVersionForDiscovery": (1, 2),
    "apimachinery.pkg.apis.meta.v1.GroupVersionKind": (1, 2, 3),
    "apimachinery.pkg.apis.meta.v1.GroupVersionResource": (1, 2, 3),
    "apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement": (1, 2),
    "apimachinery.pkg.apis.meta.v1.ListMeta": (4,), "apimachinery.pkg.apis.meta.v1.ListOptions": (5, 11),
    "apimachinery.pkg.apis.meta.v1.ObjectMeta": (10,),
    "apimachinery.pkg.apis.meta.v1.OwnerReference": (1, 3, 4, 5, 6, 7),
    "apimachinery.pkg.apis.meta.v1.PatchOptions": (2,), "apimachinery.pkg.apis.meta.v1.Preconditions": (1, 2),
    "apimachinery.pkg.apis.meta.v1.ServerAddressByClientCIDR": (1, 2),
    "apimachinery.pkg.apis.meta.v1.ShardInfo": (1,), "apimachinery.pkg.apis.meta.v1.Timestamp": (1, 2),
    "apimachinery.pkg.apis.meta.v1.WatchEvent": (1,), "apimachinery.pkg.runtime.RawExtension": (1,),
    "apimachinery.pkg.runtime.Unknown": (2, 3, 4),
}
_INLINE: dict[str, tuple[int, ...]] = {
    "api.core.v1.ConfigMapEnvSource": (1,), "api.core.v1.ConfigMapKeySelector": (1,),
    "api.core.v1.ConfigMapProjection": (1,), "api.core.v1.ConfigMapVolumeSource": (1,),
    "api.core.v1.EphemeralContainer": (1,), "api.core.v1.PersistentVolumeSpec": (2,),
    "api.core.v1.Probe": (1,), "api.core.v1.SecretEnvSource": (1,), "api.core.v1.SecretKeySelector": (1,),
    "api.core.v1.SecretProjection": (1,), "api.core.v1.Volume": (2,), "api.networking.v1.IngressRule": (2,),
    "apimachinery.pkg.runtime.Unknown": (1,),
}
