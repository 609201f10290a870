"""Checks of an object against the OpenAPI schemas — pure.

- unknown fields, for `fieldValidation=Strict|Warn`, reported like kube-apiserver's strict decoder
  (`spec.ports[0].bogus`); maps with `additionalProperties` accept any key, free-form objects anything;
- type mismatches (a string where an object belongs), which kube-apiserver's JSON decoder always rejects;
  `oneOf` types (Quantity: string or number) accept any branch, IntOrString an int or a string.
`null` is accepted everywhere (Go pointers and omitempty fields decode it as unset).
"""

from __future__ import annotations

from dataclasses import dataclass
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


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "integer": (int,),
    "number": (int, float),
}
_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def check(kind: str, api_version: str, obj: dict[str, Any], prune: bool = False) -> tuple[list[str], list[str]]:
    """(unknown field paths, type errors) of `obj`; both empty for kinds without a schema. With `prune`, the
    unknown fields are also removed from `obj` in place, as kube's decoder drops them."""
    group, _, version = api_version.rpartition("/")
    name = openapi.schema_name(group, version, kind)
    unknown: list[str] = []
    mismatched: list[str] = []
    if name is not None:
        _walk(openapi.schemas()[name], obj, "", _Found(unknown, mismatched, kind, prune), 0)
    return unknown, mismatched


def unknown_fields(kind: str, api_version: str, obj: dict[str, Any]) -> list[str]:
    """Paths of the fields of `obj` its schema does not know (`spec.foo`, `spec.ports[0].bogus`), in order."""
    return check(kind, api_version, obj)[0]


def _type_error(schema: dict[str, Any], value: Any, path: str, kind: str) -> str | None:
    if value is None:
        return None
    if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, int | str) and not isinstance(value, bool)
        expected = "int or string"
    else:
        types = [branch.get("type", "") for branch in schema.get("oneOf", [])] or [schema.get("type", "")]
        if not all(t in _PYTHON_TYPES for t in types):
            return None
        ok = any(_matches(t, value) for t in types)
        expected = " or ".join(types)
    if ok:
        return None
    got = _JSON_NAMES.get(type(value), type(value).__name__)
    return f"json: cannot unmarshal {got} into Go struct field {kind}.{path} of type {expected}"


def _matches(expected: str, value: Any) -> bool:
    """Whether a JSON value decodes into the schema type (`bool` is no number; `1.0` is an integer)."""
    if isinstance(value, bool):
        return expected == "boolean"
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _PYTHON_TYPES[expected])


@dataclass
class _Found:
    unknown: list[str]
    mismatched: list[str]
    kind: str
    prune: bool


def _walk(schema: dict[str, Any], value: Any, path: str, found: _Found, depth: int) -> None:
    schema = _resolve(schema)
    if depth > _MAX_DEPTH or not schema:
        return
    problem = _type_error(schema, value, path, found.kind) if path else None
    if problem:
        found.mismatched.append(problem)
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            for key in list(value):
                child_path = f"{path}.{key}" if path else key
                if key in props:
                    _walk(props[key], value[key], child_path, found, depth + 1)
                    continue
                found.unknown.append(child_path)
                if found.prune:
                    del value[key]
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, child in value.items():
                _walk(schema["additionalProperties"], child, f"{path}[{key}]", found, depth + 1)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            _walk(schema["items"], child, f"{path}[{i}]", found, depth + 1)
