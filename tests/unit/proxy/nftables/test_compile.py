"""The nftables compiler: golden `nft -f` text for kube-proxy's nftables design in `table ip svcnet`, kube's
chain-name hashes, in-place rewrites that keep affinity sets, and `nft` accepting and loading the text --
the kernel tests only inside a throwaway network namespace (root only), never in the root namespace.

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/nftables`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables.compile import NodeInfo
from svcnet.proxy.nftables import compile as nft
from svcnet.proxy.nftables.proxier import NftablesProxier

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SVCNET_UPDATE_GOLDEN") == "1"
NODE = NodeInfo("node-a", addresses=("192.168.1.10",), cluster_cidr="10.244.0.0/16")
WEB = model.ServicePortName("default", "web", "http", "TCP")
API = model.ServicePortName("default", "api", "", "TCP")


def info(name: model.ServicePortName = WEB, cluster_ip: str = "10.96.0.10", port: int = 80,
         **fields: object) -> model.ServicePortInfo:
    return replace(model.ServicePortInfo(name, (cluster_ip,), port, name.protocol), **fields)  # type: ignore[arg-type]


def ep(ip: str, node: str = "node-a", port: int = 8080, ready: bool = True) -> model.EndpointInfo:
    return model.EndpointInfo(ip, port, node, ready=ready, serving=ready)


def snap(*services: tuple[model.ServicePortInfo, tuple[model.EndpointInfo, ...]]) -> model.Snapshot:
    return model.Snapshot({i.name: i for i, _ in services}, {i.name: eps for i, eps in services if eps})


THREE = (ep("10.244.2.7", "node-b"), ep("10.244.1.10"), ep("10.244.1.5"))
WEB_3 = (info(), THREE)
API_2 = (info(API, "10.96.0.20", 443), (ep("10.244.1.20", port=8443), ep("10.244.2.21", "node-b", 8443)))

SNAPSHOTS: dict[str, model.Snapshot] = {
    "cluster_ip_three_endpoints": snap(WEB_3),
    "client_ip_affinity": snap((info(affinity_timeout=10800), THREE[:2])),
    "node_port": snap((info(node_port=30080), THREE[:2])),
    "no_endpoints": snap((info(node_port=30080, external_ips=("203.0.113.7",)), ())),
    "local_policy": snap((info(node_port=30081, external_local=True), THREE),
                         (info(API, "10.96.0.20", 443, internal_local=True), (ep("10.244.2.21", "node-b", 8443),))),
}


def _deletion() -> str:
    previous = nft.build_table(snap(WEB_3, API_2), NODE)
    return nft.compile_ruleset(snap(WEB_3), NODE, previous)


def _compiler(snapshot: model.Snapshot) -> Callable[[], str]:
    return lambda: nft.compile_ruleset(snapshot, NODE)


CASES: dict[str, Callable[[], str]] = {
    **{name: _compiler(snapshot) for name, snapshot in SNAPSHOTS.items()},
    "deletion": _deletion,
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.nft"
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path} missing: run with SVCNET_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name}: compiled text differs from {path} (SVCNET_UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in CASES])
def test_golden(name: str) -> None:
    check_golden(name, CASES[name]())


# --- names and shapes as kube-proxy --------------------------------------------------------------------

@pytest.mark.parametrize(("got", "want"), [
    pytest.param(lambda: nft.service_name_base(model.ServicePortName("ns1", "svc1", "p80", "TCP")),
                 "ULMVA6XW-ns1/svc1/tcp/p80", id="service"),
    pytest.param(lambda: nft.endpoint_name_base(model.ServicePortName("ns1", "svc1", "p80", "TCP"),
                                                model.EndpointInfo("10.180.0.1", 80)),
                 "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", id="endpoint"),
    pytest.param(lambda: str(len(nft.hash_and_truncate("x" * 300))), str(nft.NAME_BASE_MAX), id="truncated"),
])
def test_kube_names(got: Callable[[], str], want: str) -> None:
    assert got() == want  # values from kubernetes pkg/proxy/nftables (proxier.go comments, proxier_test.go)


def test_the_hash_is_base32_of_sha256() -> None:
    for name in (f"ns{i}/svc-{i}/{proto}/p{i}" for i in range(200) for proto in ("tcp", "udp")):
        want = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]
        assert nft.hash_and_truncate(name) == f"{want}-{name}"


def test_one_table_of_our_own() -> None:
    text = CASES["cluster_ip_three_endpoints"]()
    assert text.startswith("add table ip svcnet\ndelete table ip svcnet\ntable ip svcnet {\n")
    assert "kube-proxy" not in text and text.count("\ntable ") == 1


def _picks(text: str, chain: str) -> list[tuple[str, str]]:
    """(modulus or "" for the unconditional last pick, ip:port) of each random pick in `chain`."""
    body = text.split(f"\tchain {chain} {{\n")[1].split("\n\t}")[0]
    return re.findall(r"^\t\t(?:numgen random mod (\d+) == 0 )?meta l4proto \w+ (?:update .*\} )?dnat to (\S+)$",
                      body, re.M)


def test_dispatch_is_one_map_lookup_and_one_random_pick_per_endpoint() -> None:
    text = CASES["cluster_ip_three_endpoints"]()
    svc = nft.SERVICE + nft.service_name_base(WEB)
    assert f"elements = {{ 10.96.0.10 . tcp . 80 : goto {svc} }}" in text
    assert "ip daddr . meta l4proto . th dport vmap @service-ips" in text
    assert _picks(text, svc) == [("3", "10.244.1.5:8080"), ("2", "10.244.1.10:8080"), ("", "10.244.2.7:8080")]
    assert "chain endpoint-" not in text and " vmap {" not in text  # no per-endpoint chains, no anonymous maps


@pytest.mark.parametrize("endpoints", [1, 2, 3, 5, 17])
def test_every_endpoint_is_picked_with_the_same_probability(endpoints: int) -> None:
    eps = tuple(ep(f"10.244.3.{i}") for i in range(1, endpoints + 1))
    picks = _picks(nft.compile_ruleset(snap((info(), eps)), NODE), nft.SERVICE + nft.service_name_base(WEB))
    reached, chances = Fraction(1), []
    for modulus, _ in picks:
        taken = Fraction(1, int(modulus)) if modulus else Fraction(1)
        chances.append(reached * taken)
        reached -= reached * taken
    assert chances == [Fraction(1, endpoints)] * endpoints and reached == 0


@pytest.mark.parametrize(("node", "service", "present", "absent"), [
    pytest.param(NODE, WEB_3, ["ip saddr != 10.244.0.0/16 mark set mark or 0x004000"], [],
                 id="off-cluster-masquerade"),
    pytest.param(replace(NODE, masquerade_all=True), WEB_3, ["tcp dport 80 mark set mark or 0x004000"],
                 ["saddr != "], id="masquerade-all"),
    pytest.param(replace(NODE, cluster_cidr=""), WEB_3, [], ["tcp dport 80 mark set", "saddr != "],
                 id="no-local-detector"),
    pytest.param(NODE, (info(internal_local=True), (ep("10.244.2.7", "node-b"),)),
                 ['10.96.0.10 . tcp . 80 comment "default/web:http" : drop'], ["local-", "service-S"],
                 id="internal-local-without-local-endpoints"),
    pytest.param(NODE, (info(internal_local=True), THREE), ["10.96.0.10 . tcp . 80 : goto local-",
                                                            "numgen random mod 2"], ["chain service-"],
                 id="internal-local"),
    pytest.param(NODE, (info(node_port=30081, external_local=True), (ep("10.244.2.7", "node-b"),)),
                 ['tcp . 30081 comment "default/web:http" : drop', "short-circuit local traffic",
                  "tcp . 30081 : goto external-"], ["chain local-"], id="external-local-without-local-endpoints"),
    pytest.param(NODE, (info(node_port=30080), THREE), ["tcp . 30080 : goto external-",
                                                        "fib daddr type local ip daddr != 127.0.0.0/8"], [],
                 id="node-port-on-local-addresses"),
    pytest.param(replace(NODE, node_port_addresses=("192.168.1.0/24",)), (info(node_port=30080), THREE),
                 ["set nodeport-ips", "elements = { 192.168.1.10 }", "ip daddr @nodeport-ips meta l4proto"],
                 ["fib daddr"], id="node-port-addresses"),
    pytest.param(replace(NODE, random_fully=True), WEB_3, ["masquerade fully-random"], [], id="random-fully"),
    pytest.param(NODE, (info(), (ep("fd00::1"), ep("10.244.1.5"))), ["dnat to 10.244.1.5:8080"], ["fd00"],
                 id="ipv6-endpoints-ignored"),
    pytest.param(NODE, (info(load_balancer_ips=("198.51.100.1",)), THREE),
                 ["198.51.100.1 . tcp . 80 : goto external-"], [], id="load-balancer-ip"),
    pytest.param(NODE, (info(model.ServicePortName("default", "dns", "dns", "UDP"), port=53), THREE),
                 ["10.96.0.10 . udp . 53 : goto service-", "meta l4proto udp dnat to 10.244.1.5:8080"], [],
                 id="udp"),
    pytest.param(NODE, (info(), (ep("10.244.1.5", ready=False),)), ['comment "default/web:http" : goto reject-chain'],
                 ["dnat to"], id="not-ready-endpoints-reject"),
])
def test_policies(node: NodeInfo, service: tuple[model.ServicePortInfo, tuple[model.EndpointInfo, ...]],
                  present: list[str], absent: list[str]) -> None:
    text = nft.compile_ruleset(snap(service), node)
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text


def test_affinity_uses_a_timed_set_of_sources_per_endpoint() -> None:
    text = CASES["client_ip_affinity"]()
    for endpoint in THREE[:2]:
        base = nft.endpoint_name_base(WEB, endpoint)
        assert f"set affinity-{base} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 10800s\n" in text
        remember = f"meta l4proto tcp update @affinity-{base} {{ ip saddr }} dnat to {endpoint.ip}:8080\n"
        assert f"\t\tip saddr @affinity-{base} {remember}" in text  # a known source goes where it went
        assert f"== 0 {remember}" in text or f"\t\t{remember}" in text  # a random pick records its source


def test_hairpin_traffic_is_masqueraded() -> None:
    """kube masquerades an endpoint's connection to its own service that lands on itself: `masquerading` marks
    a DNATed packet whose source and destination are one endpoint address, before it tests the mark. Only
    this node's endpoints can be such a source (10.244.2.7 is on node-b)."""
    text = CASES["cluster_ip_three_endpoints"]()
    assert "\t\telements = { 10.244.1.5 . 10.244.1.5,\n\t\t\t     10.244.1.10 . 10.244.1.10 }\n" in text
    assert ("\tchain masquerading {\n\t\tct status dnat ip saddr . ip daddr @hairpin-endpoints mark set mark or "
            "0x004000 comment \"hairpin\"\n\t\tmark and 0x004000 == 0 return\n") in text


def test_every_jump_lands_on_a_declared_chain() -> None:
    for text in (c() for c in CASES.values()):
        declared = set(re.findall(r"^\tchain (\S+) \{", text, re.M))
        assert set(re.findall(r"(?:goto|jump) ([^\s,}]+)", text)) <= declared


def test_output_does_not_depend_on_input_order() -> None:
    forward = snap(WEB_3, API_2)
    backward = model.Snapshot(dict(reversed(list(forward.services.items()))),
                              {k: tuple(reversed(v)) for k, v in forward.endpoints.items()})
    assert nft.compile_ruleset(forward, NODE) == nft.compile_ruleset(backward, NODE)


@pytest.mark.parametrize("ports", [0, 1, 63, 64, 65, 200])
def test_the_streamed_whole_table_is_the_rendered_one(ports: int) -> None:
    """WholeTable's pieces (a chunk every 64 service ports) join to `render(build_table())`, and it ends with the
    same table, whatever the count -- a port without IPv4 ClusterIP and a shared key among them."""
    services = [(info(model.ServicePortName("default", f"s{i}", "", "TCP"), f"10.96.{i // 250}.{i % 250 + 1}"),
                 THREE[: i % 4]) for i in range(ports)]
    if ports:
        services += [(info(model.ServicePortName("default", "v6", "", "TCP"), "fd00::1"), THREE),
                     (info(model.ServicePortName("default", "twin", "", "TCP"), "10.96.0.1"), THREE[:1])]
    snapshot = snap(*services)
    whole = nft.WholeTable(snapshot, NODE)
    pieces = list(whole)
    programmed = ports + (ports > 0)  # the twin, not the IPv6-only one
    assert len(pieces) == programmed // 64 + 1
    table = nft.build_table(snapshot, NODE)
    assert "".join(pieces) == nft.render(table) and whole.table == table


def test_duplicate_keys_keep_the_first_service_port() -> None:
    shared = ("203.0.113.7",)
    text = nft.compile_ruleset(snap((info(external_ips=shared), THREE), (info(API, "10.96.0.20", 80,
                                                                               external_ips=shared), THREE)), NODE)
    assert text.count("203.0.113.7 . tcp . 80") == 1


# --- in-place rewrites ---------------------------------------------------------------------------------

def test_an_in_place_rewrite_flushes_maps_but_not_affinity_sets() -> None:
    with_affinity = snap((info(affinity_timeout=10800), THREE))
    previous = nft.build_table(with_affinity, NODE)
    head = nft.compile_ruleset(with_affinity, NODE, previous).split("\ntable ip svcnet {")[0]
    assert head.startswith("add table ip svcnet\nflush table ip svcnet\n")
    assert "flush map ip svcnet service-ips" in head and "affinity-" not in head and "delete" not in head


def test_deleting_a_service_removes_every_element_with_its_cluster_ip() -> None:
    text = CASES["deletion"]()
    body = text.split("\ntable ip svcnet {")[1]
    assert "10.96.0.20" not in body and "default/api" not in body
    assert "flush set ip svcnet hairpin-endpoints\n" in text  # its endpoints' stale elements go too
    assert f"delete chain ip svcnet {nft.SERVICE}{nft.service_name_base(API)}\n" in text


def test_a_changed_affinity_timeout_recreates_the_set() -> None:
    previous = nft.build_table(snap((info(affinity_timeout=10800), THREE)), NODE)
    text = nft.compile_ruleset(snap((info(affinity_timeout=60), THREE)), NODE, previous)
    base = nft.endpoint_name_base(WEB, THREE[0])
    assert f"delete set ip svcnet affinity-{base}\n" in text and "timeout 60s" in text


# --- nft in a throwaway network namespace --------------------------------------------------------------

def _tools_missing() -> str:
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    missing = [t for t in ("ip", "nft") if not shutil.which(t)]
    return f"missing {', '.join(missing)}" if missing else ""


@pytest.fixture
def netns() -> Iterator[str]:
    reason = _tools_missing()
    if reason:
        pytest.skip(reason)
    name = f"svcnet-nft-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in(ns: str, *args: str, stdin: str | None = None) -> str:
    """Run a command inside the namespace only (`ip netns exec` fails rather than fall back to the host)."""
    done = subprocess.run(["ip", "netns", "exec", ns, *args], input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SNAPSHOTS])
def test_nft_check_accepts_the_text(netns: str, name: str) -> None:
    _in(netns, "nft", "-c", "-f", "-", stdin=CASES[name]())


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SNAPSHOTS])
def test_nft_loads_the_text(netns: str, name: str) -> None:
    _in(netns, "nft", "-f", "-", stdin=CASES[name]())
    listed = _in(netns, "nft", "list", "table", "ip", "svcnet")
    assert set(re.findall(r"^\tchain (\S+) \{", listed, re.M)) == set(nft.build_table(SNAPSHOTS[name], NODE).chains)


def test_rewrites_keep_learnt_affinity_and_drop_deleted_services(netns: str) -> None:
    first = snap((info(affinity_timeout=10800), THREE), API_2)
    table = nft.build_table(first, NODE)
    _in(netns, "nft", "-f", "-", stdin=nft.render(table))
    learnt = f"affinity-{nft.endpoint_name_base(WEB, THREE[0])}"
    _in(netns, "nft", "add", "element", "ip", "svcnet", learnt, "{ 192.0.2.1 }")
    second = snap((info(affinity_timeout=10800), THREE))
    _in(netns, "nft", "-f", "-", stdin=nft.compile_ruleset(second, NODE, table))
    listed = _in(netns, "nft", "list", "table", "ip", "svcnet")
    assert "10.96.0.20" not in listed and "default/api" not in listed and "10.96.0.10" in listed
    assert re.search(rf"set {re.escape(learnt)} {{[^}}]*elements = {{ 192\.0\.2\.1 ", listed)
    # a rewrite against a stale idea of the kernel (the table deleted behind our back) still applies
    _in(netns, "nft", "delete", "table", "ip", "svcnet")
    _in(netns, "nft", "-f", "-", stdin=nft.compile_ruleset(second, NODE, table))


def test_the_proxier_syncs_and_closes(netns: str) -> None:
    async def scenario() -> tuple[str, str, str]:
        proxier = NftablesProxier("node-a", ("192.168.1.10",), "10.244.0.0/16", netns=netns)
        await proxier.sync(snap(WEB_3, API_2), full=True)
        first = _in(netns, "nft", "list", "ruleset")
        await proxier.sync(snap(WEB_3), full=False)
        second = _in(netns, "nft", "list", "ruleset")
        await proxier.close()
        return first, second, _in(netns, "nft", "list", "ruleset")

    first, second, closed = asyncio.run(scenario())
    assert "10.96.0.20" in first and "10.96.0.20" not in second and "10.96.0.10" in second
    assert "svcnet" not in closed


def test_traffic_to_a_cluster_ip_reaches_the_endpoint(netns: str) -> None:
    """A connection from the namespace to the ClusterIP is DNATed (nat-output) to a listening endpoint, and one
    to a service without endpoints goes to reject-chain (endpoints-check in filter-output)."""
    for command in (["link", "set", "lo", "up"], ["addr", "add", "10.244.1.5/32", "dev", "lo"],
                    ["route", "add", "10.96.0.0/12", "dev", "lo"]):  # no dummy/veth needed
        _in(netns, "ip", *command)
    no_endpoints = (info(API, "10.96.0.20", 443), ())
    _in(netns, "nft", "-f", "-", stdin=nft.compile_ruleset(snap((info(), (ep("10.244.1.5"),)), no_endpoints), NODE))
    server = ("import socket; s = socket.create_server(('10.244.1.5', 8080)); print('up', flush=True); "
              "c, _ = s.accept(); c.sendall(b'hello from the endpoint')")
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "python3", "-c", server], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        client = ("import socket; c = socket.create_connection(('10.96.0.10', 80), timeout=5); "
                  "print(c.recv(100).decode())")
        assert _in(netns, "python3", "-c", client).strip() == "hello from the endpoint"
        # the reject's ICMP error does not make it back over `lo` here, so count the packets reject-chain sees
        _in(netns, "nft", "insert", "rule", "ip", "svcnet", nft.REJECT_CHAIN, "counter")
        refused = ("import socket\ntry:\n    socket.create_connection(('10.96.0.20', 443), timeout=1)\n"
                   "except OSError as e:\n    print(type(e).__name__)")
        assert _in(netns, "python3", "-c", refused).strip() in ("ConnectionRefusedError", "TimeoutError")
        counted = _in(netns, "nft", "list", "chain", "ip", "svcnet", nft.REJECT_CHAIN)
        assert re.search(r"counter packets [1-9]", counted), counted
    finally:
        proc.kill()
        proc.wait()
