"""The ipvs applier's netlink sockets under uvloop, the loop `svcnet` installs: pyroute2's synchronous API runs
an event loop of its own on the worker thread, and one from uvloop's policy cannot carry AF_NETLINK ("invalid
family 16"), which failed every sync of `svcnet up --proxy-mode ipvs` and leaked descriptors until none were
left. Reads this namespace's links only (no IPVS needed: IPRoute goes through the same helper as IPVS)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest
import uvloop
from pyroute2 import IPRoute

from svcnet.proxy.ipvs import apply


def _lookup_lo() -> list[int]:
    with contextlib.ExitStack() as stack:
        ipr = stack.enter_context(apply._netlink_socket(IPRoute, stack))
        return list(ipr.link_lookup(ifname="lo"))


async def _from_worker_threads(times: int) -> tuple[list[list[int]], int, int]:
    before = len(os.listdir("/proc/self/fd"))
    found = [await asyncio.to_thread(_lookup_lo) for _ in range(times)]
    return found, before, len(os.listdir("/proc/self/fd"))


@pytest.fixture
def uvloop_policy() -> Iterator[None]:
    """uvloop as `svcnet` installs it: the policy, so every new loop -- pyroute2's on a worker thread too -- is one."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(previous)


def test_netlink_from_a_worker_thread_under_uvloop_works_and_closes_what_it_opens(uvloop_policy: None) -> None:
    with asyncio.Runner() as runner:
        runner.run(_from_worker_threads(1))  # the thread pool's threads exist from here on
        found, before, after = runner.run(_from_worker_threads(20))
    assert found == [[1]] * 20  # lo is interface 1 in every namespace
    assert after == before, "descriptors leaked"
