"""The tickets service: what the web, the IVR, the desktop and the dialer call (asyncio; SQL in the thread pool).

Writes go through :class:`~ccserver.tickets.store.TicketStore` in one transaction each; after the commit the
service drops the cached customer it rescored (``Invalidator``) and wakes the webhook deliverer. It implements the
IVR's port (``ivr/ports.py`` ``TicketsPort``): ``create_ticket``, ``free_slots``, ``book_appointment``,
``notify_booking``, ``open_repairs``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ccserver.callrouting.directory_data import StoreCalendar
from ccserver.clock import LoopClock
from ccserver.customers.changes import Invalidation
from ccserver.tickets import abandoned
from ccserver.tickets.access import Actor
from ccserver.tickets.appointments import SLOT, Appointments
from ccserver.tickets.appointments import Booking as StoreBooking
from ccserver.tickets.appointments import Slot as StoreSlot
from ccserver.tickets.notify import Outbox
from ccserver.tickets.settings import TicketSettings
from ccserver.tickets.store import NewTicket, TicketError, TicketStore, clean_text
from ivr.ports import Booking, OpenRepair, Slot, SlotTaken

__all__ = ["IVR", "TicketService"]

log = logging.getLogger("ccserver.tickets")

IVR = Actor.system("ivr")


class TicketService:
    def __init__(self, session_factory: sessionmaker[Session], settings: TicketSettings,
                 run_blocking: Callable[..., Awaitable[Any]], *, clock: Any = None,
                 calendars: Callable[[], Mapping[int, StoreCalendar]] | None = None,
                 invalidator: Any = None, outbox: Outbox | None = None,
                 on_notify: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.clock = clock if clock is not None else LoopClock()
        self.store = TicketStore(session_factory, settings, calendars or (lambda: {}), outbox)
        self.appointments = Appointments(self.store)
        self._run = run_blocking
        self.invalidator = invalidator
        self.on_notify = on_notify

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def _after(self, inv: Invalidation | None = None) -> None:
        """After a commit: the rescored customer's cached identity goes, the webhook hears of it."""
        if inv and self.invalidator is not None:
            try:
                await self.invalidator.apply(inv)
            except Exception as exc:  # noqa: BLE001 - the cache expires by itself; the change is committed
                log.warning("tickets: cache invalidation failed (%s)", exc)
        if self.on_notify is not None and self.store.outbox.enabled:
            self.on_notify()

    # -- staff (the web API, the desktop) ----------------------------------------------------------------------------
    async def create(self, new: NewTicket, actor: Actor) -> dict[str, Any]:
        ticket_id, _created, inv = await self._run(self.store.create, new, actor, self.now())
        await self._after(inv)
        # The creator sees what they wrote, even when it went to a department they cannot see.
        return await self.get(ticket_id, IVR)

    async def get(self, ticket_id: int, actor: Actor) -> dict[str, Any]:
        return await self._run(self.store.get, ticket_id, actor, self.now())  # type: ignore[no-any-return]

    async def find(self, actor: Actor, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        return await self._run(lambda: self.store.find(actor, self.now(), **filters))  # type: ignore[no-any-return]

    async def transition(self, ticket_id: int, to: str, actor: Actor, *, comment: str | None = None,
                         satisfaction: int | None = None) -> dict[str, Any]:
        inv = await self._run(lambda: self.store.transition(ticket_id, to, actor, self.now(), comment=comment,
                                                            satisfaction=satisfaction))
        await self._after(inv)
        return await self._view_after_change(ticket_id, actor)

    async def comment(self, ticket_id: int, text: str, actor: Actor) -> dict[str, Any]:
        body = clean_text(text, "comment", 4000, required=True)
        await self._run(self.store.comment, ticket_id, body, actor, self.now())
        return await self.get(ticket_id, actor)

    async def assign(self, ticket_id: int, actor: Actor, *, department: str | None = None,
                     assignee_id: int | None = None, comment: str | None = None) -> dict[str, Any]:
        await self._run(lambda: self.store.assign(ticket_id, actor, self.now(), department=department,
                                                  assignee_id=assignee_id, comment=comment))
        await self._after()
        return await self._view_after_change(ticket_id, actor)

    async def _view_after_change(self, ticket_id: int, actor: Actor) -> dict[str, Any]:
        """The ticket as it is now — when the change moved it out of the actor's view (reassigned to another
        department), what they may still know: its id and that it left."""
        try:
            return await self.get(ticket_id, actor)
        except TicketError as exc:
            if exc.status != 404:
                raise
            return {"id": ticket_id, "visible": False}

    async def book(self, actor: Actor, **booking: Any) -> StoreBooking:
        done: StoreBooking = await self._run(lambda: self.appointments.book(actor=actor, now=self.now(), **booking))
        await self._after()
        return done

    async def reschedule(self, ticket_id: int, slot: datetime, actor: Actor,
                         comment: str | None = None) -> StoreBooking:
        done: StoreBooking = await self._run(
            lambda: self.appointments.reschedule(ticket_id, slot, actor, self.now(), comment))
        await self._after()
        return done

    async def slots(self, store_id: int, after: datetime | None = None, limit: int = 20) -> list[StoreSlot]:
        now = self.now()
        return await self._run(  # type: ignore[no-any-return]
            self.appointments.free_slots, store_id, after or now, limit, now)

    async def callbacks(self, actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
        return await self._run(self.store.callbacks, actor, self.now(), limit)  # type: ignore[no-any-return]

    async def abandoned_call(self, **call: Any) -> int:
        ticket_id = await abandoned.open_for_abandoned(self, self._run, **call)
        await self._after()
        return ticket_id

    # -- the IVR's port (ivr/ports.py TicketsPort) --------------------------------------------------------------------
    async def create_ticket(self, kind: str, customer_id: int | None, store_id: int | None, category: str,
                            subject: str, body: str, severity: str, uniqueid: str) -> int:
        new = NewTicket(kind=kind, subject=clean_text(subject, "subject", 200, required=True) or "",
                        body=clean_text(body, "body", 10_000, required=False), category=category or None,
                        severity=severity, store_id=store_id, customer_id=customer_id, source="ivr",
                        uniqueid=uniqueid or None)
        ticket_id, _created, inv = await self._run(self.store.create, new, IVR, self.now())
        await self._after(inv)
        return int(ticket_id)

    async def free_slots(self, store_id: int, after: datetime, limit: int) -> list[Slot]:
        found = await self.slots(store_id, after, limit)
        return [Slot(store_id, s.start, s.end) for s in found]

    async def book_appointment(self, customer_id: int, store_id: int, vehicle_id: int | None, slot: Slot,
                               uniqueid: str) -> Booking | SlotTaken:
        try:
            done = await self.book(IVR, customer_id=customer_id, store_id=store_id, vehicle_id=vehicle_id,
                                   slot=slot.starts_at, uniqueid=uniqueid or None, source="ivr")
        except TicketError as exc:
            # full, or the caller already holds an appointment at that hour: either way, offer another time
            if exc.status == 409 and exc.field in ("slot", "customer_id"):
                return SlotTaken(slot)
            raise
        return Booking(done.ticket_id, customer_id, done.store_id, vehicle_id,
                       Slot(done.store_id, done.slot, done.slot + SLOT))

    async def notify_booking(self, booking: Booking) -> None:
        """The "booking made" notification is written with the booking itself (one transaction: it cannot be
        lost or sent twice); this only sends it now rather than at the deliverer's next poll."""
        if self.on_notify is not None and self.store.outbox.enabled:
            self.on_notify()

    async def open_repairs(self, customer_id: int) -> list[OpenRepair]:
        rows = await self._run(self.store.open_repairs, customer_id)
        return [OpenRepair(r["id"], r["status"], r["vehicle_id"], r["category"] or "other", r["updated_at"])
                for r in rows]
