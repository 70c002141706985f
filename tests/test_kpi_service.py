"""The KPI service: the hub subscriber and the interval job, on an injected clock (no test sleeps), with real SQL
(SQLite and PostgreSQL) and, for several nodes, real Redis."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from ccserver.clock import ManualClock
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.events import CallUpdated, EventHub
from ccserver.kpi import KpiSettings
from ccserver.kpi.service import KpiService, inbox_key, live_key
from ccserver.kpi.store import KpiStore
from ccserver.state import StateTracker
from tests.test_kpi_book import T0, TZ, _seq, agent, answered, offered, resynced
from tests.test_state_support import timed_messages

BUSY = timed_messages("ami-inbound-load-40-calls")
BUSY_START = BUSY[0][1]


@pytest.fixture
def store(db_url: str) -> Any:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield KpiStore(session_factory(engine))
    engine.dispose()


async def thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def service(store: KpiStore | None, clock: ManualClock, **kw: Any) -> KpiService:
    return KpiService(KpiSettings(time_zone=TZ), store=store, run_blocking=kw.pop("run_blocking", thread),
                      clock=clock, servers=["default"], **kw)


async def deliver(kpi: KpiService, event: Any) -> None:
    """Hand one event to the subscriber as the hub does (its handler returns a coroutine only when it must wait)."""
    pending = kpi.on_event(event)
    if pending is not None:
        await pending


async def until(condition: Any, what: str) -> None:
    """Poll (the handlers await SQL in a thread): a bounded wait for a condition, never a fixed sleep."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def drained(hub: EventHub, kpi: KpiService) -> None:
    """Every event published so far has been handled by the KPI subscriber."""
    sub = next(s for s in hub.subscriptions if s.name == "kpi")
    await until(lambda: not sub.queue and sub.delivered > 0 and not kpi._loading.locked(), "the hub to drain")
    for _ in range(5):
        await asyncio.sleep(0)


def queue_rows(store: KpiStore, queue: str = "bulk") -> list[dict]:
    return [r for r in store.day_rows("default", "2026-11-22") + store.day_rows("default", "2026-11-23")
            if r["kind"] == "queue" and r["queue"] == queue]


def test_the_busy_hour_through_the_hub_lands_in_sql_at_the_interval_end_and_survives_a_restart(store):
    async def main() -> tuple[dict, dict, list, list]:
        clock = ManualClock(BUSY_START)
        hub = EventHub()
        tracker = StateTracker(publish=hub.publish)
        kpi = service(store, clock, tracker=tracker)
        kpi.subscribe(hub)
        hub.start()
        await kpi.start()
        for msg, t in BUSY:
            tracker.handle(msg, t)
        await drained(hub, kpi)
        live = (await kpi.live(tracker.now))[0]["queues"]["bulk"]
        assert queue_rows(store) == []  # the interval is still open
        book = kpi.books["default"]
        await clock.advance(book.end - clock.time() + 1.5)  # the job wakes after the quarter hour (and a grace)
        await until(lambda: queue_rows(store), "the interval's row in SQL")  # written in a worker thread
        written = queue_rows(store)
        await kpi.stop()
        await hub.stop()
        # A restart: a new service, hub and tracker; the AMI reconnects and resyncs.
        hub2, clock2 = EventHub(), ManualClock(clock.time() + 60)
        tracker2 = StateTracker(publish=hub2.publish)
        again = service(store, clock2, tracker=tracker2)
        again.subscribe(hub2)
        hub2.start()
        tracker2.resync("default", [], [], clock2.time())
        await until(lambda: "default" in again.books, "the book to be read back from SQL")
        after = (await again.live(clock2.time()))[0]["queues"]["bulk"]
        await hub2.stop()
        return live, after, written, queue_rows(store)

    live, after, written, final = asyncio.run(main())
    assert (live["today"]["offered"], live["today"]["answered"], live["today"]["abandoned"]) == (40, 26, 14)
    (row,) = written
    assert (row["offered"], row["answered"], row["abandoned"], row["handled"]) == (40, 26, 14, 26)
    assert after["today"] == live["today"]  # yesterday's and this morning's figures survive the restart
    assert after["interval"]["offered"] == 0
    assert final == written  # the stop wrote nothing more for a closed interval


def test_a_restart_within_an_interval_completes_its_row_and_never_adds_to_it(store):
    async def main() -> tuple[list[dict], list[dict]]:
        clock = ManualClock(T0 + 10)
        first = service(store, clock)
        for event in (offered("a", T0 + 1), answered("a", T0 + 5, 4.0), offered("b", T0 + 6)):
            await deliver(first, event)
        await first.stop()  # the open interval's rows are written, partial
        partial = queue_rows(store, "sales")
        clock = ManualClock(T0 + 100)
        second = service(store, clock)
        # b is gone: it hung up while ccserver was down (without Redis its visit was not kept: not counted).
        await deliver(second, resynced(T0 + 100))
        await deliver(second, offered("c", T0 + 110))
        await deliver(second, answered("c", T0 + 120, 10.0))
        await second.roll(T0 + 901)
        return partial, queue_rows(store, "sales")

    (partial,), (final,) = asyncio.run(main())
    assert (partial["offered"], partial["answered"]) == (1, 1)
    assert (final["offered"], final["answered"], final["unanswered"]) == (2, 2, 0)


def test_rows_sql_refuses_stay_pending_and_are_written_at_the_next_interval_end(store):
    failing = {"on": True}

    async def flaky(fn: Any, *args: Any) -> Any:
        if failing["on"] and fn == store.write:
            raise OSError("database is down")
        return await thread(fn, *args)

    async def main() -> tuple[int, list]:
        clock = ManualClock(T0)
        kpi = service(store, clock, run_blocking=flaky)
        await deliver(kpi, offered("a", T0 + 1))
        await deliver(kpi, answered("a", T0 + 2, 1.0))
        assert await kpi.roll(T0 + 901) == 0
        pending = len(kpi.books["default"].pending)
        failing["on"] = False
        await deliver(kpi, offered("b", T0 + 902))
        await deliver(kpi, answered("b", T0 + 903, 1.0))
        await kpi.roll(T0 + 1801)
        return pending, queue_rows(store, "sales")

    pending, rows = asyncio.run(main())
    assert pending == 1
    assert [(r["interval_start"], r["offered"]) for r in rows] == [(T0, 1), (T0 + 900, 1)]


def test_a_caller_who_left_the_queue_drops_off_the_waiting_list():
    class Tracker:
        state = "queued"

        def call(self, uniqueid: str, server: str) -> Any:
            return SimpleNamespace(state=self.state, queue="sales")

        def queue(self, name: str, server: str) -> Any:
            return None

    async def main() -> list[int]:
        tracker = Tracker()
        kpi = service(None, ManualClock(T0), tracker=tracker)
        await deliver(kpi, offered("a", T0))
        waiting = []
        for state in ("queued", "ringing", "ivr"):
            tracker.state = state
            await deliver(kpi, CallUpdated("default", next(_seq), T0 + 1, "a"))
            waiting.append((await kpi.live(T0 + 2))[0]["queues"]["sales"]["waiting"])
        return waiting

    assert asyncio.run(main()) == [1, 1, 0]


def test_leader_only_counts_followers_read_redis_and_a_new_leader_continues(redis_url):
    async def main() -> dict[str, Any]:
        redis = aioredis.Redis.from_url(redis_url)
        clock = ManualClock(T0 + 30)
        a_leads: set[str] = {"default"}
        b_leads: set[str] = set()
        a = service(None, clock, redis=redis, leading=a_leads)
        b = service(None, clock, redis=redis, leading=b_leads)
        events = [agent("idle", T0, "logged_out"), offered("x", T0 + 1), answered("x", T0 + 3, 2.0),
                  offered("y", T0 + 4)]
        for event in events:  # every node's hub sees every event; only the leader counts
            await deliver(a, event)
            await deliver(b, event)
        assert "default" not in b.books
        await b.callback_requested("default", "sales", T0 + 5)  # a FastAGI call on the follower
        await a.publish_live()  # counts the follower's callback note, writes the book
        seen_by_b = (await b.live(T0 + 30))[0]["queues"]["sales"]
        # The lease moves to b (a died, say); b continues from what a wrote.
        a_leads.discard("default")
        b_leads.add("default")
        later = [answered("y", T0 + 40, 36.0)]
        for event in later:
            await deliver(a, event)
            await deliver(b, event)
        assert "default" not in a.books
        await b.publish_live()
        raw = await redis.get(live_key("default"))
        inbox = await redis.llen(inbox_key("default"))
        final = (await a.live(T0 + 50))[0]["queues"]["sales"]
        await redis.aclose()
        return {"seen_by_b": seen_by_b, "final": final, "state": json.loads(raw), "inbox": inbox}

    got = asyncio.run(main())
    seen = got["seen_by_b"]
    assert (seen["today"]["offered"], seen["today"]["answered"], seen["today"]["callbacks"], seen["waiting"]) == (
        1, 1, 1, 1)
    final = got["final"]
    assert (final["today"]["offered"], final["today"]["answered"], final["waiting"]) == (2, 2, 0)
    assert final["today"]["callbacks"] == 1 and got["inbox"] == 0
    assert got["state"]["server"] == "default"


def test_the_job_wakes_each_quarter_hour_and_writes_the_live_figures(store, redis_url):
    async def main() -> tuple[list, bool, bool]:
        redis = aioredis.Redis.from_url(redis_url)
        clock = ManualClock(T0 + 890)
        kpi = service(store, clock, redis=redis, leading={"default"})
        await kpi.start()
        await deliver(kpi, offered("a", T0 + 891))
        before = await redis.exists(live_key("default"))
        await clock.advance(2.0)
        written = await redis.exists(live_key("default"))
        await deliver(kpi, answered("a", T0 + 895, 4.0))
        await clock.advance(20.0)  # past 09:15 and the grace: the first interval's row is in SQL
        await until(lambda: queue_rows(store, "sales"), "the interval's row in SQL")
        rows = queue_rows(store, "sales")
        await kpi.stop()
        await redis.aclose()
        return rows, bool(before), bool(written)

    rows, before, written = asyncio.run(main())
    assert not before and written  # live figures reach Redis within a write period
    assert [(r["interval_start"], r["offered"], r["answered"]) for r in rows] == [(T0, 1, 1)]


def test_without_a_book_nothing_is_shown_and_unknown_redis_state_is_ignored(redis_url):
    async def main() -> list:
        redis = aioredis.Redis.from_url(redis_url)
        await redis.set(live_key("default"), b"{not json")
        kpi = service(None, ManualClock(T0), redis=redis, leading=set())
        shown = await kpi.live(T0)
        await redis.aclose()
        return shown

    assert asyncio.run(main()) == []
