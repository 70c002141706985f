"""Slowloris: HTTP connections that never finish their headers, or sit idle after a response, are closed.
The real site (build_site) over a string transport; time is a task.Clock, never slept."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from ccserver.web.app import build_site
from ccserver.web.channel import TIMEOUTS
from tests.web_support import LOOP, MemoryUsers, make_context, spin

HEADER_TIMEOUT, IDLE_TIMEOUT = 3.0, 20.0
ENV = {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
       "CCSERVER_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "CCSERVER_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT)}
REQUEST = b"GET /static/app.css HTTP/1.1\r\nHost: cc.example\r\n\r\n"


@pytest.fixture
def connect() -> Any:
    clock = task.Clock()
    site = build_site(make_context(MemoryUsers(), clock=clock, environ=ENV))
    site.startFactory()

    def open_connection() -> tuple[Any, StringTransport]:
        channel = site.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        channel.makeConnection(transport)
        return channel, transport

    yield clock, open_connection
    site.stopFactory()


def test_headers_trickled_a_byte_at_a_time_are_cut_off(connect):
    clock, open_connection = connect
    before = TIMEOUTS.value(reason="header")
    channel, transport = open_connection()
    channel.dataReceived(b"GET /static/app.css HTTP/1.1\r\n")
    trickle = iter(b"X-Slow: " + b"a" * 100)
    for _ in range(int(HEADER_TIMEOUT) - 1):  # a byte a second: the idle timeout alone never fires
        clock.advance(1)
        channel.dataReceived(bytes([next(trickle)]))
        assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting and transport.value() == b""
    assert TIMEOUTS.value(reason="header") == before + 1


def test_a_connection_that_never_sends_a_request_is_closed(connect):
    clock, open_connection = connect
    _channel, transport = open_connection()
    clock.advance(HEADER_TIMEOUT - 0.1)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting


def serve(channel: Any, data: bytes) -> None:
    """Feed a request; its handler (an asyncio task) runs on the test loop until it has answered."""

    async def feed() -> None:
        channel.dataReceived(data)

    LOOP.run_until_complete(feed())
    spin()


def test_idle_kept_alive_connection_is_closed_after_the_idle_timeout(connect):
    clock, open_connection = connect
    before = TIMEOUTS.value(reason="idle")
    channel, transport = open_connection()
    serve(channel, REQUEST)
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    transport.clear()
    clock.advance(HEADER_TIMEOUT * 2)  # between requests the header deadline does not run
    assert not transport.disconnecting
    serve(channel, REQUEST)  # the kept-alive connection serves another request
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    clock.advance(IDLE_TIMEOUT - 0.1)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting
    assert TIMEOUTS.value(reason="idle") == before + 1


def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_deadline(connect):
    clock, open_connection = connect
    channel, transport = open_connection()
    serve(channel, REQUEST)
    clock.advance(HEADER_TIMEOUT * 2)
    channel.dataReceived(b"GET /static/app.css HT")
    clock.advance(HEADER_TIMEOUT + 0.1)
    assert transport.disconnecting


def test_pipelined_requests_are_all_answered(connect):
    clock, open_connection = connect
    channel, transport = open_connection()
    serve(channel, REQUEST * 3)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 3
    clock.advance(HEADER_TIMEOUT + 1)
    assert not transport.disconnecting  # complete requests: no header deadline left running


def test_reason_phrase_on_the_wire(connect):
    _clock, open_connection = connect
    channel, transport = open_connection()
    serve(channel, b"GET /nowhere HTTP/1.1\r\nHost: cc.example\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(connect):
    """Content-Length: 99999999999 held the connection a minute with no answer (twisted.web waited for the body,
    spooling it to a temporary file); now 413 at once, nothing read, the connection closed."""
    from ccserver.web.channel import BODIES_REFUSED

    _clock, open_connection = connect
    before = BODIES_REFUSED.value()
    channel, transport = open_connection()
    channel.dataReceived(b"POST /api/login HTTP/1.1\r\nHost: cc.example\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 99999999999\r\n\r\n" + b"x" * 1000)
    assert transport.value().startswith(b"HTTP/1.1 413 ") and b"request body too large" in transport.value()
    assert transport.disconnecting and BODIES_REFUSED.value() == before + 1
    channel.dataReceived(b"y" * 100_000)  # what still comes is not read
    assert transport.value().count(b"HTTP/1.1") == 1


def test_a_chunked_body_is_refused_the_moment_it_passes_the_cap(connect):
    from ccserver.web.http import MAX_BODY_BYTES

    _clock, open_connection = connect
    channel, transport = open_connection()
    channel.dataReceived(b"POST /api/login HTTP/1.1\r\nHost: cc.example\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
    for _ in range(MAX_BODY_BYTES // 65536):
        channel.dataReceived(chunk)
        assert transport.value() == b""  # up to the cap: still reading
    channel.dataReceived(chunk)
    assert transport.value().startswith(b"HTTP/1.1 413 ") and transport.disconnecting


def test_a_body_within_the_cap_is_served_as_before(connect):
    _clock, open_connection = connect
    channel, transport = open_connection()
    body = b'{"username": "nobody", "password": "x"}'
    serve(channel, b"POST /api/login HTTP/1.1\r\nHost: cc.example\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert transport.value().startswith(b"HTTP/1.1 401 ")
