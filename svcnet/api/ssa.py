"""Server-side apply and managedFields bookkeeping, with structured-merge-diff's semantics.

Theory of operation:
- `apply` merges the applied configuration into the live object (maps per key, associative lists per item key,
  everything else replaced), prunes what this manager applied last time but no longer applies and nobody else
  owns, checks that no field another manager owns changes value (409 Conflict, unless `force` moves ownership),
  and records the applied field set under `{manager, operation: Apply}`.
- `update_managed_fields` runs after every create / update / patch: the fields the request added or changed
  become the manager's (operation Update) and leave every other manager; removed fields leave everyone.
Managers are identified by (manager, operation, subresource). Entries with an empty set are dropped; entries are
ordered like kube-apiserver (Apply before Update, then by time and name).

Invariants:
- server-set fields (apiVersion, kind, status, and metadata name/namespace/uid/resourceVersion/generation/
  creationTimestamp/deletion*/managedFields/selfLink) are never owned;
- inputs are never mutated; every failure is an `APIError`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from svcnet.api import fieldpath, patchmeta
from svcnet.api.errors import APIError, Cause, bad_request
from svcnet.api.fieldpath import Path
from svcnet.api.jsontree import clone
from svcnet.api.patchmeta import FieldMeta

APPLY = "Apply"
UPDATE = "Update"
FIELD_MANAGER_CONFLICT = "FieldManagerConflict"

_MISSING = object()
_IGNORED_EXACT: frozenset[Path] = frozenset({(("f", "metadata"),)})
_IGNORED_PREFIXES: tuple[Path, ...] = tuple(
    tuple(("f", part) for part in name.split(".")) for name in (
        "apiVersion", "kind", "status", "metadata.name", "metadata.namespace", "metadata.uid",
        "metadata.resourceVersion", "metadata.generation", "metadata.creationTimestamp", "metadata.selfLink",
        "metadata.deletionTimestamp", "metadata.deletionGracePeriodSeconds", "metadata.managedFields",
        "metadata.clusterName", "metadata.generateName"))

__all__ = ["APPLY", "UPDATE", "apply", "decode_apply_body", "update_managed_fields"]


class _JSONLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: every scalar decodes to a JSON type."""


_JSONLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def decode_apply_body(body: bytes) -> dict:
    """The applied configuration of an `application/apply-patch+yaml` body (YAML or JSON)."""
    try:
        value = yaml.load(body.decode("utf-8") if isinstance(body, bytes | bytearray) else body,  # noqa: S506
                          Loader=_JSONLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request("apply patch must be a YAML or JSON object")
    return value


# --- managed field entries ---------------------------------------------------------------------------------------


class _Entry:
    """One managedFields entry with its decoded field set."""

    __slots__ = ("api_version", "fields", "manager", "operation", "subresource", "time")

    def __init__(self, manager: str, operation: str, api_version: str, time: str | None, fields: set[Path],
                 subresource: str = "") -> None:
        self.manager, self.operation, self.api_version = manager, operation, api_version
        self.time, self.fields, self.subresource = time, fields, subresource

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How kube-apiserver names a manager in conflict messages."""
        name = json.dumps(self.manager)
        if self.subresource:
            name += f" with subresource {json.dumps(self.subresource)}"
        return f"{name} using {self.api_version}" if self.operation == UPDATE else name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = fieldpath.encode(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _decode_entries(obj: dict | None) -> list[_Entry] | None:
    """The entries of `obj`'s managedFields; None when absent or undecodable (then the caller falls back)."""
    raw = (obj or {}).get("metadata", {}).get("managedFields")
    if not isinstance(raw, list) or not raw:
        return None
    try:
        return [_decode_entry(item) for item in raw]
    except (APIError, TypeError, AttributeError):
        return None


def _decode_entry(item: Any) -> _Entry:
    if not isinstance(item, dict) or not isinstance(item.get("manager", ""), str):
        raise bad_request("invalid managedFields entry")
    if item.get("fieldsType", "FieldsV1") != "FieldsV1":
        raise bad_request("managedFields: only fieldsType FieldsV1 is supported")
    return _Entry(item.get("manager", ""), item.get("operation", UPDATE), item.get("apiVersion", ""),
                  item.get("time"), fieldpath.decode(item.get("fieldsV1", {})), item.get("subresource", ""))


def _is_reset(obj: dict) -> bool:
    """`managedFields: [{}]` clears ownership, as in kube-apiserver."""
    return obj.get("metadata", {}).get("managedFields") == [{}]


def _entries_for_update(old: dict | None, new: dict) -> list[_Entry]:
    if _is_reset(new):
        return []
    from_new = _decode_entries(new)
    if from_new is not None:
        return from_new
    return _decode_entries(old) or []


def _sorted(entries: list[_Entry]) -> list[_Entry]:
    kept = [e for e in entries if e.fields]
    return sorted(kept, key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))


def _with_managed_fields(obj: dict, entries: list[_Entry]) -> dict:
    out = clone(obj)
    metadata = out.setdefault("metadata", {})
    ordered = _sorted(entries)
    if ordered:
        metadata["managedFields"] = [e.to_dict() for e in ordered]
    else:
        metadata.pop("managedFields", None)
    return out


# --- owned paths -------------------------------------------------------------------------------------------------


def _owned(paths: set[Path]) -> set[Path]:
    """Drop the paths that are never owned."""
    return {p for p in paths if p not in _IGNORED_EXACT and not any(p[:len(i)] == i for i in _IGNORED_PREFIXES)}


def _without_managed_fields(obj: dict) -> dict:
    out = dict(obj)
    if isinstance(out.get("metadata"), dict) and "managedFields" in out["metadata"]:
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out


def _skeleton(value: Any, type_name: str | None) -> Any:
    """`value` with the non-pointer structs Go would always serialise filled in as `{}` (for compare only)."""
    if isinstance(value, list):
        return [_skeleton(item, type_name) for item in value]
    if not isinstance(value, dict) or type_name is None:
        return value
    out = dict(value)
    for name, meta in patchmeta.TYPES.get(type_name, {}).items():
        if name in out:
            out[name] = _skeleton(out[name], meta.type)
        elif meta.always:
            out[name] = _skeleton({}, meta.type)
    return out


def _compare(old: dict | None, new: dict, type_name: str | None) -> fieldpath.Comparison:
    before = _skeleton(_without_managed_fields(old or {}), type_name)
    after = _skeleton(_without_managed_fields(new), type_name)
    result = fieldpath.compare(before, after, type_name)
    return fieldpath.Comparison(_owned(result.added), _owned(result.modified), _owned(result.removed))


# --- update ------------------------------------------------------------------------------------------------------


def update_managed_fields(old: dict | None, new: dict, manager: str, operation: str, now: str,
                          kind: str) -> dict:
    """`new` with metadata.managedFields updated for a create/update/patch made by `manager`."""
    type_name = patchmeta.root_type(kind)
    entries = _entries_for_update(old, new)
    diff = _compare(old, new, type_name)
    for entry in entries:
        entry.fields -= diff.changed | diff.removed
    taken = diff.changed
    if taken:
        identity = (manager, operation, "")
        mine = next((e for e in entries if e.identity == identity), None)
        if mine is None:
            mine = _Entry(manager, operation, new.get("apiVersion", ""), now, set())
            entries.append(mine)
        mine.fields |= taken
        mine.time, mine.api_version = now, new.get("apiVersion", mine.api_version)
    return _with_managed_fields(new, entries)


# --- apply -------------------------------------------------------------------------------------------------------


def apply(live: dict | None, applied: dict, manager: str, force: bool, now: str, kind: str) -> dict:
    """The object after `manager` server-side applies `applied` to `live` (None: the object does not exist)."""
    _validate_applied(applied, kind)
    type_name = patchmeta.root_type(kind)
    entries = (_decode_entries(live) or []) if live is not None else []
    identity = (manager, APPLY, "")
    previous = next((e for e in entries if e.identity == identity), None)
    others = [e for e in entries if e.identity != identity]
    applied_set = _owned(fieldpath.object_fields(applied, type_name, strict=True))
    base = _without_managed_fields(live or {})
    merged = _merge(base, applied, FieldMeta(type=type_name), ())
    if previous is not None:
        keep = applied_set.union(*(e.fields for e in others))
        merged = _prune(merged, previous.fields - keep, keep, type_name)
    diff = _compare(live, merged, type_name)
    _resolve_conflicts(others, diff.changed, force)
    for entry in others:
        entry.fields -= diff.removed
    changed = bool(diff.changed or diff.removed)
    time = now if previous is None or changed or previous.fields != applied_set else previous.time
    mine = _Entry(manager, APPLY, applied.get("apiVersion", ""), time, applied_set)
    return _with_managed_fields(merged, [*others, mine])


def _validate_applied(applied: Any, kind: str) -> None:
    if not isinstance(applied, dict):
        raise bad_request("apply patch must be a YAML or JSON object")
    for name in ("apiVersion", "kind"):
        if not isinstance(applied.get(name), str) or not applied[name]:
            raise bad_request(f"{name} must be set in the applied configuration")
    metadata = applied.get("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    if metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    if applied["kind"] != kind:
        raise bad_request(f"the applied kind {applied['kind']!r} does not match the resource's kind {kind!r}")


def _resolve_conflicts(others: list[_Entry], changed: set[Path], force: bool) -> None:
    """Raise 409 listing every field another manager owns that this apply changes; with force, take them."""
    conflicts = [(entry, path) for entry in others for path in sorted(entry.fields & changed, key=fieldpath.path_sort_key)]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.fields.discard(path)


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> APIError:
    causes = [Cause(fieldpath.render(path), FIELD_MANAGER_CONFLICT, f"conflict with {entry.describe()}")
              for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {fieldpath.render(path)}"
    else:
        lines = []
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(fieldpath.render(path))
        for name in sorted(by_manager):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {p}" for p in by_manager[name])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, causes=causes)


# --- merge -------------------------------------------------------------------------------------------------------


def _merge(live: Any, config: Any, meta: FieldMeta, path: Path) -> Any:
    """The applied value `config` merged over `live`."""
    if isinstance(config, dict) and not fieldpath.is_atomic(config, meta):
        live = live if isinstance(live, dict) else {}
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                child_meta = patchmeta.field_meta(meta.type, key)
                out[key] = _merge(live.get(key, _MISSING), value, child_meta, path + (("f", key),))
        return out
    if isinstance(config, list) and not fieldpath.is_atomic(config, meta):
        return _merge_items(live if isinstance(live, list) else [], config, meta, path)
    return clone(config)


def _merge_items(live: list, config: list, meta: FieldMeta, path: Path) -> list:
    """Associative lists merge per key: live order, with the applied items placed in their applied order."""
    applied = [(fieldpath.item_element(item, meta), item) for item in config]
    applied_index = {element: item for element, item in applied}
    out, emitted, position = [], set(), 0
    for item in live:
        element = fieldpath.item_element(item, meta)
        if element not in applied_index:
            out.append(item)
            continue
        while position < len(applied) and element not in emitted:
            next_element, next_item = applied[position]
            position += 1
            if next_element not in emitted:
                emitted.add(next_element)
                out.append(_merge_item(live, next_element, next_item, meta, path))
    for next_element, next_item in applied[position:]:
        if next_element not in emitted:
            emitted.add(next_element)
            out.append(_merge_item(live, next_element, next_item, meta, path))
    return out


def _merge_item(live: list, element: Any, item: Any, meta: FieldMeta, path: Path) -> Any:
    current = next((i for i in live if fieldpath.item_element(i, meta) == element), _MISSING)
    return _merge(current, item, fieldpath.item_meta(meta), path + (element,))


# --- prune -------------------------------------------------------------------------------------------------------


def _prune(obj: dict, doomed: set[Path], keep: set[Path], type_name: str | None) -> dict:
    """Remove the `doomed` paths (and the parents they leave empty) unless something kept lies below them."""
    kept_ancestors = {p[:i] for p in keep for i in range(1, len(p))}
    out = clone(obj)
    for path in sorted(doomed, key=len):
        if path in kept_ancestors:
            continue
        if _remove(out, path, FieldMeta(type=type_name)):
            _remove_empty_parents(out, path, keep, kept_ancestors, type_name)
    return out


def _remove(obj: dict, path: Path, meta: FieldMeta) -> bool:
    parent, meta = _resolve(obj, path[:-1], meta)
    if parent is _MISSING:
        return False
    kind, payload = path[-1]
    if kind == "f" and isinstance(parent, dict) and payload in parent:
        del parent[payload]
        return True
    if kind in ("k", "v") and isinstance(parent, list):
        before = len(parent)
        parent[:] = [i for i in parent if fieldpath.item_element(i, meta) != path[-1]]
        return len(parent) != before
    return False


def _resolve(obj: Any, path: Path, meta: FieldMeta) -> tuple[Any, FieldMeta]:
    node = obj
    for kind, payload in path:
        if kind == "f" and isinstance(node, dict) and payload in node:
            node, meta = node[payload], patchmeta.field_meta(meta.type, payload)
        elif kind in ("k", "v") and isinstance(node, list):
            node = next((i for i in node if fieldpath.item_element(i, meta) == (kind, payload)), _MISSING)
            meta = fieldpath.item_meta(meta)
        else:
            return _MISSING, meta
        if node is _MISSING:
            return _MISSING, meta
    return node, meta


def _remove_empty_parents(obj: dict, path: Path, keep: set[Path], kept_ancestors: set[Path],
                          type_name: str | None) -> None:
    for end in range(len(path) - 1, 0, -1):
        parent = path[:end]
        if parent[-1][0] != "f" or parent in keep or parent in kept_ancestors:
            return
        value, _ = _resolve(obj, parent, FieldMeta(type=type_name))
        if value not in ({}, []):
            return
        _remove(obj, parent, FieldMeta(type=type_name))
