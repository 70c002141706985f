"""A TicketService over the demo data (SQLite or PostgreSQL) with a ManualClock, for the tickets tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ccserver.callrouting.directory_data import RoutingData
from ccserver.clock import ManualClock
from ccserver.db.models import Notification, Store, TicketEvent, User
from ccserver.tickets import Actor, TicketService, TicketSettings
from ccserver.tickets.notify import Outbox

# Monday 23 November 2026, 10:00 in Shanghai: the stores are open (service line 08:00-17:30 Monday-Saturday).
MONDAY_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass
class Recorder:
    """Stands in for the Invalidator: records what was applied."""

    applied: list[Any] = field(default_factory=list)

    async def apply(self, inv: Any) -> None:
        self.applied.append(inv)


def make_service(sessions: Any, *, at: datetime = MONDAY_10, settings: TicketSettings | None = None,
                 notify: bool = True) -> tuple[TicketService, ManualClock, Recorder]:
    clock = ManualClock(at.timestamp())
    calendars = RoutingData.load(sessions).calendars
    recorder = Recorder()
    service = TicketService(sessions, settings or TicketSettings.from_dict({}), in_thread, clock=clock,
                            calendars=lambda: calendars, invalidator=recorder, outbox=Outbox(notify))
    return service, clock, recorder


def actor(sessions: Any, username: str) -> Actor:
    with sessions() as s:
        u = s.scalars(select(User).where(User.username == username)).one()
        return Actor(u.id, u.username, u.role, u.store_id, u.department)


def store_id(sessions: Any, code: str) -> int:
    with sessions() as s:
        return int(s.scalars(select(Store.id).where(Store.code == code)).one())


def notifications(sessions: Any) -> list[tuple[str, int]]:
    with sessions() as s:
        return [(n.event, n.payload["ticket"]["id"]) for n in s.scalars(select(Notification).order_by(Notification.id))]


def events(sessions: Any, ticket_id: int) -> list[tuple[str, str | None, str | None]]:
    with sessions() as s:
        return [(e.action, e.from_status, e.to_status) for e in s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))]
