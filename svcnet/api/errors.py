"""API errors as Kubernetes `Status` objects.

Every failure the API server reports is an `APIError`; `to_status()` renders the exact `Status` shape kubectl and
client-go expect (`kind`, `apiVersion`, `status: Failure`, `message`, `reason`, `details`, `code`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One field problem: reason is a Kubernetes CauseType (FieldValueInvalid, FieldValueRequired, ...)."""

    field: str
    reason: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


# Cause reasons (k8s.io/apimachinery/pkg/util/validation/field ErrorType -> CauseType).
INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
DUPLICATE = "FieldValueDuplicate"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, INVALID, f"Invalid value: {_render(value)}: {detail}")


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, REQUIRED, "Required value" + (f": {detail}" if detail else ""))


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, DUPLICATE, f"Duplicate value: {_render(value)}")


def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    options = ", ".join(f'"{s}"' for s in supported)
    return Cause(path, NOT_SUPPORTED, f"Unsupported value: {_render(value)}: supported values: {options}")


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, FORBIDDEN, f"Forbidden: {detail}")


def not_found_value(path: str, value: Any) -> Cause:
    return Cause(path, "FieldValueNotFound", f"Not found: {_render(value)}")


def too_many(path: str, actual: int, limit: int) -> Cause:
    return Cause(path, TOO_MANY, f"Too many: {actual}: must have at most {limit} items")


def too_long(path: str, max_len: int) -> Cause:
    return Cause(path, TOO_LONG, f"Too long: may not be more than {max_len} bytes")


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass
class APIError(Exception):
    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""  # the resource (plural) as kube-apiserver puts it in details.kind
    causes: list[Cause] = field(default_factory=list)
    retry_after: int = 0

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            status["details"] = details
        return status


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', name, group, resource)


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', name, group,
                    resource)


def conflict(resource: str, name: str, detail: str, group: str = "") -> APIError:
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
                    name, group, resource)


def invalid_object(kind: str, name: str, causes: list[Cause], group: str = "") -> APIError:
    """422 Invalid: message 'Service "x" is invalid: [a: ..., b: ...]' like kube-apiserver."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return APIError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', name, group, kind, causes)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden_request(user: str, verb: str, resource: str, group: str, namespace: str, name: str = "") -> APIError:
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    what = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return APIError(403, "Forbidden",
                    f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
                    f'"{group}"{scope}', name, group, resource)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted '
                    f'media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf '
                    f'(got "{content_type}")')


def too_large() -> APIError:
    return APIError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")
