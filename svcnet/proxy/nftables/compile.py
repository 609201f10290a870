"""The pure compiler of the nftables proxy mode: a proxy Snapshot in, one `nft -f` transaction out, with
kube-proxy's nftables design (pkg/proxy/nftables/proxier.go) in a table of svcnet's own, `table ip svcnet`.

Theory of operation. Service dispatch costs one lookup per packet however many services there are: `services` does
`ip daddr . meta l4proto . th dport vmap @service-ips` (ClusterIPs, external and LB IPs) and, for destinations
that are local addresses (`fib daddr type local`, or `@nodeport-ips` when NodePorts are limited to some CIDRs),
`meta l4proto . th dport vmap @service-nodeports`. The verdicts `goto` per service port chains named like kube's,
`<prefix><8-char base32 sha256>-<ns>/<name>/<proto>/<port>`: `service-` (endpoints for Cluster policy), `local-`
(Local policy) and `external-` (NodePort / external / LB traffic: masquerade or the Local-policy short-circuits).
A policy chain picks an endpoint and DNATs to it in the same chain, one rule per endpoint, as the iptables mode's
statistic rules do: `numgen random mod N == 0 ... dnat to ip:port`, then `mod N-1`, ..., the last one
unconditional (each endpoint 1/N). ClientIP affinity adds, per endpoint, a dynamic set
`affinity-<HASH-ns/svc/proto/port__ip/port>` of source addresses with the affinity timeout: a source found in one
goes (again) to that endpoint, and every DNAT records (`update`) the source in the chosen endpoint's set.
Masquerading marks packets (`mark set mark or 0x4000`) and `masquerading` (postrouting) masquerades marked ones;
it marks hairpin traffic (an endpoint reaching itself through a service) first: `ct status dnat ip saddr . ip
daddr @hairpin-endpoints`, which holds `ip . ip` for every endpoint on this node (or on no known node): one that
reaches itself runs here. Services without usable endpoints get elements in `no-endpoint-services` /
`no-endpoint-nodeports`, looked up in `endpoints-check` from the filter hooks for new connections: `goto
reject-chain` (`reject`) with no endpoints at all, `drop` with a Local policy and no local endpoints.

Why not kube's per-endpoint chains and `numgen ... vmap { }`: every rule or verdict a transaction adds makes
the kernel walk, at commit, every chain reachable from each base chain (nf_tables_validate), and every
anonymous set a rule creates scans all sets of the table (nf_tables_newset). At 10,000 services x 5 endpoints
kube's layout (60,000 chains, 10,000 anonymous maps) cost ~72 ms of kernel time per one-endpoint change, this
one ~25 ms (and a whole-table `nft -f` 95 s -> 2.5 s). The price: choosing among N endpoints takes up to N
rules, for the first packet of a connection only (nat chains see no other), as in the iptables mode.

Transactions. `build_table` computes the whole desired table as data (`Table`); `render` turns it into one
`nft -f` transaction. Without a previous table (first sync, or after a failure) the transaction replaces the
table wholesale: `add table` ; `delete table` ; `table ip svcnet { chains ... sets and maps }` -- chains first,
so that `WholeTable` can hand out the text of each service port's chains as soon as it is built (the maps'
elements are known at the end) and `nft` parses them while the rest is compiled. Given the table the previous
sync left, it rather does `add table` ; `flush table` (every chain emptied), flushes the static maps and sets,
deletes the chains, maps and sets no longer wanted (and sets whose declaration changed), then declares the whole
table again -- so the affinity sets keep the source addresses they learnt (kube's behaviour) while every element
mentioning a removed service address is gone (and what partial syncs left over is deleted). Partial syncs rather
send the difference (`diff.render_partial`) between two tables, the new one computed by `update_table`, which
redoes only the changed service ports (`port_rules`) and keeps every other port's objects as they were.

Invariants:
- Pure: no I/O, no clock, no randomness; the same input gives byte-identical text. `WholeTable(snapshot,
  node)`'s pieces join to `render(build_table(snapshot, node))`, and its `table` is that table.
- Deterministic order: service ports sorted by ServicePortName, endpoints by (IP, port); map keys are
  unique (the first service port claiming an address . protocol . port wins).
- Every chain a rule or element jumps to is declared in the same transaction.
- IPv4 only (`table ip`): IPv6 cluster IPs, external IPs and endpoints are ignored.
- `update_table(previous, snapshot, node, changed)` equals `build_table(snapshot, node)` as data whenever
  `changed` holds every service port that differs between `previous`'s snapshot and `snapshot`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from operator import add, attrgetter

from svcnet.nogc import collections_paused
from svcnet.proxy import categorize, model
from svcnet.proxy.iptables.compile import NodeInfo
from svcnet.proxy.nftables.patched import Edit

FAMILY, TABLE = "ip", "svcnet"
SERVICES, ENDPOINTS_CHECK, REJECT_CHAIN = "services", "endpoints-check", "reject-chain"
MASQUERADING, HAIRPIN = "masquerading", "hairpin-endpoints"
SERVICE_IPS, SERVICE_NODEPORTS, NODEPORT_IPS = "service-ips", "service-nodeports", "nodeport-ips"
NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS = "no-endpoint-services", "no-endpoint-nodeports"
SERVICE, LOCAL, EXTERNAL, AFFINITY = "service-", "local-", "external-", "affinity-"
NAME_BASE_MAX = 256 - 16  # nft's name limit less the longest prefix, as kube's chainNameBaseLengthMax
REJECT = f"goto {REJECT_CHAIN}"

_ADDR_KEY = "ipv4_addr . inet_proto . inet_service : verdict"
_PORT_KEY = "inet_proto . inet_service : verdict"
# (name, type, hook, priority): filter chains run before DNAT (kube's dstnat-10) to see service addresses
_BASE_CHAINS = (
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
# (from base chain, rule): `reject` is only allowed in the input, forward and output hooks
_JUMPS = (
    ("filter-input", f"ct state new jump {ENDPOINTS_CHECK}"),
    ("filter-forward", f"ct state new jump {ENDPOINTS_CHECK}"),
    ("filter-output", f"ct state new jump {ENDPOINTS_CHECK}"),
    ("nat-prerouting", f"jump {SERVICES}"),
    ("nat-output", f"jump {SERVICES}"),
    ("nat-postrouting", f"jump {MASQUERADING}"),
)


# --- the table as data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NftChain:
    rules: tuple[str, ...] = ()
    spec: str = ""  # base chains: "type nat hook output priority -100; policy accept;"
    comment: str = ""


@dataclass(frozen=True, slots=True)
class NftSet:
    keyword: str  # "set" | "map"
    spec: tuple[str, ...]  # type, flags, timeout and comment lines
    elements: Mapping[str, str] = field(default_factory=dict)  # key -> "key [comment "..."] [: verdict]"
    dynamic: bool = False  # elements are learnt by the kernel (affinity): kept across syncs, never written
    keep_stale: bool = False  # an element that goes away does no harm left in the kernel until a full sync


@dataclass(frozen=True, slots=True)
class PortRules:
    """What one service port puts in the table: its chains, its affinity sets and its map elements."""

    chains: Mapping[str, NftChain]
    sets: Mapping[str, NftSet]
    elements: Mapping[tuple[str, str], str]  # (map, key) -> element text


@dataclass(frozen=True, slots=True)
class Table:
    """Everything svcnet wants in `table ip svcnet` (`sets` and `chains`, in declaration order), with how it
    was put together so that `update_table` can redo only the service ports that changed: `ports` holds each
    service port's contribution, `claims` the service ports (sorted) that want each map key -- the first wins.
    `leftover_chains` and `leftover_sets` are what partial syncs left in the kernel for a later transaction to
    delete (`diff`): chains emptied and affinity sets (as they were declared), referenced by nothing; a desired
    table has none. `update_table` hands on its mappings patched, not copied (`patched.Patched`): read them,
    never modify them."""

    sets: Mapping[str, NftSet]
    chains: Mapping[str, NftChain]
    node: NodeInfo | None = None
    ports: Mapping[model.ServicePortName, PortRules] = field(default_factory=dict)
    claims: Mapping[tuple[str, str], tuple[model.ServicePortName, ...]] = field(default_factory=dict)
    static: PortRules | None = None  # the part that depends on the node only
    leftover_chains: frozenset[str] = frozenset()
    leftover_sets: Mapping[str, NftSet] = field(default_factory=dict)


# --- names ----------------------------------------------------------------------------------------------


# RFC 4648's base32 alphabet, two characters (10 bits) at a time: base64.b32encode is pure Python, ~8x slower
_B32_PAIRS = [a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"]


@lru_cache(maxsize=1 << 17)
def hash_and_truncate(name: str) -> str:
    """kube's hashAndTruncate: 8 characters of base32(sha256(name)), "-", the name (cut to fit with "...")."""
    head = int.from_bytes(hashlib.sha256(name.encode()).digest()[:5])  # 40 bits: 8 base32 characters
    pairs = _B32_PAIRS[head >> 30], _B32_PAIRS[head >> 20 & 1023], _B32_PAIRS[head >> 10 & 1023], _B32_PAIRS[head & 1023]
    name = "".join(pairs) + "-" + name
    return name if len(name) <= NAME_BASE_MAX else name[:NAME_BASE_MAX - 3] + "..."


def service_name_base(name: model.ServicePortName) -> str:
    """`HASH-ns/svc/proto/port`, e.g. `ULMVA6XW-ns1/svc1/tcp/p80` (kube's servicePortChainNameBase)."""
    return hash_and_truncate(f"{name.namespace}/{name.name}/{name.protocol.lower()}/{name.port}")


def endpoint_name_base(name: model.ServicePortName, endpoint: model.EndpointInfo) -> str:
    """`HASH-ns/svc/proto/port__ip/port` (kube's servicePortEndpointChainNameBase)."""
    return hash_and_truncate(f"{name.namespace}/{name.name}/{name.protocol.lower()}/{name.port}"
                             f"__{endpoint.ip.replace(':', '.')}/{endpoint.port}")


def quote(text: str) -> str:
    """`text` as an nft string (a double quote inside becomes a single one)."""
    return '"' + text.replace('"', "'") + '"'


_v4 = categorize.v4


# --- per service port plan ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Port(categorize.PortEndpoints):
    """A categorised service port and the base its chains are named by."""

    base: str

    @property
    def internal_chain(self) -> str:
        return (LOCAL if self.info.internal_local else SERVICE) + self.base

    @property
    def external_policy_chain(self) -> str:
        return (LOCAL if self.external_local else SERVICE) + self.base

    @property
    def external_chain(self) -> str:
        return EXTERNAL + self.base

    def endpoint_bases(self) -> dict[model.EndpointInfo, str]:
        return {ep: endpoint_name_base(self.info.name, ep) for ep in self.reachable}


def _port(info: model.ServicePortInfo, endpoints: Sequence[model.EndpointInfo], node: str) -> _Port | None:
    return categorize.categorize(info, endpoints, node, _Port, service_name_base(info.name))


# --- building -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _NodeText:
    """Rule fragments that depend on the node only, made once per node rather than once per service port."""

    bits: str  # the masquerade mark, "0x004000"
    mark: str  # the statement that marks a packet for masquerading (kube's `jump mark-for-masquerade`, inlined)
    masquerade: str  # what follows `ip daddr X tcp dport N` in kube's off-cluster masquerade rule ("": none)
    local_nodes: tuple[str, ...]  # endpoints on these nodes run here ("": on no known node, so assume so)


@lru_cache(maxsize=16)
def _node_text(node: NodeInfo) -> _NodeText:
    bits = f"{node.masquerade_mark:#08x}"
    mark = f"mark set mark or {bits}"
    if node.masquerade_all:
        masquerade = f" {mark}"
    else:
        masquerade = f" ip saddr != {node.cluster_cidr} {mark}" if node.cluster_cidr else ""
    return _NodeText(bits, mark, masquerade, ("", node.name))


class _Builder:
    """Collects one part of the table: the static part, or one service port's contribution."""

    __slots__ = ("node", "text", "chains", "sets", "elements")

    def __init__(self, node: NodeInfo) -> None:
        self.node, self.text = node, _node_text(node)
        self.chains: dict[str, NftChain] = {}
        self.sets: dict[str, NftSet] = {}
        self.elements: dict[tuple[str, str], str] = {}  # (map, key) -> "key [comment] : verdict"

    def chain(self, name: str, *rules: str, spec: str = "", comment: str = "") -> None:
        self.chains[name] = NftChain(tuple(filter(None, rules)), spec, comment)

    def declare(self, name: str, keyword: str, *spec: str, dynamic: bool = False, keep_stale: bool = False) -> None:
        self.sets[name] = NftSet(keyword, spec, dynamic=dynamic, keep_stale=keep_stale)

    def element(self, name: str, key: str, verdict: str = "", comment: str = "") -> None:
        note = f" comment {quote(comment)}" if comment else ""
        self.elements.setdefault((name, key), key + note + (f" : {verdict}" if verdict else ""))

    def static_sets(self) -> dict[str, NftSet]:
        own: dict[str, dict[str, str]] = {name: {} for name in self.sets}
        for (name, key), text in self.elements.items():
            own[name][key] = text
        return {name: replace(s, elements=own[name]) for name, s in self.sets.items()}

    def port_rules(self) -> PortRules:
        return PortRules(self.chains, self.sets, self.elements)


def _node_port_ips(node: NodeInfo) -> list[str] | None:
    """None when NodePorts answer on every local address (kube's nodePortAddresses.MatchAll)."""
    cidrs = [ipaddress.ip_network(c, strict=False) for c in node.node_port_addresses if ":" not in c]
    if not cidrs or any(c.prefixlen == 0 for c in cidrs):
        return None
    return [a for a in _v4(node.addresses) if any(ipaddress.ip_address(a) in c for c in cidrs)
            and not ipaddress.ip_address(a).is_loopback]


def _write_static(out: _Builder) -> None:
    node, bits = out.node, out.text.bits
    for name, kind, hook, priority in _BASE_CHAINS:
        out.chain(name, *(rule for chain, rule in _JUMPS if chain == name),
                  spec=f"type {kind} hook {hook} priority {priority}; policy accept;")
    out.declare(SERVICE_IPS, "map", f"type {_ADDR_KEY}",
                'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"')
    out.declare(SERVICE_NODEPORTS, "map", f"type {_PORT_KEY}", 'comment "NodePort traffic"')
    out.declare(NO_ENDPOINT_SERVICES, "map", f"type {_ADDR_KEY}",
                'comment "vmap to drop or reject packets to services with no endpoints"')
    out.declare(NO_ENDPOINT_NODEPORTS, "map", f"type {_PORT_KEY}",
                'comment "vmap to drop or reject packets to service nodeports with no endpoints"')
    ips = _node_port_ips(node)
    if ips is None:
        local = "fib daddr type local" + ("" if node.localhost_node_ports else " ip daddr != 127.0.0.0/8")
    else:
        out.declare(NODEPORT_IPS, "set", "type ipv4_addr", 'comment "IPs that accept NodePort traffic"')
        for ip in ips:
            out.element(NODEPORT_IPS, ip)
        local = f"ip daddr @{NODEPORT_IPS}"
    out.chain(SERVICES, f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
              f"{local} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")
    out.chain(ENDPOINTS_CHECK, f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}",
              f"{local} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")
    out.chain(REJECT_CHAIN, "reject", comment="helper for @no-endpoint-services / @no-endpoint-nodeports")
    # a stale element (an address no endpoint has any more) can only match traffic that is hairpin anyway
    out.declare(HAIRPIN, "set", "type ipv4_addr . ipv4_addr",
                'comment "endpoint . endpoint: a connection DNATed back to its source"', keep_stale=True)
    out.chain(MASQUERADING, f"ct status dnat ip saddr . ip daddr @{HAIRPIN} {out.text.mark} comment \"hairpin\"",
              f"mark and {bits} == 0 return", f"mark set mark xor {bits}",
              "masquerade fully-random" if node.random_fully else "masquerade")


def _write_elements(out: _Builder, port: _Port) -> None:
    """The port's map elements: where its addresses and NodePort go, or what happens to traffic that finds no
    endpoint (`reject` with none at all, `drop` with a Local policy and none on this node)."""
    key = f"{port.proto} . {port.info.port}"
    if port.has_internal:
        out.element(SERVICE_IPS, f"{port.cluster_ip} . {key}", "goto " + port.internal_chain)
    else:
        out.element(NO_ENDPOINT_SERVICES, f"{port.cluster_ip} . {key}", "drop" if port.has_endpoints else REJECT,
                    port.name)
    if not port.accessible:
        return
    to_chain = "goto " + port.external_chain if port.has_endpoints else ""
    no_endpoint = "" if port.has_external else "drop" if port.has_endpoints else REJECT
    for address in (*port.external_ips, *port.lb_ips):
        if to_chain:
            out.element(SERVICE_IPS, f"{address} . {key}", to_chain)
        if no_endpoint:
            out.element(NO_ENDPOINT_SERVICES, f"{address} . {key}", no_endpoint, port.name)
    if port.info.node_port:
        node_key = f"{port.proto} . {port.info.node_port}"
        if to_chain:
            out.element(SERVICE_NODEPORTS, node_key, to_chain)
        if no_endpoint:
            out.element(NO_ENDPOINT_NODEPORTS, node_key, no_endpoint, port.name)


def _external_rules(out: _Builder, port: _Port) -> list[str]:
    service, mark = SERVICE + port.base, out.text.mark
    if not port.external_local:
        rules = [mark]
    else:
        rules = [f"ip saddr {out.node.cluster_cidr} goto {service} comment \"short-circuit pod traffic\""
                 if out.node.cluster_cidr else "",
                 f"fib saddr type local {mark} comment \"masquerade local traffic\"",
                 f"fib saddr type local goto {service} comment \"short-circuit local traffic\""]
    return [*rules, f"goto {port.external_policy_chain}" if port.has_external else ""]


@lru_cache(maxsize=1024)
def _picks(count: int, proto: str, then: str = "") -> tuple[str, ...]:
    """How each of `count` DNAT rules starts, up to `then`: a random pick among those left (1/N, 1/(N-1), ...),
    the last one unconditional (it gets whatever the others left)."""
    head = f"meta l4proto {proto} {then}"
    return (*(f"numgen random mod {count - i} == 0 {head}" for i in range(count - 1)), head)


_ADDRESS = attrgetter("address")


def _dispatch_rules(port: _Port, endpoints: Sequence[model.EndpointInfo],
                    bases: Mapping[model.EndpointInfo, str]) -> list[str]:
    """kube's writeServiceToEndpointRules with each endpoint chain folded into the rules that choose it:
    affinity lookups first, then one random pick per endpoint (1/N, 1/(N-1), ..., the last unconditional)."""
    if port.info.affinity_timeout is None:
        return list(map(add, _picks(len(endpoints), port.proto, "dnat to "), map(_ADDRESS, endpoints)))
    picks = _picks(len(endpoints), port.proto)
    dnats = [f"update @{AFFINITY}{bases[ep]} {{ ip saddr }} dnat to {ep.address}" for ep in endpoints]
    head = picks[-1]
    return [*(f"ip saddr @{AFFINITY}{bases[ep]} {head}{dnat}" for ep, dnat in zip(endpoints, dnats, strict=True)),
            *(pick + dnat for pick, dnat in zip(picks, dnats, strict=True))]


def _write_service_chains(out: _Builder, port: _Port) -> None:
    timeout = port.info.affinity_timeout
    bases = port.endpoint_bases() if timeout is not None else {}
    # kube's off-cluster masquerade, first in the internal chain (every source with masquerade_all)
    masquerade = (f"ip daddr {port.cluster_ip} {port.proto} dport {port.info.port}{out.text.masquerade}"
                  if out.text.masquerade and port.has_internal else "")
    internal_local = port.info.internal_local
    if port.cluster_eps:
        out.chain(SERVICE + port.base, "" if internal_local else masquerade,
                  *_dispatch_rules(port, port.cluster_eps, bases))
    if port.local_eps:
        out.chain(LOCAL + port.base, masquerade if internal_local else "",
                  *_dispatch_rules(port, port.local_eps, bases))
    if port.has_endpoints and port.accessible:
        out.chain(port.external_chain, *_external_rules(out, port))
    for base in bases.values():
        out.declare(AFFINITY + base, "set", "type ipv4_addr", "flags dynamic,timeout", f"timeout {timeout}s",
                    dynamic=True)
    local, elements = out.text.local_nodes, out.elements
    for ep in port.reachable:
        if ep.node_name in local:  # a pod reaching itself is on this node (unknown: assume so)
            key = f"{ep.ip} . {ep.ip}"
            elements.setdefault((HAIRPIN, key), key)


def port_rules(info: model.ServicePortInfo, endpoints: Sequence[model.EndpointInfo],
               node: NodeInfo) -> PortRules | None:
    """One service port's chains, affinity sets and map elements (None: nothing, e.g. no IPv4 ClusterIP)."""
    port = _port(info, endpoints, node.name)
    if port is None:
        return None
    out = _Builder(node)
    _write_elements(out, port)
    _write_service_chains(out, port)
    return out.port_rules()


def _static(node: NodeInfo) -> _Builder:
    out = _Builder(node)
    _write_static(out)
    return out


class _Assembly:
    """A table put together one service port at a time, in sorted order (the first claimant of a map key wins)."""

    def __init__(self, node: NodeInfo) -> None:
        self.node, self.static = node, _static(node)
        self.sets, self.chains = self.static.static_sets(), dict(self.static.chains)
        self.elements = {name: dict(s.elements) for name, s in self.sets.items()}
        self.ports: dict[model.ServicePortName, PortRules] = {}
        self.claims: dict[tuple[str, str], tuple[model.ServicePortName, ...]] = {}

    def add(self, snapshot: model.Snapshot, name: model.ServicePortName) -> PortRules | None:
        rules = port_rules(snapshot.services[name], snapshot.endpoints.get(name, ()), self.node)
        if rules is None:
            return None
        self.ports[name] = rules
        self.chains.update(rules.chains)
        if rules.sets:
            self.sets.update(rules.sets)
        claims, elements = self.claims, self.elements
        for pair, text in rules.elements.items():
            claimants = claims.get(pair)
            claims[pair] = (name,) if claimants is None else (*claimants, name)
            elements[pair[0]].setdefault(pair[1], text)
        return rules

    def table(self) -> Table:
        sets = self.sets
        for map_name, own in self.elements.items():
            if own:
                sets[map_name] = replace(sets[map_name], elements=own)
        static = PortRules(self.static.chains, self.static.static_sets(), self.static.elements)
        return Table(sets, self.chains, self.node, self.ports, self.claims, static)


def build_table(snapshot: model.Snapshot, node: NodeInfo) -> Table:
    """The whole desired table for this node: the static part, then each service port in sorted order."""
    with collections_paused():  # tens of thousands of small objects, all kept
        assembly = _Assembly(node)
        for name in model.sorted_names(snapshot.services):
            assembly.add(snapshot, name)
        return assembly.table()


class WholeTable:
    """The wholesale-replace transaction of `build_table(snapshot, node)` (the text `render(table)` gives),
    produced a piece at a time while the table is being built, so that `nft` parses the first chains while the
    last are compiled (`nft -f /dev/fd/0` reads a pipe as it fills; `nft -f -` reads it all first). Iterate
    it once, to the end; `table` is then the table built."""

    PORTS_PER_PIECE = 64  # ~40 KB of text at 5 endpoints each

    def __init__(self, snapshot: model.Snapshot, node: NodeInfo) -> None:
        self.snapshot, self.node = snapshot, node
        self.table: Table | None = None

    def __iter__(self) -> Iterator[str]:
        with collections_paused():
            assembly = _Assembly(self.node)
            lines = _head(None)
            for chain_name, chain in assembly.chains.items():
                lines += render_chain(chain_name, chain)
            written = 0
            for name in model.sorted_names(self.snapshot.services):
                rules = assembly.add(self.snapshot, name)
                if rules is None:
                    continue
                for chain_name, chain in rules.chains.items():
                    lines += render_chain(chain_name, chain)
                written += 1
                if written % self.PORTS_PER_PIECE == 0:
                    yield "\n".join(lines) + "\n"
                    lines = []
            self.table = assembly.table()
        yield "\n".join([*lines, *_tail(self.table)]) + "\n"


def update_table(previous: Table, snapshot: model.Snapshot, node: NodeInfo,
                 changed: Iterable[model.ServicePortName]) -> Table:
    """`build_table(snapshot, node)` (equal as data, not in declaration order), computed from `previous` by
    redoing only the `changed` service ports; every other port's chains and sets are the same objects, and
    the table's mappings are `previous`'s patched (`patched.Edit`), not copied."""
    if previous.node != node or previous.static is None:
        return build_table(snapshot, node)
    ports, chains, sets, claims = Edit(previous.ports), Edit(previous.chains), Edit(previous.sets), \
        Edit(previous.claims)
    touched: set[tuple[str, str]] = set()
    for name in sorted(set(changed)):
        old = ports.get(name)
        if old is not None:
            for chain in old.chains:
                del chains[chain]
            for set_name in old.sets:
                del sets[set_name]
            for key in old.elements:
                claims[key] = tuple(n for n in claims[key] if n != name)
            touched.update(old.elements)
        info = snapshot.services.get(name)
        new = port_rules(info, snapshot.endpoints.get(name, ()), node) if info is not None else None
        if new is None:
            ports.pop(name, None)
        else:
            ports[name] = new  # a port still there keeps its place: the diff walks both tables side by side
            chains.update(new.chains)
            sets.update(new.sets)
            for key in new.elements:
                claims[key] = tuple(sorted((*claims.get(key, ()), name)))
            touched.update(new.elements)
    _settle_claims(touched, ports, sets, claims)
    return Table(sets.result(), chains.result(), node, ports.result(), claims.result(), previous.static)


def _settle_claims(touched: Iterable[tuple[str, str]], ports: Mapping[model.ServicePortName, PortRules],
                   sets: MutableMapping[str, NftSet],
                   claims: MutableMapping[tuple[str, str], tuple[model.ServicePortName, ...]]) -> None:
    """Give each touched map key the element of its first claimant, or remove it when nobody claims it (a
    map whose elements stay as they were stays the very same object)."""
    maps: dict[str, Edit[str, str]] = {}
    for map_name, key in sorted(touched):
        elements = maps.get(map_name)
        if elements is None:
            elements = maps[map_name] = Edit(sets[map_name].elements)
        owners = claims.get((map_name, key))
        if owners:
            text = ports[owners[0]].elements[(map_name, key)]
            if elements.get(key) != text:
                elements[key] = text
        else:
            elements.pop(key, None)
            claims.pop((map_name, key), None)
    for map_name, elements in maps.items():
        if elements.changes:
            sets[map_name] = replace(sets[map_name], elements=elements.result())


# --- rendering ------------------------------------------------------------------------------------------


def render_set(name: str, s: NftSet) -> list[str]:
    lines = [f"\t{s.keyword} {name} {{", *(f"\t\t{line}" for line in s.spec)]
    if s.elements:
        lines.append("\t\telements = { " + ",\n\t\t\t     ".join(s.elements.values()) + " }")
    return [*lines, "\t}"]


def render_chain(name: str, c: NftChain) -> list[str]:
    head = [f"\t\t{c.spec}"] if c.spec else []
    head += [f"\t\tcomment {quote(c.comment)}"] if c.comment else []
    return [f"\tchain {name} {{", *head, *(f"\t\t{rule}" for rule in c.rules), "\t}"]


def _head(cleanup: Sequence[str] | None) -> list[str]:
    """Up to the chains: `add table`, then `delete table` (a wholesale replace: no `cleanup`) or `flush table`
    and the cleanup of an in-place rewrite (`_cleanup`)."""
    where = f"{FAMILY} {TABLE}"
    lines = [f"add table {where}", f"delete table {where}"] if cleanup is None else \
        [f"add table {where}", f"flush table {where}", *cleanup]
    return [*lines, f"table {where} {{", '\tcomment "rules for svcnet"']


def _tail(table: Table) -> list[str]:
    """After the chains: the sets and maps with their elements (known once every service port is in)."""
    lines = []
    for name, s in table.sets.items():
        lines += render_set(name, s)
    return [*lines, "}"]


def _cleanup(table: Table, previous: Table) -> list[str]:
    """After `flush table` (rules gone, elements not): empty what is rewritten, delete what is not wanted.
    Each object is first `add`ed (a no-op when it exists), so a table that drifted from `previous` (an object
    removed behind svcnet's back) does not fail the transaction."""
    where = f"{FAMILY} {TABLE}"
    lines = []
    for name, old in previous.sets.items():
        new = table.sets.get(name)
        stale = new is None or (new.keyword, new.spec) != (old.keyword, old.spec)
        if stale or not old.dynamic:
            lines.append(f"add {old.keyword} {where} {name} {{ {'; '.join(old.spec)}; }}")
            lines.append(f"{'delete' if stale else 'flush'} {old.keyword} {where} {name}")
    for name, chain in previous.chains.items():
        current = table.chains.get(name)
        if current is None or current.spec != chain.spec:
            lines += [f"add chain {where} {name}", f"delete chain {where} {name}"]
    for name in sorted(name for name in previous.leftover_chains if name not in table.chains):
        lines += [f"add chain {where} {name}", f"delete chain {where} {name}"]
    for name, gone in sorted(previous.leftover_sets.items()):  # wanted again or not: a set comes back empty
        lines.append(f"add {gone.keyword} {where} {name} {{ {'; '.join(gone.spec)}; }}")
        lines.append(f"delete {gone.keyword} {where} {name}")
    return lines


def render(table: Table, previous: Table | None = None) -> str:
    """One `nft -f` transaction: a wholesale replace without `previous`, else an in-place rewrite of it. The
    chains come before the sets (one `table` block: `nft` declares its sets before it adds any rule), so
    that a wholesale replace can be written while the table is built (`WholeTable`)."""
    lines = _head(None if previous is None else _cleanup(table, previous))
    for name, chain in table.chains.items():
        lines += render_chain(name, chain)
    return "\n".join([*lines, *_tail(table)]) + "\n"


def compile_ruleset(snapshot: model.Snapshot, node: NodeInfo, previous: Table | None = None) -> str:
    """The `nft -f` input for this snapshot (see `render` for what `previous` changes)."""
    return render(build_table(snapshot, node), previous)


def delete_ruleset() -> str:
    """Removes svcnet's table, whether or not it exists."""
    return f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"
