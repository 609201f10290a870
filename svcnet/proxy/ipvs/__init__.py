"""svcnet's ipvs proxy mode: `detect` decides whether it can run (else the iptables fallback), `compile` turns a
proxy Snapshot into the desired IPVS table, kube-ipvs0 addresses, ipsets and rules (pure, golden-tested),
`diff` plans the netlink operations from the kernel's state (pure), `sysctls` decides which of the kernel
settings the mode needs to write (pure), `apply` carries it all out and `proxier` ties them together.
Importing this package does not import pyroute2."""

from __future__ import annotations

from svcnet.proxy.ipvs.detect import SCHEDULERS, kernel_has_ipvs, resolve_mode

__all__ = ["SCHEDULERS", "kernel_has_ipvs", "resolve_mode"]
