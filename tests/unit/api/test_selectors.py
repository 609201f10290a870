"""Label and field selectors: parsing, canonical rendering, matching and kube-apiserver's error wording."""

from __future__ import annotations

import pytest

from svcnet.api import selectors
from svcnet.api.selectors import SelectorError

# (selector text, canonical str(), labels, matches?)
MATCH_CASES = [
    pytest.param("", "", {"a": "b"}, True, id="empty-selects-all"),
    pytest.param("app=web", "app=web", {"app": "web"}, True, id="equals"),
    pytest.param("app==web", "app==web", {"app": "web"}, True, id="double-equals"),
    pytest.param("app=web", "app=web", {"app": "db"}, False, id="equals-other-value"),
    pytest.param("app=web", "app=web", {}, False, id="equals-missing-key"),
    pytest.param("app!=web", "app!=web", {}, True, id="not-equals-missing-key"),
    pytest.param("app!=web", "app!=web", {"app": "web"}, False, id="not-equals-same"),
    pytest.param("tier in (fe, be)", "tier in (be,fe)", {"tier": "be"}, True, id="in-sorted-values"),
    pytest.param("tier in (fe,be)", "tier in (be,fe)", {"tier": "db"}, False, id="in-miss"),
    pytest.param("tier notin (fe)", "tier notin (fe)", {}, True, id="notin-missing-key"),
    pytest.param("tier notin (fe)", "tier notin (fe)", {"tier": "fe"}, False, id="notin-hit"),
    pytest.param("env", "env", {"env": ""}, True, id="exists"),
    pytest.param("!env", "!env", {"env": "x"}, False, id="does-not-exist"),
    pytest.param("b=2 , a=1", "a=1,b=2", {"a": "1", "b": "2"}, True, id="whitespace-and-sorted-by-key"),
    pytest.param("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()", {"x": "", "y": "1"}, True,
                 id="kube-doc-example"),
    pytest.param("a=", "a=", {"a": ""}, True, id="empty-value"),
    pytest.param("a in (in)", "a in (in)", {"a": "in"}, True, id="keyword-as-value"),
    pytest.param("n>3", "n>3", {"n": "4"}, True, id="greater-than"),
    pytest.param("n<3", "n<3", {"n": "x"}, False, id="less-than-not-integer"),
    pytest.param("example.com/role=db", "example.com/role=db", {"example.com/role": "db"}, True, id="prefixed-key"),
]


@pytest.mark.parametrize(("text", "canonical", "labels", "expected"), MATCH_CASES)
def test_parse_label_selector(text: str, canonical: str, labels: dict, expected: bool) -> None:
    selector = selectors.parse_label_selector(text)
    assert str(selector) == canonical
    assert selector.matches(labels) is expected
    assert str(selectors.parse_label_selector(str(selector))) == canonical


QNAME = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
         "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
         "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")

ERROR_CASES = [
    pytest.param("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
                 id="missing-operator"),
    pytest.param("a=b c", "found 'c', expected: ',' or 'end of string'", id="two-values"),
    pytest.param("a,", "found '', expected: identifier after ','", id="trailing-comma"),
    pytest.param(",a", "found ',', expected: !, identifier, or 'end of string'", id="leading-comma"),
    pytest.param("a in b", "unable to parse requirement: found 'b' expected: '('", id="in-without-parens"),
    pytest.param("a in (b", "unable to parse requirement: found '', expected: ',' or ')'", id="unclosed-paren"),
    pytest.param("a==!", "unable to parse requirement: found '!', expected: identifier", id="operator-as-value"),
    pytest.param("a_=b", f'unable to parse requirement: <nil>: Invalid value: "a_": name part {QNAME}',
                 id="bad-key"),
    pytest.param("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name",
                 id="two-slashes"),
    pytest.param("app=a/b", 'unable to parse requirement: values[0][app]: Invalid value: "a/b": a valid label must '
                 "be an empty string", id="bad-value"),
    pytest.param("n>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the "
                 "value must be an integer", id="gt-not-integer"),
    pytest.param("=a", "found '=', expected: !, identifier, or 'end of string'", id="no-key"),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_parse_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_label_selector(text)
    assert str(info.value).startswith(message)


LABEL_SELECTOR_CASES = [
    pytest.param({}, "", {"any": "x"}, True, id="empty-selects-everything"),
    pytest.param({"matchLabels": {"app": "web"}}, "app=web", {"app": "web", "x": "y"}, True, id="match-labels"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                 "tier in (a,b)", {"tier": "a"}, True, id="in"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]},
                 "tier notin (a)", {"tier": "a"}, False, id="notin"),
    pytest.param({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, "gpu", {"gpu": "1"}, True,
                 id="exists"),
    pytest.param({"matchLabels": {"b": "1"}, "matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
                 "!a,b=1", {"b": "1"}, True, id="combined-sorted"),
]


@pytest.mark.parametrize(("raw", "canonical", "labels", "expected"), LABEL_SELECTOR_CASES)
def test_selector_from_label_selector(raw: dict, canonical: str, labels: dict, expected: bool) -> None:
    selector = selectors.selector_from_label_selector(raw)
    assert str(selector) == canonical
    assert selector.matches(labels) is expected
    assert selector.empty is (canonical == "")


def test_nil_label_selector_selects_nothing() -> None:
    selector = selectors.selector_from_label_selector(None)
    assert not selector.empty
    assert not selector.matches({})


@pytest.mark.parametrize(("raw", "message"), [
    pytest.param({"matchExpressions": [{"key": "a", "operator": "Foo"}]}, '"Foo" is not a valid label selector '
                 "operator", id="bad-operator"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
                 "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
                 id="in-without-values"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
                 "values set must be empty for exists and does not exist", id="exists-with-values"),
    pytest.param({"matchLabels": {"bad key": "x"}}, 'key: Invalid value: "bad key": name part', id="bad-key"),
])
def test_selector_from_label_selector_errors(raw: dict, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selectors.selector_from_label_selector(raw)
    assert message in str(info.value)


def test_selector_from_map() -> None:
    selector = selectors.selector_from_map({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})
    assert selectors.selector_from_map(None).empty
    assert selectors.selector_from_map({}).matches({"x": "y"})


POD = {"metadata": {"name": "web-1", "namespace": "dev"},
       "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": True},
       "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}]}}
EVENT = {"metadata": {"name": "e", "namespace": "dev"}, "reason": "Scheduled", "type": "Normal",
         "source": {"component": "default-scheduler"},
         "involvedObject": {"kind": "Service", "name": "foo", "namespace": "dev", "uid": "u-1"}}

FIELD_CASES = [
    pytest.param("Pod", POD, "metadata.name=web-1", True, id="name"),
    pytest.param("Pod", POD, "metadata.name==web-2", False, id="name-double-equals-miss"),
    pytest.param("Pod", POD, "metadata.namespace=dev,spec.nodeName=n1", True, id="two-terms"),
    pytest.param("Pod", POD, "spec.nodeName!=n1", False, id="not-equals"),
    pytest.param("Pod", POD, "spec.nodeName=", False, id="unscheduled-filter"),
    pytest.param("Pod", POD, "status.phase=Running", True, id="phase"),
    pytest.param("Pod", POD, "status.podIP=10.244.0.5", True, id="pod-ip"),
    pytest.param("Pod", POD, "spec.hostNetwork=true", True, id="bool-field"),
    pytest.param("Event", EVENT, "involvedObject.name=foo,involvedObject.kind=Service,involvedObject.uid=u-1",
                 True, id="kubectl-describe-events"),
    pytest.param("Event", EVENT, "source=default-scheduler,reason=Scheduled,type=Normal", True, id="event-source"),
    pytest.param("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}, "type=kubernetes.io/tls",
                 True, id="secret-type"),
    pytest.param("Node", {"metadata": {"name": "n"}, "spec": {}}, "spec.unschedulable=false", True,
                 id="node-unschedulable-default"),
    pytest.param("ReplicaSet", {"metadata": {"name": "r"}, "status": {"replicas": 3}}, "status.replicas!=0", True,
                 id="rs-replicas"),
    pytest.param("Service", {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}},
                 "spec.clusterIP=None", True, id="svc-cluster-ip"),
    pytest.param("ConfigMap", {"metadata": {"name": "a,b"}}, r"metadata.name=a\,b", True, id="escaped-comma"),
]


@pytest.mark.parametrize(("kind", "obj", "text", "expected"), FIELD_CASES)
def test_field_selector_matches(kind: str, obj: dict, text: str, expected: bool) -> None:
    selector = selectors.parse_field_selector(text)
    assert selectors.field_selector_matches(selector, kind, obj) is expected


@pytest.mark.parametrize(("kind", "text", "message"), [
    pytest.param("Pod", "spec.containers=x", "field label not supported: spec.containers", id="pod-unknown"),
    pytest.param("ConfigMap", "status.phase=x", "field label not supported: status.phase", id="cm-no-phase"),
    pytest.param("Namespace", "metadata.namespace=x", "field label not supported: metadata.namespace",
                 id="cluster-scoped-namespace"),
])
def test_field_selector_unsupported_field(kind: str, text: str, message: str) -> None:
    selector = selectors.parse_field_selector(text)
    with pytest.raises(SelectorError, match="^" + message.replace(".", r"\.") + "$"):
        selectors.field_selector_matches(selector, kind, {"metadata": {}})


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
                 id="no-operator"),
    pytest.param(r"metadata.name=a\b", r"invalid field selector: invalid escape sequence: \b", id="bad-escape"),
    pytest.param("metadata.name=a=b", "invalid field selector: unescaped character in value: =",
                 id="unescaped-equals"),
    pytest.param("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\", id="trailing-slash"),
])
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_field_selector(text)
    assert str(info.value) == message


def test_field_selector_renders_escaped_and_sorted() -> None:
    selector = selectors.parse_field_selector(r"status.phase!=Failed,metadata.name=a\,b")
    assert str(selector) == r"metadata.name=a\,b,status.phase!=Failed"
    assert not selector.empty
    assert selectors.parse_field_selector("").empty


def test_supported_fields_follow_kube_table() -> None:
    assert selectors.supported_fields("Pod")[:3] == ("metadata.name", "metadata.namespace", "spec.nodeName")
    assert selectors.supported_fields("Lease") == ("metadata.name", "metadata.namespace")
