"""The number → identity cache: Redis (real, db 15) and in-process, same behaviour."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from ccserver.customers.cache import (
    DAY_SECONDS,
    MemorySummaryCache,
    RedisSummaryCache,
    as_deferred,
    bridge,
    decode_identity,
    encode_identity,
    with_calls,
)
from ccserver.customers.changes import Invalidation, Invalidator
from ccserver.customers.directory import Identity
from routing.decision import CustomerSummary

T0 = 1_795_000_000.0
ZHANG = Identity(CustomerSummary(id="1", name="张伟", tier="diamond", score=66.56, vip=True, preferred_language="zh",
                                 sales_consultant="PJSIP/6006", service_advisor="PJSIP/7006"))  # fmt: skip
SHARED = Identity(CustomerSummary(id="7", name="李娜", tier="silver", score=41.0, ambiguous=True), (8,))


class FakeClock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class CountingPipelines:
    """Counts round trips: pipeline executes and script calls."""

    def __init__(self, client):
        self.client = client
        self.round_trips = 0

    def pipeline(self, **kw):
        pipe = self.client.pipeline(**kw)
        real = pipe.execute
        outer = self

        async def execute(*a, **k):
            outer.round_trips += 1
            return await real(*a, **k)

        pipe.execute = execute
        return pipe

    def register_script(self, source):
        script = self.client.register_script(source)
        outer = self

        async def call(*a, **k):
            outer.round_trips += 1
            return await script(*a, **k)

        return call

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture(params=["memory", "redis"])
def make_cache(request):
    """A factory (async) → (cache, clock, counting-client-or-None) for each implementation."""
    clients = []

    async def make(**kw):
        clock = FakeClock()
        if request.param == "memory":
            return MemorySummaryCache(1000, clock=clock, **kw), clock, None
        url = request.getfixturevalue("redis_url")
        client = aioredis.Redis.from_url(url)
        clients.append(client)
        counting = CountingPipelines(client)
        return RedisSummaryCache(counting, **kw), clock, counting

    yield make


def run(coro):
    return asyncio.run(coro)


def test_encoding_round_trip_keeps_chinese_readable():
    raw = encode_identity(ZHANG)
    assert "张伟" in raw and " " not in raw.replace("张伟", "")
    assert decode_identity(raw) == ZHANG
    assert decode_identity(encode_identity(SHARED)) == SHARED
    assert decode_identity(encode_identity(Identity(None))) == Identity(None)
    assert decode_identity(b"{not json") is None
    assert decode_identity('{"c":[1]}') is None
    created = Identity(ZHANG.customer, (), True)
    assert decode_identity(encode_identity(created)).created_prospect is False


def test_with_calls_counts_earlier_calls_only():
    assert with_calls(ZHANG, 3).customer.calls_last_24h == 2
    assert with_calls(ZHANG, 1).customer.calls_last_24h == 0
    assert with_calls(Identity(None), 5) == Identity(None)
    # every other field kept, as dataclasses.replace keeps them (SHARED: ambiguous, after calls_last_24h)
    for identity in (ZHANG, SHARED, Identity(SHARED.customer, (8,), True)):
        changed = with_calls(identity, 4)
        assert changed == Identity(replace(identity.customer, calls_last_24h=3), identity.other_customer_ids,
                                   identity.created_prospect)
    assert with_calls(with_calls(ZHANG, 4), 4) == with_calls(ZHANG, 4)
    assert decode_identity('{"c":null,"o":null}') is None  # malformed: unreadable, as before
    assert decode_identity('{"c":null,"o":["x"]}') is None
    assert decode_identity('{"c":[1,2,3,4,5,6,7,8,9]}') is None  # a field short
    assert decode_identity('{"c":[1,2,3,4,5,6,7,8,9,10,11]}') is None  # one too many
    assert decode_identity('{"c":"abcdefghij"}') == Identity(CustomerSummary(*"abcdefghi", ambiguous="j"))


def test_hit_miss_and_one_round_trip(make_cache):
    async def main():
        cache, clock, counting = await make_cache()
        identity, calls = await cache.lookup("+8613800138000", T0)
        assert identity is None and calls == 1
        await cache.store("+8613800138000", ZHANG)
        if counting is not None:
            counting.round_trips = 0
        identity, calls = await cache.lookup("+8613800138000", T0 + 1)
        assert identity == ZHANG and calls == 2
        if counting is not None:
            assert counting.round_trips == 1  # GET + ZADD + trim + count + EXPIRE in one script call
        unknown = Identity(None)
        await cache.store("+862158881234", unknown)
        assert (await cache.lookup("+862158881234", T0 + 2)) == (unknown, 1)
        assert (await cache.lookup("+8613912345678", T0 + 2)) == (None, 1)

    run(main())


def test_24_hour_counter_slides(make_cache):
    async def main():
        cache, _, _ = await make_cache()
        n = "+8613700000001"
        for k in range(3):
            _, calls = await cache.lookup(n, T0 + k)
            assert calls == k + 1
        _, calls = await cache.lookup(n, T0 + 2)  # same second twice still counts twice
        assert calls == 4
        _, calls = await cache.lookup(n, T0 + DAY_SECONDS + 1.5)  # the first two fell out of the window
        assert calls == 3
        _, calls = await cache.lookup("+8613600000002", T0 + DAY_SECONDS)
        assert calls == 1

    run(main())


def test_invalidate_customer_drops_all_numbers_and_fences_late_stores(make_cache):
    async def main():
        cache, clock, _ = await make_cache(fence_seconds=0.3)
        numbers = ["+8613800138000", "+862158990608"]
        for n in numbers:
            await cache.store(n, ZHANG)
        await cache.store("+8613912345678", Identity(CustomerSummary(id="2", name="刘洋")))
        await cache.invalidate_customer(1)
        for n in numbers:
            assert (await cache.lookup(n, T0))[0] is None
        assert (await cache.lookup("+8613912345678", T0))[0] is not None  # someone else's: kept
        # A lookup that read SQL before the change must not re-cache the old row right after it.
        await cache.store(numbers[0], ZHANG)
        assert (await cache.lookup(numbers[0], T0))[0] is None
        clock.t += 1
        await asyncio.sleep(0.35)  # the Redis fence expires by Redis' own clock
        await cache.store(numbers[0], ZHANG)
        assert (await cache.lookup(numbers[0], T0))[0] == ZHANG

    run(main())


def test_invalidate_all_drops_every_cached_customer_and_fences_them(make_cache):
    async def main():
        cache, _, _ = await make_cache(fence_seconds=30)
        await cache.store("+8613800138000", ZHANG)
        await cache.store("+862158990608", ZHANG)
        await cache.store("+8613811110000", SHARED)  # customer 7, also naming customer 8
        unknown = Identity(None)
        await cache.store("+8613500000003", unknown)
        many = [f"+86139{i:08d}" for i in range(600)]  # more than one batch of customers
        for i, n in enumerate(many):
            await cache.store(n, Identity(CustomerSummary(id=str(1000 + i), name="x")))
        assert await cache.invalidate_all() == 3 + len(many)  # customers 1, 7, 8 and the many
        for n in ["+8613800138000", "+862158990608", "+8613811110000", many[0], many[-1]]:
            assert (await cache.lookup(n, T0))[0] is None
        assert (await cache.lookup("+8613500000003", T0))[0] == unknown  # no customer: nothing to re-tier
        # A lookup that read SQL before the bulk change does not re-cache the old tier afterwards.
        await cache.store("+8613800138000", ZHANG)
        assert (await cache.lookup("+8613800138000", T0))[0] is None
        assert await cache.invalidate_all() == 0

    run(main())


def test_everything_sweeps_twice_around_the_settle_time(make_cache):
    async def main():
        cache, clock, _ = await make_cache(fence_seconds=0.001)
        waits: list[float] = []

        async def settle(seconds: float) -> None:
            waits.append(seconds)
            # A lookup that read SQL before the change stores its (old) answer between the sweeps, after the
            # first sweep's fence has gone (Redis: by its own clock).
            clock.t += 1
            await asyncio.sleep(0.01)
            await cache.store("+8613800138000", ZHANG)

        await cache.store("+8613800138000", ZHANG)
        assert await Invalidator(cache, settle=7.5, sleep=settle).everything() == 2
        assert waits == [7.5]
        assert (await cache.lookup("+8613800138000", T0))[0] is None

    run(main())


def test_deleted_customer_is_never_served(make_cache):
    async def main():
        cache, _, _ = await make_cache()
        await cache.store("+8613800138000", ZHANG)
        await cache.store("+8613811110000", SHARED)  # a number shared with customer 8
        # customer 8 is deleted: the shared number lists it as "other", so that entry goes too
        await Invalidator(cache).apply(Invalidation(customer_ids=frozenset({8})))
        assert (await cache.lookup("+8613811110000", T0))[0] is None
        assert (await cache.lookup("+8613800138000", T0))[0] == ZHANG
        await Invalidator(cache).apply(Invalidation(customer_ids=frozenset({1})))
        assert (await cache.lookup("+8613800138000", T0))[0] is None

    run(main())


def test_number_moved_to_another_customer(make_cache):
    async def main():
        cache, clock, _ = await make_cache(fence_seconds=0.2)
        n = "+8613911112222"
        await cache.store(n, ZHANG)
        # the number moves from customer 1 to customer 2: the write path reports the number
        await cache.invalidate_numbers([n])
        assert (await cache.lookup(n, T0))[0] is None
        clock.t += 1
        await asyncio.sleep(0.25)
        liu = Identity(CustomerSummary(id="2", name="刘洋"))
        await cache.store(n, liu)
        assert (await cache.lookup(n, T0))[0] == liu
        # customer 1 changes later: the moved number is no longer theirs. Memory drops only customer 1's
        # entries; Redis's reverse index may still list the number (over-invalidation: one extra SQL read,
        # never a wrong answer).
        await cache.invalidate_customer(1)
        assert (await cache.lookup(n, T0))[0] in ((liu, None) if isinstance(cache, RedisSummaryCache) else (liu,))
        await cache.invalidate_customer(2)
        assert (await cache.lookup(n, T0))[0] is None
        await cache.invalidate_numbers([])  # nothing to do

    run(main())


def test_ttl_expiry_memory():
    async def main():
        clock = FakeClock()
        cache = MemorySummaryCache(10, ttl=600, negative_ttl=60, clock=clock)
        await cache.store("+8613800138000", ZHANG)
        await cache.store("+862158881234", Identity(None))
        clock.t += 61
        assert (await cache.lookup("+862158881234", clock.t))[0] is None
        assert (await cache.lookup("+8613800138000", clock.t))[0] == ZHANG
        clock.t += 600
        assert (await cache.lookup("+8613800138000", clock.t))[0] is None

    run(main())


def test_ttl_is_set_in_redis(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        cache = RedisSummaryCache(client, ttl=600, negative_ttl=60)
        await cache.store("+8613800138000", ZHANG)
        await cache.store("+862158881234", Identity(None))
        assert 590 < await client.ttl("ccserver:cust:num:+8613800138000") <= 600
        assert 50 < await client.ttl("ccserver:cust:num:+862158881234") <= 60
        assert await client.smembers("ccserver:cust:cust:1") == {b"+8613800138000"}
        await cache.lookup("+8613800138000", T0)
        assert await client.ttl("ccserver:cust:calls:+8613800138000") > DAY_SECONDS - 10
        await client.aclose()

    run(main())


def test_memory_cache_is_bounded():
    async def main():
        cache = MemorySummaryCache(3, clock=FakeClock())
        for k in range(5):
            await cache.store(f"+86138000000{k:02d}", Identity(CustomerSummary(id=str(k))))
            await cache.lookup(f"+86138000000{k:02d}", T0)
        assert len(cache) == 3
        assert (await cache.lookup("+8613800000000", T0))[0] is None
        assert (await cache.lookup("+8613800000004", T0))[0] is not None
        await cache.invalidate_customer(4)
        assert (await cache.lookup("+8613800000004", T0))[0] is None

    run(main())


def test_bridges_for_twisted(redis_url):
    from twisted.internet.defer import Deferred

    async def main():
        memory = MemorySummaryCache(10)
        coro = memory.lookup("+8613800138000", T0)
        assert bridge(memory, coro) is coro  # awaited directly: never suspends
        await coro
        client = aioredis.Redis.from_url(redis_url)
        shared = RedisSummaryCache(client)
        d = bridge(shared, shared.lookup("+8613800138000", T0))
        assert isinstance(d, Deferred)
        identity, calls = await d.asFuture(asyncio.get_running_loop())
        assert identity is None and calls == 1
        d2 = as_deferred(shared.store("+8613800138000", ZHANG))
        await d2.asFuture(asyncio.get_running_loop())
        assert (await shared.lookup("+8613800138000", T0))[0] == ZHANG
        await client.aclose()

    run(main())


def test_invalidator_submit_from_a_thread():
    async def main():
        loop = asyncio.get_running_loop()
        cache = MemorySummaryCache(10)
        await cache.store("+8613800138000", ZHANG)
        inv = Invalidator(cache, loop)
        await loop.run_in_executor(None, inv.submit, Invalidation(customer_ids=frozenset({1})))
        for _ in range(5):
            await asyncio.sleep(0)
        assert (await cache.lookup("+8613800138000", T0))[0] is None
        inv.submit(Invalidation())  # empty: nothing scheduled

    run(main())
