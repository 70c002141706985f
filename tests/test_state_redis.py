"""RedisMirror mirrors the tracker's model from the call-events hub (real Redis, db 15); RedisStateReader reads it
back."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from ccserver.clock import ManualClock
from ccserver.events import EventHub
from ccserver.state import AgentStatus, StateTracker
from ccserver.state.model import to_dict
from ccserver.state.redis_store import RedisMirror, RedisStateReader
from tests.test_state_support import timed_messages


class CountingPipelines:
    """Wraps a redis.asyncio client and counts pipeline round trips."""

    def __init__(self, client):
        self.client = client
        self.executes = 0

    def pipeline(self, **kw):
        pipe = self.client.pipeline(**kw)
        real = pipe.execute
        outer = self

        async def execute(*a, **k):
            outer.executes += 1
            return await real(*a, **k)

        pipe.execute = execute
        return pipe

    def __getattr__(self, name):
        return getattr(self.client, name)


def mirrored(client, **kw):
    """A tracker publishing on a hub, and a RedisMirror subscribed to it (delivered with hub.drain())."""
    hub = EventHub(clock=kw.get("clock"))
    tracker = StateTracker(publish=hub.publish)
    store = RedisMirror(client, tracker, **kw)
    hub.subscribe("redis-mirror", store.on_event)
    return hub, tracker, store


async def _replay_into(hub, store, tracker, messages, *, every=50):
    for i, (msg, t) in enumerate(messages):
        tracker.handle(msg, t)
        if i % every == 0:
            hub.drain()
            await store.flush()
    hub.drain()
    await store.flush()


def test_mirror_after_busy_hour_matches_the_tracker(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        counting = CountingPipelines(client)
        hub, tracker, store = mirrored(counting)
        msgs = timed_messages("ami-inbound-load-40-calls")
        joins = 0
        cut = None
        for i, (m, _) in enumerate(msgs):
            joins += m.get("Event") == "QueueCallerJoin"
            if joins == 30:
                cut = i
                break
        await _replay_into(hub, store, tracker, msgs[: cut + 1])
        assert counting.executes <= cut // 50 + 2  # coalesced: one round trip per flush, not per event
        reader = RedisStateReader(client)
        now = tracker.now
        # Mid-hour: callers waiting, agents talking.
        assert await reader.queue_snapshot("bulk", now=now) == tracker.queue_snapshot("bulk", now=now)
        assert [c.uniqueid for c in await reader.calls_in_queue("bulk")] == [
            c.uniqueid for c in tracker.calls_in_queue("bulk")
        ]
        waiting = tracker.queue("bulk").callers
        assert await reader.callers_ahead("bulk", 1, waiting[3].joined_at) == 3
        assert await reader.callers_ahead("bulk", 9, 0.0) == 0
        assert sorted(await reader.live_call_ids()) == sorted(uid for _, uid in tracker.calls)
        for (_, uid), call in tracker.calls.items():
            assert to_dict(await reader.call(uid)) == to_dict(call)
        for (_, interface), agent in tracker.agents.items():
            assert to_dict(await reader.agent(interface)) == to_dict(agent)
        assert any(a.state == AgentStatus.TALKING for a in tracker.agents.values())
        # The rest of the hour: everything settles, ended calls leave the live index.
        await _replay_into(hub, store, tracker, msgs[cut + 1 :])
        assert await reader.queue_snapshot("bulk", now=tracker.now) == tracker.queue_snapshot("bulk")
        assert await reader.live_call_ids() == []
        ended = await reader.call("1795418249.0")
        assert ended.outcome == "answered" and ended.ended_at is not None
        assert 0 < await client.ttl("cc:call:default:1795418249.0") <= store.ended_ttl
        assert await reader.queue_names() == ["bulk"]
        assert len(await reader.agent_interfaces()) == 20
        await client.aclose()

    asyncio.run(main())


def test_two_servers_with_the_same_uniqueids_stay_apart(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        hub, tracker, store = mirrored(client)
        a = timed_messages("ami-inbound-vip-answered", server="pbx-a")
        b = timed_messages("ami-inbound-vip-answered", server="pbx-b")
        connect_b = next(i for i, (m, _) in enumerate(b) if m.get("Event") == "AgentConnect")
        for msg, t in sorted(a + b[: connect_b + 1], key=lambda x: x[1]):
            tracker.handle(msg, t)
        hub.drain()
        await store.flush()
        reader = RedisStateReader(client)
        assert await reader.servers() == ["pbx-a", "pbx-b"]
        call_a = await reader.call("1795416921.0", server="pbx-a")
        call_b = await reader.call("1795416921.0", server="pbx-b")
        assert call_a.ended_at is not None and call_b.ended_at is None
        assert (await reader.agent("Local/8001@agent-phones/n", server="pbx-b")).state == AgentStatus.TALKING
        assert (await reader.agent("Local/8001@agent-phones/n", server="pbx-a")).state == AgentStatus.IDLE
        assert (await reader.queue("vip", server="pbx-a")).completed == 1
        assert (await reader.queue("vip", server="pbx-b")).completed == 0
        assert await reader.live_call_ids("pbx-a") == []
        assert await reader.live_call_ids("pbx-b") == ["1795416921.0"]
        await client.aclose()

    asyncio.run(main())


def _flushes_seen(store):
    """Wrap the mirror's flush: each call's clock time in a list, and an event set when one has written."""
    seen: list[float] = []
    written = asyncio.Event()
    real = store.flush

    async def flush():
        seen.append(store.clock.monotonic())
        await real()
        written.set()

    store.flush = flush
    return seen, written


def test_background_flusher_writes_on_its_interval_without_explicit_flush(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        clock = ManualClock()
        hub, tracker, store = mirrored(client, flush_interval=0.05, clock=clock)
        seen, written = _flushes_seen(store)
        hub.start()
        store.start()
        for msg, t in timed_messages("ami-inbound-abandoned"):
            tracker.handle(msg, t)  # synchronous: no awaiting on the event path
        await clock.advance(0.049)  # the hub delivers to the mirror on the loop; the interval is not up yet
        assert store.dirty > 0 and seen == []
        await clock.advance(0.001)  # by the flusher's own timer: nobody calls flush()
        assert seen == [pytest.approx(0.05)]
        await asyncio.wait_for(written.wait(), 60)  # the write is real Redis I/O; the interval was not timed
        assert store.dirty == 0
        reader = RedisStateReader(client)
        assert (await reader.queue("complaints")).abandoned == 1
        assert (await reader.call("1795416944.10")).outcome == "abandoned"
        await store.close()
        await hub.stop()
        await client.aclose()

    asyncio.run(main())


def test_flusher_backs_off_while_redis_fails_and_starts_over_once_it_answers():
    class Down(Exception):
        pass

    async def main():
        clock = ManualClock()
        hub, tracker, store = mirrored(None, flush_interval=0.05, max_dirty=1, clock=clock)
        attempts: list[float] = []
        answers = iter([Down(), Down(), None, Down(), None])

        async def flush():  # Redis refuses twice, answers, refuses once more, answers
            attempts.append(clock.monotonic())
            outcome = next(answers)
            if outcome is not None:
                raise outcome

        store.flush = flush
        store.start()
        at = pytest.approx  # the clock's epoch base leaves sub-microsecond rounding in the sums
        await clock.advance(0.0501)  # the first tick fails: the next try 2 × 0.05 later
        assert attempts == [at(0.05)] and (store.errors, store.failing) == (1, 1)
        store.rewrite("default")  # enough gets dirty to wake a flush (max_dirty=1) — not during a backoff
        await clock.advance(0.0998)
        assert len(attempts) == 1
        await clock.advance(0.0002)  # fails again: now 4 × 0.05
        assert attempts[1] == at(0.15) and store.failing == 2
        await clock.advance(0.1998)
        assert len(attempts) == 2
        await clock.advance(0.0002)  # answers: the count in a row starts over
        assert attempts[2] == at(0.35) and (store.errors, store.failing) == (2, 0)
        await clock.advance(0.05)  # the next tick fails: 2 × 0.05 again, not 8 ×
        await clock.advance(0.1)
        assert attempts[3:] == [at(0.4), at(0.5)]
        assert (store.errors, store.failing) == (3, 0)
        store.failing = 40
        assert store.retry_delay() == pytest.approx(0.05 * 64)  # at most 64 × the interval …
        store.flush_interval = 1.0
        assert store.retry_delay() == 5.0  # … and at most 5 s
        store.failing = 0
        store.flush = lambda: asyncio.sleep(0)  # close() flushes once more
        await store.close()

    asyncio.run(main())


def test_closing_ends_a_backoff_at_once():
    async def main():
        clock = ManualClock()
        hub, tracker, store = mirrored(None, flush_interval=1.0, clock=clock)
        tries: list[float] = []

        async def refused():
            tries.append(clock.monotonic())
            raise ConnectionError("Redis refuses")

        store.flush = refused
        store.start()
        await clock.advance(1.0)  # fails: backs off 2 s
        assert tries == [1.0] and store.failing == 1
        store.flush = lambda: asyncio.sleep(0)
        await asyncio.wait_for(store.close(), 5)  # returns without the clock moving
        assert tries == [1.0] and store._task is None

    asyncio.run(main())


def test_redis_down_keeps_dirty_state_for_the_next_flush(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        broken = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        hub, tracker, store = mirrored(broken)
        for msg, t in timed_messages("ami-inbound-abandoned"):
            tracker.handle(msg, t)
        hub.drain()
        dirty = store.dirty
        with pytest.raises(aioredis.ConnectionError):  # nothing listens on port 1
            await store.flush()
        assert store.dirty == dirty  # nothing lost
        store.redis = client  # Redis is back
        await store.flush()
        assert (await RedisStateReader(client).queue("complaints")).abandoned == 1
        await broken.aclose()
        await client.aclose()

    asyncio.run(main())


def test_a_call_is_one_json_field_and_an_older_mirrors_field_per_attribute_hash_still_reads(redis_url):
    import json

    from ccserver.state.model import Call

    async def main():
        client = aioredis.Redis.from_url(redis_url)
        hub, tracker, store = mirrored(client)
        hub.start()
        for msg, t in timed_messages("ami-inbound-abandoned"):
            tracker.handle(msg, t)
        await asyncio.sleep(0)
        hub.drain()
        await store.flush()
        written = await client.hgetall("cc:call:default:1795416944.10")
        assert set(written) == {b"state"}
        assert json.loads(written[b"state"])["outcome"] == "abandoned"
        # what a mirror of the previous version wrote: one JSON value per attribute
        await client.hset("cc:call:default:old.1", mapping={"server": '"default"', "uniqueid": '"old.1"',
                                                            "caller_number": '"+8613800138000"', "queue": '"vip"',
                                                            "someday": '"a field this version does not know"'})
        reader = RedisStateReader(client)
        assert await reader.call("old.1") == Call("default", "old.1", caller_number="+8613800138000", queue="vip")
        await store.close()
        await hub.stop()
        await client.aclose()

    asyncio.run(main())


def test_a_queue_larger_than_one_command_and_a_failing_write(redis_url):
    """A flush's writes run in one script: a queue of 2,500 waiting callers and 1,200 members (split over several
    commands) reads back whole; a write Redis refuses fails the flush — the others applied, the dirty state kept."""
    from ccserver.state.model import Member, QueueState, WaitingCaller

    async def main():
        client = aioredis.Redis.from_url(redis_url)
        hub, tracker, store = mirrored(client)
        q = QueueState("default", "big")
        q.callers = [WaitingCaller(f"c.{i}", 0, 1000.0 + i, f"+86{i}") for i in range(2500)]
        q.members = {f"PJSIP/{i}": Member(f"PJSIP/{i}", name=f"agent é {i}") for i in range(1200)}
        tracker.queues[("default", "big")] = q
        store._queues.add(("default", "big"))
        await store.flush()
        back = await RedisStateReader(client).queue("big")
        assert [c.uniqueid for c in back.callers] == [c.uniqueid for c in q.callers]
        assert back.callers == q.callers and back.members == q.members
        await client.set("cc:calls:default", "not a set")  # the call's SADD to its index fails: WRONGTYPE
        for msg, t in timed_messages("ami-inbound-abandoned"):
            tracker.handle(msg, t)
        hub.drain()
        dirty = store.dirty
        with pytest.raises(aioredis.ResponseError, match="WRONGTYPE"):
            await store.flush()
        assert store.dirty == dirty
        assert await client.exists("cc:queue:default:complaints")  # the other writes went through
        await client.delete("cc:calls:default")
        await store.flush()
        assert store.dirty == 0
        await client.aclose()

    asyncio.run(main())
