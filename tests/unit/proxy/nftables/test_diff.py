"""nftables partial syncs: `update_table` redoes only the changed service ports and equals a whole rebuild;
`render_diff` sends only the difference (golden text), and applied to the previous table in a kernel it
leaves exactly what a fresh load of the new table leaves, affinity sets keeping what they learnt -- the
kernel tests only inside a throwaway network namespace (root only).

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/nftables`.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from typing import Any

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables.proxier import changed_ports
from svcnet.proxy.nftables import compile as nft
from svcnet.proxy.nftables.diff import plan_diff, render_diff
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
        return {field: sorted(getattr(plan, field)) if isinstance(getattr(plan, field), tuple)
                else {k: sorted(v) for k, v in getattr(plan, field).items()} for field in plan.__slots__}
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
    base = nft.endpoint_name_base(WEB, THREE[0])
    order = [f"flush chain ip svcnet endpoint-{base}\n", f"delete set ip svcnet affinity-{base}\n",
             f"\tset affinity-{base} {{", f"\tchain endpoint-{base} {{"]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)


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


@pytest.mark.parametrize(("previous", "new"), CASES)
def test_the_kernel_ends_where_a_fresh_load_does(netns: str, previous: model.Snapshot, new: model.Snapshot) -> None:
    before, after = _tables(previous, new)
    _in(netns, "nft", "-f", "-", stdin=nft.render(nft.build_table(new, NODE)))
    fresh = _normal(netns)
    _in(netns, "nft", "-f", "-", stdin=nft.render(before))
    _in(netns, "nft", "-f", "-", stdin=render_diff(before, after))
    assert _normal(netns) == fresh


def test_partial_syncs_keep_learnt_affinity(netns: str) -> None:
    before, after = _tables(snap(AFFINITY, DNS_2), snap(AFFINITY, (DNS_2[0], DNS_2[1][:1])))
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
        _, text = proxier.transaction(snap((info(), THREE[1:]), API_2), full=False)
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
