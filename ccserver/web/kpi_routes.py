"""What supervisors see of queues and agents over the API (roles supervisor and admin):

- ``GET /api/queues[?queue=]`` — live: per queue the KPI figures of the open interval and of today, Asterisk's own
  counters, the callers waiting (tier, wait, priority) and the members with their state;
- ``GET /api/agents`` — live: every agent's state, time in state, queues and KPI figures;
- ``GET /api/reports/queues?from=&to=&interval=15m|day&queue=&format=json|csv`` and
  ``GET /api/reports/agents?from=&to=&interval=&queue=&agent=&format=`` — from the interval rows in SQL; a CSV
  export is audited (``report.export``).

A store manager (a supervisor whose user has a store) sees only the queues of their store (``queues.store_id``)
and the agents who served them; other supervisors and admins see every queue. Errors name the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

from ccserver.kpi.intervals import iso_utc, zone
from ccserver.kpi.reports import AGENT_COLUMNS, QUEUE_COLUMNS, agent_report, queue_report, to_csv
from ccserver.kpi.store import KpiStore
from ccserver.kpi.views import LiveViews, visible_queues
from ccserver.texts import Field, T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response
from ccserver.web.moments import bounded

ROLES = ("supervisor",)
QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")
INTERFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/@_.:+\-]{0,79}$")
MAX_DAYS = {"15m": 31, "day": 366}
MAX_ROWS = 100_000
_WAITING = ("queued", "ringing")


def _epoch_iso(value: float | None) -> str | None:
    return iso_utc(value) if value else None


class KpiRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/api/queues", self.queues, access="api", roles=ROLES)
        router.add("GET", "/api/agents", self.agents, access="api", roles=ROLES)
        router.add("GET", "/api/reports/queues", self.queue_report, access="api", roles=ROLES)
        router.add("GET", "/api/reports/agents", self.agent_report, access="api", roles=ROLES)

    # -- who sees what -----------------------------------------------------------------------------------------
    async def _visible_queues(self, req: Req) -> set[str] | None:
        """The queues a store manager may see; None: every queue (admins, supervisors without a store)."""
        return await visible_queues(self.ctx, req.principal)

    def _now(self) -> float:
        return LiveViews.of(self.ctx).now()

    # -- live --------------------------------------------------------------------------------------------------
    async def queues(self, req: Req) -> Response:
        wanted = req.arg("queue")
        if wanted is not None and not QUEUE.match(wanted):
            raise HTTPError(400, T("queue must be a queue name"), field="queue")
        visible = await self._visible_queues(req)
        views = LiveViews.of(self.ctx)
        now = views.now()
        return json_response({"at": iso_utc(now), "queues": await views.queues(now, visible, wanted)})

    async def agents(self, req: Req) -> Response:
        visible = await self._visible_queues(req)
        views = LiveViews.of(self.ctx)
        now = views.now()
        return json_response({"at": iso_utc(now), "agents": await views.agents(now, visible)})

    # -- reports -----------------------------------------------------------------------------------------------
    def _store(self) -> KpiStore:
        if self.ctx.session_factory is None:
            raise HTTPError(503, T("reports need the database"))
        return KpiStore(self.ctx.session_factory)

    def _range(self, req: Req) -> tuple[datetime, datetime, str, str]:
        """[start, end) from ``from``/``to`` (local dates, a ``to`` date included, or ISO date-times), the interval,
        the format."""
        tz = zone(self.ctx.config.server.time_zone)
        interval = req.arg("interval", "day")
        if interval not in MAX_DAYS:
            raise HTTPError(400, T("{field} must be 15m or day", field=Field("interval")), field="interval")
        fmt = req.arg("format", "json")
        if fmt not in ("json", "csv"):
            raise HTTPError(400, T("format must be json or csv"), field="format")
        today = datetime.fromtimestamp(self._now(), tz).date()

        def parse(name: str, default: date, end: bool) -> datetime:
            text = req.arg(name)
            try:
                if text is None or text == "" or len(text) == 10:
                    day = default if not text else bounded(date.fromisoformat(text), name)
                    moment = datetime(day.year, day.month, day.day, tzinfo=tz)
                    return moment + timedelta(days=1) if end else moment  # "to=2026-12-01" includes that day
                value = datetime.fromisoformat(text)
            except ValueError:
                raise HTTPError(400, T("{name} must be a date (2026-12-01) or an ISO date-time", name=Field(name)),
                                field=name) from None
            bounded(value, name)
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)

        start = parse("from", today, False)
        end = parse("to", start.astimezone(tz).date(), True)
        if end <= start:  # a "to" date is included: from=to is that one day
            raise HTTPError(400, T("{later} must be after {earlier}", later=Field("to"), earlier=Field("from")),
                            field="to")
        if end - start > timedelta(days=MAX_DAYS[interval]):
            raise HTTPError(400, T("at most {max_days} days between {earlier} and {later} with {field}={interval}",
                                   max_days=MAX_DAYS[interval], earlier=Field("from"), later=Field("to"),
                                   field=Field("interval"), interval=interval), field="to")
        return start, end, interval, fmt

    def _name(self, req: Req, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = req.arg(name)
        if value is not None and not pattern.match(value):
            raise HTTPError(400, T("{name} must be {what}", name=name, what=what), field=name)
        return value

    async def queue_report(self, req: Req) -> Response:
        start, end, interval, fmt = self._range(req)
        queue = self._name(req, "queue", QUEUE, "a queue name")
        visible = await self._visible_queues(req)
        wanted: Collection[str] | None = visible
        if queue is not None:
            wanted = {queue} & visible if visible is not None else {queue}
        rows = await self.ctx.run_blocking(self._store().queue_rows, start, end, wanted, MAX_ROWS + 1)
        if len(rows) > MAX_ROWS:
            raise HTTPError(400, T("too many rows: name a queue or shorten the range"), field="to")
        report = queue_report(rows, interval, self.ctx.config.server.time_zone)
        return await self._answer(req, "queues", report, QUEUE_COLUMNS, start, end, interval, queue=queue)

    async def agent_report(self, req: Req) -> Response:
        start, end, interval, fmt = self._range(req)
        queue = self._name(req, "queue", QUEUE, "a queue name")
        agent = self._name(req, "agent", INTERFACE, "an agent's interface (PJSIP/8001)")
        visible = await self._visible_queues(req)
        rows = await self.ctx.run_blocking(self._store().agent_rows, start, end, {agent} if agent else None,
                                           MAX_ROWS + 1)
        if len(rows) > MAX_ROWS:
            raise HTTPError(400, T("too many rows: name an agent or shorten the range"), field="to")
        rows = [r for r in rows
                if (queue is None or queue in r["queues"]) and (visible is None or set(r["queues"]) & visible)]
        report = agent_report(rows, interval, self.ctx.config.server.time_zone)
        return await self._answer(req, "agents", report, AGENT_COLUMNS, start, end, interval, queue=queue,
                                  agent=agent)

    async def _answer(self, req: Req, kind: str, report: list[dict[str, Any]], columns: tuple[str, ...],
                      start: datetime, end: datetime, interval: str, **filters: str | None) -> Response:
        tz = self.ctx.config.server.time_zone
        first, last = start.astimezone(zone(tz)), end.astimezone(zone(tz))
        if req.arg("format", "json") != "csv":
            return json_response({"report": kind, "from": first.isoformat(), "to": last.isoformat(),
                                  "interval": interval, "time_zone": tz, "rows": report})
        principal = req.principal
        assert principal is not None
        detail = {"report": kind, "from": first.isoformat(), "to": last.isoformat(), "interval": interval,
                  "rows": len(report), **{k: v for k, v in filters.items() if v is not None}}
        await self.ctx.run_blocking(self.ctx.users.audit, "report.export", principal.user_id, principal.username,
                                    req.client_ip, detail)
        filename = f"ccserver-{kind}-{first.date().isoformat()}-{interval}.csv"
        return Response(200, to_csv(report, columns), "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="{filename}"'})
