"""Decoding of Kubernetes protobuf request bodies into the JSON-shaped dicts the API server works on — pure.

kubectl's typed generators (`create deployment|namespace|configmap|secret|service`, ...) send
`application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a `runtime.Unknown` {typeMeta, raw}, where raw is
the object's own message. Field tables come from Kubernetes' generated.proto (protobuf_schema.json, made by
scripts/gen_protobuf.py). Invariants: every malformed input raises `ProtobufError` (never another exception, never
a loop without progress); nesting is bounded; unknown field numbers are skipped; only fields present on the wire
appear in the result (proto2 optional semantics).
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import struct
from importlib import resources as importlib_resources
from typing import Any

MAGIC = b"k8s\x00"
_MAX_DEPTH = 64
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_TYPE_META = "k8s.io.apimachinery.pkg.runtime.TypeMeta"
_PACKAGES = {"": "core", "apps": "apps", "discovery.k8s.io": "discovery", "networking.k8s.io": "networking",
             "coordination.k8s.io": "coordination", "autoscaling": "autoscaling"}
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Go marshals every non-pointer field, so zero values arrive that JSON (omitempty) would leave out; these are the
# pointer fields where a zero is meaningful and must be kept.
_KEEP_ZERO = frozenset({"replicas", "terminationGracePeriodSeconds", "port", "containerPort", "number",
                        "activeDeadlineSeconds", "gracePeriodSeconds", "ready", "serving", "terminating"})


class ProtobufError(ValueError):
    pass


@functools.cache
def _schema() -> dict[str, dict[str, list[str]]]:
    text = importlib_resources.files("svcnet.api").joinpath("protobuf_schema.json").read_text()
    loaded: dict[str, dict[str, list[str]]] = json.loads(text)
    return loaded


# ---- wire format --------------------------------------------------------------------------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for every field of a message."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ProtobufError("truncated field")
        out.append((number, wire, value))
    return out


# ---- values -------------------------------------------------------------------------------------------------

def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    return value if bits == 64 else max(min(value, 2**31 - 1), -(2**31))


def _scalar(kind: str, wire: int, raw: Any) -> Any:
    if kind == "string":
        _expect(wire, 2, kind)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError("invalid UTF-8 in a string field") from None
    if kind == "bytes":
        _expect(wire, 2, kind)
        return base64.b64encode(raw).decode()
    if kind == "bool":
        _expect(wire, 0, kind)
        return bool(raw)
    if kind in ("int32", "int64", "uint32", "uint64"):
        _expect(wire, 0, kind)
        return _signed(raw, 64 if kind.endswith("64") else 32) if kind.startswith("int") else raw
    if kind in ("double", "float"):
        _expect(wire, 1 if kind == "double" else 5, kind)
        return struct.unpack("<d" if kind == "double" else "<f", raw)[0]
    raise ProtobufError(f"unsupported scalar type {kind}")


def _expect(wire: int, wanted: int, kind: str) -> None:
    if wire != wanted:
        raise ProtobufError(f"wire type {wire} does not fit a {kind} field")


def _special(message: str, fields: dict[str, Any]) -> Any:
    """Messages whose JSON form is not an object."""
    if message in (_META + "Time", _META + "MicroTime"):
        if not fields.get("seconds") and not fields.get("nanos"):
            return None  # Go's zero time: JSON has null
        moment = datetime.datetime.fromtimestamp(fields.get("seconds", 0), datetime.UTC)
        if message.endswith("MicroTime"):
            micros = fields.get("nanos", 0) // 1000
            return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if message == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return fields.get("strVal", "") if fields.get("type") == 1 else fields.get("intVal", 0)
    if message == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return fields.get("string", "")
    if message == "k8s.io.apimachinery.pkg.runtime.RawExtension":
        raw = base64.b64decode(fields.get("raw", ""))
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ProtobufError("RawExtension does not hold JSON") from None
    return fields


def _value(kind: str, wire: int, raw: Any, depth: int) -> Any:
    if kind in _schema():
        _expect(wire, 2, kind)
        return decode_message(kind, bytes(raw), depth + 1)
    return _scalar(kind, wire, raw)


def decode_message(message: str, data: bytes, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ProtobufError("nesting too deep")
    table = _schema().get(message)
    if table is None:
        raise ProtobufError(f"unknown message {message}")
    out: dict[str, Any] = {}
    for number, wire, raw in _fields(data):
        spec = table.get(str(number))
        if spec is None:
            continue
        name, kind, label = spec
        if label == "map":
            key_kind, value_kind = kind.split(",")
            _expect(wire, 2, "map entry")
            key, value = _map_entry(bytes(raw), key_kind, value_kind, depth)
            out.setdefault(name, {})[key] = value
        elif label == "repeated":
            out.setdefault(name, []).append(_value(kind, wire, raw, depth))
        else:
            value = _value(kind, wire, raw, depth)
            if value is None or (value in ("", 0, False) and not isinstance(value, float) and
                                 name not in _KEEP_ZERO and kind not in _schema()):
                out.pop(name, None)
            else:
                out[name] = value
    return _special(message, out)


def _map_entry(data: bytes, key_kind: str, value_kind: str, depth: int) -> tuple[Any, Any]:
    key: Any = "" if key_kind == "string" else 0
    value: Any = None
    for number, wire, raw in _fields(data):
        if number == 1:
            key = _value(key_kind, wire, raw, depth)
        elif number == 2:
            value = _value(value_kind, wire, raw, depth)
    if value is None:
        value = "" if value_kind in ("string", "bytes") else ({} if value_kind in _schema() else 0)
    return key, value


def message_for(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    package = _PACKAGES.get(group)
    name = f"k8s.io.api.{package}.{version}.{kind}"
    if package is None or name not in _schema():
        raise ProtobufError(f"unsupported kind {api_version}/{kind} in a protobuf body")
    return name


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf request body (with the k8s envelope) as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope (magic bytes)")
    unknown = decode_message(_UNKNOWN, body[len(MAGIC):])
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if not api_version or not kind:
        raise ProtobufError("the envelope names no apiVersion/kind")
    obj = decode_message(message_for(api_version, kind), base64.b64decode(unknown.get("raw", "")))
    if not isinstance(obj, dict):
        raise ProtobufError("the body is not an object")
    return {"apiVersion": api_version, "kind": kind, **obj}
