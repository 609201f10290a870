"""Container log files in the CRI format the kubelet uses, so `kubectl logs` options map onto them.

One line per record: `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>`; `F` ends a line of output, `P` is a
partial chunk of a longer line (the text then has no trailing newline). A container's logs live in its own
directory as `<restartCount>.log`; the highest number is the current run, the one before it is `--previous`.
Pure: formatting and parsing only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    timestamp: str
    stream: str  # "stdout" or "stderr"
    partial: bool
    text: bytes  # without the newline of a full line


def timestamp(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def format_record(stream: str, chunk: bytes, now: datetime.datetime | None = None) -> bytes:
    """The log lines for one chunk of output: one `F` record per complete line, a `P` record for a tail with
    no newline yet."""
    stamp = timestamp(now).encode()
    out = bytearray()
    lines = chunk.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        out += stamp + b" " + stream.encode() + (b" P " if last else b" F ") + line + b"\n"
    return bytes(out)


def parse_line(line: bytes) -> Record | None:
    """One record, or None for a line that is not in the format."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return Record(parts[0].decode(), parts[1].decode(), parts[2] == b"P", parts[3] if len(parts) == 4 else b"")


def log_files(container_dir: Path) -> list[Path]:
    """The container's log files, oldest run first."""
    files = [p for p in container_dir.glob("*.log") if p.stem.isdigit()]
    return sorted(files, key=lambda p: int(p.stem))
