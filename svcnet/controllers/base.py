"""What every controller shares: workers draining a work queue into a level-triggered `sync(key)`.

Invariants: one key is synced by one worker at a time (the queue guarantees it); a failed sync is retried with
per-key exponential backoff; a successful one resets the backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from svcnet.api import errors
from svcnet.client import Informer, WorkQueue

log = logging.getLogger(__name__)


async def run_workers(name: str, queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int) -> None:
    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                await sync(key)
                queue.forget(key)
            except (errors.APIError, OSError) as exc:
                log.info("%s %s: %s (retrying)", name, key, exc)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def run_controller(name: str, informers: list[Informer], queue: WorkQueue,
                         sync: Callable[[str], Awaitable[None]], initial_keys: Callable[[], list[str]],
                         workers: int) -> None:
    """Start the informers, wait until they have synced, enqueue every key once, then run the workers."""
    tasks = [asyncio.create_task(i.run()) for i in informers]
    try:
        await asyncio.gather(*(i.synced.wait() for i in informers))
        for key in initial_keys():
            queue.add(key)
        await run_workers(name, queue, sync, workers)
    finally:
        for task in tasks:
            task.cancel()
        queue.shut_down()
