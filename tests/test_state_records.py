"""Call records and the write-behind batcher: batching, interval flush, retries, bounded memory, SQL sink."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ccserver.clock import ManualClock
from ccserver.state import RecordBatcher, StateTracker, sql_sink
from ccserver.state.records import RECORD_FIELDS
from tests.test_state_support import records_to, replay


def recs(n: int, start: int = 0) -> list[dict]:
    return [{"uniqueid": f"u{i}"} for i in range(start, start + n)]


class FlakySink:
    def __init__(self, failures: int = 0):
        self.failures = failures
        self.calls = 0
        self.batches: list[list[dict]] = []
        self.down = False

    async def __call__(self, batch: list[dict]) -> None:
        self.calls += 1
        if self.down or self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        self.batches.append(list(batch))

    @property
    def written(self) -> list[str]:
        return [r["uniqueid"] for b in self.batches for r in b]


def test_flush_writes_in_batches_of_batch_size():
    async def main():
        sink = FlakySink()
        batcher = RecordBatcher(sink, batch_size=10, interval=60)
        for r in recs(25):
            batcher.submit(r)
        await batcher.flush()
        assert [len(b) for b in sink.batches] == [10, 10, 5]
        assert sink.written == [f"u{i}" for i in range(25)]
        assert (batcher.written, batcher.pending, batcher.batches) == (25, 0, 3)

    asyncio.run(main())


def test_a_written_batch_is_freed_a_slice_per_loop_turn_and_a_sink_may_keep_its_list():
    """Freeing a large written batch at once held the loop for a millisecond: it goes RELEASE_STEP records a turn."""
    from ccserver.state.records import RELEASE_STEP

    turns = 0
    freed_at: list[int] = []

    class Record(dict):
        def __del__(self) -> None:
            freed_at.append(turns)

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    kept: list[list[dict]] = []

    async def keep(batch: list[dict]) -> None:
        kept.append(batch)

    async def main():
        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        batcher = RecordBatcher(keep, batch_size=1000, interval=60)
        for i in range(3 * RELEASE_STEP + 50):
            batcher.submit(Record(uniqueid=f"u{i}"))
        await batcher.flush()
        assert freed_at == []  # the sink kept its list: nothing freed, nothing emptied
        assert len(kept[0]) == 3 * RELEASE_STEP + 50

        async def forget(batch: list[dict]) -> None:
            assert len(batch) == 3 * RELEASE_STEP + 50

        batcher.sink, batcher._async_sink = forget, True
        kept.clear()  # the kept records die here, at once: start over with records only the batcher holds
        freed_at.clear()
        for i in range(3 * RELEASE_STEP + 50):
            batcher.submit(Record(uniqueid=f"v{i}"))
        await batcher.flush()
        tick.cancel()
        assert len(freed_at) == 3 * RELEASE_STEP + 50  # all freed once flush() returned
        per_turn = [freed_at.count(t) for t in sorted(set(freed_at))]
        assert max(per_turn) <= RELEASE_STEP and len(per_turn) >= 4

    asyncio.run(main())


def test_interval_flush_and_size_trigger():
    async def main():
        clock = ManualClock()
        sink = FlakySink()
        batcher = RecordBatcher(sink, batch_size=5, interval=1.0, clock=clock)
        batcher.start()
        for r in recs(3):
            batcher.submit(r)
        await clock.advance(0.99)
        assert sink.written == []  # a partial batch waits for the interval
        await clock.advance(0.01)
        assert sink.written == ["u0", "u1", "u2"]  # the interval flushed a partial batch
        slow = RecordBatcher(sink, batch_size=5, interval=30, clock=clock)
        slow.start()
        await clock.advance(0)  # let its loop start waiting
        for r in recs(5, 100):
            slow.submit(r)
        await clock.advance(0)
        assert sink.written[-5:] == [f"u{i}" for i in range(100, 105)]  # a full batch does not wait 30 s
        assert await batcher.close() == 0 and await slow.close() == 0

    asyncio.run(main())


def test_a_steady_stream_is_written_in_full_batches():
    """Records arriving while a batch is being written wait for the next batch: a slow sink under a steady
    stream must not degrade into one transaction per record or two."""

    async def main():
        clock = ManualClock()
        batches: list[int] = []

        async def slow_sink(batch: list[dict]) -> None:
            batches.append(len(batch))
            await clock.sleep(0.005)  # a transaction's time: records keep arriving meanwhile

        batcher = RecordBatcher(slow_sink, batch_size=50, interval=30, clock=clock)
        batcher.start()
        for r in recs(300):
            batcher.submit(r)
            await clock.advance(0.0005)
        await clock.advance(0.01)
        assert batcher.pending == 0  # the full batches were written without waiting for the 30 s interval
        assert await batcher.close() == 0
        assert sum(batches) == 300 and batcher.written == 300
        assert batches[:-1] == [50] * (len(batches) - 1)  # only the shutdown flush may be partial
        assert len(batches) <= 7

    asyncio.run(main())


def test_failing_sink_is_retried_and_nothing_is_lost():
    async def main():
        clock = ManualClock()
        sink = FlakySink(failures=3)
        batcher = RecordBatcher(sink, batch_size=4, interval=1.0, retry_initial=0.5, retry_max=2.0, clock=clock)
        batcher.start()
        for r in recs(10):
            batcher.submit(r)
        await clock.advance(0)
        assert (sink.calls, batcher.written) == (1, 0)  # the first full batch failed: retried in 0.5 s
        await clock.advance(0.5 + 1.0)  # then 1 s later (backoff doubles)
        assert (sink.calls, batcher.written) == (3, 0)
        await clock.advance(2.0)  # capped at 2 s: the fourth try writes both full batches
        assert batcher.written == 8
        await clock.advance(1.0)  # and the interval the partial one
        assert sink.written == [f"u{i}" for i in range(10)]  # in order, each exactly once
        assert batcher.failures == 3 and batcher.dropped == 0
        assert await batcher.close() == 0

    asyncio.run(main())


def test_buffer_is_bounded_while_the_sink_is_down():
    async def main():
        clock = ManualClock()
        sink = FlakySink()
        sink.down = True
        batcher = RecordBatcher(sink, batch_size=5, max_buffer=20, interval=1.0, retry_initial=0.5, retry_max=1.0,
                                clock=clock)
        batcher.start()
        for r in recs(100):
            batcher.submit(r)
            await asyncio.sleep(0)
        await clock.advance(5.0)
        assert batcher.pending == 20 + 5  # the buffer plus the one batch being retried
        assert batcher.dropped == 100 - batcher.pending
        sink.down = False
        await clock.advance(1.0)  # the next retry writes the batch in flight, then the whole buffer
        assert not batcher.pending
        assert batcher.written + batcher.dropped == batcher.submitted == 100
        assert sink.written[-1] == "u99"  # the newest survive, the oldest were dropped
        await batcher.close()

    asyncio.run(main())


def test_sync_sink_runs_in_a_worker_thread_and_close_flushes():
    async def main():
        seen: list[tuple[int, int]] = []

        def blocking_sink(batch: list[dict]) -> None:
            seen.append((threading.get_ident(), len(batch)))

        batcher = RecordBatcher(blocking_sink, batch_size=100, interval=30)
        batcher.start()
        for r in recs(7):
            batcher.submit(r)
        assert await batcher.close() == 0  # shutdown flushes the partial batch
        assert [n for _, n in seen] == [7]
        assert seen[0][0] != threading.get_ident()

    asyncio.run(main())


def test_close_gives_up_after_shutdown_timeout():
    async def main():
        sink = FlakySink()
        sink.down = True
        batcher = RecordBatcher(sink, batch_size=5, interval=30, retry_initial=0.01, shutdown_timeout=0.1)
        for r in recs(3):
            batcher.submit(r)
        assert await batcher.close() == 3  # reported, not hung

    asyncio.run(main())


def test_call_record_shape():
    records: list[dict] = []
    replay(StateTracker(publish=records_to(records.append)), "ami-inbound-vip-answered")
    assert tuple(records[0]) == RECORD_FIELDS
    for name in (
        "uniqueid",
        "linkedid",
        "server",
        "direction",
        "caller_number",
        "dialed_number",
        "customer_id",
        "queue",
        "agent_interface",
        "entered_at",
        "answered_at",
        "ended_at",
        "wait_seconds",
        "talk_seconds",
        "outcome",
        "decision_id",
    ):
        assert name in records[0]


def test_tracker_to_batcher_to_sql(db_url):
    import sqlalchemy as sa

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.models import Base
    from ccserver.db.models import Call as CallRow

    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sink = sql_sink(session_factory(engine))

    async def main():
        batcher = RecordBatcher(sink, batch_size=2, interval=0.01)
        batcher.start()
        tracker = StateTracker(publish=records_to(batcher.submit))
        for name in ("ami-inbound-vip-answered", "ami-inbound-abandoned", "ami-inbound-hangup-during-ivr"):
            replay(tracker, name)
        assert await batcher.close() == 0

    asyncio.run(main())
    with engine.connect() as conn:
        rows = {r.uniqueid: r for r in conn.execute(sa.select(CallRow)) if r.server == "default"}
    assert {r.outcome for r in rows.values()} == {"answered", "abandoned", "ivr_hangup"}
    vip = rows["1795416921.0"]
    assert (vip.queue, vip.agent_interface, vip.dialed, vip.caller_raw) == (
        "vip",
        "Local/8001@agent-phones/n",
        "4008001000",
        "13800138000",
    )
    assert vip.talk_seconds == pytest.approx(3.5, abs=0.1)
    assert vip.customer_id is None  # 'C000042' is not a customers.id
    # A retried batch that had in fact been committed is not written twice.
    records: list[dict] = []
    replay(StateTracker(publish=records_to(records.append)), "ami-inbound-vip-answered")
    sink(records)
    other = [dict(records[0], server="pbx-b")]
    sink(other)  # same uniqueid from another Asterisk: kept apart
    sink(other)  # ...and idempotent too
    with engine.connect() as conn:
        keys = sorted((s, u) for s, u in conn.execute(sa.select(CallRow.server, CallRow.uniqueid)))
    assert keys == [("default", "1795416921.0"), ("default", "1795416944.10"), ("default", "1795416954.12"),
                    ("pbx-b", "1795416921.0")]
    engine.dispose()


def test_a_record_submitted_after_close_is_an_error_never_a_silent_drop(caplog: pytest.LogCaptureFixture):
    async def main():
        sink = FlakySink()
        batcher = RecordBatcher(sink, batch_size=10, interval=30)
        batcher.start()
        batcher.submit({"uniqueid": "u0"})
        assert await batcher.close() == 0
        batcher.submit({"kind": "decision", "decision_id": "abcdefghijklmnop", "uniqueid": "1795416921.7\x1b"})
        assert batcher.refused == 1 and batcher.pending == 0 and sink.written == ["u0"]

    asyncio.run(main())
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert error.getMessage() == ("a decision record was submitted after its writer closed and is NOT written "
                                  "(id abcdefghijklmnop, uniqueid 1795416921.7\\x1b)")


def test_records_without_channel_variables_take_the_decision_from_the_decision_log(db_url):
    """manager.conf without channelvars and VarSet filtered at the source: the events carry no CC_* variables.
    The record still gets the routing decision (by uniqueid), its customer and DID; a call that ended in the
    callback flow (its Hangup runs in extension `h`) never records `h` as the dialled number."""
    import datetime as dt

    import sqlalchemy as sa

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.migrate import upgrade
    from ccserver.db.models import AgentSession, Customer, RoutingDecision, User
    from ccserver.db.models import Call as CallRow
    from tests.replay.transcripts import iter_transcript_messages

    upgrade(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(Customer(id=42, name="张伟", kind="person", lifecycle="customer", language="zh"))
        s.add(User(id=7, username="agent8001", display_name="Wang Fang", role="agent", extension="8001"))
        s.flush()
        s.add(RoutingDecision(decision_id="d" * 16, made_at=dt.datetime.now(dt.UTC), server="default",
                              uniqueid="1795416921.0", customer_id=42, dialed="4008001000", queue="vip"))
        s.add(AgentSession(user_id=7, extension="8001", interface="Local/8001@agent-phones/n", member_name="W",
                           server="default", queues={"vip": 0}, started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    for msg in iter_transcript_messages("ami-inbound-vip-answered"):
        if msg.get("Event") == "VarSet":
            continue  # filtered at the source, and no channelvars: no ChanVariable headers either
        event = {k: v for k, v in msg.items() if k != "ChanVariable"}
        if event.get("Event") == "Hangup" and event.get("Uniqueid") == "1795416921.0":
            event["Exten"] = "h"  # it ended in the dialplan's h extension (e.g. after the callback flow)
        tracker.handle(event)
    [record] = [r for r in records if r["uniqueid"] == "1795416921.0"]
    assert record["decision_id"] is None and record["dialed_number"] != "h"
    sql_sink(sessions)(records)
    with engine.connect() as conn:
        row = conn.execute(sa.select(CallRow).where(CallRow.uniqueid == "1795416921.0")).one()
    assert (row.decision_id, row.customer_id, row.dialed) == ("d" * 16, 42, "4008001000")
    assert row.agent_id == 7  # signed in from the answering phone at the time
    engine.dispose()
