"""Gateway API v1 → route table and statuses: conditions for every reason, listener merging and conflicts,
hostname intersection, the HTTPRoute spec's precedence, weights, redirects, header modifiers, ReferenceGrant.

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/ingress`.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from svcnet.ingress import match
from svcnet.ingress.common import Config
from svcnet.ingress.gateway_compile import intersect_hostnames
from svcnet.ingress.routes import compile_routes
from svcnet.ingress.show import render_table

from .builders import (
    CONFIG,
    backend_objects,
    backend_ref,
    gateway,
    gateway_class,
    get,
    http_route,
    http_rule,
    ingress,
    ingress_class,
    listener,
    namespace,
    objects,
    parent,
    path,
    reference_grant,
    routed,
    rule,
    service,
    tls_secret,
)
from .test_ingress_compile import check_golden

Obj = dict[str, Any]


def compile_(*objs: Obj, config: Config = CONFIG) -> Any:
    return compile_routes(objects(gateway_class(), *objs), config)


def conditions(status: Obj) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def listener_conditions(compiled: Any, gw: str = "gw", ns: str = "default") -> dict[str, dict[str, tuple[str, str]]]:
    status = compiled.statuses[("Gateway", ns, gw)]
    return {entry["name"]: conditions(entry) for entry in status["listeners"]}


def parent_conditions(compiled: Any, route: str = "r", ns: str = "default") -> list[dict[str, tuple[str, str]]]:
    return [conditions(p) for p in compiled.statuses[("HTTPRoute", ns, route)]["parents"]]


# ---- GatewayClass and Gateway --------------------------------------------------------------------------------


def test_gateway_class_accepted_only_when_ours() -> None:
    compiled = compile_(gateway_class("other", "example.com/other"))
    assert conditions(compiled.statuses[("GatewayClass", "", "svcnet")]) == {"Accepted": ("True", "Accepted")}
    assert ("GatewayClass", "", "other") not in compiled.statuses


def test_gateway_of_other_class_ignored() -> None:
    compiled = compile_(gateway("gw", listener("http"), cls="other"), http_route("r", http_rule(backend_ref("web"))),
                        *backend_objects("web"))
    assert compiled.statuses.keys() == {("GatewayClass", "", "svcnet")}
    assert compiled.table.ports == {}


def test_golden_statuses() -> None:
    compiled = compile_(
        gateway("gw", listener("http", 8080, hostname="*.example.com"), listener("tcp", 9000, "TCP"),
                listener("https", 8443, "HTTPS", hostname="secure.example.com")),
        http_route("r", http_rule(backend_ref("web")), hostnames=["www.example.com"]),
        http_route("bad", http_rule(backend_ref("missing")), parents=[parent(section="https")]),
        tls_secret("gw-cert"), *backend_objects("web"))
    statuses = {"/".join(k): v for k, v in sorted(compiled.statuses.items())}
    check_golden("gateway_statuses.json", json.dumps(statuses, indent=1, sort_keys=True) + "\n")
    check_golden("gateway_table.txt", render_table(compiled.table))


@pytest.mark.parametrize(("listeners", "extra", "expected"), [
    pytest.param([listener("tcp", 9000, "TCP")], [], {"tcp": {
        "Accepted": ("False", "UnsupportedProtocol"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("True", "ResolvedRefs")}}, id="unsupported-protocol"),
    pytest.param([listener("https", 8443, "HTTPS", mode="Passthrough")], [], {"https": {
        "Accepted": ("False", "UnsupportedProtocol"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("True", "ResolvedRefs")}}, id="https-passthrough"),
    pytest.param([listener("https", 8443, "HTTPS")], [], {"https": {
        "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("False", "InvalidCertificateRef")}}, id="secret-missing"),
    pytest.param([listener("https", 8443, "HTTPS")], [tls_secret("gw-cert", type_="Opaque")], {"https": {
        "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("False", "InvalidCertificateRef")}}, id="secret-not-tls"),
    pytest.param([listener("https", 8443, "HTTPS", certs=[{"kind": "ConfigMap", "name": "x"}])], [], {"https": {
        "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("False", "InvalidCertificateRef")}}, id="cert-not-secret"),
    pytest.param([listener("https", 8443, "HTTPS", certs=[{"name": "c", "namespace": "certs"}])],
                 [tls_secret("c", ns="certs")], {"https": {
                     "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
                     "Programmed": ("False", "Invalid"), "ResolvedRefs": ("False", "RefNotPermitted")}},
                 id="cert-other-namespace-no-grant"),
    pytest.param([listener("https", 8443, "HTTPS", certs=[{"name": "c", "namespace": "certs"}])],
                 [tls_secret("c", ns="certs"), reference_grant("certs", "Gateway", "default", "Secret")], {"https": {
                     "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
                     "Programmed": ("True", "Programmed"), "ResolvedRefs": ("True", "ResolvedRefs")}},
                 id="cert-other-namespace-granted"),
    pytest.param([listener("http", kinds=[{"kind": "TCPRoute"}])], [], {"http": {
        "Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("False", "InvalidRouteKinds")}}, id="invalid-kinds"),
    pytest.param([listener("a", 8080), listener("b", 8080, "HTTPS")], [tls_secret("gw-cert")], {
        "a": {"Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
              "Programmed": ("True", "Programmed"), "ResolvedRefs": ("True", "ResolvedRefs")},
        "b": {"Accepted": ("True", "Accepted"), "Conflicted": ("True", "ProtocolConflict"),
              "Programmed": ("False", "Invalid"), "ResolvedRefs": ("True", "ResolvedRefs")}},
        id="protocol-conflict-in-gateway"),
    pytest.param([listener("a", 8080, hostname="x.com"), listener("b", 8080, hostname="x.com")], [], {
        "a": {"Accepted": ("True", "Accepted"), "Conflicted": ("False", "NoConflicts"),
              "Programmed": ("True", "Programmed"), "ResolvedRefs": ("True", "ResolvedRefs")},
        "b": {"Accepted": ("True", "Accepted"), "Conflicted": ("True", "HostnameConflict"),
              "Programmed": ("False", "Invalid"), "ResolvedRefs": ("True", "ResolvedRefs")}},
        id="hostname-conflict-in-gateway"),
    pytest.param([listener("https", 80, "HTTPS")], [tls_secret("gw-cert")], {"https": {
        "Accepted": ("True", "Accepted"), "Conflicted": ("True", "ProtocolConflict"),
        "Programmed": ("False", "Invalid"), "ResolvedRefs": ("True", "ResolvedRefs")}}, id="https-on-ingress-http-port"),
])
def test_listener_conditions(listeners: list[Obj], extra: list[Obj], expected: Obj) -> None:
    compiled = compile_(gateway("gw", *listeners), *extra)
    assert listener_conditions(compiled) == expected
    programmed = any(c["Programmed"][0] == "True" for c in expected.values())
    gw = conditions(compiled.statuses[("Gateway", "default", "gw")])
    assert gw["Programmed"] == (("True", "Programmed") if programmed else ("False", "Invalid"))
    assert bool(compiled.statuses[("Gateway", "default", "gw")]["addresses"]) is programmed
    failed = any(c["Programmed"][0] == "False" for c in expected.values())
    assert bool(compiled.problems) is failed  # every failed listener is also reported


def test_gateway_accepted_reasons() -> None:
    compiled = compile_(gateway("gw", listener("http"), listener("tcp", 9000, "TCP")),
                        gateway("udp", listener("udp", 9001, "UDP")), gateway("ok", listener("http")))
    assert conditions(compiled.statuses[("Gateway", "default", "gw")])["Accepted"] == ("True", "ListenersNotValid")
    assert conditions(compiled.statuses[("Gateway", "default", "udp")])["Accepted"] == ("False", "ListenersNotValid")
    assert conditions(compiled.statuses[("Gateway", "default", "ok")]) == {
        "Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}
    assert compiled.statuses[("Gateway", "default", "ok")]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]


def test_cross_gateway_protocol_conflict_older_wins() -> None:
    compiled = compile_(gateway("young", listener("https", 8080, "HTTPS"), created=9),
                        gateway("old", listener("http", 8080), created=1),
                        tls_secret("gw-cert"), http_route("r", http_rule(backend_ref("web")), parents=[parent("old")]),
                        *backend_objects("web"))
    assert listener_conditions(compiled, "young")["https"]["Conflicted"] == ("True", "ProtocolConflict")
    assert listener_conditions(compiled, "old")["http"]["Conflicted"] == ("False", "NoConflicts")
    assert not compiled.table.ports[8080].tls
    assert routed(compiled.table, "any/", port=8080) == "default/web:80"


def test_listeners_on_one_port_merge_by_hostname() -> None:
    compiled = compile_(gateway("a", listener("l", 8080, hostname="a.com")),
                        gateway("b", listener("l", 8080, hostname="b.com")),
                        gateway("c", listener("l", 8080, hostname="a.com"), created=3),
                        http_route("ra", http_rule(backend_ref("web-a"), path=("PathPrefix", "/a")), parents=[parent("a")]),
                        http_route("rb", http_rule(backend_ref("web-b")), parents=[parent("b")]),
                        http_route("rc", http_rule(backend_ref("web-c")), parents=[parent("c")]),
                        *backend_objects("web-a", "web-b", "web-c"))
    table = compiled.table
    assert [routed(table, u, port=8080) for u in ("a.com/a/1", "a.com/x", "b.com/a", "c.com/")] == [
        "default/web-a:80", "default/web-c:80", "default/web-b:80", "404"]
    assert all(c["l"]["Conflicted"] == ("False", "NoConflicts")
               for c in (listener_conditions(compiled, g) for g in "abc"))


# ---- hostnames -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("listener_host", "route_hosts", "expected"), [
    pytest.param("", [], [""], id="none-none-any"),
    pytest.param("", ["a.com", "*.b.com"], ["a.com", "*.b.com"], id="listener-any"),
    pytest.param("*.example.com", [], ["*.example.com"], id="route-any"),
    pytest.param("test.example.com", ["test.example.com"], ["test.example.com"], id="exact-equal"),
    pytest.param("test.example.com", ["*.example.com"], ["test.example.com"], id="exact-listener-wild-route"),
    pytest.param("*.example.com", ["test.example.com", "foo.test.example.com"],
                 ["test.example.com", "foo.test.example.com"], id="wild-listener-deep"),
    pytest.param("*.example.com", ["example.com", "test.example.net"], [], id="wild-listener-no-apex"),
    pytest.param("*.example.com", ["*.foo.example.com"], ["*.foo.example.com"], id="both-wild-route-narrower"),
    pytest.param("*.foo.example.com", ["*.example.com"], ["*.foo.example.com"], id="both-wild-listener-narrower"),
    pytest.param("*.example.com", ["*.example.net"], [], id="both-wild-disjoint"),
    pytest.param("a.com", ["b.com"], [], id="exact-disjoint"),
])
def test_intersect_hostnames(listener_host: str, route_hosts: list[str], expected: list[str]) -> None:
    assert intersect_hostnames(listener_host, route_hosts) == expected


@pytest.mark.parametrize(("host", "expected"), [
    pytest.param("test.example.com", "default/exact:80", id="exact-route"),
    pytest.param("foo.test.example.com", "default/deep:80", id="route-wildcard-deeper"),
    pytest.param("a.b.test.example.com", "default/deep:80", id="route-wildcard-two-labels"),
    pytest.param("other.example.com", "default/listener:80", id="listener-wildcard"),
    pytest.param("a.b.example.com", "default/listener:80", id="listener-wildcard-any-labels"),
    pytest.param("example.com", "404", id="apex-no-match"),
])
def test_wildcard_listener_routing(host: str, expected: str) -> None:
    compiled = compile_(gateway("gw", listener("l", 8080, hostname="*.example.com")),
                        http_route("r1", http_rule(backend_ref("exact")), hostnames=["test.example.com"]),
                        http_route("r2", http_rule(backend_ref("deep")), hostnames=["*.test.example.com"]),
                        http_route("r3", http_rule(backend_ref("listener"))),
                        *backend_objects("exact", "deep", "listener"))
    assert routed(compiled.table, f"{host}/", port=8080) == expected


# ---- HTTPRoute attachment -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gw_listeners", "route", "extra", "accepted"), [
    pytest.param([listener("http")], http_route("r", http_rule(backend_ref("web"))), [], ("True", "Accepted"),
                 id="accepted"),
    pytest.param([listener("http")], http_route("r", http_rule(backend_ref("web")), parents=[parent(section="x")]),
                 [], ("False", "NoMatchingParent"), id="no-such-section"),
    pytest.param([listener("http")], http_route("r", http_rule(backend_ref("web")), parents=[parent(port=81)]),
                 [], ("False", "NoMatchingParent"), id="no-such-port"),
    pytest.param([listener("http", 80), listener("alt", 8080)],
                 http_route("r", http_rule(backend_ref("web")), parents=[parent(section="alt", port=8080)]),
                 [], ("True", "Accepted"), id="section-and-port"),
    pytest.param([listener("http")], http_route("r", http_rule(backend_ref("web")), ns="team",
                                                parents=[parent(ns="default")]),
                 [], ("False", "NotAllowedByListeners"), id="same-namespace-only"),
    pytest.param([listener("http", from_="All")], http_route("r", http_rule(backend_ref("web")), ns="team",
                                                             parents=[parent(ns="default")]),
                 [], ("True", "Accepted"), id="all-namespaces"),
    pytest.param([listener("http", from_="Selector", selector={"matchLabels": {"env": "prod"}})],
                 http_route("r", http_rule(backend_ref("web")), ns="team", parents=[parent(ns="default")]),
                 [namespace("team", env="prod")], ("True", "Accepted"), id="selector-match"),
    pytest.param([listener("http", from_="Selector", selector={"matchLabels": {"env": "prod"}})],
                 http_route("r", http_rule(backend_ref("web")), ns="team", parents=[parent(ns="default")]),
                 [namespace("team", env="dev")], ("False", "NotAllowedByListeners"), id="selector-no-match"),
    pytest.param([listener("http", kinds=[{"kind": "GRPCRoute"}])], http_route("r", http_rule(backend_ref("web"))),
                 [], ("False", "NotAllowedByListeners"), id="kind-not-allowed"),
    pytest.param([listener("http", hostname="a.com")],
                 http_route("r", http_rule(backend_ref("web")), hostnames=["b.com"]),
                 [], ("False", "NoMatchingListenerHostname"), id="hostname-mismatch"),
    pytest.param([listener("http")],
                 http_route("r", http_rule(backend_ref("web"), filters=[{"type": "URLRewrite", "urlRewrite": {}}])),
                 [], ("False", "UnsupportedValue"), id="unsupported-filter"),
    pytest.param([listener("http")],
                 http_route("r", http_rule(backend_ref("web"), path=("RegularExpression", "/a(["))),
                 [], ("False", "UnsupportedValue"), id="invalid-regex"),
    pytest.param([listener("http")],
                 http_route("r", http_rule(backend_ref("web"), headers=[{"name": "x", "value": "(",
                                                                         "type": "RegularExpression"}])),
                 [], ("False", "UnsupportedValue"), id="invalid-header-regex"),
])
def test_route_accepted(gw_listeners: list[Obj], route: Obj, extra: list[Obj], accepted: tuple[str, str]) -> None:
    compiled = compile_(gateway("gw", *gw_listeners), route, *extra, *backend_objects("web", ns=route["metadata"]
                                                                                       ["namespace"]))
    ns = route["metadata"]["namespace"]
    [parent_status] = compiled.statuses[("HTTPRoute", ns, "r")]["parents"]
    assert parent_status["controllerName"] == "svcnet.io/gateway-controller"
    assert parent_status["parentRef"] == route["spec"]["parentRefs"][0]
    assert conditions(parent_status)["Accepted"] == accepted
    attached = sum(entry["attachedRoutes"] for entry in compiled.statuses[("Gateway", "default", "gw")]["listeners"])
    port = gw_listeners[-1]["port"]
    served = routed(compiled.table, "a.com/", port=port) == f"{ns}/web:80" if port in compiled.table.ports else False
    assert served is (accepted[0] == "True")
    if accepted[1] != "UnsupportedValue":
        assert attached == (1 if accepted[0] == "True" else 0)


def test_route_to_unknown_gateway_gets_no_status() -> None:
    compiled = compile_(gateway("gw", listener("http")),
                        http_route("r", http_rule(backend_ref("web")), parents=[parent("elsewhere")]))
    assert ("HTTPRoute", "default", "r") not in compiled.statuses


def test_other_controllers_parent_status_kept() -> None:
    route = http_route("r", http_rule(backend_ref("web")))
    theirs = {"parentRef": {"name": "their-gw"}, "controllerName": "example.com/other", "conditions": []}
    route["status"] = {"parents": [theirs]}
    compiled = compile_(gateway("gw", listener("http")), route, *backend_objects("web"))
    parents = compiled.statuses[("HTTPRoute", "default", "r")]["parents"]
    assert parents[0] == theirs and parents[1]["controllerName"] == "svcnet.io/gateway-controller"


@pytest.mark.parametrize(("ref", "extra", "resolved"), [
    pytest.param(backend_ref("web"), [], ("True", "ResolvedRefs"), id="resolved"),
    pytest.param(backend_ref("missing"), [], ("False", "BackendNotFound"), id="service-missing"),
    pytest.param(backend_ref("web", port=81), [], ("False", "BackendNotFound"), id="port-missing"),
    pytest.param(backend_ref("web", kind="ConfigMap"), [], ("False", "InvalidKind"), id="invalid-kind"),
    pytest.param(backend_ref("web", ns="other"), [], ("False", "RefNotPermitted"), id="cross-namespace"),
    pytest.param(backend_ref("web", ns="other"), [reference_grant("other", "HTTPRoute", "default", "Service")],
                 ("True", "ResolvedRefs"), id="cross-namespace-granted"),
    pytest.param(backend_ref("web", ns="other"), [reference_grant("other", "HTTPRoute", "default", "Service", "db")],
                 ("False", "RefNotPermitted"), id="grant-for-another-name"),
    pytest.param(backend_ref("web", ns="other"), [reference_grant("other", "HTTPRoute", "team", "Service")],
                 ("False", "RefNotPermitted"), id="grant-from-another-namespace"),
    pytest.param(backend_ref("web", ns="other"), [reference_grant("other", "Gateway", "default", "Service")],
                 ("False", "RefNotPermitted"), id="grant-for-another-kind"),
])
def test_backend_refs_resolved(ref: Obj, extra: list[Obj], resolved: tuple[str, str]) -> None:
    compiled = compile_(gateway("gw", listener("http")), http_route("r", http_rule(ref)), *extra,
                        *backend_objects("web"), *backend_objects("web", ns="other"))
    [status] = parent_conditions(compiled)
    assert status["ResolvedRefs"] == resolved
    assert status["Accepted"] == ("True", "Accepted")
    expected = f"{ref.get('namespace', 'default')}/web:80" if resolved[0] == "True" else "500"
    assert routed(compiled.table, "a.com/") == expected


def test_unresolved_share_answered_500() -> None:
    compiled = compile_(gateway("gw", listener("http")),
                        http_route("r", http_rule(backend_ref("web", weight=1), backend_ref("missing", weight=1))),
                        *backend_objects("web"))
    answers = [routed(compiled.table, "a.com/", seed=seed) for seed in range(400)]
    assert set(answers) == {"default/web:80", "500"}
    assert 150 < answers.count("500") < 250


def test_no_endpoints_503_and_no_backends_500() -> None:
    compiled = compile_(gateway("gw", listener("http")),
                        http_route("r", http_rule(backend_ref("empty"), path=("PathPrefix", "/empty")),
                                   http_rule(path=("PathPrefix", "/none")),
                                   http_rule(backend_ref("web", weight=0), path=("PathPrefix", "/zero"))),
                        service("empty"), *backend_objects("web"))
    assert [routed(compiled.table, f"a.com/{p}") for p in ("empty", "none", "zero")] == ["503", "500", "500"]


# ---- precedence (HTTPRouteRule docs: Exact, longest prefix, method, headers, query; oldest route; name) --------


def _precedence_table(*routes: Obj) -> Any:
    names = sorted({ref["name"] for r in routes for rl in r["spec"]["rules"] for ref in rl["backendRefs"]})
    return compile_(gateway("gw", listener("http")), *routes, *backend_objects(*names)).table


@pytest.mark.parametrize(("routes", "url", "headers", "method", "expected"), [
    pytest.param([http_route("r", http_rule(backend_ref("prefix"), path=("PathPrefix", "/foo")),
                             http_rule(backend_ref("exact"), path=("Exact", "/foo")))],
                 "a/foo", {}, "GET", "exact", id="exact-before-prefix"),
    pytest.param([http_route("r", http_rule(backend_ref("short"), path=("PathPrefix", "/foo")),
                             http_rule(backend_ref("long"), path=("PathPrefix", "/foo/bar")))],
                 "a/foo/bar/baz", {}, "GET", "long", id="longest-prefix"),
    pytest.param([http_route("r", http_rule(backend_ref("any"), path=("PathPrefix", "/")),
                             http_rule(backend_ref("post"), path=("PathPrefix", "/"), method="POST"))],
                 "a/x", {}, "POST", "post", id="method-match-first"),
    pytest.param([http_route("r", http_rule(backend_ref("one"), headers=[{"name": "a", "value": "1"}]),
                             http_rule(backend_ref("two"), headers=[{"name": "a", "value": "1"},
                                                                     {"name": "B", "value": "2"}]))],
                 "a/x", {"a": "1", "b": "2"}, "GET", "two", id="more-headers-first"),
    pytest.param([http_route("r", http_rule(backend_ref("one"), headers=[{"name": "a", "value": "1"}]),
                             http_rule(backend_ref("two"), headers=[{"name": "a", "value": "1"},
                                                                     {"name": "b", "value": "2"}]))],
                 "a/x", {"a": "1", "b": "3"}, "GET", "one", id="fewer-headers-when-more-fail"),
    pytest.param([http_route("r", http_rule(backend_ref("none"), path=("PathPrefix", "/")),
                             http_rule(backend_ref("q"), query=[{"name": "v", "value": "2"}]))],
                 "a/x?v=2&v=3", {}, "GET", "q", id="query-match-first"),
    pytest.param([http_route("r", http_rule(backend_ref("none"), path=("PathPrefix", "/")),
                             http_rule(backend_ref("q"), query=[{"name": "V", "value": "2"}]))],
                 "a/x?v=2", {}, "GET", "none", id="query-name-case-sensitive"),
    pytest.param([http_route("young", http_rule(backend_ref("young")), created=9),
                  http_route("old", http_rule(backend_ref("old")), created=1)],
                 "a/x", {}, "GET", "old", id="oldest-route"),
    pytest.param([http_route("b", http_rule(backend_ref("b"))), http_route("a", http_rule(backend_ref("a")))],
                 "a/x", {}, "GET", "a", id="alphabetical-on-tie"),
    pytest.param([http_route("r", http_rule(backend_ref("first")), http_rule(backend_ref("second")))],
                 "a/x", {}, "GET", "first", id="first-rule-on-tie"),
    pytest.param([http_route("r", http_rule(backend_ref("prefix"), path=("PathPrefix", "/v1")),
                             http_rule(backend_ref("regex"), path=("RegularExpression", "/v[0-9]+/.*")))],
                 "a/v1/users", {}, "GET", "regex", id="regex-before-prefix"),
    pytest.param([http_route("r", http_rule(backend_ref("h"), headers=[{"name": "x-v", "value": "v[0-9]",
                                                                        "type": "RegularExpression"}]))],
                 "a/x", {"x-v": "v7"}, "GET", "h", id="header-regex"),
])
def test_http_route_precedence(routes: list[Obj], url: str, headers: dict[str, str], method: str,
                               expected: str) -> None:
    assert routed(_precedence_table(*routes), url, headers=headers, method=method) == f"default/{expected}:80"


def test_ingress_and_http_route_share_one_order() -> None:
    """On the Ingress HTTP port, an HTTPRoute's longer prefix beats an Ingress's shorter one and vice versa."""
    compiled = compile_routes(objects(
        gateway_class(), ingress_class(), gateway("gw", listener("http", 80, hostname="shop.com")),
        ingress("i", rule("shop.com", path("/", "ing-root"), path("/api/v1", "ing-v1"))),
        http_route("r", http_rule(backend_ref("gw-api"), path=("PathPrefix", "/api"))),
        *backend_objects("ing-root", "ing-v1", "gw-api")), CONFIG)
    assert [routed(compiled.table, f"shop.com{p}") for p in ("/", "/api/x", "/api/v1/x")] == [
        "default/ing-root:80", "default/gw-api:80", "default/ing-v1:80"]


# ---- weights, redirects, header modifiers --------------------------------------------------------------------


def test_weighted_split_80_20() -> None:
    table = compile_(gateway("gw", listener("http")),
                     http_route("r", http_rule(backend_ref("a", weight=80), backend_ref("b", weight=20),
                                               backend_ref("never", weight=0))),
                     *backend_objects("a", "b", "never")).table
    rand = random.Random(42).random
    counts: dict[str, int] = {}
    for _ in range(10_000):
        decision = match.lookup(table, 80, "x.com", "/", "GET", {}, "", rand)
        assert decision.backend is not None
        counts[decision.backend.name] = counts.get(decision.backend.name, 0) + 1
    assert counts.keys() == {"default/a:80", "default/b:80"}
    assert abs(counts["default/a:80"] - 8_000) < 250  # ~6 standard deviations (sd = 40)


def redirect_filter(**fields: Any) -> Obj:
    return {"type": "RequestRedirect", "requestRedirect": fields}


@pytest.mark.parametrize(("redirect", "port", "tls", "url", "location", "code"), [
    pytest.param({"scheme": "https"}, 80, False, "a.com/x?q=1", "https://a.com/x?q=1", 302, id="to-https"),
    pytest.param({"scheme": "https", "statusCode": 301}, 8080, False, "a.com:8080/x", "https://a.com/x", 301,
                 id="scheme-gives-well-known-port"),
    pytest.param({"hostname": "b.com"}, 8080, False, "a.com/x", "http://b.com:8080/x", 302,
                 id="hostname-keeps-listener-port"),
    pytest.param({"port": 8443, "scheme": "https"}, 80, False, "a.com/x", "https://a.com:8443/x", 302,
                 id="explicit-port"),
    pytest.param({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}, 80, False, "a.com/old/deep",
                 "http://a.com/new", 302, id="replace-full-path"),
    pytest.param({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}, 80, False,
                 "a.com/old/deep", "http://a.com/new/deep", 302, id="replace-prefix"),
    pytest.param({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}, 80, False,
                 "a.com/old/deep", "http://a.com/deep", 302, id="replace-prefix-with-root"),
    pytest.param({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}, 80, False,
                 "a.com/old", "http://a.com/", 302, id="replace-whole-prefix-with-root"),
    pytest.param({"scheme": "http"}, 8443, True, "a.com/x", "http://a.com/x", 302, id="https-to-http"),
    pytest.param({}, 8443, True, "a.com/x", "https://a.com:8443/x", 302, id="https-listener-port"),
])
def test_redirects(redirect: Obj, port: int, tls: bool, url: str, location: str, code: int) -> None:
    lst = listener("l", port, "HTTPS" if tls else "HTTP")
    compiled = compile_(gateway("gw", lst), tls_secret("gw-cert"),
                        http_route("r", http_rule(path=("PathPrefix", "/old") if "Prefix" in str(redirect) else None,
                                                  filters=[redirect_filter(**redirect)])))
    decision = get(compiled.table, url, port=port)
    assert decision.location == location
    assert decision.route is not None and decision.route.redirect is not None
    assert decision.route.redirect.status_code == code and decision.status == 0


def test_replace_prefix_needs_path_prefix() -> None:
    compiled = compile_(gateway("gw", listener("http")), http_route("r", http_rule(
        path=("Exact", "/x"), filters=[redirect_filter(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})])))
    assert parent_conditions(compiled)[0]["Accepted"] == ("False", "UnsupportedValue")


def test_request_header_modifier() -> None:
    modifier = {"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Env", "value": "prod"}], "add": [{"name": "X-Trace", "value": "1"}],
        "remove": ["X-Debug"]}}
    compiled = compile_(gateway("gw", listener("http")), http_route("r", http_rule(backend_ref("web"),
                                                                                    filters=[modifier])),
                        *backend_objects("web"))
    decision = get(compiled.table, "a.com/")
    assert decision.route is not None and decision.backend is not None
    mod = decision.route.request_headers
    assert mod is not None
    assert (mod.set, mod.add, mod.remove) == ((("X-Env", "prod"),), (("X-Trace", "1"),), ("x-debug",))


# ---- statuses stay still when nothing changed ----------------------------------------------------------------


def test_unchanged_cluster_compiles_to_unchanged_status() -> None:
    objs = [gateway("gw", listener("http"), listener("tcp", 9000, "TCP")),
            http_route("r", http_rule(backend_ref("web"))), *backend_objects("web")]
    first = compile_(*objs)
    for obj in objs:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in first.statuses:
            obj["status"] = first.statuses[key]
    later = Config(clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
    second = compile_routes(objects(gateway_class(), *objs), later)
    gc_status = first.statuses[("GatewayClass", "", "svcnet")]
    assert {k: v for k, v in second.statuses.items() if k[0] != "GatewayClass"} == \
        {k: v for k, v in first.statuses.items() if k[0] != "GatewayClass"}
    # the GatewayClass object above had no status yet, so its condition is new at the later time
    assert second.statuses[("GatewayClass", "", "svcnet")] != gc_status


def test_transition_time_moves_when_status_flips() -> None:
    route = http_route("r", http_rule(backend_ref("missing")))
    first = compile_(gateway("gw", listener("http")), route)
    route["status"] = first.statuses[("HTTPRoute", "default", "r")]
    later = Config(clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
    second = compile_routes(objects(gateway_class(), gateway("gw", listener("http")), route,
                                    *backend_objects("missing")), later)
    times = {c["type"]: c["lastTransitionTime"] for c in second.statuses[("HTTPRoute", "default", "r")]["parents"][0]
             ["conditions"]}
    assert times == {"Accepted": "2026-01-02T03:04:05Z", "ResolvedRefs": "2026-06-01T00:00:00Z"}


def test_garbage_objects_do_not_crash() -> None:
    compiled = compile_(
        {"kind": "Gateway", "metadata": {"name": "gw", "namespace": "default"},
         "spec": {"gatewayClassName": "svcnet", "listeners": ["x", {"protocol": "HTTP", "port": "80"},
                                                              {"name": "ok", "protocol": "HTTP", "port": 8080,
                                                               "allowedRoutes": {"namespaces": {"from": "Selector",
                                                                                                "selector": {
                                                                   "matchExpressions": [{"operator": "Bogus"}]}}}}]}},
        {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "default"},
         "spec": {"parentRefs": [3, {"name": "gw"}], "hostnames": "x",
                  "rules": [5, {"matches": "y", "backendRefs": ["z", {"name": "web", "port": "80", "weight": "2"}],
                                "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]}]}})
    listeners = listener_conditions(compiled)
    assert listeners["#1"]["Accepted"] == ("False", "UnsupportedProtocol")
    assert listeners["ok"]["ResolvedRefs"][0] == "False"
    assert parent_conditions(compiled)[0]["Accepted"] == ("False", "NotAllowedByListeners")
