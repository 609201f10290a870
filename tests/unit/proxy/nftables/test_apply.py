"""The nftables applier: partial syncs through libnftables in-process, inside the namespace only, errors as
OSError with nft's message, a cache that follows the kernel between runs, and `nft` as a process when the
library is not there -- inside a throwaway network namespace (root only).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest

from svcnet.proxy.nftables import apply
from svcnet.proxy.nftables.apply import NftablesApplier, NftContext
from tests.unit.proxy.nftables.test_compile import _in


@pytest.fixture
def context(netns: str) -> Iterator[NftContext]:
    lib = apply._load(apply.LIBRARY)
    if lib is None:
        pytest.skip(f"{apply.LIBRARY} is not installed")
    made = NftContext(lib, netns)
    yield made
    made.close()


def test_a_missing_library_loads_as_none() -> None:
    assert apply._load("libnftables-not-there.so.0") is None


def test_the_context_writes_in_its_namespace_only(netns: str, context: NftContext) -> None:
    context.run("add table ip svcnet-apply-test\nadd chain ip svcnet-apply-test c { ip daddr 192.0.2.1 accept; }\n")
    assert "ip daddr 192.0.2.1 accept" in _in(netns, "nft", "list", "table", "ip", "svcnet-apply-test")
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert "svcnet-apply-test" not in host


def test_a_failed_transaction_raises_nfts_message_and_changes_nothing(netns: str, context: NftContext) -> None:
    context.run("add table ip t\n")
    with pytest.raises(OSError, match=r"nft -f: .*No such file or directory"):
        context.run("add chain ip t a\nflush chain ip t gone\n")
    assert "chain a" not in _in(netns, "nft", "list", "table", "ip", "t")
    context.run("add chain ip t a\n")  # the context still works, its message buffer emptied
    assert "chain a" in _in(netns, "nft", "list", "table", "ip", "t")


def test_the_cache_follows_changes_made_by_others(netns: str, context: NftContext) -> None:
    context.run("add table ip t\nadd chain ip t c\n")
    context.run("list table ip t\n")  # the whole table cached, at a generation nobody changes by listing
    _in(netns, "nft", "add", "set", "ip", "t", "s", "{ type ipv4_addr; }")
    context.run("add rule ip t c ip saddr @s accept\n")  # compiles only if the cache saw the new set
    assert "ip saddr @s accept" in _in(netns, "nft", "list", "chain", "ip", "t", "c")


@pytest.mark.parametrize(("library", "in_process"), [
    pytest.param(apply.LIBRARY, True, id="libnftables"),
    pytest.param("libnftables-not-there.so.0", False, id="nft-process"),
])
def test_partial_transactions_run_in_process_when_they_can(netns: str, library: str, in_process: bool) -> None:
    if in_process and apply._load(library) is None:
        pytest.skip(f"{library} is not installed")
    applier = NftablesApplier(netns)
    applier.library = library
    asyncio.run(applier.apply_partial("add table ip t\nadd chain ip t c { accept; }\n"))
    assert (applier.context is not None) == in_process
    assert "accept" in _in(netns, "nft", "list", "chain", "ip", "t", "c")
    with pytest.raises(OSError, match="nft -f: "):
        asyncio.run(applier.apply_partial("flush chain ip t gone\n"))
    applier.close()


def test_a_whole_transaction_in_pieces_is_one_transaction(netns: str) -> None:
    """`apply` takes the pieces of one transaction as they come; if making them fails, nft is stopped before
    the end of its input and nothing is committed (the `delete table` sent first included)."""
    applier = NftablesApplier(netns)
    asyncio.run(applier.apply(["add table ip t\n", "add chain ip t c { ", "accept; }\n"]))
    assert "accept" in _in(netns, "nft", "list", "chain", "ip", "t", "c")

    def failing() -> Iterator[str]:
        yield "delete table ip t\n"
        yield "add table ip t\n"
        raise RuntimeError("compile failed")

    with pytest.raises(RuntimeError, match="compile failed"):
        asyncio.run(applier.apply(failing()))
    assert "accept" in _in(netns, "nft", "list", "chain", "ip", "t", "c")
    with pytest.raises(OSError, match=r"nft -f: .*syntax error"):
        asyncio.run(applier.apply(["delete table ip t\n", "add chain ip t d { nonsense; }\n", "# more\n" * 50000]))
    assert "accept" in _in(netns, "nft", "list", "chain", "ip", "t", "c")
