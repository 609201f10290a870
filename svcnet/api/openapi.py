"""OpenAPI v3 documents per group-version, built from the shipped schemas (openapi_schemas.json).

What kubectl needs (reference/kubectl-wire.md): `/openapi/v3` lists `api/v1`, `apis/<group>/<version>` with a
hashed URL; each document has, per kind, a PATCH operation on the item path tagged `x-kubernetes-group-version-kind`
with a `fieldValidation` parameter (server-side validation), and `components.schemas` with the kind's schema and
everything it references (`kubectl explain`). Pure; documents are computed once and cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources as importlib_resources
from typing import Any

from svcnet.api import resources

_REF = "#/components/schemas/"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    text = importlib_resources.files("svcnet.api").joinpath("openapi_schemas.json").read_text()
    loaded: dict[str, dict[str, Any]] = json.loads(text)
    return loaded


@functools.cache
def schema_name(group: str, version: str, kind: str) -> str | None:
    for name, schema in schemas().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                return name
    return None


def _param(name: str, kind: str = "string", where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "schema": {"type": kind}, "uniqueItems": True}


def _ref(name: str | None) -> dict[str, Any]:
    return {"$ref": _REF + name} if name else {"type": "object"}


def _operation(info: resources.ResourceInfo, action: str, verb: str, params: list[dict[str, Any]],
               body: tuple[str, ...] = ()) -> dict[str, Any]:
    name = schema_name(info.group, info.version, info.kind)
    op: dict[str, Any] = {
        "operationId": f"{verb}{info.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(name)}}}},
    }
    if body:
        op["requestBody"] = {"content": {t: {"schema": _ref(name)} for t in body}, "required": True}
    return op


def _paths(info: resources.ResourceInfo) -> dict[str, Any]:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    collection = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    item = f"{collection}/{{name}}"
    write = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
    path_params = [_param("name", where="path")] + ([_param("namespace", where="path")] if info.namespaced else [])
    return {
        collection: {
            "parameters": path_params[1:],
            "get": _operation(info, "list", "list", [_param("labelSelector"), _param("fieldSelector"),
                                                     _param("limit", "integer"), _param("watch", "boolean")]),
            "post": _operation(info, "post", "create", write, ("application/json", "application/yaml")),
            "delete": _operation(info, "deletecollection", "deleteCollection", [_param("labelSelector")]),
        },
        item: {
            "parameters": path_params,
            "get": _operation(info, "get", "read", []),
            "put": _operation(info, "put", "replace", write, ("application/json", "application/yaml")),
            "patch": _operation(info, "patch", "patch", [*write, _param("force", "boolean")], _PATCH_TYPES),
            "delete": _operation(info, "delete", "delete", [_param("gracePeriodSeconds", "integer"),
                                                            _param("propagationPolicy")]),
        },
    }


def _closure(roots: list[str]) -> dict[str, Any]:
    """The named schemas and every schema they reference."""
    found: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found or name not in schemas():
            continue
        found[name] = schemas()[name]
        pending.extend(_refs(found[name]))
    return dict(sorted(found.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"][len(_REF):]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            out.extend(_refs(value))
        return out
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


@functools.cache
def _document(group: str, version: str) -> str:
    infos = [r for r in resources.RESOURCES if (r.group, r.version) == (group, version)]
    paths: dict[str, Any] = {}
    roots: list[str] = []
    for info in infos:
        paths.update(_paths(info))
        for kind in (info.kind, info.list_kind):
            name = schema_name(group, version, kind)
            if name:
                roots.append(name)
    roots += ["io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
    if group in ("", "apps"):
        scale = schema_name("autoscaling", "v1", "Scale")
        roots += [scale] if scale else []
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
           "components": {"schemas": _closure(roots)}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def openapi_v3_document(group: str, version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_document(group, version))
    return loaded


def document_hash(doc: dict[str, Any]) -> str:
    canonical = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha512(canonical).hexdigest().upper()[:128]


def openapi_v3_index(hashes: dict[str, str]) -> dict[str, Any]:
    """`/openapi/v3`: `hashes` maps `api/v1`, `apis/<g>/<v>` to their document hashes."""
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={h}"} for gv, h in sorted(hashes.items())}}
