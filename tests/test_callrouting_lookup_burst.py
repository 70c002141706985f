"""A burst of new callers: more customer lookups than lookup slots (``max_pending_lookups``). The calls beyond
wait for a slot in a bounded FIFO within their routing deadline instead of being routed as "directory busy" at
once. Against the real customer directory on SQLite and PostgreSQL (each unknown caller becomes a prospect), on a
task.Clock where the test is about time, and once over real FastAGI on the asyncio reactor (PostgreSQL, wired as
``ccserver run`` wires it)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock

from ccserver.callrouting.directory_data import RoutingData
from ccserver.callrouting.service import FALLBACKS, RoutingService
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.directory import CustomerDirectory
from ccserver.identification.lookup_slots import DirectoryBusy, LookupSlots
from tests.replay.agi_peer import AGIPeer, Responder, agi_split, transcript_peer
from tests.test_agi_protocol import Harness

OPEN = 1_773_626_400.0  # 2026-03-16 10:00 in Shanghai, a Monday: the lines are open
NEW_CALLERS = [f"1391234{i:04d}" for i in range(50)]  # numbers the demo data does not have


def _reasons() -> dict[str, float]:
    return {r: FALLBACKS.value(reason=r) for r in ("directory_busy", "timeout", "directory_error")}


def _variables(peer: AGIPeer) -> dict[str, str] | None:
    lines = [c for c in peer.commands if c.startswith("EXEC MSet")]
    if not lines:
        return None
    (line,) = lines
    return dict(pair.split("=", 1) for pair in agi_split(line)[2].split(","))


class Burst:
    """A routing service on a task.Clock; every call's blocking directory work is queued here and run when the
    test says (``run_next``) or, with ``seconds``, that long after it was asked for on the clock."""

    def __init__(self, sessions: Any, settings: RoutingSettings, *, seconds: float | None = None) -> None:
        self.clock = Clock()
        self.jobs: deque[tuple[Deferred[Any], Callable[[], Any]]] = deque()
        self.started = 0
        self.running = 0
        self.most_at_once = 0
        self.seconds = seconds
        self.service = RoutingService(RoutingData.load(sessions), CustomerDirectory(sessions), None, None,
                                      settings.routing_rules(), settings, self._run_blocking, self.clock, None,
                                      wall=lambda: OPEN)
        self.harnesses: list[Harness] = []

    def _run_blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        done: Deferred[Any] = Deferred()
        self.started += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        job = (done, lambda: fn(*args, **kwargs))
        if self.seconds is None:
            self.jobs.append(job)
        else:
            self.clock.callLater(self.seconds, self._finish, job)
        return done

    def _finish(self, job: tuple[Deferred[Any], Callable[[], Any]]) -> None:
        done, work = job
        self.running -= 1
        done.callback(work())

    def run_next(self) -> bool:
        if not self.jobs:
            return False
        self._finish(self.jobs.popleft())
        return True

    def call(self, caller: str) -> Harness:
        peer = transcript_peer("agi-01-13800138000", Responder(), callerid=caller, uniqueid=f"burst.{caller}")
        harness = Harness(self.service.handlers(), peer, clock=self.clock)
        harness.flush()
        self.harnesses.append(harness)
        return harness

    def flush(self) -> None:
        for harness in self.harnesses:
            harness.flush()

    def answers(self) -> list[dict[str, str] | None]:
        self.flush()
        return [_variables(h.peer) for h in self.harnesses]


def test_fifty_new_callers_at_once_are_all_identified_with_eight_slots(loaded: Any) -> None:
    _, sessions = loaded
    burst = Burst(sessions, RoutingSettings())  # max_pending_lookups = 8
    before = _reasons()
    for caller in NEW_CALLERS:
        burst.call(caller)
    assert all(answer is None for answer in burst.answers())  # nobody turned away: 8 looking up, 42 waiting
    assert burst.running == 8 and burst.service.identification._slots.waiting == 42
    while burst.run_next():  # the directory answers each lookup at once, in the order they were asked
        burst.flush()
    answers = burst.answers()
    assert all(a is not None and a["CC_TIER"] == "prospect" and a["CC_CUSTOMER_ID"] for a in answers), answers
    assert len({a["CC_CUSTOMER_ID"] for a in answers if a}) == 50  # a prospect each
    assert burst.most_at_once == 8 and burst.started == 50
    assert _reasons() == before
    assert burst.service.identification._slots.busy == 0 and burst.service.identification._slots.waiting == 0


def test_with_a_slow_directory_the_calls_still_waiting_at_the_deadline_fall_back_and_are_counted(
        loaded: Any) -> None:
    _, sessions = loaded
    burst = Burst(sessions, RoutingSettings(), seconds=0.5)  # each lookup takes 0.5 s; deadline 1.5 - 0.1 s
    before = _reasons()
    for caller in NEW_CALLERS:
        burst.call(caller)
    for _ in range(27):  # to 1.35 s
        burst.clock.advance(0.05)
        burst.flush()
    assert sum(a is not None for a in burst.answers()) == 16  # two rounds of 8 answered by 1.0 s
    burst.clock.advance(0.06)  # 1.41 s: past the deadline of all the rest
    answers = burst.answers()
    assert all(a is not None for a in answers)
    identified = [a for a in answers if a and a["CC_CUSTOMER_ID"]]
    assert len(identified) == 16 and answers[:16] == identified  # first come, first served
    after = _reasons()
    # 8 got a slot at 1.0 s and their lookup did not answer in time; 26 never got one: out of the queue
    assert after["timeout"] - before["timeout"] == 8
    assert after["directory_busy"] - before["directory_busy"] == 26
    assert burst.service.identification._slots.waiting == 0
    burst.clock.advance(1.0)  # the late lookups finish (and are harmless); none started for the 26
    assert burst.started == 24 and burst.service.identification._slots.busy == 0


def test_a_full_wait_queue_turns_the_next_call_away_at_once(loaded: Any) -> None:
    _, sessions = loaded
    burst = Burst(sessions, RoutingSettings(max_pending_lookups=1, max_waiting_lookups=1))
    before = _reasons()
    for caller in NEW_CALLERS[:3]:
        burst.call(caller)
    answers = burst.answers()
    assert answers[:2] == [None, None] and answers[2] is not None and answers[2]["CC_CUSTOMER_ID"] == ""
    assert _reasons()["directory_busy"] == before["directory_busy"] + 1
    while burst.run_next():
        burst.flush()
    assert all(a and a["CC_CUSTOMER_ID"] for a in burst.answers()[:2])


# -- the slots themselves --------------------------------------------------------------------------------------------
def test_slots_are_handed_over_first_come_first_served_and_a_cancelled_waiter_leaves() -> None:
    slots = LookupSlots(size=2, max_waiting=3)
    assert slots.take() is None and slots.take() is None
    order: list[str] = []
    turns = {name: slots.take() for name in "abc"}
    for name, turn in turns.items():
        assert turn is not None
        turn.addCallbacks(lambda _, n=name: order.append(n), lambda f, n=name: order.append(f"{n} left") if f.check(
            CancelledError) else f)
    with pytest.raises(DirectoryBusy):
        slots.take()
    turns["b"].cancel()  # its deadline came
    assert slots.waiting == 2 and order == ["b left"]
    slots.give_back()
    slots.give_back()
    assert order == ["b left", "a", "c"] and slots.busy == 2 and slots.waiting == 0
    slots.give_back()
    slots.give_back()
    assert slots.busy == 0 and slots.take() is None


def test_instant_lookups_handed_over_in_a_loop_not_by_recursion() -> None:
    slots = LookupSlots(size=1, max_waiting=5000)
    assert slots.take() is None
    served = []
    for i in range(5000):
        turn = slots.take()
        assert turn is not None
        turn.addCallback(lambda _, i=i: (served.append(i), slots.give_back()))  # finishes at once
    slots.give_back()
    assert served == list(range(5000)) and slots.busy == 0


# -- over real FastAGI, as `ccserver run` wires it on PostgreSQL --------------------------------------------------
def test_fifty_new_callers_over_fastagi_on_postgresql_all_become_prospects(pg_url: str) -> None:
    from datetime import date

    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    from twisted.internet.threads import deferToThreadPool

    from ccserver.agi import FastAGIFactory, listen_fastagi
    from ccserver.callrouting import RoutingRuntime
    from ccserver.config import load_config
    from ccserver.customers.cache import MemorySummaryCache
    from ccserver.db.engine import make_engine, session_factory
    from ccserver.demo import generate
    from tests.replay.agi_peer import AGIPeerFactory

    generate(pg_url, customers=60, seed=7, as_of=date(2026, 11, 16), agent_interface="PJSIP/{ext}")
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    pool = reactor.getThreadPool()
    pool.start()  # a private reactor never runs its startup triggers
    config = load_config(environ={"CCSERVER_DATABASE_URL": pg_url})
    routing = RoutingRuntime.from_config(config, sessions, reactor=reactor, cache=MemorySummaryCache(),
                                         run_blocking=lambda fn, *a, **kw: deferToThreadPool(reactor, pool, fn, *a,
                                                                                            **kw))
    assert routing.service.settings.max_pending_lookups == 8
    factory = FastAGIFactory(routing.handlers(), clock=reactor)
    port = listen_fastagi(reactor, factory, 0)
    before = _reasons()

    try:
        loop.run_until_complete(asyncio.wait_for(routing.start(), 5))
        peers = [transcript_peer("agi-01-13800138000", Responder(), callerid=c, uniqueid=f"pg.{c}")
                 for c in NEW_CALLERS]
        for peer in peers:  # all at once
            reactor.connectTCP("127.0.0.1", port.getHost().port, AGIPeerFactory(lambda peer=peer: peer))
        loop.run_until_complete(asyncio.wait_for(asyncio.gather(*(p.done.asFuture(loop) for p in peers)), 30))
        answers = [_variables(p) for p in peers]
        assert all(a and a["CC_TIER"] == "prospect" and a["CC_CUSTOMER_ID"] for a in answers), answers
        assert len({a["CC_CUSTOMER_ID"] for a in answers if a}) == 50
        assert _reasons() == before
    finally:
        loop.run_until_complete(asyncio.wait_for(routing.stop(), 15))
        loop.run_until_complete(asyncio.wait_for(port.stopListening().asFuture(loop), 2))
        factory.stop_watching()
        pool.stop()
        loop.close()
        engine.dispose()
