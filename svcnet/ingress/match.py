"""Per-request route lookup: (port, host, path, method, headers, query) → `Decision` — pure and fast.

Theory of operation (the table's invariants are in `model.py`):
1. the port picks a `PortRoutes` (none: 404);
2. the host, normalised (lower case, no `:port`, no trailing dot), picks ONE `VirtualHost`: the exact name, else
   the longest wildcard suffix that matches (`*.foo.com` of an Ingress covers one label, of the Gateway API one
   or more), else the default host; none: 404;
3. the first route of that host whose path, method, headers and query all match wins (routes are stored in
   precedence order, so nothing is sorted here); none: 404;
4. a redirecting route answers with `Decision.location`; a forwarding route picks a backend by weight with the
   injected `rand() -> [0, 1)` (weight 0 is never picked); a backend without endpoints answers its
   `status_when_empty`, a route without any weight its own.

Memo: a decision that depends only on (port, host, path, method) is kept on the table (`RouteTable.memo`, bounded,
reset with every new table); `lookup_plain` is the same function without it.

Cost per request (memo miss): a dict lookup per host label at most, one pass over one host's routes with precompiled
regexes, the query string parsed only when a route asks for a query parameter, one bisect for the weights.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import parse_qsl

from svcnet.ingress.model import (
    Decision,
    MatchType,
    PathType,
    PortRoutes,
    Route,
    RouteTable,
    ValueMatch,
    VirtualHost,
)


class Headers(Protocol):
    """The request headers as the lookup reads them: lower-case name → value (a dict will do)."""

    def get(self, key: str, /) -> str | None: ...


NOT_FOUND = Decision(route=None, status=404)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MEMO_MAX = 4096  # entries per table
_MEMO_KEY_MAX = 512  # longer host + path are not memoised (bounds the memo's memory)


def normalise_host(host: str) -> str:
    """`Foo.Example.COM.:8080` → `foo.example.com`; an IPv6 literal keeps its brackets: `[::1]:80` → `[::1]`."""
    name = host.lower()
    colon = name.find(":")
    if colon >= 0:
        if name.startswith("["):
            end = name.find("]")
            return name[: end + 1] if end > 0 else name
        name = name[:colon]
    return name.rstrip(". \t")


def find_virtual_host(routes: PortRoutes, name: str) -> VirtualHost | None:
    """Exact host, then the longest wildcard suffix, then the default host (`name` already normalised)."""
    vhost = routes.exact_hosts.get(name)
    if vhost is not None:
        return vhost
    dot = name.find(".")
    if dot > 0 and (routes.wildcard_hosts or routes.suffix_hosts):
        suffix = name[dot:]
        vhost = routes.wildcard_index.get(suffix) or routes.suffix_index.get(suffix)
        if vhost is not None:
            return vhost
        if routes.suffix_hosts:
            dot = name.find(".", dot + 1)
            while dot > 0:
                vhost = routes.suffix_index.get(name[dot:])
                if vhost is not None:
                    return vhost
                dot = name.find(".", dot + 1)
    return routes.default_host


def lookup(table: RouteTable, port: int, host: str, path: str, method: str, headers: Headers,
           query: str, rand: Callable[[], float]) -> Decision:
    """The decision for one request; `headers` maps lower-case names to values, `query` is the raw query string.

    Same result as `lookup_plain`, memoised per table by (port, host, path, method) when nothing else can change
    the decision: no route of the chosen virtual host matches headers or query, and the decision is no redirect
    (its Location carries the query) and no weighted choice (a route with more than one backend draws `rand`)."""
    key = (port, host, path, method)
    decision = table.memo.get(key)
    if decision is not None:
        return decision
    memo = table.memo
    decision = lookup_plain(table, port, host, path, method, headers, query, rand)
    if len(host) + len(path) <= _MEMO_KEY_MAX and _memoisable(table, port, host, decision):
        if len(memo) >= _MEMO_MAX:
            memo.clear()  # a crude but bounded eviction: the hot keys come back at once
        memo[key] = decision
    return decision


def _memoisable(table: RouteTable, port: int, host: str, decision: Decision) -> bool:
    route = decision.route
    if decision.location is not None or (route is not None and len(route.backends) > 1):
        return False
    routes = table.ports.get(port)
    vhost = find_virtual_host(routes, normalise_host(host)) if routes is not None else None
    return vhost is None or not any(r.headers or r.query for r in vhost.routes)


def lookup_plain(table: RouteTable, port: int, host: str, path: str, method: str, headers: Headers,
                 query: str, rand: Callable[[], float]) -> Decision:
    """`lookup` without the memo."""
    routes = table.ports.get(port)
    if routes is None:
        return NOT_FOUND
    name = normalise_host(host)
    vhost = find_virtual_host(routes, name)
    if vhost is None:
        return NOT_FOUND
    params: dict[str, str] | None = None
    for route in vhost.routes:
        if not _path_matches(route, path):
            continue
        if route.method is not None and route.method != method:
            continue
        if route.headers and not _values_match(route.headers, headers):
            continue
        if route.query:
            if params is None:
                params = parse_query(query)
            if not _values_match(route.query, params):
                continue
        if route.redirect is not None:
            return Decision(route=route, location=redirect_location(route, routes, name, path, query))
        return _choose_backend(route, rand)
    return NOT_FOUND


def _path_matches(route: Route, path: str) -> bool:
    match = route.path
    if match.type is PathType.PREFIX:
        prefix = match.prefix
        return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")
    if match.type is PathType.EXACT:
        return path == match.value
    return match.regex is not None and match.regex.fullmatch(path) is not None


def _values_match(wanted: tuple[ValueMatch, ...], have: Headers | Mapping[str, str]) -> bool:
    for match in wanted:
        value = have.get(match.name)
        if value is None:
            return False
        if match.type is MatchType.EXACT:
            if value != match.value:
                return False
        elif match.regex is None or match.regex.fullmatch(value) is None:
            return False
    return True


def parse_query(query: str) -> dict[str, str]:
    """Query parameters by (case-sensitive) name; the first occurrence of a repeated name counts."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def _choose_backend(route: Route, rand: Callable[[], float]) -> Decision:
    sums = route.cumulative
    if not sums or sums[-1] <= 0:
        return Decision(route=route, status=route.status_when_empty)
    if len(sums) == 1:
        return route.decisions[0]
    return route.decisions[min(bisect_right(sums, rand() * sums[-1]), len(sums) - 1)]


def redirect_location(route: Route, routes: PortRoutes, host: str, path: str, query: str) -> str:
    """Gateway API RequestRedirect applied to the request: scheme, host, port (omitted when it is the scheme's
    well-known one; derived from a changed scheme, else the listener port), path (full or prefix replacement),
    and the query string kept."""
    redirect = route.redirect
    assert redirect is not None
    scheme = redirect.scheme or ("https" if routes.tls else "http")
    if redirect.port is not None:
        port = redirect.port
    elif redirect.scheme:
        port = _DEFAULT_PORTS.get(scheme, routes.port)
    else:
        port = routes.port
    authority = redirect.hostname or host
    if _DEFAULT_PORTS.get(scheme) != port:
        authority = f"{authority}:{port}"
    if redirect.full_path is not None:
        path = redirect.full_path
    elif redirect.prefix_path is not None and route.path.type is PathType.PREFIX:
        path = redirect.prefix_path.rstrip("/") + path[len(route.path.prefix):]
        if not path.startswith("/"):
            path = "/" + path
    return f"{scheme}://{authority}{path}" + (f"?{query}" if query else "")
