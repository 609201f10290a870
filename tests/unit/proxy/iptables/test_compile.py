"""The iptables compiler: golden rule text for kube-proxy's layout, the chain-name hashes, partial syncs, and
`iptables-restore` accepting the text inside a throwaway network namespace (root only).

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/iptables`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables import compile as ipt

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SVCNET_UPDATE_GOLDEN") == "1"
NODE = ipt.NodeInfo("node-a", addresses=("192.168.1.10",), cluster_cidr="10.244.0.0/16")
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


def _partial() -> str:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    moved = (info(), (ep("10.244.1.5"), ep("10.244.2.7", "node-b"), ep("10.244.3.9", "node-c")))
    return ipt.compile_rules(snap(moved, API_2), NODE, first.state, {WEB}).text


def _deletion() -> str:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    return ipt.compile_rules(snap(WEB_3), NODE, first.state, {API}).text


CASES: dict[str, Callable[[], str]] = {
    "cluster_ip_three_endpoints": lambda: ipt.compile_rules(snap(WEB_3), NODE).text,
    "client_ip_affinity": lambda: ipt.compile_rules(snap((info(affinity_timeout=10800), THREE[:2])), NODE).text,
    "node_port": lambda: ipt.compile_rules(snap((info(node_port=30080), THREE[:2])), NODE).text,
    "no_endpoints": lambda: ipt.compile_rules(
        snap((info(node_port=30080, external_ips=("203.0.113.7",)), ())), NODE).text,
    "external_traffic_policy_local": lambda: ipt.compile_rules(
        snap((info(node_port=30081, external_local=True, health_check_node_port=32000), THREE)), NODE).text,
    "partial_sync": _partial,
    "deletion": _deletion,
}
FULL_CASES = [name for name in CASES if name not in ("partial_sync", "deletion")]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path} missing: run with SVCNET_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name}: compiled text differs from {path} (SVCNET_UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in CASES])
def test_golden(name: str) -> None:
    check_golden(name, CASES[name]())


# --- names and numbers as kube-proxy -------------------------------------------------------------------

@pytest.mark.parametrize(("got", "want"), [
    pytest.param(lambda: ipt.service_chain_name(ipt.SVC, model.ServicePortName("ns1", "svc1", "p80", "TCP")),
                 "KUBE-SVC-XPGD46QRK7WJZT7O", id="svc"),
    pytest.param(lambda: ipt.endpoint_chain_name(model.ServicePortName("ns1", "svc1", "p80", "TCP"),
                                                 model.EndpointInfo("10.180.0.1", 80)),
                 "KUBE-SEP-SXIVWICOYRO3J4NJ", id="sep"),
    pytest.param(lambda: ipt.probability(3), "0.3333333333", id="third"),
    pytest.param(lambda: ipt.probability(2), "0.5000000000", id="half"),
])
def test_kube_values(got: Callable[[], str], want: str) -> None:
    assert got() == want  # values from kubernetes pkg/proxy/iptables/proxier_test.go


def test_kube_single_endpoint_nat_table() -> None:
    """kube's own expected nat text for ns1/svc1:p80 with one endpoint (proxier_test.go), line for line."""
    name = model.ServicePortName("ns1", "svc1", "p80", "TCP")
    node = ipt.NodeInfo("node1", cluster_cidr="10.0.0.0/24", localhost_node_ports=True)
    text = ipt.compile_rules(snap((info(name, "10.20.30.41", 80), (model.EndpointInfo("10.180.0.1", 80),))),
                             node).text
    nat = text.split("*nat\n")[1]
    assert '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp' \
           " -d 10.20.30.41 --dport 80 ! -s 10.0.0.0/24 -j KUBE-MARK-MASQ\n" in nat
    assert "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT" \
           " --to-destination 10.180.0.1:80\n" in nat
    assert nat.endswith('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be'
                        ' the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\nCOMMIT\n')


def test_endpoints_are_chosen_one_in_n_then_one_in_n_minus_one() -> None:
    text = CASES["cluster_ip_three_endpoints"]()
    svc = ipt.service_chain_name(ipt.SVC, WEB)
    picks = [line for line in text.splitlines() if line.startswith(f"-A {svc}") and "KUBE-SEP-" in line]
    assert [re.search(r"--probability (\S+)", p)[1] if "--probability" in p else None  # type: ignore[index]
            for p in picks] == ["0.3333333333", "0.5000000000", None]
    assert [re.search(r"-> (\S+)\"", p)[1] for p in picks] == [  # type: ignore[index]
        "10.244.1.5:8080", "10.244.1.10:8080", "10.244.2.7:8080"]


# --- policies and masquerade ---------------------------------------------------------------------------

@pytest.mark.parametrize(("node", "service", "present", "absent"), [
    pytest.param(NODE, WEB_3, ["! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"], [], id="off-cluster-masquerade"),
    pytest.param(replace(NODE, masquerade_all=True), WEB_3, ["--dport 80 -j KUBE-MARK-MASQ"], ["! -s"],
                 id="masquerade-all"),
    pytest.param(replace(NODE, cluster_cidr=""), WEB_3, [], ["--dport 80 ! -s", "--dport 80 -j KUBE-MARK-MASQ"],
                 id="no-local-detector"),
    pytest.param(NODE, (info(internal_local=True), (ep("10.244.2.7", "node-b"),)),
                 ['"default/web:http has no local endpoints" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j DROP'],
                 ["KUBE-SVL-"], id="internal-local-without-local-endpoints"),
    pytest.param(NODE, (info(internal_local=True), THREE), ["-j KUBE-SVL-"], ["KUBE-SVC-"],
                 id="internal-local"),
    pytest.param(NODE, (info(node_port=30081, external_local=True), (ep("10.244.2.7", "node-b"),)),
                 ['"default/web:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp'
                  " --dport 30081 -j DROP", "route LOCAL traffic"], ["KUBE-SVL-"],
                 id="external-local-without-local-endpoints"),
    pytest.param(replace(NODE, random_fully=True), WEB_3, ["-j MASQUERADE --random-fully"], [], id="random-fully"),
    pytest.param(replace(NODE, node_port_addresses=("192.168.1.0/24",)), WEB_3,
                 ["-d 192.168.1.10 -j KUBE-NODEPORTS"], ["--dst-type LOCAL"], id="node-port-addresses"),
    pytest.param(NODE, (info(), (ep("fd00::1"), ep("10.244.1.5"))), ["10.244.1.5:8080"], ["fd00::1"],
                 id="ipv6-endpoints-ignored"),
    pytest.param(NODE, (info(load_balancer_ips=("198.51.100.1",)), THREE),
                 ['"default/web:http loadbalancer IP" -m tcp -p tcp -d 198.51.100.1 --dport 80 -j KUBE-EXT-'], [],
                 id="load-balancer-ip"),
])
def test_policies(node: ipt.NodeInfo, service: tuple[model.ServicePortInfo, tuple[model.EndpointInfo, ...]],
                  present: list[str], absent: list[str]) -> None:
    text = ipt.compile_rules(snap(service), node).text
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text


def test_large_clusters_drop_the_endpoint_comments() -> None:
    eps = tuple(ep(f"10.244.{i // 250}.{i % 250 + 1}") for i in range(1001))
    text = ipt.compile_rules(snap((info(), eps)), NODE).text
    assert " -> " not in text and "--comment default/web:http" not in text
    assert '"default/web:http cluster IP"' in text


def test_every_jump_lands_on_a_declared_or_kept_chain() -> None:
    """kube's checkIPTablesRuleJumps, extended to the chains a partial sync keeps."""
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    for compiled in (first, ipt.compile_rules(snap(WEB_3, (API_2[0], API_2[1][:1])), NODE, first.state, {API})):
        for table in compiled.text.split("COMMIT\n")[:2]:
            declared = set(re.findall(r"^:(\S+)", table, re.M)) | (compiled.chains - set(ipt.NAT_CHAINS))
            jumped = set(re.findall(r"-j (KUBE-\S+)", table))
            assert jumped <= declared


def test_output_does_not_depend_on_input_order() -> None:
    forward = snap(WEB_3, API_2)
    backward = model.Snapshot(dict(reversed(list(forward.services.items()))),
                              {k: tuple(reversed(v)) for k, v in forward.endpoints.items()})
    assert ipt.compile_rules(forward, NODE).text == ipt.compile_rules(backward, NODE).text


def test_jump_rules_hook_the_top_chains() -> None:
    rules = ipt.jump_rules()
    assert ["-t", "nat", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals",
            "-j", "KUBE-SERVICES"] in rules
    hooks = {(r[1], r[2], r[-1]) for r in rules}
    assert {("nat", "OUTPUT", "KUBE-SERVICES"), ("nat", "POSTROUTING", "KUBE-POSTROUTING"),
            ("filter", "FORWARD", "KUBE-FORWARD"), ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES"),
            ("filter", "INPUT", "KUBE-NODEPORTS"), ("filter", "OUTPUT", "KUBE-SERVICES")} <= hooks


# --- partial sync --------------------------------------------------------------------------------------

def _declared(text: str) -> set[str]:
    return set(re.findall(r"^:(\S+)", text, re.M))


def test_partial_sync_leaves_unchanged_chains_out_entirely() -> None:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    second = ipt.compile_rules(snap(WEB_3, API_2), NODE, first.state, {WEB})
    api_chains = set(first.state.service_chains[API])
    assert not second.full_sync and second.rewritten == (WEB,)
    assert not api_chains & _declared(second.text)  # a `:CHAIN` line would flush it
    assert not any(line.startswith(tuple(f"-A {c}" for c in api_chains)) for line in second.text.splitlines())
    assert "-d 10.96.0.20 --dport 443 -j KUBE-SVC-" in second.text  # KUBE-SERVICES is always whole
    assert second.state.service_chains[API] == first.state.service_chains[API] and second.deleted == ()


def test_partial_sync_deletes_the_chains_of_removed_endpoints() -> None:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    gone = ipt.endpoint_chain_name(WEB, THREE[0])
    second = ipt.compile_rules(snap((info(), THREE[1:]), API_2), NODE, first.state, {WEB})
    assert second.deleted == (gone,) and f":{gone} - [0:0]" in second.text and f"-X {gone}" in second.text
    assert gone not in second.chains


@pytest.mark.parametrize(("after", "changed", "rewritten"), [
    pytest.param(snap(WEB_3, API_2), {WEB}, (API, WEB), id="new-service-written-though-not-flagged"),
    pytest.param(snap((info(), ()), API_2), set(), (API, WEB), id="shape-change-written-though-not-flagged"),
])
def test_partial_sync_writes_what_the_previous_sync_did_not(
        after: model.Snapshot, changed: set[model.ServicePortName], rewritten: tuple[object, ...]) -> None:
    first = ipt.compile_rules(snap(WEB_3), NODE)
    second = ipt.compile_rules(after, NODE, first.state, changed)
    assert set(second.rewritten) == set(rewritten)
    declared = _declared(second.text)
    assert set(re.findall(r"-j (KUBE-(?:SVC|EXT|SEP)-\S+)", second.text)) <= declared


def test_node_change_or_no_changed_set_forces_a_full_sync() -> None:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    assert ipt.compile_rules(snap(WEB_3, API_2), replace(NODE, cluster_cidr="10.0.0.0/8"), first.state,
                             set()).full_sync
    full = ipt.compile_rules(snap(WEB_3), NODE, first.state, None)
    assert full.full_sync and set(full.deleted) == set(first.state.service_chains[API])


def test_stray_chains_from_the_kernel_are_deleted() -> None:
    stale = ipt.CompiledState.from_existing(NODE, ["KUBE-SVC-AAAAAAAAAAAAAAAA", "KUBE-SERVICES", "DOCKER"])
    compiled = ipt.compile_rules(snap(WEB_3), NODE, stale)
    assert compiled.deleted == ("KUBE-SVC-AAAAAAAAAAAAAAAA",)


def test_deleting_a_service_removes_every_rule_with_its_cluster_ip() -> None:
    text = CASES["deletion"]()
    assert "10.96.0.20" not in text
    for chain in ipt.compile_rules(snap(WEB_3, API_2), NODE).state.service_chains[API]:
        assert f"-X {chain}" in text


# --- iptables-restore in a throwaway network namespace -------------------------------------------------

def _tools_missing() -> str:
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    missing = [t for t in ("ip", "iptables-restore", "iptables-save", "iptables") if not shutil.which(t)]
    return f"missing {', '.join(missing)}" if missing else ""


@pytest.fixture
def netns() -> Iterator[str]:
    reason = _tools_missing()
    if reason:
        pytest.skip(reason)
    name = f"svcnet-t-{secrets.token_hex(4)}"
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


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in FULL_CASES])
def test_iptables_restore_accepts_the_text(netns: str, name: str) -> None:
    _in(netns, "iptables-restore", "--test", stdin=CASES[name]())


def test_partial_syncs_and_deletion_in_a_kernel(netns: str) -> None:
    first = ipt.compile_rules(snap(WEB_3, API_2), NODE)
    _in(netns, "iptables-restore", "--noflush", stdin=first.text)
    for rule in ipt.jump_rules():
        _in(netns, "iptables", *rule[:2], "-I", rule[2], *rule[3:])
    moved = snap((info(), THREE[1:]), API_2)
    second = ipt.compile_rules(moved, NODE, first.state, {WEB})
    _in(netns, "iptables-restore", "--noflush", stdin=second.text)
    saved = _in(netns, "iptables-save", "-t", "nat")
    for chain in first.state.service_chains[API]:  # kept, not flushed
        assert f"-A {chain} " in saved
    assert ipt.endpoint_chain_name(WEB, THREE[0]) not in saved
    third = ipt.compile_rules(snap((info(), THREE[1:])), NODE, second.state, {API})
    _in(netns, "iptables-restore", "--noflush", stdin=third.text)
    everything = _in(netns, "iptables-save")
    assert "10.96.0.20" not in everything and "10.96.0.10" in everything
    assert set(re.findall(r"^:(KUBE-(?:SVC|SEP|EXT|SVL)-\S+)", everything, re.M)) == (
        third.chains - set(ipt.NAT_CHAINS) - set(ipt.FILTER_CHAINS))
