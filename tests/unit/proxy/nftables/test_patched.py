"""Patched mappings: every sequence of edits reads, counts and compares like the same edits made to a copied
dict (and iterates in the base's order, then the added keys), the base is never modified, layers flatten past
PATCH_MAX keys, and the keys that moved are read off the layers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping

import pytest

from svcnet.proxy.nftables.patched import PATCH_MAX, Edit, Patched, moved_keys

Step = Callable[[MutableMapping[str, object]], object]
BASE = {"a": 1, "b": 2, "c": 3}


def _set(key: str, value: object) -> Step:
    return lambda m: m.__setitem__(key, value)


def _del(key: str) -> Step:
    return lambda m: m.__delitem__(key)


def _pop(key: str) -> Step:
    return lambda m: m.pop(key, None)


# (case, syncs: each a list of edits made by one Edit over the previous result)
CASES = [
    pytest.param([[_set("b", 20)]], id="changed-in-place"),
    pytest.param([[_del("a")], [_set("d", 4)]], id="removed-then-added"),
    pytest.param([[_del("b"), _set("b", 22)]], id="removed-and-back-keeps-its-place"),
    pytest.param([[_set("d", 4)], [_del("d")], [_set("d", 5)]], id="added-removed-added"),
    pytest.param([[_pop("zz"), _set("e", 5), _set("d", 4)], [_del("e")]], id="pop-of-a-missing-key"),
    pytest.param([[_set(f"k{i}", i) for i in range(PATCH_MAX)], [_set("x", 0), _del("a")]], id="flattened"),
]


def _replay(syncs: list[list[Step]]) -> tuple[Mapping[str, object], dict[str, object]]:
    patched: Mapping[str, object] = BASE
    reference: dict[str, object] = dict(BASE)
    for edits in syncs:
        edit = Edit(patched)
        for step in edits:
            step(edit)
            step(reference)
        patched = edit.result()
    return patched, reference


@pytest.mark.parametrize("syncs", CASES)
def test_reads_like_a_copied_dict(syncs: list[list[Step]]) -> None:
    frozen = dict(BASE)
    patched, reference = _replay(syncs)
    # the base's keys in their order, then the added ones (a key removed and put back keeps its place)
    assert list(patched) == [k for k in BASE if k in reference] + [k for k in reference if k not in BASE]
    assert patched == reference and len(patched) == len(reference)
    assert [k in patched for k in ("a", "b", "d", "e", "zz")] == [k in reference for k in ("a", "b", "d", "e", "zz")]
    assert all(patched[k] == v for k, v in reference.items())
    assert frozen == BASE  # the base was never written to


def test_a_missing_key_raises_and_deleting_it_too() -> None:
    patched, _ = _replay([[_del("a")]])
    with pytest.raises(KeyError):
        patched["a"]  # noqa: B018
    with pytest.raises(KeyError):
        del Edit(patched)["a"]


def test_layers_stay_one_deep_then_flatten() -> None:
    patched, _ = _replay([[_set("d", 4)], [_set("e", 5)]])
    assert isinstance(patched, Patched) and patched.base is BASE and set(patched.changes) == {"d", "e"}
    flat, _ = _replay([[_set(f"k{i}", i) for i in range(PATCH_MAX + 1)]])
    assert type(flat) is dict


def test_no_edit_hands_on_the_same_mapping() -> None:
    assert Edit(BASE).result() is BASE


def _sync(mapping: Mapping[str, object], *edits: Step) -> Mapping[str, object]:
    edit = Edit(mapping)
    for step in edits:
        step(edit)
    return edit.result()


def test_moved_keys_are_read_off_the_layers() -> None:
    one = _sync(BASE, _set("d", 4))
    assert sorted(moved_keys(one, _sync(one, _set("b", 20), _del("c"))) or []) == ["b", "c"]  # the next sync
    assert sorted(moved_keys(one, _sync(BASE, _del("a"))) or []) == ["a", "d"]  # two syncs from one base
    assert moved_keys(one, one) == [] and moved_keys(BASE, _sync(BASE, _set("a", 1))) == []


def test_moved_keys_cannot_tell_across_bases() -> None:
    assert moved_keys({"a": 1}, dict(BASE)) is None
