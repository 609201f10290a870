"""The ipvs diff: kernel state read back + desired state -> the operations of one sync, as ipvsadm/ip commands
(golden file per case) and a table of the graceful-termination decisions. Also the fallback decision.

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/proxy/ipvs`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from svcnet.proxy import ipvs
from svcnet.proxy.ipvs import compile as ipvs_compile
from svcnet.proxy.ipvs.compile import ServiceKey, compile_state
from svcnet.proxy.ipvs.diff import CurrentDest, CurrentService, KernelState, ipset_lines, plan
from tests.unit.proxy.ipvs.test_compile import DNS, NODE, THREE, check_golden, ep, info, snap

VIP = ServiceKey("TCP", "10.96.0.10", 80)
UDP_VIP = ServiceKey("UDP", "10.96.0.53", 53)


def kernel_of(desired: ipvs_compile.Desired, **counts: tuple[int, int]) -> KernelState:
    """What the kernel holds after applying `desired` (flags as the kernel reports them: HASHED set), with
    connection counts per real server address ("10_244_1_5"=(active, inactive))."""
    services = {}
    for key, vs in desired.services.items():
        dests = tuple(CurrentDest(d.address, d.port, d.weight, *counts.get(d.address.replace(".", "_"), (0, 0)))
                      for d in vs.dests)
        services[key] = CurrentService(key, vs.scheduler, vs.flags | 0x2, vs.timeout, dests)
    return KernelState(services, desired.addresses, desired.ipsets)


WEB_3 = snap((info(), THREE))
WEB_2 = snap((info(), THREE[1:]))
BOTH = snap((info(), THREE), (info(DNS, "10.96.0.53", 53), (ep("10.244.1.53", port=53),)))

# (case, kernel state, new snapshot)
CASES = [
    pytest.param(KernelState(), WEB_3, id="from_empty"),
    pytest.param(kernel_of(compile_state(WEB_3, NODE)), WEB_3, id="no_change"),
    pytest.param(kernel_of(compile_state(WEB_3, NODE)), WEB_2, id="endpoint_removed_idle"),
    pytest.param(kernel_of(compile_state(WEB_3, NODE), **{"10_244_1_5": (1, 3)}), WEB_2, id="endpoint_removed_busy"),
    pytest.param(kernel_of(replace(compile_state(WEB_3, NODE), services={
        VIP: replace(compile_state(WEB_3, NODE).services[VIP], dests=tuple(
            replace(d, weight=0) if d.address == "10.244.1.5" else d
            for d in compile_state(WEB_3, NODE).services[VIP].dests))}), **{"10_244_1_5": (0, 2)}), WEB_2,
        id="draining_stays"),
    pytest.param(kernel_of(compile_state(WEB_3, NODE)), snap((info(affinity_timeout=60), THREE)), id="affinity_on"),
    pytest.param(kernel_of(compile_state(BOTH, NODE), **{"10_244_1_53": (1, 0)}),
                 snap((info(DNS, "10.96.0.53", 53), ())), id="udp_not_drained_service_deleted"),
]


@pytest.mark.parametrize(("kernel", "snapshot"), CASES)
def test_golden(request: pytest.FixtureRequest, kernel: KernelState, snapshot: object) -> None:
    desired = compile_state(snapshot, NODE)  # type: ignore[arg-type]
    ops = plan(kernel, desired)
    text = "".join(f"{op}\n" for op in ops)
    text += "# ipset restore -exist\n" + "".join(
        f"{line}\n" for line in ipset_lines(kernel.ipsets, desired, ipvs_compile.create_lines()))
    check_golden(f"diff_{request.node.callspec.id}", text)


def test_applying_the_plan_reaches_the_desired_state() -> None:
    """After the operations, reading the kernel back gives no further operation (except drains)."""
    desired = compile_state(WEB_2, NODE)
    assert plan(kernel_of(desired), desired) == []
    assert ipset_lines(desired.ipsets, desired, ipvs_compile.create_lines()) == []


# (case, protocol, weight, active, inactive, expected command or "")
GRACEFUL = [
    pytest.param("TCP", 1, 0, 0, "ipvsadm -d -t 10.96.0.10:80 -r 10.244.1.5:8080", id="tcp_idle_deleted"),
    pytest.param("TCP", 1, 2, 0, "ipvsadm -e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 0", id="tcp_active_drains"),
    pytest.param("TCP", 1, 0, 4, "ipvsadm -e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 0", id="tcp_time_wait_drains"),
    pytest.param("TCP", 0, 0, 1, "", id="tcp_draining_waits"),
    pytest.param("TCP", 0, 0, 0, "ipvsadm -d -t 10.96.0.10:80 -r 10.244.1.5:8080", id="tcp_drained_deleted"),
    pytest.param("UDP", 1, 3, 3, "ipvsadm -d -u 10.96.0.10:80 -r 10.244.1.5:8080", id="udp_deleted_at_once"),
]


@pytest.mark.parametrize(("protocol", "weight", "active", "inactive", "expected"), GRACEFUL)
def test_graceful_termination(protocol: str, weight: int, active: int, inactive: int, expected: str) -> None:
    key = ServiceKey(protocol, "10.96.0.10", 80)
    svc = info(replace(DNS, protocol=protocol), "10.96.0.10", 80)
    desired = compile_state(snap((svc, ())), NODE)
    kernel = KernelState({key: CurrentService(key, "rr", 0x2, 0, (CurrentDest("10.244.1.5", 8080, weight, active,
                                                                                inactive),))}, desired.addresses)
    assert [str(op) for op in plan(kernel, desired)] == ([expected] if expected else [])


def test_a_returning_endpoint_gets_its_weight_back() -> None:
    desired = compile_state(WEB_3, NODE)
    vs = desired.services[VIP]
    kernel = kernel_of(replace(desired, services={VIP: replace(vs, dests=(replace(vs.dests[0], weight=0),
                                                                          *vs.dests[1:]))}))
    assert [str(op) for op in plan(kernel, desired)] == ["ipvsadm -e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1"]


def test_no_ipvs_falls_back_to_iptables_and_says_so() -> None:
    mode, message = ipvs.resolve_mode(strict=False, has_ipvs=False)
    assert mode == "iptables" and "falling back to iptables" in message and "--ipvs-strict" in message


def test_strict_refuses_to_fall_back() -> None:
    with pytest.raises(ValueError, match="--ipvs-strict"):
        ipvs.resolve_mode(strict=True, has_ipvs=False)


def test_with_ipvs_it_runs_ipvs() -> None:
    assert ipvs.resolve_mode(strict=False, has_ipvs=True)[0] == "ipvs"
