"""The bounded-frequency sync runner (kube-proxy's BoundedFrequencyRunner): `request()` asks for a sync; syncs
run at most once per `min_interval` (a burst of requests coalesces into one), at least once per `max_interval`
(periodic full resync), and a failed sync is retried after `retry_interval`.

Invariant: the sync function never runs concurrently with itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BoundedFrequencyRunner:
    def __init__(self, sync: Callable[[bool], Awaitable[None]], min_interval: float = 1.0,
                 max_interval: float = 30.0, retry_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sync = sync  # called with full=True on a periodic or retried sync
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.retry_interval = retry_interval
        self.clock = clock
        self._wanted = asyncio.Event()
        self._full = True
        self.last_run = float("-inf")

    def request(self, full: bool = False) -> None:
        self._full = self._full or full
        self._wanted.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), self.max_interval)
            except TimeoutError:
                self._full = True
            wait = self.last_run + self.min_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wanted.clear()
            full, self._full = self._full, False
            self.last_run = self.clock()
            try:
                await self.sync(full)
            except Exception:  # noqa: BLE001 — a failed sync is retried, never fatal
                log.exception("proxy sync failed; retrying in %.1fs", self.retry_interval)
                self._full = True
                asyncio.get_running_loop().call_later(self.retry_interval, self._wanted.set)
