"""The incremental iptables compile: with the previous state's memo, every compile gives exactly what a compile
without it gives (text, chains, rewritten and deleted chains, state), over sequences of random snapshot changes
made the way `SnapshotCache` makes them (unchanged service ports keep their objects), and it does reuse what
did not change.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from svcnet.proxy import model
from svcnet.proxy.iptables import compile as ipt
from svcnet.proxy.iptables.proxier import changed_ports

NODE = ipt.NodeInfo("node-a", addresses=("192.168.1.10",), cluster_cidr="10.244.0.0/16")
NODES = ("node-a", "node-b", "")


def random_info(rng: random.Random, i: int) -> model.ServicePortInfo:
    name = model.ServicePortName(f"ns{i % 3}", f"svc-{i}", rng.choice(["", "http", "dns"]),
                                 rng.choice(["TCP", "TCP", "UDP", "SCTP"]))
    cluster_ips = rng.choice([(f"10.96.{i // 250}.{i % 250 + 1}",), (f"fd00::{i + 1}",),
                              (f"10.96.{i // 250}.{i % 250 + 1}", f"fd00::{i + 1}")])
    node_port = rng.choice([0, 0, 30000 + i])
    return model.ServicePortInfo(
        name, cluster_ips, rng.choice([80, 443, 53]), name.protocol, node_port=node_port,
        external_ips=rng.choice([(), ("203.0.113.7",), ("203.0.113.8", "2001:db8::1")]),
        load_balancer_ips=rng.choice([(), (), (f"198.51.100.{i % 250 + 1}",)]),
        affinity_timeout=rng.choice([None, None, 10800, 60]), internal_local=rng.random() < 0.2,
        external_local=rng.random() < 0.3, health_check_node_port=rng.choice([0, 0, 32000 + i]))


def random_endpoints(rng: random.Random, i: int) -> tuple[model.EndpointInfo, ...]:
    eps = set()
    for _ in range(rng.choice([0, 1, 2, 3, 5])):
        ready = rng.random() < 0.8
        ip = rng.choice([f"10.244.{rng.randrange(4)}.{rng.randrange(1, 250)}", f"fd00:1::{rng.randrange(1, 99)}"])
        eps.add(model.EndpointInfo(ip, rng.choice([8080, 8443]), rng.choice(NODES), ready=ready,
                                   serving=ready or rng.random() < 0.5, terminating=not ready))
    return tuple(sorted(eps, key=lambda e: (e.ip, e.port)))


def mutate(rng: random.Random, snapshot: model.Snapshot, step: int) -> model.Snapshot:
    """A next snapshot as SnapshotCache makes one: copies of the mappings in which a few service ports change
    (endpoints, service, equal-but-new objects, added, removed) and every other keeps its objects."""
    infos, endpoints = dict(snapshot.services), dict(snapshot.endpoints)
    for _ in range(rng.choice([0, 1, 1, 2, 5])):
        name = rng.choice(list(infos)) if infos else None
        action = rng.choice(["endpoints", "endpoints", "service", "equal-copy", "add", "remove"])
        if action == "add" or name is None:
            info = random_info(rng, 1000 + step * 10 + rng.randrange(10))
            infos[info.name] = info
            name = info.name
            action = "endpoints"
        if action == "remove":
            infos.pop(name)
            endpoints.pop(name, None)
        elif action == "service":
            index = int(name.name.split("-")[1])
            infos[name] = replace(random_info(rng, index), name=name, protocol=name.protocol)
        elif action == "equal-copy":
            infos[name] = replace(infos[name])
            if name in endpoints:
                endpoints[name] = tuple(replace(e) for e in endpoints[name])
        else:
            eps = random_endpoints(rng, 0)
            if eps:
                endpoints[name] = eps
            else:
                endpoints.pop(name, None)
    return model.Snapshot(infos, endpoints)


def first_snapshot(rng: random.Random, services: int) -> model.Snapshot:
    infos = [random_info(rng, i) for i in range(services)]
    endpoints = {info.name: eps for info in infos if (eps := random_endpoints(rng, 0))}
    return model.Snapshot({info.name: info for info in infos}, endpoints)


def assert_same(incremental: ipt.Compiled, fresh: ipt.Compiled) -> None:
    assert incremental.text == fresh.text
    assert (incremental.chains, incremental.state, incremental.full_sync, incremental.rewritten,
            incremental.deleted) == (fresh.chains, fresh.state, fresh.full_sync, fresh.rewritten, fresh.deleted)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(12)])
def test_incremental_compile_is_byte_identical_to_a_fresh_one(seed: int) -> None:
    rng = random.Random(seed)
    snapshot = first_snapshot(rng, rng.choice([5, 30, 120]))
    node = NODE
    state = ipt.compile_rules(snapshot, node).state
    for step in range(40):
        after = mutate(rng, snapshot, step)
        if step % 13 == 12:  # the node changes: the memo must not be used for it
            node = replace(node, name=rng.choice(NODES[:2]), masquerade_all=not node.masquerade_all)
        if step % 7 == 6:  # the same service ports in another order
            after = model.Snapshot(dict(reversed(list(after.services.items()))), after.endpoints)
        changed = None if step % 11 == 10 else changed_ports(snapshot, after)
        if step % 5 == 4 and changed:  # a caller that misses changes: shape changes are still caught
            changed = set(sorted(changed)[1::2])
        incremental = ipt.compile_rules(after, node, state, changed)
        fresh = ipt.compile_rules(after, node, replace(state, memo=None), changed)
        assert_same(incremental, fresh)
        snapshot, state = after, incremental.state


def test_incremental_compile_across_the_large_cluster_switch() -> None:
    web = model.ServicePortName("default", "web", "http", "TCP")
    api = model.ServicePortName("default", "api", "", "TCP")
    infos = {n: model.ServicePortInfo(n, (ip,), 80, "TCP") for n, ip in ((web, "10.96.0.10"), (api, "10.96.0.20"))}
    small = (model.EndpointInfo("10.244.1.5", 8080, "node-a"),)
    big = tuple(model.EndpointInfo(f"10.244.{i // 250}.{i % 250 + 1}", 8080, "node-a") for i in range(1001))
    state = ipt.compile_rules(model.Snapshot(infos, {web: small, api: small}), NODE).state
    for web_eps in (big, small, big):
        after = model.Snapshot(dict(infos), {web: web_eps, api: small})
        incremental = ipt.compile_rules(after, NODE, state, {web})
        assert incremental.full_sync  # the comment style changed: api's chains are rewritten too
        assert_same(incremental, ipt.compile_rules(after, NODE, replace(state, memo=None), {web}))
        state = incremental.state


def test_unchanged_service_ports_are_reused_and_changed_ones_replanned() -> None:
    rng = random.Random(7)
    snapshot = first_snapshot(rng, 50)
    first = ipt.compile_rules(snapshot, NODE)
    name = next(n for n in snapshot.services if n in snapshot.endpoints)
    after = model.Snapshot(dict(snapshot.services), {**snapshot.endpoints, name: snapshot.endpoints[name][:-1]})
    second = ipt.compile_rules(after, NODE, first.state, {name})
    assert first.state.memo is not None and second.state.memo is not None
    before, now = first.state.memo.entries, second.state.memo.entries
    assert [n for n in now if now[n] is not before[n]] == [name]
    assert second.state.memo.order is first.state.memo.order  # same names: not sorted again
    assert second.rewritten == ((name,) if now[name].plan is not None else ())


def test_a_state_without_memo_or_for_another_node_compiles_from_scratch() -> None:
    rng = random.Random(3)
    snapshot = first_snapshot(rng, 20)
    first = ipt.compile_rules(snapshot, NODE)
    assert first.state.memo is not None
    for previous, node in ((replace(first.state, memo=None), NODE), (first.state, replace(NODE, name="node-b"))):
        compiled = ipt.compile_rules(snapshot, node, previous, set())
        assert compiled.state.memo is not None
        before = {id(e) for e in first.state.memo.entries.values()}
        assert not before & {id(e) for e in compiled.state.memo.entries.values()}
