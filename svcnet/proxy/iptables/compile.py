"""The pure compiler of the iptables proxy mode: a proxy Snapshot in, `iptables-restore` input out, with
kube-proxy's chain layout and names (pkg/proxy/iptables/proxier.go) so that people who know kube-proxy can
read the result.

Theory of operation. Every sync writes the whole `filter` table part (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES,
KUBE-FORWARD, KUBE-NODEPORTS, KUBE-PROXY-FIREWALL) and the top-level `nat` chains (KUBE-SERVICES,
KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ). Per service port there are `nat` chains named from a hash:
KUBE-SVC- (endpoints for Cluster policy), KUBE-SVL- (endpoints for Local policy), KUBE-EXT- (external
destinations: NodePort, external IPs, load-balancer IPs) and one KUBE-SEP- per endpoint (hairpin masquerade
and DNAT). Endpoint choice is `-m statistic --mode random --probability 1/n, 1/(n-1), ...` with the last rule
unconditional; ClientIP affinity adds `-m recent` rules.

Partial sync (kube's MinimizeIPTablesRestore): given the previous `CompiledState` and the set of service ports
that changed, the per-service chains of unchanged service ports are left out entirely -- neither declared
(`:CHAIN` in `iptables-restore --noflush` input flushes an existing chain) nor rewritten; the kernel keeps
them. Chains owned before and not wanted now are flushed (declared) and deleted with `-X`.

Invariants:
- Pure: no I/O, no clock, no randomness; the same input gives byte-identical text.
- Deterministic order: service ports sorted by ServicePortName, endpoints by (IP, port).
- A service port's per-service chains are rewritten when it changed, when the previous sync did not write
  it, or when the set of SVC/SVL/EXT chains it needs differs from what the previous sync left; a change of
  node settings or of the large-cluster mode forces a full sync.
- Every chain a written rule jumps to is declared in the same input or was kept from the previous sync.
- IPv4 only (iptables, not ip6tables): IPv6 cluster IPs, external IPs and endpoints are ignored.
- A state's memo and its `service_chains` come from the same compile: the chains kept for a memo entry are
  the ones written (or kept) for that entry's plan, so reusing the entry also proves the chains still fit.

Incremental compile. The previous `CompiledState` also carries a memo (`_Memo`): per service port, its plan,
the set of SVC/SVL/EXT chains it needs and its top-level (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, ...) rule
lines, valid for the very same `ServicePortInfo` and endpoints tuple objects (a `SnapshotCache` snapshot keeps
both for every unchanged service port) on the same node; and the sorted list of service ports, valid while the
set of names is the same. A memo hit skips the planning, the rule formatting and the keep check; the text is
byte-identical to a compile without the memo (tests compare the two over random snapshot changes). The memo
holds nothing that depends on the large-cluster mode or the node's masquerade settings, and it is dropped
when the node changes.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from svcnet.proxy import categorize, model

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
FILTER_CHAINS = (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL)
NAT_CHAINS = (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ)
SVC, SVL, EXT, FW, SEP = "KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"
SERVICE_CHAIN_PREFIXES = (SVC, SVL, EXT, FW, SEP)
LARGE_CLUSTER_ENDPOINTS = 1000  # above this, per-endpoint comments are dropped (kube's largeClusterMode)
NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'

_NEW = ("-m", "conntrack", "--ctstate", "NEW")
_JUMPS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", "INPUT", KUBE_EXTERNAL_SERVICES, "kubernetes externally-visible service portals", _NEW),
    ("filter", "FORWARD", KUBE_EXTERNAL_SERVICES, "kubernetes externally-visible service portals", _NEW),
    ("filter", "INPUT", KUBE_NODEPORTS, "kubernetes health check service ports", ()),
    ("filter", "FORWARD", KUBE_SERVICES, "kubernetes service portals", _NEW),
    ("filter", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", _NEW),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules", ()),
    ("filter", "INPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", _NEW),
    ("filter", "OUTPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", _NEW),
    ("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", _NEW),
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", ()),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals", ()),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules", ()),
)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the compiler needs to know about the node it compiles for."""

    name: str
    addresses: tuple[str, ...] = ()  # the node's own IPs (matched against node_port_addresses)
    cluster_cidr: str = ""  # the pod range: traffic from outside it to a ClusterIP is masqueraded
    masquerade_mark: int = 0x4000  # 1 << masqueradeBit (14)
    masquerade_all: bool = False
    node_port_addresses: tuple[str, ...] = ()  # CIDRs; empty = NodePorts on every local address
    localhost_node_ports: bool = False  # kube's default is True (needs route_localnet=1)
    random_fully: bool = False  # `MASQUERADE --random-fully` when iptables supports it
    conntrack_tcp_liberal: bool = False  # nf_conntrack_tcp_be_liberal set: no INVALID drop rule


@dataclass(frozen=True, slots=True)
class CompiledState:
    """What a partial sync needs from the previous one: the per-service nat chains it left in the kernel."""

    node: NodeInfo
    large_cluster: bool = False
    service_chains: Mapping[model.ServicePortName, tuple[str, ...]] = field(default_factory=dict)
    strays: frozenset[str] = frozenset()  # owned chains found in the kernel, not tied to a service port
    memo: _Memo | None = field(default=None, compare=False, repr=False)  # what the next compile may reuse

    @classmethod
    def from_existing(cls, node: NodeInfo, chains: Iterable[str]) -> CompiledState:
        """A state from chain names seen in `iptables-save -t nat` (e.g. after a restart): the next compile
        writes every service and deletes the owned chains it no longer wants."""
        return cls(node, strays=frozenset(c for c in chains if c.startswith(SERVICE_CHAIN_PREFIXES)))

    def owned(self) -> frozenset[str]:
        return self.strays.union(*self.service_chains.values())


@dataclass(frozen=True, slots=True)
class Compiled:
    text: str  # iptables-restore input (filter and nat), meant for `iptables-restore --noflush`
    chains: frozenset[str]  # every svcnet-owned chain present after applying `text` (both tables)
    state: CompiledState
    full_sync: bool
    rewritten: tuple[model.ServicePortName, ...]  # service ports whose chains `text` (re)writes
    deleted: tuple[str, ...]  # chains `text` flushes and deletes


# --- names ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 17)
def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube's portProtoHash: base32(sha256(name + lower-case protocol)), first 16 characters."""
    digest = hashlib.sha256((service_port_name + protocol).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_chain_name(prefix: str, name: model.ServicePortName) -> str:
    return prefix + port_proto_hash(str(name), name.protocol.lower())


def endpoint_chain_name(name: model.ServicePortName, endpoint: model.EndpointInfo) -> str:
    """kube's servicePortEndpointChainName: the hash input also holds the endpoint's "ip:port"."""
    return SEP + port_proto_hash(str(name), name.protocol.lower() + endpoint.address)


def probability(n: int) -> str:
    return f"{1.0 / n:0.10f}"


_v4 = categorize.v4
_sorted = categorize.sorted_endpoints


def _quote(text: str) -> str:
    return f'"{text}"'


# --- per service port plan ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan(categorize.PortEndpoints):
    """A categorised service port and the hash its chains are named by."""

    hash: str

    @property
    def svc_chain(self) -> str:
        return SVC + self.hash

    @property
    def svl_chain(self) -> str:
        return SVL + self.hash

    @property
    def ext_chain(self) -> str:
        return EXT + self.hash

    @property
    def internal_chain(self) -> str:
        return self.svl_chain if self.info.internal_local else self.svc_chain

    @property
    def external_policy_chain(self) -> str:
        return self.svl_chain if self.external_local else self.svc_chain

    @property
    def uses_ext(self) -> bool:
        return self.has_endpoints and self.accessible

    def policy_chains(self) -> frozenset[str]:
        """The SVC/SVL/EXT chains this service port needs (its SEP chains aside)."""
        used = {self.svc_chain: bool(self.cluster_eps), self.svl_chain: bool(self.local_eps),
                self.ext_chain: self.uses_ext}
        return frozenset(chain for chain, needed in used.items() if needed)


def _plan(info: model.ServicePortInfo, endpoints: Sequence[model.EndpointInfo], node: str) -> _Plan | None:
    return categorize.categorize(info, endpoints, node, _Plan,
                                 port_proto_hash(str(info.name), info.protocol.lower()))


# --- output buffers -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Out:
    node: NodeInfo
    large: bool
    filter_chains: list[str] = field(default_factory=list)
    filter_rules: list[str] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    nat_rules: list[str] = field(default_factory=list)

    @property
    def mark(self) -> str:
        return f"{self.node.masquerade_mark:#x}"

    def nat_chain(self, chain: str) -> None:
        self.nat_chains.append(f":{chain} - [0:0]")

    def nat(self, *parts: str) -> None:
        self.nat_rules.append(" ".join(p for p in parts if p))

    def filter(self, *parts: str) -> None:
        self.filter_rules.append(" ".join(p for p in parts if p))

    def render(self) -> str:
        lines = ["*filter", *self.filter_chains, *self.filter_rules, "COMMIT",
                 "*nat", *self.nat_chains, *self.nat_rules, "COMMIT"]
        return "\n".join(lines) + "\n"


def _write_static(out: _Out) -> None:
    out.filter_chains.extend(f":{chain} - [0:0]" for chain in FILTER_CHAINS)
    for chain in NAT_CHAINS:
        out.nat_chain(chain)
    out.nat(f"-A {KUBE_POSTROUTING} -m mark ! --mark {out.mark}/{out.mark} -j RETURN")
    out.nat(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {out.mark}")
    out.nat(f"-A {KUBE_POSTROUTING} -m comment --comment "
            f'"kubernetes service traffic requiring SNAT" -j MASQUERADE',
            "--random-fully" if out.node.random_fully else "")
    out.nat(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {out.mark}")


# --- top-level rules (always written) -------------------------------------------------------------------


def _filter_target(plan: _Plan, local_ok: bool) -> tuple[str, str]:
    """(target, comment) for traffic that finds no endpoint: REJECT with none at all, DROP with no local."""
    if not plan.has_endpoints:
        return "REJECT", _quote(f"{plan.name} has no endpoints")
    if not local_ok:
        return "DROP", _quote(f"{plan.name} has no local endpoints")
    return "", ""


def _match(plan: _Plan, address: str, port: int) -> str:
    dest = f" -d {address}" if address else ""
    return f"-m {plan.proto} -p {plan.proto}{dest} --dport {port}"


def _write_cluster_ip(out: _Out, plan: _Plan) -> None:
    match = _match(plan, plan.cluster_ip, plan.info.port)
    if plan.has_internal:
        out.nat(f"-A {KUBE_SERVICES} -m comment --comment {_quote(plan.name + ' cluster IP')} {match}"
                f" -j {plan.internal_chain}")
        return
    target, comment = _filter_target(plan, plan.has_internal)
    out.filter(f"-A {KUBE_SERVICES} -m comment --comment {comment} {match} -j {target}")


def _write_external_ips(out: _Out, plan: _Plan) -> None:
    target, comment = _filter_target(plan, plan.has_external)
    for address in plan.external_ips:
        match = _match(plan, address, plan.info.port)
        if plan.has_endpoints:
            out.nat(f"-A {KUBE_SERVICES} -m comment --comment {_quote(plan.name + ' external IP')} {match}"
                    f" -j {plan.ext_chain}")
        if not plan.has_external:
            out.filter(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {comment} {match} -j {target}")


def _write_load_balancer_ips(out: _Out, plan: _Plan) -> None:
    for address in plan.lb_ips if plan.has_endpoints else ():
        out.nat(f"-A {KUBE_SERVICES} -m comment --comment {_quote(plan.name + ' loadbalancer IP')}"
                f" {_match(plan, address, plan.info.port)} -j {plan.ext_chain}")
    target, comment = _filter_target(plan, plan.has_external)
    for address in plan.lb_ips if not plan.has_external else ():
        out.filter(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {comment}"
                   f" {_match(plan, address, plan.info.port)} -j {target}")


def _write_node_port(out: _Out, plan: _Plan) -> None:
    if not plan.info.node_port:
        return
    match = _match(plan, "", plan.info.node_port)
    if plan.has_endpoints:
        out.nat(f"-A {KUBE_NODEPORTS} -m comment --comment {plan.name} {match} -j {plan.ext_chain}")
    if not plan.has_external:
        target, comment = _filter_target(plan, plan.has_external)
        out.filter(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {comment} -m addrtype --dst-type LOCAL"
                   f" {match} -j {target}")


def _write_health_check(out: _Out, plan: _Plan) -> None:
    if plan.info.health_check_node_port:
        out.filter(f"-A {KUBE_NODEPORTS} -m comment --comment {_quote(plan.name + ' health check node port')}"
                   f" -m tcp -p tcp --dport {plan.info.health_check_node_port} -j ACCEPT")


def _write_entry_rules(out: _Out, plan: _Plan) -> None:
    _write_cluster_ip(out, plan)
    _write_external_ips(out, plan)
    _write_load_balancer_ips(out, plan)
    _write_node_port(out, plan)
    _write_health_check(out, plan)


# --- per-service chains (skipped in a partial sync when unchanged) --------------------------------------


def _write_internal_masquerade(out: _Out, plan: _Plan) -> None:
    if not plan.has_internal:
        return
    head = (f"-A {plan.internal_chain} -m comment --comment {_quote(plan.name + ' cluster IP')}"
            f" {_match(plan, plan.cluster_ip, plan.info.port)}")
    if out.node.masquerade_all:
        out.nat(f"{head} -j {KUBE_MARK_MASQ}")
    elif out.node.cluster_cidr:
        out.nat(f"{head} ! -s {out.node.cluster_cidr} -j {KUBE_MARK_MASQ}")


def _write_external_chain(out: _Out, plan: _Plan) -> None:
    ext, name = plan.ext_chain, plan.name
    out.nat_chain(ext)
    if not plan.external_local:
        out.nat(f"-A {ext} -m comment --comment {_quote(f'masquerade traffic for {name} external destinations')}"
                f" -j {KUBE_MARK_MASQ}")
    else:
        if out.node.cluster_cidr:
            out.nat(f"-A {ext} -m comment --comment {_quote(f'pod traffic for {name} external destinations')}"
                    f" -s {out.node.cluster_cidr} -j {plan.svc_chain}")
        out.nat(f"-A {ext} -m comment --comment "
                f"{_quote(f'masquerade LOCAL traffic for {name} external destinations')}"
                f" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}")
        out.nat(f"-A {ext} -m comment --comment {_quote(f'route LOCAL traffic for {name} external destinations')}"
                f" -m addrtype --src-type LOCAL -j {plan.svc_chain}")
    if plan.has_external:
        out.nat(f"-A {ext} -j {plan.external_policy_chain}")


def _comment(out: _Out, text: str) -> str:
    return "" if out.large else f"-m comment --comment {text}"


def _write_dispatch(out: _Out, plan: _Plan, chain: str, endpoints: Sequence[model.EndpointInfo],
                    seps: Mapping[model.EndpointInfo, str]) -> None:
    """kube's writeServiceToEndpointRules: affinity checks first, then the 1/n, 1/(n-1), ... choice."""
    out.nat_chain(chain)
    comments = [_comment(out, _quote(f"{plan.name} -> {ep.address}")) for ep in endpoints]
    if plan.info.affinity_timeout is not None:
        for ep, comment in zip(endpoints, comments, strict=True):
            out.nat(f"-A {chain}", comment, f"-m recent --name {seps[ep]} --rcheck --seconds"
                    f" {plan.info.affinity_timeout} --reap -j {seps[ep]}")
    for i, (ep, comment) in enumerate(zip(endpoints, comments, strict=True)):
        rest = len(endpoints) - i
        statistic = f"-m statistic --mode random --probability {probability(rest)}" if rest > 1 else ""
        out.nat(f"-A {chain}", comment, statistic, f"-j {seps[ep]}")


def _write_endpoint_chains(out: _Out, plan: _Plan, seps: Mapping[model.EndpointInfo, str]) -> None:
    comment = _comment(out, plan.name)
    affinity = "" if plan.info.affinity_timeout is None else "-m recent --name {} --set"
    for ep, chain in seps.items():
        out.nat_chain(chain)
        out.nat(f"-A {chain}", comment, f"-s {ep.ip} -j {KUBE_MARK_MASQ}")
        out.nat(f"-A {chain}", comment, affinity.format(chain),
                f"-m {plan.proto} -p {plan.proto} -j DNAT --to-destination {ep.address}")


def _write_service_chains(out: _Out, plan: _Plan) -> tuple[str, ...]:
    """The service port's own chains, in kube's order; returns their names."""
    seps = {ep: endpoint_chain_name(plan.info.name, ep) for ep in plan.reachable}
    _write_internal_masquerade(out, plan)
    if plan.uses_ext:
        _write_external_chain(out, plan)
    if plan.cluster_eps:
        _write_dispatch(out, plan, plan.svc_chain, plan.cluster_eps, seps)
    if plan.local_eps:
        _write_dispatch(out, plan, plan.svl_chain, plan.local_eps, seps)
    _write_endpoint_chains(out, plan, seps)
    return tuple(sorted(plan.policy_chains() | set(seps.values())))


# --- tail -----------------------------------------------------------------------------------------------


def _node_port_ips(node: NodeInfo) -> list[str] | None:
    """None when NodePorts answer on every local address (kube's nodePortAddresses.MatchAll)."""
    cidrs = [ipaddress.ip_network(c, strict=False) for c in node.node_port_addresses if ":" not in c]
    if not cidrs or any(c.prefixlen == 0 for c in cidrs):
        return None
    return [a for a in _v4(node.addresses) if any(ipaddress.ip_address(a) in c for c in cidrs)]


def _write_nodeports_jump(out: _Out) -> None:
    ips = _node_port_ips(out.node)
    if ips is None:
        out.nat(f"-A {KUBE_SERVICES} -m comment --comment {NODEPORTS_COMMENT} -m addrtype --dst-type LOCAL",
                "" if out.node.localhost_node_ports else "! -d 127.0.0.0/8", f"-j {KUBE_NODEPORTS}")
        return
    for ip in ips:
        if out.node.localhost_node_ports or not ipaddress.ip_address(ip).is_loopback:
            out.nat(f"-A {KUBE_SERVICES} -m comment --comment {NODEPORTS_COMMENT} -d {ip} -j {KUBE_NODEPORTS}")


def _write_forward(out: _Out) -> None:
    if not out.node.conntrack_tcp_liberal:
        out.filter(f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP")
    out.filter(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules"'
               f" -m mark --mark {out.mark}/{out.mark} -j ACCEPT")
    out.filter(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule"'
               " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")


def _write_deletions(out: _Out, previous: CompiledState | None, active: set[str]) -> tuple[str, ...]:
    stale = tuple(sorted(previous.owned() - active)) if previous else ()
    for chain in stale:
        out.nat_chain(chain)  # declaring flushes it, so `-X` cannot fail on leftover rules
        out.nat(f"-X {chain}")
    return stale


# --- memo (what an incremental compile reuses) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One service port as compiled for these very `info` and `endpoints` objects (see the module doc)."""

    info: model.ServicePortInfo
    endpoints: tuple[model.EndpointInfo, ...]
    plan: _Plan | None  # None: no IPv4 cluster IP, nothing to write
    policy: frozenset[str] = frozenset()  # plan.policy_chains()
    filter_lines: tuple[str, ...] = ()  # its top-level rules, in order
    nat_lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Memo:
    node: NodeInfo
    entries: Mapping[model.ServicePortName, _Entry]
    names: tuple[model.ServicePortName, ...]  # the snapshot's service ports in its own order
    order: tuple[model.ServicePortName, ...]  # the same, sorted


def _entry(info: model.ServicePortInfo, endpoints: tuple[model.EndpointInfo, ...], node: NodeInfo) -> _Entry:
    plan = _plan(info, endpoints, node.name)
    if plan is None:
        return _Entry(info, endpoints, None)
    lines = _Out(node, False)  # the top-level rules read only the plan
    _write_entry_rules(lines, plan)
    return _Entry(info, endpoints, plan, plan.policy_chains(), tuple(lines.filter_rules), tuple(lines.nat_rules))


def _prior_memo(previous: CompiledState | None, node: NodeInfo) -> _Memo | None:
    memo = previous.memo if previous is not None else None
    return memo if memo is not None and memo.node == node else None


def _order(services: Mapping[model.ServicePortName, object], memo: _Memo | None
           ) -> tuple[tuple[model.ServicePortName, ...], tuple[model.ServicePortName, ...]]:
    """(names in the snapshot's order, names sorted), the sort skipped while the set of names is the same."""
    names = tuple(services)
    if memo is not None and len(names) == len(memo.names) and (
            all(a is b or a == b for a, b in zip(names, memo.names, strict=True))
            or services.keys() == set(memo.names)):
        return names, memo.order
    return names, tuple(model.sorted_names(names))


def _entries(snapshot: model.Snapshot, node: NodeInfo, memo: _Memo | None
             ) -> tuple[_Memo, list[tuple[_Entry, bool]]]:
    """Every service port's entry in sorted order, and whether it was reused from `memo` (it is when its
    objects are the same)."""
    names, order = _order(snapshot.services, memo)
    prior = memo.entries if memo is not None else {}
    entries: dict[model.ServicePortName, _Entry] = {}
    found = []
    for name in order:
        info, endpoints = snapshot.services[name], snapshot.endpoints.get(name, ())
        entry = prior.get(name)
        if entry is not None and entry.info is info and entry.endpoints is endpoints:
            found.append((entry, True))
        else:
            entry = _entry(info, endpoints, node)
            found.append((entry, False))
        entries[name] = entry
    return _Memo(node, entries, names, order), found


# --- entry points ---------------------------------------------------------------------------------------


def _keep(entry: _Entry, reused: bool, previous: CompiledState | None,
          changed: set[model.ServicePortName] | None) -> tuple[str, ...] | None:
    """The previous chains of an unchanged service port, or None when its chains must be written."""
    name = entry.info.name
    if previous is None or changed is None or name in changed:
        return None
    prior = previous.service_chains.get(name)
    if prior is None:
        return None
    if reused:  # the previous compile wrote, or kept, `prior` for this very entry's plan
        return prior
    return prior if frozenset(c for c in prior if not c.startswith(SEP)) == entry.policy else None


def compile_rules(snapshot: model.Snapshot, node: NodeInfo, previous: CompiledState | None = None,
                  changed: set[model.ServicePortName] | None = None) -> Compiled:
    """Compile the snapshot; with `previous` and `changed`, a partial sync that leaves the chains of
    unchanged service ports out (`changed=None` with a previous state: a full sync that still deletes the
    previous state's stale chains). `previous` also lends its memo (see the module doc)."""
    prior = _prior_memo(previous, node)
    memo, entries = _entries(snapshot, node, prior)
    large = sum(len(e.endpoints) for e, _ in entries if e.plan is not None) > LARGE_CLUSTER_ENDPOINTS
    if previous is not None and (previous.node != node or previous.large_cluster != large):
        changed = None
    out = _Out(node, large)
    _write_static(out)
    kept: dict[model.ServicePortName, tuple[str, ...]] = {}
    rewritten: list[model.ServicePortName] = []
    for entry, reused in entries:
        if entry.plan is None:
            continue
        out.filter_rules.extend(entry.filter_lines)
        out.nat_rules.extend(entry.nat_lines)
        chains = _keep(entry, reused, previous, changed)
        if chains is None:
            chains = _write_service_chains(out, entry.plan)
            rewritten.append(entry.info.name)
        kept[entry.info.name] = chains
    active: set[str] = set().union(*kept.values())
    deleted = _write_deletions(out, previous, active)
    _write_nodeports_jump(out)
    _write_forward(out)
    state = CompiledState(node, large, kept, memo=memo)
    chains_now = frozenset(FILTER_CHAINS) | frozenset(NAT_CHAINS) | active
    full = previous is None or changed is None
    return Compiled(out.render(), chains_now, state, full, tuple(rewritten), deleted)


def jump_rules() -> list[list[str]]:
    """The hooks from the built-in chains into svcnet's top chains, as `["-t", table, chain, *rule]`, for an
    applier to check (`iptables -t T -C chain *rule`) and insert (`-I chain *rule`) after the first restore."""
    return [["-t", table, chain, *extra, "-m", "comment", "--comment", comment, "-j", target]
            for table, chain, target, comment, extra in _JUMPS]
