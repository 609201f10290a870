"""What the schedulers and the status views see of a virtual server's backends — shared plain data.

A `Backend` is one real server (endpoint address and port) with its weight and its live connection counts,
kept by the data path (userspace relay) or read from the kernel (ipvs). Counts follow IPVS: `active` are
established connections, `inactive` are ones closing or, for UDP, recent flows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backend:
    ip: str
    port: int
    weight: int = 1
    active: int = 0
    inactive: int = 0
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return self.ip, self.port


@dataclass(frozen=True)
class VirtualServer:
    """One service address (ClusterIP, node address for a NodePort, external or LB IP) and port, as listed."""
    protocol: str  # TCP | UDP | SCTP
    ip: str
    port: int
    scheduler: str
    persistent: int | None  # ClientIP affinity timeout in seconds, None without affinity
    backends: tuple[Backend, ...]
    service: str = ""  # namespace/name:portname, for comments and metrics
