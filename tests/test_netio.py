"""write_through on a real loopback TCP connection: sent at once when idle, in order behind queued bytes, the
rest of a partial send queued, and plain ``write`` for transports that are not Twisted file descriptors; and
close_through: an idle connection closed at once (orderly), one with bytes queued closed once they are out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from ccserver.netio import close_through, read_through, write_through


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


class _Seen(Protocol):
    def __init__(self) -> None:
        self.lost: list[Any] = []

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's name
        self.lost.append(reason)


def _recv_all(client: socket.socket, reactor: Any) -> bytes:
    """Everything the client reads until the server's FIN (EOF)."""
    client.setblocking(False)
    data = b""
    for _ in range(400):
        try:
            chunk = client.recv(1 << 20)
        except BlockingIOError:
            _spin(reactor, 0.005)
            continue
        if not chunk:
            return data
        data += chunk
    raise AssertionError("no EOF")


def test_close_through_an_idle_transport_closes_at_once(connected: Any) -> None:
    reactor, transport, client = connected
    seen = _Seen()
    transport.protocol = seen
    seen.makeConnection(transport)
    write_through(transport, b"EXEC MSet \"CC_QUEUE=vip\"\n")
    close_through(transport)
    # No reactor iteration ran: the socket is closed and the protocol told, as after loseConnection's doWrite.
    assert len(seen.lost) == 1 and seen.lost[0].check(ConnectionDone)
    assert transport.disconnected and not transport.connected
    assert transport not in reactor.getReaders() and transport not in reactor.getWriters()
    client.settimeout(1.0)
    assert client.recv(100) == b"EXEC MSet \"CC_QUEUE=vip\"\n"
    assert client.recv(100) == b""  # an orderly close (FIN), not a reset
    close_through(transport)  # closed already: nothing happens
    assert len(seen.lost) == 1


def test_close_through_with_bytes_queued_waits_for_them(connected: Any) -> None:
    reactor, transport, client = connected
    seen = _Seen()
    transport.protocol = seen
    seen.makeConnection(transport)
    transport.write(b"first\n")  # queued: leaves on the next iteration
    close_through(transport)
    assert not seen.lost and transport.disconnecting  # loseConnection: closed once the bytes are out
    assert _recv_all(client, reactor) == b"first\n"
    assert len(seen.lost) == 1 and seen.lost[0].check(ConnectionDone)


def test_close_through_other_transports_lose_connection() -> None:
    transport = StringTransport()
    close_through(transport)
    assert transport.disconnecting


class _Eager(Protocol):
    """Reads through at connectionMade; records what arrived, and when."""

    def __init__(self, made: list[Any]) -> None:
        self.made = made
        self.events: list[Any] = []
        self.in_made = False

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        self.made.append(self)
        self.in_made = True
        read_through(self.transport)
        self.in_made = False

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.events.append(("data", data, self.in_made))

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's name
        self.events.append(("lost", reason.type.__name__, self.in_made))


@pytest.fixture
def eager_port() -> Iterator[tuple[Any, int, list[Any]]]:
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    made: list[Any] = []
    factory = Factory()
    factory.buildProtocol = lambda addr: _Eager(made)  # type: ignore[method-assign]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield reactor, port.getHost().port, made
    for proto in made:
        if proto.transport.connected:
            proto.transport.abortConnection()
    _spin(reactor, 0.01)
    port.stopListening()
    loop.close()


def _accepted(reactor: Any, made: list[Any]) -> Any:
    for _ in range(200):
        if made:
            return made[0]
        _spin(reactor, 0.005)
    raise AssertionError("not accepted")


def test_read_through_reads_what_came_with_the_connection(eager_port: Any) -> None:
    reactor, port, made = eager_port
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"agi_network: yes\n\n")
    proto = _accepted(reactor, made)
    assert proto.events == [("data", b"agi_network: yes\n\n", True)]  # inside connectionMade: no loop iteration
    client.sendall(b"200 result=1\n")
    _recv_events(reactor, proto, 2)
    assert proto.events[1] == ("data", b"200 result=1\n", False)  # later reads: the reactor's, as usual
    client.close()


def test_read_through_with_nothing_there_leaves_it_to_the_reactor(eager_port: Any) -> None:
    reactor, port, made = eager_port
    client = socket.create_connection(("127.0.0.1", port))
    proto = _accepted(reactor, made)
    assert proto.events == [] and proto.transport.connected
    client.sendall(b"late\n")
    _recv_events(reactor, proto, 1)
    assert proto.events == [("data", b"late\n", False)]
    client.close()


def test_read_through_an_eof_closes_as_the_reactor_would(eager_port: Any) -> None:
    reactor, port, made = eager_port
    client = socket.create_connection(("127.0.0.1", port))
    client.close()  # the peer is gone before the accept ran: on loopback its FIN is queued by now
    proto = _accepted(reactor, made)
    assert proto.events == [("lost", "ConnectionDone", True)]  # read (EOF) inside connectionMade, closed as usual
    assert not proto.transport.connected and proto.transport not in reactor.getReaders()


def test_read_through_other_transports_do_nothing() -> None:
    read_through(StringTransport())


def _recv_events(reactor: Any, proto: Any, count: int) -> None:
    for _ in range(200):
        if len(proto.events) >= count:
            return
        _spin(reactor, 0.005)
    raise AssertionError(f"events so far: {proto.events}")
