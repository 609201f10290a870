"""Generate svcnet/api/openapi_schemas.json from the official Kubernetes Python client's models (dev-time only).

Run with the test virtualenv: `.venv/bin/python scripts/gen_openapi.py`. The client's models are generated from
Kubernetes' own OpenAPI document, so their field names, types, required flags and descriptions are Kubernetes'.
Output: {schema name: OpenAPI v3 schema}, with `x-kubernetes-group-version-kind` on every served kind.

What the client's models cannot say is added here: IntOrString (typed `int | str`) and Quantity (typed `str`; the
fields are listed in QUANTITY_FIELDS) become references to their named schemas, free-form `dict(str, Any)` fields
(RawExtension, FieldsV1) become `{"type": "object"}`, and the meta.k8s.io Table and Patch schemas are hand-written.
The output is deterministic (sorted keys), so a re-run without model changes leaves the file byte-identical.
"""

from __future__ import annotations

import datetime
import inspect
import json
import sys
import types
import typing
from pathlib import Path

import kubernetes.client.models as models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from svcnet.api import patchmeta, resources  # noqa: E402

META_TYPES = {"ObjectMeta", "ListMeta", "OwnerReference", "ManagedFieldsEntry", "LabelSelector",
              "LabelSelectorRequirement", "Condition", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
              "Preconditions", "MicroTime", "Time", "APIResourceList", "APIResource", "WatchEvent"}
_PACKAGES = {"": "core", "apps": "apps", "discovery.k8s.io": "discovery", "networking.k8s.io": "networking",
             "coordination.k8s.io": "coordination", "autoscaling": "autoscaling"}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
EXTRA_KINDS = [("autoscaling", "v1", "Scale")]
# Typed `str` / `dict(str, str)` in the client, `resource.Quantity` in Kubernetes (accepts JSON numbers too).
QUANTITY_FIELDS = {
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("ContainerStatus", "allocatedResources"), ("PodStatus", "allocatedResources"), ("PodSpec", "overhead"),
    ("NodeStatus", "capacity"), ("NodeStatus", "allocatable"), ("NodeAllocatableMappedResources", "quantity"),
    ("EmptyDirVolumeSource", "sizeLimit"), ("ResourceFieldSelector", "divisor"),
}
QUANTITY_SCHEMA = {
    "description": "Quantity is a fixed-point representation of a number. It provides convenient "
                   "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.  "
                   "The serialization format is: <quantity> ::= <signedNumber><suffix> (for example 128974848, "
                   "129e6, 129M, 123Mi, 0.5 or 500m).",
    "oneOf": [{"type": "string"}, {"type": "number"}],
}
INT_OR_STRING_SCHEMA = {
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
                   "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to "
                   "have, for example, a JSON field that can accept a name or number.",
    "format": "int-or-string", "x-kubernetes-int-or-string": True,
}
_META_V1 = "io.k8s.apimachinery.pkg.apis.meta.v1."
HAND_WRITTEN = {  # meta.k8s.io types the client has no model for
    _META_V1 + "Table": {
        "description": "Table is a tabular representation of a set of API resources. The server transforms the "
                       "object into a set of preferred columns for quickly reviewing the objects.",
        "type": "object", "required": ["columnDefinitions", "rows"],
        "x-kubernetes-group-version-kind": [{"group": "meta.k8s.io", "version": "v1", "kind": "Table"}],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"allOf": [{"$ref": f"#/components/schemas/{_META_V1}ListMeta"}], "default": {}},
            "columnDefinitions": {"type": "array", "items": {
                "allOf": [{"$ref": f"#/components/schemas/{_META_V1}TableColumnDefinition"}], "default": {}}},
            "rows": {"type": "array", "items": {
                "allOf": [{"$ref": f"#/components/schemas/{_META_V1}TableRow"}], "default": {}}},
        },
    },
    _META_V1 + "Patch": {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    },
    _META_V1 + "TableColumnDefinition": {
        "description": "TableColumnDefinition contains information about a column returned in the Table.",
        "type": "object", "required": ["name", "type", "format", "description", "priority"],
        "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "format": {"type": "string"},
                       "description": {"type": "string"}, "priority": {"type": "integer", "format": "int32"}},
    },
    _META_V1 + "TableRow": {
        "description": "TableRow is an individual row in a table.",
        "type": "object", "required": ["cells"],
        "properties": {"cells": {"type": "array", "items": {}},
                       "conditions": {"type": "array", "items": {"type": "object"}},
                       "object": {"type": "object"}},
    },
}


class Generator:
    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {}
        self.names: dict[type, str] = {}

    def name_for(self, cls: type, package: str) -> str:
        if cls in self.names:
            return self.names[cls]
        short = cls.__name__
        for prefix in ("CoreV1", "DiscoveryV1", "V1beta1", "V2", "V1"):
            if short.startswith(prefix):
                short = short[len(prefix):]
                break
        if short in META_TYPES:
            name = f"io.k8s.apimachinery.pkg.apis.meta.v1.{short}"
        else:
            name = f"io.k8s.api.{package}.v1.{short}"
        self.names[cls] = name
        return name

    def add(self, cls: type, package: str) -> str:
        name = self.name_for(cls, package)
        if name in self.schemas:
            return name
        schema: dict = {"type": "object", "description": _class_doc(cls), "properties": {}}
        self.schemas[name] = schema
        required = []
        for attr, field in cls.model_fields.items():
            json_name = field.serialization_alias or cls.attribute_map.get(attr, attr)
            if (name.rsplit(".", 1)[1], json_name) in QUANTITY_FIELDS:
                prop = self.quantity_schema(field.annotation)
            else:
                prop = self.type_schema(field.annotation, package)
            if field.description:
                prop = {**prop, "description": field.description}
            schema["properties"][json_name] = prop
            if field.is_required():
                required.append(json_name)
        if required:
            schema["required"] = required
        return name

    def quantity_schema(self, annotation: typing.Any) -> dict:
        """A `resource.Quantity` field: a reference, or a map of references for `dict(str, str)`."""
        self.schemas.setdefault(QUANTITY, QUANTITY_SCHEMA)
        ref = {"allOf": [{"$ref": f"#/components/schemas/{QUANTITY}"}]}
        is_map = "Dict" in str(annotation) or "dict" in str(annotation)
        return {"type": "object", "additionalProperties": ref} if is_map else ref

    def type_schema(self, annotation: typing.Any, package: str) -> dict:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
            if set(args) == {int, str}:
                self.schemas.setdefault(INT_OR_STRING, INT_OR_STRING_SCHEMA)
                return {"allOf": [{"$ref": f"#/components/schemas/{INT_OR_STRING}"}]}
            if len(args) == 1:
                return self.type_schema(args[0], package)
            return {}
        if origin in (list, typing.List):  # noqa: UP006
            (item,) = typing.get_args(annotation)
            return {"type": "array", "items": self.type_schema(item, package)}
        if origin in (dict, typing.Dict):  # noqa: UP006
            _, value = typing.get_args(annotation)
            if value is typing.Any:  # RawExtension, FieldsV1: free-form objects
                return {"type": "object"}
            return {"type": "object", "additionalProperties": self.type_schema(value, package)}
        if annotation is str:
            return {"type": "string"}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer", "format": "int64"}
        if annotation is float:
            return {"type": "number", "format": "double"}
        if annotation is datetime.datetime:
            return {"type": "string", "format": "date-time"}
        if annotation in (bytes, bytearray):
            return {"type": "string", "format": "byte"}
        if inspect.isclass(annotation) and hasattr(annotation, "model_fields") and hasattr(annotation,
                                                                                        "attribute_map"):
            ref = self.add(annotation, package)
            return {"allOf": [{"$ref": f"#/components/schemas/{ref}"}], "default": {}}
        return {"type": "object"}  # free-form (RawExtension, Any)


def add_patch_extensions(name: str, schema: dict) -> None:
    """The Go struct tags kubectl reads from OpenAPI: SMP merge keys / strategies and SSA list types."""
    short = name.rsplit(".", 1)[1]
    key = f"discovery.{short}" if ".discovery." in name and f"discovery.{short}" in patchmeta.TYPES else short
    for field, meta in patchmeta.TYPES.get(key, {}).items():
        prop = schema.get("properties", {}).get(field)
        if prop is None:
            continue
        if meta.strategy:
            prop["x-kubernetes-patch-strategy"] = meta.strategy
        if meta.merge_key:
            prop["x-kubernetes-patch-merge-key"] = meta.merge_key
        if meta.list_type:
            prop["x-kubernetes-list-type"] = meta.list_type
        if meta.map_keys:
            prop["x-kubernetes-list-map-keys"] = list(meta.map_keys)
        if meta.atomic:
            prop["x-kubernetes-map-type"] = "atomic"


def _unwrap(annotation: typing.Any) -> typing.Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _class_doc(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def main() -> None:
    gen = Generator()
    kinds = [(r.group, r.version, r.kind) for r in resources.RESOURCES if not r.custom] + EXTRA_KINDS
    for group, version, kind in kinds:
        prefix = "CoreV1" if (group, kind) == ("", "Event") else f"{version.upper()[:1]}{version[1:]}"
        cls = getattr(models, f"{prefix}{kind}")
        name = gen.add(cls, _PACKAGES[group])
        gen.schemas[name]["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
        list_cls = getattr(models, f"{prefix}{kind}List", None)
        if list_cls is not None:
            list_name = gen.add(list_cls, _PACKAGES[group])
            gen.schemas[list_name]["x-kubernetes-group-version-kind"] = [
                {"group": group, "version": version, "kind": f"{kind}List"}]
    for extra, gvk in (("V1Status", ("", "v1", "Status")), ("V1DeleteOptions", None),
                       ("V1APIResourceList", ("", "v1", "APIResourceList")), ("V1WatchEvent", None)):
        name = gen.add(getattr(models, extra), "core")
        if gvk:
            gen.schemas[name]["x-kubernetes-group-version-kind"] = [dict(zip(("group", "version", "kind"), gvk,
                                                                             strict=True))]
    gen.schemas.update(HAND_WRITTEN)
    for name, schema in gen.schemas.items():
        add_patch_extensions(name, schema)
    out = Path(__file__).resolve().parents[1] / "svcnet" / "api" / "openapi_schemas.json"
    out.write_text(json.dumps(gen.schemas, sort_keys=True, separators=(",", ":")))
    print(f"wrote {len(gen.schemas)} schemas to {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
