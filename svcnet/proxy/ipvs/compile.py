"""The pure compiler of the ipvs proxy mode: a proxy Snapshot in, the desired kernel state out -- IPVS virtual
servers with their real servers, the addresses bound to the dummy interface `kube-ipvs0`, the members of the
ipsets, and the (small, fixed-size) iptables rules that match those ipsets -- laid out as kube-proxy's ipvs
mode does (pkg/proxy/ipvs: proxier.go, ipset.go) so that people who know it can read the result.

Theory of operation. Every service port gets one virtual server per address it answers on: each ClusterIP,
external IP and load-balancer IP at the service port (those addresses are bound to `kube-ipvs0`, so the node
treats them as local and IPVS sees the packets in LOCAL_IN), and each non-loopback node address at the
NodePort. The scheduler is the node's (`rr` by default); ClientIP affinity is IPVS persistence with the
affinity timeout. Real servers are the usable endpoints (`model.usable`: Cluster or Local policy, ready else
serving-and-terminating), each with weight 1. Masquerading needs no per-service rule: the ipsets name what is
a service address (KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER, KUBE-NODE-PORT-TCP/UDP), which
endpoint talks to itself through a service (KUBE-LOOP-BACK, hairpin) and every address IPVS answers on
(KUBE-IPVS-IPS); a constant set of rules marks such traffic for SNAT.

Invariants:
- Pure: no I/O, no clock, no randomness; the same input gives equal output and byte-identical rule text.
- IPv4 only (as the iptables mode): IPv6 addresses and endpoints are ignored.
- Every ipset is always present (possibly empty), so the rules never name a missing set; rules that match a
  set which kube-proxy writes only when non-empty are written only then.
- Deterministic order: virtual servers by (protocol, address, port), real servers by (address, port).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from svcnet.proxy import categorize, model
from svcnet.proxy.ipvs.detect import SCHEDULERS

DUMMY_DEVICE = "kube-ipvs0"
F_PERSISTENT = 0x1  # IP_VS_SVC_F_PERSISTENT
PERSISTENT_NETMASK = "255.255.255.255"
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_NODE_PORT = "KUBE-NODE-PORT"
KUBE_LOAD_BALANCER = "KUBE-LOAD-BALANCER"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_IPVS_FILTER = "KUBE-IPVS-FILTER"
NAT_CHAINS = (KUBE_SERVICES, KUBE_POSTROUTING, KUBE_NODE_PORT, KUBE_LOAD_BALANCER, KUBE_MARK_MASQ)
FILTER_CHAINS = (KUBE_FORWARD, KUBE_NODE_PORT, KUBE_IPVS_FILTER)


@dataclass(frozen=True, slots=True)
class IpSetSpec:
    name: str
    kind: str  # ipset type
    comment: str


CLUSTER_IP = IpSetSpec("KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose")
LOOP_BACK = IpSetSpec("KUBE-LOOP-BACK", "hash:ip,port,ip",
                      "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose")
EXTERNAL_IP = IpSetSpec("KUBE-EXTERNAL-IP", "hash:ip,port",
                        "Kubernetes service external ip + port for masquerade and filter purpose")
EXTERNAL_IP_LOCAL = IpSetSpec("KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port",
                              "Kubernetes service external ip + port with externalTrafficPolicy=local")
LOAD_BALANCER = IpSetSpec("KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal")
LOAD_BALANCER_LOCAL = IpSetSpec("KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port",
                                "Kubernetes service load balancer ip + port with externalTrafficPolicy=local")
NODE_PORT = {p: IpSetSpec(f"KUBE-NODE-PORT-{p}", "bitmap:port", f"Kubernetes nodeport {p} port for masquerade "
                          "purpose") for p in ("TCP", "UDP")}
NODE_PORT_LOCAL = {p: IpSetSpec(f"KUBE-NODE-PORT-LOCAL-{p}", "bitmap:port", f"Kubernetes nodeport {p} port with "
                                "externalTrafficPolicy=local") for p in ("TCP", "UDP")}
HEALTH_CHECK_NODE_PORT = IpSetSpec("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port")
IPVS_IPS = IpSetSpec("KUBE-IPVS-IPS", "hash:ip", "IPVS service addresses")
IPSETS = (CLUSTER_IP, LOOP_BACK, EXTERNAL_IP, EXTERNAL_IP_LOCAL, LOAD_BALANCER, LOAD_BALANCER_LOCAL,
          NODE_PORT["TCP"], NODE_PORT["UDP"], NODE_PORT_LOCAL["TCP"], NODE_PORT_LOCAL["UDP"],
          HEALTH_CHECK_NODE_PORT, IPVS_IPS)

# (set, table, from chain, to target, match type, protocol): kube's ipsetWithIptablesChain, written when non-empty
_SET_RULES: tuple[tuple[IpSetSpec, str, str, str, str, str], ...] = (
    (LOOP_BACK, "nat", KUBE_POSTROUTING, "MASQUERADE", "dst,dst,src", ""),
    (LOAD_BALANCER, "nat", KUBE_SERVICES, KUBE_LOAD_BALANCER, "dst,dst", ""),
    (LOAD_BALANCER_LOCAL, "nat", KUBE_LOAD_BALANCER, "RETURN", "dst,dst", ""),
    (NODE_PORT_LOCAL["TCP"], "nat", KUBE_NODE_PORT, "RETURN", "dst", "tcp"),
    (NODE_PORT["TCP"], "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "tcp"),
    (NODE_PORT_LOCAL["UDP"], "nat", KUBE_NODE_PORT, "RETURN", "dst", "udp"),
    (NODE_PORT["UDP"], "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "udp"),
    (HEALTH_CHECK_NODE_PORT, "filter", KUBE_NODE_PORT, "ACCEPT", "dst", ""),
)
_JUMPS: tuple[tuple[str, str, str, str], ...] = (
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    ("filter", "INPUT", KUBE_NODE_PORT, "kubernetes health check rules"),
    ("filter", "INPUT", KUBE_IPVS_FILTER, "kubernetes ipvs access filter"),
)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What the compiler needs to know about the node it compiles for."""

    name: str
    addresses: tuple[str, ...] = ()  # the node's own IPs: NodePort virtual servers
    cluster_cidr: str = ""  # the pod range: traffic from outside it to a ClusterIP is masqueraded
    scheduler: str = "rr"
    masquerade_mark: int = 0x4000
    masquerade_all: bool = False

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"ipvs mode: unknown scheduler {self.scheduler!r} (one of {', '.join(SCHEDULERS)})")


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """What identifies an IPVS virtual server."""

    protocol: str  # TCP | UDP | SCTP
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}:{self.port}"


@dataclass(frozen=True, slots=True, order=True)
class RealServer:
    address: str
    port: int
    weight: int = 1

    @property
    def key(self) -> tuple[str, int]:
        return self.address, self.port


@dataclass(frozen=True, slots=True)
class VirtualService:
    key: ServiceKey
    scheduler: str
    persistent: int | None  # ClientIP affinity timeout in seconds
    dests: tuple[RealServer, ...]
    service: str = ""  # namespace/name:port, for listings

    @property
    def flags(self) -> int:
        return F_PERSISTENT if self.persistent is not None else 0

    @property
    def timeout(self) -> int:
        return self.persistent or 0


@dataclass(frozen=True, slots=True)
class Desired:
    services: Mapping[ServiceKey, VirtualService]
    addresses: frozenset[str]  # bound to kube-ipvs0 (/32 each)
    ipsets: Mapping[str, frozenset[str]]  # set name -> members in `ipset add` syntax; every set of IPSETS
    rules: str  # iptables-restore input for `--noflush`: the KUBE-* chains of nat and filter, rewritten whole

    def ipset_lines(self) -> list[str]:
        """The whole desired ipset content as `ipset restore` lines (for golden files and fresh loads)."""
        lines = [_create_line(spec) for spec in IPSETS]
        lines += [f"add {name} {member}" for name in sorted(self.ipsets) for member in sorted(self.ipsets[name])]
        return lines


def _create_line(spec: IpSetSpec) -> str:
    extra = " range 0-65535" if spec.kind.startswith("bitmap:port") else " family inet hashsize 1024 maxelem 65536"
    return f"create {spec.name} {spec.kind}{extra}"


def create_lines() -> list[str]:
    return [_create_line(spec) for spec in IPSETS]


def jump_rules() -> list[list[str]]:
    """The hooks from the built-in chains, as `["-t", table, chain, *rule]` for `IptablesApplier`."""
    return [["-t", table, chain, "-m", "comment", "--comment", comment, "-j", target]
            for table, chain, target, comment in _JUMPS]


# --- virtual servers ------------------------------------------------------------------------------------


_v4 = categorize.v4


def _dests(endpoints: Iterable[model.EndpointInfo]) -> tuple[RealServer, ...]:
    return tuple(sorted({RealServer(e.ip, e.port) for e in endpoints if ":" not in e.ip},
                        key=lambda r: (ipaddress.ip_address(r.address), r.port)))


def _service_ports(info: model.ServicePortInfo, node: NodeConfig) -> list[tuple[str, int, bool]]:
    """(address, port, external) for every virtual server of this service port."""
    found = [(ip, info.port, False) for ip in _v4(info.cluster_ips)]
    found += [(ip, info.port, True) for ip in (*_v4(info.external_ips), *_v4(info.load_balancer_ips))]
    if info.node_port:
        found += [(ip, info.node_port, True) for ip in _v4(node.addresses)
                  if not ipaddress.ip_address(ip).is_loopback]
    return found


def _virtual_services(snapshot: model.Snapshot, node: NodeConfig) -> dict[ServiceKey, VirtualService]:
    services: dict[ServiceKey, VirtualService] = {}
    for name in model.sorted_names(snapshot.services):
        info = snapshot.services[name]
        endpoints = snapshot.endpoints.get(name, ())
        for address, port, external in _service_ports(info, node):
            key = ServiceKey(info.protocol, address, port)
            dests = _dests(model.usable(info, endpoints, node.name, external))
            services.setdefault(key, VirtualService(key, node.scheduler, info.affinity_timeout, dests, str(name)))
    return dict(sorted(services.items()))


# --- ipsets ---------------------------------------------------------------------------------------------


def _entry(address: str, protocol: str, port: int) -> str:
    return f"{address},{protocol.lower()}:{port}"


def _ipset_members(snapshot: model.Snapshot, node: NodeConfig) -> dict[str, frozenset[str]]:
    members: dict[str, set[str]] = {spec.name: set() for spec in IPSETS}
    for name, info in snapshot.services.items():
        proto = info.protocol.lower()
        for ip in _v4(info.cluster_ips):
            members[CLUSTER_IP.name].add(_entry(ip, proto, info.port))
        for ip in _v4(info.external_ips):
            members[(EXTERNAL_IP_LOCAL if info.external_local else EXTERNAL_IP).name].add(_entry(ip, proto, info.port))
        for ip in _v4(info.load_balancer_ips):
            members[LOAD_BALANCER.name].add(_entry(ip, proto, info.port))
            if info.external_local:
                members[LOAD_BALANCER_LOCAL.name].add(_entry(ip, proto, info.port))
        if info.node_port and info.protocol in NODE_PORT:
            members[NODE_PORT[info.protocol].name].add(str(info.node_port))
            if info.external_local:
                members[NODE_PORT_LOCAL[info.protocol].name].add(str(info.node_port))
        if info.health_check_node_port:
            members[HEALTH_CHECK_NODE_PORT.name].add(str(info.health_check_node_port))
        for ep in snapshot.endpoints.get(name, ()):
            if ":" not in ep.ip and ep.node_name == node.name:  # hairpin needs the endpoint on this node
                members[LOOP_BACK.name].add(f"{ep.ip},{proto}:{ep.port},{ep.ip}")
    return {name: frozenset(values) for name, values in members.items()}


# --- iptables rules -------------------------------------------------------------------------------------


def _rules(node: NodeConfig, members: Mapping[str, frozenset[str]]) -> str:
    mark = f"{node.masquerade_mark:#x}"
    nat = [f":{chain} - [0:0]" for chain in NAT_CHAINS]
    filt = [f":{chain} - [0:0]" for chain in FILTER_CHAINS]
    nat.append(f"-A {KUBE_SERVICES} -s 127.0.0.0/8 -j RETURN")
    for spec, table, source, target, match, proto in _SET_RULES:
        if members[spec.name]:
            rule = " ".join(p for p in (f"-A {source}", f"-p {proto}" if proto else "",
                                        f'-m comment --comment "{spec.comment}"',
                                        f"-m set --match-set {spec.name} {match} -j {target}") if p)
            (nat if table == "nat" else filt).append(rule)
    if members[CLUSTER_IP.name]:
        head = f'-A {KUBE_SERVICES} -m comment --comment "{CLUSTER_IP.comment}" -m set --match-set {CLUSTER_IP.name}'
        if node.masquerade_all:
            nat.append(f"{head} dst,dst -j {KUBE_MARK_MASQ}")
        elif node.cluster_cidr:
            nat.append(f"{head} dst,dst ! -s {node.cluster_cidr} -j {KUBE_MARK_MASQ}")
        else:
            nat.append(f"{head} src,dst -j {KUBE_MARK_MASQ}")
    for spec in (EXTERNAL_IP, EXTERNAL_IP_LOCAL):
        if members[spec.name]:
            head = f'-A {KUBE_SERVICES} -m comment --comment "{spec.comment}" -m set --match-set {spec.name} dst,dst'
            if spec is EXTERNAL_IP:
                nat.append(f"{head} -j {KUBE_MARK_MASQ}")
            nat.append(f"{head} -m addrtype ! --src-type LOCAL -j ACCEPT")
            nat.append(f"{head} -m addrtype --dst-type LOCAL -j ACCEPT")
    nat.append(f"-A {KUBE_SERVICES} -m addrtype --dst-type LOCAL -j {KUBE_NODE_PORT}")
    nat.append(f"-A {KUBE_LOAD_BALANCER} -j {KUBE_MARK_MASQ}")
    for spec in (CLUSTER_IP, LOAD_BALANCER):
        if members[spec.name]:
            nat.append(f"-A {KUBE_SERVICES} -m set --match-set {spec.name} dst,dst -j ACCEPT")
    filt.append(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark {mark}/{mark}'
                " -j ACCEPT")
    filt.append(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack'
                " --ctstate RELATED,ESTABLISHED -j ACCEPT")
    for spec in (LOAD_BALANCER, CLUSTER_IP, EXTERNAL_IP, EXTERNAL_IP_LOCAL):
        filt.append(f"-A {KUBE_IPVS_FILTER} -m set --match-set {spec.name} dst,dst -j RETURN")
    filt.append(f"-A {KUBE_IPVS_FILTER} -m set --match-set {HEALTH_CHECK_NODE_PORT.name} dst -j RETURN")
    filt.append(f"-A {KUBE_IPVS_FILTER} -m conntrack --ctstate NEW -m set --match-set {IPVS_IPS.name} dst"
                " -j REJECT")
    nat.append(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    nat.append(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    nat.append(f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT"'
               " -j MASQUERADE")
    nat.append(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")
    return "\n".join(["*filter", *filt, "COMMIT", "*nat", *nat, "COMMIT"]) + "\n"


# --- entry point ----------------------------------------------------------------------------------------


def compile_state(snapshot: model.Snapshot, node: NodeConfig) -> Desired:
    services = _virtual_services(snapshot, node)
    node_ips = set(_v4(node.addresses))
    bound = frozenset(key.address for key in services if key.address not in node_ips)
    members = _ipset_members(snapshot, node)
    members[IPVS_IPS.name] = bound
    return Desired(services, bound, members, _rules(node, members))


