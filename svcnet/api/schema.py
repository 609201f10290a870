"""Unknown-field detection against the OpenAPI schemas, for `fieldValidation=Strict|Warn` — pure.

Maps with `additionalProperties` accept any key; int-or-string and free-form objects accept anything; a field
path is reported like kube-apiserver's strict decoder (`spec.ports[0].bogus`).
"""

from __future__ import annotations

from typing import Any

from svcnet.api import openapi

_REF = "#/components/schemas/"
_MAX_DEPTH = 64


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    for _ in range(_MAX_DEPTH):
        if "$ref" in node:
            node = openapi.schemas().get(node["$ref"][len(_REF):], {})
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            return node
    return {}


def unknown_fields(kind: str, api_version: str, obj: dict[str, Any]) -> list[str]:
    group, _, version = api_version.rpartition("/")
    name = openapi.schema_name(group, version, kind)
    if name is None:
        return []
    found: list[str] = []
    _walk(openapi.schemas()[name], obj, "", found, 0)
    return found


def _walk(schema: dict[str, Any], value: Any, path: str, found: list[str], depth: int) -> None:
    schema = _resolve(schema)
    if depth > _MAX_DEPTH or not schema:
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else key
                if key not in props:
                    found.append(child_path)
                else:
                    _walk(props[key], child, child_path, found, depth + 1)
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, child in value.items():
                _walk(schema["additionalProperties"], child, f"{path}[{key}]", found, depth + 1)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            _walk(schema["items"], child, f"{path}[{i}]", found, depth + 1)
