"""The ipvs mode's sysctls: what is read -> what is written and what is reported missing (a table), and the
error for a kernel without IPVS."""

from __future__ import annotations

import pytest

from svcnet.proxy.ipvs.sysctls import SYSCTLS, plan

RIGHT = {s.path: s.value for s in SYSCTLS}
FRESH_NETNS = {**RIGHT, "net/ipv4/vs/conntrack": "0", "net/ipv4/vs/expire_nodest_conn": "0",
               "net/ipv4/vs/expire_quiescent_template": "0", "net/ipv4/ip_forward": "0"}
BRIDGE = "net/bridge/bridge-nf-call-iptables"

# (case, read from /proc/sys (None: no such file), the paths to write, the optional paths missing)
CASES = [
    pytest.param(FRESH_NETNS, ["net/ipv4/vs/conntrack", "net/ipv4/vs/expire_nodest_conn",
                               "net/ipv4/vs/expire_quiescent_template", "net/ipv4/ip_forward"], [],
                 id="fresh_namespace"),
    pytest.param(RIGHT, [], [], id="already_right_nothing_written"),
    pytest.param({**RIGHT, BRIDGE: None}, [], [BRIDGE], id="no_br_netfilter_reported_not_fatal"),
    pytest.param({**RIGHT, BRIDGE: "0"}, [BRIDGE], [], id="bridge_hooks_off"),
    pytest.param({**RIGHT, "net/ipv4/vs/conntrack": "0"}, ["net/ipv4/vs/conntrack"], [], id="drifted_back"),
]


@pytest.mark.parametrize(("current", "written", "absent"), CASES)
def test_plan(current: dict[str, str | None], written: list[str], absent: list[str]) -> None:
    planned = plan(current)
    assert [s.path for s in planned.write] == written
    assert all(s.value == "1" for s in planned.write)
    assert [s.path for s in planned.absent] == absent
    assert all("br_netfilter" in s.without for s in planned.absent)


def test_a_kernel_without_ipvs_is_an_error_naming_what_is_missing() -> None:
    current = {**RIGHT, "net/ipv4/vs/conntrack": None, "net/ipv4/vs/expire_nodest_conn": None}
    with pytest.raises(ValueError, match=r"lacks net\.ipv4\.vs\.conntrack, net\.ipv4\.vs\.expire_nodest_conn"):
        plan(current)
