"""Callback requests: a caller who cannot be answered now (closed, nobody logged in, a long wait they chose
not to sit through) is promised a call back — so ccserver opens a callback ticket that someone will work,
due a little after the store's line next opens.

**One ticket per number and callback day, however concurrent the requests.** Every callback ticket carries a
de-duplication key, ``callback:<e164>:<YYYY-MM-DD>`` — the caller's number and the local day the callback is
due — in ``tickets.dedupe_key`` (unique where set). The ticket is written with ``INSERT … ON CONFLICT DO
NOTHING`` on that key, and when the insert did nothing the ticket already there is returned: two requests at
once (a caller who hangs up and redials, two legs of one call) open one ticket, on SQLite and PostgreSQL.
Keying on the day the callback is *due*, not the day of the call, makes a caller who asks at 23:50 and again
at 00:10 — both before the line opens — one callback. A request while an earlier callback of the same number
is still open (not yet worked) reuses that one too; a request whose key names a ticket already worked and
closed reopens it, due anew (the caller is asking again).

**A promise is kept.** The key is known before anything is written, so it is the ticket's reference even
while SQL is still writing: when the ticket is not confirmed within the routing deadline the caller is still
promised the call back (the dialplan gets the key as ``CC_CALLBACK_TICKET``), and ``PromiseKeeper`` sees the
write through — the attempt in flight, then retries (safe: the key makes a repeated insert return the same
ticket) — and logs an error, counted, if it finally fails. Only a request SQL *refused* within the deadline
is answered "no callback" (nothing was written, nothing promised).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ccserver.callrouting.directory_data import StoreCalendar
from ccserver.db.models import Ticket, TicketEvent
from ccserver.metrics import REGISTRY
from routing.calendar import next_opening

__all__ = [
    "CALLBACK_SLA",
    "CALLBACK_TICKETS",
    "PromiseKeeper",
    "callback_due",
    "callback_key",
    "open_callback_ticket",
]

log = logging.getLogger("ccserver.callback")

# How long after the line opens the callback should have been made.
CALLBACK_SLA = timedelta(hours=2)
OPEN_STATUSES = ("new", "assigned", "in_progress")  # not yet worked (the tickets lifecycle)

CALLBACK_TICKETS = REGISTRY.counter(
    "ccserver_callback_tickets_total",
    "Callback requests by outcome: created, reused, reopened, pending (promised before SQL confirmed), "
    "written_late, lost (promised, never written), refused (SQL failed in time: no callback promised)",
)


def callback_due(calendars: Iterable[StoreCalendar], line: str | None, now: datetime,
                 sla: timedelta = CALLBACK_SLA) -> datetime:
    """When the callback is due: ``sla`` after the line next opens (``now`` when open or nothing is known).

    ``calendars``: the DID's store, or every store for a group-wide DID — whichever store opens first can call.
    """
    openings = [
        opening
        for c in calendars
        if c.hours and (opening := next_opening(now, c.hours, c.holidays, c.makeup_workdays, c.time_zone, line))
    ]
    return (min(openings) if openings else now) + sla


def callback_key(e164: str, due_at: datetime, time_zone: str) -> str:
    """The de-duplication key (and pending reference) of a callback: number + local day it is due."""
    return f"callback:{e164}:{due_at.astimezone(ZoneInfo(time_zone)).date().isoformat()}"


def open_callback_ticket(session_factory: Callable[[], Session], *, e164: str, customer_id: int | None,
                         store_id: int | None, line: str | None, decision_id: str, uniqueid: str,
                         due_at: datetime, now: datetime, dedupe_key: str, source: str = "callback_request",
                         arrived_at: datetime | None = None,
                         on_new: Callable[[Session, int, str], None] | None = None) -> tuple[int, bool]:
    """(ticket id, whether a callback is newly due: created, or a closed one reopened). Race-safe (see the module
    docstring); blocking: run it in a worker thread.

    ``source``: ``callback_request`` (the caller asked) or ``abandoned_call`` (ccserver/tickets/abandoned.py);
    ``arrived_at``: when the caller first called (kept on the ticket). ``on_new(session, ticket_id, outcome)``
    runs inside the transaction that created (``created``) or reopened (``reopened``) the ticket: the tickets
    service queues its notification there, so it is written with the ticket or not at all."""
    with session_factory() as session:
        # Read-only, in its own transaction: SQLite must not hold a read snapshot when the insert below wants to
        # write (a deferred transaction that read first cannot always upgrade to a writer).
        earlier = session.scalars(
            select(Ticket.id).where(Ticket.kind == "callback", Ticket.status.in_(OPEN_STATUSES),
                                    Ticket.dedupe_key.startswith(f"callback:{e164}:", autoescape=True))
            .order_by(Ticket.id).limit(1)
        ).first()
        session.rollback()
        if earlier is not None:
            CALLBACK_TICKETS.inc(outcome="reused")
            return int(earlier), False
        what = ("The caller asked to be called back" if source == "callback_request"
                else "The caller hung up while waiting; call them back")
        body = (f"{what} on {e164} ({line or 'unknown'} line). "
                f"Routing decision {decision_id or '-'}, Asterisk uniqueid {uniqueid or '-'}.")
        subject = (f"Callback request from {e164}" if source == "callback_request"
                   else f"Abandoned call from {e164}")
        values = dict(kind="callback", status="new", store_id=store_id, department=line, customer_id=customer_id,
                      subject=subject, body=body, sla_due_at=due_at, created_at=now, updated_at=now,
                      dedupe_key=dedupe_key, source=source, contact_e164=e164, arrived_at=arrived_at or now,
                      uniqueid=uniqueid or None, category=source)
        with session.begin():
            created = session.execute(_insert_unless_keyed(session, values)).scalar()
            if created is not None:
                ticket_id, outcome = int(created), "created"
                session.execute(insert(TicketEvent).values(
                    ticket_id=ticket_id, at=now, actor_name="system", action="created", to_status="new",
                    detail={"source": source, "decision_id": decision_id or None}))
            else:
                # Nothing inserted: the key is taken (a concurrent request committed it first) — that ticket. If
                # it was already worked and closed, the caller is asking again: it is reopened, due anew.
                ticket_id = int(session.scalars(select(Ticket.id).where(Ticket.dedupe_key == dedupe_key)).one())
                reopened = session.execute(
                    update(Ticket)
                    .where(Ticket.id == ticket_id, Ticket.status.not_in(OPEN_STATUSES))
                    .values(status="new", sla_due_at=due_at, updated_at=now, resolved_at=None, closed_at=None,
                            body=func.coalesce(Ticket.body, "") + f"\nAsked again at {now.isoformat()}: routing "
                            f"decision {decision_id or '-'}, Asterisk uniqueid {uniqueid or '-'}.")
                    .returning(Ticket.id)
                    .execution_options(synchronize_session=False)
                ).scalar()
                outcome = "reused" if reopened is None else "reopened"
                if reopened is not None:
                    session.execute(insert(TicketEvent).values(
                        ticket_id=ticket_id, at=now, actor_name="system", action="reopened", to_status="new",
                        detail={"source": source, "decision_id": decision_id or None}))
            if on_new is not None and outcome != "reused":
                on_new(session, ticket_id, outcome)
        CALLBACK_TICKETS.inc(outcome=outcome)
        return ticket_id, outcome != "reused"


def _insert_unless_keyed(session: Session, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    else:  # pragma: no cover - ccserver runs on these two
        raise NotImplementedError(f"callback tickets need PostgreSQL or SQLite, not {dialect}")
    stmt = dialect_insert(Ticket).values(**values)
    return stmt.on_conflict_do_nothing(index_elements=[Ticket.dedupe_key],
                                       index_where=Ticket.dedupe_key.is_not(None)).returning(Ticket.id)


class PromiseKeeper:
    """Sees a promised callback's ticket written after the caller was answered: the attempt still in flight,
    then up to ``len(delays)`` retries ``delays`` seconds apart (on ``clock``, an IReactorTime); an attempt that
    finally fails is logged as an error and counted (``lost``): someone must call that caller back by hand.

    ``run_blocking(fn) -> Deferred`` runs the write in a worker thread.
    """

    def __init__(self, run_blocking: Callable[..., Any], clock: Any,
                 delays: Sequence[float] = (2.0, 10.0, 60.0, 300.0)) -> None:
        self._run_blocking = run_blocking
        self._clock = clock
        self.delays = tuple(delays)
        self.pending = 0  # promises not yet written

    def keep(self, attempt: Any, write: Callable[[], tuple[int, bool]], *, context: str) -> None:
        """``attempt``: the Deferred of the write in flight; ``write``: the write again (idempotent).
        ``context``: what the log lines say about the call (never personal data)."""
        self.pending += 1
        self._follow(attempt, write, context, 0)

    def _follow(self, attempt: Any, write: Callable[[], tuple[int, bool]], context: str, retries: int) -> None:
        def written(result: tuple[int, bool]) -> None:
            self.pending -= 1
            CALLBACK_TICKETS.inc(outcome="written_late")
            log.warning("callback %s: promised ticket written after the deadline: id %s (%s)", context, result[0],
                        "new" if result[1] else "already open")

        def failed(failure: Any) -> None:
            if retries < len(self.delays):
                delay = self.delays[retries]
                log.warning("callback %s: promised ticket not written yet (%s); retry %d in %g s", context,
                            failure.getErrorMessage(), retries + 1, delay)
                self._clock.callLater(delay, self._retry, write, context, retries + 1)
                return
            self.pending -= 1
            CALLBACK_TICKETS.inc(outcome="lost")
            log.error("callback %s: the caller was PROMISED a call back, but its ticket could not be written after "
                      "%d attempts (%s); call them back by hand (the routing decision has the number)", context,
                      retries + 1, failure.getErrorMessage())

        attempt.addCallbacks(written, failed)

    def _retry(self, write: Callable[[], tuple[int, bool]], context: str, retries: int) -> None:
        self._follow(self._run_blocking(write), write, context, retries)
