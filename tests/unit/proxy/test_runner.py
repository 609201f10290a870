"""The bounded-frequency runner: bursts coalesce, min interval respected, periodic full resync, retry."""

from __future__ import annotations

import asyncio

from svcnet.proxy.runner import BoundedFrequencyRunner


async def test_burst_coalesces_and_min_interval_holds() -> None:
    calls: list[tuple[float, bool]] = []
    loop = asyncio.get_running_loop()

    async def sync(full: bool) -> None:
        calls.append((loop.time(), full))

    runner = BoundedFrequencyRunner(sync, min_interval=0.2, max_interval=60)
    task = asyncio.create_task(runner.run())
    for _ in range(10):
        runner.request()
    await asyncio.sleep(0.05)
    for _ in range(10):
        runner.request()
    await asyncio.sleep(0.4)
    task.cancel()
    assert len(calls) == 2, calls
    assert calls[1][0] - calls[0][0] >= 0.19
    assert calls[0][1] is True and calls[1][1] is False  # the first sync is full


async def test_periodic_resync_and_retry_after_failure() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)
        if len(calls) == 1:
            raise RuntimeError("iptables-restore failed")

    runner = BoundedFrequencyRunner(sync, min_interval=0, max_interval=0.2, retry_interval=0.05)
    task = asyncio.create_task(runner.run())
    runner.request()
    await asyncio.sleep(0.15)
    assert calls[:2] == [True, True], "a failed sync is retried as a full sync"
    await asyncio.sleep(0.3)
    task.cancel()
    assert len(calls) >= 3 and calls[-1] is True, "periodic full resync"
