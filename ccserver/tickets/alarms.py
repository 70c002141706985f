"""SLA alarms: before a ticket's clock runs out and when it has, each once.

Every ``tickets.sla_check_seconds`` the job looks for tickets whose first-response clock (still ``new``) or
resolution clock (not yet resolved) is due within ``tickets.sla_warning_minutes`` (a **warning**) or past
(a **breach**). Each alarm is a row of ``ticket_sla_alarms`` keyed by ticket, clock, stage and due time and
inserted with ``ON CONFLICT DO NOTHING``: only the insert that wrote the row raises the alarm, so an alarm is raised
once however many nodes look or how often (a due time that changes — a reopened ticket — may alarm again). In the
same transaction go the ticket's history row and the webhook notification (``ticket.sla_warning``,
``ticket.sla_breached``); after the commit the alarm is published on the call-events hub as
:class:`~ccserver.events.TicketSlaAlarm` (the wallboard shows it).

The job runs once per cluster: each occurrence (``ticket-sla:<tick>``) holds a Redis lease
(ccserver/cluster.py); without Redis it simply runs. A ticket found already past its due (created late, a
server that was down) gets its breach only, not a warning after the fact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from ccserver.db.models import Ticket, TicketSlaAlarm
from ccserver.events.types import TicketSlaAlarm as AlarmEvent
from ccserver.metrics import REGISTRY
from ccserver.tickets import lifecycle
from ccserver.tickets.access import Actor
from ccserver.tickets.store import TicketStore

__all__ = ["SlaAlarms", "current_alarms", "raise_due_alarms"]

log = logging.getLogger("ccserver.tickets.sla")

ALARMS = REGISTRY.counter("ccserver_ticket_sla_alarms_total",
                          "Ticket SLA alarms raised, by clock (first_response, resolution) and stage (warning, breach)")
JOB = "ticket-sla"
_SYSTEM = Actor.system("sla")


def _insert_once(session: Session, values: dict[str, Any]) -> bool:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(TicketSlaAlarm).values(**values).on_conflict_do_nothing(
        index_elements=["ticket_id", "clock", "stage", "due_at"]).returning(TicketSlaAlarm.ticket_id)
    return session.execute(stmt).scalar() is not None


def _clocks_due(session: Session, horizon: datetime) -> list[tuple[Ticket, str, datetime]]:
    """(ticket, clock, due) of every SLA clock still running that is due by ``horizon``, by ticket id: a new ticket's
    first response not given yet, a working ticket's resolution."""
    due: list[tuple[Ticket, str, datetime]] = []
    for ticket in session.scalars(select(Ticket).where(or_(
            and_(Ticket.status == "new", Ticket.first_responded_at.is_(None),
                 Ticket.first_response_due_at <= horizon),
            and_(Ticket.status.in_(lifecycle.WORKING), Ticket.sla_due_at <= horizon),
    )).order_by(Ticket.id)):
        if ticket.status == "new" and ticket.first_responded_at is None and ticket.first_response_due_at \
                and ticket.first_response_due_at <= horizon:
            due.append((ticket, "first_response", ticket.first_response_due_at))
        if ticket.sla_due_at is not None and ticket.sla_due_at <= horizon:
            due.append((ticket, "resolution", ticket.sla_due_at))
    return due


def raise_due_alarms(store: TicketStore, now: datetime) -> list[dict[str, Any]]:
    """Raise the alarms due at ``now`` (blocking, one transaction); returns the ones this call raised."""
    horizon = now + store.settings.warning_before
    raised: list[dict[str, Any]] = []
    sessions: sessionmaker[Session] = store.sessions
    with sessions.begin() as session:
        for ticket, clock, due in _clocks_due(session, horizon):
            stage = "breach" if due <= now else "warning"
            if not _insert_once(session, {"ticket_id": ticket.id, "clock": clock, "stage": stage,
                                          "due_at": due, "raised_at": now}):
                continue
            store._event(session, ticket.id, _SYSTEM, now, f"sla_{stage}",
                         detail={"clock": clock, "due_at": due.isoformat()})
            store._notify(session, "ticket.sla_breached" if stage == "breach" else "ticket.sla_warning", ticket,
                          now, clock=clock, due_at=due.isoformat())
            raised.append({"ticket_id": ticket.id, "kind": ticket.kind, "severity": ticket.severity,
                           "clock": clock, "stage": stage, "due_at": due.timestamp(),
                           "store_id": ticket.store_id, "department": ticket.department,
                           "assignee_id": ticket.assignee_id, "customer_id": ticket.customer_id,
                           "subject": ticket.subject})
    return raised


def current_alarms(store: TicketStore, now: datetime, since: datetime) -> list[dict[str, Any]]:
    """The alarms that still stand at ``now`` (blocking, read only), newest first, as the wallboard holds them —
    for a wallboard that starts after they were published (a restarted server). An alarm stands while its ticket's
    clock still runs with the same due time; it is listed when raised since ``since`` (its ``at`` is when it was
    raised). An open ticket past its due time without an alarm row yet (the job has not looked since: the server
    was down) is listed as its breach at ``now``, as the job's next look will raise it, so the board need not wait."""
    horizon = now + store.settings.warning_before
    found: dict[tuple[int, str, str, float], dict[str, Any]] = {}
    with store.sessions() as session:
        running = {(ticket.id, clock): (ticket, due) for ticket, clock, due in _clocks_due(session, horizon)}
        ids = sorted({ticket_id for ticket_id, _clock in running})
        rows = session.scalars(select(TicketSlaAlarm).where(TicketSlaAlarm.ticket_id.in_(ids))).all() if ids else []

    def entry(ticket: Ticket, clock: str, stage: str, due: datetime, at: datetime) -> dict[str, Any]:
        return {"ticket_id": ticket.id, "stage": stage, "clock": clock, "severity": ticket.severity,
                "kind": ticket.kind, "subject": ticket.subject, "due_at": due.timestamp(), "at": at.timestamp(),
                "store_id": ticket.store_id, "department": ticket.department}

    raised = {(r.ticket_id, r.clock, r.stage, r.due_at.timestamp()) for r in rows}
    for row in rows:
        standing = running.get((row.ticket_id, row.clock))
        if standing is None or standing[1] != row.due_at or row.raised_at < since:
            continue  # met or moved (a reopened ticket's new due time alarms anew), or older than the board keeps
        ticket, due = standing
        found[(ticket.id, row.clock, row.stage, due.timestamp())] = entry(ticket, row.clock, row.stage, due,
                                                                          row.raised_at)
    for (ticket_id, clock), (ticket, due) in running.items():
        key = (ticket_id, clock, "breach", due.timestamp())
        if due <= now and key not in raised:
            found[key] = entry(ticket, clock, "breach", due, now)
    return sorted(found.values(), key=lambda a: (-a["at"], -a["ticket_id"]))


class SlaAlarms:
    """The periodic job. ``publish``: the hub's ``publish`` (or None); ``cluster``: a ``ClusterJobs`` (or None: run
    here); ``clock``: a ``ccserver.clock.Clock``; ``after``: called when alarms were raised (wakes the webhook)."""

    def __init__(self, store: TicketStore, run_blocking: Callable[..., Awaitable[Any]], clock: Any, *,
                 publish: Callable[[Any], None] | None = None, cluster: Any = None,
                 after: Callable[[], None] | None = None) -> None:
        self.store = store
        self._run = run_blocking
        self._clock = clock
        self._publish = publish
        self._cluster = cluster
        self._after = after
        self.interval = store.settings.check_seconds
        self._seq = 0
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[AlarmEvent]:
        """Raise what is due now and publish it; returns the events published."""
        at = self._clock.time()
        raised = await self._run(raise_due_alarms, self.store, datetime.fromtimestamp(at, UTC))
        events = []
        for alarm in raised:
            self._seq += 1
            event = AlarmEvent(server="tickets", seq=self._seq, at=at, **alarm)
            events.append(event)
            ALARMS.inc(clock=alarm["clock"], stage=alarm["stage"])
            log.warning("ticket %d: SLA %s %s (due %s)", alarm["ticket_id"], alarm["clock"],
                        "breached" if alarm["stage"] == "breach" else "due soon",
                        datetime.fromtimestamp(alarm["due_at"], UTC).isoformat())
            if self._publish is not None:
                self._publish(event)
        if raised and self._after is not None:
            self._after()
        return events

    async def tick(self) -> list[AlarmEvent]:
        """One occurrence, once per cluster (a lease per tick; another node's run counts)."""
        if self._cluster is None:
            return await self.check()
        slot = str(int(self._clock.time() // self.interval))
        run = await self._cluster.run(JOB, self.check, slot=slot, wait=False)
        return list(run.result or []) if run.ran else []

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - SQL or Redis briefly away: the next tick tries again
                log.warning("ticket SLA check failed (%s); trying again in %g s", exc, self.interval)
            await self._clock.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
