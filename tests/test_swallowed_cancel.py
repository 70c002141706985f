"""Stopping does not rely on cancelling: redis-py 8.1 can swallow a cancel that reaches a task while a command is in
flight (measured on the test Redis: 132 of 300 cancelled MULTI pipelines and 66 of 200 SETs still returned normally,
and 26 of 200 cancelled pub/sub readers went on reading). Here a client that always does so: the mirror's flusher,
the lease keeper and the relay reader still end when told to stop."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ccserver.ami.lease import LeaseKeeper
from ccserver.ami.relay import EventRelay
from ccserver.clock import ManualClock
from ccserver.state import StateTracker
from ccserver.state.redis_store import RedisMirror
from tests.relay_support import run


async def swallowing(clock: ManualClock, seconds: float = 0.01) -> None:
    """An await that completes normally however it is cancelled (what the measured redis-py calls do); its time
    is the test's clock."""
    try:
        await clock.sleep(seconds)
    except asyncio.CancelledError:
        await clock.sleep(seconds)


async def until_done(clock: ManualClock, task: asyncio.Future[Any], step: float = 0.01, limit: float = 60.0) -> None:
    """Move the clock until ``task`` ends (failing past ``limit`` seconds of the clock's time)."""
    moved = 0.0
    while not task.done():
        assert moved < limit, "did not end"
        await clock.advance(step)
        moved += step
    task.result()


class SwallowingPipeline:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None  # queued commands

    async def execute(self) -> list[Any]:
        await swallowing(self.clock)
        return []


class SwallowingRedis:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.pipelines = 0

    def pipeline(self, **kw: Any) -> SwallowingPipeline:
        self.pipelines += 1
        return SwallowingPipeline(self.clock)


def test_the_mirror_closes_although_its_flush_swallowed_the_cancel():
    async def main():
        clock = ManualClock()
        redis = SwallowingRedis(clock)
        tracker = StateTracker()
        relayed = itertools.count(1)  # the relay moves on between any two looks: every tick flushes
        mirror = RedisMirror(redis, tracker, flush_interval=0.001, positions=lambda: {"default": (1, next(relayed))},
                             clock=clock)
        mirror.start()
        while redis.pipelines < 3:  # the position moves every flush: it flushes again and again
            await clock.advance(0.001)
        await clock.advance(0.005)  # into the middle of a flush's write
        assert redis.pipelines == 3
        closing = asyncio.ensure_future(mirror.close())  # the cancel lands in that write and is swallowed …
        await until_done(clock, closing)  # … yet the loop ends (and close() flushes once more)
        assert redis.pipelines == 4 and mirror._task is None

    run(main, seconds=10)


class SwallowingLease:
    key = "ccserver:ami-lease:test"
    node_id = "n"

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.asked = 0
        self.released = 0
        self.ttl_ms = 3000

    async def acquire(self) -> bool:
        self.asked += 1
        await swallowing(self.clock)
        return True

    async def release(self) -> bool:
        self.released += 1
        return True

    @property
    def held(self) -> bool:
        return True


def test_a_stopped_keeper_does_not_take_the_lease_again():
    async def main():
        clock = ManualClock()
        lease = SwallowingLease(clock)
        events: list[str] = []
        keeper = LeaseKeeper(lease, on_acquired=lambda: events.append("up"),  # type: ignore[arg-type]
                             on_lost=lambda: events.append("down"), interval=0.001)
        task = asyncio.ensure_future(keeper.run(clock.sleep))
        while lease.asked < 3:
            await clock.advance(0.001)
        assert events == ["up"]
        asked = lease.asked
        await clock.advance(0.005)  # in the middle of an acquire()
        assert lease.asked == asked
        task.cancel()  # lands in acquire(): swallowed
        await keeper.stop()
        await until_done(clock, task)  # ends by itself
        assert events == ["up", "down"] and lease.released >= 1
        assert lease.asked == asked  # and asks for the lease no more

    run(main, seconds=10)


class SwallowingPubSub:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.closed = False

    async def subscribe(self, channel: str) -> None:
        pass

    async def get_message(self, timeout: float = 0.0) -> dict[str, Any] | None:
        await swallowing(self.clock, min(timeout, 0.01))
        return None

    async def aclose(self) -> None:
        self.closed = True


def test_the_relay_reader_ends_when_stopping_although_its_read_swallowed_the_cancel():
    async def main():
        clock = ManualClock()
        pubsub = SwallowingPubSub(clock)
        redis = type("R", (), {"pubsub": lambda self, **kw: pubsub})()
        relay = EventRelay(redis, channel_prefix="test:")
        stopping = False
        task = asyncio.ensure_future(relay.follow("ast1", lambda m: None, stopping=lambda: stopping, poll=0.01))
        await clock.advance(0.025)  # two reads done, the third under way
        task.cancel()  # swallowed by the read
        await clock.advance(0.05)
        assert not task.done() and not pubsub.closed  # what a cancel alone leaves behind: it goes on reading
        stopping = True
        await until_done(clock, task)
        assert pubsub.closed

    run(main, seconds=10)
