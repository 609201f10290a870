"""The cluster DNS zone: an immutable index of every name svcnet answers for, built by a pure function of
Services, EndpointSlices and Pods (the Kubernetes DNS-based service discovery specification, schema 1.1.0,
shaped the way CoreDNS's kubernetes plugin answers). No sockets, no clocks.

Theory of operation: `build` walks the objects once and fills `Zone.names`, a dict from a lower-case absolute
name (`web.default.svc.cluster.local.`) to its RRsets (`{RRType: (rdata, ...)}`). Answering a question is then
one dict lookup (`Zone.lookup`); only the pod names of `pods insecure` (an unbounded set) are computed from the
name itself, in O(1). The resolver turns RRsets into messages; this module knows nothing of the wire format.

Names (for a service `web` in namespace `ns`, domain `cluster.local`):
- `web.ns.svc.cluster.local.`: A/AAAA with the ClusterIPs; for a headless service the ready endpoint addresses
  (not-ready ones too with `publishNotReadyAddresses` or the tolerate-unready annotation); CNAME for an
  ExternalName service; SRV over every (endpoint ×) port, as CoreDNS answers a plain SRV query.
- `<hostname>.web.ns.svc.cluster.local.`: A/AAAA and SRV of each ready endpoint, of ClusterIP and headless
  services alike (CoreDNS); the hostname is the endpoint's `hostname`, else its dashed IP (`10-0-0-1`,
  `fd00--1`), as CoreDNS's `endpointHostname`.
- `_<port>._<proto>.web.ns.svc.cluster.local.`: SRV per named port, target the service (ClusterIP) or each
  endpoint name (headless); priority 0, weight 100/n as CoreDNS.
- PTR for every ClusterIP (the first service listed wins) and else every endpoint IP (one PTR per service);
  `<a-b-c-d>.<ns>.pod.cluster.local.` (synthesised; `verified` only for an existing pod's IP); SOA and NS at the
  apex (`ns.dns.<domain>`, `hostmaster.<domain>`, refresh 7200, retry 1800, expire 86400, minimum = ttl);
  `dns-version.<domain>.` TXT "1.1.0" (TTL 28800, as CoreDNS).

Invariants:
- Keys are lower-case absolute names with the trailing dot; an RRset is a non-empty tuple without duplicates,
  in input order. A holds IPv4 text, AAAA IPv6 text, CNAME/PTR/NS absolute names, TXT strings, SRV
  (priority, weight, port, target) tuples, SOA one `SOA` tuple.
- A name is in `names` iff it owns an RRset. `empty` holds the empty non-terminals under an apex (`svc.<domain>`,
  `pod.<domain>`, `<ns>.svc.<domain>` and `<ns>.pod.<domain>` of an existing namespace, `_<proto>.<service>...`,
  reverse-tree parents): NODATA. Any other name under an apex is NXDOMAIN, so a headless service with no ready
  endpoint is NXDOMAIN, as the specification says.
- Apexes: the cluster domain, the reverse zones of `ZoneOptions.reverse_cidrs`, and, for a PTR name the zone
  holds outside those, `in-addr.arpa.` / `ip6.arpa.`. Names under no apex are not ours (the server forwards).
- A Zone is never mutated after `build`. `serial` is a CRC-32 of the owner names, the namespaces and the objects'
  resourceVersions, so it changes with the zone (CoreDNS uses the time of the last change; no clocks here).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, NamedTuple

from svcnet.nogc import collections_paused

Obj = Mapping[str, Any]

SCHEMA_VERSION = "1.1.0"
VERSION_TTL = 28800  # CoreDNS's TTL for dns-version TXT
MAX_TTL = 3600  # CoreDNS's `ttl` bounds: 0..3600
MAX_SOA_TTL = 300
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"


class RRType(IntEnum):
    """The record types the zone holds (IANA numbers, equal to dnslib's QTYPE values)."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    TXT = 16
    AAAA = 28
    SRV = 33


class PodMode(Enum):
    """CoreDNS's `pods` option: who answers `<a-b-c-d>.<ns>.pod.<domain>`."""

    DISABLED = "disabled"  # nobody: NXDOMAIN
    INSECURE = "insecure"  # any well-formed IP in an existing namespace
    VERIFIED = "verified"  # only the IP of an existing (not terminating) pod in that namespace


SrvData = tuple[int, int, int, str]  # (priority, weight, port, target): plain tuples keep `build` fast


class SOA(NamedTuple):
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


Rdata = str | SrvData | SOA
RRSets = Mapping[int, tuple[Rdata, ...]]


@dataclass(frozen=True, slots=True)
class ZoneOptions:
    """Server configuration that shapes the zone (CoreDNS's `pods`, its NS addresses and reverse zones)."""

    pod_mode: PodMode = PodMode.INSECURE
    dns_ips: tuple[str, ...] = ()  # the addresses of `ns.dns.<domain>` (NS glue); none: the name does not exist
    reverse_cidrs: tuple[str, ...] = ()  # reverse zones answered authoritatively (NXDOMAIN for unknown IPs)


@dataclass(frozen=True, slots=True)
class Zone:
    domain: str  # lower-case, absolute: "cluster.local."
    ttl: int
    serial: int
    names: Mapping[str, RRSets]
    empty: frozenset[str]
    namespaces: frozenset[str]
    reverse_zones: tuple[str, ...] = ()
    pod_mode: PodMode = PodMode.INSECURE
    pod_ips: frozenset[tuple[str, str]] = frozenset()  # (namespace, ip) of pods, for PodMode.VERIFIED

    @property
    def soa(self) -> SOA:
        return SOA("ns.dns." + self.domain, "hostmaster." + self.domain, self.serial,
                   SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, self.ttl)

    @property
    def soa_ttl(self) -> int:
        return min(self.ttl, MAX_SOA_TTL)

    def lookup(self, name: str) -> RRSets | None:
        """The RRsets owned by `name` (lower-case, absolute), or None when it owns none."""
        rrsets = self.names.get(name)
        if rrsets is None and self.pod_mode is not PodMode.DISABLED and name.endswith(".pod." + self.domain):
            return self._pod(name[: -len(self.domain) - 5])
        return rrsets

    def exists(self, name: str) -> bool:
        """Whether `name` exists (NODATA rather than NXDOMAIN when it owns no RRset of the asked type)."""
        return name in self.empty or self.lookup(name) is not None

    def apex(self, name: str) -> str | None:
        """The apex of the zone `name` falls in, or None when svcnet is not authoritative for it."""
        if name == self.domain or name.endswith("." + self.domain):
            return self.domain
        if not name.endswith(".arpa."):
            return None
        for zone in self.reverse_zones:
            if name == zone or name.endswith("." + zone):
                return zone
        if name in self.names:
            return "ip6.arpa." if name.endswith(".ip6.arpa.") else "in-addr.arpa."
        return None

    def _pod(self, head: str) -> RRSets | None:
        label, _, namespace = head.partition(".")
        if "." in namespace or namespace not in self.namespaces:
            return None
        ip = parse_pod_label(label)
        if ip is None or (self.pod_mode is PodMode.VERIFIED and (namespace, ip) not in self.pod_ips):
            return None
        return {RRType.AAAA if ":" in ip else RRType.A: (ip,)}


def parse_pod_label(label: str) -> str | None:
    """The IP a pod label encodes (`10-0-0-1` → 10.0.0.1, `fd00--1` → fd00::1, as CoreDNS), canonical."""
    ipv4 = label.count("-") == 3 and "--" not in label
    return canonical_ip(label.replace("-", "." if ipv4 else ":"))


def canonical_ip(text: str) -> str | None:
    """`text` as an IP address in canonical form, or None when it is not one (zone ids are not)."""
    if "%" in text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def endpoint_hostname(hostname: str | None, ip: str) -> str:
    """An endpoint's name under its service: its hostname, else its dashed IP (CoreDNS's endpointHostname)."""
    if hostname:
        return hostname.lower()
    if "." in ip:
        return ip.replace(".", "-")
    dashed = ip.replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed


def reverse_name(ip: str) -> str | None:
    """The PTR owner name of an IP (in-addr.arpa., full-nibble ip6.arpa.), or None if `ip` is not one."""
    if ":" in ip:
        try:
            nibbles = ipaddress.IPv6Address(ip).exploded.replace(":", "")
        except ValueError:
            return None
        return ".".join(reversed(nibbles)) + ".ip6.arpa."
    octets = ip.split(".")
    if len(octets) != 4:
        return None
    return f"{octets[3]}.{octets[2]}.{octets[1]}.{octets[0]}.in-addr.arpa."


def reverse_zones(cidr: str) -> tuple[str, ...]:
    """The reverse zones covering `cidr`, split at the next octet (IPv4) / nibble (IPv6) boundary: at most 128."""
    net = ipaddress.ip_network(cidr, strict=False)
    step = 8 if net.version == 4 else 4
    prefix = -(-net.prefixlen // step) * step
    subnets = net.subnets(new_prefix=prefix) if prefix != net.prefixlen else iter([net])
    drop = (net.max_prefixlen - prefix) // step
    return tuple(".".join(sub.network_address.reverse_pointer.split(".")[drop:]) + "." for sub in subnets)


def build(services: Iterable[Obj], slices: Iterable[Obj], pods: Iterable[Obj], domain: str = "cluster.local",
          ttl: int = 5, *, namespaces: Iterable[Obj] | None = None, options: ZoneOptions = ZoneOptions()) -> Zone:
    """The zone for these objects. `namespaces` (Namespace objects) says which namespaces exist; without it,
    every namespace holding a service or a pod does."""
    if not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl {ttl} outside 0..{MAX_TTL}")
    origin = domain.strip(".").lower() + "."
    pods = list(pods)
    builder = _Builder(origin)
    with collections_paused():  # the build allocates ~10 containers per name and keeps them all
        builder.add_services(services, _group_slices(slices, builder.versions))
        if namespaces is None:
            known = builder.namespaces | {p["metadata"]["namespace"] for p in pods}
        else:
            known = {n["metadata"]["name"].lower() for n in namespaces}
        names, empty = builder.finish(known, options)
    verified = _pod_ips(pods) if options.pod_mode is PodMode.VERIFIED else frozenset()
    rzones = tuple(dict.fromkeys(z for cidr in options.reverse_cidrs for z in reverse_zones(cidr)))
    serial = _serial(names, known, builder.versions, verified)
    soa = SOA("ns.dns." + origin, "hostmaster." + origin, serial, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl)
    for apex in (origin, *rzones):
        names[apex] = {**names.get(apex, {}), RRType.SOA: (soa,), RRType.NS: ("ns.dns." + origin,)}
    empty.difference_update(rzones)
    return Zone(origin, ttl, serial, names, frozenset(empty), frozenset(known), rzones, options.pod_mode, verified)


def _serial(names: Iterable[str], namespaces: Iterable[str], versions: list[str],
            pod_ips: frozenset[tuple[str, str]]) -> int:
    """A CRC-32 over what the zone holds: its owner names (every IP owns a PTR name), the namespaces, the
    resourceVersions of the services and slices (ports, targets) and the verified pod IPs."""
    crc = zlib.crc32("\n".join(names).encode())
    crc = zlib.crc32("\n".join(sorted(namespaces)).encode(), crc)
    crc = zlib.crc32("\n".join(versions).encode(), crc)
    return zlib.crc32("\n".join(sorted(f"{ns}/{ip}" for ns, ip in pod_ips)).encode(), crc)


def _group_slices(slices: Iterable[Obj], versions: list[str]) -> dict[tuple[str, str], list[Obj]]:
    """EndpointSlices by (namespace, service name label); slices without the label or of FQDN type are dropped."""
    groups: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl["metadata"]
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service and sl.get("addressType", "IPv4") != "FQDN":
            groups.setdefault((meta["namespace"], service), []).append(sl)
            versions.append(meta.get("resourceVersion") or "")
    return groups


def _pod_ips(pods: Iterable[Obj]) -> frozenset[tuple[str, str]]:
    """(namespace, canonical IP) of every pod with an IP that is not terminating (CoreDNS's `pods verified`)."""
    found: set[tuple[str, str]] = set()
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        ips = [entry.get("ip", "") for entry in status.get("podIPs") or ()] or [status.get("podIP") or ""]
        for ip in ips:
            canonical = canonical_ip(ip)
            if canonical:
                found.add((meta["namespace"], canonical))
    return frozenset(found)


def _tolerates_unready(meta: Obj, spec: Obj) -> bool:
    """Whether not-ready endpoints are published: `publishNotReadyAddresses`, or the old annotation."""
    annotations = meta.get("annotations") or {}
    return bool(spec.get("publishNotReadyAddresses")) or annotations.get(TOLERATE_UNREADY) == "true"


# A port: (SRV label prefix "_http._tcp." or "" for an unnamed port, "_tcp." (its parent), number or -1 for
# none, CoreDNS's sentinel).
Ports = tuple[tuple[str, str, int], ...]
NO_PORTS: Ports = (("", "", -1),)
# A service's endpoints: [(endpoint name, ip, ports of its slice)].
Members = list[tuple[str, str, Ports]]
_A, _AAAA, _SRV, _PTR = RRType.A, RRType.AAAA, RRType.SRV, RRType.PTR


def _ports(ports: Iterable[Obj] | None) -> Ports:
    found = []
    for port in ports or ():
        number = port.get("port")
        number = -1 if number is None else number
        if name := port.get("name"):
            proto = f"_{port.get('protocol') or 'TCP'}.".lower()
            found.append((f"_{name.lower()}.{proto}", proto, number))
        else:
            found.append(("", "", number))
    return tuple(found) or NO_PORTS


def _unique(values: tuple[Rdata, ...]) -> tuple[Rdata, ...]:
    return values if len(values) < 2 else tuple(dict.fromkeys(values))


def _addresses(ips: list[str]) -> dict[int, tuple[Rdata, ...]]:
    """A and AAAA RRsets from IP texts, de-duplicated, in order."""
    if len(ips) == 1:
        return {_AAAA if ":" in ips[0] else _A: (ips[0],)}
    v4 = tuple(dict.fromkeys(ip for ip in ips if ":" not in ip))
    v6 = tuple(dict.fromkeys(ip for ip in ips if ":" in ip))
    return {rtype: rrset for rtype, rrset in ((_A, v4), (_AAAA, v6)) if rrset}


def _srvs(entries: list[tuple[int, str]]) -> tuple[Rdata, ...]:
    """SRV records for (port, target) entries weighed as CoreDNS does: priority 0, weight ⌊100/n⌋ over all n entries
    (port -1, CoreDNS's "no port" sentinel, counts but gets no record); de-duplicated by target and port."""
    weight = max(1, 100 // len(entries)) if entries else 0
    return _unique(tuple([(0, weight, port, target) for port, target in entries if port >= 0]))


def _reverse_parents(rnames: Iterable[str]) -> set[str]:
    """The reverse-tree parents of PTR names, up to `in-addr.arpa.` / `ip6.arpa.` (exclusive)."""
    parents: set[str] = set()
    for name in rnames:
        parent = name.partition(".")[2]
        while parent not in parents and parent not in ("in-addr.arpa.", "ip6.arpa.", ""):
            parents.add(parent)
            parent = parent.partition(".")[2]
    return parents


class _Builder:
    """Accumulates the names while `build` walks the services; `finish` adds PTRs, fixed names, non-terminals."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.names: dict[str, dict[int, tuple[Rdata, ...]]] = {}
        self.empty: set[str] = set()
        self.namespaces: set[str] = set()
        self.versions: list[str] = []
        self.ptr_services: dict[str, str] = {}
        self.ptr_endpoints: dict[str, tuple[str, ...]] = {}

    def add_services(self, services: Iterable[Obj], slices: Mapping[tuple[str, str], list[Obj]]) -> None:
        for svc in services:
            meta, spec = svc["metadata"], svc.get("spec") or {}
            namespace, name = meta["namespace"], meta["name"]
            self.namespaces.add(namespace)
            self.versions.append(meta.get("resourceVersion") or "")
            fqdn = f"{name}.{namespace}.svc.{self.origin}".lower()
            if spec.get("type") == "ExternalName":
                self._external(fqdn, spec.get("externalName") or "")
                continue
            ips = spec.get("clusterIPs") or [spec.get("clusterIP") or ""]
            headless = ips[0] == "None"
            if not (headless or ips[0]):
                continue  # no ClusterIP allocated yet
            if not headless:
                self._cluster_ip(fqdn, ips, _ports(spec.get("ports")))
            group = slices.get((namespace, name))
            if group:
                members = self._endpoints(fqdn, group, _tolerates_unready(meta, spec))
                if headless and members:
                    self._headless(fqdn, members)

    def _external(self, fqdn: str, external_name: str) -> None:
        target = external_name.rstrip(".")
        if target and not canonical_ip(target):  # an IP or nothing: CoreDNS answers no CNAME either
            self.names[fqdn] = {RRType.CNAME: (target + ".",)}

    def _cluster_ip(self, fqdn: str, ips: list[str], ports: Ports) -> None:
        names = self.names
        rrsets = names[fqdn] = _addresses(ips)
        weight = max(1, 100 // len(ips))
        for prefix, proto, number in ports:
            if prefix:
                names[prefix + fqdn] = {_SRV: ((0, weight, number, fqdn),)}
                self.empty.add(proto + fqdn)
        weight = max(1, 100 // (len(ips) * len(ports)))
        if srvs := _unique(tuple([(0, weight, number, fqdn) for _, _, number in ports if number >= 0])):
            rrsets[_SRV] = srvs
        for ip in ips:
            rname = reverse_name(ip)
            if rname:
                self.ptr_services.setdefault(rname, fqdn)

    def _endpoints(self, fqdn: str, slices: Iterable[Obj], unready: bool) -> Members:
        """Each endpoint name's A/AAAA and SRV, and the PTRs of its IPs; returns the endpoints (ready ones, or
        all when the service tolerates unready ones) as (name, ip, ports)."""
        names, ptrs = self.names, self.ptr_endpoints
        members: Members = []
        shared: set[str] = set()  # names of more than one address: recomputed from `members` at the end
        for sl in slices:
            ports = _ports(sl.get("ports"))
            numbers = tuple(dict.fromkeys(number for _, _, number in ports if number >= 0))
            weight = max(1, 100 // len(ports))
            for ep in sl.get("endpoints") or ():
                if not unready and (ep.get("conditions") or {}).get("ready") is False:
                    continue
                hostname = ep.get("hostname")
                for ip in ep.get("addresses") or ():
                    name = f"{endpoint_hostname(hostname, ip)}.{fqdn}"
                    members.append((name, ip, ports))
                    if name in names:
                        shared.add(name)
                    else:
                        rrsets = names[name] = {_AAAA if ":" in ip else _A: (ip,)}
                        if numbers:
                            rrsets[_SRV] = tuple([(0, weight, number, name) for number in numbers])
                    if rname := reverse_name(ip):
                        previous = ptrs.get(rname, ())
                        if name not in previous:
                            ptrs[rname] = (*previous, name)
        if shared:
            self._shared(shared, members)
        return members

    def _shared(self, shared: set[str], members: Members) -> None:
        """Endpoint names held by several addresses (dual-stack, or an IP in two slices): all their addresses,
        and SRVs weighed over all their (address, port) entries, as CoreDNS."""
        ips: dict[str, list[str]] = {name: [] for name in shared}
        entries: dict[str, list[tuple[int, str]]] = {name: [] for name in shared}
        for name, ip, ports in members:
            if name in shared:
                ips[name].append(ip)
                entries[name].extend((number, name) for _, _, number in ports)
        for name in shared:
            rrsets = self.names[name] = _addresses(ips[name])
            if srvs := _srvs(entries[name]):
                rrsets[_SRV] = srvs

    def _headless(self, fqdn: str, members: Members) -> None:
        """A headless service's own A/AAAA (all its endpoints), plain SRV and SRV per named port."""
        every: list[tuple[int, str]] = []
        named: dict[str, list[tuple[int, str]]] = {}
        for name, _, ports in members:
            for prefix, _, number in ports:
                every.append((number, name))
                if prefix:
                    named.setdefault(prefix + fqdn, []).append((number, name))
        rrsets = self.names[fqdn] = _addresses([ip for _, ip, _ in members])
        if srvs := _srvs(every):
            rrsets[_SRV] = srvs
        for name, entries in named.items():
            self.names[name] = {_SRV: _srvs(entries)}
            self.empty.add(name.partition(".")[2])

    def finish(self, namespaces: Iterable[str],
               options: ZoneOptions) -> tuple[dict[str, dict[int, tuple[Rdata, ...]]], set[str]]:
        """Adds PTRs, dns-version, ns.dns and the empty non-terminals; returns (names, empty)."""
        names, empty, origin = self.names, self.empty, self.origin
        for rname, targets in self.ptr_endpoints.items():
            names[rname] = {_PTR: targets}
        for rname, target in self.ptr_services.items():
            names[rname] = {_PTR: (target,)}  # a ClusterIP's PTR wins over an endpoint's, as in CoreDNS
        empty.update(_reverse_parents([*self.ptr_services, *self.ptr_endpoints]))
        names["dns-version." + origin] = {RRType.TXT: (SCHEMA_VERSION,)}
        if options.dns_ips:
            names["ns.dns." + origin] = _addresses(list(options.dns_ips))
            empty.add("dns." + origin)
        empty.update(("svc." + origin, "pod." + origin))
        pods = options.pod_mode is not PodMode.DISABLED
        for namespace in namespaces:
            empty.add(f"{namespace}.svc.{origin}".lower())
            if pods:
                empty.add(f"{namespace}.pod.{origin}".lower())
        empty.difference_update(names)
        return names, empty
