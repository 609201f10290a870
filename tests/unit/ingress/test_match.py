"""The per-request lookup on hand-built tables: host normalisation, host choice, matches, weights, and its cost."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from svcnet.ingress import match
from svcnet.ingress.model import (
    Backend,
    Endpoint,
    MatchType,
    PathMatch,
    PathType,
    PortRoutes,
    Redirect,
    Route,
    RouteTable,
    ValueMatch,
    VirtualHost,
)
from svcnet.ingress.routes import compile_routes

from .builders import CONFIG, backend_objects, get, ingress, ingress_class, objects, path, routed, rule


def backend(name: str, weight: int = 1, endpoints: int = 1, status: int = 503) -> Backend:
    return Backend(name, tuple(Endpoint(f"10.0.0.{i}", 8080) for i in range(1, endpoints + 1)), weight, status)


def prefix(value: str, *backends: Backend, **fields: object) -> Route:
    return Route(PathMatch(PathType.PREFIX, value), "test", backends=backends, **fields)  # type: ignore[arg-type]


def vhost(name: str) -> VirtualHost:
    return VirtualHost((prefix("/", backend(name)),))


TABLE = RouteTable({80: PortRoutes(
    80,
    exact_hosts={"a.example.com": vhost("exact")},
    wildcard_hosts=((".b.example.com", vhost("one-label-b")), (".example.com", vhost("one-label"))),
    suffix_hosts=((".deep.example.com", vhost("deep")), (".example.com", vhost("any-labels"))),
    default_host=vhost("default"))})


@pytest.mark.parametrize(("host", "expected"), [
    pytest.param("a.example.com", "a.example.com", id="plain"),
    pytest.param("A.Example.COM", "a.example.com", id="upper"),
    pytest.param("a.example.com.", "a.example.com", id="trailing-dot"),
    pytest.param("a.example.com.:8080", "a.example.com", id="dot-and-port"),
    pytest.param("127.0.0.1:80", "127.0.0.1", id="ipv4-port"),
    pytest.param("[::1]:8080", "[::1]", id="ipv6-port"),
    pytest.param("", "", id="empty"),
])
def test_normalise_host(host: str, expected: str) -> None:
    assert match.normalise_host(host) == expected


@pytest.mark.parametrize(("host", "expected"), [
    pytest.param("a.example.com", "exact", id="exact"),
    pytest.param("x.example.com", "one-label", id="one-label-merged-wildcard"),
    pytest.param("x.b.example.com", "one-label-b", id="longer-one-label-suffix"),
    pytest.param("x.y.b.example.com", "any-labels", id="one-label-only-one"),
    pytest.param("x.deep.example.com", "deep", id="suffix-one-label"),
    pytest.param("x.y.deep.example.com", "deep", id="suffix-two-labels"),
    pytest.param("x.y.z.example.com", "any-labels", id="suffix-three-labels"),
    pytest.param("example.com", "default", id="apex-default"),
    pytest.param("other.org", "default", id="other-default"),
    pytest.param("localhost", "default", id="single-label"),
])
def test_host_choice(host: str, expected: str) -> None:
    assert routed(TABLE, f"{host}/") == expected


def test_unknown_port_and_no_default_host() -> None:
    table = RouteTable({80: PortRoutes(80, exact_hosts={"a.com": vhost("a")})})
    assert get(table, "a.com/", port=81).status == 404
    assert get(table, "b.com/").status == 404


ROUTES = VirtualHost((
    Route(PathMatch(PathType.EXACT, "/exact"), "t", backends=(backend("exact"),)),
    Route(PathMatch(PathType.REGEX, "/items/[0-9]+"), "t", backends=(backend("regex"),)),
    prefix("/api", backend("api-v2"), headers=(ValueMatch("x-version", "2"),)),
    prefix("/api", backend("api-beta"), headers=(ValueMatch("x-beta", "y(es)?", MatchType.REGEX),)),
    prefix("/api", backend("api-post"), method="POST"),
    prefix("/api", backend("api-q"), query=(ValueMatch("debug", "1"),)),
    prefix("/api", backend("api")),
    prefix("/empty", backend("none", endpoints=0)),
    prefix("/unresolved", backend("gone", endpoints=0, status=500)),
    prefix("/zero", backend("zero", weight=0), status_when_empty=500),
))
MATCHES = RouteTable({80: PortRoutes(80, default_host=ROUTES)})


@pytest.mark.parametrize(("url", "method", "headers", "expected"), [
    pytest.param("h/exact", "GET", {}, "exact", id="exact"),
    pytest.param("h/exact/", "GET", {}, "404", id="exact-no-slash"),
    pytest.param("h/items/42", "GET", {}, "regex", id="regex-full-match"),
    pytest.param("h/items/42x", "GET", {}, "404", id="regex-not-partial"),
    pytest.param("h/api/x", "GET", {"x-version": "2"}, "api-v2", id="header"),
    pytest.param("h/api/x", "GET", {"x-version": "3"}, "api", id="header-other-value"),
    pytest.param("h/api", "GET", {"x-beta": "yes"}, "api-beta", id="header-regex"),
    pytest.param("h/api", "GET", {"x-beta": "yess"}, "api", id="header-regex-full"),
    pytest.param("h/api", "POST", {}, "api-post", id="method"),
    pytest.param("h/api?debug=1&debug=2", "GET", {}, "api-q", id="query-first-value"),
    pytest.param("h/api?debug=2&debug=1", "GET", {}, "api", id="query-later-value-ignored"),
    pytest.param("h/api?x=1&debug=1", "GET", {}, "api-q", id="query-among-others"),
    pytest.param("h/apix", "GET", {}, "404", id="prefix-element-wise"),
    pytest.param("h/empty", "GET", {}, "503", id="no-endpoints"),
    pytest.param("h/unresolved", "GET", {}, "500", id="unresolved-backend"),
    pytest.param("h/zero", "GET", {}, "500", id="only-weight-zero"),
])
def test_matches(url: str, method: str, headers: dict[str, str], expected: str) -> None:
    assert routed(MATCHES, url, method=method, headers=headers) == expected


def test_weights_follow_rand() -> None:
    route = prefix("/", backend("a", 3), backend("never", 0), backend("b", 1))
    table = RouteTable({80: PortRoutes(80, default_host=VirtualHost((route,)))})
    picks = []
    for value in (0.0, 0.74, 0.75, 0.999):
        decision = match.lookup(table, 80, "h", "/", "GET", {}, "", lambda v=value: v)
        assert decision.backend is not None
        picks.append(decision.backend.name)
    assert picks == ["a", "a", "b", "b"]


def test_lookup_speed_in_1000_host_table() -> None:
    """Measured: µs per lookup in a table of 1,000 hosts x 3 paths (printed with -s)."""
    hosts = [f"host{i}.example.com" for i in range(1000)]
    ing = ingress("big", *(rule(h, path("/", "web"), path("/api", "web"), path("/static/img", "web", type_="Exact"))
                           for h in hosts), rule("*.wild.example.com", path("/", "web")))
    table = compile_routes(objects(ingress_class(), ing, *backend_objects("web")), CONFIG).table
    requests = [(f"Host{i * 7 % 1000}.example.com:80", "/api/v1/users") for i in range(1000)]
    requests += [(f"x{i}.wild.example.com", "/") for i in range(200)] + [("nowhere.org", "/") for _ in range(100)]
    for host, p in requests:  # warm up, and check the answers
        decision = match.lookup(table, 80, host, p, "GET", {}, "", half)
        assert decision.status == (404 if host == "nowhere.org" else 0)
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        for host, p in requests:
            match.lookup(table, 80, host, p, "GET", {}, "", half)
    micros = (time.perf_counter() - start) / (rounds * len(requests)) * 1e6
    print(f"\nlookup: {micros:.2f} µs per request in a {len(hosts)}-host table")
    assert micros < 50


def half() -> float:
    return 0.5


# ---- the memo ------------------------------------------------------------------------------------------------

_PATHS = ("/", "/a", "/a/b", "/ab", "/api", "/api/x", "/items/7", "/items/x", "/exact")
_HOSTS = ("a.test", "A.TEST:80", "b.test.", "x.wild.test", "y.x.wild.test", "other.org", "[::1]:80", "")


def _random_route(rng: random.Random, n: int) -> Route:
    kind = rng.choice((PathType.PREFIX, PathType.PREFIX, PathType.EXACT, PathType.REGEX))
    value = {PathType.PREFIX: rng.choice(("/", "/a", "/api")), PathType.EXACT: rng.choice(("/exact", "/a")),
             PathType.REGEX: "/items/[0-9]+"}[kind]
    extras: dict[str, Any] = {}
    if rng.random() < 0.2:
        extras["method"] = rng.choice(("GET", "POST"))
    if rng.random() < 0.15:
        extras["headers"] = (ValueMatch("x-v", rng.choice(("1", "2"))),)
    if rng.random() < 0.15:
        extras["query"] = (ValueMatch("q", "1"),)
    if rng.random() < 0.1:
        extras["redirect"] = Redirect(hostname="r.test", prefix_path="/new")
    else:
        extras["backends"] = tuple(backend(f"b{n}-{i}", rng.choice((0, 1, 3)), rng.choice((0, 1, 2)))
                                   for i in range(rng.choice((0, 1, 1, 1, 2, 3))))
    return Route(PathMatch(kind, value), f"t/{n}", **extras)


def _random_table(rng: random.Random) -> RouteTable:
    def vhost() -> VirtualHost:
        return VirtualHost(tuple(_random_route(rng, rng.randrange(1000)) for _ in range(rng.randrange(0, 5))))

    ports = {}
    for port in rng.sample((80, 443, 8080), rng.randrange(1, 3)):
        ports[port] = PortRoutes(port, exact_hosts={"a.test": vhost(), "b.test": vhost()},
                                 wildcard_hosts=((".wild.test", vhost()),) if rng.random() < 0.5 else (),
                                 suffix_hosts=((".wild.test", vhost()),) if rng.random() < 0.3 else (),
                                 default_host=vhost() if rng.random() < 0.5 else None)
    return RouteTable(ports)


def test_memoised_lookup_equals_plain_lookup() -> None:
    """Over many random tables and requests (each key seen with varying headers, query and rand), the memoised
    lookup answers exactly what the plain one does; and the memo is really used."""
    rng = random.Random(8)
    memoised = 0
    for _ in range(200):
        table = _random_table(rng)
        for _ in range(300):
            port, host, p = rng.choice((80, 443, 8080, 9999)), rng.choice(_HOSTS), rng.choice(_PATHS)
            method, value = rng.choice(("GET", "POST")), rng.random()
            headers = {"x-v": rng.choice(("1", "2"))} if rng.random() < 0.5 else {}
            query = rng.choice(("", "q=1", "q=2&x=y"))
            got = match.lookup(table, port, host, p, method, headers, query, fixed(value))
            assert got == match.lookup_plain(table, port, host, p, method, headers, query, fixed(value))
        memoised += len(table.memo)
        assert all(d.location is None and (d.route is None or len(d.route.backends) <= 1)
                   for d in table.memo.values())
    assert memoised > 1000


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


def test_memo_is_bounded_and_per_table() -> None:
    table = RouteTable({80: PortRoutes(80, default_host=VirtualHost((prefix("/", backend("a")),)))})
    for i in range(match._MEMO_MAX + 10):
        assert match.lookup(table, 80, "h", f"/{i}", "GET", {}, "", half).backend == backend("a")
        assert len(table.memo) <= match._MEMO_MAX
    match.lookup(table, 80, "h", "/" + "x" * match._MEMO_KEY_MAX, "GET", {}, "", half)
    assert ("/" + "x" * match._MEMO_KEY_MAX) not in {key[2] for key in table.memo}
    fresh = RouteTable(table.ports)
    assert fresh.memo == {} and fresh == table
