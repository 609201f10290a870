"""An acknowledged write survives kill -9: a writer subprocess is SIGKILLed mid-load, then every write it
acknowledged is found (at its revision, with its value) after reopening, and SQLite's integrity check passes."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

from svcnet.store.sqlite import SQLiteStore

ACKS_BEFORE_KILL = 500
DEADLINE = 60.0
ROOT = Path(__file__).resolve().parents[3]


async def _read_acks(stream: asyncio.StreamReader, acks: list[tuple[int, str, str]], until: int) -> None:
    while len(acks) < until:
        line = await stream.readline()
        assert line, "writer exited before it was killed"
        revision, key, value = line.decode().split()
        acks.append((int(revision), key, value))


async def _run_and_kill(db: Path) -> list[tuple[int, str, str]]:
    writer = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.unit.store.crash_writer", str(db),
                                                  stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert writer.stdout is not None
    acks: list[tuple[int, str, str]] = []
    try:
        await asyncio.wait_for(_read_acks(writer.stdout, acks, ACKS_BEFORE_KILL), DEADLINE)
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-load: it is still writing
        await writer.wait()
    assert writer.returncode == -signal.SIGKILL
    # Lines written before the kill are acknowledgements too: the pipe still holds them. Each line is one small
    # write(2), so none is torn; only text after the last newline could be incomplete, and it is dropped.
    *complete, _ = (await writer.stdout.read()).decode().split("\n")
    for line in complete:
        revision, key, value = line.split()
        acks.append((int(revision), key, value))
    return acks


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    acks = await _run_and_kill(db)
    assert len(acks) >= ACKS_BEFORE_KILL
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = await SQLiteStore.open(db)  # the dead writer's lock is gone with it
    try:
        assert await store.current_revision() >= max(revision for revision, _, _ in acks)
        for revision, key, value in acks:
            kv = await store.get(key, revision=revision)
            assert kv is not None, f"acknowledged write of {key} at {revision} lost"
            assert (kv.mod_revision, kv.value.decode()) == (revision, value)
            latest = await store.get(key)
            assert latest is not None and latest.mod_revision >= revision
    finally:
        await store.close()
