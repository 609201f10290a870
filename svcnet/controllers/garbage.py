"""Garbage collection through ownerReferences, as kube's garbage collector decides it — pure, no I/O.

Theory of operation: every object the collector watches is a `Node` of one `Graph`, keyed by uid; an object's
ownerReferences are edges to its owners. `decide(graph, uid)` looks at one node and returns the API writes that
move it towards the state kube converges to:

- an owner being deleted with the `orphan` finalizer: its dependents lose their ownerReference to it, then the
  finalizer goes (the API server then removes the owner);
- an owner being deleted with the `foregroundDeletion` finalizer: it keeps the finalizer while any dependent
  that references it with blockOwnerDeletion=true exists; then the finalizer goes;
- a dependent (not itself being deleted) whose owners are all absent or waiting for their dependents: deleted —
  Foreground if an owner waits for it and it has dependents of its own, otherwise with the propagation its own
  finalizers ask for (orphan → Orphan, foregroundDeletion → Foreground, else Background);
- a dependent with at least one present ("solid") owner: references to absent or waiting owners are removed.

Invariants: `decide` never reads anything but the graph; it returns actions for the node it was asked about only
(the shell enqueues owners and dependents when a node changes, so each decision is level-triggered); a reference
to a kind the graph does not know (`Graph.kinds`) counts as solid — unknown owners are never presumed gone; an
absent owner is only a belief of the cache, so every action lists the references it presumes `dangling` and the
shell confirms them with the API before writing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


class Policy(enum.StrEnum):
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    block_owner_deletion: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class Node:
    uid: str
    api_version: str
    kind: str
    name: str
    namespace: str = ""
    owners: tuple[OwnerRef, ...] = ()
    deleting: bool = False  # metadata.deletionTimestamp is set
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


def node_from_object(obj: dict[str, Any], api_version: str = "", kind: str = "") -> Node:
    """The node of an API object; `api_version` and `kind` override the object's own (list items may lack them)."""
    meta = obj.get("metadata") or {}
    owners = tuple(OwnerRef(str(r.get("apiVersion", "")), str(r.get("kind", "")), str(r.get("name", "")),
                            str(r.get("uid", "")), bool(r.get("blockOwnerDeletion")))
                   for r in meta.get("ownerReferences") or [] if r.get("uid"))
    return Node(str(meta.get("uid", "")), api_version or str(obj.get("apiVersion", "")),
                kind or str(obj.get("kind", "")),
                str(meta.get("name", "")), str(meta.get("namespace") or ""), owners,
                bool(meta.get("deletionTimestamp")), tuple(meta.get("finalizers") or ()),
                str(meta.get("resourceVersion", "")))


@dataclass
class Graph:
    """Nodes by uid plus the reverse index owner uid → dependent uids; `kinds` are the (group, kind) pairs the
    collector watches. An in-memory structure with no I/O: the shell feeds it from informers."""

    kinds: frozenset[tuple[str, str]] = frozenset()
    nodes: dict[str, Node] = field(default_factory=dict)
    _dependents: dict[str, set[str]] = field(default_factory=dict)

    def upsert(self, node: Node) -> None:
        self.remove(node.uid)
        self.nodes[node.uid] = node
        for ref in node.owners:
            self._dependents.setdefault(ref.uid, set()).add(node.uid)

    def remove(self, uid: str) -> Node | None:
        old = self.nodes.pop(uid, None)
        for ref in old.owners if old else ():
            deps = self._dependents.get(ref.uid)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self._dependents[ref.uid]
        return old

    def get(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def dependents(self, uid: str) -> list[Node]:
        return sorted((self.nodes[d] for d in self._dependents.get(uid, ()) if d in self.nodes),
                      key=lambda n: (n.namespace, n.kind, n.name))

    def owner(self, dependent: Node, ref: OwnerRef) -> Node | None:
        """The node `ref` points to, if it exists where kube looks: a namespaced dependent's owner lives in the
        same namespace (or is cluster-scoped); a cluster-scoped dependent's owner is cluster-scoped."""
        node = self.nodes.get(ref.uid)
        if node is None or node.kind != ref.kind or node.group != ref.group:
            return None
        return node if node.namespace in ("", dependent.namespace) else None

    def knows(self, ref: OwnerRef) -> bool:
        return (ref.group, ref.kind) in self.kinds


# ---- actions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delete:
    node: Node
    policy: Policy
    dangling: tuple[OwnerRef, ...] = ()  # owners presumed gone: confirm before deleting


@dataclass(frozen=True, slots=True)
class RemoveOwnerRefs:
    node: Node
    uids: tuple[str, ...]
    dangling: tuple[OwnerRef, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    node: Node
    finalizer: str


Action = Delete | RemoveOwnerRefs | RemoveFinalizer


@dataclass(frozen=True, slots=True)
class Classified:
    solid: tuple[OwnerRef, ...]
    dangling: tuple[OwnerRef, ...]
    waiting: tuple[OwnerRef, ...]  # owners being deleted in the foreground


def classify(graph: Graph, node: Node) -> Classified:
    solid: list[OwnerRef] = []
    dangling: list[OwnerRef] = []
    waiting: list[OwnerRef] = []
    for ref in node.owners:
        owner = graph.owner(node, ref)
        if owner is None:
            (dangling if graph.knows(ref) else solid).append(ref)
        elif owner.deleting_dependents:
            waiting.append(ref)
        else:
            solid.append(ref)
    return Classified(tuple(solid), tuple(dangling), tuple(waiting))


def decide(graph: Graph, uid: str) -> list[Action]:
    """What to write for the node `uid` now (empty: nothing to do, or it is gone)."""
    node = graph.get(uid)
    if node is None:
        return []
    if node.deleting:
        if ORPHAN in node.finalizers:
            return _orphan(graph, node)
        if FOREGROUND in node.finalizers:
            return _finish_foreground(graph, node)
        return []
    return _collect(graph, node) if node.owners else []


def _orphan(graph: Graph, owner: Node) -> list[Action]:
    actions: list[Action] = [RemoveOwnerRefs(dep, (owner.uid,)) for dep in graph.dependents(owner.uid)]
    return [*actions, RemoveFinalizer(owner, ORPHAN)]


def blocking_dependents(graph: Graph, owner: Node) -> list[Node]:
    return [dep for dep in graph.dependents(owner.uid)
            if any(ref.uid == owner.uid and ref.block_owner_deletion for ref in dep.owners)]


def _finish_foreground(graph: Graph, owner: Node) -> list[Action]:
    return [] if blocking_dependents(graph, owner) else [RemoveFinalizer(owner, FOREGROUND)]


def _collect(graph: Graph, node: Node) -> list[Action]:
    refs = classify(graph, node)
    if refs.solid:
        doomed = refs.dangling + refs.waiting
        return [RemoveOwnerRefs(node, _uids(doomed), refs.dangling)] if doomed else []
    if refs.waiting and graph.dependents(node.uid):
        return [Delete(node, Policy.FOREGROUND, refs.dangling)]
    return [Delete(node, own_policy(node), refs.dangling)]


def own_policy(node: Node) -> Policy:
    if ORPHAN in node.finalizers:
        return Policy.ORPHAN
    if FOREGROUND in node.finalizers:
        return Policy.FOREGROUND
    return Policy.BACKGROUND


def changed(old: Node | None, new: Node | None) -> bool:
    """Whether a node changed in a way the collector cares about (not, say, a status update)."""
    if old is None or new is None:
        return old is not new
    return (old.owners, old.deleting, old.finalizers) != (new.owners, new.deleting, new.finalizers)


def related(graph: Graph, nodes: Iterable[Node]) -> set[str]:
    """The uids to reconsider after `nodes` changed: themselves, their owners and their dependents."""
    uids: set[str] = set()
    for node in nodes:
        uids.add(node.uid)
        uids.update(ref.uid for ref in node.owners if ref.uid in graph.nodes)
        uids.update(dep.uid for dep in graph.dependents(node.uid))
    return uids


def _uids(refs: Iterable[OwnerRef]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ref.uid for ref in refs))
