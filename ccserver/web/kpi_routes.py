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
import time
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ccserver.db.models import Customer, Queue, User
from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, queue_figures
from ccserver.kpi.intervals import iso_utc, zone
from ccserver.kpi.reports import AGENT_COLUMNS, QUEUE_COLUMNS, agent_report, queue_report, to_csv
from ccserver.kpi.store import KpiStore
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response

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
        principal = req.principal
        factory = self.ctx.session_factory
        if principal is None or principal.role != "supervisor" or factory is None:
            return None

        def lookup() -> set[str] | None:
            with factory() as session:
                store_id = session.scalar(select(User.store_id).where(User.id == principal.user_id))
                if store_id is None:
                    return None
                return set(session.scalars(select(Queue.name).where(Queue.store_id == store_id)))

        result: set[str] | None = await self.ctx.run_blocking(lookup)
        return result

    def _now(self) -> float:
        kpi = self.ctx.kpi
        return float(kpi.clock.time()) if kpi is not None else time.time()

    async def _live(self, now: float) -> list[dict[str, Any]]:
        kpi = self.ctx.kpi
        return list(await kpi.live(now)) if kpi is not None else []

    # -- live --------------------------------------------------------------------------------------------------
    async def queues(self, req: Req) -> Response:
        wanted = req.arg("queue")
        if wanted is not None and not QUEUE.match(wanted):
            raise HTTPError(400, "queue must be a queue name", field="queue")
        visible = await self._visible_queues(req)
        now = self._now()
        books = await self._live(now)
        tracker = self.ctx.tracker
        names: set[tuple[str, str]] = {(b["server"], q) for b in books for q in b["queues"]}
        if tracker is not None:
            names |= set(tracker.queues)
        names = {(s, q) for s, q in names
                 if (wanted is None or q == wanted) and (visible is None or q in visible)}
        figures = {(b["server"], name): q for b in books for name, q in b["queues"].items()}
        empty = queue_figures(QueueCounts())
        out: list[dict[str, Any]] = []
        everyone: list[dict[str, Any]] = []
        for server, name in sorted(names):
            kpi = figures.get((server, name))
            live_queue = tracker.queue(name, server) if tracker is not None else None
            if live_queue is not None:
                callers = self._callers(tracker, name, server, now)
                members = self._members(tracker, live_queue)
            else:
                callers = [{**c, "state": None, "position": None, "ringing": None}
                           for c in (kpi["callers"] if kpi else [])]
                members = []
            out.append({
                "server": server, "queue": name,
                "sl_threshold": kpi["sl_threshold"] if kpi else self._threshold(name),
                "waiting": len(callers), "longest_wait": max((c["wait"] for c in callers), default=0.0),
                "callers": callers, "members": members,
                "logged_in": sum(1 for m in members if m["logged_in"]),
                "available": sum(1 for m in members if m["available"]),
                "interval": kpi["interval"] if kpi else empty, "today": kpi["today"] if kpi else empty,
                "asterisk": kpi["asterisk"] if kpi else None,
            })
            everyone.extend(callers)
        await self._fill_tiers(everyone)
        return json_response({"at": iso_utc(now), "queues": out})

    def _threshold(self, queue: str) -> float:
        kpi = self.ctx.kpi
        if kpi is not None:
            return float(kpi.settings.threshold(queue))
        section = self.ctx.config.kpi
        return float(section.service_level_by_queue.get(queue, section.service_level_seconds))

    @staticmethod
    def _callers(tracker: Any, name: str, server: str, now: float) -> list[dict[str, Any]]:
        out = []
        for call in tracker.calls_in_queue(name, server):
            if call.state not in _WAITING:
                continue
            joined = call.queue_joined_at if call.queue_joined_at is not None else now
            out.append({
                "uniqueid": call.uniqueid, "position": call.position, "priority": call.priority,
                "wait": round(max(0.0, now - joined), 1), "joined_at": _epoch_iso(joined), "tier": call.tier,
                "caller_number": call.caller_number, "caller_name": call.caller_name,
                "customer_id": call.customer_id, "decision_id": call.decision_id, "state": call.state,
                "ringing": call.ringing_interface,
            })
        return out

    @staticmethod
    def _members(tracker: Any, queue: Any) -> list[dict[str, Any]]:
        out = []
        for member in sorted(queue.members.values(), key=lambda m: (m.penalty, m.name, m.interface)):
            agent = tracker.agent(member.interface, queue.server)
            out.append({
                "interface": member.interface, "name": member.name, "penalty": member.penalty,
                "state": agent.state if agent is not None else None,
                "since": _epoch_iso(agent.since) if agent is not None else None,
                "paused": member.paused, "paused_reason": member.paused_reason, "in_call": member.in_call,
                "ringing": member.ringing, "logged_in": member.logged_in, "available": member.available,
                "membership": member.membership, "calls_taken": member.calls_taken,
            })
        return out

    async def _fill_tiers(self, callers: list[dict[str, Any]]) -> None:
        """The tier of identified callers whose channel did not carry it (CC_TIER is not a channel variable the
        shipped manager.conf sends): the customer's current tier."""
        factory = self.ctx.session_factory
        ids = {int(c["customer_id"]) for c in callers
               if c.get("tier") is None and str(c.get("customer_id") or "").isdigit()}
        if not ids or factory is None:
            return

        def lookup() -> dict[int, str]:
            with factory() as session:
                return dict(session.execute(select(Customer.id, Customer.tier).where(Customer.id.in_(ids))).all())

        tiers = await self.ctx.run_blocking(lookup)
        for caller in callers:
            if caller.get("tier") is None and str(caller.get("customer_id") or "").isdigit():
                caller["tier"] = tiers.get(int(caller["customer_id"]))

    async def agents(self, req: Req) -> Response:
        visible = await self._visible_queues(req)
        now = self._now()
        books = await self._live(now)
        tracker = self.ctx.tracker
        figures = {(b["server"], i): a for b in books for i, a in b["agents"].items()}
        keys: set[tuple[str, str]] = set(figures)
        if tracker is not None:
            keys |= set(tracker.agents)
        empty = agent_figures(AgentCounts())
        out = []
        for server, interface in sorted(keys):
            kpi = figures.get((server, interface))
            live_agent = tracker.agent(interface, server) if tracker is not None else None
            if live_agent is not None:
                state, since, reason = live_agent.state, live_agent.since, live_agent.paused_reason
                name, queues, call = live_agent.name, list(live_agent.queues), live_agent.current_call
            elif kpi is not None:
                state, since, reason = kpi["state"], kpi["since"], kpi["paused_reason"]
                name, queues, call = kpi["name"], list(kpi["queues"]), None
            else:
                continue
            served = set(queues) | set(kpi["today"]["queues"] if kpi else ())
            if visible is not None and not served & visible:
                continue
            if state == "logged_out" and not (kpi and kpi["today"]["signed_in"]):
                continue  # never signed in today: not worth a line
            out.append({
                "server": server, "interface": interface, "name": name, "state": state,
                "since": _epoch_iso(since), "in_state": round(max(0.0, now - since), 1) if since else None,
                "paused_reason": reason if state == "paused" else "", "queues": queues, "call": call,
                "interval": kpi["interval"] if kpi else empty, "today": kpi["today"] if kpi else empty,
            })
        return json_response({"at": iso_utc(now), "agents": out})

    # -- reports -----------------------------------------------------------------------------------------------
    def _store(self) -> KpiStore:
        if self.ctx.session_factory is None:
            raise HTTPError(503, "reports need the database")
        return KpiStore(self.ctx.session_factory)

    def _range(self, req: Req) -> tuple[datetime, datetime, str, str]:
        """[start, end) from ``from``/``to`` (local dates, a ``to`` date included, or ISO date-times), the interval,
        the format."""
        tz = zone(self.ctx.config.server.time_zone)
        interval = req.arg("interval", "day")
        if interval not in MAX_DAYS:
            raise HTTPError(400, "interval must be 15m or day", field="interval")
        fmt = req.arg("format", "json")
        if fmt not in ("json", "csv"):
            raise HTTPError(400, "format must be json or csv", field="format")
        today = datetime.fromtimestamp(self._now(), tz).date()

        def parse(name: str, default: date, end: bool) -> datetime:
            text = req.arg(name)
            try:
                if text is None or text == "" or len(text) == 10:
                    day = default if not text else date.fromisoformat(text)
                    moment = datetime(day.year, day.month, day.day, tzinfo=tz)
                    return moment + timedelta(days=1) if end else moment  # "to=2026-12-01" includes that day
                value = datetime.fromisoformat(text)
            except ValueError:
                raise HTTPError(400, f"{name} must be a date (2026-12-01) or an ISO date-time", field=name) from None
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)

        start = parse("from", today, False)
        end = parse("to", start.astimezone(tz).date(), True)
        if end <= start:
            raise HTTPError(400, "to must be after from", field="to")
        if end - start > timedelta(days=MAX_DAYS[interval]):
            raise HTTPError(400, f"at most {MAX_DAYS[interval]} days with interval={interval}", field="to")
        return start, end, interval, fmt

    def _name(self, req: Req, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = req.arg(name)
        if value is not None and not pattern.match(value):
            raise HTTPError(400, f"{name} must be {what}", field=name)
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
            raise HTTPError(400, "too many rows: name a queue or shorten the range", field="to")
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
            raise HTTPError(400, "too many rows: name an agent or shorten the range", field="to")
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
