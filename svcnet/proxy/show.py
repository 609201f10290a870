"""Listing the proxy's virtual servers: `ipvsadm -Ln` text for people, plain dicts for `--output json`.

`format_table` reproduces ipvsadm's numeric listing (ipvsadm.c: list_all, print_title, print_service_entry)
column for column, so that habits and scripts built around ``ipvsadm -Ln`` keep working:

    IP Virtual Server version 1.2.1 (size=4096)
    Prot LocalAddress:Port Scheduler Flags
      -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
    TCP  10.97.97.97:80 rr persistent 10800
      -> 10.244.1.39:80               Masq    1      0          0

Invariants:
- Pure: data in, text out; no I/O, no clock.
- Service lines are ``"%s  %s" % (protocol, addr:port)`` then ``" %s" % scheduler`` and, with ClientIP
  affinity, ``" persistent %u"``. Backend lines are ``"  -> %-28s %-7s %-6d %-10u %-10u"`` exactly as
  ipvsadm prints them, trailing padding of the last column included. IPv6 addresses are bracketed.
- Every real server is shown with the ``Masq`` forwarding method: svcnet always rewrites the destination
  (as kube-proxy's ipvs mode does).
- Order: IPv4 before IPv6, then protocol number (TCP 6, UDP 17, SCTP 132), then address, then port; backends
  by address then port. Addresses compare numerically (ipvsadm compares them with a wrapping int
  subtraction, which misorders addresses more than 2^31 apart; this listing does not copy that).
- `to_json` lists the same servers, in the same order, with every field of the data.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from svcnet.proxy.backends import Backend, VirtualServer

__all__ = ["IPVS_VERSION_LINE", "format_table", "to_json"]

IPVS_VERSION_LINE = "IP Virtual Server version 1.2.1 (size=4096)"
_TITLE = ("Prot LocalAddress:Port Scheduler Flags\n"
          "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
_FORWARD = "Masq"
_PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132}


def format_table(servers: Sequence[VirtualServer]) -> str:
    """The `ipvsadm -Ln` listing of `servers`, newline-terminated."""
    lines = [IPVS_VERSION_LINE, _TITLE]
    for server in _sorted_servers(servers):
        lines.append(_service_line(server))
        lines.extend(_backend_line(backend) for backend in _sorted_backends(server.backends))
    return "\n".join(lines) + "\n"


def to_json(servers: Sequence[VirtualServer]) -> list[dict[str, Any]]:
    """The servers as plain JSON-ready dicts, in `format_table`'s order."""
    return [
        {
            "protocol": server.protocol,
            "ip": server.ip,
            "port": server.port,
            "scheduler": server.scheduler,
            "persistent": server.persistent,
            "service": server.service,
            "backends": [_backend_json(backend) for backend in _sorted_backends(server.backends)],
        }
        for server in _sorted_servers(servers)
    ]


def from_json(listed: Sequence[dict[str, Any]]) -> list[VirtualServer]:
    """`to_json`'s output back into servers (for `svcnet proxy show`, which reads a running proxy's table)."""
    return [VirtualServer(s["protocol"], s["ip"], s["port"], s["scheduler"], s.get("persistent"),
                          tuple(Backend(b["ip"], b["port"], b["weight"], b["activeConn"], b["inActConn"],
                                        b.get("nodeName", ""), b.get("ready", True), b.get("serving", True),
                                        b.get("terminating", False)) for b in s["backends"]), s.get("service", ""))
            for s in listed]


def _backend_json(backend: Backend) -> dict[str, Any]:
    return {
        "ip": backend.ip,
        "port": backend.port,
        "forward": _FORWARD,
        "weight": backend.weight,
        "activeConn": backend.active,
        "inActConn": backend.inactive,
        "nodeName": backend.node_name,
        "ready": backend.ready,
        "serving": backend.serving,
        "terminating": backend.terminating,
    }


def _service_line(server: VirtualServer) -> str:
    line = f"{server.protocol}  {_hostport(server.ip, server.port)} {server.scheduler}"
    if server.persistent is not None:
        line += f" persistent {server.persistent}"
    return line


def _backend_line(backend: Backend) -> str:
    name = _hostport(backend.ip, backend.port)
    return f"  -> {name:<28} {_FORWARD:<7} {backend.weight:<6d} {backend.active:<10d} {backend.inactive:<10d}"


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def _sorted_servers(servers: Sequence[VirtualServer]) -> list[VirtualServer]:
    def key(server: VirtualServer) -> tuple[int, int, int, int]:
        address = ipaddress.ip_address(server.ip)
        return address.version, _PROTOCOL_NUMBERS.get(server.protocol, 256), int(address), server.port

    return sorted(servers, key=key)


def _sorted_backends(backends: Sequence[Backend]) -> list[Backend]:
    def key(backend: Backend) -> tuple[int, int, int]:
        address = ipaddress.ip_address(backend.ip)
        return address.version, int(address), backend.port

    return sorted(backends, key=key)
