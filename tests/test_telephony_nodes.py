"""Several ccserver nodes on one Asterisk: the lease holder consumes AMI, relays what it tracks over Redis, and
alone writes call records; a follower's tracker sees the same calls, so nothing is counted twice."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from twisted.internet.task import Clock

from ccserver.config import load_config
from ccserver.events import CallEnded
from ccserver.telephony import Telephony
from tests.replay.transcripts import iter_transcript_messages


def node(config: Any, redis: Any, name: str) -> Telephony:
    return Telephony(config, Clock(), session_factory=lambda: None, redis=redis, node_id=name)


def test_follower_tracks_relayed_events_and_only_the_leader_records(redis_url: str) -> None:
    config = load_config(environ={"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_USERNAME": "cc"})

    emitted: dict[str, list[dict]] = {"a": [], "b": []}

    def watch(telephony: Telephony, name: str) -> None:
        telephony.hub.subscribe("test-watch", lambda e: emitted[name].append(e.record), kinds=(CallEnded,))

    async def main() -> tuple[Telephony, Telephony]:
        redis = aioredis.Redis.from_url(redis_url)
        leader, follower = node(config, redis, "a"), node(config, redis, "b")
        watch(leader, "a")
        watch(follower, "b")
        leader.hub.start()
        follower.hub.start()
        leader.leading.add("default")  # as LeaseKeeper's on_acquired would (without dialing Asterisk)
        subscribed = asyncio.Event()
        following = asyncio.ensure_future(follower.relay.follow("default", follower._on_followed,
                                                                ready=subscribed.set))
        await subscribed.wait()
        for msg in iter_transcript_messages("ami-inbound-vip-answered"):
            msg.server = "default"
            if msg.event is not None:
                leader._on_event(msg)
        for _ in range(200):  # let the relay deliver
            await asyncio.sleep(0.01)
            if follower.tracker.records_emitted >= leader.tracker.records_emitted > 0:
                break
        following.cancel()
        await leader.hub.stop()
        await follower.hub.stop()
        await redis.aclose()
        return leader, follower

    leader, follower = asyncio.run(main())
    # The follower saw the same call, in the same order, to the same end ...
    assert emitted["a"] == emitted["b"] and len(emitted["a"]) == 1
    record = emitted["b"][0]
    assert (record["uniqueid"], record["queue"], record["outcome"]) == ("1795416921.0", "vip", "answered")
    assert leader.records.pending == leader.tracker.records_emitted  # the leader writes them ...
    assert follower.records.pending == 0  # ... the follower does not
