"""The call path never takes one caller's reply for another's: against a proxy on loopback that does not honour
``CLIENT REPLY SKIP`` (as twemproxy, envoy or an old Redis), and one whose reply stream is out of step."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from twisted.internet.defer import Deferred, DeferredList

from ccserver.customers.cache import RedisSummaryCache
from ccserver.customers.directory import Identity
from ccserver.customers.resp import RespClient, RespOutOfStep
from routing.decision import CustomerSummary
from tests.fake_redis import RedisProxy, ignores_client_reply

T0 = 1_795_000_000.0


def _who(i: int) -> Identity:
    return Identity(CustomerSummary(id=str(i), name=f"customer {i}", tier="gold", score=50.0))


def run(reactor: Any, awaitable: Any, timeout: float = 5.0) -> Any:
    loop = reactor._asyncioEventloop
    if isinstance(awaitable, Deferred):
        awaitable = awaitable.asFuture(loop)
    return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))


def _settle(reactor: Any, deferreds: list[Deferred[Any]]) -> list[Any]:
    """Each Deferred's result or its exception, once all have fired."""
    out: list[Any] = [None] * len(deferreds)
    for i, d in enumerate(deferreds):
        d.addCallbacks(lambda v, i=i: out.__setitem__(i, v), lambda f, i=i: out.__setitem__(i, f.value))
    run(reactor, DeferredList(deferreds, consumeErrors=True))  # until each has fired (not a fixed wait)
    return out


def _call_path_cache(reactor: Any, url: str) -> tuple[RedisSummaryCache, RespClient]:
    """The cache as ``ccserver run`` builds it: lookups and stores on the call-path client, the rest on redis-py."""
    import redis.asyncio as aioredis

    client = RespClient(reactor, url)
    client.start()
    run(reactor, client.when_connected())
    return RedisSummaryCache(aioredis.Redis.from_url(url), call_path=client), client


def test_a_proxy_that_ignores_client_reply_skip_never_gives_a_caller_another_callers_identity(
        aio_reactor: Any, redis_url: str) -> None:
    reactor = aio_reactor
    proxy = RedisProxy(redis_url, answer=ignores_client_reply)
    port = run(reactor, proxy.start())
    db = urlsplit(redis_url).path.strip("/") or "0"
    cache, client = _call_path_cache(reactor, f"redis://127.0.0.1:{port}/{db}")
    try:
        numbers = [f"+861380000{i:04d}" for i in range(12)]
        for i, n in enumerate(numbers[:6]):  # six known callers, cached earlier
            run(reactor, cache.store(n, _who(i)))

        # A miss is stored (the store after the SQL read) while the next callers' lookups are on the wire.
        stored = cache.store_deferred("+8613900000000", _who(99))
        lookups = [cache.lookup_deferred(n, T0) for n in numbers]
        results = _settle(reactor, [stored, *lookups])

        for number, got in zip(numbers, results[1:], strict=True):
            if isinstance(got, BaseException):
                continue  # a failed lookup is routed by SQL: never a wrong identity
            identity, _count = got
            own = numbers.index(number)
            assert identity is None or identity.customer.id == str(own), (number, identity)
        # With nothing unanswered on the wire, every caller gets their own answer, and the store landed.
        assert [g[0].customer.id if g[0] else None for g in results[1:]] == [str(i) for i in range(6)] + [None] * 6
        assert results[0] is None
        assert run(reactor, cache.lookup("+8613900000000", T0))[0] == _who(99)
    finally:
        run(reactor, client.stop())
        run(reactor, cache.client.aclose())
        run(reactor, proxy.stop())


def _previous_reply_for(victim: str) -> Any:
    """A proxy's ``rewrite``: the lookup of ``victim`` gets the reply of the lookup before it (a stream one reply
    behind, as after any unanswered command)."""
    last: list[bytes] = []

    def rewrite(args: list[bytes], reply: bytes) -> bytes:
        if args[0].upper() not in (b"EVALSHA", b"EVAL"):
            return reply
        if victim.encode() in args and last:
            return last[0]
        last[:] = [reply]
        return reply

    return rewrite


@pytest.mark.parametrize("path", ["call-path client", "redis-py"])
def test_a_reply_about_another_number_fails_the_lookup_and_drops_the_connection(
        aio_reactor: Any, redis_url: str, path: str) -> None:
    reactor = aio_reactor
    proxy = RedisProxy(redis_url, rewrite=_previous_reply_for("+8613800000001"))
    port = run(reactor, proxy.start())
    db = urlsplit(redis_url).path.strip("/") or "0"
    cache, client = _call_path_cache(reactor, f"redis://127.0.0.1:{port}/{db}")
    try:
        run(reactor, cache.store("+8613800000000", _who(0)))

        def lookup(number: str) -> Any:
            if path == "redis-py":
                return run(reactor, cache.lookup(number, T0))
            return run(reactor, cache.lookup_deferred(number, T0))

        assert lookup("+8613800000000")[0] == _who(0)
        connections = sum(1 for c in proxy.commands if c[0].upper() == b"SELECT")
        with pytest.raises(RespOutOfStep):
            lookup("+8613800000001")  # would have been customer 0's identity
        # The connection that carried it is gone; the next lookup is answered on a new one.
        if path == "call-path client":
            assert not client.connected
            for _ in range(40):
                run(reactor, asyncio.sleep(0.05))
                if client.connected:
                    break
        assert lookup("+8613800000000")[0] == _who(0)
        assert sum(1 for c in proxy.commands if c[0].upper() == b"SELECT") == connections + 1
    finally:
        run(reactor, client.stop())
        run(reactor, cache.client.aclose())
        run(reactor, proxy.stop())
