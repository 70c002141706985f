"""The call-events hub, and the typed events the tracker publishes for recorded Asterisk calls."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from ccserver.clock import ManualClock
from ccserver.events import (
    AgentRinging,
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallUpdated,
    EventHub,
    QueueChanged,
    Resynced,
)
from ccserver.events.hub import DROPPED, FAILED
from ccserver.state import StateTracker
from tests.test_state_support import replay, timed_messages


def collected(name: str, **kw: Any) -> list[CallEvent]:
    events: list[CallEvent] = []
    replay(StateTracker(publish=events.append), name, **kw)
    return events


def kinds(events: list[CallEvent], *exclude: type) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, (CallUpdated, QueueChanged, *exclude))]


def test_an_answered_vip_call() -> None:
    events = collected("ami-inbound-vip-answered")
    call = [e for e in events if getattr(e, "uniqueid", None) == "1795416921.0"]
    assert kinds(call) == ["CallOffered", "AgentRinging", "CallAnswered", "CallEnded"]
    offered, ringing, answered, ended = (e for e in call if not isinstance(e, (CallUpdated, QueueChanged)))
    assert (offered.queue, offered.position, offered.caller_number) == ("vip", 1, "13800138000")
    assert (offered.customer_id, offered.tier) == ("C000042", "gold")  # the lab's CC_* variables (no decision id)
    assert (ringing.interface, ringing.member_name) == ("Local/8001@agent-phones/n", "Wang Fang")
    assert answered.interface == ringing.interface and answered.wait_seconds is not None
    assert ended.outcome == "answered" and ended.record["uniqueid"] == "1795416921.0"
    assert ended.final["queue"] == "vip" and ended.final["outcome"] == "answered"
    states = [e.state for e in events if isinstance(e, AgentStateChanged) and e.interface == ringing.interface]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]][-3:] == ["ringing", "talking", "idle"]


def test_sequence_numbers_are_per_server_and_in_order() -> None:
    events: list[CallEvent] = []
    tracker = StateTracker(publish=events.append)
    a = timed_messages("ami-inbound-vip-answered", server="pbx-a")
    b = timed_messages("ami-inbound-abandoned", server="pbx-b")
    for msg, t in sorted(a + b, key=lambda x: x[1]):
        tracker.handle(msg, t)
    for server in ("pbx-a", "pbx-b"):
        seqs = [e.seq for e in events if e.server == server]
        assert seqs == list(range(1, len(seqs) + 1))


def test_ring_no_answer_then_answered_by_another() -> None:
    events = collected("ami-inbound-ivr-ringnoanswer-then-answered")
    stops = [e for e in events if isinstance(e, AgentRingStopped)]
    assert [(e.interface, e.reason) for e in stops][0] == ("Local/8009@agent-phones/n", "no_answer")
    answered = [e for e in events if isinstance(e, CallAnswered)]
    assert [e.interface for e in answered] == ["Local/8003@agent-phones/n"]
    rings = [e.interface for e in events if isinstance(e, AgentRinging)]
    assert rings[0] == "Local/8009@agent-phones/n" and rings[-1] == "Local/8003@agent-phones/n"


def test_abandoned_call() -> None:
    events = collected("ami-inbound-abandoned")
    [abandoned] = [e for e in events if isinstance(e, CallAbandoned)]
    assert abandoned.queue == "complaints" and abandoned.wait_seconds == pytest.approx(abandoned.holdtime, abs=1)
    [ended] = [e for e in events if isinstance(e, CallEnded)]
    assert ended.outcome == "abandoned" and ended.uniqueid == abandoned.uniqueid


def test_busy_hour_counts_and_every_ring_ends() -> None:
    events = collected("ami-inbound-load-40-calls")
    counts = Counter(type(e).__name__ for e in events)
    assert counts["CallOffered"] == 40 and counts["CallAnswered"] == 26 and counts["CallAbandoned"] == 14
    assert [e.outcome for e in events if isinstance(e, CallEnded)].count("answered") == 26
    ringing = Counter((e.uniqueid, e.interface) for e in events if isinstance(e, AgentRinging))
    settled = Counter((e.uniqueid, e.interface) for e in events if isinstance(e, (AgentRingStopped, CallAnswered)))
    assert ringing == settled  # every ring ends: answered, or stopped with a reason


def test_restart_publishes_a_resynced_snapshot_without_the_vanished_caller() -> None:
    events = collected("ami-asterisk-restart-with-waiting-caller")
    offered = [e for e in events if isinstance(e, CallOffered)]
    assert offered
    resynced = [e for e in events if isinstance(e, Resynced)]
    assert resynced and resynced[-1].restarted
    assert all(c["uniqueid"] != offered[0].uniqueid for c in resynced[-1].calls)  # no ghost caller
    assert all(not q["callers"] for q in resynced[-1].queues)


# -- the hub ----------------------------------------------------------------------------------------------------
def _event(seq: int) -> QueueChanged:
    return QueueChanged("default", seq, float(seq), "sales", 0, 0)


async def _burst(hub: EventHub, last: int, release: asyncio.Event) -> None:
    """Publish event 1 and let the subscribers take it (a blocking one blocks on it), then 2..``last`` at once;
    then ``release`` the blocked ones and stop the hub."""
    hub.publish(_event(1))
    for _ in range(5):
        await asyncio.sleep(0)
    for seq in range(2, last + 1):
        hub.publish(_event(seq))  # returns at once: nothing awaits a subscriber here
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    await hub.stop()


def test_a_slow_or_failing_subscriber_never_holds_up_the_others() -> None:
    async def main() -> tuple[list[int], list[int], int, int]:
        hub = EventHub()
        fast: list[int] = []
        slow: list[int] = []
        release = asyncio.Event()

        async def sluggish(event: QueueChanged) -> None:
            await release.wait()
            slow.append(event.seq)

        def broken(event: QueueChanged) -> None:
            raise RuntimeError("bug in a subscriber")

        hub.subscribe("fast", lambda e: fast.append(e.seq))
        hub.subscribe("slow", sluggish, maxsize=5)
        hub.subscribe("broken", broken)
        hub.start()
        dropped, failed = DROPPED.value(subscriber="slow"), FAILED.value(subscriber="broken")
        hub.publish(_event(1))
        for _ in range(5):
            await asyncio.sleep(0)  # the slow subscriber takes event 1 and blocks on it
        for seq in range(2, 21):
            hub.publish(_event(seq))  # returns at once: nothing awaits a subscriber here
        for _ in range(20):
            await asyncio.sleep(0)
        assert fast == list(range(1, 21))  # the fast one got everything, while the slow one is stuck
        release.set()
        await hub.stop()
        return slow, fast, int(DROPPED.value(subscriber="slow") - dropped), int(FAILED.value(subscriber="broken")
                                                                                - failed)

    slow, fast, dropped, failed = asyncio.run(main())
    assert dropped == 14 and slow == [1, *range(16, 21)]  # it held event 1; the oldest queued ones were dropped
    assert failed == 20 and len(fast) == 20  # the broken one kept receiving, and failing, without harm


def test_kinds_filter_and_close() -> None:
    hub = EventHub()
    got: list[CallEvent] = []
    sub = hub.subscribe("offers", got.append, kinds=(CallOffered,))
    replay(StateTracker(publish=hub.publish), "ami-inbound-vip-answered")
    assert hub.drain() == 1 and [type(e) for e in got] == [CallOffered]
    sub.close()
    replay(StateTracker(publish=hub.publish), "ami-inbound-vip-answered")
    assert hub.drain() == 0 and len(got) == 1


def test_a_batch_subscriber_gets_what_queued_since_its_last_call_in_order() -> None:
    async def main() -> tuple[list[list[int]], int, list[int]]:
        hub = EventHub()
        batches: list[list[int]] = []
        release = asyncio.Event()

        async def slow_batches(events: list[QueueChanged]) -> None:
            batches.append([e.seq for e in events])
            await release.wait()

        def broken(events: list[QueueChanged]) -> None:
            raise RuntimeError("bug in a subscriber")

        one_by_one: list[int] = []
        hub.subscribe("batches", slow_batches, batch=True)
        hub.subscribe("broken", broken, batch=True)
        hub.subscribe("single", lambda e: one_by_one.append(e.seq))
        hub.start()
        failed = FAILED.value(subscriber="broken")
        await _burst(hub, 7, release)  # the batch subscriber takes [1] and waits on it
        return batches, int(FAILED.value(subscriber="broken") - failed), one_by_one

    batches, failed, one_by_one = asyncio.run(main())
    assert batches == [[1], [2, 3, 4, 5, 6, 7]] and one_by_one == list(range(1, 8))
    assert failed == 2  # one failure per batch; the next batch is still delivered
    hub = EventHub()
    got: list[list[int]] = []
    hub.subscribe("batches", lambda events: got.append([e.seq for e in events]), batch=True)
    for seq in (1, 2, 3):
        hub.publish(_event(seq))
    assert hub.drain() == 3 and got == [[1, 2, 3]]  # without a loop: drain() delivers them as one batch


def test_a_subscriber_that_must_not_lose_events_is_told_of_each_one_its_full_queue_drops() -> None:
    """``on_overflow`` gets every event the queue loses, in order, in the publisher's turn; one that raises is
    counted as the subscriber's failure and never reaches the publisher."""
    hub = EventHub()
    lost: list[int] = []
    got: list[int] = []
    hub.subscribe("keeps", lambda e: got.append(e.seq), maxsize=3, on_overflow=lambda e: lost.append(e.seq))

    def broken(event: QueueChanged) -> None:
        raise RuntimeError("bug in an overflow handler")

    hub.subscribe("broken-overflow", lambda e: None, maxsize=1, on_overflow=broken)
    failed = FAILED.value(subscriber="broken-overflow")
    for seq in range(1, 7):
        hub.publish(_event(seq))  # no loop runs the subscribers: the queues fill
    assert lost == [1, 2, 3]
    assert FAILED.value(subscriber="broken-overflow") == failed + 5
    hub.drain()
    assert got == [4, 5, 6]  # lost + delivered: every event once


def test_call_records_and_the_mirror_lose_nothing_to_a_full_queue() -> None:
    """Telephony's call-records subscriber writes an overflowing call's record at once; the Redis mirror marks the
    server for a whole rewrite at its next flush (as after a resync)."""
    import redis.asyncio as aioredis
    from twisted.internet.task import Clock

    from ccserver.config import load_config
    from ccserver.telephony import Telephony

    config = load_config(environ={"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_USERNAME": "cc"})
    client = aioredis.Redis()  # never connected: nothing here reaches Redis
    telephony = Telephony(config, Clock(), session_factory=lambda: None, redis=client)
    records = next(s for s in telephony.hub.subscriptions if s.name == "call-records")
    mirror = next(s for s in telephony.hub.subscriptions if s.name == "redis-mirror")
    assert telephony.store is not None and telephony.relay is not None
    telephony.relay = None  # a lone node: owns every event it publishes
    ended = [e for e in collected("ami-inbound-vip-answered") if isinstance(e, CallEnded)][0]
    for _ in range(records.maxsize + 1):
        telephony.hub.publish(ended)
    assert records.dropped == 1 and telephony.records.pending == 1  # the dropped one's record: submitted
    assert mirror.dropped == 1 and "default" in telephony.store._resynced


def test_stop_delivers_what_is_queued_then_gives_up_on_a_stuck_subscriber_at_its_timeout() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub = EventHub(clock=clock)
        assert hub.backlog.clock is clock
        stuck = asyncio.Event()
        got: list[int] = []

        async def blocked(event: QueueChanged) -> None:
            await stuck.wait()  # never set

        hub.subscribe("steady", lambda e: got.append(e.seq))
        hub.subscribe("stuck", blocked)
        hub.start()
        for seq in (1, 2, 3):
            hub.publish(_event(seq))
        stopping = asyncio.ensure_future(hub.stop(timeout=5.0))
        await clock.advance(4.99)
        assert got == [1, 2, 3] and not stopping.done()  # the steady one is served; the stuck one still holds
        await clock.advance(0.02)  # the timeout, on the hub's clock: no real time passed
        assert stopping.done() and stopping.exception() is None

        idle = EventHub(clock=ManualClock())
        idle.subscribe("steady", lambda e: None)
        idle.start()
        await idle.stop(timeout=5.0)  # nothing queued: returns without the clock moving

    asyncio.run(main())


# No recording holds a ringall or a caller who hangs up while a phone rings (the lab's queues ring one member at a
# time, and its abandoning caller left before any did): those rings are the recorded AgentCalled of the VIP call,
# re-addressed. Asterisk sends nothing for the members a ringall's winner beat (app_queue hangs their legs up), nor
# for a member still ringing when the caller leaves: the tracker stops those rings itself.
def _ring(**changes: str) -> dict[str, str]:
    [called] = [m for m, _ in timed_messages("ami-inbound-vip-answered") if m.get("Event") == "AgentCalled"]
    return {**called.to_dict(), **changes}


def _replay_with(name: str, before: str, extra: dict[str, str]) -> list[CallEvent]:
    """``name``'s messages with ``extra`` handled just before the first ``before`` event."""
    events: list[CallEvent] = []
    tracker = StateTracker(publish=events.append)
    messages = timed_messages(name)
    at = next(i for i, (m, _) in enumerate(messages) if m.get("Event") == before)
    for msg, t in messages[:at]:
        tracker.handle(msg, t)
    tracker.handle(extra, messages[at][1])
    for msg, t in messages[at:]:
        tracker.handle(msg, t)
    return events


def test_a_ringall_winner_stops_the_other_members_ringing() -> None:
    other = "Local/8002@agent-phones/n"
    events = _replay_with("ami-inbound-vip-answered", "AgentConnect",
                          _ring(Interface=other, MemberName="Li Lei", DestUniqueid="1795416921.4",
                                DestChannel="Local/8002@agent-phones-00000002;1"))
    rings = [e.interface for e in events if isinstance(e, AgentRinging)]
    assert rings == ["Local/8001@agent-phones/n", other]
    [stopped] = [e for e in events if isinstance(e, AgentRingStopped)]
    [answered] = [e for e in events if isinstance(e, CallAnswered)]
    assert (stopped.uniqueid, stopped.interface, stopped.reason) == ("1795416921.0", other, "answered_elsewhere")
    assert answered.interface == "Local/8001@agent-phones/n"
    states = [e.state for e in events if isinstance(e, AgentStateChanged) and e.interface == other]
    assert states[:2] == ["ringing", "idle"]  # the loser is free again at once (not a member of vip: then out)


def test_a_caller_who_leaves_while_a_phone_rings_stops_that_ring() -> None:
    [joined] = [m for m, _ in timed_messages("ami-inbound-abandoned") if m.get("Event") == "QueueCallerJoin"]
    member = "Local/8005@agent-phones/n"
    events = _replay_with("ami-inbound-abandoned", "QueueCallerAbandon", _ring(
        Channel=joined.get("Channel") or "", Uniqueid="1795416944.10", Linkedid=joined.get("Linkedid") or "",
        Queue="complaints", Interface=member, MemberName="Zhao Min", DestUniqueid="1795416944.12",
        DestChannel="Local/8005@agent-phones-00000009;1"))
    [ringing] = [e for e in events if isinstance(e, AgentRinging)]
    [stopped] = [e for e in events if isinstance(e, AgentRingStopped)]
    [abandoned] = [e for e in events if isinstance(e, CallAbandoned)]
    assert (ringing.uniqueid, ringing.interface) == ("1795416944.10", member)
    assert (stopped.uniqueid, stopped.interface, stopped.reason) == ("1795416944.10", member, "caller_left")
    assert abandoned.uniqueid == "1795416944.10" and ringing.seq < stopped.seq
    states = [e.state for e in events if isinstance(e, AgentStateChanged) and e.interface == member]
    assert states == ["ringing", "idle"]


def test_a_full_queue_and_a_failing_subscriber_are_logged_once_per_interval_not_per_event(caplog) -> None:
    import logging

    async def main() -> tuple[int, int]:
        hub = EventHub()
        release = asyncio.Event()

        async def sluggish(event: QueueChanged) -> None:
            await release.wait()

        def broken(event: QueueChanged) -> None:
            raise RuntimeError("bug in a subscriber")

        slow_sub = hub.subscribe("sluggish", sluggish, maxsize=2)
        broken_sub = hub.subscribe("broken", broken)
        hub.start()
        await _burst(hub, 12, release)  # the sluggish one takes event 1 and blocks on it
        return slow_sub.dropped, broken_sub.failed

    with caplog.at_level(logging.WARNING, logger="ccserver.events"):
        dropped, failures = asyncio.run(main())
    assert (dropped, failures) == (9, 12)  # many of each …
    slow = [r for r in caplog.records if "too slow" in r.getMessage()]
    failed = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert [r.getMessage() for r in slow] == ["event subscriber sluggish is too slow: 1 events dropped so far"]
    assert len(failed) == 1 and "broken" in failed[0].getMessage() and failed[0].exc_info is not None  # … one line
