"""An acknowledged write survives kill -9: a writer is SIGKILLed mid-load, then every write it acknowledged is
found after reopening, and the database passes SQLite's integrity check."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from svcnet.store import open_store

ACKS_BEFORE_KILL = 2000


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    writer = subprocess.Popen([sys.executable, "-m", "tests.unit.store.crash_writer", str(db)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3])
    acked: dict[str, tuple[int, str]] = {}
    deadline = time.monotonic() + 60
    try:
        assert writer.stdout is not None
        count = 0
        while count < ACKS_BEFORE_KILL:
            assert time.monotonic() < deadline, "writer too slow"
            line = writer.stdout.readline()
            assert line, f"writer died early (rc={writer.poll()})"
            revision, key, value = line.split()
            acked[key] = (int(revision), value)
            count += 1
        os.kill(writer.pid, signal.SIGKILL)  # mid-load: it is still writing
    finally:
        writer.kill()
        writer.wait()
    # Lines printed after our last read were acknowledged too; read them (the pipe still holds them).
    for line in writer.stdout.read().splitlines():
        if line.count(" ") == 2:
            revision, key, value = line.split()
            acked[key] = (int(revision), value)
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = await open_store(f"sqlite://{db}")
    try:
        for key, (revision, value) in acked.items():
            kv = await store.get(key)
            assert kv is not None, f"acknowledged write of {key} lost"
            assert kv.mod_revision >= revision
            if kv.mod_revision == revision:
                assert kv.value.decode() == value
        assert await store.current_revision() >= max(r for r, _ in acked.values())
    finally:
        await store.close()
