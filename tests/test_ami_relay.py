"""The relay's wire format, its pub/sub transport (real Redis) and the leader's numbering outbox."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from ccserver.ami.message import AMIMessage
from ccserver.ami.relay import (
    EVENT,
    RESYNC,
    START,
    EventRelay,
    Relayed,
    RelayOutbox,
    decode_event,
    decode_relayed,
    encode_event,
    encode_relayed,
)
from tests.test_state_support import timed_messages


def varset(server: str = "ast1", arrival: float | None = 12.5) -> AMIMessage:
    return AMIMessage([("Event", "VarSet"), ("ChanVariable", "A=1"), ("ChanVariable", "B=2")], server=server,
                      arrival=arrival)


async def until(condition, seconds: float = 5.0) -> None:
    """Poll ``condition()`` on the loop until it holds or the deadline passes (then fail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met within the deadline")
        await asyncio.sleep(0.005)


def test_event_roundtrip_keeps_repeats_server_and_arrival():
    back = decode_event(encode_event(varset()))
    assert back == varset() and back.server == "ast1" and back.arrival == 12.5


def test_every_kind_roundtrips():
    queue_items = tuple(m for m, _ in timed_messages("ami-asterisk-restart-with-waiting-caller", server="ast1")
                        if m.get("Event") in ("QueueParams", "QueueEntry"))
    assert queue_items
    for msg in (
        Relayed("ast1", "n1", 3, 1, START, after=(2, 40)),
        Relayed("ast1", "n1", 3, 1, START, after=None),
        Relayed("ast1", "n1", 3, 2, EVENT, event=varset()),
        Relayed("ast1", "n1", 3, 3, RESYNC, at=1795417158.5, queue_items=queue_items, channel_items=()),
    ):
        back = decode_relayed(encode_relayed(msg))
        assert back == msg and back.position == (3, msg.seq)
    event = decode_relayed(encode_relayed(Relayed("ast1", "n1", 3, 2, EVENT, event=varset(server="x")))).event
    assert event is not None and event.server == "ast1"  # the envelope names the server


GOOD = {"v": 1, "server": "ast1", "node": "n1", "term": 3, "seq": 2, "kind": "event",
        "event": {"arrival": 1.0, "items": [["Event", "Hangup"]]}}


@pytest.mark.parametrize(("data", "complaint"), [
    (b"\xff\xfe", "not JSON"),
    ("[1, 2]", "not a version 1"),
    (json.dumps({**GOOD, "v": 2}), "not a version 1"),
    (json.dumps({**GOOD, "server": ""}), "server and node"),
    (json.dumps({**GOOD, "kind": "snapshot"}), "kind must be"),
    (json.dumps({**GOOD, "term": 0}), "term must be a positive integer"),
    (json.dumps({**GOOD, "seq": True}), "seq must be a positive integer"),
    (json.dumps({**GOOD, "seq": "2"}), "seq must be a positive integer"),
    (json.dumps({**GOOD, "event": {"items": [["Event"]]}}), "pair of strings"),
    (json.dumps({**GOOD, "event": {"items": ["ab"]}}), "pair of strings"),
    (json.dumps({**GOOD, "event": {"items": [["Event", 5]]}}), "pair of strings"),
    (json.dumps({**GOOD, "event": {"items": [["Event", "Hangup"]], "arrival": "now"}}), "arrival"),
    (json.dumps({**GOOD, "event": None}), "list of items"),
    (json.dumps({**GOOD, "kind": "start", "seq": 1, "after": [1]}), "after must be"),
    (json.dumps({**GOOD, "kind": "start", "seq": 4, "after": None}), "starts at seq 1"),
    (json.dumps({**GOOD, "kind": "resync", "at": 1.0, "queues": []}), "a resync needs"),
])
def test_bad_messages_are_refused_with_the_reason(data, complaint):
    with pytest.raises(ValueError, match=complaint):
        decode_relayed(data)


def test_follow_delivers_in_order_and_skips_what_it_cannot_read(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        relay = EventRelay(r, channel_prefix="test:ami:events:")
        got: list[Relayed] = []
        subscribed = []
        done = False
        task = asyncio.create_task(relay.follow("ast1", got.append, subscribed=lambda: subscribed.append(1),
                                                stopping=lambda: done, poll=0.05))
        try:
            await until(lambda: subscribed == [1])
            first = [Relayed("ast1", "n1", 1, 1, START), Relayed("ast1", "n1", 1, 2, EVENT, event=varset())]
            await relay.publish_batch(first)
            await r.publish(relay.channel("ast1"), "garbage")  # logged and skipped
            await relay.publish_batch([Relayed("ast2", "n1", 1, 3, EVENT, event=varset("ast2"))])
            await r.publish(relay.channel("ast1"), encode_relayed(Relayed("ast2", "n1", 1, 3, EVENT,
                                                                           event=varset("ast2"))))  # not ours
            last = Relayed("ast1", "n1", 1, 3, EVENT, event=varset())
            await relay.publish_batch([last])
            await until(lambda: len(got) == 3)
            assert got == [*first, last]
        finally:
            done = True
            await asyncio.wait_for(task, 2)  # it ends by itself once told
            await r.aclose()

    asyncio.run(main())


class RecordingRelay:
    def __init__(self) -> None:
        self.batches: list[list[Relayed]] = []
        self.fail = False

    async def publish_batch(self, messages):
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("Redis is down")
        self.batches.append(list(messages))


def test_outbox_numbers_per_server_and_term_and_publishes_in_order():
    async def main():
        relay = RecordingRelay()
        outbox = RelayOutbox(relay, "node-a")  # type: ignore[arg-type]
        with pytest.raises(LookupError):
            outbox.event("ast1", varset())
        outbox.begin("ast1", 7, after=(6, 90))
        outbox.begin("ast2", 2, after=None)
        outbox.event("ast1", varset())
        outbox.resync("ast1", [], [], 5.0)
        outbox.event("ast2", varset("ast2"))
        assert outbox.positions() == {"ast1": (7, 3), "ast2": (2, 2)}
        await outbox.flush()
        sent = [m for batch in relay.batches for m in batch]
        assert [(m.server, m.term, m.seq, m.kind) for m in sent] == [
            ("ast1", 7, 1, START), ("ast2", 2, 1, START), ("ast1", 7, 2, EVENT), ("ast1", 7, 3, RESYNC),
            ("ast2", 2, 2, EVENT)]
        assert sent[0].after == (6, 90) and all(m.node == "node-a" for m in sent)
        # Redis down: those messages are lost (the followers will see the numbers skip), the next ones go out.
        relay.fail = True
        outbox.event("ast1", varset())
        await outbox.flush()
        relay.fail = False
        outbox.event("ast1", varset())
        await outbox.flush()
        assert relay.batches[-1][0].position == (7, 5) and outbox.lost == 1 and outbox.published == 6
        assert outbox.end("ast1") == (7, 5) and outbox.position("ast1") is None
        with pytest.raises(LookupError):
            outbox.event("ast1", varset())

    asyncio.run(main())
