"""What supervisors see of calls over the API (roles supervisor and admin):

- ``GET /api/calls?live=1[&queue=]`` — calls in progress now (from the live state): state, queue, position,
  priority, wait so far, agent, decision id, customer;
- ``GET /api/calls?from=&to=&customer_id=&queue=&limit=&offset=`` — recorded calls, newest first, each with the
  routing decision that sent it (``from``/``to``: ISO dates or date-times, UTC when no offset is given);
- ``GET /api/decisions/{id}`` — one routing decision: its reasons, the variables the dialplan got, the calls.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ccserver.callrouting.history import MAX_LIMIT, CallHistory
from ccserver.state.model import CallState
from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response
from ccserver.web.moments import bounded

ROLES = ("supervisor",)
DECISION_ID = re.compile(r"^[a-z2-7]{16}$")
QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")


def _when(text: str | None, name: str, *, end: bool = False) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        if len(text) == 10:
            day = bounded(date.fromisoformat(text), name)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment  # "to=2026-12-01" includes that day
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPError(400, T("{name} must be an ISO date (2026-12-01) or date-time", name=name), field=name) from None
    bounded(value, name)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _int(req: Req, name: str, default: int, low: int, high: int) -> int:
    raw = req.arg(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPError(400, T("{name} must be an integer from {low} to {high}", name=name, low=low, high=high),
                        field=name)
    return int(raw)


def _epoch(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value else None


def live_call_json(call: Any, now: float) -> dict[str, Any]:
    waiting = call.state in (CallState.QUEUED, CallState.RINGING) and call.queue_joined_at is not None
    return {
        "server": call.server, "uniqueid": call.uniqueid, "linkedid": call.linkedid, "state": call.state,
        "direction": call.direction, "caller": call.caller_number, "caller_name": call.caller_name,
        "dialed": call.dialed_number, "customer_id": call.customer_id, "decision_id": call.decision_id,
        "queue": call.queue, "position": call.position, "priority": call.priority,
        "ringing": call.ringing_interface, "agent_interface": call.agent_interface, "agent_name": call.agent_name,
        "entered_at": _epoch(call.entered_at), "answered_at": _epoch(call.answered_at),
        "wait_seconds": round(now - call.queue_joined_at, 1) if waiting else call.wait_seconds,
    }


class CallRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/api/calls", self.calls, access="api", roles=ROLES)
        router.add("GET", "/api/decisions/{id}", self.decision, access="api", roles=ROLES)

    def _history(self) -> CallHistory:
        if self.ctx.session_factory is None:
            raise HTTPError(503, T("call history not configured"))
        return CallHistory(self.ctx.session_factory)

    async def calls(self, req: Req) -> Response:
        queue = req.arg("queue")
        if queue is not None and not QUEUE.match(queue):
            raise HTTPError(400, T("queue must be a queue name"), field="queue")
        live = req.arg("live")
        if live not in (None, "0", "1", "true", "false"):
            raise HTTPError(400, T("live must be 1 or 0"), field="live")
        if live in ("1", "true"):
            tracker = self.ctx.tracker
            now = time.time()
            calls = [] if tracker is None else [
                live_call_json(c, now) for c in sorted(tracker.iter_calls(), key=lambda c: c.entered_at)
                if queue is None or c.queue == queue]
            return json_response({"calls": calls, "total": len(calls), "live": True})
        start, end = _when(req.arg("from"), "from"), _when(req.arg("to"), "to", end=True)
        if start is not None and end is not None and end <= start:
            raise HTTPError(400, T("to must be after from"), field="to")
        raw_customer = req.arg("customer_id")
        if raw_customer is not None and not (raw_customer.isascii() and raw_customer.isdigit()):
            raise HTTPError(400, T("customer_id must be a customer number"), field="customer_id")
        limit = _int(req, "limit", 100, 1, MAX_LIMIT)
        offset = _int(req, "offset", 0, 0, 10_000_000)
        found = await self.ctx.run_blocking(self._history().calls, start=start, end=end,
                                            customer_id=int(raw_customer) if raw_customer else None, queue=queue,
                                            limit=limit, offset=offset)
        return json_response(found)

    async def decision(self, req: Req) -> Response:
        decision_id = req.path_params["id"]
        if not DECISION_ID.match(decision_id):
            raise HTTPError(404, T("no such decision"))
        found = await self.ctx.run_blocking(self._history().decision, decision_id)
        if found is None:
            raise HTTPError(404, T("no such decision"))
        return json_response(found)
