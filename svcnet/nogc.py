"""`collections_paused()`: Python's cyclic garbage collector held off while a pure core builds a large structure
it keeps whole (a DNS zone, an nftables table). Each collection would walk every container allocated so far
and find nothing to free: at 10,000 services that was about half of an nftables table's build time. On exit
what the block allocated goes straight to the oldest generation (`gc.freeze()` then `gc.unfreeze()`: two list
splices), or the first allocation after re-enabling would walk all of it once more as the youngest.

Invariants: the collector is enabled again on exit, however the block ends, unless it was already disabled on
entry (nested uses and callers that manage it themselves are left as they were); nothing stays frozen (svcnet
freezes nothing else, so `unfreeze` gives back only what `freeze` just took).
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
            gc.freeze()
            gc.unfreeze()
            gc.enable()
