"""The work queue's promises: de-duplication, one worker per key, re-delivery of keys added while processing,
exponential backoff."""

from __future__ import annotations

import asyncio

from svcnet.client.workqueue import WorkQueue


async def test_duplicates_collapse() -> None:
    queue = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_key_added_while_processing_comes_back_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0, "not handed to a second worker while the first holds it"
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    queue = WorkQueue(base_delay=0.01)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(3):
        start = loop.time()
        queue.add_rate_limited("k")
        key = await asyncio.wait_for(queue.get(), 2)
        delays.append(loop.time() - start)
        queue.done(key)
    assert queue.failures("k") == 3
    assert delays[0] >= 0.009 and delays[1] >= 0.019 and delays[2] >= 0.039
    queue.forget("k")
    assert queue.failures("k") == 0
    queue.shut_down()
