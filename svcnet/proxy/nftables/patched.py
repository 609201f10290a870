"""Mappings that copy only what changes, for `compile.update_table`: at 10,000 services a table holds 60,000
chains, and copying every mapping of it per partial sync (most entries cold in the CPU cache after the
kernel's commit walked its own copy) cost more than the rest of the sync's Python together.

`Edit(base)` collects a sync's changes (assignments and deletions) over `base` without touching it;
`edit.result()` hands on a `Patched` mapping -- those changes read in front of the same `base` -- which the
next sync's `Edit` patches again, merging its changes into the same layer. Once the layer holds more than
`PATCH_MAX` keys, `result()` flattens everything into a new plain dict instead, so a lookup is at most two
dict lookups and the copying is amortised over ~`PATCH_MAX` changed keys. Iteration lists `base`'s keys in
their order (skipping removed ones), then the added keys in the order they were first added -- the same order
the flattened dict has.

Invariants: a `base` dict is never modified (tables built from it share it); a `Patched` is never modified
after construction; equality is by content, as for any Mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
PATCH_MAX = 256
_GONE: Any = object()  # a removed key, in a layer of changes
_UNSET: Any = object()


class Patched(Mapping[K, V], Generic[K, V]):
    """`changes` (key -> value, or removed) read in front of `base`; build one with `Edit(...).result()`."""

    __slots__ = ("base", "changes", "_len")

    def __init__(self, base: Mapping[K, V], changes: dict[K, Any]) -> None:
        self.base, self.changes = base, changes
        self._len = len(base) + sum((value is not _GONE) - (key in base) for key, value in changes.items())

    def __getitem__(self, key: K) -> V:
        return _read(self.base, self.changes, key)

    def __contains__(self, key: object) -> bool:
        value = self.changes.get(key, _UNSET)  # type: ignore[arg-type]
        return key in self.base if value is _UNSET else value is not _GONE

    def __iter__(self) -> Iterator[K]:
        changes = self.changes
        yield from (key for key in self.base if changes.get(key, _UNSET) is not _GONE)
        yield from (key for key, value in changes.items() if value is not _GONE and key not in self.base)

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"Patched({dict(self.items())!r})"


def _read(base: Mapping[K, V], changes: dict[K, Any], key: K) -> V:
    """`key`'s value with `changes` in front of `base` (KeyError when neither has it, or it was removed)."""
    value = changes.get(key, _UNSET)
    if value is _UNSET:
        return base[key]
    if value is _GONE:
        raise KeyError(key)
    return value  # type: ignore[no-any-return]


class Edit(MutableMapping[K, V], Generic[K, V]):
    """A working copy of `base` that copies nothing: reads see the changes made so far."""

    def __init__(self, base: Mapping[K, V]) -> None:
        self.base = base
        self.changes: dict[K, Any] = {}

    def __getitem__(self, key: K) -> V:
        return _read(self.base, self.changes, key)

    def __setitem__(self, key: K, value: V) -> None:
        self.changes[key] = value

    def __delitem__(self, key: K) -> None:
        self[key]  # noqa: B018 -- raises KeyError for a key that is not there
        self.changes[key] = _GONE

    def __iter__(self) -> Iterator[K]:
        return iter(self.result())

    def __len__(self) -> int:
        return len(self.result())

    def result(self) -> Mapping[K, V]:
        """`base` with the changes: `base` itself when there are none, a `Patched`, or a flattened dict."""
        if not self.changes:
            return self.base
        base, changes = self.base, self.changes
        if isinstance(self.base, Patched):
            base, changes = self.base.base, {**self.base.changes, **changes}
        if len(changes) <= PATCH_MAX:
            return Patched(base, changes)
        flat = dict(base)
        for key, value in changes.items():
            if value is _GONE:
                flat.pop(key, None)
            else:
                flat[key] = value
        return flat


def moved_keys(before: Mapping[K, V], after: Mapping[K, V]) -> list[K] | None:
    """The keys whose values are not the very same objects in both, found from the layers alone when both
    are layers over one base (or `after` over `before` itself); None when that cannot be told cheaply."""
    if after is before:
        return []
    base = before.base if isinstance(before, Patched) else before
    if not isinstance(after, Patched) or after.base is not base:
        return None
    keys = dict.fromkeys([*after.changes, *(before.changes if isinstance(before, Patched) else ())])
    return [key for key in keys if before.get(key, _UNSET) is not after.get(key, _UNSET)]
