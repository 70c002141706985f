"""``agi.allow``: FastAGI peers outside the allowed networks are refused at accept, before a byte is read."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock

from ccserver.agi import AGISession, FastAGIFactory, listen_fastagi
from ccserver.agi.metrics import REFUSED
from tests.replay.agi_peer import env_block
from tests.replay.agi_transcripts import load_agi
from tests.test_agi_loopback import spin


def v4(host: str) -> IPv4Address:
    return IPv4Address("TCP", host, 40000)


def test_default_allows_only_loopback() -> None:
    factory = FastAGIFactory({}, clock=Clock())
    before = REFUSED.value()
    assert factory.buildProtocol(v4("127.0.0.1")) is not None
    assert factory.buildProtocol(v4("127.9.8.7")) is not None
    assert factory.buildProtocol(IPv6Address("TCP", "::1", 40000)) is not None
    assert factory.buildProtocol(IPv6Address("TCP", "::ffff:127.0.0.1", 40000)) is not None  # dual-stack socket
    assert factory.buildProtocol(v4("10.1.0.5")) is None
    assert factory.buildProtocol(v4("192.168.1.20")) is None
    assert factory.buildProtocol(IPv6Address("TCP", "fe80::1%eth0", 40000)) is None
    assert REFUSED.value() == before + 3 and factory.refused == 3


@pytest.mark.parametrize(("host", "allowed"), [
    ("10.1.0.5", True), ("10.1.0.255", True), ("10.1.1.5", False), ("192.0.2.7", True), ("192.0.2.8", False),
    ("2001:db8::5", True), ("2001:db9::5", False), ("::ffff:10.1.0.9", True), ("127.0.0.1", False),
])
def test_configured_networks(host: str, allowed: bool) -> None:
    factory = FastAGIFactory({}, clock=Clock(), allow=["10.1.0.0/24", "192.0.2.7/32", "2001:db8::/32"])
    addr = IPv6Address("TCP", host, 1) if ":" in host else v4(host)
    assert (factory.buildProtocol(addr) is not None) is allowed
    assert (factory.buildProtocol(addr) is not None) is allowed  # the remembered verdict agrees


def test_refusals_are_logged_at_most_every_ten_seconds(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    factory = FastAGIFactory({}, clock=clock, allow=["10.0.0.0/8"])
    for _ in range(50):
        factory.buildProtocol(v4("203.0.113.9"))
    clock.advance(10)
    factory.buildProtocol(v4("203.0.113.\x1b[2J"))  # not an address: refused, and its text escaped in the log
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "203.0.113.9" in lines[0] and "1 refused" in lines[0]
    assert "50 refused" in lines[1] and "\x1b" not in lines[1] and "\\x1b[2J" in lines[1]


def test_a_refused_peer_is_closed_before_a_byte_is_read(aio_reactor: Any) -> None:
    """On real TCP: a peer outside agi.allow gets its connection closed; its env block is never read."""
    reactor = aio_reactor
    called: list[str] = []

    async def incoming(session: AGISession) -> None:
        called.append(session.uniqueid)
        await session.set_variable("CC_QUEUE", "vip")

    factory = FastAGIFactory({"incoming": incoming}, clock=reactor, allow=["192.0.2.0/24"])
    port = listen_fastagi(reactor, factory, 0)
    before = REFUSED.value()
    sock = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=2)
    sock.setblocking(False)
    sock.sendall(env_block(load_agi("agi-01-13800138000").env))
    received = None
    deadline = time.monotonic() + 5
    while received is None and time.monotonic() < deadline:
        spin(reactor, 0.02)
        try:
            received = sock.recv(100)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            received = b""
    sock.close()
    port.stopListening()
    spin(reactor, 0.05)
    assert received == b"" and called == []
    assert REFUSED.value() == before + 1 and factory.headers_pending == 0
