"""Working with named network namespaces (`ip netns`, /run/netns/NAME) from a process that stays in its own:
run `ip`, run a function or create sockets inside a namespace (a socket keeps the namespace it was made in).

`call_in_netns` switches only the calling thread, and always switches back. `Entered` keeps both namespace
files open, for code that enters the same namespace per connection.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from svcnet.tools import which

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


async def ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(which("ip"), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode()


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def call_in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run `fn` on this thread inside network namespace `netns` (sockets it creates stay there), then return."""
    with Entered(netns) as entered:
        return entered.call(fn)


async def in_netns(netns: str, fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(call_in_netns, netns, fn)


class Entered:
    """Open handles on a namespace and on this thread's own, for repeated short visits (`call`, `socket`)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            self.target = os.open(NETNS_DIR / netns, os.O_RDONLY)
        except OSError:
            os.close(self.original)
            raise

    def call(self, fn: Callable[[], T]) -> T:
        _setns(self.target)
        try:
            return fn()
        finally:
            _setns(self.original)

    def socket(self, family: int, kind: int) -> socket.socket:
        return self.call(lambda: socket.socket(family, kind))

    def close(self) -> None:
        os.close(self.target)
        os.close(self.original)

    def __enter__(self) -> Entered:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_in(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected from inside `netns` (raises OSError/TimeoutError on failure)."""
    return call_in_netns(netns, lambda: socket.create_connection((host, port), timeout=timeout))
