"""The ipvs mode's entry check: whether this kernel has IPVS, and the fallback the seeds describe.

kube-proxy once fell back from ipvs to iptables mode when the kernel lacked IPVS (upstream dropped the fallback
in 2022 and deprecates ipvs mode in 1.35). svcnet falls back, saying so clearly, unless `--ipvs-strict` asks
for a failure instead. Programming IPVS itself (virtual servers over netlink) is not built yet: with IPVS present
the proxy also runs the iptables rules and says that it does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from svcnet.tools import which


def kernel_has_ipvs(netns: str = "") -> bool:
    if Path("/proc/net/ip_vs").exists():
        return True
    try:
        loaded = subprocess.run([which("modprobe"), "ip_vs"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    return loaded and Path("/proc/net/ip_vs").exists()


def resolve_mode(strict: bool, has_ipvs: bool) -> tuple[str, str]:
    """(the mode to run, what to tell the user) for `--mode ipvs`; raises ValueError when strict and missing."""
    if not has_ipvs:
        if strict:
            raise ValueError("ipvs mode: this kernel has no IPVS (no /proc/net/ip_vs, `modprobe ip_vs` failed) "
                             "and --ipvs-strict forbids falling back")
        return "iptables", ("ipvs mode: this kernel has no IPVS (no /proc/net/ip_vs, `modprobe ip_vs` failed); "
                            "falling back to iptables mode, as kube-proxy did before 1.26 (--ipvs-strict fails "
                            "instead)")
    return "iptables", ("ipvs mode: the kernel has IPVS, but svcnet does not program IPVS virtual servers yet; "
                        "running the iptables rules instead")
