"""Field sets for server-side apply: which fields of an object a manager owns, in structured-merge-diff's terms.

A `Path` is a tuple of path elements, each `(kind, value)`:
- `("f", "spec")`: a field of a struct or a key of a map;
- `("k", '{"port":80,"protocol":"TCP"}')`: the item of an associative list (`+listType=map`) with these keys;
- `("v", '"finalizer.x"')`: the member of a set list (`+listType=set`);
- `("i", 3)`: an item by index (only decoded, never produced: svcnet never makes index paths).
Key and value payloads are canonical JSON (sorted keys, no spaces, integral floats as ints), so paths hash and
compare by JSON value.

A field set is a plain `set[Path]` of members. `encode`/`decode` translate it to and from the FieldsV1 trie stored
in `metadata.managedFields` (`{"f:spec": {"f:ports": {"k:{...}": {".": {}, "f:port": {}}}}}`), where `.` marks an
inner node that is itself a member.

`object_fields` is structured-merge-diff's ToFieldSet (scalars, atomic values, list items and empty maps are
members; struct nodes are not), `compare` is its Compare (added / modified / removed, where a node that appears
or disappears as a whole is itself added or removed). Both read `patchmeta` for list types and keys.

Invariants: pure functions, inputs never mutated; malformed FieldsV1 raises `APIError` 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import patchmeta
from svcnet.api.errors import APIError, bad_request
from svcnet.api.patchmeta import FieldMeta

PathElement = tuple[str, Any]
Path = tuple[PathElement, ...]

_MISSING = object()
_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}

__all__ = ["Comparison", "Path", "PathElement", "canonical", "compare", "decode", "encode", "item_element",
           "object_fields", "path_sort_key", "render"]


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, integral floats written as integers."""
    return json.dumps(_normalize_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalize_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    return value


# --- rendering and FieldsV1 --------------------------------------------------------------------------------------


def render(path: Path) -> str:
    """`.spec.ports[port=80,protocol="TCP"].targetPort`, as structured-merge-diff prints paths."""
    parts = []
    for kind, payload in path:
        if kind == "f":
            parts.append(f".{payload}")
        elif kind == "k":
            keys = json.loads(payload)
            parts.append("[" + ",".join(f"{k}={canonical(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            parts.append(f"[={payload}]")
        else:
            parts.append(f"[{payload}]")
    return "".join(parts)


def _sort_key(element: PathElement) -> tuple[int, str]:
    kind, payload = element
    return (_KIND_ORDER[kind], f"{payload:020d}" if kind == "i" else str(payload))


def path_sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    """Order paths the way structured-merge-diff sorts them (fields, then keys, values, indexes)."""
    return tuple(_sort_key(e) for e in path)


def _element_name(element: PathElement) -> str:
    kind, payload = element
    return f"{kind}:{payload}"


@dataclass
class _Node:
    member: bool = False
    children: dict[PathElement, _Node] = field(default_factory=dict)


def encode(paths: set[Path]) -> dict:
    """The FieldsV1 trie of a field set."""
    root = _Node()
    for path in paths:
        node = root
        for element in path:
            node = node.children.setdefault(element, _Node())
        node.member = True
    return _encode_node(root, include_self=False)


def _encode_node(node: _Node, include_self: bool) -> dict:
    out: dict[str, Any] = {}
    if include_self and node.children:
        out["."] = {}
    for element in sorted(node.children, key=_sort_key):
        child = node.children[element]
        out[_element_name(element)] = _encode_node(child, include_self=child.member)
    return out


def decode(fields: Any) -> set[Path]:
    """The field set of a FieldsV1 trie; 400 on anything that is not one."""
    if not isinstance(fields, dict):
        raise bad_request("metadata.managedFields: fieldsV1 must be an object")
    out: set[Path] = set()
    _decode_node(fields, (), out)
    return out


def _decode_node(fields: dict, path: Path, out: set[Path]) -> None:
    for name, sub in fields.items():
        if not isinstance(sub, dict):
            raise bad_request(f"metadata.managedFields: invalid fieldsV1 entry {name!r}")
        if name == ".":
            if path:
                out.add(path)
            continue
        child = path + (_parse_element(name),)
        if not sub:
            out.add(child)
        else:
            _decode_node(sub, child, out)


def _parse_element(name: str) -> PathElement:
    kind, sep, payload = name.partition(":")
    if not sep or kind not in _KIND_ORDER:
        raise bad_request(f"metadata.managedFields: invalid fieldsV1 path element {name!r}")
    if kind == "f":
        return ("f", payload)
    try:
        value = json.loads(payload)
    except ValueError:
        raise bad_request(f"metadata.managedFields: invalid fieldsV1 path element {name!r}") from None
    if kind == "i":
        if not isinstance(value, int):
            raise bad_request(f"metadata.managedFields: invalid fieldsV1 path element {name!r}")
        return ("i", value)
    if kind == "k" and not isinstance(value, dict):
        raise bad_request(f"metadata.managedFields: invalid fieldsV1 path element {name!r}")
    return (kind, canonical(value))


# --- schema helpers ----------------------------------------------------------------------------------------------


def is_atomic(value: Any, meta: FieldMeta) -> bool:
    """Atomic values are owned and replaced as a whole."""
    if isinstance(value, dict):
        return meta.atomic or patchmeta.is_atomic_type(meta.type)
    if isinstance(value, list):
        return meta.list_type not in ("map", "set")
    return True


def item_meta(meta: FieldMeta) -> FieldMeta:
    return FieldMeta(type=meta.type)


def item_element(item: Any, meta: FieldMeta) -> PathElement | None:
    """The path element of an associative list item, or None when the item lacks a key field."""
    if meta.list_type == "set":
        return None if isinstance(item, dict | list) else ("v", canonical(item))
    if not isinstance(item, dict):
        return None
    defaults = patchmeta.KEY_DEFAULTS.get(meta.type or "", {})
    keys = {}
    for name in meta.map_keys:
        value = item.get(name, defaults.get(name, _MISSING))
        if value is _MISSING or value is None:
            return None
        keys[name] = value
    return ("k", canonical(keys))


def missing_key_error(path: Path, meta: FieldMeta) -> APIError:
    what = "a value that is not a scalar" if meta.list_type == "set" else \
        f"an item without key field(s) {', '.join(meta.map_keys)}"
    return APIError(422, "Invalid", f"{render(path) or '.'}: associative list has {what}")


# --- ToFieldSet --------------------------------------------------------------------------------------------------


def object_fields(obj: dict, type_name: str | None, strict: bool = False) -> set[Path]:
    """Every member path of `obj`. `strict` (apply) rejects list items without keys; otherwise such lists are
    owned as a whole."""
    out: set[Path] = set()
    _collect(obj, FieldMeta(type=type_name), (), out, strict)
    return out


def _collect(value: Any, meta: FieldMeta, path: Path, out: set[Path], strict: bool) -> None:
    if is_atomic(value, meta):
        if path:
            out.add(path)
    elif isinstance(value, dict):
        for key, child in value.items():
            child_path = path + (("f", key),)
            _collect(child, patchmeta.field_meta(meta.type, key), child_path, out, strict)
            if child is None or child == {}:
                out.add(child_path)
    else:
        _collect_items(value, meta, path, out, strict)


def _collect_items(items: list, meta: FieldMeta, path: Path, out: set[Path], strict: bool) -> None:
    elements = [item_element(item, meta) for item in items]
    keyed = [(item, element) for item, element in zip(items, elements, strict=True) if element is not None]
    if len(keyed) != len(items):
        if strict:
            raise missing_key_error(path, meta)
        out.add(path)
        return
    if strict and len(set(elements)) != len(elements):
        raise APIError(422, "Invalid", f"{render(path)}: associative list has duplicate entries")
    for item, element in keyed:
        item_path = path + (element,)
        if isinstance(item, dict):
            _collect(item, item_meta(meta), item_path, out, strict)
        out.add(item_path)


# --- Compare -----------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


def compare(old: dict, new: dict, type_name: str | None) -> Comparison:
    """Which member paths `new` adds, modifies and removes relative to `old`."""
    result = Comparison()
    _compare(old, new, FieldMeta(type=type_name), (), result)
    return result


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value == {} or value == []


def _compare(lhs: Any, rhs: Any, meta: FieldMeta, path: Path, out: Comparison) -> None:
    shape = _shape(lhs if rhs is _MISSING else rhs)
    if lhs is not _MISSING and rhs is not _MISSING and _shape(lhs) != shape:
        out.modified.add(path)
        return
    sample = rhs if rhs is not _MISSING else lhs
    if shape == "scalar" or is_atomic(sample, meta) or (_is_empty(lhs) and _is_empty(rhs)):
        _compare_leaf(lhs, rhs, path, out)
        return
    if shape == "map":
        _compare_maps(lhs, rhs, meta, path, out)
    elif not _compare_lists(lhs, rhs, meta, path, out):
        _compare_leaf(lhs, rhs, path, out)
        return
    if path and lhs is _MISSING:
        out.added.add(path)
    elif path and rhs is _MISSING:
        out.removed.add(path)


def _shape(value: Any) -> str:
    return "map" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def _compare_leaf(lhs: Any, rhs: Any, path: Path, out: Comparison) -> None:
    if not path:
        return
    if lhs is _MISSING:
        out.added.add(path)
    elif rhs is _MISSING:
        out.removed.add(path)
    elif canonical(lhs) != canonical(rhs):
        out.modified.add(path)


def _compare_maps(lhs: Any, rhs: Any, meta: FieldMeta, path: Path, out: Comparison) -> None:
    left = lhs if isinstance(lhs, dict) else {}
    right = rhs if isinstance(rhs, dict) else {}
    for key in list(left) + [k for k in right if k not in left]:
        child_meta = patchmeta.field_meta(meta.type, key)
        _compare(left.get(key, _MISSING), right.get(key, _MISSING), child_meta, path + (("f", key),), out)


def _compare_lists(lhs: Any, rhs: Any, meta: FieldMeta, path: Path, out: Comparison) -> bool:
    """Compare associative lists item by item; False when an item has no key (compare them as leaves)."""
    left = _index(lhs if isinstance(lhs, list) else [], meta)
    right = _index(rhs if isinstance(rhs, list) else [], meta)
    if left is None or right is None:
        return False
    for element in list(left) + [e for e in right if e not in left]:
        _compare(left.get(element, _MISSING), right.get(element, _MISSING), item_meta(meta),
                 path + (element,), out)
    return True


def _index(items: list, meta: FieldMeta) -> dict[PathElement, Any] | None:
    indexed: dict[PathElement, Any] = {}
    for item in items:
        element = item_element(item, meta)
        if element is None:
            return None
        indexed.setdefault(element, item)
    return indexed
