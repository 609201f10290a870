"""DefaultIngressClass admission: which Ingress gets which default class."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api import admission


def ingress_class(name: str, created: str, default: str | None = "true") -> dict[str, Any]:
    annotations = {} if default is None else {admission.DEFAULT_CLASS_ANNOTATION: default}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "spec": {"controller": "svcnet.io/ingress"}}


OLD, NEW = "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"
PLAIN = {"metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example.com"}]}}


@pytest.mark.parametrize(("ingress", "classes", "expected"), [
    pytest.param(PLAIN, [], None, id="no-classes"),
    pytest.param(PLAIN, [ingress_class("a", OLD, None)], None, id="no-default-class"),
    pytest.param(PLAIN, [ingress_class("a", OLD, "false")], None, id="annotation-false"),
    pytest.param(PLAIN, [ingress_class("a", OLD)], "a", id="one-default"),
    pytest.param(PLAIN, [ingress_class("old", OLD), ingress_class("new", NEW)], "new", id="several-newest-wins"),
    pytest.param(PLAIN, [ingress_class("b", NEW), ingress_class("a", NEW)], "a", id="same-time-first-name"),
    pytest.param({**PLAIN, "spec": {"ingressClassName": "mine"}}, [ingress_class("a", OLD)], "mine",
                 id="named-class-kept"),
    pytest.param({"metadata": {"name": "web", "annotations": {admission.LEGACY_CLASS_ANNOTATION: "nginx"}},
                  "spec": {}}, [ingress_class("a", OLD)], None, id="legacy-annotation-kept"),
])
def test_default_ingress_class(ingress: dict[str, Any], classes: list[dict[str, Any]], expected: str | None) -> None:
    admitted = admission.default_ingress_class(ingress, classes)
    assert admitted["spec"].get("ingressClassName") == expected
    assert "ingressClassName" not in PLAIN["spec"]  # the input is never mutated
