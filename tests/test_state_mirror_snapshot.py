"""The mirror as a follower rebuilds from it: RedisMirror records which relayed message its keys hold exactly (only
for the servers this node owns), and RedisStateReader.snapshot reads one server consistently (real Redis)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ccserver.events import EventHub
from ccserver.state import StateTracker
from ccserver.state.redis_store import RedisMirror, RedisStateReader
from tests.test_state_snapshot import view
from tests.test_state_support import timed_messages


class Leader:
    """What a leading node has: a tracker on a hub, a mirror subscribed, and a relay position per message fed."""

    def __init__(self, client, owned=("default",)):
        self.hub = EventHub()
        self.tracker = StateTracker(publish=self.hub.publish)
        self.owned = set(owned)
        self.relayed: dict[str, tuple[int, int]] = {}
        self.mirror = RedisMirror(client, self.tracker, owns=self.owned.__contains__,
                                  positions=lambda: {s: p for s, p in self.relayed.items() if s in self.owned})
        self.hub.subscribe("redis-mirror", self.mirror.on_event)

    def feed(self, messages, term=1, server="default"):
        for msg, t in messages:
            self.tracker.handle(msg, t)
            seq = self.relayed.get(server, (term, 0))[1] + 1
            self.relayed[server] = (term, seq)


def loaded_from(snapshot) -> StateTracker:
    tracker = StateTracker()
    tracker.load_snapshot(snapshot.server, snapshot.calls, snapshot.queues, snapshot.agents,
                          queues_complete=snapshot.queues_complete)
    return tracker


def test_snapshot_mid_busy_hour_holds_the_leaders_state_and_position(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        leader = Leader(client)
        reader = RedisStateReader(client)
        messages = timed_messages("ami-inbound-load-40-calls")
        fed = 0
        for cut in (0, 700, 1500, 2300, len(messages)):
            leader.feed(messages[fed:cut])
            fed = cut
            leader.hub.drain()
            await leader.mirror.flush()
            snap = await reader.snapshot("default")
            assert snap.position == ((1, cut) if cut else None)
            assert view(loaded_from(snap)) == view(leader.tracker)
        await client.aclose()

    asyncio.run(main())


def test_position_is_withheld_while_events_have_not_reached_the_mirror(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        leader = Leader(client)
        reader = RedisStateReader(client)
        messages = timed_messages("ami-inbound-abandoned")
        leader.feed(messages[:30])
        leader.hub.drain()
        await leader.mirror.flush()
        assert (await reader.snapshot()).position == (1, 30)
        leader.feed(messages[30:])  # the tracker moved; the mirror has not been handed those events yet
        await leader.mirror.flush()  # (nothing dirty, but the position moved: written, as unknown)
        snap = await reader.snapshot()
        assert snap.position is None
        leader.hub.drain()
        await leader.mirror.flush()
        snap = await reader.snapshot()
        assert snap.position == (1, len(messages)) and view(loaded_from(snap)) == view(leader.tracker)
        await client.aclose()

    asyncio.run(main())


def test_messages_that_change_nothing_still_move_the_position(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        leader = Leader(client)
        reader = RedisStateReader(client)
        messages = timed_messages("ami-inbound-abandoned")
        leader.feed(messages)
        leader.hub.drain()
        await leader.mirror.flush()
        version = (await reader.snapshot()).version
        ignored = [(m, t) for m, t in messages if m.get("Event") == "DeviceStateChange"][:3]
        assert len(ignored) == 3
        leader.feed(ignored)  # the tracker ignores these: no event, nothing dirty
        assert leader.mirror.dirty == 0
        await leader.mirror.flush()
        snap = await reader.snapshot()
        assert snap.position == (1, len(messages) + 3) and snap.version == version + 1
        await client.aclose()

    asyncio.run(main())


def test_only_owned_servers_are_written(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        leader = Leader(client, owned=("pbx-a", "pbx-b"))
        reader = RedisStateReader(client)
        leader.feed(timed_messages("ami-inbound-abandoned", server="pbx-a"), server="pbx-a")
        leader.feed(timed_messages("ami-inbound-abandoned", server="pbx-b"), server="pbx-b")
        leader.hub.drain()
        leader.owned.discard("pbx-b")  # the lease of pbx-b was lost before the flush: its new owner writes it
        await leader.mirror.flush()
        assert await reader.servers() == ["pbx-a"]
        assert (await reader.snapshot("pbx-a")).position is not None
        snap_b = await reader.snapshot("pbx-b")
        assert (snap_b.calls, snap_b.queues, snap_b.agents, snap_b.position) == ((), (), (), None)
        await client.aclose()

    asyncio.run(main())


class WriteBetweenReads:
    """Wraps a client: after the snapshot's first round trip, runs ``write()`` (a mirror flush) once per call."""

    def __init__(self, client, write, times):
        self.client = client
        self.write = write
        self.times = times

    def pipeline(self, **kw):
        pipe = self.client.pipeline(**kw)
        real = pipe.execute
        outer = self

        async def execute(*a, **k):
            result = await real(*a, **k)
            if outer.times and len(result) == 4:  # the indexes round trip
                outer.times -= 1
                await outer.write()
            return result

        pipe.execute = execute
        return pipe

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_write_between_the_two_reads_is_read_again(redis_url):
    async def main():
        client = aioredis.Redis.from_url(redis_url)
        leader = Leader(client)
        messages = timed_messages("ami-inbound-vip-answered")
        half = len(messages) // 2
        leader.feed(messages[:half])
        leader.hub.drain()
        await leader.mirror.flush()
        rest = iter([messages[half:]])

        async def write():
            leader.feed(next(rest, []))
            leader.hub.drain()
            await leader.mirror.flush()

        snap = await RedisStateReader(WriteBetweenReads(client, write, times=1)).snapshot()
        assert snap.position == (1, len(messages)) and view(loaded_from(snap)) == view(leader.tracker)

        async def move():
            leader.feed([(m, t) for m, t in messages if m.get("Event") == "DeviceStateChange"][:1])
            await leader.mirror.flush()

        torn = await RedisStateReader(WriteBetweenReads(client, move, times=3)).snapshot(attempts=3)
        assert torn.position is None  # never read at rest: usable, but matching no relayed message
        await client.aclose()

    asyncio.run(main())
