"""kubectl's typed generators send protobuf bodies; the server must store what kubectl meant, i.e. what the same
command prints with `--dry-run=client -o json` (the JSON form of the very object it encodes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Server

GENERATORS = [
    pytest.param(["deployment", "web", "--image=nginx:1.17.1", "--replicas=3", "--port=80"], "deployment/web",
                 id="deployment"),
    pytest.param(["deployment", "zero", "--image=nginx", "--replicas=0"], "deployment/zero", id="deployment-zero"),
    pytest.param(["service", "nodeport", "np", "--tcp=80:8080", "--node-port=30123"], "service/np", id="service"),
    pytest.param(["configmap", "cm", "--from-literal=a=b", "--from-literal=c=d"], "configmap/cm", id="configmap"),
    pytest.param(["secret", "generic", "s", "--from-literal=k=v"], "secret/s", id="secret"),
]


def _subset(wanted: Any, got: Any, path: str = "") -> list[str]:
    """Paths where `got` lacks or differs from what `wanted` says (server defaults may add more)."""
    if isinstance(wanted, dict) and isinstance(got, dict):
        return [p for k, v in wanted.items() for p in _subset(v, got.get(k), f"{path}.{k}")]
    if isinstance(wanted, list) and isinstance(got, list) and len(wanted) == len(got):
        return [p for i, (w, g) in enumerate(zip(wanted, got, strict=True)) for p in _subset(w, g, f"{path}[{i}]")]
    return [] if wanted == got else [f"{path}: wanted {wanted!r}, got {got!r}"]


@pytest.mark.parametrize(("args", "ref"), GENERATORS)
def test_generator_body_decodes_to_what_kubectl_meant(server: Server, ns: str, args: list[str], ref: str) -> None:
    intended = json.loads(server.kubectl("create", *args, "-n", ns, "--dry-run=client", "-o", "json").stdout)
    created = server.kubectl("create", *args, "-n", ns)
    assert created.rc == 0, str(created)
    stored = json.loads(server.kubectl("get", ref, "-n", ns, "-o", "json").stdout)
    for volatile in ("creationTimestamp",):
        intended["metadata"].pop(volatile, None)
        intended.get("spec", {}).get("template", {}).get("metadata", {}).pop(volatile, None)
    intended.pop("status", None)
    assert _subset(intended, stored) == []
