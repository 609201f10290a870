"""`ipvsadm -Ln` listing: golden text (column widths from ipvsadm.c's print_title / print_service_entry),
ordering, and the JSON form."""

from __future__ import annotations

import json

import pytest

from svcnet.proxy.backends import Backend, VirtualServer
from svcnet.proxy.show import format_table, to_json

HEADER = [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
]


def vs(protocol: str, ip: str, port: int, *backends: Backend, scheduler: str = "rr",
       persistent: int | None = None) -> VirtualServer:
    return VirtualServer(protocol, ip, port, scheduler, persistent, tuple(backends), service="default/web:http")


def golden(*lines: str) -> str:
    # Written line by line so the trailing padding ipvsadm prints ("%-10u\n") stays visible.
    return "\n".join([*HEADER, *lines]) + "\n"


CASES = [
    pytest.param([], golden(), id="empty"),
    pytest.param(
        [vs("TCP", "10.97.97.97", 80, Backend("10.244.1.39", 80), persistent=10800)],
        golden(
            "TCP  10.97.97.97:80 rr persistent 10800",
            "  -> 10.244.1.39:80               Masq    1      0          0         ",
        ),
        id="kube-example-with-affinity",
    ),
    pytest.param(
        [vs("UDP", "10.96.0.10", 53, Backend("10.244.0.5", 53, weight=1, active=0, inactive=12),
            Backend("10.244.0.4", 53, weight=1, active=0, inactive=7))],
        golden(
            "UDP  10.96.0.10:53 rr",
            "  -> 10.244.0.4:53                Masq    1      0          7         ",
            "  -> 10.244.0.5:53                Masq    1      0          12        ",
        ),
        id="no-affinity-backends-sorted",
    ),
    pytest.param(
        [vs("TCP", "192.168.49.2", 30080, Backend("10.244.1.39", 8080, weight=100, active=1234567, inactive=0),
            scheduler="lc")],
        golden(
            "TCP  192.168.49.2:30080 lc",
            "  -> 10.244.1.39:8080             Masq    100    1234567    0         ",
        ),
        id="wide-numbers",
    ),
    pytest.param(
        [vs("TCP", "fd00:10:96::1", 443, Backend("fd00:10:244:1::7", 6443, weight=0), scheduler="sh")],
        golden(
            "TCP  [fd00:10:96::1]:443 sh",
            "  -> [fd00:10:244:1::7]:6443      Masq    0      0          0         ",
        ),
        id="ipv6-bracketed",
    ),
    pytest.param(
        [vs("TCP", "255.255.255.255", 65535,
            Backend("255.255.255.255", 65535, weight=65535, active=4294967295, inactive=4294967295))],
        golden(
            "TCP  255.255.255.255:65535 rr",
            "  -> 255.255.255.255:65535        Masq    65535  4294967295 4294967295",
        ),
        id="widest-ipv4-fills-columns",
    ),
    pytest.param(
        [vs("SCTP", "10.96.5.5", 3868, Backend("10.244.2.2", 3868), persistent=60)],
        golden(
            "SCTP  10.96.5.5:3868 rr persistent 60",
            "  -> 10.244.2.2:3868              Masq    1      0          0         ",
        ),
        id="sctp",
    ),
]


@pytest.mark.parametrize(("servers", "expected"), CASES)
def test_format_table_golden(servers: list[VirtualServer], expected: str) -> None:
    assert format_table(servers) == expected


def test_columns_line_up_with_the_title() -> None:
    table = format_table([vs("TCP", "10.0.0.1", 80, Backend("10.1.2.3", 8080, weight=3, active=4, inactive=5))])
    title, row = table.splitlines()[2], table.splitlines()[4]
    for column, value in [("Forward", "Masq"), ("Weight", "3"), ("ActiveConn", "4"), ("InActConn", "5")]:
        assert row.index(value, 30) == title.index(column), column


def test_servers_sorted_by_family_protocol_address_port() -> None:
    servers = [
        vs("UDP", "10.96.0.10", 53),
        vs("TCP", "fd00::1", 80),
        vs("TCP", "192.168.0.1", 80),
        vs("TCP", "10.96.0.10", 9153),
        vs("TCP", "10.96.0.10", 53),
        vs("TCP", "10.96.0.9", 80),
        vs("SCTP", "10.0.0.1", 1),
    ]
    service_lines = [line for line in format_table(servers).splitlines()[3:] if not line.startswith("  ->")]
    assert service_lines == [
        "TCP  10.96.0.9:80 rr",  # numeric, not textual, address order: .9 before .10
        "TCP  10.96.0.10:53 rr",
        "TCP  10.96.0.10:9153 rr",
        "TCP  192.168.0.1:80 rr",
        "UDP  10.96.0.10:53 rr",
        "SCTP  10.0.0.1:1 rr",
        "TCP  [fd00::1]:80 rr",
    ]


def test_backends_sorted_by_address_then_port() -> None:
    server = vs("TCP", "10.0.0.1", 80, Backend("10.0.0.10", 80), Backend("10.0.0.9", 81), Backend("10.0.0.9", 80))
    rows = [line.split()[1] for line in format_table([server]).splitlines()[4:]]
    assert rows == ["10.0.0.9:80", "10.0.0.9:81", "10.0.0.10:80"]


def test_to_json_same_order_and_fields() -> None:
    servers = [
        vs("UDP", "10.96.0.10", 53, Backend("10.244.0.5", 53, inactive=2)),
        vs("TCP", "10.96.0.1", 443, Backend("192.168.49.2", 8443, active=3, node_name="n1"), persistent=10800),
    ]
    out = to_json(servers)
    json.dumps(out)  # JSON-ready
    assert out == [
        {
            "protocol": "TCP", "ip": "10.96.0.1", "port": 443, "scheduler": "rr", "persistent": 10800,
            "service": "default/web:http",
            "backends": [{"ip": "192.168.49.2", "port": 8443, "forward": "Masq", "weight": 1, "activeConn": 3,
                          "inActConn": 0, "nodeName": "n1", "ready": True, "serving": True, "terminating": False}],
        },
        {
            "protocol": "UDP", "ip": "10.96.0.10", "port": 53, "scheduler": "rr", "persistent": None,
            "service": "default/web:http",
            "backends": [{"ip": "10.244.0.5", "port": 53, "forward": "Masq", "weight": 1, "activeConn": 0,
                          "inActConn": 2, "nodeName": "", "ready": True, "serving": True, "terminating": False}],
        },
    ]
