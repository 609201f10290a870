"""Generate svcnet/api/openapi_schemas.json from the official Kubernetes Python client's models (dev-time only).

Run with the test virtualenv: `.venv/bin/python scripts/gen_openapi.py`. The client's models are generated from
Kubernetes' own OpenAPI document, so their field names, types, required flags and descriptions are Kubernetes'.
Output: {schema name: OpenAPI v3 schema}, with `x-kubernetes-group-version-kind` on every served kind.
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
              "Preconditions", "MicroTime", "Time"}
_PACKAGES = {"": "core", "apps": "apps", "discovery.k8s.io": "discovery", "networking.k8s.io": "networking",
             "coordination.k8s.io": "coordination", "autoscaling": "autoscaling"}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
EXTRA_KINDS = [("autoscaling", "v1", "Scale")]


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
            json_name = cls.attribute_map.get(attr, attr)
            prop = self.type_schema(field.annotation, package)
            if field.description:
                prop = {**prop, "description": field.description}
            schema["properties"][json_name] = prop
            if field.is_required():
                required.append(json_name)
        if required:
            schema["required"] = required
        return name

    def type_schema(self, annotation: typing.Any, package: str) -> dict:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
            if set(args) == {int, str}:
                self.schemas.setdefault(INT_OR_STRING, {
                    "format": "int-or-string", "x-kubernetes-int-or-string": True,
                    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or "
                                   "YAML marshalling and unmarshalling, it produces or consumes the inner type."})
                return {"allOf": [{"$ref": f"#/components/schemas/{INT_OR_STRING}"}]}
            if len(args) == 1:
                return self.type_schema(args[0], package)
            return {}
        if origin in (list, typing.List):  # noqa: UP006
            (item,) = typing.get_args(annotation)
            return {"type": "array", "items": self.type_schema(item, package)}
        if origin in (dict, typing.Dict):  # noqa: UP006
            _, value = typing.get_args(annotation)
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
    kinds = [(r.group, r.version, r.kind) for r in resources.RESOURCES] + EXTRA_KINDS
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
    for extra in ("V1Status", "V1DeleteOptions"):
        gen.add(getattr(models, extra), "core")
    for name, schema in gen.schemas.items():
        add_patch_extensions(name, schema)
    out = Path(__file__).resolve().parents[1] / "svcnet" / "api" / "openapi_schemas.json"
    out.write_text(json.dumps(gen.schemas, sort_keys=True, separators=(",", ":")))
    print(f"wrote {len(gen.schemas)} schemas to {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
