"""The iptables applier inside a throwaway network namespace (root only): a compiled ruleset and its hooks go
in, `cleanup` takes every KUBE-* chain and hook out again, and a namespace that does not exist is an error,
never a fallback to the host's tables.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables import compile as ipt
from svcnet.proxy.iptables.apply import IptablesApplier

NODE = ipt.NodeInfo("node-a", addresses=("192.168.1.10",), cluster_cidr="10.244.0.0/16")
WEB = model.ServicePortName("default", "web", "http", "TCP")
SNAPSHOT = model.Snapshot({WEB: model.ServicePortInfo(WEB, ("10.96.0.10",), 80, "TCP")},
                          {WEB: (model.EndpointInfo("10.244.1.5", 8080, "node-a"),)})


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    missing = [t for t in ("ip", "nsenter", "iptables-restore", "iptables-save", "iptables") if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    name = f"svcnet-t-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def saved(ns: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True, check=True)
    return done.stdout


def test_apply_hooks_and_cleanup_in_the_namespace(netns: str) -> None:
    applier = IptablesApplier(netns)
    compiled = ipt.compile_rules(SNAPSHOT, NODE)
    asyncio.run(applier.apply(compiled.text, ipt.jump_rules()))
    inside = saved(netns)
    assert "--to-destination 10.244.1.5:8080" in inside
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in inside
    asyncio.run(applier.apply(compiled.text, ipt.jump_rules()))  # again: no second copy of a hook
    assert saved(netns).count("-j KUBE-SERVICES") == inside.count("-j KUBE-SERVICES")
    asyncio.run(applier.cleanup(ipt.jump_rules()))
    assert "KUBE-" not in saved(netns)


def test_a_missing_namespace_is_an_error_not_the_host(netns: str) -> None:
    applier = IptablesApplier(f"{netns}-missing")
    with pytest.raises(OSError, match="iptables-restore"):
        asyncio.run(applier.apply(ipt.compile_rules(SNAPSHOT, NODE).text, ipt.jump_rules()))
