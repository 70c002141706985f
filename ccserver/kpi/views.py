"""The live views of queues and agents that supervisors see: ``GET /api/queues``, ``GET /api/agents`` and the
wallboard's snapshot are all made here (one place that shapes the KPI book and the live model for people).

``visible``: the queues a store manager may see (None: every queue); ``wanted``: one queue asked for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ccserver.db.models import Customer, Queue, User
from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, queue_figures
from ccserver.kpi.intervals import iso_utc

_WAITING = ("queued", "ringing")


def _epoch_iso(value: float | None) -> str | None:
    return iso_utc(value) if value else None


async def visible_queues(ctx: Any, principal: Any) -> set[str] | None:
    """The queues a store manager (a supervisor whose user has a store) may see; None: every queue (admins,
    supervisors without a store). ``ctx``: the WebContext (session_factory, run_blocking)."""
    factory = ctx.session_factory
    if principal is None or principal.role != "supervisor" or factory is None:
        return None

    def lookup() -> set[str] | None:
        with factory() as session:
            store_id = session.scalar(select(User.store_id).where(User.id == principal.user_id))
            if store_id is None:
                return None
            return set(session.scalars(select(Queue.name).where(Queue.store_id == store_id)))

    result: set[str] | None = await ctx.run_blocking(lookup)
    return result


class LiveViews:
    """``kpi``: a KpiService or None; ``tracker``: the live model or None; ``config``: the Config."""

    def __init__(self, kpi: Any, tracker: Any, session_factory: Any, run_blocking: Any, config: Any) -> None:
        self.kpi = kpi
        self.tracker = tracker
        self.session_factory = session_factory
        self.run_blocking = run_blocking
        self.config = config

    @classmethod
    def of(cls, ctx: Any) -> LiveViews:
        return cls(ctx.kpi, ctx.tracker, ctx.session_factory, ctx.run_blocking, ctx.config)

    def now(self) -> float:
        import time

        return float(self.kpi.clock.time()) if self.kpi is not None else time.time()

    async def _live(self, now: float) -> list[dict[str, Any]]:
        return list(await self.kpi.live(now)) if self.kpi is not None else []

    async def queues(self, now: float, visible: set[str] | None = None,
                     wanted: str | None = None) -> list[dict[str, Any]]:
        """Per queue: KPI figures (interval, today), Asterisk's counters, callers waiting, members."""
        books = await self._live(now)
        tracker = self.tracker
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
        return out

    def _threshold(self, queue: str) -> float:
        kpi = self.kpi
        if kpi is not None:
            return float(kpi.settings.threshold(queue))
        section = self.config.kpi
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
        factory = self.session_factory
        ids = {int(c["customer_id"]) for c in callers
               if c.get("tier") is None and str(c.get("customer_id") or "").isdigit()}
        if not ids or factory is None:
            return

        def lookup() -> dict[int, str]:
            with factory() as session:
                return dict(session.execute(select(Customer.id, Customer.tier).where(Customer.id.in_(ids))).all())

        tiers = await self.run_blocking(lookup)
        for caller in callers:
            if caller.get("tier") is None and str(caller.get("customer_id") or "").isdigit():
                caller["tier"] = tiers.get(int(caller["customer_id"]))

    async def agents(self, now: float, visible: set[str] | None = None) -> list[dict[str, Any]]:
        """Per agent seen today: state, time in state, queues, call, KPI figures."""
        books = await self._live(now)
        tracker = self.tracker
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
        return out
