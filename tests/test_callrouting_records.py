"""The routing record sink on SQLite and PostgreSQL: decisions and surveys land once, whatever the retries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ccserver.callrouting.records import routing_record_sink, survey_record
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Base, Customer, RoutingDecision, SurveyResult

T0 = 1_795_000_000.0


def _decision(decision_id: str, customer_id: str | None, **extra: Any) -> dict[str, Any]:
    return {"kind": "decision", "decision_id": decision_id, "made_at": T0, "server": "pbx1",
            "uniqueid": f"u.{decision_id}", "caller_raw": "13800138000", "caller_e164": "+8613800138000",
            "dialed": "4008001000",
            "customer_id": customer_id, "tier": "gold", "queue": "vip", "priority": 8,
            "preferred_agent_interface": None, "ewt_seconds": 30, "callback_offer": False, "fallback": False,
            "latency_ms": 0.42, "reasons": ["tier gold", "open"], "variables": {"CC_QUEUE": "vip"},
            **extra}  # fmt: skip


def database_with_customer_7(url: str) -> tuple[Any, Any]:
    """The schema on ``url`` with one customer, id 7: (engine, session factory)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        s.add(Customer(id=7, kind="person", name="张伟"))
        s.commit()
    return engine, sessions


def test_decisions_written_once_with_known_customers_only(db_url: str) -> None:
    engine, sessions = database_with_customer_7(db_url)
    sink = routing_record_sink(sessions)
    first = [_decision("d1", "7"), _decision("d2", "999"), _decision("d3", None), _decision("d4", "P-1")]
    sink(first)
    # A retried batch (its COMMIT reply was lost) that also carries new records: nothing twice, nothing lost.
    survey = survey_record(decision_id="d1", uniqueid="u.d1", server="pbx1", score=4, at=T0 + 60)
    sink([*first, _decision("d5", "7", fallback=True), survey])
    sink([survey])
    with sessions() as s:
        rows = {r.decision_id: r for r in s.scalars(select(RoutingDecision))}
        assert sorted(rows) == ["d1", "d2", "d3", "d4", "d5"]
        assert {k: r.customer_id for k, r in rows.items()} == {"d1": 7, "d2": None, "d3": None, "d4": None, "d5": 7}
        d1 = rows["d1"]
        assert d1.made_at.timestamp() == T0 and d1.reasons == ["tier gold", "open"]
        assert d1.variables == {"CC_QUEUE": "vip"} and d1.priority == 8 and d1.latency_ms == 0.42
        assert d1.fallback is False and rows["d5"].fallback is True and d1.uniqueid == "u.d1"
        assert s.scalar(select(func.count()).select_from(SurveyResult)) == 1
    engine.dispose()


HOSTILE = 'a\tb\nc\rd\\e\x00f "g" 张'


def test_hostile_text_lands_as_sent_less_nul(db_url: str) -> None:
    """Caller-controlled text with COPY's own separators and escapes: stored exactly — text columns less NUL
    (PostgreSQL text cannot hold it), JSON with it escaped — whether the COPY row was made on the loop
    (record_submitter) or in the sink."""
    from ccserver.callrouting.records import decision_record, record_submitter
    from routing.decision import Decision

    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    submitted: list[dict[str, Any]] = []

    class Batcher:
        def submit(self, record: dict[str, Any]) -> None:
            submitted.append(record)

    submit = record_submitter(Batcher(), engine.dialect.name)  # type: ignore[arg-type]
    for decision_id in ("h1", "h2"):
        decision = Decision(decision_id=decision_id, queue="sales", priority=3, queue_timeout=300, max_penalty=0,
                            reasons=["why " + HOSTILE])
        submit(decision_record(decision, {"CC_QUEUE": "sales", "X": HOSTILE}, made_at=T0, server="pbx1",
                               uniqueid="u\x00" + decision_id, caller_raw=HOSTILE, caller_e164=None, dialed=HOSTILE,
                               fallback=False, latency_ms=1e-05))
    assert ("copy_row" in submitted[0]) == (engine.dialect.name == "postgresql")
    submitted[1].pop("copy_row", None)  # the other one's row is made by the sink itself
    routing_record_sink(sessions)(submitted)
    clean = HOSTILE.replace("\x00", "")
    with sessions() as s:
        rows = {r.decision_id: r for r in s.scalars(select(RoutingDecision))}
        assert sorted(rows) == ["h1", "h2"]
        for decision_id, row in rows.items():
            assert row.caller_raw == clean and row.dialed == clean[:32] and row.uniqueid == "u" + decision_id
            assert row.reasons == ["why " + HOSTILE] and row.variables == {"CC_QUEUE": "sales", "X": HOSTILE}
            assert row.caller_e164 is None and row.customer_id is None and row.latency_ms == 0.0
            assert row.made_at.timestamp() == T0 and row.queue == "sales" and row.priority == 3
    engine.dispose()


def test_encoded_batch_with_a_deleted_customer_still_lands(db_url: str) -> None:
    """A customer deleted between the call and the write fails the COPY (foreign key): the INSERT path stores
    the batch, that decision without a customer."""
    from ccserver.callrouting.records import copy_row

    engine, sessions = database_with_customer_7(db_url)
    batch = [_decision("e1", "7"), _decision("e2", "8")]
    for record in batch:
        record["copy_row"] = copy_row(record)
    routing_record_sink(sessions)(batch)
    with sessions() as s:
        assert {r.decision_id: r.customer_id for r in s.scalars(select(RoutingDecision))} == {"e1": 7, "e2": None}
    engine.dispose()


def test_copy_row_is_in_column_order_with_plain_values() -> None:
    from ccserver.callrouting.records import COPY_COLUMNS, COPY_TYPES, copy_row

    row = copy_row(_decision("c1", None, caller_raw=HOSTILE))
    assert len(row) == len(COPY_COLUMNS) == len(COPY_TYPES)
    by_name = dict(zip(COPY_COLUMNS, row, strict=True))
    assert by_name["caller_raw"] == HOSTILE  # as sent: psycopg does the escaping (the sink test reads it back)
    assert by_name["customer_id"] is None and by_name["callback_offer"] is False
    assert by_name["made_at"].timestamp() == T0 and by_name["reasons"].startswith("[")
