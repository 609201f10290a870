"""`collections_paused()`: Python's cyclic garbage collector held off while a pure core builds a large structure
it keeps whole (a DNS zone, an nftables table). Each collection would walk every container allocated so far
and find nothing to free: at 10,000 services that was about half of an nftables table's build time.

Invariant: the collector is enabled again on exit, however the block ends, unless it was already disabled on
entry (nested uses and callers that manage it themselves are left as they were).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_paused() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
