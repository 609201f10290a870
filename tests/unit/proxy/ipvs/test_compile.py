"""The ipvs compiler: golden files of the whole desired state (virtual servers, kube-ipvs0 addresses, ipset
members, iptables rules) for the seeds' shapes of service, and a table of the virtual servers it wants.

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/ipvs`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from svcnet.proxy import model
from svcnet.proxy.ipvs import compile as ipvs_compile
from svcnet.proxy.ipvs.compile import NodeConfig, RealServer, ServiceKey, compile_state

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SVCNET_UPDATE_GOLDEN") == "1"
NODE = NodeConfig("node-a", ("192.168.1.10", "127.0.0.1"), "10.244.0.0/16")
WEB = model.ServicePortName("default", "web", "http", "TCP")
DNS = model.ServicePortName("kube-system", "dns", "dns", "UDP")


def info(name: model.ServicePortName = WEB, ip: str = "10.96.0.10", port: int = 80, **kw: object
         ) -> model.ServicePortInfo:
    return model.ServicePortInfo(name, (ip,), port, name.protocol, **kw)  # type: ignore[arg-type]


def ep(ip: str, node: str = "node-a", port: int = 8080, **kw: object) -> model.EndpointInfo:
    return model.EndpointInfo(ip, port, node, **kw)  # type: ignore[arg-type]


THREE = (ep("10.244.1.5"), ep("10.244.2.6", "node-b"), ep("10.244.1.7"))


def snap(*pairs: tuple[model.ServicePortInfo, tuple[model.EndpointInfo, ...]]) -> model.Snapshot:
    return model.Snapshot({i.name: i for i, _ in pairs}, {i.name: e for i, e in pairs if e})


def render(desired: ipvs_compile.Desired) -> str:
    lines = ["# ipvsadm"]
    for vs in desired.services.values():
        lines.append(f"{vs.key} {vs.scheduler}" + (f" persistent {vs.persistent}" if vs.persistent else "")
                     + f"  # {vs.service}")
        lines += [f"  -> {d.address}:{d.port} weight {d.weight}" for d in vs.dests]
    lines.append(f"# {ipvs_compile.DUMMY_DEVICE}")
    lines += sorted(desired.addresses)
    lines.append("# ipset restore")
    lines += desired.ipset_lines()
    lines.append("# iptables-restore --noflush")
    return "\n".join(lines) + "\n" + desired.rules


CASES = {
    "cluster_ip_three_endpoints": lambda: compile_state(snap((info(), THREE)), NODE),
    "client_ip_affinity": lambda: compile_state(snap((info(affinity_timeout=10800), THREE)), NODE),
    "node_port_udp_and_external": lambda: compile_state(snap(
        (info(node_port=30080, external_ips=("203.0.113.7",), load_balancer_ips=("198.51.100.9",)), THREE),
        (info(DNS, "10.96.0.53", 53, node_port=30053), (ep("10.244.1.53", port=53),))), NODE),
    "external_local": lambda: compile_state(snap(
        (info(node_port=30080, external_local=True, health_check_node_port=32000,
              load_balancer_ips=("198.51.100.9",)), THREE)), NODE),
    "no_endpoints_and_wlc": lambda: compile_state(snap((info(), ())), replace(NODE, scheduler="wlc")),
    "empty": lambda: compile_state(snap(), NODE),
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path} missing: run with SVCNET_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name}: compiled state differs from {path} (SVCNET_UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in CASES])
def test_golden(name: str) -> None:
    check_golden(name, render(CASES[name]()))


def _dests(*ips: str) -> tuple[RealServer, ...]:
    return tuple(RealServer(ip, 8080) for ip in ips)


# (case, snapshot, virtual server, expected real servers, expected persistence)
TABLE = [
    pytest.param(snap((info(), THREE)), ServiceKey("TCP", "10.96.0.10", 80),
                 _dests("10.244.1.5", "10.244.1.7", "10.244.2.6"), None, id="cluster_ip_all_endpoints_sorted"),
    pytest.param(snap((info(affinity_timeout=60), THREE)), ServiceKey("TCP", "10.96.0.10", 80),
                 _dests("10.244.1.5", "10.244.1.7", "10.244.2.6"), 60, id="affinity_is_persistence"),
    pytest.param(snap((info(internal_local=True), THREE)), ServiceKey("TCP", "10.96.0.10", 80),
                 _dests("10.244.1.5", "10.244.1.7"), None, id="internal_local_keeps_this_nodes"),
    pytest.param(snap((info(node_port=30080, external_local=True), THREE)), ServiceKey("TCP", "192.168.1.10", 30080),
                 _dests("10.244.1.5", "10.244.1.7"), None, id="node_port_external_local"),
    pytest.param(snap((info(node_port=30080, external_local=True), THREE)), ServiceKey("TCP", "10.96.0.10", 80),
                 _dests("10.244.1.5", "10.244.1.7", "10.244.2.6"), None, id="cluster_ip_ignores_external_policy"),
    pytest.param(snap((info(), (ep("10.244.1.5", ready=False, serving=True, terminating=True), ep("10.244.1.6")))),
                 ServiceKey("TCP", "10.96.0.10", 80), _dests("10.244.1.6"), None, id="ready_only_when_some_ready"),
    pytest.param(snap((info(), (ep("10.244.1.5", ready=False, serving=True, terminating=True),))),
                 ServiceKey("TCP", "10.96.0.10", 80), _dests("10.244.1.5"), None, id="terminating_when_none_ready"),
    pytest.param(snap((info(), (ep("fd00::5"), ep("10.244.1.5")))), ServiceKey("TCP", "10.96.0.10", 80),
                 _dests("10.244.1.5"), None, id="ipv6_endpoints_ignored"),
]


@pytest.mark.parametrize(("snapshot", "key", "dests", "persistent"), TABLE)
def test_virtual_servers(snapshot: model.Snapshot, key: ServiceKey, dests: tuple[RealServer, ...],
                         persistent: int | None) -> None:
    vs = compile_state(snapshot, NODE).services[key]
    assert (vs.dests, vs.persistent, vs.scheduler) == (dests, persistent, "rr")


def test_node_ports_skip_loopback_and_node_ips_are_not_bound() -> None:
    desired = compile_state(snap((info(node_port=30080), THREE)), NODE)
    assert set(desired.services) == {ServiceKey("TCP", "10.96.0.10", 80), ServiceKey("TCP", "192.168.1.10", 30080)}
    assert desired.addresses == {"10.96.0.10"} and desired.ipsets["KUBE-IPVS-IPS"] == {"10.96.0.10"}


def test_unknown_scheduler_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown scheduler 'random'"):
        NodeConfig("n", scheduler="random")


def test_pure_and_deterministic() -> None:
    a, b = (compile_state(snap((info(affinity_timeout=5), tuple(reversed(THREE)))), NODE) for _ in range(2))
    assert a == b and a.rules == b.rules
