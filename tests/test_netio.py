"""write_through on a real loopback TCP connection: sent at once when idle, in order behind queued bytes, the
rest of a partial send queued, and plain ``write`` for transports that are not Twisted file descriptors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from ccserver.netio import write_through


@pytest.fixture
def connected() -> Iterator[tuple[Any, Any, socket.socket]]:
    """(reactor, the server-side Twisted transport, the client's plain socket)."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    made: list[Protocol] = []

    class Keep(Protocol):
        def connectionMade(self) -> None:
            made.append(self)

    port = reactor.listenTCP(0, Factory.forProtocol(Keep), interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    while not made:
        loop.run_until_complete(asyncio.sleep(0.01))
    yield reactor, made[0].transport, client
    client.close()
    made[0].transport.abortConnection()
    loop.run_until_complete(asyncio.sleep(0.01))
    port.stopListening()
    loop.close()


def _spin(reactor: Any, seconds: float = 0.05) -> None:
    reactor._asyncioEventloop.run_until_complete(asyncio.sleep(seconds))


def _read(client: socket.socket, size: int, reactor: Any) -> bytes:
    client.setblocking(False)
    data = b""
    for _ in range(2000):
        try:
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        except BlockingIOError:
            _spin(reactor, 0.005)
        if len(data) >= size:
            break
    return data


def test_an_idle_transport_sends_at_once(connected: Any) -> None:
    reactor, transport, client = connected
    write_through(transport, b"EXEC MSet \"CC_QUEUE=vip\"\n")
    client.settimeout(1.0)
    assert client.recv(100) == b"EXEC MSet \"CC_QUEUE=vip\"\n"  # no reactor iteration ran
    assert not transport._tempDataLen and transport.dataBuffer == b""


def test_queued_bytes_keep_their_place(connected: Any) -> None:
    reactor, transport, client = connected
    transport.write(b"first\n")  # queued: leaves on the next iteration
    write_through(transport, b"second\n")  # must not overtake it
    _spin(reactor)
    assert _read(client, 13, reactor) == b"first\nsecond\n"


def test_a_partial_send_queues_the_rest_in_order(connected: Any) -> None:
    reactor, transport, client = connected
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    blob = bytes(range(256)) * 4_000  # ~1 MB: far more than the socket takes at once
    write_through(transport, blob)
    assert transport._tempDataLen or transport.offset < len(transport.dataBuffer)  # the rest is queued
    write_through(transport, b"tail")  # queued behind it
    received = _read(client, len(blob) + 4, reactor)
    assert received == blob + b"tail"


def test_other_transports_just_write() -> None:
    transport = StringTransport()
    write_through(transport, b"x\n")
    assert transport.value() == b"x\n"
