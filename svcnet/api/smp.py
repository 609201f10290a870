"""Strategic merge patch (application/strategic-merge-patch+json), as kube-apiserver applies it.

Theory of operation: the patch is walked next to the original object and the schema (`patchmeta.TYPES`):
- maps merge recursively; `null` deletes a key; scalars and values of another JSON type replace;
- lists whose field has `patchStrategy: merge` merge: lists of maps by their `patchMergeKey`, lists of scalars as
  sets; every other list is replaced;
- directives: `$patch: replace|merge|delete` (in a map, or as a list element), `$retainKeys`,
  `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`.
Element order follows apimachinery: items named by the patch (or by `$setElementOrder`) in that order, interleaved
with the server-only items, which keep their relative order.
Kinds without schema (CRDs) get JSON merge patch (RFC 7386) semantics.

Invariants:
- inputs are never mutated: both are deep-copied once, then the copies are merged in place;
- no key starting with `$` survives into the result: a value the original lacks is merged into an empty value,
  which runs and strips its directives;
- every malformed patch raises `APIError` (400 for bad shapes, 422 for content the schema cannot take), never a
  Python exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from svcnet.api import patchmeta
from svcnet.api.errors import APIError, bad_request
from svcnet.api.jsontree import clone
from svcnet.api.patchmeta import FieldMeta

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER_PREFIX = "$setElementOrder/"
DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"

_MISSING = object()

__all__ = ["apply_merge_patch", "apply_strategic_merge_patch"]


def apply_strategic_merge_patch(original: dict, patch: dict, kind: str) -> dict:
    """Return `original` with the strategic merge `patch` applied; kinds without schema get JSON merge patch."""
    if not isinstance(patch, dict):
        raise bad_request(f"strategic merge patch must be a JSON object, got {_json_type(patch)}")
    type_name = patchmeta.root_type(kind)
    if type_name is None:
        return apply_merge_patch(original, patch)
    base = clone(original) if isinstance(original, dict) else {}
    return _merge_map(base, clone(patch), type_name, "")


def apply_merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- errors ---------------------------------------------------------------------------------------------------


def _invalid(message: str) -> APIError:
    """422 with kube-apiserver's reason for patch content the schema cannot take."""
    return APIError(422, "Invalid", message)


def _at(path: str) -> str:
    return f" (at {path or '.'})"


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# --- value identity ---------------------------------------------------------------------------------------------


def _identity(value: Any) -> Any:
    """A hashable identity with JSON equality: 80 == 80.0, but true != 1 and "80" != 80."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", int(value) if float(value).is_integer() else value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    return ("json", json.dumps(value, sort_keys=True))


# --- maps -------------------------------------------------------------------------------------------------------


def _merge_map(original: dict, patch: dict, type_name: str | None, path: str) -> dict:
    """Merge `patch` into `original` (both private copies; `original` is updated and returned)."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "delete":
            return {}
        if directive == "replace":
            return _merge_map({}, patch, type_name, path)
        if directive != "merge":
            raise bad_request(f"unknown patch type: {directive!r} in map{_at(path)}")
    _apply_retain_keys(original, patch, path)
    _apply_set_element_orders(original, patch, type_name, path)
    deletions = {k: patch.pop(k) for k in list(patch) if k.startswith(DELETE_PRIMITIVE_PREFIX)}
    for key, value in patch.items():
        if key.startswith("$"):
            raise bad_request(f"unknown patch directive {key!r}{_at(path)}")
        _merge_field(original, key, value, type_name, f"{path}.{key}")
    for key, value in deletions.items():
        _delete_from_primitive_list(original, key[len(DELETE_PRIMITIVE_PREFIX):], value, f"{path}.{key}")
    return original


def _merge_field(original: dict, key: str, value: Any, type_name: str | None, path: str) -> None:
    if value is None:
        original.pop(key, None)
        return
    meta = patchmeta.field_meta(type_name, key)
    current = original.get(key, _MISSING)
    if isinstance(value, dict):
        base_map = current if isinstance(current, dict) and meta.strategy != "replace" else {}
        original[key] = _merge_map(base_map, value, meta.type, path)
    elif isinstance(value, list):
        base_list = current if isinstance(current, list) else []
        original[key] = _merge_list(base_list, value, meta, path)
    else:
        original[key] = value


def _apply_retain_keys(original: dict, patch: dict, path: str) -> None:
    """`$retainKeys`: drop original keys not listed; every non-null patch key must be listed."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise bad_request(f"invalid patch format of retainKeys{_at(path)}")
    for key, value in patch.items():
        if value is None or key.startswith("$"):
            continue
        if key not in retain:
            raise _invalid(f"patch content doesn't match retainKeys list: {key!r} is not retained{_at(path)}")
    for key in [k for k in original if k not in retain]:
        del original[key]


def _delete_from_primitive_list(original: dict, key: str, values: Any, path: str) -> None:
    if not key:
        raise bad_request(f"invalid patch format of primitive list{_at(path)}")
    if not isinstance(values, list) or any(isinstance(v, dict | list) for v in values):
        raise bad_request(f"invalid patch format of primitive list{_at(path)}")
    current = original.get(key)
    if isinstance(current, list):
        doomed = {_identity(v) for v in values}
        original[key] = [v for v in current if _identity(v) not in doomed]


# --- lists ------------------------------------------------------------------------------------------------------


def _merge_list(original: list, patch: list, meta: FieldMeta, path: str) -> list:
    if not meta.merges_list:
        return [_fresh(item, meta.type, path) for item in patch]
    if not original and not patch:
        return []
    element = _element_kind(original + patch, path)
    if element == "map":
        return _merge_map_list(original, patch, meta, path)
    return _merge_scalar_list(original, patch, path)


def _fresh(value: Any, type_name: str | None, path: str) -> Any:
    """A patch value that has nothing to merge with: its directives are run against an empty value."""
    if isinstance(value, dict):
        return _merge_map({}, value, type_name, path)
    return value


def _element_kind(items: list, path: str) -> str:
    kinds = {"map" if isinstance(i, dict) else "list" if isinstance(i, list) else "scalar" for i in items}
    if "list" in kinds:
        raise _invalid(f"lists of lists are not supported{_at(path)}")
    if len(kinds) > 1:
        raise bad_request(f"list element types are not identical{_at(path)}")
    return kinds.pop()


def _merge_scalar_list(original: list, patch: list, path: str) -> list:
    merged = _dedupe(original + patch)
    in_patch = {_identity(v) for v in patch}
    patch_items = [v for v in merged if _identity(v) in in_patch]
    server_only = [v for v in merged if _identity(v) not in in_patch]
    return _normalize_order(patch_items, server_only, patch, original, _identity)


def _dedupe(values: list) -> list:
    seen: set[Any] = set()
    out = []
    for value in values:
        if _identity(value) not in seen:
            seen.add(_identity(value))
            out.append(value)
    return out


def _merge_map_list(original: list, patch: list, meta: FieldMeta, path: str) -> list:
    key = meta.merge_key
    if not key:
        raise bad_request(f"cannot merge lists without merge key{_at(path)}")
    original, patch = _run_list_directives(original, patch, meta, path)
    merged = list(original)
    for item in patch:
        index = _find(merged, key, item[key])
        if index is None:
            merged.append(_fresh(item, meta.type, path))
        else:
            merged[index] = _merge_map(merged[index], item, meta.type, path)
    ident = _key_identity(key)
    in_patch = {ident(i) for i in patch}
    patch_items = [i for i in merged if ident(i) in in_patch]
    server_only = [i for i in merged if ident(i) not in in_patch]
    return _normalize_order(patch_items, server_only, patch, original, ident)


def _run_list_directives(original: list, patch: list, meta: FieldMeta, path: str) -> tuple[list, list]:
    """Apply `$patch` elements; return the remaining original items and the plain patch items."""
    key, plain, replace = meta.merge_key, [], False
    for item in patch:
        directive = item.get(DIRECTIVE, _MISSING)
        if directive is _MISSING:
            _require_key(item, key, path)
            plain.append(item)
        elif directive == "delete":
            _require_key(item, key, path)
            original = [o for o in original if key not in o or _identity(o[key]) != _identity(item[key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise bad_request(f"merging lists cannot yet be specified in the patch{_at(path)}")
        else:
            raise bad_request(f"unknown patch type: {directive!r} in list element{_at(path)}")
    if replace:
        return [_fresh(item, meta.type, path) for item in plain], []
    return original, plain


def _require_key(item: dict, key: str, path: str) -> None:
    if key not in item:
        raise _invalid(f"map: {json.dumps(item, sort_keys=True)} does not contain declared merge key: {key}"
                       f"{_at(path)}")


def _find(items: list, key: str, value: Any) -> int | None:
    wanted = _identity(value)
    for index, item in enumerate(items):
        if key in item and _identity(item[key]) == wanted:
            return index
    return None


def _key_identity(key: str) -> Callable[[Any], Any]:
    return lambda item: _identity(item.get(key)) if isinstance(item, dict) else _identity(item)


# --- element order ----------------------------------------------------------------------------------------------


def _normalize_order(patch_items: list, server_only: list, patch_order: list, server_order: list,
                     ident: Callable[[Any], Any]) -> list:
    """Sort patch items by the patch's order and server items by the server's, then interleave them."""
    patch_rank = _ranks(patch_order, ident)
    server_rank = _ranks(server_order, ident)
    patch_items = sorted(patch_items, key=lambda i: patch_rank.get(ident(i), len(patch_rank)))
    server_only = sorted(server_only, key=lambda i: server_rank.get(ident(i), len(server_rank)))
    return _interleave(server_only, patch_items, server_rank, ident)


def _ranks(items: list, ident: Callable[[Any], Any]) -> dict[Any, int]:
    ranks: dict[Any, int] = {}
    for index, item in enumerate(items):
        ranks.setdefault(ident(item), index)
    return ranks


def _interleave(server_only: list, patch_items: list, server_rank: dict[Any, int],
                ident: Callable[[Any], Any]) -> list:
    """A server item goes first only when both items are known to the server and it came first there."""
    out, i, j = [], 0, 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            left, right = server_rank.get(ident(server_only[i])), server_rank.get(ident(patch_items[j]))
            if left is not None and right is not None and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


# --- $setElementOrder ---------------------------------------------------------------------------------------------


def _apply_set_element_orders(original: dict, patch: dict, type_name: str | None, path: str) -> None:
    """Merge each list named by a `$setElementOrder/<field>` directive and order it as the directive says."""
    for directive in [k for k in patch if k.startswith(SET_ORDER_PREFIX)]:
        order = patch.pop(directive)
        field = directive[len(SET_ORDER_PREFIX):]
        field_path = f"{path}.{field}"
        if not field or not isinstance(order, list):
            raise bad_request(f"invalid patch format of setElementOrder list{_at(field_path)}")
        current = original.get(field, _MISSING)
        incoming = patch.pop(field, _MISSING)
        if incoming is None:
            original.pop(field, None)
            continue
        for value, what in ((current, "live"), (incoming, "patch")):
            if value is not _MISSING and not isinstance(value, list):
                raise bad_request(f"expected a list for the {what} value of {field}{_at(field_path)}")
        if current is _MISSING and incoming is _MISSING:
            continue
        meta = patchmeta.field_meta(type_name, field)
        ordered = _merge_with_order(current, incoming, order, meta, field_path)
        original[field] = ordered


def _merge_with_order(current: Any, incoming: Any, order: list, meta: FieldMeta, path: str) -> list:
    live = [] if current is _MISSING else current
    key = meta.merge_key if meta.merges_list else ""
    if incoming is _MISSING:
        merged = list(live)
    else:
        _check_order(incoming, order, key, path)
        merged = _merge_list(live, incoming, meta, path)
    if not merged:
        return merged
    element = _element_kind(merged + order, path)
    if element == "map":
        if not key:
            return merged
        for item in merged + order:
            _require_key(item, key, path)
    ident = _key_identity(key) if element == "map" else _identity
    wanted = {ident(i) for i in order}
    patch_items = [i for i in merged if ident(i) in wanted]
    server_only = [i for i in merged if ident(i) not in wanted]
    return _normalize_order(patch_items, server_only, order, live, ident)


def _check_order(incoming: list, order: list, key: str, path: str) -> None:
    """The plain patch items must appear in `order`, in the same relative order."""
    items = [i for i in incoming if not (isinstance(i, dict) and DIRECTIVE in i)]
    if not items or not order:
        return
    ident = _key_identity(key) if key else _identity
    if key:
        for item in items + order:
            if isinstance(item, dict):
                _require_key(item, key, path)
    position = 0
    for item in items:
        while position < len(order) and ident(order[position]) != ident(item):
            position += 1
        if position == len(order):
            raise bad_request(f"the order in the patch list doesn't match the $setElementOrder list{_at(path)}")
        position += 1
