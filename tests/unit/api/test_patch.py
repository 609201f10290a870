"""The PATCH dispatcher: content type -> patch flavour, and the errors each flavour reports."""

from __future__ import annotations

import json

import pytest

from svcnet.api.errors import APIError
from svcnet.api.patch import apply_patch

ORIGINAL = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bar", "labels": {"app": "bar"}},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": "bar"}}}


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


CASES = [
    pytest.param("application/json-patch+json",
                 [{"op": "replace", "path": "/spec/selector/app", "value": "x"},
                  {"op": "add", "path": "/metadata/labels/tier", "value": "web"}],
                 {**ORIGINAL, "metadata": {"name": "bar", "labels": {"app": "bar", "tier": "web"}},
                  "spec": {**ORIGINAL["spec"], "selector": {"app": "x"}}}, id="json-patch"),
    pytest.param("application/json-patch+json",
                 [{"op": "test", "path": "/metadata/name", "value": "bar"},
                  {"op": "remove", "path": "/metadata/labels"}],
                 {**ORIGINAL, "metadata": {"name": "bar"}}, id="json-patch-test-passes"),
    pytest.param("application/merge-patch+json",
                 {"metadata": {"labels": {"app": None, "x": "1"}}, "spec": {"ports": [{"port": 81}]}},
                 {**ORIGINAL, "metadata": {"name": "bar", "labels": {"x": "1"}},
                  "spec": {"ports": [{"port": 81}], "selector": {"app": "bar"}}}, id="merge-patch-replaces-lists"),
    pytest.param("application/merge-patch+json; charset=utf-8", {"spec": None},
                 {k: v for k, v in ORIGINAL.items() if k != "spec"}, id="merge-patch-with-parameters"),
    pytest.param("application/strategic-merge-patch+json", {"spec": {"ports": [{"port": 81}]}},
                 {**ORIGINAL, "spec": {"ports": [{"port": 81}, {"name": "http", "port": 80, "protocol": "TCP"}],
                                       "selector": {"app": "bar"}}}, id="strategic-merges-lists-by-key"),
    pytest.param("Application/Strategic-Merge-Patch+JSON;charset=utf-8", {"metadata": {"labels": {"a": "b"}}},
                 {**ORIGINAL, "metadata": {"name": "bar", "labels": {"app": "bar", "a": "b"}}},
                 id="media-type-is-case-insensitive"),
]


@pytest.mark.parametrize(("content_type", "patch", "expected"), CASES)
def test_apply_patch(content_type: str, patch: object, expected: dict) -> None:
    before = json.dumps(ORIGINAL, sort_keys=True)
    assert apply_patch(content_type, ORIGINAL, _body(patch), "Service") == expected
    assert json.dumps(ORIGINAL, sort_keys=True) == before


ERRORS = [
    pytest.param("application/json-patch+json", _body([{"op": "test", "path": "/metadata/name", "value": "x"}]),
                 422, "test", id="json-patch-test-fails"),
    pytest.param("application/json-patch+json", _body([{"op": "remove", "path": "/spec/nothing"}]), 422, "",
                 id="json-patch-missing-path"),
    pytest.param("application/json-patch+json", _body([{"op": "frobnicate", "path": "/a"}]), 422, "",
                 id="json-patch-unknown-op"),
    pytest.param("application/json-patch+json", _body([{"path": "/a"}]), 422, "", id="json-patch-op-missing"),
    pytest.param("application/json-patch+json", _body({"op": "add"}), 400, "array", id="json-patch-not-a-list"),
    pytest.param("application/json-patch+json", _body([1]), 400, "array", id="json-patch-op-not-an-object"),
    pytest.param("application/json-patch+json", _body([{"op": "replace", "path": "", "value": 1}]), 422,
                 "object", id="json-patch-result-not-an-object"),
    pytest.param("application/json-patch+json", b"[{", 400, "decoding", id="json-patch-invalid-json"),
    pytest.param("application/merge-patch+json", b"{nope", 400, "decoding", id="merge-patch-invalid-json"),
    pytest.param("application/merge-patch+json", _body([1]), 400, "object", id="merge-patch-not-an-object"),
    pytest.param("application/strategic-merge-patch+json", _body("x"), 400, "object", id="smp-not-an-object"),
    pytest.param("application/strategic-merge-patch+json", b"\xff", 400, "decoding", id="smp-not-utf8"),
    pytest.param("application/strategic-merge-patch+json", _body({"spec": {"ports": [{"name": "x"}]}}), 422,
                 "merge key", id="smp-missing-merge-key"),
    pytest.param("application/json", _body({}), 415, "unknown format", id="plain-json-is-not-a-patch"),
    pytest.param("text/plain", b"{}", 415, "application/json-patch+json", id="unknown-type"),
    pytest.param("application/apply-patch+yaml", b"{}", 415, "", id="apply-is-not-dispatched-here"),
]


@pytest.mark.parametrize(("content_type", "body", "code", "fragment"), ERRORS)
def test_patch_errors(content_type: str, body: bytes, code: int, fragment: str) -> None:
    with pytest.raises(APIError) as info:
        apply_patch(content_type, ORIGINAL, body, "Service")
    assert info.value.code == code
    assert fragment in info.value.message
