"""Decisions into PostgreSQL by COPY on the event loop (the real database, a private schema): what lands, what is
handed to the INSERT path, and a connection that breaks between batches."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy
from sqlalchemy import select

from ccserver.callrouting.copy_writer import LoopCopySink
from ccserver.callrouting.records import copy_row, make_record_batcher, routing_record_sink, survey_record
from ccserver.clock import ManualClock
from ccserver.db.models import RoutingDecision, SurveyResult
from tests.test_callrouting_records import database_with_customer_7

T0 = 1_795_000_000.0


def _decision(decision_id: str, customer_id: str | None = "7") -> dict[str, Any]:
    record = {"kind": "decision", "decision_id": decision_id, "made_at": T0, "server": "pbx1",
              "uniqueid": f"u.{decision_id}", "caller_raw": "13800138000", "caller_e164": "+8613800138000",
              "dialed": "4008001000", "customer_id": customer_id, "tier": "gold", "queue": "vip", "priority": 8,
              "preferred_agent_interface": "PJSIP/8001", "ewt_seconds": None, "callback_offer": True,
              "fallback": False, "latency_ms": 0.42, "reasons": ["tier gold"], "variables": {"CC_QUEUE": "vip"}}
    record["copy_row"] = copy_row(record)
    return record


def _setup(pg_url: str) -> tuple[Any, Any, LoopCopySink]:
    engine, sessions = database_with_customer_7(pg_url)
    return engine, sessions, LoopCopySink.from_engine(engine, routing_record_sink(sessions))


def _rows(sessions: Any) -> dict[str, RoutingDecision]:
    with sessions() as s:
        return {r.decision_id: r for r in s.scalars(select(RoutingDecision))}


def test_batches_land_by_copy_and_refusals_by_insert(pg_url: str) -> None:
    engine, sessions, sink = _setup(pg_url)

    async def scenario() -> None:
        await sink([_decision("a1"), _decision("a2", None)])
        assert (sink.copies, sink.handed_over) == (1, 0)
        # A retried batch that was in fact written, plus a new decision whose customer is gone (FK) and a survey:
        # COPY refuses it, the INSERT path writes each once.
        survey = survey_record(decision_id="a1", uniqueid="u.a1", server="pbx1", score=5, at=T0 + 60)
        await sink([_decision("a1"), _decision("a3", "99"), survey])
        assert (sink.copies, sink.handed_over) == (1, 1)
        await sink.aclose()

    asyncio.run(scenario())
    rows = _rows(sessions)
    assert {k: r.customer_id for k, r in rows.items()} == {"a1": 7, "a2": None, "a3": None}
    a1 = rows["a1"]
    assert a1.made_at.timestamp() == T0 and a1.callback_offer is True and a1.ewt_seconds is None
    assert a1.preferred_agent_interface == "PJSIP/8001" and a1.reasons == ["tier gold"]
    with sessions() as s:
        assert [r.score for r in s.scalars(select(SurveyResult))] == [5]
    engine.dispose()


def test_a_broken_connection_fails_the_batch_and_the_next_attempt_reconnects(pg_url: str) -> None:
    engine, sessions, sink = _setup(pg_url)
    admin = sqlalchemy.create_engine(pg_url)

    async def scenario() -> None:
        await sink([_decision("b1")])
        pid = sink._conn.info.backend_pid
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        try:
            await sink([_decision("b2")])
        except Exception as exc:  # noqa: BLE001 - the batcher would retry this batch
            failed = exc
        else:
            failed = None
        assert failed is not None and sink._conn is None
        await sink([_decision("b2")])  # the batcher's retry: a new connection
        await sink.aclose()

    asyncio.run(scenario())
    assert sorted(_rows(sessions)) == ["b1", "b2"]
    admin.dispose()
    engine.dispose()


def test_the_routing_batcher_on_postgresql_copies_on_the_loop(pg_url: str) -> None:
    engine, sessions, _ = _setup(pg_url)
    clock = ManualClock()
    batcher = make_record_batcher(sessions, batch_size=3, interval=0.05, clock=clock)
    assert isinstance(batcher.sink, LoopCopySink)

    async def written(count: int) -> None:  # the COPY is real I/O on the loop: wait for it, not for a time
        async def until() -> None:
            while batcher.written < count:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(until(), 30)

    async def scenario() -> None:
        batcher.start()
        for i in range(7):
            batcher.submit(_decision(f"c{i}"))
        await written(6)  # two whole batches go at once …
        await clock.advance(0.049)
        assert (batcher.written, batcher.pending) == (6, 1)  # … the last one waits for the interval
        await clock.advance(0.001)
        await written(7)
        assert await batcher.close() == 0
        await batcher.sink.aclose()

    asyncio.run(scenario())
    assert sorted(_rows(sessions)) == [f"c{i}" for i in range(7)]
    assert batcher.sink.copies >= 3 and batcher.sink.handed_over == 0
    engine.dispose()


def test_escapes_and_a_batch_larger_than_a_step_land_as_sent(pg_url: str) -> None:
    engine, sessions, sink = _setup(pg_url)
    hostile = "13800\t138\n000\\x\r张"

    def with_text(decision_id: str, customer_id: str | None = "7") -> dict[str, Any]:
        record = _decision(decision_id, customer_id)
        record["caller_raw"] = hostile
        record["copy_row"] = copy_row(record)
        return record

    async def scenario() -> None:
        await sink([with_text(f"r{i}") for i in range(250)] + [with_text("rn", None)])  # 3 steps of write_row
        await sink.aclose()

    asyncio.run(scenario())
    rows = _rows(sessions)
    assert len(rows) == 251 and {r.caller_raw for r in rows.values()} == {hostile} and rows["rn"].customer_id is None
    assert rows["r1"].made_at.timestamp() == T0 and rows["r1"].reasons == ["tier gold"]
    assert rows["r1"].variables == {"CC_QUEUE": "vip"} and rows["r1"].callback_offer is True
    engine.dispose()
