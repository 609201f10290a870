"""The ipvs mode's entry check: whether this kernel has IPVS, and what to run when it has not.

kube-proxy once fell back from ipvs to iptables mode when the kernel lacked IPVS (upstream dropped the fallback
in 2022 and deprecates ipvs mode in 1.35). svcnet falls back, saying so clearly, unless `--ipvs-strict` asks
for a failure instead; with IPVS present it runs the ipvs mode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from svcnet.tools import which

IPVS_PROC = Path("/proc/net/ip_vs")
# the schedulers kube-proxy documents for --ipvs-scheduler, each a kernel module ip_vs_<name>
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq")


def kernel_has_ipvs(netns: str = "") -> bool:
    """True when IPVS is loaded, or `modprobe ip_vs` loads it (IPVS state is per namespace, the module is not)."""
    if IPVS_PROC.exists():
        return True
    try:
        loaded = subprocess.run([which("modprobe"), "ip_vs"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    return loaded and IPVS_PROC.exists()


def resolve_mode(strict: bool, has_ipvs: bool) -> tuple[str, str]:
    """(the mode to run, what to tell the user) for `--mode ipvs`; raises ValueError when strict and missing."""
    if not has_ipvs:
        if strict:
            raise ValueError("ipvs mode: this kernel has no IPVS (no /proc/net/ip_vs, `modprobe ip_vs` failed) "
                             "and --ipvs-strict forbids falling back")
        return "iptables", ("ipvs mode: this kernel has no IPVS (no /proc/net/ip_vs, `modprobe ip_vs` failed); "
                            "falling back to iptables mode, as kube-proxy did before 1.26 (--ipvs-strict fails "
                            "instead)")
    return "ipvs", "ipvs mode: the kernel has IPVS; programming virtual servers over netlink"
