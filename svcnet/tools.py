"""Where the system tools svcnet drives (ip, iptables, nft, nsenter, …) are: on PATH, or in the sbin directories
that a non-login PATH often lacks. A missing tool is an OSError naming the Debian package to install."""

from __future__ import annotations

import os
import shutil

_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
_PACKAGES = {"ip": "iproute2", "iptables": "iptables", "iptables-save": "iptables", "iptables-restore": "iptables",
             "nft": "nftables", "conntrack": "conntrack", "nsenter": "util-linux", "unshare": "util-linux"}


def which(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":" + _SBIN)
    if found is None:
        raise OSError(f"{name} not found: install the Debian package {_PACKAGES.get(name, name)}")
    return found
