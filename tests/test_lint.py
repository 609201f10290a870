"""The code stays ruff-clean everywhere and mypy-clean on the pure cores (svcnet/api, svcnet/store and the pure
modules of the controllers and the node agent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_clean() -> None:
    paths = [p for p in ("svcnet", "tests", "scripts", "bench") if (REPO / p).exists()]
    result = _run(str(BIN / "ruff"), "check", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


PURE_MODULES = [f"svcnet/node/{m}.py" for m in ("podspec", "podstatus", "ipam", "crilog", "images")] + \
    [f"svcnet/controllers/{m}.py" for m in ("endpoints", "replicas", "scheduling", "deployments", "garbage", "nodes",
                                             "loadbalancer", "mirroring")] + \
    [f"svcnet/proxy/{m}.py" for m in ("model", "tracker", "schedulers", "affinity", "show", "health", "backends",
                                         "categorize")] + \
    [f"svcnet/ingress/{m}.py" for m in ("model", "match", "routes", "common", "backends", "ingress_compile",
                                         "gateway_compile", "show")]


def test_mypy_clean_on_pure_cores() -> None:
    result = _run(str(BIN / "mypy"), "svcnet/api", "svcnet/store", *PURE_MODULES)
    assert result.returncode == 0, result.stdout + result.stderr
