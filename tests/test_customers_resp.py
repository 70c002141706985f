"""The call path's Twisted Redis client: RESP framing, pipelining, timeouts and loss — against a StringTransport
and a task.Clock — and against the real Redis (db 15): set-up, the cache lookup script, NOSCRIPT, Redis gone."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.customers.cache import RedisSummaryCache
from ccserver.customers.directory import Identity
from ccserver.customers.resp import (
    RespClient,
    RespError,
    RespOutOfStep,
    RespProtocol,
    RespUnavailable,
    encode_command,
    parse_reply,
    redis_address,
)
from routing.decision import CustomerSummary

T0 = 1_795_000_000.0
ZHANG = Identity(CustomerSummary(id="1", name="张伟", tier="diamond", score=66.56, vip=True, preferred_language="zh",
                                 sales_consultant="PJSIP/6006", service_advisor="PJSIP/7006"))  # fmt: skip


# -- framing ---------------------------------------------------------------------------------------------------------
def test_parse_every_reply_kind() -> None:
    assert parse_reply(b"+OK\r\n") == ("OK", 5)
    assert parse_reply(b":42\r\n") == (42, 5)
    assert parse_reply(b"$5\r\na\r\nbc\r\n") == (b"a\r\nbc", 11)  # bulk strings are length-framed: CRLF inside
    assert parse_reply(b"$-1\r\n") == (None, 5)
    assert parse_reply(b"*-1\r\n") == (None, 5)
    assert parse_reply(b"*2\r\n$1\r\nx\r\n*1\r\n:7\r\n") == ([b"x", [7]], 19)
    error, end = parse_reply(b"-NOSCRIPT No matching script\r\n")
    assert isinstance(error, RespError) and str(error).startswith("NOSCRIPT") and end == 30


@pytest.mark.parametrize("data", [b"", b"+OK", b"$5\r\nab", b"$5\r\nabcde", b"*2\r\n:1\r\n", b"*2\r\n$3\r\nab"])
def test_partial_replies_wait_for_more(data: bytes) -> None:
    with pytest.raises(Exception) as caught:
        parse_reply(data)
    assert type(caught.value).__name__ == "_Incomplete"


@pytest.mark.parametrize("data", [b"?what\r\n", b"$abc\r\n", b":1x\r\n", b"$3\r\nabcXY", b"$99999999999\r\n"])
def test_malformed_replies_are_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_reply(data)


def test_commands_are_length_framed() -> None:
    assert encode_command(("GET", "k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    hostile = "a\r\n*1\r\n$8\r\nFLUSHALL\r\n"  # CR/LF in a value cannot start a second command
    assert encode_command(("SET", hostile, 1.5, 7, b"\x00")) == (
        b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\n1.5\r\n$1\r\n7\r\n$1\r\n\x00\r\n" % (len(hostile), hostile.encode()))
    for bad in (None, True, object()):
        with pytest.raises(TypeError):
            encode_command(("SET", bad))


def test_redis_urls() -> None:
    assert redis_address("redis://127.0.0.1:6379/15") == ("tcp", ("127.0.0.1", 6379), {
        "username": None, "password": None, "db": 15})
    assert redis_address("redis://user:p%40ss@cache") == ("tcp", ("cache", 6379), {
        "username": "user", "password": "p@ss", "db": 0})
    assert redis_address("redis://:secret@h:1?db=3") == ("tcp", ("h", 1), {"username": None, "password": "secret",
                                                                           "db": 3})
    assert redis_address("unix:///run/redis.sock?db=2") == ("unix", "/run/redis.sock", {
        "username": None, "password": None, "db": 2})
    assert redis_address("rediss://h:6380/0") is None  # TLS: redis-py keeps it
    assert RespClient.for_url(Clock(), "rediss://h:6380/0") is None


# -- the protocol on a fake transport --------------------------------------------------------------------------------
@pytest.fixture
def proto() -> Iterator[tuple[RespProtocol, StringTransport, Clock]]:
    clock = Clock()
    protocol = RespProtocol(clock, timeout=1.0)
    transport = StringTransport()
    protocol.makeConnection(transport)
    yield protocol, transport, clock


def _results(d: Deferred[Any]) -> list[Any]:
    out: list[Any] = []
    d.addBoth(out.append)
    return out


def test_pipelined_replies_in_order_split_anywhere(proto: Any) -> None:
    protocol, transport, _ = proto
    got = [_results(protocol.request("GET", str(i))) for i in range(3)]
    assert transport.value() == b"".join(encode_command(("GET", str(i))) for i in range(3))
    stream = b"$1\r\na\r\n-ERR wrong\r\n*2\r\n$-1\r\n:3\r\n"
    for i in range(len(stream)):  # byte by byte
        protocol.dataReceived(stream[i:i + 1])
    assert got[0] == [b"a"] and got[2] == [[None, 3]]
    assert got[1][0].check(RespError) and str(got[1][0].value) == "ERR wrong"
    got[1][0].trap(RespError)


def test_a_reply_that_fails_its_check_drops_the_connection_and_everything_pending(proto: Any) -> None:
    protocol, transport, _ = proto
    mine = _results(protocol.request("EVALSHA", "x", 0, check=lambda reply: reply == [b"+861", 1]))
    next_one = _results(protocol.request("GET", "k"))
    protocol.dataReceived(b"*2\r\n$4\r\n+862\r\n:1\r\n$1\r\nv\r\n")  # another request's answer first
    assert transport.disconnecting
    for got in (mine, next_one):  # neither takes a reply that may be someone else's
        assert got[0].check(RespOutOfStep)
        got[0].trap(RespOutOfStep)
    refused = _results(protocol.request("GET", "k"))
    assert refused[0].check(RespUnavailable)
    refused[0].trap(RespUnavailable)


def test_a_reply_that_passes_its_check_is_delivered(proto: Any) -> None:
    protocol, transport, _ = proto
    got = _results(protocol.request("EVALSHA", "x", 0, check=lambda reply: reply[0] == b"+861"))
    protocol.dataReceived(b"*2\r\n$4\r\n+861\r\n:1\r\n")
    assert got == [[b"+861", 1]] and not transport.disconnecting


def test_a_late_reply_drops_the_connection_and_fails_everything_pending(proto: Any) -> None:
    protocol, transport, clock = proto
    first = _results(protocol.request("GET", "a"))
    clock.advance(0.6)
    second = _results(protocol.request("GET", "b"))
    clock.advance(0.5)  # the first is 1.1 s old
    assert transport.disconnecting or transport.disconnected
    for got in (first, second):
        assert got[0].check(RespUnavailable)
        got[0].trap(RespUnavailable)
    late = _results(protocol.request("GET", "c"))
    assert late[0].check(RespUnavailable)
    late[0].trap(RespUnavailable)


def test_the_timeout_sweep_follows_the_oldest_request(proto: Any) -> None:
    protocol, transport, clock = proto
    first = _results(protocol.request("GET", "a"))
    clock.advance(0.9)
    protocol.dataReceived(b"$1\r\nA\r\n")
    second = _results(protocol.request("GET", "b"))
    clock.advance(0.2)  # the sweep at 1.0 s finds "b" only 0.1 s old
    assert first == [b"A"] and second == [] and not transport.disconnecting
    protocol.dataReceived(b"$1\r\nB\r\n")
    clock.advance(5)
    assert second == [b"B"] and not transport.disconnecting and not clock.getDelayedCalls()


def test_loss_and_garbage_fail_pending_requests(proto: Any) -> None:
    protocol, transport, _ = proto
    pending = _results(protocol.request("GET", "a"))
    protocol.dataReceived(b"%7\r\n")  # RESP3 map: not what was asked for
    assert transport.disconnecting and pending[0].check(RespUnavailable)
    pending[0].trap(RespUnavailable)

    other = RespProtocol(Clock(), timeout=1.0)
    other.makeConnection(StringTransport())
    waiting = _results(other.request("GET", "a"))
    other.connectionLost(None)
    assert waiting[0].check(RespUnavailable)
    waiting[0].trap(RespUnavailable)

    chatty = RespProtocol(Clock(), timeout=1.0)
    chatty_transport = StringTransport()
    chatty.makeConnection(chatty_transport)
    chatty.dataReceived(b"+unasked\r\n")
    assert chatty_transport.disconnecting


def test_a_request_behind_goes_with_the_next_request(proto: Any) -> None:
    protocol, transport, clock = proto
    store = _results(protocol.request_behind("EVALSHA", "s", 0, within=0.02))
    assert transport.value() == b""  # held back
    lookup = _results(protocol.request("EVALSHA", "l", 0))
    assert transport.value() == encode_command(("EVALSHA", "s", 0)) + encode_command(("EVALSHA", "l", 0))
    protocol.dataReceived(b":1\r\n:2\r\n")  # both replies in one read, in order
    assert store == [1] and lookup == [2]
    clock.advance(0.02)  # the flush timer finds nothing left to write
    assert transport.value() == encode_command(("EVALSHA", "s", 0)) + encode_command(("EVALSHA", "l", 0))
    clock.advance(5)
    assert not transport.disconnecting and not clock.getDelayedCalls()


def test_a_request_behind_is_written_within_its_delay_and_timed_out_from_then(proto: Any) -> None:
    protocol, transport, clock = proto
    store = _results(protocol.request_behind("GET", "a", within=0.02))
    clock.advance(0.019)
    assert transport.value() == b""
    clock.advance(0.001)
    assert transport.value() == encode_command(("GET", "a"))
    clock.advance(0.99)  # 0.99 s after it was written: not late yet
    assert store == [] and not transport.disconnecting
    clock.advance(0.02)
    assert transport.disconnecting or transport.disconnected
    store[0].trap(RespUnavailable)


def test_requests_behind_fail_with_the_connection_unwritten(proto: Any) -> None:
    protocol, transport, clock = proto
    store = _results(protocol.request_behind("GET", "a", within=0.02))
    protocol.connectionLost(None)
    store[0].trap(RespUnavailable)
    clock.advance(1)
    assert transport.value() == b"" and not clock.getDelayedCalls()
    refused = _results(protocol.request_behind("GET", "b", within=0.02))
    refused[0].trap(RespUnavailable)


# -- against the real Redis ------------------------------------------------------------------------------------------
def run(reactor: Any, awaitable: Any, timeout: float = 5.0) -> Any:
    loop = reactor._asyncioEventloop
    if isinstance(awaitable, Deferred):
        awaitable = awaitable.asFuture(loop)
    return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))


def test_lookup_on_twisted_answers_as_redis_py_does(aio_reactor: Any, redis_url: str) -> None:
    reactor = aio_reactor
    client = RespClient(reactor, redis_url)
    client.start()
    run(reactor, client.when_connected())  # SELECT 15 done: the keys below are the suite's own database's
    assert client.connected
    assert type(client._protocol) is RespProtocol  # the protocol itself, not ClientService's forwarding proxy
    aio = aioredis.Redis.from_url(redis_url)
    cache = RedisSummaryCache(aio, call_path=client)
    run(reactor, cache.store("+8613800138000", ZHANG))

    fast = run(reactor, cache.lookup_deferred("+8613800138000", T0))
    slow = run(reactor, cache.lookup("+8613800138000", T0 + 1))
    assert fast == (ZHANG, 1) and slow == (ZHANG, 2)  # same identity; both calls counted on the same counter
    assert run(reactor, cache.lookup_deferred("+8613900000000", T0)) == (None, 1)

    run(reactor, aio.script_flush())  # a Redis that lost its scripts: NOSCRIPT, then EVAL
    assert run(reactor, cache.lookup_deferred("+8613800138000", T0 + 2)) == (ZHANG, 3)

    # store through the Twisted client, unanswered: read back by redis-py; refused while the customer is fenced;
    # and the connection's replies stay in step (the next request gets its own answer)
    other = Identity(CustomerSummary(id="5", name="王芳", tier="gold", score=50.0))
    assert run(reactor, cache.store_deferred("+8613700000001", other)) is None
    assert run(reactor, client.request("PING")) == "PONG"
    assert run(reactor, cache.lookup("+8613700000001", T0)) == (other, 1)
    run(reactor, cache.invalidate_customer(5))
    run(reactor, cache.store_deferred("+8613700000001", other))  # fenced: the stale answer stays out
    assert run(reactor, cache.lookup_deferred("+8613700000001", T0 + 1)) == (None, 2)

    run(reactor, client.stop())
    assert not client.connected
    # Not connected: the same lookup through redis-py (an asyncio task: made inside the running loop)
    async def through_redis_py() -> Any:
        return await cache.lookup_deferred("+8613800138000", T0 + 3).asFuture(reactor._asyncioEventloop)

    assert run(reactor, through_redis_py()) == (ZHANG, 4)
    run(reactor, aio.aclose())


def test_redis_gone_fails_at_once_and_reconnects(aio_reactor: Any, redis_url: str) -> None:
    reactor = aio_reactor
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    client = RespClient(reactor, f"redis://127.0.0.1:{free_port}/15", timeout=0.5)
    client.start()
    run(reactor, asyncio.sleep(0.2))
    assert not client.connected
    with pytest.raises(RespUnavailable):
        run(reactor, client.request("PING"), timeout=0.05)  # no waiting on a connection that is not there
    run(reactor, client.stop())

    # A connection killed by Redis: pending requests fail, the next connection serves again.
    client = RespClient(reactor, redis_url)
    client.start()
    run(reactor, client.when_connected())
    assert run(reactor, client.request("CLIENT", "SETNAME", "ccserver-test-victim")) == "OK"
    aio = aioredis.Redis.from_url(redis_url)
    victims = [c["id"] for c in run(reactor, aio.client_list()) if c.get("name") == "ccserver-test-victim"]
    assert len(victims) == 1
    run(reactor, aio.client_kill_filter(_id=victims[0]))
    run(reactor, asyncio.sleep(0.1))
    with pytest.raises(RespUnavailable):
        run(reactor, client.request("PING"))
    for _ in range(60):  # backoff starts at 0.5 s
        run(reactor, asyncio.sleep(0.1))
        if client.connected:
            break
    assert run(reactor, client.request("PING")) == "PONG"
    run(reactor, client.stop())
    run(reactor, aio.aclose())
