"""Moving a TCP connection's bytes between two sockets without Python touching them: `os.splice` through a pipe
per direction, driven by one edge-triggered epoll set per event loop (no task, no thread per connection).

Theory of operation. The event loop watches one file descriptor for the whole data path: a `Poller`'s epoll
set, in which every relayed (and every connecting upstream) socket is registered exactly once, edge-triggered,
for input, output and peer shutdown. An edge only says "try again"; each direction keeps two flags — source
maybe readable, destination maybe writable — set by edges and cleared when a splice answers EAGAIN, and pumps
while both allow. So a connection costs one `epoll_ctl` per socket and no re-registration when backpressure
starts or stops; closing a socket removes it from the set. (Through the loop's own `add_reader`/`add_writer`
each socket cost a poll handle and three to four `epoll_ctl`s plus an `ioctl`, and each change of interest more.)

Per direction: splice from the source into the pipe, then from the pipe into the destination; while the pipe
holds bytes the source is not read (backpressure: at most one pipe's worth is in flight). At end of stream the
destination's write side is shut down (half-close passes through); when the second direction ends both sockets
are closed — their receive queues are empty then, so the close sends FIN, and no `shutdown` is needed for it.
A failed splice (reset, error) resets both sides.

Invariants:
- A socket is registered once, on `watch`; its handler may change (connecting -> relaying) without a syscall.
- Sockets closed while the poller dispatches a batch are closed after the batch, so a number freed in a batch
  cannot be reused within it and receive another socket's stale event.
- Handlers treat events as hints and never trust one without the syscall that confirms it.
Linux only (epoll, splice).
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import fcntl
import logging
import os
import select
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

CHUNK = 1 << 20
POOL_SIZE = 512  # idle pipes kept for the next connections (creating and sizing a pipe costs three syscalls)
BATCH = 512  # events taken from the epoll set per dispatch
_F_SETPIPE_SZ = 1031
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_WATCH_INPUT = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_WATCH_BOTH = _WATCH_INPUT | select.EPOLLOUT
READABLE = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
WRITABLE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
FAILED = select.EPOLLERR | select.EPOLLHUP
_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends RST

Handler = Callable[[int], None]
RawSocket = _socket.socket  # the C type under socket.socket: relays take either (the data path makes bare ones)


class Poller:
    """An edge-triggered epoll set watched by the event loop as one reader; handlers get the event mask."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll = select.epoll()
        self._handlers: dict[int, Handler] = {}
        self._output: set[int] = set()  # fds watched for output too
        self._dispatching = False
        self._closing: list[RawSocket] = []
        loop.add_reader(self._epoll.fileno(), self._dispatch)

    def watch(self, fd: int, handler: Handler, output: bool = False) -> None:
        """Register fd (once) for input edges, and output edges if asked, or give a registered one a new handler.
        Registering reports the readiness the socket already has, as a first edge."""
        if fd not in self._handlers:
            self._epoll.register(fd, _WATCH_BOTH if output else _WATCH_INPUT)
            if output:
                self._output.add(fd)
        self._handlers[fd] = handler

    def want_output(self, fd: int) -> None:
        """Add output edges to a registered fd (a write hit EAGAIN); the next edge comes when it has room."""
        if fd not in self._output:
            self._output.add(fd)
            self._epoll.modify(fd, _WATCH_BOTH)

    def close_socket(self, sock: RawSocket, reset: bool = False) -> None:
        """Forget the socket's handler and close it (after the current batch, if one is being dispatched)."""
        fd = sock.fileno()
        self._handlers.pop(fd, None)
        self._output.discard(fd)
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        if self._dispatching:
            self._closing.append(sock)
        else:
            sock.close()

    def _dispatch(self) -> None:
        self._dispatching = True
        try:
            for fd, events in self._epoll.poll(0, BATCH):
                handler = self._handlers.get(fd)
                if handler is not None:
                    try:
                        handler(events)
                    except Exception:  # one connection's bug must not stall the others
                        log.exception("relay handler for fd %d", fd)
        finally:
            self._dispatching = False
            closing, self._closing = self._closing, []
            for sock in closing:
                sock.close()

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.remove_reader(self._epoll.fileno())
        self._epoll.close()


_poller: Poller | None = None


def poller() -> Poller:
    """The running loop's poller (made on first use; one loop runs at a time in a proxy or a test)."""
    global _poller
    loop = asyncio.get_running_loop()
    if _poller is None or _poller.loop is not loop:
        if _poller is not None and _poller.loop.is_closed():
            _poller.close()
        _poller = Poller(loop)
    return _poller


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
    """One way of a relay: source -> pipe -> destination, pumped while the flags allow."""

    __slots__ = ("poller", "src_fd", "dst_fd", "dst", "on_end", "readable", "writable", "buffered", "eof", "done",
                 "pipe_r", "pipe_w")

    def __init__(self, poller: Poller, src: RawSocket, dst: RawSocket,
                 on_end: Callable[[_Direction, bool], None], readable: bool) -> None:
        self.poller = poller
        self.src_fd, self.dst_fd, self.dst = src.fileno(), dst.fileno(), dst
        self.on_end = on_end
        self.readable = readable  # an edge (or a guess) says the source may have data or EOF since its last EAGAIN
        self.writable = True  # no EAGAIN from the destination since its last output edge
        self.buffered = 0  # bytes in the pipe
        self.eof = False
        self.done = False
        self.pipe_r, self.pipe_w = _take_pipe()

    def pump(self, reads: int = -1) -> None:
        """Move bytes while the flags allow. `reads` >= 0 caps the reads from the source; at the cap the source
        counts as drained (for a socket registered right after: registering reports whatever is left)."""
        try:
            while not self.done:
                if self.buffered:
                    if not self.writable:
                        return
                    self.buffered -= os.splice(self.pipe_r, self.dst_fd, self.buffered, flags=_FLAGS)
                elif self.eof:
                    self.done = True
                    self.on_end(self, False)
                elif self.readable:
                    if reads == 0:
                        self.readable = False
                        return
                    reads -= 1
                    n = os.splice(self.src_fd, self.pipe_w, CHUNK, flags=_FLAGS)
                    self.eof = n == 0
                    self.buffered += n
                else:
                    return
        except BlockingIOError:  # from the destination if the pipe holds bytes, else from the source
            if self.buffered:
                self.writable = False
                self.poller.want_output(self.dst_fd)
            else:
                self.readable = False
        except OSError:
            self.done = True
            self.on_end(self, True)

    def release_pipe(self) -> None:
        if self.pipe_r >= 0:
            _give_pipe(self.pipe_r, self.pipe_w, empty=self.buffered == 0)
            self.pipe_r = self.pipe_w = -1


def _ignore(*_: object) -> None:
    pass


class Relay:
    """Both directions of one proxied connection. `on_half_closed` runs when the first direction ends (the
    connection turns "inactive", as IPVS counts), `on_closed(half_closed_before)` once both sockets are closed.

    Both sockets must be non-blocking. The client is read once, before it is registered: it has usually sent its
    request by the time the upstream connection is up, and reading first spares the edge that registering would
    report; whatever is left after that read (more data, the client's end) is reported by the registration, so
    no read is spent on learning that nothing is left. `upstream_readable` says an edge already reported input on an upstream socket registered
    while it was connecting (that edge will not come again). `relay_poller` is the running loop's `poller()`,
    passed by callers that keep it (it saves a lookup).
    """

    __slots__ = ("poller", "client", "upstream", "closed", "on_half_closed", "on_closed", "_half_closed", "outbound",
                 "inbound", "__weakref__")

    def __init__(self, client: RawSocket, upstream: RawSocket,
                 on_half_closed: Callable[[], None] = lambda: None,
                 on_closed: Callable[[bool], None] = lambda half_closed: None,
                 upstream_readable: bool = False, relay_poller: Poller | None = None) -> None:
        self.poller = relay_poller or poller()
        self.client, self.upstream = client, upstream
        self.closed = False
        self.on_half_closed = on_half_closed
        self.on_closed = on_closed
        self._half_closed = False
        self.outbound = _Direction(self.poller, client, upstream, self._ended, readable=True)
        self.inbound = _Direction(self.poller, upstream, client, self._ended, readable=upstream_readable)
        self.poller.watch(upstream.fileno(), self._upstream_event)
        self.outbound.pump(reads=1)
        if not self.closed:
            self.poller.watch(client.fileno(), self._client_event)
        if upstream_readable:
            self.inbound.pump()

    def _client_event(self, events: int) -> None:
        self._event(events, self.outbound, self.inbound)

    def _upstream_event(self, events: int) -> None:
        self._event(events, self.inbound, self.outbound)

    @staticmethod
    def _event(events: int, reading: _Direction, writing: _Direction) -> None:
        """An edge on one socket: `reading` has it as source, `writing` as destination."""
        if events & READABLE:
            reading.readable = True
            reading.pump()
        if events & WRITABLE:
            writing.writable = True
            writing.pump()

    def _ended(self, direction: _Direction, failed: bool) -> None:
        if failed:
            self.close(reset=True)
        elif not (self.outbound.done and self.inbound.done):  # the first end: pass the half-close on
            with contextlib.suppress(OSError):
                direction.dst.shutdown(socket.SHUT_WR)
            self._half_closed = True
            self.on_half_closed()
        else:
            self.close()

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for direction in (self.outbound, self.inbound):
            direction.done = True
            direction.release_pipe()
        self.poller.close_socket(self.client, reset)
        self.poller.close_socket(self.upstream, reset)
        on_closed = self.on_closed
        self._break_cycles()
        on_closed(self._half_closed)

    def _break_cycles(self) -> None:
        """Relays and their callbacks refer to each other; unlinking them lets reference counting free a closed
        connection at once instead of leaving it to the cyclic garbage collector (whose pauses show as latency)."""
        self.outbound.on_end = self.inbound.on_end = _ignore
        self.on_closed = self.on_half_closed = _ignore
