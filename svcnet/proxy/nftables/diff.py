"""Partial syncs of the nftables proxy mode: the difference between the table the last transaction left in the
kernel and the desired one, as one `nft -f` transaction that touches only what changed (kube-proxy's nftables
partial sync: only the chains of changed services are rewritten, and map elements are added and deleted one
by one instead of flushing the maps).

Theory of operation. `plan_diff(previous, table)` compares the two tables as data -- objects that are the very
same (`update_table` reuses every unchanged service port's chains and sets) are skipped without looking
inside -- and `render_diff` writes the transaction in an order the kernel accepts:
  1. `flush chain` every chain that is rewritten or goes away (its jumps and set references are released);
  2. `delete element` the map keys that go away or change (their verdicts release their chains);
  3. `delete set|map` / `delete chain` what goes away, or is re-created because its declaration changed
     (a new affinity timeout) -- sets first, as a map's verdicts may still name a chain;
  4. one `table ip svcnet { ... }` block that declares the new sets (with their elements) and chains and
     refills the rewritten chains;
  5. `add element` the map keys that are new or changed.
A re-created set or chain is referenced by chains (and map verdicts) that did not change themselves: those are
rewritten (re-added) too, so nothing refers to an object while it is deleted.

Invariants:
- Pure: (previous Table, new Table) -> text; no change at all gives "" (nothing to send).
- Sets marked dynamic (affinity) are never flushed nor written to unless their declaration changed, so the
  source addresses they learnt survive partial syncs.
- Applied to a kernel holding exactly `previous`, the transaction leaves exactly `table`. Against a kernel
  that drifted (a chain or the table removed behind svcnet's back) it fails as a whole, and the proxier falls
  back to a whole-table transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from svcnet.proxy import model
from svcnet.proxy.nftables.compile import FAMILY, TABLE, NftChain, NftSet, Table, render_chain, render_set

WHERE = f"{FAMILY} {TABLE}"
_REFERENCE = re.compile(r"(?:goto|jump) ([^\s,}]+)|@([^\s,}]+)")


@dataclass(frozen=True, slots=True)
class Diff:
    """What a partial sync changes, by name (each tuple in the new table's declaration order where it has one)."""

    flush_chains: tuple[str, ...] = ()  # rewritten or going away
    delete_elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # map -> keys
    delete_sets: tuple[tuple[str, str], ...] = ()  # (keyword, name)
    delete_chains: tuple[str, ...] = ()
    declare_sets: tuple[str, ...] = ()
    write_chains: tuple[str, ...] = ()  # declared (new) or refilled (rewritten)
    add_elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # map -> element texts

    def __bool__(self) -> bool:
        return bool(self.flush_chains or self.delete_elements or self.delete_chains or self.delete_sets
                     or self.declare_sets or self.write_chains or self.add_elements)


def _redeclared(old: NftSet | NftChain, new: NftSet | NftChain | None) -> bool:
    """True when `new` cannot be had by editing `old` in place (gone, or declared differently)."""
    if new is None:
        return True
    if isinstance(old, NftSet) and isinstance(new, NftSet):
        return (old.keyword, old.spec, old.dynamic) != (new.keyword, new.spec, new.dynamic)
    return (old.spec, old.comment) != (new.spec, new.comment)  # type: ignore[union-attr]


def _referrers(chains: Mapping[str, NftChain], names: set[str]) -> set[str]:
    """The chains with a rule that jumps to, or looks up, one of `names`."""
    if not names:
        return set()
    return {name for name, chain in chains.items()
            if any(ref in names for rule in chain.rules for pair in _REFERENCE.findall(rule) for ref in pair)}


def _element_changes(previous: Table, table: Table, recreated_chains: set[str]
                     ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(map -> keys to delete, map -> elements to add) for the written maps kept from `previous`."""
    deletes, adds = {}, {}
    for name, new in table.sets.items():
        old = previous.sets.get(name)
        if old is None or old is new or new.dynamic or _redeclared(old, new):
            continue
        gone = [key for key, text in old.elements.items()
                if new.elements.get(key) != text or (recreated_chains and _verdict(text) in recreated_chains)]
        came = [text for key, text in new.elements.items()
                if old.elements.get(key) != text or (recreated_chains and _verdict(text) in recreated_chains)]
        if gone:
            deletes[name] = tuple(gone)
        if came:
            adds[name] = tuple(came)
    return deletes, adds


def _verdict(element: str) -> str:
    """The chain an element's verdict goes to ("" for none)."""
    head, _, verdict = element.rpartition(" : ")
    return verdict.split(" ", 1)[1] if head and verdict.startswith(("goto ", "jump ")) else ""


def _stale(old: Mapping[str, NftSet | NftChain], new: Mapping[str, NftSet | NftChain]) -> list[str]:
    """The names in `old` that go away or must be declared anew (same objects are skipped unlooked-at)."""
    return [name for name, item in old.items()
            if (now := new.get(name)) is not item and _redeclared(item, now)]


def _moved(previous: Table, table: Table) -> list[model.ServicePortName]:
    """The service ports whose contribution is not the very same object in both tables (walked side by side
    while both list the same ports in the same order, as `update_table` keeps them, so no key is hashed)."""
    before, after = previous.ports, table.ports
    if len(before) == len(after):
        moved = []
        for (name, was), (now_name, rules) in zip(before.items(), after.items(), strict=True):
            if name is not now_name and name != now_name:
                break
            if was is not rules:
                moved.append(now_name)
        else:
            return moved
    return [*(name for name, rules in after.items() if before.get(name) is not rules),
            *(name for name in before if name not in after)]


def _restrict(table: Table, names: Iterable[model.ServicePortName], keys: Mapping[str, set[str]]) -> Table:
    """The static part of `table` and the parts of the service ports `names`, its maps cut down to `keys`."""
    parts = [table.static, *(table.ports[name] for name in names if name in table.ports)]
    chains = {name: table.chains[name] for part in parts if part is not None for name in part.chains}
    sets = {name: table.sets[name] for part in parts if part is not None for name in part.sets}
    for name, wanted in keys.items():
        if name in sets:
            own = sets[name].elements
            sets[name] = replace(sets[name], elements={key: own[key] for key in sorted(wanted) if key in own})
    return Table(sets, chains, table.node)


def _narrowed(previous: Table, table: Table) -> tuple[Table, Table]:
    """Both tables cut down to what can differ: the static part and the service ports that are not shared
    objects (possible only when both were built for the same node by `build_table` / `update_table`)."""
    if previous.static is None or table.static is None or previous.node != table.node:
        return previous, table
    moved = _moved(previous, table)
    keys: dict[str, set[str]] = {}
    for side in (previous, table):
        parts = [side.static, *(side.ports[name] for name in moved if name in side.ports)]
        for map_name, key in (k for part in parts if part is not None for k in part.elements):
            keys.setdefault(map_name, set()).add(key)
    names = sorted(moved)
    return _restrict(previous, names, keys), _restrict(table, names, keys)


def plan_diff(previous: Table, table: Table) -> Diff:
    previous, table = _narrowed(previous, table)
    stale_sets, stale_chains = _stale(previous.sets, table.sets), _stale(previous.chains, table.chains)
    recreated = {n for n in stale_sets if n in table.sets} | {n for n in stale_chains if n in table.chains}
    before = previous.chains
    new_chains = [name for name, c in table.chains.items()
                  if (old := before.get(name)) is not c and (old is None or name in recreated)]
    rewritten = {name for name, c in table.chains.items()
                 if (old := before.get(name)) is not c and old is not None and c.rules != old.rules}
    rewritten -= recreated
    if recreated:
        kept = {name: c for name, c in table.chains.items() if name in before and name not in recreated}
        rewritten |= _referrers(kept, recreated)
    deletes, adds = _element_changes(previous, table, recreated & set(table.chains))
    stale = set(stale_chains)
    return Diff(
        flush_chains=tuple(name for name in before if name in rewritten or name in stale),
        delete_elements=deletes,
        delete_sets=tuple((previous.sets[name].keyword, name) for name in stale_sets),
        delete_chains=tuple(stale_chains),
        declare_sets=tuple(name for name, s in table.sets.items()
                           if (was := previous.sets.get(name)) is not s and (was is None or name in recreated)),
        write_chains=tuple(name for name in table.chains if name in rewritten or name in new_chains),
        add_elements=adds)


def _elements(verb: str, changes: Mapping[str, Iterable[str]]) -> list[str]:
    return [f"{verb} element {WHERE} {name} {{ {', '.join(items)} }}" for name, items in changes.items()]


def render_diff(previous: Table, table: Table) -> str:
    """The partial-sync transaction from `previous` (in the kernel) to `table`; "" when nothing changed."""
    diff = plan_diff(previous, table)
    if not diff:
        return ""
    lines = [f"flush chain {WHERE} {name}" for name in diff.flush_chains]
    lines += _elements("delete", diff.delete_elements)
    lines += [f"delete {keyword} {WHERE} {name}" for keyword, name in diff.delete_sets]
    lines += [f"delete chain {WHERE} {name}" for name in diff.delete_chains]
    if diff.declare_sets or diff.write_chains:
        lines.append(f"table {WHERE} {{")
        for name in diff.declare_sets:
            lines += render_set(name, table.sets[name])
        for name in diff.write_chains:
            lines += render_chain(name, table.chains[name])
        lines.append("}")
    lines += _elements("add", diff.add_elements)
    return "\n".join(lines) + "\n"
