"""The splice relay over real loopback TCP connections: bytes arrive intact both ways, half-close passes through,
a slow reader is not overrun (the data waits and arrives complete), and close callbacks fire once."""

from __future__ import annotations

import asyncio
import os
import socket

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


async def test_a_slow_reader_gets_everything() -> None:
    loop = asyncio.get_running_loop()
    client, client_inner = await _pair()
    upstream_inner, upstream = await _pair()
    Relay(client_inner, upstream_inner)
    payload = os.urandom(24 << 20)
    sender = asyncio.create_task(loop.sock_sendall(client, payload))
    await asyncio.sleep(0.2)  # nobody reads: the relay must hold back, not fail
    assert not sender.done(), "backpressure reached the sender"
    received = bytearray()
    while len(received) < len(payload):
        received += await loop.sock_recv(upstream, 1 << 20)
    await sender
    assert bytes(received) == payload
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
