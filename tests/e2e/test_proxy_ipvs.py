"""`svcnet proxy --mode ipvs` on a kernel without IPVS (as on these machines): it says so and falls back to the
iptables mode, or fails with --ipvs-strict. Rules go only into a network namespace this test creates."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SVCNET, Server, killpg, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or Path("/proc/net/ip_vs").exists(),
                                reason="needs root and a kernel WITHOUT IPVS (the fallback path)")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"svcnet-e2e-ipvs-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _proxy(server: Server, netns: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(SVCNET), "proxy", "--mode", "ipvs", "--netns", netns, "--hostname-override",
                                 "n1", "--metrics-bind-address", "127.0.0.1:0", "--healthz-bind-address",
                                 "127.0.0.1:0", *extra], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "KUBECONFIG": str(server.kubeconfig)}, start_new_session=True)


def test_strict_fails_with_a_clear_message(server: Server, netns: str, tmp_path: Path) -> None:
    proc = _proxy(server, netns, tmp_path / "log", "--ipvs-strict")
    assert proc.wait(30) == 1
    err = (tmp_path / "log").read_text()
    assert "no IPVS" in err and "--ipvs-strict" in err, err


def test_falls_back_to_iptables_and_says_so(server: Server, netns: str, tmp_path: Path) -> None:
    proc = _proxy(server, netns, tmp_path / "log")
    try:
        def rules() -> str:
            return subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"], capture_output=True,
                                  text=True).stdout
        wait_for(lambda: "KUBE-SERVICES" in rules() and "default/kubernetes:https" in rules(), 20,
                 "the iptables rules in the namespace")
    finally:
        killpg(proc)
    assert "falling back to iptables mode" in (tmp_path / "log").read_text()
    assert "KUBE-SERVICES" not in subprocess.run(["ip", "netns", "exec", netns, "iptables-save"], capture_output=True,
                                                 text=True).stdout, "the rules go when the proxy stops"
