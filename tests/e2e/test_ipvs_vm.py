"""The ipvs mode against a real IPVS kernel: `scripts/ipvs-vm.sh` boots Debian's kernel under qemu with this
machine's root filesystem shared read-only and runs `tests/vm/test_ipvs_kernel.py` inside (namespaces, HTTP
backends, rr alternation, persistence, draining, deletion, cleanup). Skipped, saying why, when not root or
when qemu or the kernel package is missing (this test installs nothing: run the script once by hand, or
`apt-get install qemu-system-x86 linux-image-amd64 ipvsadm ipset busybox`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ipvs-vm.sh"
VM_TIMEOUT = 240


def _vm_ready() -> str:
    """"" when the VM can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (qemu exports / over 9p; namespaces inside the VM)"
    if Path("/proc/net/ip_vs").exists():
        return ""  # the host kernel has IPVS: tests/vm runs directly, no VM needed
    check = subprocess.run([str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "SVCNET_VM_NO_INSTALL": "1"})
    return "" if check.returncode == 0 else check.stderr.strip() or check.stdout.strip()


@pytest.mark.e2e
def test_ipvs_mode_in_a_vm_with_an_ipvs_kernel() -> None:
    reason = _vm_ready()
    if reason:
        pytest.skip(f"no IPVS VM here: {reason}")
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no", "-q", "-rs",
                  "tests/vm/test_ipvs_kernel.py"]
    cmd = pytest_cmd if Path("/proc/net/ip_vs").exists() else [str(SCRIPT), "--", *pytest_cmd]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=VM_TIMEOUT + 60,
                         env={**os.environ, "SVCNET_VM_TIMEOUT": str(VM_TIMEOUT)})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "1 passed" in output and "skipped" not in output, output[-3000:]
