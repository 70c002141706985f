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


def test_decisions_written_once_with_known_customers_only(db_url: str) -> None:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        s.add(Customer(id=7, kind="person", name="张伟"))
        s.commit()
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
