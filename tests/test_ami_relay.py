"""The relay's wire format, its pub/sub transport (real Redis) and the leader's numbering outbox."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from ccserver.ami.message import AMIMessage
from ccserver.ami.relay import (
    EVENT,
    HELLO,
    MARK,
    RESYNC,
    START,
    EventRelay,
    Relayed,
    RelayOutbox,
    decode_event,
    decode_relayed,
    encode_event,
    encode_relayed,
    own_prefix,
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
        Relayed("ast1", "n1", 3, 4, MARK),
        Relayed("ast1", "n2", 0, 0, HELLO, after=(3, 4)),
        Relayed("ast1", "n2", 0, 0, HELLO, after=None),
    ):
        back = decode_relayed(encode_relayed(msg))
        assert back == msg and back.position == (msg.term, msg.seq)
    event = decode_relayed(encode_relayed(Relayed("ast1", "n1", 3, 2, EVENT, event=varset(server="x")))).event
    assert event is not None and event.server == "ast1"  # the envelope names the server
    # A hello is another node's: the follower that sent it skips it by its own prefix like any of its messages.
    assert encode_relayed(Relayed("ast1", "n2", 0, 0, HELLO, after=None)).encode().startswith(own_prefix("ast1", "n2"))


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
    (json.dumps({**GOOD, "kind": "hello", "after": [1, "2"]}), "after must be"),
    (json.dumps({**GOOD, "kind": "mark", "seq": 0}), "seq must be a positive integer"),
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


def test_own_prefix_is_how_each_of_that_nodes_messages_starts():
    for msg in (Relayed("ast1", "vm:12/7f00", 3, 1, START, after=None),
                Relayed("ast1", "vm:12/7f00", 3, 2, EVENT, event=varset()),
                Relayed("ast1", "vm:12/7f00", 3, 3, RESYNC, at=1.0, queue_items=(), channel_items=())):
        assert encode_relayed(msg).encode().startswith(own_prefix("ast1", "vm:12/7f00"))
    mine = encode_relayed(Relayed("ast1", "vm:12/7f00", 3, 2, EVENT, event=varset())).encode()
    for other in (own_prefix("ast1", "vm:12/7f0"), own_prefix("ast1", "vm:12/7f001"), own_prefix("ast2", "vm:12/7f00"),
                  own_prefix('ast1", "node', "vm:12/7f00")):
        assert not mine.startswith(other)


def test_follow_skips_its_own_nodes_messages_undecoded(redis_url, caplog):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        relay = EventRelay(r, channel_prefix="test:ami:own:")
        got: list[Relayed] = []
        subscribed = []
        done = False
        task = asyncio.create_task(relay.follow("ast1", got.append, subscribed=lambda: subscribed.append(1),
                                                stopping=lambda: done, poll=0.05,
                                                skip_prefix=own_prefix("ast1", "me")))
        try:
            await until(lambda: subscribed == [1])
            await relay.publish_batch([Relayed("ast1", "me", 2, 1, START), Relayed("ast1", "me", 2, 2, EVENT,
                                                                                      event=varset())])
            # not even decoded: a broken message with this node's prefix is dropped without a warning
            await r.publish(relay.channel("ast1"), own_prefix("ast1", "me") + b"broken")
            theirs = [Relayed("ast1", "other", 3, 1, START), Relayed("ast1", "other", 3, 2, EVENT, event=varset())]
            await relay.publish_batch(theirs)
            await until(lambda: len(got) == 2)
            assert got == theirs
        finally:
            done = True
            await asyncio.wait_for(task, 2)
            await r.aclose()

    with caplog.at_level("WARNING", logger="ccserver.ami.relay"):
        asyncio.run(main())
    assert not [r for r in caplog.records if "unreadable" in r.getMessage()]


def test_a_batch_goes_out_as_one_publish_per_run_of_one_server_and_a_bad_line_costs_only_itself(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        relay = EventRelay(r, channel_prefix="test:ami:batch:")
        raw = r.pubsub()
        await raw.subscribe(relay.channel("ast1"))
        assert (await raw.get_message(timeout=2))["type"] == "subscribe"
        got: list[Relayed] = []
        subscribed = []
        done = False
        task = asyncio.create_task(relay.follow("ast1", got.append, subscribed=lambda: subscribed.append(1),
                                                stopping=lambda: done, poll=0.05))
        try:
            await until(lambda: subscribed == [1])
            ast1 = [Relayed("ast1", "n1", 1, 1, START)] + [Relayed("ast1", "n1", 1, n, EVENT, event=varset())
                                                          for n in range(2, 5)]
            other = Relayed("ast2", "n1", 1, 5, EVENT, event=varset("ast2"))
            more = [Relayed("ast1", "n1", 1, n, EVENT, event=varset()) for n in (5, 6)]
            await relay.publish_batch([*ast1, other, *more])
            publishes = [await raw.get_message(timeout=2) for _ in range(2)]
            assert [m["data"].count(b"\n") + 1 for m in publishes] == [4, 2]  # ast2's went to its own channel
            # a line nobody can read between two good ones: the good ones are delivered, in order
            good = [encode_relayed(Relayed("ast1", "n1", 1, n, EVENT, event=varset())) for n in (7, 8)]
            await r.publish(relay.channel("ast1"), "\n".join([good[0], "{not json", good[1]]))
            await until(lambda: len(got) == 8)
            assert [m.seq for m in got] == [1, 2, 3, 4, 5, 6, 7, 8]
        finally:
            done = True
            await asyncio.wait_for(task, 2)
            await raw.aclose()
            await r.aclose()

    asyncio.run(main())


def test_a_long_batch_is_split_below_the_publish_size_limit(monkeypatch):
    import ccserver.ami.relay as relay_module

    class Pipe:
        def __init__(self) -> None:
            self.sent: list[tuple[str, bytes]] = []

        def publish(self, channel: str, data: bytes) -> None:
            self.sent.append((channel, data))

        async def execute(self) -> None:
            return None

    pipe = Pipe()

    class FakeRedis:
        def pipeline(self, transaction: bool) -> Pipe:
            return pipe

    monkeypatch.setattr(relay_module, "MAX_PUBLISH_BYTES", 1000)
    relay = EventRelay(FakeRedis(), channel_prefix="x:")
    messages = [Relayed("ast1", "n1", 1, n, EVENT, event=varset()) for n in range(1, 41)]
    asyncio.run(relay.publish_batch(messages))
    assert len(pipe.sent) > 1 and all(len(data) <= 1000 for _, data in pipe.sent)
    lines = [line for _, data in pipe.sent for line in data.split(b"\n")]
    assert [decode_relayed(line) for line in lines] == messages


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


class AudienceRelay(RecordingRelay):
    """A relay whose channel has ``subscriptions`` listeners (``PUBSUB NUMSUB``), or fails to count them."""

    def __init__(self, subscriptions: int = 0) -> None:
        super().__init__()
        self.subscriptions = subscriptions
        self.counting_fails = False

    async def listeners(self, server):
        await asyncio.sleep(0)
        if self.counting_fails:
            raise ConnectionError("Redis is down")
        return self.subscriptions


def sent(relay):
    return [(m.seq, m.kind) for batch in relay.batches for m in batch]


def test_a_leader_nobody_follows_numbers_and_keeps_but_publishes_nothing_until_a_follower_says_hello():
    from ccserver.clock import ManualClock

    async def main():
        clock = ManualClock()
        relay = AudienceRelay(subscriptions=1)  # the leader's own follower only
        own = {"ast1": True}
        outbox = RelayOutbox(relay, "node-a", listening=own.get, clock=clock, audience_interval=1.0,  # type: ignore[arg-type]
                             quiet_keep=100)
        outbox.begin("ast1", 4, after=None)
        await until(lambda: not outbox.heard("ast1"))  # the first look, at once
        await outbox.flush()
        assert sent(relay) == [(1, START)]
        for _ in range(150):
            outbox.event("ast1", varset())
        outbox.resync("ast1", [varset()], [], 5.0)
        await outbox.flush()
        assert sent(relay) == [(1, START)] and outbox.position("ast1") == (4, 152)  # numbered, the mirror's position
        assert outbox.unheard["ast1"] == 150
        # A follower rebuilt from the mirror up to seq 120 and says so: what it lacks goes out, in order, at once.
        relay.subscriptions = 2
        outbox.hello("ast1", (4, 120))
        await outbox.flush()
        assert sent(relay)[1:] == [(n, EVENT) for n in range(121, 152)] + [(152, RESYNC)]
        assert outbox.heard("ast1")
        outbox.event("ast1", varset())
        await outbox.flush()
        assert sent(relay)[-1] == (153, EVENT)
        # It leaves: at the next look the leader keeps its messages again.
        relay.subscriptions = 1
        await clock.advance(1.0)
        await until(lambda: not outbox.heard("ast1"))
        for _ in range(120):
            outbox.event("ast1", varset())
        # A follower whose mirror position is older than what was kept (100 of them): a mark makes it rebuild.
        before = len(sent(relay))
        outbox.hello("ast1", (4, 153))
        await outbox.flush()
        assert sent(relay)[before:] == [(274, MARK)]
        # A hello from another term, or none known, is a mark too; a hello while publishing changes nothing.
        outbox.hello("ast1", (3, 900))
        await outbox.flush()
        assert sent(relay)[before:] == [(274, MARK)]
        outbox.close()

    asyncio.run(main())


def test_an_audience_that_never_says_hello_gets_a_mark_at_the_second_look_and_counting_errors_mean_publish():
    from ccserver.clock import ManualClock

    async def main():
        clock = ManualClock()
        relay = AudienceRelay(subscriptions=0)  # the leader's own follower is not subscribed (yet)
        outbox = RelayOutbox(relay, "node-a", listening=lambda server: False, clock=clock,  # type: ignore[arg-type]
                             audience_interval=1.0)
        outbox.begin("ast1", 1, after=None)
        await until(lambda: not outbox.heard("ast1"))
        for _ in range(5):
            outbox.event("ast1", varset())
        relay.subscriptions = 1  # someone subscribed (an older node, or its hello was lost)
        await clock.advance(1.0)
        await outbox.flush()
        assert not outbox.heard("ast1") and sent(relay) == [(1, START)]  # it may still say hello
        await clock.advance(1.0)
        await until(lambda: outbox.heard("ast1"))
        await outbox.flush()
        assert sent(relay) == [(1, START), (7, MARK)]  # the numbers skip: it rebuilds from the mirror
        # Redis cannot count: publish (a publish failure is counted as lost where it happens).
        relay.subscriptions = 0
        relay.counting_fails = True
        await clock.advance(1.0)
        outbox.event("ast1", varset())
        await outbox.flush()
        assert outbox.heard("ast1") and sent(relay)[-1] == (8, EVENT)
        assert outbox.end("ast1") == (1, 8)
        await clock.advance(1.0)
        assert not outbox._watchers  # stopped with the lead

    asyncio.run(main())


def test_kept_messages_are_forgotten_after_ten_seconds_and_a_late_hello_gets_a_mark():
    from ccserver.clock import ManualClock

    async def main():
        clock = ManualClock()
        relay = AudienceRelay(subscriptions=1)
        outbox = RelayOutbox(relay, "node-a", listening=lambda server: True, clock=clock,  # type: ignore[arg-type]
                             audience_interval=1.0)
        outbox.begin("ast1", 2, after=None)
        await until(lambda: not outbox.heard("ast1"))
        for _ in range(3):
            outbox.event("ast1", varset(arrival=clock.time()))
        await clock.advance(9.0)
        outbox.event("ast1", varset(arrival=clock.time()))
        assert len(outbox._quiet["ast1"]) == 4
        await clock.advance(2.0)  # the first three are over 10 s old at this look
        assert [seq for seq, _m in outbox._quiet["ast1"]] == [5]
        outbox.hello("ast1", (2, 2))  # its mirror is older than what is still kept
        await outbox.flush()
        assert sent(relay) == [(1, START), (6, MARK)]
        outbox.close()

    asyncio.run(main())
