"""Helpers for JSON trees (dicts, lists and scalars, as decoded objects are) — pure.

`clone` is a deep copy about 3x faster than `copy.deepcopy`, because it only knows the JSON types; any other
value (a YAML date, say) is deep-copied the usual way.
"""

from __future__ import annotations

import copy
from typing import Any

_SCALARS = frozenset((str, int, float, bool, type(None)))


def clone(obj: Any) -> Any:
    kind = type(obj)
    if kind is dict:
        return {k: v if type(v) in _SCALARS else clone(v) for k, v in obj.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else clone(v) for v in obj]
    if kind in _SCALARS:
        return obj
    return copy.deepcopy(obj)
