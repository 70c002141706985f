"""Reading back what happened: recorded calls with their routing decision, and one decision with its calls
(blocking SQL; call through the thread pool). Serves ``GET /api/calls`` and ``GET /api/decisions/{id}``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ccserver.db.models import Call, RoutingDecision, SurveyResult, User

MAX_LIMIT = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def decision_json(d: RoutingDecision) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id, "made_at": _iso(d.made_at), "server": d.server, "uniqueid": d.uniqueid,
        "caller": d.caller_e164 or d.caller_raw, "dialed": d.dialed, "customer_id": d.customer_id, "tier": d.tier,
        "queue": d.queue, "priority": d.priority, "preferred_agent_interface": d.preferred_agent_interface,
        "ewt_seconds": d.ewt_seconds, "callback_offer": d.callback_offer, "fallback": d.fallback,
        "latency_ms": d.latency_ms, "reasons": list(d.reasons or []), "variables": dict(d.variables or {}),
    }


def call_json(c: Call, decision: RoutingDecision | None, agent: str | None) -> dict[str, Any]:
    return {
        "id": c.id, "server": c.server, "uniqueid": c.uniqueid, "linkedid": c.linkedid, "direction": c.direction,
        "caller": c.caller_e164 or c.caller_raw, "dialed": c.dialed, "customer_id": c.customer_id, "queue": c.queue,
        "agent": agent, "agent_interface": c.agent_interface, "entered_at": _iso(c.entered_at),
        "answered_at": _iso(c.answered_at), "ended_at": _iso(c.ended_at), "wait_seconds": c.wait_seconds,
        "talk_seconds": c.talk_seconds, "outcome": c.outcome, "disposition": c.disposition,
        "recording": f"/api/recordings/{c.id}" if c.recording_path else None,
        "decision": None if decision is None else {
            "decision_id": decision.decision_id, "queue": decision.queue, "tier": decision.tier,
            "priority": decision.priority, "fallback": decision.fallback, "reasons": list(decision.reasons or []),
        },
    }


class CallHistory:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._sessions = session_factory

    def calls(self, *, start: datetime | None, end: datetime | None, customer_id: int | None, queue: str | None,
              limit: int, offset: int) -> dict[str, Any]:
        """Recorded calls, newest first, with the decision that routed each (by decision id)."""
        conditions = []
        if start is not None:
            conditions.append(Call.entered_at >= start)
        if end is not None:
            conditions.append(Call.entered_at < end)
        if customer_id is not None:
            conditions.append(Call.customer_id == customer_id)
        if queue is not None:
            conditions.append(Call.queue == queue)
        where = and_(*conditions) if conditions else None
        with self._sessions() as s:
            count = select(func.count()).select_from(Call)
            stmt = (select(Call, RoutingDecision, User.username)
                    .outerjoin(RoutingDecision, RoutingDecision.decision_id == Call.decision_id)
                    .outerjoin(User, User.id == Call.agent_id)
                    .order_by(Call.entered_at.desc(), Call.id.desc()).limit(min(limit, MAX_LIMIT)).offset(offset))
            if where is not None:
                count, stmt = count.where(where), stmt.where(where)
            total = s.scalar(count) or 0
            rows = [call_json(c, d, agent) for c, d, agent in s.execute(stmt)]
        return {"calls": rows, "total": total}

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        """One routing decision with the call(s) it routed and the caller's survey score."""
        with self._sessions() as s:
            d = s.get(RoutingDecision, decision_id)
            if d is None:
                return None
            calls = [call_json(c, None, agent) for c, agent in s.execute(
                select(Call, User.username).outerjoin(User, User.id == Call.agent_id)
                .where(Call.decision_id == decision_id).order_by(Call.entered_at))]
            surveys = [{"score": r.score, "at": _iso(r.at)} for r in s.scalars(
                select(SurveyResult).where(SurveyResult.decision_id == decision_id).order_by(SurveyResult.at))]
        return {**decision_json(d), "calls": calls, "surveys": surveys}
