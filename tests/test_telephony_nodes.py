"""Several ccserver nodes on one Asterisk (in process, real Redis): the lease holder consumes AMI and relays what its
tracker applies, numbered; followers apply it in order, rebuild from the mirror when something is missing, apply the
leader's resyncs, and take over consistently. Only the node that led a call's server when the call ended records it.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ccserver.clock import ManualClock
from ccserver.events import CallAbandoned, CallEnded
from ccserver.state import LIST_EVENTS, StateTracker
from ccserver.state.follower import GAPS, REBUILDS
from tests.relay_support import Node, list_items, run, until, view
from tests.test_state_support import timed_messages


async def leader_and_follower(redis_url: str) -> tuple[aioredis.Redis, Node, Node]:
    """Node a takes the lease first; node b follows it (subscribed, rebuilt once from the mirror)."""
    redis = aioredis.Redis.from_url(redis_url)
    a, b = Node(redis, "a"), Node(redis, "b")
    a.telephony.start()
    await until(a.leads, what="a leads")
    b.telephony.start()
    await until(lambda: b.follower.rebuilt >= 1 and a.relayed_to(b), what="b follows a")
    assert not b.leads() and a.connected == ["+default"] and b.connected == []
    return redis, a, b


async def shut(redis: aioredis.Redis, *nodes: Node) -> None:
    for node in nodes:
        await node.stop()
    await redis.aclose()


def test_follower_applies_the_busy_hour_in_order_and_only_the_leader_records(redis_url):
    async def main():
        redis, a, b = await leader_and_follower(redis_url)
        published = {"a": [], "b": []}
        for node in (a, b):
            node.telephony.hub.subscribe("test", lambda e, n=node.name: published[n].append(e))
        try:
            assert a.ami(timed_messages("ami-inbound-load-40-calls")) > 3000
            await until(lambda: a.relayed_to(b), what="b applied everything")
            assert view(b.tracker) == view(a.tracker)
            await until(lambda: len(published["b"]) >= len(published["a"]) > 0, what="both hubs delivered")
            # The follower's hub tells its subscribers the same story, event for event.
            def story(events):
                return [(type(e).__name__, getattr(e, "uniqueid", None), getattr(e, "interface", None))
                        for e in events]
            assert story(published["b"]) == story(published["a"])
            ended = [e.record for e in published["a"] if isinstance(e, CallEnded)]
            assert len(ended) == 40
            await until(lambda: len(a.written) == 40, what="a wrote the records")
        finally:
            await shut(redis, a, b)
        assert b.written == [] and sorted(r["uniqueid"] for r in a.written) == sorted(r["uniqueid"] for r in ended)

    run(main)


def test_a_lone_leader_publishes_nothing_and_a_node_joining_later_follows_without_a_gap(redis_url):
    """Nobody else follows: the leader numbers what it applies (the mirror keeps the position) but publishes none of
    it. A node that starts mid-hour rebuilds from the mirror, says hello, and the leader publishes what it kept after
    that position: the follower applies it in order — no gap, one rebuild. When it stops, the leader goes quiet
    again."""

    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        a, b = Node(redis, "a"), Node(redis, "b")
        messages = timed_messages("ami-inbound-load-40-calls")
        gaps = GAPS.value(server="default")
        stopped: list[Node] = []
        try:
            a.telephony.start()
            await until(lambda: a.leads() and not a.telephony.outbox.heard("default"), what="a leads, alone")
            await a.telephony.outbox.flush()  # its term's start
            published = a.telephony.outbox.published
            assert a.ami(messages[:1500]) > 1000
            await a.telephony.outbox.flush()
            assert a.telephony.outbox.published == published  # nothing went out
            assert a.telephony.outbox.unheard["default"] > 1000
            b.telephony.start()
            await until(lambda: a.relayed_to(b), what="b follows a")
            assert view(b.tracker) == view(a.tracker)
            assert b.follower.rebuilt == 1 and GAPS.value(server="default") == gaps  # straight on from the mirror
            a.ami(messages[1500:])
            await until(lambda: a.relayed_to(b), what="b applied everything")
            assert view(b.tracker) == view(a.tracker) and a.telephony.outbox.heard("default")
            assert b.follower.rebuilt == 1 and GAPS.value(server="default") == gaps
            await b.stop()
            stopped = [b]
            await until(lambda: not a.telephony.outbox.heard("default"), what="a alone again")
        finally:
            await shut(redis, *[n for n in (a, b) if n not in stopped])

    run(main)


def test_relayed_messages_lost_on_the_way_are_a_gap_rebuilt_from_the_mirror(redis_url):
    async def main():
        redis, a, b = await leader_and_follower(redis_url)
        messages = timed_messages("ami-inbound-load-40-calls")
        gaps, rebuilds = GAPS.value(server="default"), REBUILDS.value(server="default")
        try:
            a.ami(messages[:1000])
            await until(lambda: a.relayed_to(b))
            publish = a.telephony.outbox.relay.publish_batch

            async def lost(batch):  # Redis refused this round trip: the followers never see these numbers
                raise ConnectionError("Redis went away")

            a.telephony.outbox.relay.publish_batch = lost
            a.ami(messages[1000:1300])
            await a.telephony.outbox.flush()
            a.telephony.outbox.relay.publish_batch = publish
            assert a.telephony.outbox.lost > 0
            a.ami(messages[1300:])
            await until(lambda: a.relayed_to(b), what="b caught up")
            assert view(b.tracker) == view(a.tracker)
            assert GAPS.value(server="default") == gaps + 1 and REBUILDS.value(server="default") == rebuilds + 1
            assert b.follower.rebuilt == 2  # at subscription, and after the gap
        finally:
            await shut(redis, a, b)

    run(main)


def test_after_an_asterisk_restart_the_follower_has_no_ghost_caller(redis_url):
    """Asterisk dies while a caller waits (the recorded restart, its connection cut right after the caller joined,
    before the hang-up events: a crash), and comes back. b started while the caller waited: it rebuilt from the
    mirror and never saw the first FullyBooted, so it cannot tell that the second one means a restart. Only the
    leader's relayed resync tells it the caller is gone."""

    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        a, b = Node(redis, "a"), Node(redis, "b")
        messages = timed_messages("ami-asterisk-restart-with-waiting-caller")
        crash = next(i for i, (m, _) in enumerate(messages) if m.event == "QueueStatusComplete") + 1
        reconnect = next(i for i, (m, _) in enumerate(messages) if m.get("Uptime") == "3")
        first, second = messages[:crash], messages[reconnect:]
        try:
            a.telephony.start()
            await until(a.leads)
            a.ami(first)
            assert [c.uniqueid for c in a.tracker.calls_in_queue("complaints")] == ["1795417153.162"]
            b.telephony.start()
            await until(lambda: b.follower.rebuilt >= 1 and a.relayed_to(b), what="b rebuilt from the mirror")
            assert [c.uniqueid for c in b.tracker.calls_in_queue("complaints")] == ["1795417153.162"]
            a.ami(second)  # the new connection's FullyBooted (Uptime 3): a sees the restart, b cannot ...
            await until(lambda: a.relayed_to(b))
            assert a.tracker.calls_in_queue("complaints") == []
            assert [c.uniqueid for c in b.tracker.calls_in_queue("complaints")] == ["1795417153.162"]
            a.resync(list_items(second), now=second[-1][1])  # ... then a's QueueStatus / CoreShowChannels answers
            await until(lambda: a.relayed_to(b))
            assert a.tracker.calls_in_queue("complaints") == [] and list(a.tracker.iter_calls()) == []
            assert view(b.tracker) == view(a.tracker)
        finally:
            await shut(redis, a, b)
        assert [r["outcome"] for r in a.written] == ["failed"] and b.written == []  # lost in the restart

    run(main)


@pytest.mark.parametrize("b_first", [False, True], ids=["a-steps-down-first", "b-starts-first"])
def test_leadership_moves_and_both_nodes_keep_the_same_state(redis_url, b_first):
    """a leads the first half of the busy hour and loses its lease; b takes over and leads the rest. b had applied
    everything a relayed, so a follows b straight on (no rebuild) — also when b's term began before a noticed its
    lease was gone; each node records the calls that ended while it led, and between them every call once."""

    async def main():
        redis, a, b = await leader_and_follower(redis_url)
        messages = timed_messages("ami-inbound-load-40-calls")
        try:
            a.ami(messages[:1700])
            await until(lambda: a.relayed_to(b))
            rebuilt = a.follower.rebuilt
            if b_first:  # b's keeper took the expired lease a moment before a's keeper found it lost ...
                await b.telephony._lead("default")
                b.ami(messages[1700:1750])
                early = b.telephony.outbox.position("default")[1]  # b's start and first events reach a, still leading
                await until(lambda: len(a.follower._server("default").early or ()) == early, what="seen by a")
                assert a.leads() and a.follower.position("default") != b.telephony.outbox.position("default")
                a.telephony._follow("default")
            else:  # ... or the other way round
                a.telephony._follow("default")
                await b.telephony._lead("default")
                b.ami(messages[1700:1750])
            assert a.connected == ["+default", "-default"] and b.connected == ["+default"]
            assert a.ami(messages[1750:1760]) == 10  # read from a's closing connection: ignored now
            b.ami(messages[1750:])
            await until(lambda: b.relayed_to(a), what="a follows b")
            assert view(a.tracker) == view(b.tracker)
            assert a.follower.rebuilt == rebuilt  # it went straight on after b's start
            whole = StateTracker()  # one tracker fed the whole hour's events
            for msg, t in messages:
                if msg.event not in LIST_EVENTS:
                    whole.handle(msg, t)
            assert view(b.tracker) == view(whole)
            await until(lambda: len(a.written) + len(b.written) == 40, what="every call recorded")
        finally:
            await shut(redis, a, b)
        assert a.written and b.written
        assert len({r["uniqueid"] for r in a.written + b.written}) == 40

    run(main)


def test_a_deposed_leader_that_relayed_more_than_its_successor_saw_rebuilds_from_its_mirror(redis_url):
    async def main():
        redis, a, b = await leader_and_follower(redis_url)
        messages = timed_messages("ami-inbound-load-40-calls")
        gaps = GAPS.value(server="default")
        try:
            a.ami(messages[:1200])
            await until(lambda: a.relayed_to(b))
            publish = a.telephony.outbox.relay.publish_batch

            async def lost(batch):
                raise ConnectionError("partitioned from Redis")

            rebuilt = a.follower.rebuilt
            a.telephony.outbox.relay.publish_batch = lost  # a's last messages never reach b ...
            a.ami(messages[1200:1250])
            await a.telephony.outbox.flush()
            a.telephony.outbox.relay.publish_batch = publish
            a.telephony._follow("default")  # ... before its lease expires
            await b.telephony._lead("default")
            b.ami(messages[1250:])  # (b's own AMI would resync it: not the point here)
            await until(lambda: b.relayed_to(a), what="a follows b")
            assert GAPS.value(server="default") == gaps + 1  # b's term starts after a message a is past
            assert a.follower.rebuilt == rebuilt + 1 and view(a.tracker) == view(b.tracker)
        finally:
            await shut(redis, a, b)

    run(main)


def test_a_follower_starting_mid_hour_rebuilds_from_the_mirror_and_joins_the_relay(redis_url):
    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        a, b = Node(redis, "a"), Node(redis, "b")
        messages = timed_messages("ami-inbound-load-40-calls")
        try:
            a.telephony.start()
            await until(a.leads)
            a.ami(messages[:1500])
            reader, gate, asked = b.follower.reader, asyncio.Event(), []

            async def snapshot(server):  # b reads the mirror only once the test says so
                asked.append(server)
                await gate.wait()
                return await reader.snapshot(server)

            b.follower.reader = type("GatedReader", (), {"snapshot": staticmethod(snapshot)})()
            b.telephony.start()
            await until(lambda: asked, what="b subscribed and asks the mirror")
            a.ami(messages[1500:2000])  # the hour goes on meanwhile: b holds these
            await a.telephony.outbox.flush()
            await until(lambda: b.follower._server("default").held, what="b holds relayed messages")
            gate.set()
            await until(lambda: b.follower.rebuilt == 1, what="b rebuilt")
            a.ami(messages[2000:])
            await until(lambda: a.relayed_to(b))
            assert view(b.tracker) == view(a.tracker)
        finally:
            await shut(redis, a, b)

    run(main)


def test_a_lease_that_expires_moves_the_lead_through_the_lease_keepers(redis_url):
    """The real transitions, on a ManualClock: a is cut off from the lease (its renewals fail), keeps leading while
    its lease is surely valid, steps down when it may have expired; b's keeper takes the free lease; a follows b
    from the last message it relayed, b leads on from the last one it applied."""

    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        clock = ManualClock()
        a, b = Node(redis, "a", clock=clock), Node(redis, "b", clock=clock)
        messages = timed_messages("ami-inbound-load-40-calls")
        cut_off = aioredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))  # nothing listens there

        async def ticking(condition, what):  # the rebuild polls on the clock: move it while real I/O runs
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not condition():
                assert loop.time() < deadline, what
                await clock.advance(0.05)
                await asyncio.sleep(0.005)

        try:
            a.telephony.start()
            await until(a.leads)
            b.telephony.start()
            await ticking(lambda: b.follower.rebuilt == 1 and a.relayed_to(b), "b follows a")
            a.ami(messages[:1500])
            await until(lambda: a.relayed_to(b))
            rebuilt = a.follower.rebuilt
            lease = a.telephony._keepers[0].lease
            lease.redis = cut_off
            # (Ticking, not jumping: each keeper's next step is set when its Redis answer has come back.)
            await ticking(lambda: clock.monotonic() >= 10.2, "two renewals failed")
            assert a.leads() and not b.leads()  # still surely valid: a 15 s lease, last granted at 0
            await redis.delete("ccserver:ami-lease:default")  # meanwhile Redis let it expire
            await ticking(lambda: b.leads() and not a.leads(), "the lead moved to b")
            assert a.connected == ["+default", "-default"] and b.connected == ["+default"]
            b.ami(messages[1500:])
            await until(lambda: b.relayed_to(a), what="a follows b")
            assert view(a.tracker) == view(b.tracker) and a.follower.rebuilt == rebuilt  # straight on
            await until(lambda: len(a.written) + len(b.written) == 40, what="every call recorded")
            assert len({r["uniqueid"] for r in a.written + b.written}) == 40 and a.written and b.written
        finally:
            await shut(redis, a, b)
            await cut_off.aclose()

    run(main)


def test_what_a_deposed_leader_published_stays_its_own_however_late_the_hub_delivers_it(redis_url):
    """A burst holds a's subscribers (readers first); a loses its lease meanwhile. The calls that ended and the callers
    who hung up while a led are still a's to record and call back when its hub delivers them (Telephony.owns): a
    late delivery must not lose them, and b, which followed then, must not take them twice."""

    async def main():
        redis, a, b = await leader_and_follower(redis_url)
        messages = timed_messages("ami-inbound-load-40-calls")
        owned: dict[str, list[bool]] = {"a": [], "b": []}
        for node in (a, b):
            node.telephony.hub.subscribe("owns-probe", lambda e, n=node: owned[n.name].append(n.telephony.owns(e)),
                                         kinds=(CallEnded, CallAbandoned))
        try:
            a.telephony.hub.backlog.hold = 60.0  # (the test's own pace must not end the hold)
            a.telephony.hub.backlog.behind("pbx-reader")  # a burst: a's subscribers wait
            a.ami(messages)
            await until(lambda: a.telephony.hub.backlog.parked > 0, what="a's subscribers held")
            await until(lambda: a.relayed_to(b))
            assert owned["a"] == []
            a.telephony._follow("default")  # the lease is lost before they ran
            a.telephony.hub.backlog.caught_up("pbx-reader")
            await until(lambda: not any(s.queue for s in a.telephony.hub.subscriptions), what="a's hub delivered")
            await until(lambda: not any(s.queue for s in b.telephony.hub.subscriptions), what="b's hub delivered")
        finally:
            await shut(redis, a, b)
        assert len(owned["a"]) >= 40 and all(owned["a"])  # every call end (40 calls) and hang-up published while a led
        assert len(owned["b"]) == len(owned["a"]) and not any(owned["b"])  # b applied them as a follower

    run(main)
