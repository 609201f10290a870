"""Request body decoding and response encoding for the API server.

Invariants: every decode failure is an `APIError` (400 for malformed input, 413 for oversized bodies, 415 for an
unknown content type) — never another exception; a decoded object is always a JSON object (dict).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import yaml

from svcnet.api import errors

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's limit for a request body
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.bad_request(f"error decoding request body as JSON: {exc}") from None
    except RecursionError:
        raise errors.bad_request("error decoding request body as JSON: nesting too deep") from None


def decode_yaml(body: bytes) -> Any:
    try:
        obj = yaml.load(body, Loader=yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
        if _expanded_size(obj, {}) > 2 * MAX_BODY_BYTES:
            raise errors.bad_request("error decoding request body as YAML: document contains excessive aliasing")
        return obj
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise errors.bad_request(f"error decoding request body as YAML: {exc}") from None
    except RecursionError:
        raise errors.bad_request("error decoding request body as YAML: nesting too deep") from None


def _expanded_size(obj: Any, seen: dict[int, int]) -> int:
    """About how many bytes `obj` takes once its YAML aliases are expanded; each shared node is sized once."""
    if isinstance(obj, str | bytes):
        return len(obj) + 2
    if not isinstance(obj, dict | list):
        return 8
    known = seen.get(id(obj))
    if known is None:
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        known = seen[id(obj)] = 2 + sum(_expanded_size(item, seen) + 1 for item in items)
    return known


def decode_object(content_type: str | None, body: bytes) -> dict[str, Any]:
    """Decode a create/update body (JSON, YAML or Kubernetes protobuf) into a dict."""
    if len(body) > MAX_BODY_BYTES:
        raise errors.too_large()
    kind = media_type(content_type)
    if kind in ("", JSON, "application/merge-patch+json", "*/*", "application/octet-stream"):
        obj = decode_json(body)
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object (a Kubernetes resource)")
        return obj  # already plain JSON: no round trip through _plain
    elif kind in (YAML, "application/x-yaml", "text/yaml", "application/apply-patch+yaml"):
        obj = decode_yaml(body)
    elif kind == PROTOBUF:
        obj = _decode_protobuf(body)
    else:
        raise errors.unsupported_media_type(kind)
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON object (a Kubernetes resource)")
    return _plain(obj)


def _decode_protobuf(body: bytes) -> Any:
    from svcnet.api import protobuf

    try:
        return protobuf.decode_object(body)
    except protobuf.ProtobufError as exc:
        raise errors.bad_request(f"error decoding protobuf request body: {exc}") from None


def _plain(obj: Any) -> Any:
    """YAML can produce dates, sets and non-string keys; JSON-ify them so the object round-trips as JSON."""
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError) as exc:
        raise errors.bad_request(f"the request body is not representable as JSON: {exc}") from None




def encode(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits and other values orjson refuses
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def wants_table(accept: str | None) -> bool:
    return "as=Table" in (accept or "")
