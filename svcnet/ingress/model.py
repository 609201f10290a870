"""The ingress route table: what the compilers (Ingress, Gateway API) produce and the HTTP server looks up.

Data in, data out: the table holds plain frozen values, no I/O objects, so a compiled table can be compared,
printed and golden-tested. The HTTP server swaps in a new table atomically; a request is answered from the
table that was current when its head arrived.

Invariants:
- `RouteTable.ports` maps a listening port to its `PortRoutes`; a port is HTTP or HTTPS, never both;
- host names are lower case without a trailing dot or port. A request's host picks exactly ONE `VirtualHost`:
  `PortRoutes.exact_hosts[host]`, else the longest matching wildcard suffix — `wildcard_hosts` (".suffix", vhost) for a
  host with exactly one label before the suffix (Ingress `*.foo.com`, and Gateway API wildcards merged in),
  `suffix_hosts` for one or more labels (Gateway API `*.foo.com`), both longest suffix first and indexed by
  suffix (`wildcard_index`, `suffix_index`) for the lookup — else `default_host` (Ingress rules
  without a host, Gateway routes that end up without a hostname). There is no fallthrough to a less specific
  host; the only fallback is the Ingress `defaultBackend`, compiled as the last route of every VirtualHost on
  the Ingress ports;
- `VirtualHost.routes` are sorted by precedence, first match wins: Exact path, then RegularExpression (longer
  pattern first), then Prefix (longer first); then a method match; then more header matches, more query
  matches; then the older object, then "namespace/name", then rule and match order (Gateway API's order, which
  includes Ingress's "longest path first, Exact before Prefix at equal length");
- a `Route` either redirects (`redirect`) or forwards to `backends` (weighted); the chosen backend without
  endpoints answers its `status_when_empty` (503; 500 for a Gateway API backendRef that does not resolve), a
  route with no backend of non-zero weight answers the route's `status_when_empty`;
- `Backend.endpoints` are ready endpoints only, in a stable order (sorted), so round robin is deterministic;
- regular expressions are compiled once, when the value is built (`PathMatch.regex`, `ValueMatch.regex`), and a
  route's cumulative backend weights and its decisions likewise (`Route.cumulative`, `Route.decisions`): a
  lookup neither compiles, sorts nor allocates (a redirect's Location apart);
- `RouteTable.memo` is a cache owned by `match.lookup`, never part of the table's value (not compared or printed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class PathType(StrEnum):
    EXACT = "Exact"
    PREFIX = "Prefix"  # element-wise: "/foo" matches "/foo", "/foo/", "/foo/bar", not "/foobar"
    REGEX = "RegularExpression"  # Gateway API extended support (full match, Python `re` syntax)


class MatchType(StrEnum):
    EXACT = "Exact"
    REGEX = "RegularExpression"


@dataclass(frozen=True, slots=True)
class PathMatch:
    """`value` starts with "/"; for Prefix, `prefix` is the value without its trailing slash ("" for "/")."""

    type: PathType
    value: str
    prefix: str = field(default="", init=False, repr=False, compare=False)
    regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.value.rstrip("/"))
        if self.type is PathType.REGEX:
            object.__setattr__(self, "regex", re.compile(self.value))  # re.error: the compiler checks first


@dataclass(frozen=True, slots=True)
class ValueMatch:
    """A header (name case-insensitive, stored lower case) or query parameter (name case-sensitive) match."""

    name: str
    value: str
    type: MatchType = MatchType.EXACT
    regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type is MatchType.REGEX:
            object.__setattr__(self, "regex", re.compile(self.value))


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "namespace/service:port", for logs, metrics and `X-Svcnet-Backend`-free debugging output
    endpoints: tuple[Endpoint, ...]  # ready endpoints, sorted
    weight: int = 1  # relative; 0 means "never chosen"
    status_when_empty: int = 503  # answered when chosen without endpoints; 500 for an unresolved backendRef


@dataclass(frozen=True, slots=True)
class HeaderModifier:
    """Gateway API RequestHeaderModifier: set replaces, add appends, remove deletes (names case-insensitive)."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redirect:
    """Gateway API RequestRedirect; None fields keep the request's own value."""

    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    full_path: str | None = None  # ReplaceFullPath
    prefix_path: str | None = None  # ReplacePrefixMatch (the matched prefix is replaced)
    status_code: int = 302


@dataclass(frozen=True, slots=True)
class Route:
    path: PathMatch
    source: str  # "ingress/<ns>/<name>" or "httproute/<ns>/<name>/<rule index>"
    method: str | None = None
    headers: tuple[ValueMatch, ...] = ()
    query: tuple[ValueMatch, ...] = ()
    backends: tuple[Backend, ...] = ()
    request_headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    status_when_empty: int = 503  # no backend of non-zero weight (500 for an HTTPRoute rule)
    cumulative: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)
    decisions: tuple[Decision, ...] = field(default=(), init=False, repr=False, compare=False)  # one per backend

    def __post_init__(self) -> None:
        total, sums = 0, []
        for backend in self.backends:
            total += max(backend.weight, 0)
            sums.append(total)
        object.__setattr__(self, "cumulative", tuple(sums))
        object.__setattr__(self, "decisions", tuple(
            Decision(self, b, 0 if b.endpoints else b.status_when_empty) for b in self.backends))


@dataclass(frozen=True, slots=True)
class VirtualHost:
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class Certificate:
    """A `kubernetes.io/tls` Secret's PEM data, served for `hosts` (exact or `*.suffix`) by SNI; empty `hosts`
    (an Ingress tls entry without hosts, a listener without hostname) restricts nothing."""

    source: str  # "<ns>/<secret name>"
    hosts: tuple[str, ...]
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class PortRoutes:
    port: int
    tls: bool = False
    exact_hosts: dict[str, VirtualHost] = field(default_factory=dict)
    wildcard_hosts: tuple[tuple[str, VirtualHost], ...] = ()  # (".suffix", host with ONE more label), longest first
    suffix_hosts: tuple[tuple[str, VirtualHost], ...] = ()  # (".suffix", one or more labels), longest first
    default_host: VirtualHost | None = None
    certificates: tuple[Certificate, ...] = ()  # the first one is the default when SNI matches none
    wildcard_index: dict[str, VirtualHost] = field(default_factory=dict, init=False, repr=False, compare=False)
    suffix_index: dict[str, VirtualHost] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wildcard_index", dict(self.wildcard_hosts))
        object.__setattr__(self, "suffix_index", dict(self.suffix_hosts))

    def virtual_hosts(self) -> list[VirtualHost]:
        """Every VirtualHost of the port (a suffix host's routes are also in the wildcard host of its suffix)."""
        hosts = [*self.exact_hosts.values(), *(v for _, v in self.wildcard_hosts), *(v for _, v in self.suffix_hosts)]
        return hosts + ([self.default_host] if self.default_host is not None else [])


@dataclass(frozen=True, slots=True)
class RouteTable:
    ports: dict[int, PortRoutes] = field(default_factory=dict)
    # svcnet.ingress.match's lookup memo: (port, host, path, method) -> Decision, for this table only (a new table
    # starts empty); filled only with decisions that cannot depend on anything else (see match.lookup)
    memo: dict[tuple[int, str, str, str], Decision] = field(
        default_factory=dict, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of a lookup: forward to `backend` (already chosen by weight), redirect, or answer `status`."""

    route: Route | None
    backend: Backend | None = None
    status: int = 0  # 404 no route, 503 / 500 no endpoints; 0 when forwarding or redirecting
    location: str | None = None  # a redirect's absolute Location (route.redirect applied to the request)
