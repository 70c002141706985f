"""The AMI consumer lease, against the real test Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ccserver.ami.lease import LeaseKeeper, RedisLease


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro):
    return asyncio.run(coro)


async def _until_gone(r, key: str) -> None:
    """Redis expires keys by its own clock: wait (bounded) for it to drop one we made expire."""
    for _ in range(1000):
        if not await r.exists(key):
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{key} did not expire")


def test_one_holder_renewal_and_takeover_on_expiry(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        key = "ccserver:ami-lease:ast1"
        try:
            a = RedisLease(r, key, "node-a", ttl_ms=30_000)
            b = RedisLease(r, key, "node-b", ttl_ms=30_000)
            assert await a.acquire() and a.held
            assert not await b.acquire() and not b.held
            assert await a.holder() == "node-a"
            for _ in range(3):  # a renewal gives the lease its whole TTL again, however little was left
                await r.pexpire(key, 50)
                assert await a.renew() and await r.pttl(key) > 29_000
                assert not await b.acquire()
            await r.pexpire(key, 1)  # node-a dies (stops renewing): the key expires
            await _until_gone(r, key)
            assert await b.acquire() and await b.holder() == "node-b"
            assert not await a.renew() and not a.held  # a never extends a lease it lost
            assert not await a.release() and await b.holder() == "node-b"  # nor deletes b's
            assert await b.release() and await b.holder() is None
        finally:
            await r.aclose()

    run(main())


def test_keeper_transitions_and_redis_outage(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        clock = FakeClock()
        events = []
        lease = RedisLease(r, "ccserver:ami-lease:ast2", "node-a", ttl_ms=10_000, clock=clock)
        keeper = LeaseKeeper(lease, on_acquired=lambda: events.append("up"), on_lost=lambda: events.append("down"))
        try:
            assert await keeper.step() and events == ["up"]
            assert await keeper.step() and events == ["up"]
            # Redis unreachable: keep consuming only while the lease is surely still ours.
            lease.redis = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
            clock.now += 5
            assert await keeper.step() and events == ["up"]
            clock.now += 6
            assert not await keeper.step() and events == ["up", "down"]
            await lease.redis.aclose()
            lease.redis = r
            await r.set("ccserver:ami-lease:ast2", "node-b", px=10_000)  # someone else took over
            assert not await keeper.step() and events == ["up", "down"]
            await r.delete("ccserver:ami-lease:ast2")
            assert await keeper.step() and events == ["up", "down", "up"]
            await keeper.stop()
            assert events[-1] == "down" and await lease.holder() is None
        finally:
            await r.aclose()

    run(main())


def test_a_failed_takeover_gives_the_lease_back_and_is_retried(redis_url):
    """on_acquired raising (e.g. Redis failed between taking the lease and numbering the new term) must not leave
    the node holding a lease it does not act on: the lease is released, and the next step takes it again."""

    async def main():
        r = aioredis.Redis.from_url(redis_url)
        calls = []

        async def take_over():
            calls.append("up")
            if len(calls) == 1:
                raise ConnectionError("Redis went away")

        lease = RedisLease(r, "ccserver:ami-lease:ast3", "node-a", ttl_ms=10_000)
        keeper = LeaseKeeper(lease, on_acquired=take_over, on_lost=lambda: calls.append("down"))
        try:
            assert not await keeper.step() and not keeper.active
            assert await lease.holder() is None  # released: another node may take it meanwhile
            assert await keeper.step() and keeper.active and calls == ["up", "up"]
            assert await lease.holder() == "node-a"
        finally:
            await keeper.stop()
            await r.aclose()

    run(main())
