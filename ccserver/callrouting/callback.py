"""Callback requests: a caller who cannot be answered now (closed, nobody logged in, a long wait they chose
not to sit through) is promised a call back — so ccserver opens a callback ticket that someone will work,
due a little after the store's line next opens. A second request from the same number while one is still
open reuses it (callers who try again after hours are not called back twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccserver.callrouting.directory_data import StoreCalendar
from ccserver.db.models import Ticket
from routing.calendar import next_opening

__all__ = ["CALLBACK_SLA", "callback_due", "open_callback_ticket"]

# How long after the line opens the callback should have been made.
CALLBACK_SLA = timedelta(hours=2)


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


def open_callback_ticket(session_factory: Callable[[], Session], *, e164: str, customer_id: int | None,
                         store_id: int | None, line: str | None, decision_id: str, uniqueid: str,
                         due_at: datetime, now: datetime) -> tuple[int, bool]:
    """(ticket id, created). Blocking: run it in a worker thread."""
    subject = f"Callback request from {e164}"
    with session_factory() as session, session.begin():
        existing = session.scalars(
            select(Ticket.id).where(Ticket.kind == "callback", Ticket.subject == subject,
                                    Ticket.status.in_(("open", "in_progress"))).limit(1)
        ).first()
        if existing is not None:
            return int(existing), False
        body = (f"The caller asked to be called back on {e164} ({line or 'unknown'} line). "
                f"Routing decision {decision_id or '-'}, Asterisk uniqueid {uniqueid or '-'}.")
        ticket = Ticket(kind="callback", status="open", store_id=store_id, department=line, customer_id=customer_id,
                        subject=subject, body=body, sla_due_at=due_at, created_at=now, updated_at=now)
        session.add(ticket)
        session.flush()
        return int(ticket.id), True
