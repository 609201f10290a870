"""Partial syncs of the nftables proxy mode: the difference between the table the last transaction left in the
kernel and the desired one, as one `nft -f` transaction that touches only what changed (kube-proxy's nftables
partial sync: only the chains of changed services are rewritten, and map elements are added and deleted one
by one instead of flushing the maps).

Cheap and costly commands. Before it evaluates a transaction, `nft` (1.0.6) fetches from the kernel what its
commands might refer to (cache.c, `nft_cache_evaluate`): for `add rule`, `add element`, a `table { }` block
and every `delete`, all chains, sets and objects -- with kube's layout at 10,000 services (60,000 chains,
10,000 anonymous maps) ~0.4 s of listing, most of the partial sync. `add chain NAME { rules }`, `add set|map
NAME { declaration; elements = { ... } }` and `flush chain` make it list the tables only. So a partial sync is
written with those:
  1. `flush chain` every chain that is rewritten or goes away (its jumps and set references are released);
  2. `delete element` the map keys that go away or change (their verdicts release their chains);
  3. `delete set|map` / `delete chain` what goes away, or is re-created because its declaration changed
     (a new affinity timeout) -- sets first, as a map's verdicts may still name a chain;
  4. `add chain NAME` every new chain, empty: a rule may jump to a chain declared after its own;
  5. `add set|map NAME { ... }` the new sets (with their elements), the sets and maps that get elements (with
     just those) and, declared again as they are (a no-op in the kernel), the sets the written chains look up
     -- `nft` must know a set to compile `@name`, and this way it does without listing the kernel;
  6. `add chain NAME { rules }` every chain that is new or rewritten (a rewritten one was flushed in 1.).
Steps 2 and 3 are the costly ones. Adding or removing an endpoint needs neither: its service's chains are
rewritten, its `hairpin-endpoints` element added if it is on this node (one that goes away stays: a set marked
`keep_stale` loses elements at full syncs only), and its affinity set, if any, is referenced by nothing any more
and left in the kernel (a *leftover*, as kube-proxy's stale chains, which it deletes a second later), to be
deleted by the next transaction that pays for the listing anyway, or once more than `LEFTOVERS_MAX` have piled
up; a full sync deletes them too (`compile.render`). Chains that go away are flushed and left the same way,
unless the transaction deletes anyway (a deleted service's map elements). A chain that comes back while left over
is simply refilled; an affinity set is deleted and declared anew (costly), so that it starts empty as kube's
would. A re-created set or chain is referenced by chains (and map verdicts) that did not change themselves: those
are rewritten (re-added) too, so nothing refers to an object while it is deleted.

What no transaction form avoids is the kernel's own check at commit (nf_tables_validate): any new rule or
verdict element makes it walk every chain reachable from each base chain, once per base chain (two here:
nat-prerouting and nat-output both jump to `services`) -- ~10 ms each at 10,000 services on a 2-core VM with
compile.py's layout, ~35-40 ms with kube's (see compile.py).

Invariants:
- Pure: (previous Table, new Table) -> text; no change at all gives "" (nothing to send).
- Sets marked dynamic (affinity) are never flushed nor given elements unless their declaration changed (they
  are only declared again as they are), so the source addresses they learnt survive partial syncs.
- Applied to a kernel holding exactly `previous` (with its leftovers), the transaction leaves exactly `table`
  plus the Diff's leftovers (chains empty, referenced by nothing) and the stale elements of `keep_stale` sets.
  Against a kernel that drifted (a rewritten chain or the table removed behind svcnet's back) it fails as a
  whole, and the proxier falls back to a whole-table transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from svcnet.proxy import model
from svcnet.proxy.nftables.compile import FAMILY, TABLE, NftChain, NftSet, Table, quote
from svcnet.proxy.nftables.patched import moved_keys

WHERE = f"{FAMILY} {TABLE}"
LEFTOVERS_MAX = 1000  # chains left over before a partial sync pays for deleting them (one listing each time)
_REFERENCE = re.compile(r"(?:goto|jump) ([^\s,}]+)|@([^\s,}]+)")
_LOOKUP = re.compile(r"@([^\s,}]+)")


@dataclass(frozen=True, slots=True)
class Diff:
    """What a partial sync changes, by name (each tuple in the new table's declaration order where it has one)."""

    flush_chains: tuple[str, ...] = ()  # rewritten or going away
    delete_elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # map -> keys
    delete_sets: tuple[tuple[str, str], ...] = ()  # (keyword, name)
    delete_chains: tuple[str, ...] = ()
    new_chains: tuple[str, ...] = ()  # declared empty before any rule is written
    declare_sets: tuple[str, ...] = ()  # new or re-created
    write_chains: tuple[str, ...] = ()  # declared (new) or refilled (rewritten)
    add_elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # map -> element texts
    leftover_chains: frozenset[str] = frozenset()  # what the kernel keeps, unreferenced, after this transaction
    leftover_sets: Mapping[str, NftSet] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.flush_chains or self.delete_elements or self.delete_chains or self.delete_sets
                     or self.declare_sets or self.write_chains or self.add_elements)

    @property
    def lists_the_kernel(self) -> bool:
        """True when `nft` lists the kernel's chains and sets for this transaction anyway (it deletes)."""
        return bool(self.delete_elements or self.delete_sets or self.delete_chains)


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
        gone = [] if new.keep_stale else [
            key for key, text in old.elements.items()
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
    """The service ports whose contribution is not the very same object in both tables: read off the layers
    of changes when `update_table` patched one's ports into the other's (`patched.moved_keys`), else walked
    side by side while both list the same ports in the same order, as `update_table` keeps them."""
    before, after = previous.ports, table.ports
    moved = moved_keys(before, after)
    if moved is not None:
        return moved
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


def _leave_or_delete(diff: Diff, chains: list[str], sets: Mapping[str, NftSet], previous: Table,
                     table: Table) -> Diff:
    """`diff` with what goes away (`chains`, affinity `sets`, and what was left over before and is not wanted
    back) deleted when the transaction pays for `nft`'s listing anyway or too much would be left, else left
    for a later transaction (the chains flushed)."""
    old_chains = sorted(name for name in previous.leftover_chains if name not in table.chains)
    old_sets = {name: s for name, s in previous.leftover_sets.items() if name not in table.sets}
    if diff.lists_the_kernel or len(old_chains) + len(old_sets) + len(chains) + len(sets) > LEFTOVERS_MAX:
        going = {**sets, **dict(sorted(old_sets.items()))}
        return replace(diff, delete_sets=(*diff.delete_sets, *((s.keyword, name) for name, s in going.items())),
                       delete_chains=(*diff.delete_chains, *chains, *old_chains))
    return replace(diff, leftover_chains=frozenset((*old_chains, *chains)), leftover_sets={**old_sets, **sets})


def plan_diff(previous: Table, table: Table) -> Diff:
    """What the partial sync from `previous` (in the kernel, with its leftovers) to `table` changes."""
    kernel, whole = previous, table
    previous, table = _narrowed(previous, table)
    revived = [name for name in table.sets if name in kernel.leftover_sets]  # to declare anew, empty
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
    going_sets = {name: previous.sets[name] for name in stale_sets
                  if name not in table.sets and previous.sets[name].dynamic}
    diff = Diff(
        flush_chains=tuple(name for name in before if name in rewritten or name in stale_chains),
        delete_elements=deletes,
        delete_sets=(*((kernel.leftover_sets[name].keyword, name) for name in revived),
                     *((previous.sets[name].keyword, name) for name in stale_sets if name not in going_sets)),
        delete_chains=tuple(name for name in stale_chains if name in recreated),
        new_chains=tuple(new_chains),
        declare_sets=tuple(name for name, s in table.sets.items()
                           if (was := previous.sets.get(name)) is not s and (was is None or name in recreated)),
        write_chains=tuple(name for name in table.chains if name in rewritten or name in new_chains),
        add_elements=adds)
    if not diff:
        return diff
    return _leave_or_delete(diff, [name for name in stale_chains if name not in recreated], going_sets, kernel,
                            whole)


# --- rendering ------------------------------------------------------------------------------------------


def _elements(verb: str, changes: Mapping[str, Iterable[str]]) -> list[str]:
    return [f"{verb} element {WHERE} {name} {{ {', '.join(items)} }}" for name, items in changes.items()]


def _declaration(name: str, s: NftSet, elements: Iterable[str] = ()) -> str:
    """`add set|map NAME { type ...; ...; [elements = { ... }] }`: creates the set, or (declared as it is in the
    kernel) leaves it alone apart from adding `elements`."""
    items = ", ".join(elements)
    return f"add {s.keyword} {WHERE} {name} {{ {'; '.join(s.spec)};{f' elements = {{ {items} }}' if items else ''} }}"


def _header(c: NftChain) -> list[str]:
    return ([c.spec] if c.spec else []) + ([f"comment {quote(c.comment)}"] if c.comment else [])


def _set_lines(diff: Diff, table: Table) -> list[str]:
    """Step 5: each set once -- new ones whole, maps that get elements with those, and the sets the written
    chains look up as they are."""
    looked_up = sorted({ref for name in diff.write_chains for rule in table.chains[name].rules
                        for ref in _LOOKUP.findall(rule)} - set(diff.declare_sets) - set(diff.add_elements))
    lines = [_declaration(name, table.sets[name], table.sets[name].elements.values()) for name in diff.declare_sets]
    lines += [_declaration(name, table.sets[name], items) for name, items in diff.add_elements.items()]
    return lines + [_declaration(name, table.sets[name]) for name in looked_up if name in table.sets]


def _new_chain_lines(diff: Diff, table: Table) -> list[str]:
    """Step 4: new chains declared empty (with their type or comment)."""
    lines = []
    for name in diff.new_chains:
        head = _header(table.chains[name])
        lines.append(f"add chain {WHERE} {name}" + (f" {{ {'; '.join(head)}; }}" if head else ""))
    return lines


def _write_chain_lines(diff: Diff, table: Table) -> list[str]:
    """Step 6: every written chain filled (new) or refilled (flushed in step 1)."""
    lines = []
    for name in diff.write_chains:
        if rules := table.chains[name].rules:
            lines += [f"add chain {WHERE} {name} {{", *(f"\t{rule}" for rule in rules), "}"]
    return lines


def render_plan(diff: Diff, table: Table) -> str:
    """The `nft -f` text of `diff` (planned towards `table`); "" when it changes nothing."""
    if not diff:
        return ""
    lines = [f"flush chain {WHERE} {name}" for name in diff.flush_chains]
    lines += _elements("delete", diff.delete_elements)
    lines += [f"delete {keyword} {WHERE} {name}" for keyword, name in diff.delete_sets]
    lines += [f"delete chain {WHERE} {name}" for name in diff.delete_chains]
    lines += [*_new_chain_lines(diff, table), *_set_lines(diff, table), *_write_chain_lines(diff, table)]
    return "\n".join(lines) + "\n"


def render_diff(previous: Table, table: Table) -> str:
    """The partial-sync transaction from `previous` (in the kernel) to `table`; "" when nothing changed."""
    return render_plan(plan_diff(previous, table), table)


def render_partial(previous: Table, table: Table) -> tuple[Table, str]:
    """(the table the kernel holds once the transaction went through -- `table` with its leftover chains --,
    the transaction) for a partial sync from `previous`."""
    diff = plan_diff(previous, table)
    if not diff:
        return replace(table, leftover_chains=previous.leftover_chains, leftover_sets=previous.leftover_sets), ""
    return (replace(table, leftover_chains=diff.leftover_chains, leftover_sets=diff.leftover_sets),
            render_plan(diff, table))
