"""Ingress (networking.k8s.io/v1) → route table: the Kubernetes docs' tables, precedence, backends, TLS, classes.

Regenerate the golden files with `SVCNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/ingress`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from svcnet.ingress.common import Config
from svcnet.ingress.routes import ConfigError, compile_routes
from svcnet.ingress.show import render_table

from .builders import (
    CONFIG,
    backend_objects,
    endpoint_slice,
    ingress,
    ingress_class,
    objects,
    path,
    routed,
    rule,
    service,
    tls_secret,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SVCNET_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    file = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        file.write_text(text)
    assert text == file.read_text()


def compile_(*objs: dict[str, Any], config: Config = CONFIG) -> Any:
    return compile_routes(objects(ingress_class(), *objs), config)


# ---- kubernetes.io/docs/concepts/services-networking/ingress/#examples ---------------------------------------
# (path type, paths, request path, index of the matching path or None). Path i routes to service "s<i>".
DOCS_EXAMPLES = [
    ("Prefix", ["/"], "/anything/at/all", 0, "prefix-root-all-paths"),
    ("Exact", ["/foo"], "/foo", 0, "exact-foo-foo"),
    ("Exact", ["/foo"], "/bar", None, "exact-foo-bar"),
    ("Exact", ["/foo"], "/foo/", None, "exact-foo-foo-slash"),
    ("Exact", ["/foo/"], "/foo", None, "exact-foo-slash-foo"),
    ("Prefix", ["/foo"], "/foo", 0, "prefix-foo-foo"),
    ("Prefix", ["/foo"], "/foo/", 0, "prefix-foo-foo-slash"),
    ("Prefix", ["/foo/"], "/foo", 0, "prefix-foo-slash-foo"),
    ("Prefix", ["/foo/"], "/foo/", 0, "prefix-foo-slash-foo-slash"),
    ("Prefix", ["/aaa/bb"], "/aaa/bbb", None, "prefix-aaa-bb-aaa-bbb"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb", 0, "prefix-aaa-bbb-aaa-bbb"),
    ("Prefix", ["/aaa/bbb/"], "/aaa/bbb", 0, "prefix-ignores-trailing-slash"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/", 0, "prefix-matches-trailing-slash"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/ccc", 0, "prefix-matches-subpath"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbbxyz", None, "prefix-not-string-prefix"),
    ("Prefix", ["/", "/aaa"], "/aaa/ccc", 1, "prefix-longest-aaa"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/aaa/bbb", 2, "prefix-longest-aaa-bbb"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/ccc", 0, "prefix-falls-to-root"),
    ("Prefix", ["/aaa"], "/ccc", None, "prefix-no-match-default-backend"),
]


@pytest.mark.parametrize(("path_type", "paths", "request_path", "expected"),
                         [pytest.param(*case[:4], id=case[4]) for case in DOCS_EXAMPLES])
def test_docs_path_examples(path_type: str, paths: list[str], request_path: str, expected: int | None) -> None:
    names = [f"s{i}" for i in range(len(paths))]
    compiled = compile_(ingress("docs", rule("foo.com", *(path(p, f"s{i}", type_=path_type)
                                                          for i, p in enumerate(paths)))),
                        *backend_objects(*names))
    assert routed(compiled.table, f"foo.com{request_path}") == (
        "404" if expected is None else f"default/s{expected}:80")
    assert compiled.problems == ()


def test_docs_mixed_prefers_exact() -> None:
    compiled = compile_(ingress("mixed", rule("foo.com", path("/foo", "prefix", type_="Prefix"),
                                              path("/foo", "exact", type_="Exact"))),
                        *backend_objects("prefix", "exact"))
    assert routed(compiled.table, "foo.com/foo") == "default/exact:80"
    assert routed(compiled.table, "foo.com/foo/x") == "default/prefix:80"


@pytest.mark.parametrize(("rule_host", "request_host", "expected"), [
    pytest.param("*.foo.com", "bar.foo.com", "default/web:80", id="wildcard-shared-suffix"),
    pytest.param("*.foo.com", "baz.bar.foo.com", "404", id="wildcard-one-label-only"),
    pytest.param("*.foo.com", "foo.com", "404", id="wildcard-not-apex"),
    pytest.param("foo.bar.com", "foo.bar.com", "default/web:80", id="exact"),
    pytest.param("foo.bar.com", "FOO.Bar.com.:8080", "default/web:80", id="exact-normalised"),
    pytest.param("foo.bar.com", "bar.foo.com", "404", id="exact-other"),
    pytest.param(None, "anything.example", "default/web:80", id="no-host-any"),
])
def test_wildcard_hosts(rule_host: str | None, request_host: str, expected: str) -> None:
    compiled = compile_(ingress("hosts", rule(rule_host, path("/"))), *backend_objects("web"))
    assert routed(compiled.table, f"{request_host}/x") == expected


def test_exact_host_beats_wildcard_beats_default() -> None:
    compiled = compile_(ingress("hosts", rule("a.foo.com", path("/", "exact")), rule("*.foo.com", path("/", "wild")),
                                rule(None, path("/", "any"))),
                        *backend_objects("exact", "wild", "any"))
    table = compiled.table
    assert [routed(table, f"{h}/") for h in ("a.foo.com", "b.foo.com", "c.b.foo.com", "foo.com")] == [
        "default/exact:80", "default/wild:80", "default/any:80", "default/any:80"]


PRECEDENCE = [
    pytest.param([("/", "Prefix"), ("/api", "Prefix"), ("/api/v1", "Prefix")], "/api/v1/x", 2, id="longest-prefix"),
    pytest.param([("/api/v1", "Prefix"), ("/api", "Prefix")], "/api/v2", 1, id="order-independent"),
    pytest.param([("/api", "Prefix"), ("/api", "Exact")], "/api", 1, id="exact-before-prefix"),
    pytest.param([("/api/", "Prefix"), ("/api", "Exact")], "/api", 1, id="exact-before-prefix-slash"),
    pytest.param([("/api", "Exact"), ("/", "Prefix")], "/api/", 1, id="exact-needs-exact"),
    pytest.param([("/a", "ImplementationSpecific"), ("/ab", "Prefix")], "/a/b", 0, id="impl-specific-prefix"),
    pytest.param([("/a", "ImplementationSpecific")], "/ab", None, id="impl-specific-element-wise"),
]


@pytest.mark.parametrize(("paths", "request_path", "expected"), PRECEDENCE)
def test_precedence(paths: list[tuple[str, str]], request_path: str, expected: int | None) -> None:
    names = [f"s{i}" for i in range(len(paths))]
    compiled = compile_(ingress("p", rule("h.com", *(path(p, f"s{i}", type_=t) for i, (p, t) in enumerate(paths)))),
                        *backend_objects(*names))
    assert routed(compiled.table, f"h.com{request_path}") == ("404" if expected is None else f"default/s{expected}:80")


@pytest.mark.parametrize(("url", "expected"), [
    pytest.param("a.com/app", "default/app:80", id="host-path-match"),
    pytest.param("a.com/other", "default/fallback:80", id="host-match-no-path-falls-to-default-backend"),
    pytest.param("unknown.com/x", "default/fallback:80", id="unknown-host-default-backend"),
    pytest.param("b.com/anything", "default/fallback:80", id="rule-without-http"),
    pytest.param("nohost.com/open", "default/open:80", id="hostless-rule"),
])
def test_default_backend(url: str, expected: str) -> None:
    ing = ingress("d", rule("a.com", path("/app", "app")), rule(None, path("/open", "open")),
                  default_backend=("fallback", 80))
    ing["spec"]["rules"].append({"host": "b.com"})
    compiled = compile_(ing, *backend_objects("app", "fallback", "open"))
    assert routed(compiled.table, url) == expected


def test_no_default_backend_is_404() -> None:
    compiled = compile_(ingress("d", rule("a.com", path("/app", "app"))), *backend_objects("app"))
    assert routed(compiled.table, "a.com/other") == "404"
    assert routed(compiled.table, "b.com/app") == "404"


def test_oldest_default_backend_wins() -> None:
    compiled = compile_(ingress("young", created=5, default_backend=("young", 80)),
                        ingress("old", created=1, default_backend=("old", 80)), *backend_objects("young", "old"))
    assert routed(compiled.table, "x.com/") == "default/old:80"
    assert [p.reason for p in compiled.problems] == ["Conflict"]


def test_port_by_name_and_target_port_through_slices() -> None:
    svc = service("api", ports=[("web", 80), ("metrics", 9090)])
    eps = endpoint_slice("api", ["10.0.0.2", "10.0.0.1"], ports=[("web", 8080), ("metrics", 9100)],
                         not_ready=["10.0.0.9"])
    compiled = compile_(ingress("n", rule("a.com", path("/", "api", "metrics")),
                                rule("b.com", path("/", "api", 80))), svc, eps)
    metrics = routed(compiled.table, "a.com/")
    assert metrics == "default/api:9090"
    decision = compiled.table.ports[80].exact_hosts["a.com"].routes[0].backends[0]
    assert [(e.ip, e.port) for e in decision.endpoints] == [("10.0.0.1", 9100), ("10.0.0.2", 9100)]
    web = compiled.table.ports[80].exact_hosts["b.com"].routes[0].backends[0]
    assert [(e.ip, e.port) for e in web.endpoints] == [("10.0.0.1", 8080), ("10.0.0.2", 8080)]


@pytest.mark.parametrize(("backend_port", "objs", "reason", "status"), [
    pytest.param(80, [], "ServiceNotFound", "503", id="unknown-service"),
    pytest.param("nope", [service("web")], "ServicePortNotFound", "503", id="port-name-not-found"),
    pytest.param(81, [service("web")], "ServicePortNotFound", "503", id="port-number-not-found"),
    pytest.param(80, [service("web")], None, "503", id="no-endpoints"),
    pytest.param(80, [service("web"), endpoint_slice("web", [], not_ready=["10.0.0.1"])], None, "503",
                 id="only-unready-endpoints"),
])
def test_unresolved_backends(backend_port: int | str, objs: list[dict[str, Any]], reason: str | None,
                             status: str) -> None:
    compiled = compile_(ingress("u", rule("a.com", path("/", "web", backend_port))), *objs)
    assert routed(compiled.table, "a.com/") == status
    assert [p.reason for p in compiled.problems] == ([reason] if reason else [])


def test_legacy_converted_ingress() -> None:
    """What the API server stores for the seed's extensions/v1beta1 Ingress (serviceName/servicePort 80, no
    pathType, class by annotation)."""
    legacy = {
        "kind": "Ingress",
        "metadata": {"name": "legacy", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"kubernetes.io/ingress.class": "svcnet"}},
        "spec": {"rules": [{"host": "legacy.example.com", "http": {"paths": [
            {"path": "/", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
            {"http": {"paths": [{"pathType": "ImplementationSpecific",
                                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }
    compiled = compile_(legacy, *backend_objects("web"))
    assert routed(compiled.table, "legacy.example.com/a/b") == "default/web:80"
    assert routed(compiled.table, "other/") == "default/web:80"
    assert compiled.statuses[("Ingress", "default", "legacy")] == {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}


def test_merge_conflict_oldest_wins() -> None:
    compiled = compile_(ingress("young", rule("a.com", path("/x", "young")), created=9),
                        ingress("old", rule("a.com", path("/x/", "old"), path("/y", "y")), created=1),
                        *backend_objects("young", "old", "y"))
    assert routed(compiled.table, "a.com/x/1") == "default/old:80"
    assert routed(compiled.table, "a.com/y") == "default/y:80"
    assert [(p.name, p.reason) for p in compiled.problems] == [("young", "Conflict")]


@pytest.mark.parametrize(("ing", "classes", "watch_without_class", "ours"), [
    pytest.param({"class_name": "svcnet"}, [ingress_class()], False, True, id="class-ours"),
    pytest.param({"class_name": "nginx"}, [ingress_class("nginx", "k8s.io/ingress-nginx")], False, False,
                 id="class-other-controller"),
    pytest.param({"class_name": "missing"}, [ingress_class()], True, False, id="class-missing"),
    pytest.param({"class_name": None, "annotations": {"kubernetes.io/ingress.class": "svcnet"}},
                 [ingress_class()], False, True, id="legacy-annotation"),
    pytest.param({"class_name": None, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
                 [ingress_class()], True, False, id="legacy-annotation-other"),
    pytest.param({"class_name": None}, [ingress_class()], False, False, id="no-class-not-watched"),
    pytest.param({"class_name": None}, [ingress_class()], True, True, id="no-class-watched"),
    pytest.param({"class_name": None}, [ingress_class(default=True)], False, True, id="no-class-our-default"),
    pytest.param({"class_name": None}, [ingress_class("nginx", "k8s.io/ingress-nginx", default=True)], False, False,
                 id="no-class-other-default"),
])
def test_ingress_class_selection(ing: dict[str, Any], classes: list[dict[str, Any]], watch_without_class: bool,
                                 ours: bool) -> None:
    config = Config(clock=CONFIG.clock, watch_ingress_without_class=watch_without_class)
    compiled = compile_routes(objects(*classes, ingress("i", rule("a.com", path("/")), **ing),
                                      *backend_objects("web")), config)
    assert (("Ingress", "default", "i") in compiled.statuses) is ours
    assert routed(compiled.table, "a.com/") == ("default/web:80" if ours else "404")


@pytest.mark.parametrize(("address", "status"), [
    pytest.param("127.0.0.1", {"ip": "127.0.0.1"}, id="ipv4"),
    pytest.param("fd00::1", {"ip": "fd00::1"}, id="ipv6"),
    pytest.param("lb.example.com", {"hostname": "lb.example.com"}, id="hostname"),
])
def test_ingress_status_address(address: str, status: dict[str, str]) -> None:
    compiled = compile_(ingress("i", rule("a.com", path("/"))), config=Config(address=address, clock=CONFIG.clock))
    assert compiled.statuses == {("Ingress", "default", "i"): {"loadBalancer": {"ingress": [status]}}}


def test_tls_certificates() -> None:
    compiled = compile_(
        ingress("young", rule("b.com", path("/")), created=5, tls=[{"hosts": ["b.com"], "secretName": "b-tls"}]),
        ingress("old", rule("a.com", path("/")), created=1,
                tls=[{"hosts": ["a.com", "*.a.com"], "secretName": "a-tls"}, {"hosts": ["x.com"], "secretName": "gone"},
                     {"hosts": ["y.com"], "secretName": "opaque"}, {"hosts": ["z.com"], "secretName": "broken"}]),
        tls_secret("a-tls", crt=b"A-CERT", key=b"A-KEY"), tls_secret("b-tls", crt=b"B-CERT", key=b"B-KEY"),
        tls_secret("opaque", type_="Opaque"),
        {"kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "broken", "namespace": "default"},
         "data": {"tls.crt": "not base64!", "tls.key": ""}},
        *backend_objects("web"))
    https = compiled.table.ports[443]
    assert https.tls and not compiled.table.ports[80].tls
    assert [(c.source, c.hosts, c.cert_pem, c.key_pem) for c in https.certificates] == [
        ("default/a-tls", ("a.com", "*.a.com"), b"A-CERT", b"A-KEY"),
        ("default/b-tls", ("b.com",), b"B-CERT", b"B-KEY")]
    assert compiled.table.ports[80].certificates == ()
    assert routed(compiled.table, "a.com/", port=443) == routed(compiled.table, "a.com/", port=80) == "default/web:80"
    messages = [p.message for p in compiled.problems]
    assert all(p.reason == "InvalidTLS" for p in compiled.problems)
    assert any("gone not found" in m for m in messages)
    assert any("'Opaque', not kubernetes.io/tls" in m for m in messages)
    assert any("not valid base64" in m for m in messages)


@pytest.mark.parametrize(("bad", "reason"), [
    pytest.param(rule("a.*.com", path("/")), "InvalidHost", id="wildcard-not-first"),
    pytest.param(rule("a.com", path("relative", type_="Prefix")), "InvalidPath", id="relative-path"),
    pytest.param(rule("a.com", path("/", type_="Regex")), "InvalidPath", id="unknown-path-type"),
    pytest.param(rule("a.com", {"path": "/", "pathType": "Prefix",
                                "backend": {"resource": {"kind": "Bucket", "name": "b"}}}), "InvalidBackend",
                 id="resource-backend"),
])
def test_bad_rules_are_problems(bad: dict[str, Any], reason: str) -> None:
    compiled = compile_(ingress("bad", bad, rule("ok.com", path("/"))), *backend_objects("web"))
    assert [p.reason for p in compiled.problems] == [reason]
    assert routed(compiled.table, "ok.com/") == "default/web:80"


@pytest.mark.parametrize("config", [
    pytest.param(Config(http_port=0), id="port-zero"),
    pytest.param(Config(http_port=443), id="same-ports"),
    pytest.param(Config(address=""), id="no-address"),
])
def test_bad_config(config: Config) -> None:
    with pytest.raises(ConfigError):
        compile_routes({}, config)


def test_garbage_objects_do_not_crash() -> None:
    compiled = compile_routes({"Ingress": [None, {"spec": "x"}, {"metadata": 3, "spec": {"rules": [7, {"http": 1}]}}],
                               "Service": ["nope"]}, Config(watch_ingress_without_class=True, clock=CONFIG.clock))
    assert compiled.table.ports[80].exact_hosts == {}


def test_golden_ingress_table() -> None:
    compiled = compile_(
        ingress("shop", rule("shop.example.com", path("/", "web"), path("/api", "api", type_="Prefix"),
                             path("/healthz", "api", type_="Exact")),
                rule("*.shop.example.com", path("/", "web")), created=2,
                tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]),
        ingress("misc", rule(None, path("/static", "web")), created=3, default_backend=("fallback", "http")),
        tls_secret("shop-tls"), *backend_objects("web", "api", "fallback"))
    check_golden("ingress_table.txt", render_table(compiled.table))
