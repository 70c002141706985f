"""Login budgets without HTTP: per username and per address, counted at admission, refunds, pruning; the
same behaviour from the Redis store (real Redis) shared by two nodes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from ccserver.login_limits import MemoryLoginLimiter, RedisLoginLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def done(coro: Any) -> Any:
    """The result of a coroutine that completes without waiting (the in-memory store)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("coroutine waited")


def test_username_budget_counts_admissions_and_waits_for_the_oldest():
    clock = FakeClock()
    limiter = MemoryLoginLimiter(2, 10, 60, clock=clock)
    first = done(limiter.admit("bob", "192.0.2.1"))
    clock.now += 10
    second = done(limiter.admit("Bob", "192.0.2.2"))  # same user, whatever the case and address
    assert first.admitted and second.admitted
    refused = done(limiter.admit("BOB", "192.0.2.3"))
    assert not refused.admitted and refused.retry_after == pytest.approx(50)  # until the first leaves the window
    assert refused.retry_after_seconds == 50
    clock.now += 50
    assert done(limiter.admit("bob", "192.0.2.3")).admitted


def test_address_budget_is_separate_and_refused_attempts_are_not_counted():
    clock = FakeClock()
    limiter = MemoryLoginLimiter(2, 3, 60, clock=clock)
    for name in ("a", "b", "c"):
        assert done(limiter.admit(name, "198.51.100.7")).admitted
    assert not done(limiter.admit("d", "198.51.100.7")).admitted
    assert done(limiter.admit("d", "198.51.100.8")).admitted  # another address
    for _ in range(20):  # hammering while refused does not push the lock-out further
        done(limiter.admit("e", "198.51.100.7"))
    clock.now += 60
    assert done(limiter.admit("e", "198.51.100.7")).admitted


def test_success_clears_the_username_and_refunds_the_address():
    clock = FakeClock()
    limiter = MemoryLoginLimiter(2, 2, 60, clock=clock)
    done(limiter.admit("bob", "10.0.0.1"))  # a failure: stays counted
    good = done(limiter.admit("bob", "10.0.0.1"))
    done(limiter.succeeded(good))
    # bob's failures are gone; the address holds only the failure, not the good login
    assert done(limiter.admit("bob", "10.0.0.9")).admitted
    assert done(limiter.admit("carol", "10.0.0.1")).admitted
    assert not done(limiter.admit("dave", "10.0.0.1")).admitted
    # a floor of good logins behind one address never spends its budget
    floor = MemoryLoginLimiter(2, 2, 60, clock=clock)
    for n in range(100):
        admission = done(floor.admit(f"agent{n}", "10.9.9.9"))
        assert admission.admitted
        done(floor.succeeded(admission))


def test_cancel_refunds_both_budgets():
    limiter = MemoryLoginLimiter(1, 1, 60, clock=FakeClock())
    admission = done(limiter.admit("bob", "10.0.0.1"))
    done(limiter.cancel(admission))
    assert done(limiter.admit("bob", "10.0.0.1")).admitted
    assert len(limiter) == 2


def test_stale_keys_are_pruned_and_memory_is_capped():
    clock = FakeClock()
    limiter = MemoryLoginLimiter(5, 50, 300, clock=clock)
    for n in range(20_000):
        done(limiter.admit(f"user{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"))
    assert len(limiter) == 40_000
    clock.now += 301
    done(limiter.admit("late", "10.255.0.1"))
    assert len(limiter) == 2  # everything older than the window is gone
    capped = MemoryLoginLimiter(5, 50, 300, clock=clock, max_keys=1000)
    for n in range(5000):
        done(capped.admit(f"spray{n}", "192.0.2.1"))
        clock.now += 0.001
    assert len(capped) <= 1001


# -- Redis: the same rules, shared by nodes ---------------------------------------------------------------------------
def run(reactor: Any, coro: Any, timeout: float = 5.0) -> Any:
    """Run a Twisted-driven coroutine (one that awaits Deferreds) on the reactor's loop, started inside it."""
    loop = reactor._asyncioEventloop

    async def inside() -> Any:
        return await Deferred.fromCoroutine(coro).asFuture(loop)

    return loop.run_until_complete(asyncio.wait_for(inside(), timeout))


def run_aio(reactor: Any, coro: Any) -> Any:
    return reactor._asyncioEventloop.run_until_complete(coro)


def test_redis_budgets_are_shared_by_two_nodes(aio_reactor, redis_url):
    import redis.asyncio as aioredis

    reactor = aio_reactor
    clock = FakeClock()
    client = aioredis.Redis.from_url(redis_url)
    one = RedisLoginLimiter(client, 2, 3, 60, clock=clock)
    two = RedisLoginLimiter(client, 2, 3, 60, clock=clock)
    assert run(reactor, one.admit("bob", "10.0.0.1")).admitted
    clock.now += 10
    assert run(reactor, two.admit("BOB", "10.0.0.2")).admitted
    refused = run(reactor, one.admit("bob", "10.0.0.3"))
    assert not refused.admitted and refused.retry_after == pytest.approx(50)
    # address budget 3, across usernames and nodes; a success refunds the address and clears the username
    assert run(reactor, two.admit("carol", "10.0.0.1")).admitted
    good = run(reactor, one.admit("dave", "10.0.0.1"))
    assert good.admitted and not run(reactor, two.admit("erin", "10.0.0.1")).admitted
    run(reactor, one.succeeded(good))
    assert run(reactor, two.admit("erin", "10.0.0.1")).admitted
    cancelled = run(reactor, one.admit("frank", "10.0.0.5"))
    run(reactor, two.cancel(cancelled))
    assert run_aio(reactor, client.zcard(RedisLoginLimiter.PREFIX + "a:10.0.0.5")) == 0
    ttl = run_aio(reactor, client.pttl(RedisLoginLimiter.PREFIX + "u:bob"))
    assert 0 < ttl <= 60_000  # keys go with the window: nothing to prune
    clock.now += 51
    assert run(reactor, two.admit("bob", "10.0.0.3")).admitted
    run_aio(reactor, client.aclose())
