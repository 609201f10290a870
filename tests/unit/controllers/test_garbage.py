"""The garbage collector's decisions as tables: (graph, node asked about) → the writes, spelled as short strings."""

from __future__ import annotations

import pytest

from svcnet.controllers import garbage
from svcnet.controllers.garbage import Graph, Node, OwnerRef

KINDS = frozenset({("", "Pod"), ("apps", "ReplicaSet"), ("apps", "Deployment"), ("", "Namespace"),
                   ("", "ConfigMap")})
API_VERSIONS = {"Pod": "v1", "ReplicaSet": "apps/v1", "Deployment": "apps/v1", "Namespace": "v1", "ConfigMap": "v1",
                "Widget": "example.com/v1"}


def ref(uid: str, kind: str = "ReplicaSet", block: bool = True) -> OwnerRef:
    return OwnerRef(API_VERSIONS[kind], kind, uid, uid, block)


def obj(uid: str, kind: str = "Pod", *owners: OwnerRef, deleting: bool = False, finalizers: tuple[str, ...] = (),
        namespace: str = "dev") -> Node:
    return Node(uid, API_VERSIONS[kind], kind, uid, "" if kind == "Namespace" else namespace, owners, deleting,
                finalizers, "7")


def rs(uid: str = "rs", *owners: OwnerRef, finalizers: tuple[str, ...] = (), deleting: bool | None = None,
       namespace: str = "dev") -> Node:
    return obj(uid, "ReplicaSet", *owners, deleting=bool(finalizers) if deleting is None else deleting,
               finalizers=finalizers, namespace=namespace)


def graph(*nodes: Node) -> Graph:
    g = Graph(KINDS)
    for node in nodes:
        g.upsert(node)
    return g


def spell(action: garbage.Action) -> str:
    if isinstance(action, garbage.Delete):
        presumed = f" (presumed gone: {','.join(r.uid for r in action.dangling)})" if action.dangling else ""
        return f"delete {action.node.uid} {action.policy}{presumed}"
    if isinstance(action, garbage.RemoveOwnerRefs):
        presumed = f" (presumed gone: {','.join(r.uid for r in action.dangling)})" if action.dangling else ""
        return f"unlink {action.node.uid} from {','.join(action.uids)}{presumed}"
    return f"unfinalize {action.node.uid} {action.finalizer}"


ORPHAN, FOREGROUND = ("orphan",), ("foregroundDeletion",)

CASES = [
    # ---- dependents whose owners are gone (background collection) ----
    pytest.param([rs(), obj("p1", "Pod", ref("rs"))], "p1", [], id="owner-present"),
    pytest.param([obj("p1", "Pod", ref("rs"))], "p1", ["delete p1 Background (presumed gone: rs)"],
                 id="owner-gone"),
    pytest.param([obj("p1", "Pod", ref("rs"), finalizers=ORPHAN)], "p1",
                 ["delete p1 Orphan (presumed gone: rs)"], id="owner-gone-own-orphan-finalizer"),
    pytest.param([obj("p1", "Pod", ref("rs"), finalizers=FOREGROUND)], "p1",
                 ["delete p1 Foreground (presumed gone: rs)"], id="owner-gone-own-foreground-finalizer"),
    pytest.param([obj("p1", "Pod", ref("rs"), deleting=True)], "p1", [], id="dependent-already-deleting"),
    pytest.param([rs("a"), obj("p1", "Pod", ref("a"), ref("b"))], "p1", ["unlink p1 from b (presumed gone: b)"],
                 id="one-of-two-owners-gone"),
    pytest.param([obj("p1", "Pod", ref("a"), ref("b"))], "p1", ["delete p1 Background (presumed gone: a,b)"],
                 id="both-owners-gone"),
    pytest.param([obj("p1", "Pod", ref("w", "Widget"))], "p1", [], id="unknown-owner-kind-is-never-presumed-gone"),
    pytest.param([rs("rs", namespace="other"), obj("p1", "Pod", ref("rs"))], "p1",
                 ["delete p1 Background (presumed gone: rs)"], id="owner-in-another-namespace-counts-as-gone"),
    pytest.param([obj("rs", "ConfigMap"), obj("p1", "Pod", ref("rs"))], "p1",
                 ["delete p1 Background (presumed gone: rs)"], id="uid-of-another-kind-counts-as-gone"),
    pytest.param([obj("ns1", "Namespace"), obj("cm", "ConfigMap", ref("ns1", "Namespace"))], "cm", [],
                 id="cluster-scoped-owner-present"),
    pytest.param([obj("p1", "Pod")], "p1", [], id="no-owners"),
    pytest.param([], "p1", [], id="unknown-uid"),
    pytest.param([rs("rs", deleting=True), obj("p1", "Pod", ref("rs"))], "p1", [],
                 id="owner-deleting-without-finalizer-is-still-solid"),
    # ---- owners deleted with propagationPolicy=Orphan ----
    pytest.param([rs(finalizers=ORPHAN), obj("p1", "Pod", ref("rs")), obj("p2", "Pod", ref("rs"))], "rs",
                 ["unlink p1 from rs", "unlink p2 from rs", "unfinalize rs orphan"], id="orphan-dependents"),
    pytest.param([rs(finalizers=ORPHAN)], "rs", ["unfinalize rs orphan"], id="orphan-without-dependents"),
    pytest.param([rs(finalizers=ORPHAN, deleting=False)], "rs", [], id="orphan-finalizer-before-deletion"),
    # ---- owners deleted with propagationPolicy=Foreground ----
    pytest.param([rs(finalizers=FOREGROUND), obj("p1", "Pod", ref("rs"))], "rs", [],
                 id="foreground-waits-for-blocking-dependent"),
    pytest.param([rs(finalizers=FOREGROUND), obj("p1", "Pod", ref("rs", block=False))], "rs",
                 ["unfinalize rs foregroundDeletion"], id="foreground-ignores-non-blocking-dependent"),
    pytest.param([rs(finalizers=FOREGROUND)], "rs", ["unfinalize rs foregroundDeletion"],
                 id="foreground-done"),
    pytest.param([rs(finalizers=FOREGROUND), obj("p1", "Pod", ref("rs"))], "p1", ["delete p1 Background"],
                 id="dependent-of-waiting-owner"),
    pytest.param([obj("d", "Deployment", deleting=True, finalizers=FOREGROUND),
                  rs("rs", ref("d", "Deployment")), obj("p1", "Pod", ref("rs"))], "rs",
                 ["delete rs Foreground"], id="dependent-with-dependents-of-waiting-owner-goes-foreground"),
    pytest.param([rs("a", finalizers=FOREGROUND), rs("b"), obj("p1", "Pod", ref("a"), ref("b"))], "p1",
                 ["unlink p1 from a"], id="waiting-owner-unlinked-when-another-owner-stays"),
    pytest.param([rs("a", finalizers=FOREGROUND), obj("p1", "Pod", ref("a"), ref("b"))], "p1",
                 ["delete p1 Background (presumed gone: b)"], id="waiting-and-gone-owners"),
]


@pytest.mark.parametrize(("nodes", "uid", "expected"), CASES)
def test_decide(nodes: list[Node], uid: str, expected: list[str]) -> None:
    assert [spell(a) for a in garbage.decide(graph(*nodes), uid)] == expected


def test_graph_keeps_the_dependents_index_current() -> None:
    g = graph(rs("a"), rs("b"), obj("p1", "Pod", ref("a")))
    assert [n.uid for n in g.dependents("a")] == ["p1"]
    g.upsert(obj("p1", "Pod", ref("b")))  # re-owned
    assert g.dependents("a") == [] and [n.uid for n in g.dependents("b")] == ["p1"]
    g.remove("p1")
    assert g.dependents("b") == [] and g.remove("p1") is None


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param(None, obj("p1"), True, id="added"),
    pytest.param(obj("p1"), None, True, id="removed"),
    pytest.param(obj("p1"), Node("p1", "v1", "Pod", "p1", "dev", (), False, (), "8"), False,
                 id="only-resource-version"),
    pytest.param(obj("p1"), obj("p1", "Pod", ref("rs")), True, id="owners"),
    pytest.param(obj("p1"), obj("p1", deleting=True), True, id="deletion-started"),
    pytest.param(rs(finalizers=FOREGROUND), rs(deleting=True), True, id="finalizer-removed"),
])
def test_changed(old: Node | None, new: Node | None, expected: bool) -> None:
    assert garbage.changed(old, new) is expected


def test_related_are_the_node_its_present_owners_and_its_dependents() -> None:
    g = graph(obj("d", "Deployment"), rs("rs", ref("d", "Deployment"), ref("gone")), obj("p1", "Pod", ref("rs")))
    assert garbage.related(g, [g.nodes["rs"]]) == {"rs", "d", "p1"}
    removed = g.remove("rs")
    assert removed is not None and garbage.related(g, [removed]) == {"rs", "d", "p1"}


def test_node_from_object() -> None:
    pod = {"metadata": {"name": "p", "namespace": "dev", "uid": "u", "resourceVersion": "9",
                        "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["orphan"],
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r",
                                             "uid": "rs", "controller": True, "blockOwnerDeletion": True},
                                            {"apiVersion": "v1", "kind": "ConfigMap", "name": "no-uid"}]}}
    node = garbage.node_from_object(pod, "v1", "Pod")
    assert node == Node("u", "v1", "Pod", "p", "dev", (OwnerRef("apps/v1", "ReplicaSet", "r", "rs", True),), True,
                        ("orphan",), "9")
    assert not node.deleting_dependents and node.owners[0].group == "apps"
