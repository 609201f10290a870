"""PATCH bodies: pick the patch flavour from the Content-Type and apply it to the stored object.

- `application/json-patch+json`: RFC 6902 operations (the `jsonpatch` library);
- `application/merge-patch+json`: RFC 7386 JSON merge patch;
- `application/strategic-merge-patch+json`: Kubernetes strategic merge patch (`svcnet.api.smp`).
Server-side apply (`application/apply-patch+yaml`) needs a field manager and lives in `svcnet.api.ssa`.

Invariants: the original is never mutated; content type parameters (`; charset=utf-8`) are ignored; every failure
is an `APIError`: 415 for an unknown patch type, 400 for a body that is not JSON of the right shape, 422 for a
patch that cannot be applied (a failed `test`, a missing path).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonpatch

from svcnet.api import smp
from svcnet.api.errors import APIError, bad_request
from svcnet.api.jsontree import clone

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

__all__ = ["APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "PATCH_TYPES", "STRATEGIC_MERGE_PATCH", "apply_patch",
           "media_type", "unsupported_patch_type"]


def media_type(content_type: str) -> str:
    """`application/merge-patch+json; charset=utf-8` -> `application/merge-patch+json`."""
    return content_type.split(";", 1)[0].strip().lower()


def apply_patch(content_type: str, original: dict, body: bytes, kind: str) -> dict:
    """Apply a PATCH body of the given content type to `original`; return the patched object."""
    handler = _HANDLERS.get(media_type(content_type))
    if handler is None:
        raise unsupported_patch_type(content_type)
    return handler(original, _decode(body), kind)


def unsupported_patch_type(content_type: str, custom: bool = False) -> APIError:
    """415 for a patch type the kind does not take; `custom` kinds (served like CRDs) take no strategic merge
    patch, as kube-apiserver answers for custom resources."""
    accepted = ", ".join(t for t in PATCH_TYPES if not (custom and t == STRATEGIC_MERGE_PATCH))
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: {accepted}"
                    f" (got {content_type!r})")


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes | bytearray) else body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from None


def _json_patch(original: dict, operations: Any, kind: str) -> dict:
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise bad_request("json patch must be a JSON array of operation objects")
    try:
        result = jsonpatch.JsonPatch(operations).apply(clone(original))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise APIError(422, "Invalid", f"the json patch could not be applied: {exc}") from None
    except (TypeError, KeyError, IndexError, ValueError) as exc:  # malformed operations the library trips on
        raise APIError(422, "Invalid", f"the json patch could not be applied: invalid operation: {exc}") from None
    if not isinstance(result, dict):
        raise APIError(422, "Invalid", "the json patch could not be applied: the result is not a JSON object")
    return result


def _merge_patch(original: dict, patch: Any, kind: str) -> dict:
    if not isinstance(patch, dict):
        raise bad_request("merge patch must be a JSON object")
    return smp.apply_merge_patch(original, patch)


def _strategic_merge_patch(original: dict, patch: Any, kind: str) -> dict:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    return smp.apply_strategic_merge_patch(original, patch, kind)


_HANDLERS: dict[str, Callable[[dict, Any, str], dict]] = {
    JSON_PATCH: _json_patch,
    MERGE_PATCH: _merge_patch,
    STRATEGIC_MERGE_PATCH: _strategic_merge_patch,
}
