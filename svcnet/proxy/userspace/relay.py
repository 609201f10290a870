"""Moving a TCP connection's bytes between two sockets without Python touching them: `os.splice` through a pipe
per direction, driven by the event loop's readiness callbacks (no thread per connection).

Per direction: when the source is readable, splice into the pipe, then from the pipe into the destination; if
the destination is full, stop reading the source and wait until it is writable (backpressure: at most one
pipe's worth is in flight). At end of stream the destination's write side is shut down (half-close passes
through); the connection ends when both directions have ended or either fails. Where `os.splice` is missing
(not Linux), a buffered recv/send path does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable

CHUNK = 1 << 20
POOL_SIZE = 512  # idle pipes kept for the next connections (creating and sizing a pipe costs three syscalls)
_F_SETPIPE_SZ = 1031
_SPLICE = hasattr(os, "splice")
_FLAGS = (getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)) if _SPLICE else 0


_pipes: list[tuple[int, int]] = []


def _take_pipe() -> tuple[int, int]:
    if _pipes:
        return _pipes.pop()
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, CHUNK)
    return read_end, write_end


def _give_pipe(read_end: int, write_end: int, empty: bool) -> None:
    """Back to the pool when it holds no stray bytes; closed otherwise."""
    if empty and len(_pipes) < POOL_SIZE:
        _pipes.append((read_end, write_end))
    else:
        os.close(read_end)
        os.close(write_end)


class _Direction:
    def __init__(self, loop: asyncio.AbstractEventLoop, src: socket.socket, dst: socket.socket,
                 on_end: Callable[[bool], None]) -> None:
        self.loop, self.src, self.dst, self.on_end = loop, src, dst, on_end
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.buffered = 0
        self.buffer = b""
        self.eof = False
        self.done = False
        self.reading = self.writing = False  # whether a reader / writer callback is registered
        if _SPLICE:
            self.pipe_r, self.pipe_w = _take_pipe()

    def start(self) -> None:
        self._read(True)

    def _read(self, on: bool) -> None:
        if on != self.reading:
            self.reading = on
            if on:
                self.loop.add_reader(self.src_fd, self._readable)
            else:
                self.loop.remove_reader(self.src_fd)

    def _write(self, on: bool) -> None:
        if on != self.writing:
            self.writing = on
            if on:
                self.loop.add_writer(self.dst_fd, self._writable)
            else:
                self.loop.remove_writer(self.dst_fd)

    def _readable(self) -> None:
        try:
            if _SPLICE:
                n = os.splice(self.src_fd, self.pipe_w, CHUNK, flags=_FLAGS)
                self.buffered += n
            else:
                data = self.src.recv(CHUNK)
                n = len(data)
                self.buffer += data
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._finish(failed=True)
            return
        if n == 0:
            self.eof = True
            self._read(False)
        self._flush()

    def _flush(self) -> None:
        try:
            while self.buffered or self.buffer:
                if _SPLICE:
                    self.buffered -= os.splice(self.pipe_r, self.dst_fd, self.buffered, flags=_FLAGS)
                else:
                    self.buffer = self.buffer[self.dst.send(self.buffer):]
        except (BlockingIOError, InterruptedError):
            self._read(False)
            self._write(True)
            return
        except OSError:
            self._finish(failed=True)
            return
        if self.eof:
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)
            self._finish(failed=False)

    def _writable(self) -> None:
        self._write(False)
        self._flush()
        if not self.done and not self.eof and not (self.buffered or self.buffer):
            self._read(True)

    def _finish(self, failed: bool) -> None:
        if not self.done:
            self.done = True
            self.close()
            self.on_end(failed)

    def close(self) -> None:
        self._read(False)
        self._write(False)
        if _SPLICE and self.pipe_r >= 0:
            _give_pipe(self.pipe_r, self.pipe_w, empty=self.buffered == 0)
            self.pipe_r = self.pipe_w = -1


def _ignore(*_: object) -> None:
    pass


class Relay:
    """Both directions of one proxied connection. `on_half_closed` runs when the first direction ends (the
    connection turns "inactive", as IPVS counts), `on_closed(half_closed_before)` once both sockets are closed."""

    def __init__(self, client: socket.socket, upstream: socket.socket,
                 on_half_closed: Callable[[], None] = lambda: None,
                 on_closed: Callable[[bool], None] = lambda half_closed: None) -> None:
        loop = asyncio.get_running_loop()
        self.client, self.upstream = client, upstream
        self.closed = False
        self.on_half_closed = on_half_closed
        self.on_closed = on_closed
        self._half_closed = False
        self._ended = 0
        self.directions: tuple[_Direction, ...] = (_Direction(loop, client, upstream, self._ended_one),
                           _Direction(loop, upstream, client, self._ended_one))
        for d in self.directions:
            d.start()

    def _ended_one(self, failed: bool) -> None:
        self._ended += 1
        if self._ended == 1 and not failed:
            self._half_closed = True
            self.on_half_closed()
        if failed or self._ended == 2:
            self.close(reset=failed)

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for d in self.directions:
            d.done = True
            d.close()
        for sock in (self.client, self.upstream):
            if reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        on_closed = self.on_closed
        self._break_cycles()
        on_closed(self._half_closed)

    def _break_cycles(self) -> None:
        """Relays and their callbacks refer to each other; unlinking them lets reference counting free a closed
        connection at once instead of leaving it to the cyclic garbage collector (whose pauses show as latency)."""
        for d in self.directions:
            d.on_end = _ignore
        self.directions = ()
        self.on_closed = self.on_half_closed = _ignore
