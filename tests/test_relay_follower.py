"""The follower's side of the relay: the ordering rules (pure), and the supervised reader against a Redis that goes
away (a loopback pipe in front of the real Redis, cut and made to refuse connections; backoff on a ManualClock)."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ccserver.ami.client import backoff_delay
from ccserver.ami.message import AMIMessage
from ccserver.ami.relay import EVENT, RESYNC, START, EventRelay, Relayed
from ccserver.clock import ManualClock
from ccserver.state import StateTracker
from ccserver.state.follower import APPLY, GAP, RESTARTS, STALE, RelayFollower, joins, verdict
from ccserver.state.redis_store import RedisStateReader
from tests.fake_redis import PipeProxy
from tests.relay_support import Node, run, until, view
from tests.test_state_support import timed_messages


def msg(term: int, seq: int, kind: str = EVENT, after: tuple[int, int] | None = None) -> Relayed:
    event = AMIMessage([("Event", "Hangup")], server="default") if kind == EVENT else None
    return Relayed("default", "n", term, seq, kind, event=event, after=after)


@pytest.mark.parametrize(("position", "message", "expected"), [
    ((3, 10), msg(3, 11), APPLY),
    ((3, 10), msg(3, 12), GAP),  # one skipped
    ((3, 10), msg(3, 10), STALE),  # a duplicate
    ((3, 10), msg(3, 4), STALE),
    ((3, 10), msg(4, 1, START, after=(3, 10)), APPLY),  # the next leader went on from here
    ((3, 10), msg(4, 1, START, after=(3, 9)), GAP),  # it had not seen (3, 10): its state is not ours
    ((3, 10), msg(4, 1, START, after=(3, 11)), GAP),  # it saw one more than we did
    ((3, 10), msg(4, 1, START, after=None), GAP),  # it did not know where it was
    ((3, 10), msg(4, 2), GAP),  # a new term whose start we did not see
    ((3, 10), msg(6, 1, START, after=(3, 10)), APPLY),  # terms may be skipped (a leader that never relayed)
    ((3, 10), msg(2, 50), STALE),  # a deposed leader's straggler
    (None, msg(3, 1, START), GAP),  # nothing known here: rebuild first
    (None, msg(3, 11), GAP),
])
def test_verdict(position, message, expected):
    assert verdict(position, message) == expected


def test_a_snapshot_joins_up_only_when_nothing_is_missing_before_the_held_messages():
    held = [msg(3, 11), msg(3, 12)]
    assert joins((3, 10), held) and joins((3, 11), held) and joins((3, 12), held) and joins((3, 20), held)
    assert not joins((3, 9), held)  # (3, 10) is in neither
    assert not joins(None, held) and not joins(None, [])
    assert joins((3, 10), []) and joins((2, 7), [msg(3, 1, START, after=(2, 7)), msg(3, 2)])
    assert not joins((2, 6), [msg(3, 1, START, after=(2, 7))])


def test_a_leading_node_ignores_relayed_messages_and_resumes_from_what_it_relayed():
    tracker = StateTracker()
    follower = RelayFollower(None, None, tracker)  # type: ignore[arg-type]  # no I/O in this test
    follower.resume("default", (3, 10))
    follower.deliver("default", msg(3, 11))
    assert follower.position("default") == (3, 11)
    assert follower.pause("default", 5) == (3, 11)
    follower.deliver("default", msg(3, 12))  # a deposed leader's, or (term 5) its own: the tracker is fed by AMI
    follower.deliver("default", msg(5, 1, START, after=(3, 11)))
    assert follower.position("default") == (3, 11)
    # The next leader started before this node noticed its lease was gone: its messages wait for the hand-over.
    follower.deliver("default", msg(6, 1, START, after=(5, 40)))
    follower.deliver("default", Relayed("default", "n", 6, 2, RESYNC, at=1.0))
    follower.resume("default", (5, 40))
    follower.deliver("default", msg(6, 3))
    assert follower.position("default") == (6, 3) and not follower.rebuilding("default")


class RecordingClock(ManualClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def leader(redis: aioredis.Redis) -> Node:
    node = Node(redis, "leader")
    node.telephony.start()
    await until(node.leads, what="the leader leads")
    return node


async def settle(node: Node) -> None:
    """Everything the leader numbered is published and its mirror holds its state (with the position)."""
    await node.telephony.outbox.flush()
    await until(lambda: not any(s.queue for s in node.telephony.hub.subscriptions), what="the hub delivered")
    await node.telephony.store.flush()


def test_the_reader_restarts_with_capped_backoff_and_rebuilds_what_it_missed(redis_url):
    async def main():
        proxy = PipeProxy(redis_url)
        await proxy.start()
        direct = aioredis.Redis.from_url(redis_url)
        a = await leader(direct)
        # No client-side retries: the first error ends the subscription, as Redis restarting does once the
        # client's own retries are spent.
        through = aioredis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), 0))
        clock = RecordingClock()
        tracker = StateTracker()
        # The mirror is read past the proxy: this test is about the subscription (see the next for the reads).
        follower = RelayFollower(EventRelay(through), RedisStateReader(direct), tracker, clock=clock,
                                 rng=random.Random(7))
        expected = random.Random(7)  # the same jitter, drawn in the same order
        messages = timed_messages("ami-inbound-load-40-calls")
        restarts = RESTARTS.value(server="default")
        task = asyncio.ensure_future(follower.run("default"))
        try:
            await settle(a)
            await until(lambda: follower.rebuilt == 1, what="first rebuild")
            a.ami(messages[:800])
            await until(lambda: a.relayed_to_follower(follower), what="following")

            proxy.refusing = True
            proxy.cut()  # Redis goes away ...
            await until(lambda: clock.sleeps, what="the reader stopped")
            a.ami(messages[800:1600])  # ... and the leader goes on: lost to the follower
            await settle(a)
            delays = [backoff_delay(n, initial=0.5, cap=10.0, rng=expected) for n in range(1, 8)]
            assert delays[0] < 0.7 and 8.0 <= delays[-1] <= 10.0  # 0.5 s doubling, ±20 % jitter, at most 10 s
            for n in range(1, 7):  # each retry refused: the delay doubles up to the cap
                assert clock.sleeps == delays[:n]
                await clock.advance(clock.sleeps[-1])
                await until(lambda n=n: len(clock.sleeps) == n + 1, what=f"retry {n} refused")
            assert clock.sleeps == delays
            assert RESTARTS.value(server="default") == restarts + 7

            proxy.refusing = False  # Redis is back
            await clock.advance(clock.sleeps[-1])
            await until(lambda: follower.rebuilt == 2, what="rebuilt after the restart")
            a.ami(messages[1600:])
            await until(lambda: a.relayed_to_follower(follower), what="following again")
            assert view(tracker) == view(a.tracker)

            proxy.cut()  # a second outage starts the backoff from the beginning again
            await until(lambda: len(clock.sleeps) == 8, what="the reader stopped again")
            assert clock.sleeps[-1] == backoff_delay(1, initial=0.5, cap=10.0, rng=expected)
        finally:
            follower.stop()  # ends the reader (a cancel alone may be swallowed by redis-py) ...
            task.cancel()  # ... and its backoff sleep on the manual clock
            await asyncio.gather(task, return_exceptions=True)
            await a.stop()
            await through.aclose()
            await direct.aclose()
            await proxy.stop()

    run(main)


def test_a_connection_gone_silent_is_found_out_by_a_ping_and_replaced(redis_url):
    """Nothing closes the follower's connection, but nothing passes any more (the Redis host is gone, or a
    partition): after ``reader_idle`` quiet seconds the reader PINGs, gets nothing back, ends, is restarted on a new
    connection and rebuilds what it missed."""

    async def main():
        proxy = PipeProxy(redis_url)
        await proxy.start()
        direct = aioredis.Redis.from_url(redis_url)
        a = await leader(direct)
        through = aioredis.Redis.from_url(proxy.url)
        clock = RecordingClock()
        tracker = StateTracker()
        follower = RelayFollower(EventRelay(through), RedisStateReader(direct), tracker, clock=clock,
                                 reader_idle=0.3)
        messages = timed_messages("ami-inbound-load-40-calls")
        restarts = RESTARTS.value(server="default")
        task = asyncio.ensure_future(follower.run("default"))
        try:
            await settle(a)
            await until(lambda: follower.rebuilt == 1)
            a.ami(messages[:1000])
            await until(lambda: a.relayed_to_follower(follower))
            assert RESTARTS.value(server="default") == restarts
            proxy.blackhole()
            a.ami(messages[1000:2000])
            await settle(a)  # published into the void
            await until(lambda: clock.sleeps, what="the reader gave up on its silent connection")
            assert RESTARTS.value(server="default") == restarts + 1
            await clock.advance(clock.sleeps[-1])  # the backoff, then a new connection
            await until(lambda: follower.rebuilt == 2, what="rebuilt on a new connection")
            a.ami(messages[2000:])
            await until(lambda: a.relayed_to_follower(follower))
            assert view(tracker) == view(a.tracker)
        finally:
            follower.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await a.stop()
            await through.aclose()
            await direct.aclose()
            await proxy.stop()

    run(main)


class ScriptedRelay:
    """A relay whose subscription the test drives: ``confirm()`` a (re)subscription, ``send(msg)`` a message."""

    def __init__(self) -> None:
        self.subscribed = None
        self.deliver = None
        self.ended = asyncio.Event()

    async def follow(self, server, deliver, *, subscribed=None, **options):
        self.deliver, self.subscribed = deliver, subscribed
        await self.ended.wait()


class SnapshotsOf:
    """Reads a leader's tracker as its mirror would hold it at ``position``; fails ``failures`` times first."""

    def __init__(self, tracker, failures=0):
        self.tracker = tracker
        self.position = None
        self.failures = failures
        self.reads = 0

    async def snapshot(self, server):
        from ccserver.state.redis_store import MirrorSnapshot

        self.reads += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is loading")
        t = self.tracker
        return MirrorSnapshot(server, tuple(t.iter_calls(server)),
                              tuple(q for q in t.queues.values() if q.server == server),
                              tuple(a for a in t.agents.values() if a.server == server), self.position, False, 1)


def test_a_resubscription_without_an_error_is_rebuilt_too_and_a_failing_mirror_read_is_retried():
    """A client that re-subscribes by itself after its connection dropped (the subscription never ends, but what
    was published meanwhile is gone) confirms the subscription again: that starts a rebuild. The mirror read fails
    twice (Redis still loading) and is retried, paced on the clock."""

    async def main():
        messages = [(m, t) for m, t in timed_messages("ami-inbound-abandoned") if m.event != "Success"]
        leader = StateTracker()
        mirror = SnapshotsOf(leader)
        relay = ScriptedRelay()
        clock = RecordingClock()
        follower = RelayFollower(relay, mirror, StateTracker(), clock=clock)  # type: ignore[arg-type]
        task = asyncio.ensure_future(follower.run("default"))
        sent = 0

        def send(upto, *, lost=False):
            nonlocal sent
            for n in range(sent, upto):
                m, t = messages[n]
                m.arrival = t
                leader.handle(m, t)
                mirror.position = (1, n + 2)  # seq 1 was the term's start
                if not lost:
                    relay.deliver(Relayed("default", "a", 1, n + 2, EVENT, event=m))
            sent = upto

        try:
            await until(lambda: relay.subscribed is not None)
            mirror.position = (1, 1)
            relay.subscribed()
            await until(lambda: follower.rebuilt == 1)
            send(20)
            assert follower.position("default") == (1, 21)
            send(40, lost=True)  # the connection dropped: these never arrive ...
            mirror.failures = 2
            relay.subscribed()  # ... and the client re-subscribed by itself
            await until(lambda: len(clock.sleeps) == 1, what="first failed read")
            await clock.advance(clock.sleeps[-1])
            await until(lambda: len(clock.sleeps) == 2, what="second failed read")
            await clock.advance(clock.sleeps[-1])
            await until(lambda: follower.rebuilt == 2, what="rebuilt")
            send(len(messages))
            assert follower.position("default") == (1, len(messages) + 1)
            assert view(follower.tracker) == view(leader) and mirror.reads == 4
            assert clock.sleeps[1] > clock.sleeps[0]  # backing off
        finally:
            follower.stop()
            relay.ended.set()
            task.cancel()  # (if it sleeps on the clock)
            await asyncio.gather(task, return_exceptions=True)

    run(main)
