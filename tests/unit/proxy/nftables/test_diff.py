"""nftables partial syncs: `update_table` redoes only the changed service ports and equals a whole rebuild;
`render_diff` sends only the difference (golden text), with commands that spare `nft` listing the kernel's
chains and sets wherever nothing is deleted (checked on what `nft --debug=mnl` asks the kernel for), and
applied to the previous table in a kernel it leaves exactly what a fresh load of the new table leaves (plus
what it left over: chains emptied, affinity sets, deleted later), affinity sets keeping what they learnt --
the kernel tests only inside a throwaway network namespace (root only).

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/nftables`.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import replace
from typing import Any

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables.proxier import changed_ports
from svcnet.proxy.nftables import compile as nft
from svcnet.proxy.nftables.diff import LEFTOVERS_MAX, plan_diff, render_diff, render_partial
from svcnet.proxy.nftables.proxier import NftablesProxier
from tests.unit.proxy.nftables.test_compile import (
    API,
    API_2,
    NODE,
    THREE,
    WEB,
    WEB_3,
    _in,
    check_golden,
    ep,
    info,
    snap,
)

DNS = model.ServicePortName("kube-system", "dns", "dns", "UDP")
DNS_2 = (info(DNS, "10.96.0.53", 53), (ep("10.244.1.53", port=53), ep("10.244.2.53", "node-b", 53)))
AFFINITY = (info(affinity_timeout=10800), THREE)
SHARED = ("203.0.113.7",)

# (case, previous snapshot, new snapshot)
CASES = [
    pytest.param(snap(WEB_3, API_2), snap((info(), THREE[1:]), API_2), id="endpoint_removed"),
    pytest.param(snap((info(), THREE[1:]), API_2), snap(WEB_3, API_2), id="endpoint_added"),
    pytest.param(snap(AFFINITY, API_2), snap((info(affinity_timeout=10800), THREE[1:]), API_2),
                 id="affinity_endpoint_removed"),
    pytest.param(snap(WEB_3), snap(WEB_3, API_2), id="service_added"),
    pytest.param(snap(WEB_3, API_2), snap(WEB_3), id="service_deleted"),
    pytest.param(snap(WEB_3, API_2), snap(WEB_3, (API_2[0], ())), id="endpoints_gone_to_reject"),
    pytest.param(snap(WEB_3, (API_2[0], ())), snap(WEB_3, API_2), id="endpoints_back"),
    pytest.param(snap(AFFINITY, API_2), snap((info(affinity_timeout=60), THREE), API_2), id="affinity_timeout"),
    pytest.param(snap(AFFINITY, DNS_2), snap(AFFINITY, (DNS_2[0], DNS_2[1][:1])), id="affinity_untouched"),
    pytest.param(snap(WEB_3, API_2), snap((info(node_port=30080), THREE), API_2), id="node_port_added"),
    pytest.param(snap((info(API, "10.96.0.20", 80, external_ips=SHARED), THREE),
                      (info(external_ips=SHARED), THREE)),
                 snap((info(external_ips=SHARED), THREE)), id="shared_key_passes_on"),
]


# what `nft` lists from the kernel before it evaluates each case's transaction: the tables only, or (for a
# `delete`) every chain, set, object and flowtable -- the listing that costs ~0.4 s at 10,000 services
CHEAP, COSTLY = {"tables"}, {"tables", "chains", "sets", "objects", "flowtables"}
LISTED = {"endpoint_removed": CHEAP, "endpoint_added": CHEAP, "affinity_endpoint_removed": CHEAP,
          "service_added": CHEAP, "service_deleted": COSTLY, "endpoints_gone_to_reject": COSTLY, "endpoints_back": COSTLY,
          "affinity_timeout": COSTLY, "affinity_untouched": CHEAP, "node_port_added": CHEAP,
          "shared_key_passes_on": COSTLY}
# nfnetlink message types (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GET*) that ask the kernel for a listing
GETS = {0xA01: "tables", 0xA04: "chains", 0xA07: "rules", 0xA0A: "sets", 0xA0D: "elements", 0xA13: "objects",
        0xA17: "flowtables"}


def _tables(previous: model.Snapshot, new: model.Snapshot) -> tuple[nft.Table, nft.Table]:
    before = nft.build_table(previous, NODE)
    changed = changed_ports(previous, new)
    assert changed is not None
    return before, nft.update_table(before, new, NODE, changed)


@pytest.mark.parametrize(("previous", "new"), CASES)
def test_golden(request: pytest.FixtureRequest, previous: model.Snapshot, new: model.Snapshot) -> None:
    check_golden("diff_" + request.node.callspec.id, render_diff(*_tables(previous, new)))


@pytest.mark.parametrize(("previous", "new"), CASES)
def test_update_equals_a_whole_rebuild(previous: model.Snapshot, new: model.Snapshot) -> None:
    assert _tables(previous, new)[1] == nft.build_table(new, NODE)


@pytest.mark.parametrize(("previous", "new"), CASES)
def test_tables_built_apart_give_the_same_change(previous: model.Snapshot, new: model.Snapshot) -> None:
    """The diff of two separately built tables (nothing shared) plans the same work as the incremental one."""
    def normal(previous_table: nft.Table, table: nft.Table) -> dict[str, Any]:
        plan = plan_diff(previous_table, table)
        return {field: sorted(value) if isinstance(value := getattr(plan, field), tuple | frozenset)
                else {k: sorted(v) if isinstance(v, tuple) else v for k, v in value.items()}
                for field in plan.__slots__}
    assert normal(nft.build_table(previous, NODE), nft.build_table(new, NODE)) == normal(*_tables(previous, new))


def test_nothing_changed_nothing_to_send() -> None:
    table = nft.build_table(snap(WEB_3, API_2), NODE)
    assert render_diff(table, nft.update_table(table, snap(WEB_3, API_2), NODE, {WEB, API})) == ""
    assert render_diff(table, nft.build_table(snap(WEB_3, API_2), NODE)) == ""


def test_only_the_changed_service_is_written() -> None:
    text = render_diff(*_tables(snap(WEB_3, API_2), snap((info(), THREE[1:]), API_2)))
    assert "default/api" not in text and "service-ips" not in text
    assert "numgen random mod 2" in text


def test_a_changed_node_rebuilds_everything() -> None:
    before = nft.build_table(snap(WEB_3), NODE)
    other = replace(NODE, masquerade_all=True)
    assert nft.update_table(before, snap(WEB_3), other, set()) == nft.build_table(snap(WEB_3), other)


def test_learnt_affinity_sets_are_never_written() -> None:
    text = render_diff(*_tables(snap(AFFINITY, DNS_2), snap(AFFINITY, (DNS_2[0], DNS_2[1][:1]))))
    assert "affinity-" not in text


def test_a_recreated_affinity_set_rewrites_the_chains_that_use_it() -> None:
    text = render_diff(*_tables(snap(AFFINITY), snap((info(affinity_timeout=60), THREE))))
    base, chain = nft.endpoint_name_base(WEB, THREE[0]), nft.SERVICE + nft.service_name_base(WEB)
    order = [f"flush chain ip svcnet {chain}\n", f"delete set ip svcnet affinity-{base}\n",
             f"add set ip svcnet affinity-{base} {{", f"add chain ip svcnet {chain} {{\n"]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)


def test_rewritten_chains_declare_the_sets_they_look_up_as_they_are() -> None:
    text = render_diff(*_tables(snap(AFFINITY), snap((info(affinity_timeout=10800), THREE[1:]))))
    kept = nft.endpoint_name_base(WEB, THREE[1])
    assert (f"add set ip svcnet affinity-{kept} {{ type ipv4_addr; flags dynamic,timeout; timeout 10800s; }}\n"
            in text)
    assert text.index(f"add set ip svcnet affinity-{kept} ") < text.index("add chain ip svcnet service-")


def test_new_chains_are_declared_before_any_rule_jumps_to_them() -> None:
    text = render_diff(*_tables(snap(WEB_3), snap(WEB_3, API_2)))
    declared = [line.split()[-1] for line in text.splitlines() if line.startswith("add chain") and "{" not in line]
    first_rules = text.index(" {\n")
    assert declared and all(text.index(f"add chain ip svcnet {name}\n") < first_rules for name in declared)


# --- what partial syncs leave over ---------------------------------------------------------------------

WEB_2 = snap((info(), THREE[1:]), API_2)
GONE = nft.SERVICE + nft.service_name_base(model.ServicePortName("default", "old", "http", "TCP"))  # left over
GONE_SET = f"affinity-{nft.endpoint_name_base(WEB, THREE[0])}"
AFFINITY_2 = snap((info(affinity_timeout=10800), THREE[1:]), API_2)


def test_a_removed_endpoint_leaves_its_hairpin_element_and_its_affinity_set_unreferenced() -> None:
    table, text = render_partial(*_tables(snap(WEB_3, API_2), WEB_2))
    assert (table.leftover_chains, dict(table.leftover_sets)) == (frozenset(), {})
    assert "delete" not in text and "hairpin-endpoints" not in text
    table, text = render_partial(*_tables(snap(AFFINITY, API_2), AFFINITY_2))
    assert table.leftover_chains == frozenset() and set(table.leftover_sets) == {GONE_SET}
    assert "delete" not in text and GONE_SET not in text  # neither flushed nor declared: it is not looked up


def test_an_added_endpoint_adds_its_hairpin_element_when_it_is_on_this_node() -> None:
    local = render_diff(*_tables(snap((info(), THREE[:2]), API_2), snap(WEB_3, API_2)))
    assert "elements = { 10.244.1.5 . 10.244.1.5 } }\n" in local
    remote = render_diff(*_tables(WEB_2, snap(WEB_3, API_2)))  # 10.244.2.7, on node-b
    assert "hairpin-endpoints" not in remote and "delete" not in local + remote


def test_a_chain_that_comes_back_is_refilled_and_no_longer_left_over() -> None:
    back = nft.SERVICE + nft.service_name_base(API)
    left = replace(nft.build_table(snap(WEB_3), NODE), leftover_chains=frozenset({back}))
    table, text = render_partial(left, nft.update_table(left, snap(WEB_3, API_2), NODE, {API}))
    assert table.leftover_chains == frozenset()
    assert f"add chain ip svcnet {back} {{\n" in text and "delete" not in text


def test_an_affinity_set_that_comes_back_is_declared_anew_empty() -> None:
    left, _ = render_partial(*_tables(snap(AFFINITY, API_2), AFFINITY_2))
    table, text = render_partial(left, nft.update_table(left, snap(AFFINITY, API_2), NODE, {WEB}))
    assert (table.leftover_chains, dict(table.leftover_sets)) == (frozenset(), {})
    assert text.index(f"delete set ip svcnet {GONE_SET}\n") < text.index(f"add set ip svcnet {GONE_SET} {{")


MANY = {f"service-x{i}" for i in range(LEFTOVERS_MAX + 1)}
API_1 = snap((info(), THREE[1:]), (API_2[0], API_2[1][:1]))


@pytest.mark.parametrize(("chains", "sets", "new", "deleted"), [
    pytest.param({GONE}, {GONE_SET}, snap((info(), THREE[1:]), (API_2[0], ())), True, id="a-delete-pays-for-them"),
    pytest.param({GONE}, {GONE_SET}, API_1, False, id="kept-while-cheap"),
    pytest.param(MANY, set(), API_1, True, id="too-many-chains"),
    pytest.param(set(), {f"affinity-x{i}" for i in range(LEFTOVERS_MAX + 1)}, API_1, True, id="too-many-sets"),
])
def test_leftovers_are_deleted_when_a_transaction_lists_anyway(chains: set[str], sets: set[str], new: model.Snapshot,
                                                               deleted: bool) -> None:
    declared = nft.NftSet("set", ("type ipv4_addr", "flags dynamic,timeout", "timeout 10800s"), dynamic=True)
    before = replace(nft.build_table(WEB_2, NODE), leftover_chains=frozenset(chains),
                     leftover_sets=dict.fromkeys(sets, declared))
    table, text = render_partial(before, nft.update_table(before, new, NODE, {API}))
    assert all((f"delete chain ip svcnet {name}\n" in text) == deleted for name in chains)
    assert all((f"delete set ip svcnet {name}\n" in text) == deleted for name in sets)
    assert (table.leftover_chains >= chains and table.leftover_sets.keys() >= sets) != deleted


def test_a_full_sync_deletes_the_leftovers() -> None:
    left, _ = render_partial(*_tables(snap(AFFINITY, API_2), AFFINITY_2))
    left = replace(left, leftover_chains=frozenset({GONE}))
    text = nft.render(nft.build_table(AFFINITY_2, NODE), left)
    assert f"add chain ip svcnet {GONE}\ndelete chain ip svcnet {GONE}\n" in text
    assert f"\ndelete set ip svcnet {GONE_SET}\n" in text


# --- in a throwaway network namespace ------------------------------------------------------------------

def _normal(ns: str) -> dict[str, Any]:
    """`table ip svcnet` as data that does not depend on creation order or handles."""
    listed = json.loads(_in(ns, "nft", "-j", "list", "table", "ip", "svcnet"))["nftables"]
    out: dict[str, Any] = {}
    for item in listed:
        kind, body = next(iter(item.items()))
        if kind in ("chain", "set", "map"):
            body = {k: v for k, v in body.items() if k not in ("handle",)}
            if "elem" in body:
                body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
            out[f"{kind} {body['name']}"] = body
        elif kind == "rule":
            out.setdefault(f"rules {body['chain']}", []).append(body["expr"])
    return out


def _normal_elements(s: nft.NftSet) -> list[str]:
    """A `hairpin-endpoints` set's elements as `_normal` lists them from the kernel."""
    return [json.dumps({"concat": key.split(" . ")}, sort_keys=True) for key in s.elements]


def _listed(ns: str, text: str) -> set[str]:
    """What `nft` asks the kernel to list before it applies `text` (its --debug=mnl dump of each message)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "--debug=mnl", "-f", "-"], input=text,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {GETS[kind] for kind in map(int, re.findall(r"^\| (\d{5}) \| ", out.stdout + out.stderr, re.M))
            if kind in GETS}


@pytest.mark.parametrize(("previous", "new"), CASES)
def test_the_kernel_ends_where_a_fresh_load_does(request: pytest.FixtureRequest, netns: str,
                                                 previous: model.Snapshot, new: model.Snapshot) -> None:
    before, after = _tables(previous, new)
    _in(netns, "nft", "-f", "-", stdin=nft.render(nft.build_table(new, NODE)))
    fresh = _normal(netns)
    _in(netns, "nft", "-f", "-", stdin=nft.render(before))
    table, text = render_partial(before, after)
    assert _listed(netns, text) == LISTED[request.node.callspec.id]
    got = _normal(netns)
    for name in table.leftover_chains:  # there, empty
        assert got.pop(f"chain {name}") == {"family": "ip", "table": "svcnet", "name": name}
    assert all(got.pop(f"set {name}")["name"] == name for name in table.leftover_sets)
    hairpin, want = got.pop("set hairpin-endpoints"), fresh.pop("set hairpin-endpoints")
    stale = set(hairpin.pop("elem", ())) - set(want.pop("elem", ()))  # stays until a full sync
    assert hairpin == want and stale <= set(_normal_elements(before.sets["hairpin-endpoints"]))
    assert got == fresh


def test_leftovers_in_the_kernel_come_back_empty_or_go_with_a_full_sync(netns: str) -> None:
    before = nft.build_table(snap(AFFINITY, API_2), NODE)
    _in(netns, "nft", "-f", "-", stdin=nft.render(before))
    _in(netns, "nft", "add", "element", "ip", "svcnet", GONE_SET, "{ 192.0.2.1 }")
    left, text = render_partial(before, nft.update_table(before, AFFINITY_2, NODE, {WEB}))
    _in(netns, "nft", "-f", "-", stdin=text)
    assert "192.0.2.1" in _in(netns, "nft", "list", "set", "ip", "svcnet", GONE_SET)  # left, unreferenced
    back, text = render_partial(left, nft.update_table(left, snap(AFFINITY, API_2), NODE, {WEB}))
    _in(netns, "nft", "-f", "-", stdin=text)
    assert "192.0.2.1" not in _in(netns, "nft", "list", "set", "ip", "svcnet", GONE_SET)  # declared anew
    left, text = render_partial(back, nft.update_table(back, AFFINITY_2, NODE, {WEB}))
    _in(netns, "nft", "-f", "-", stdin=text)
    _in(netns, "nft", "-f", "-", stdin=nft.render(nft.build_table(AFFINITY_2, NODE), left))
    after_full = _normal(netns)
    _in(netns, "nft", "-f", "-", stdin=nft.render(nft.build_table(AFFINITY_2, NODE)))
    assert after_full == _normal(netns)  # nothing left over


@pytest.mark.parametrize(("previous", "new"), [
    pytest.param(snap(AFFINITY, DNS_2), snap(AFFINITY, (DNS_2[0], DNS_2[1][:1])), id="other-service-changed"),
    pytest.param(snap(AFFINITY), snap((info(affinity_timeout=10800), THREE[:2])), id="own-chains-rewritten"),
])
def test_partial_syncs_keep_learnt_affinity(netns: str, previous: model.Snapshot, new: model.Snapshot) -> None:
    before, after = _tables(previous, new)
    _in(netns, "nft", "-f", "-", stdin=nft.render(before))
    learnt = f"affinity-{nft.endpoint_name_base(WEB, THREE[0])}"
    _in(netns, "nft", "add", "element", "ip", "svcnet", learnt, "{ 192.0.2.1 }")
    _in(netns, "nft", "-f", "-", stdin=render_diff(before, after))
    listed = _in(netns, "nft", "list", "set", "ip", "svcnet", learnt)
    assert re.search(r"elements = \{ 192\.0\.2\.1 ", listed), listed


def test_the_proxier_syncs_partially_and_falls_back_after_a_failure(netns: str) -> None:
    api_chain = nft.SERVICE + nft.service_name_base(API)

    async def scenario() -> list[str]:
        proxier = NftablesProxier("node-a", ("192.168.1.10",), "10.244.0.0/16", netns=netns)
        await proxier.sync(snap(WEB_3, API_2), full=True)
        _, text, partial = proxier.transaction(snap((info(), THREE[1:]), API_2), full=False)
        assert partial
        seen = [text]
        await proxier.sync(snap((info(), THREE[1:]), API_2), full=False)
        seen.append(_in(netns, "nft", "list", "table", "ip", "svcnet"))
        # drift: a chain the next partial sync rewrites is deleted behind the proxier's back
        _in(netns, "nft", "flush", "chain", "ip", "svcnet", api_chain)
        _in(netns, "nft", "delete", "element", "ip", "svcnet", "service-ips", "{ 10.96.0.20 . tcp . 443 }")
        _in(netns, "nft", "delete", "chain", "ip", "svcnet", api_chain)
        with pytest.raises(OSError):
            await proxier.sync(snap((info(), THREE[1:]), (API_2[0], API_2[1][:1])), full=False)
        assert proxier.table is None
        await proxier.sync(snap((info(), THREE[1:]), (API_2[0], API_2[1][:1])), full=False)  # whole table
        seen.append(_in(netns, "nft", "list", "table", "ip", "svcnet"))
        await proxier.close()
        return seen

    partial, after_partial, healed = asyncio.run(scenario())
    assert not partial.startswith("add table") and "flush table" not in partial
    assert "numgen random mod 2" in after_partial and "numgen random mod 3" not in after_partial
    assert f"chain {api_chain} {{" in healed and "10.96.0.20 . tcp . 443" in healed
