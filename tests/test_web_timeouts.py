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
from tests.web_support import MemoryUsers, make_context

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


def test_idle_kept_alive_connection_is_closed_after_the_idle_timeout(connect):
    clock, open_connection = connect
    before = TIMEOUTS.value(reason="idle")
    channel, transport = open_connection()
    channel.dataReceived(REQUEST)
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    transport.clear()
    clock.advance(HEADER_TIMEOUT * 2)  # between requests the header deadline does not run
    assert not transport.disconnecting
    channel.dataReceived(REQUEST)  # the kept-alive connection serves another request
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    clock.advance(IDLE_TIMEOUT - 0.1)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting
    assert TIMEOUTS.value(reason="idle") == before + 1


def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_deadline(connect):
    clock, open_connection = connect
    channel, transport = open_connection()
    channel.dataReceived(REQUEST)
    clock.advance(HEADER_TIMEOUT * 2)
    channel.dataReceived(b"GET /static/app.css HT")
    clock.advance(HEADER_TIMEOUT + 0.1)
    assert transport.disconnecting


def test_pipelined_requests_are_all_answered(connect):
    clock, open_connection = connect
    channel, transport = open_connection()
    channel.dataReceived(REQUEST * 3)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 3
    clock.advance(HEADER_TIMEOUT + 1)
    assert not transport.disconnecting  # complete requests: no header deadline left running


def test_reason_phrase_on_the_wire(connect):
    _clock, open_connection = connect
    channel, transport = open_connection()
    channel.dataReceived(b"GET /nowhere HTTP/1.1\r\nHost: cc.example\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 404 Not Found\r\n")
