"""Workshop appointments: free slots, and booking that two callers racing for the last slot cannot both win.

A slot is one hour from ``hour:00`` in the store's time zone, with a capacity per store, weekday and hour
(``tickets.slots.capacity``), open only while the store's ``tickets.slots.line`` is (holidays close it, make-up
working days open it), from ``lead_minutes`` ahead to ``horizon_days`` out.

**Race-safe booking, on SQLite and PostgreSQL.** Each booking takes a *seat* (1 … capacity) of its slot, and the
unique index ``(store_id, slot_start, seat)`` lets one booking hold each seat. A booking reads the seats taken,
inserts the lowest free one together with its appointment ticket — one transaction — and when a concurrent
booking committed that seat first, its insert fails, the whole transaction is rolled back (nothing
half-written) and it is tried again: then it sees the seat taken and takes the next one, or finds the slot full
(409). A cancelled booking gives its seat up; a rescheduled one moves to a seat of its new slot the same way.

**One customer, one place at a time.** A customer who already holds an active appointment (booked, its ticket
still being worked: not cancelled, not done) overlapping the slot is refused (409, naming that appointment). The
seat index cannot see this (two seats, or two stores), so a booking first writes the customer's row: on
PostgreSQL that row lock, on SQLite the database's write lock, makes two bookings of one customer take turns,
and the second one sees the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ccserver.db.models import Appointment, Customer, Store, Ticket
from ccserver.texts import T
from ccserver.tickets import lifecycle
from ccserver.tickets.access import Actor
from ccserver.tickets.store import NewTicket, TicketError, TicketStore, retrying

__all__ = ["Appointments", "Booking", "Slot"]

SLOT = timedelta(hours=1)


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, UTC
    capacity: int
    booked: int
    time_zone: str = "UTC"  # the store's: the page shows the slot in it, whatever the browser's zone

    @property
    def end(self) -> datetime:
        return self.start + SLOT

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)


@dataclass(frozen=True)
class Booking:
    ticket_id: int
    appointment_id: int
    store_id: int
    slot: datetime  # aware, UTC
    seat: int | None
    created: bool  # False: this call had already booked it (the same answer again)


class Appointments:
    def __init__(self, store: TicketStore) -> None:
        self.tickets = store
        self.settings = store.settings

    # -- slots -----------------------------------------------------------------------------------------------------
    def _store(self, session: Session, store_id: int) -> tuple[str, str]:
        row = session.execute(select(Store.code, Store.time_zone).where(Store.id == store_id)).one_or_none()
        if row is None:
            raise TicketError(400, T("no such store"), "store_id")
        return str(row.code), str(row.time_zone or self.settings.time_zone)

    def _capacity(self, code: str, tz: ZoneInfo, store_id: int, start: datetime) -> int:
        local = start.astimezone(tz)
        capacity = self.settings.slot_capacity(code, local.weekday(), local.hour)
        if capacity <= 0:
            return 0
        calendar = self.tickets.calendars().get(store_id)
        if calendar is not None and calendar.hours and not calendar.is_open(start, self.settings.slot_line):
            return 0
        return capacity

    def _candidates(self, code: str, tz: ZoneInfo, store_id: int, earliest: datetime,
                    latest: datetime) -> list[tuple[datetime, int]]:
        out: list[tuple[datetime, int]] = []
        day: date = earliest.astimezone(tz).date()
        while True:
            for hour in range(24):
                start = datetime.combine(day, time(hour), tzinfo=tz).astimezone(earliest.tzinfo)
                if start < earliest:
                    continue
                if start > latest:
                    return out
                capacity = self._capacity(code, tz, store_id, start)
                if capacity:
                    out.append((start, capacity))
            day += timedelta(days=1)

    def _window(self, now: datetime) -> tuple[datetime, datetime]:
        return now + self.settings.slot_lead, now + timedelta(days=self.settings.slot_horizon_days)

    def free_slots(self, store_id: int, after: datetime, limit: int, now: datetime) -> list[Slot]:
        """The next ``limit`` slots of the store with a free seat, starting at or after ``after``."""
        earliest, latest = self._window(now)
        earliest = max(earliest, after)
        with self.tickets.sessions() as session:
            code, zone = self._store(session, store_id)
            candidates = self._candidates(code, ZoneInfo(zone), store_id, earliest, latest)
            if not candidates:
                return []
            booked = {self._utc(start): int(n) for start, n in session.execute(
                select(Appointment.slot_start, func.count())
                .where(Appointment.store_id == store_id, Appointment.status == "booked",
                       Appointment.slot_start >= candidates[0][0], Appointment.slot_start <= candidates[-1][0])
                .group_by(Appointment.slot_start))}
        slots = []
        for start, capacity in candidates:
            slot = Slot(self._utc(start), capacity, booked.get(self._utc(start), 0), zone)
            if slot.free:
                slots.append(slot)
                if len(slots) >= limit:
                    break
        return slots

    @staticmethod
    def _utc(value: datetime) -> datetime:
        return value.astimezone(ZoneInfo("UTC"))

    def _check_slot(self, session: Session, store_id: int, slot: datetime, now: datetime) -> int:
        """The capacity of ``slot`` at the store, or TicketError naming the field ``slot``."""
        if slot.tzinfo is None:
            raise TicketError(400, T("slot must carry a time zone offset"), "slot")
        code, zone = self._store(session, store_id)
        tz = ZoneInfo(zone)
        local = slot.astimezone(tz)
        if (local.minute, local.second, local.microsecond) != (0, 0, 0):
            raise TicketError(400, T("slot must start on the hour (store time)"), "slot")
        earliest, latest = self._window(now)
        if not earliest <= slot <= latest:
            raise TicketError(400, T("slot is not bookable now (too soon, past, or too far ahead)"), "slot")
        capacity = self._capacity(code, tz, store_id, slot)
        if capacity <= 0:
            raise TicketError(400, T("the store takes no appointments at that hour"), "slot")
        return capacity

    @staticmethod
    def _free_seat(session: Session, store_id: int, slot: datetime, capacity: int) -> int:
        taken = set(session.scalars(select(Appointment.seat).where(
            Appointment.store_id == store_id, Appointment.slot_start == slot, Appointment.seat.is_not(None))))
        for seat in range(1, capacity + 1):
            if seat not in taken:
                return seat
        raise TicketError(409, T("that slot is fully booked"), "slot")

    @staticmethod
    def _hold_customer(session: Session, customer_id: int) -> None:
        """Make bookings of one customer take turns until this transaction ends (see the module's docstring). A
        no-op write rather than SELECT … FOR UPDATE: SQLite has no row locks, and only a write starts its
        transaction (and takes its lock) before the reads that follow."""
        session.execute(update(Customer).where(Customer.id == customer_id).values(id=Customer.id))

    def _check_customer_free(self, session: Session, customer_id: int, slot: datetime,
                             moving: int | None = None) -> None:
        """TicketError 409 when the customer holds another active appointment overlapping ``slot`` (every slot is
        an hour long); ``moving``: the appointment being rescheduled, which does not count."""
        query = (select(Appointment.ticket_id, Appointment.slot_start, Store.code, Store.time_zone)
                 .join(Ticket, Ticket.id == Appointment.ticket_id).join(Store, Store.id == Appointment.store_id)
                 .where(Appointment.customer_id == customer_id, Appointment.status == "booked",
                        Ticket.status.in_(lifecycle.WORKING),
                        Appointment.slot_start > slot - SLOT, Appointment.slot_start < slot + SLOT)
                 .order_by(Appointment.slot_start).limit(1))
        if moving is not None:
            query = query.where(Appointment.id != moving)
        held = session.execute(query).first()
        if held is None:
            return
        zone = ZoneInfo(str(held.time_zone or self.settings.time_zone))
        when = self._utc(held.slot_start).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        raise TicketError(409, T("the customer already has appointment #{ticket} at {store}, {when}, at that time",
                                 ticket=held.ticket_id, store=held.code, when=when),
                          "customer_id", existing_ticket=held.ticket_id)

    # -- booking ---------------------------------------------------------------------------------------------------
    def book(self, *, customer_id: int, store_id: int, slot: datetime, actor: Actor, now: datetime,
             vehicle_id: int | None = None, uniqueid: str | None = None, source: str = "web",
             category: str | None = "maintenance", subject: str | None = None, body: str | None = None) -> Booking:
        """Book ``slot`` (aware) and open its appointment ticket, atomically; TicketError 409 when it is full.
        Idempotent per call (``uniqueid``): the same call booking again gets its first booking back."""
        slot = self._utc(slot)

        def write() -> Booking:
            with self.tickets.sessions.begin() as session:
                if uniqueid:
                    done = session.execute(
                        select(Appointment).join(Ticket, Ticket.id == Appointment.ticket_id)
                        .where(Ticket.dedupe_key == f"call:{uniqueid}:appointment")).scalar_one_or_none()
                    if done is not None:
                        return Booking(done.ticket_id, done.id, done.store_id, done.slot_start, done.seat, False)
                new = NewTicket(kind="appointment", subject=subject or "Workshop appointment", body=body,
                                category=category, store_id=store_id, customer_id=customer_id,
                                vehicle_id=vehicle_id, source=source, uniqueid=uniqueid)
                department, _code = self.tickets.validate_new(session, new)
                capacity = self._check_slot(session, store_id, slot, now)
                self._hold_customer(session, customer_id)
                self._check_customer_free(session, customer_id, slot)
                seat = self._free_seat(session, store_id, slot, capacity)
                first_due, _ = self.tickets._due("appointment", "normal", store_id, department, now)
                ticket_id, _created = self.tickets._insert_ticket(
                    session, new, actor, now, department, status="assigned", responded=True, due=(first_due, None))
                appointment = Appointment(ticket_id=ticket_id, store_id=store_id, customer_id=customer_id,
                                          vehicle_id=vehicle_id, slot_start=slot, seat=seat, status="booked",
                                          created_at=now, updated_at=now)
                session.add(appointment)
                session.flush()  # the seat's unique index decides here
                self.tickets._event(session, ticket_id, actor, now, "booked",
                                    detail={"slot": slot.isoformat(), "seat": seat})
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                self.tickets._notify(session, "booking.made", ticket, now, slot=slot.isoformat())
                return Booking(ticket_id, appointment.id, store_id, slot, seat, True)

        return retrying(write)  # type: ignore[no-any-return]

    def reschedule(self, ticket_id: int, slot: datetime, actor: Actor, now: datetime,
                   comment: str | None = None) -> Booking:
        slot = self._utc(slot)

        def write() -> Booking:
            with self.tickets.sessions.begin() as session:
                ticket = self.tickets._load(session, ticket_id, actor, lock=True)
                appointment = session.scalars(select(Appointment).where(Appointment.ticket_id == ticket_id)
                                              .with_for_update()).one_or_none()
                if ticket.kind != "appointment" or appointment is None:
                    raise TicketError(400, T("only an appointment can be rescheduled"), "ticket")
                if ticket.status not in lifecycle.WORKING or appointment.status != "booked":
                    raise TicketError(409, T("the appointment is {status}", status=ticket.status), "ticket",
                                      current=ticket.status)
                before = appointment.slot_start
                if before == slot:
                    return Booking(ticket.id, appointment.id, appointment.store_id, slot, appointment.seat, False)
                capacity = self._check_slot(session, appointment.store_id, slot, now)
                if appointment.customer_id is not None:
                    self._hold_customer(session, appointment.customer_id)
                    self._check_customer_free(session, appointment.customer_id, slot, moving=appointment.id)
                appointment.slot_start, appointment.seat, appointment.updated_at = slot, None, now
                session.flush()  # give the old seat up first
                appointment.seat = self._free_seat(session, appointment.store_id, slot, capacity)
                session.flush()
                ticket.updated_at = now
                self.tickets._event(session, ticket.id, actor, now, "rescheduled", comment=comment,
                                    detail={"from": before.isoformat(), "to": slot.isoformat(),
                                            "seat": appointment.seat})
                self.tickets._notify(session, "booking.rescheduled", ticket, now, slot=slot.isoformat(),
                                     previous_slot=before.isoformat())
                return Booking(ticket.id, appointment.id, appointment.store_id, slot, appointment.seat, True)

        return retrying(write)  # type: ignore[no-any-return]


def slot_json(slot: Slot) -> dict[str, Any]:
    """``start``/``end`` in UTC (what a booking sends back); ``local_start`` the same instant with the store's
    offset and ``time_zone`` its zone name, so a page shows the store's hour, not the browser's."""
    tz = ZoneInfo(slot.time_zone)
    return {"start": slot.start.isoformat(), "end": slot.end.isoformat(), "capacity": slot.capacity,
            "booked": slot.booked, "free": slot.free, "time_zone": slot.time_zone,
            "local_start": slot.start.astimezone(tz).isoformat()}
