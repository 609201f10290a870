"""The splice relay over real loopback TCP connections: bytes arrive intact both ways, half-close passes through,
a slow reader is not overrun (the data waits and arrives complete) in either direction, data sent before the
relay starts (a client's request, a server's greeting) is not lost, and close callbacks fire once."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import termios
import time
from collections.abc import Callable

import pytest

from svcnet.proxy.userspace.relay import Relay


async def _pair() -> tuple[socket.socket, socket.socket]:
    """(the end a peer uses, the end the relay owns) of one loopback TCP connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    outer = socket.create_connection(listener.getsockname())
    inner, _ = listener.accept()
    listener.close()
    inner.setblocking(False)
    outer.setblocking(False)
    return outer, inner


async def _read_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    chunks = []
    while data := await loop.sock_recv(sock, 1 << 16):
        chunks.append(data)
    return b"".join(chunks)


async def test_bytes_cross_intact_both_ways_with_half_close() -> None:
    loop = asyncio.get_running_loop()
    client, client_inner = await _pair()
    upstream_inner, upstream = await _pair()
    closed: list[bool] = []
    half: list[bool] = []
    Relay(client_inner, upstream_inner, lambda: half.append(True), closed.append)
    request = os.urandom(3 << 20)
    response = os.urandom(5 << 20)
    await loop.sock_sendall(client, request)
    client.shutdown(socket.SHUT_WR)  # half-close: the response must still come back
    assert await _read_all(upstream) == request
    await loop.sock_sendall(upstream, response)
    upstream.close()
    assert await _read_all(client) == response
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == [True] and half == [True]
    client.close()


async def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue not yet acknowledged (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


@pytest.mark.parametrize("towards", ["upstream", "client"])
async def test_a_slow_reader_gets_everything(towards: str) -> None:
    loop = asyncio.get_running_loop()
    client, client_inner = await _pair()
    upstream_inner, upstream = await _pair()
    Relay(client_inner, upstream_inner)
    sender, receiver = (client, upstream) if towards == "upstream" else (upstream, client)
    payload = os.urandom(24 << 20)
    sending = asyncio.create_task(loop.sock_sendall(sender, payload))
    # nobody reads, so the relay must hold back: on loopback a megabyte stays unacknowledged in the sender's
    # buffer only once the window towards the relay has closed
    await _wait_for(lambda: _unsent(sender) > 1 << 20, "backpressure to reach the sender")
    assert not sending.done()
    received = bytearray()
    while len(received) < len(payload):  # a relay that missed an output edge would stall here
        received += await asyncio.wait_for(loop.sock_recv(receiver, 1 << 20), 5)
    await sending
    assert bytes(received) == payload
    client.close()
    upstream.close()


@pytest.mark.parametrize("first", ["client", "upstream"])
async def test_bytes_sent_before_the_relay_starts_arrive(first: str) -> None:
    """A request already waiting on the client socket, or a server's greeting on the upstream one."""
    loop = asyncio.get_running_loop()
    client, client_inner = await _pair()
    upstream_inner, upstream = await _pair()
    sender, receiver = (client, upstream) if first == "client" else (upstream, client)
    sender.sendall(b"hello")
    await _wait_for(lambda: _unsent(sender) == 0, "the bytes to leave the sender")
    Relay(client_inner, upstream_inner)
    assert await asyncio.wait_for(loop.sock_recv(receiver, 10), 5) == b"hello"
    client.close()
    upstream.close()


async def test_a_reset_closes_both_sides() -> None:
    loop = asyncio.get_running_loop()
    client, client_inner = await _pair()
    upstream_inner, upstream = await _pair()
    closed: list[bool] = []
    Relay(client_inner, upstream_inner, on_closed=closed.append)
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    upstream.close()  # RST
    try:
        data = await asyncio.wait_for(loop.sock_recv(client, 10), 2)
    except ConnectionResetError:
        data = b""
    assert data == b""
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert len(closed) == 1
    client.close()
