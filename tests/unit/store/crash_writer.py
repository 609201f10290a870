"""Writer subprocess for the crash test: concurrent tasks create and update keys forever, printing
`<revision> <key> <value>` for each write only after the store acknowledged it (the line is the acknowledgement)."""

from __future__ import annotations

import asyncio
import sys

from svcnet.store import KeyValue, Store, open_store

TASKS = 8
KEYS_PER_TASK = 50


async def write_forever(store: Store, task: int) -> None:
    current: dict[str, KeyValue] = {}
    i = 0
    while True:
        key = f"/crash/{task}/{i % KEYS_PER_TASK}"
        value = f"t{task}-v{i}".encode()
        previous = current.get(key)
        kv = await (store.update(key, value, previous.mod_revision) if previous else store.create(key, value))
        current[key] = kv
        print(kv.mod_revision, key, value.decode(), flush=True)
        i += 1
        await asyncio.sleep(0)  # let the other tasks write in between


async def main(path: str) -> None:
    store = await open_store(f"sqlite://{path}")
    await asyncio.gather(*(write_forever(store, t) for t in range(TASKS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
