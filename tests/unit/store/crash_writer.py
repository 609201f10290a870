"""Writer subprocess for the crash test: writes forever, printing each write only after the store acknowledged it."""

from __future__ import annotations

import asyncio
import sys

from svcnet.store import open_store


async def main(path: str) -> None:
    store = await open_store(f"sqlite://{path}")
    i = 0
    while True:
        key = f"/crash/{i % 500}"
        current = await store.get(key)
        value = f"v{i}".encode()
        kv = await (store.update(key, value, current.mod_revision) if current else store.create(key, value))
        print(f"{kv.mod_revision} {key} {value.decode()}", flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
