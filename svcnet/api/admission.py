"""Mutating admission kube-apiserver enables by default, as pure functions — DefaultIngressClass.

DefaultIngressClass (kube `plugin/pkg/admission/network/defaultingressclass`): on create, an Ingress that names no
class — neither `spec.ingressClassName` nor the legacy `kubernetes.io/ingress.class` annotation — gets the name of
the IngressClass annotated `ingressclass.kubernetes.io/is-default-class: "true"`. With several default classes the
newest wins (by creationTimestamp, then by name; kube since 1.28, before which it refused the Ingress); with none
the Ingress is left as it is.

Invariants: pure; never mutates its inputs; malformed objects are left for validation.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_CLASS_ANNOTATION", "LEGACY_CLASS_ANNOTATION", "default_ingress_class", "needs_ingress_class"]

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(obj: Obj) -> Obj:
    annotations = _meta(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def needs_ingress_class(ingress: Obj) -> bool:
    """Whether the Ingress names no class (so the default one applies)."""
    spec = ingress.get("spec")
    named = isinstance(spec, dict) and spec.get("ingressClassName") is not None
    return not named and LEGACY_CLASS_ANNOTATION not in _annotations(ingress)


def default_class_name(classes: list[Obj]) -> str | None:
    """The default IngressClass among `classes`: the newest annotated one (ties: the first name), or None."""
    defaults = [c for c in classes if _annotations(c).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if not defaults:
        return None
    # RFC 3339 UTC timestamps ("...Z") sort as text; newest first, then names ascending
    newest = max(str(_meta(c).get("creationTimestamp") or "") for c in defaults)
    return min(str(_meta(c).get("name", "")) for c in defaults
               if str(_meta(c).get("creationTimestamp") or "") == newest)


def default_ingress_class(ingress: Obj, classes: list[Obj]) -> Obj:
    """`ingress` with `spec.ingressClassName` set to the default class, when it names none and there is one."""
    name = default_class_name(classes) if needs_ingress_class(ingress) else None
    if name is None or not isinstance(ingress.get("spec", {}), dict):
        return ingress
    admitted = {**ingress, "spec": {**(ingress.get("spec") or {}), "ingressClassName": name}}
    return admitted
