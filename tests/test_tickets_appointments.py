"""Workshop appointments on SQLite and PostgreSQL: free slots in the store's hours, booking, the race for the last
place (real threads, real connections), idempotent IVR bookings, reschedule and cancel."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ccserver.db.models import Appointment, Ticket
from ccserver.tickets import Actor, TicketError, TicketSettings
from ivr.ports import Booking, Slot, SlotTaken
from tests.tickets_support import events, make_service, notifications, store_id

SH = ZoneInfo("Asia/Shanghai")
ADMIN = Actor(None, "admin", "admin")
ONE_SEAT = TicketSettings.from_dict({"slots": {"capacity": [
    {"weekdays": [0, 1, 2, 3, 4, 5, 6], "hours": [8, 9, 10, 11, 13, 14, 15, 16], "capacity": 1}]}})


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_free_slots_follow_capacity_hours_and_bookings(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    bj = store_id(sessions, "bj-volvo")
    slots = asyncio.run(service.slots(bj, limit=3))
    # Monday 10:00, an hour's lead: 11:00, then the lunch hour has no capacity
    assert [s.start.astimezone(SH) for s in slots] == [local("2026-11-23T11:00"), local("2026-11-23T13:00"),
                                                       local("2026-11-23T14:00")]
    assert all((s.capacity, s.booked, s.free) == (3, 0, 3) for s in slots)
    saturday = asyncio.run(service.slots(bj, after=local("2026-11-28T16:30"), limit=2))
    # nothing after 16:00 on Saturday, nothing on Sunday: Monday 08:00
    assert [s.start.astimezone(SH) for s in saturday] == [local("2026-11-30T08:00"), local("2026-11-30T09:00")]
    # with Sunday capacity configured, the service line is still closed on Sundays
    sunday, _, _ = make_service(sessions, settings=ONE_SEAT)
    assert asyncio.run(sunday.slots(bj, after=local("2026-11-29T00:00"), limit=1))[0].start == \
        local("2026-11-30T08:00")
    assert asyncio.run(service.slots(bj, after=local("2027-06-01T00:00"), limit=3)) == []  # beyond the horizon


def test_book_until_full_then_409(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    bj = store_id(sessions, "bj-volvo")
    slot = local("2026-11-23T14:00")
    booked = [asyncio.run(service.book(ADMIN, customer_id=c, store_id=bj, slot=slot)) for c in (1, 2, 3)]
    assert sorted(b.seat for b in booked) == [1, 2, 3]
    with pytest.raises(TicketError) as full:
        asyncio.run(service.book(ADMIN, customer_id=4, store_id=bj, slot=slot))
    assert (full.value.status, full.value.field) == (409, "slot")
    assert slot not in [s.start for s in asyncio.run(service.slots(bj, limit=10))]
    ticket = asyncio.run(service.get(booked[0].ticket_id, ADMIN))
    assert ticket["kind"] == "appointment" and ticket["status"] == "assigned" and ticket["department"] == "service"
    assert ticket["sla"]["first_response"]["state"] == "met"  # confirmed at once
    assert ticket["appointment"] == {"slot": slot.astimezone(ZoneInfo("UTC")).isoformat(), "status": "booked",
                                     "time_zone": "Asia/Shanghai"}  # the store's: pages show the slot in it
    assert events(sessions, booked[0].ticket_id) == [("created", None, "assigned"), ("booked", None, None)]
    assert ("booking.made", booked[0].ticket_id) in notifications(sessions)
    # cancelling gives the seat back
    asyncio.run(service.transition(booked[1].ticket_id, "cancelled", ADMIN, comment="客户改期"))
    again = asyncio.run(service.book(ADMIN, customer_id=4, store_id=bj, slot=slot))
    assert again.seat == booked[1].seat


@pytest.mark.parametrize("slot, why", [
    ("2026-11-23T14:30", "on the hour"),
    ("2026-11-23T10:00", "not bookable now"),  # now: too soon
    ("2026-11-29T09:00", "no appointments"),  # Sunday
    ("2026-11-23T12:00", "no appointments"),  # lunch
    ("2026-12-31T09:00", "not bookable now"),  # beyond the horizon
])  # fmt: skip
def test_a_slot_that_is_not_one_is_400(loaded: Any, slot: str, why: str) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    with pytest.raises(TicketError, match=why) as caught:
        asyncio.run(service.book(ADMIN, customer_id=1, store_id=store_id(sessions, "bj-volvo"), slot=local(slot)))
    assert (caught.value.status, caught.value.field) == (400, "slot")
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Appointment)).scalar() == 0
        assert s.execute(select(func.count()).select_from(Ticket).where(Ticket.kind == "appointment")).scalar() == 0


def test_callers_racing_for_the_last_place_one_wins(loaded: Any) -> None:
    """Real threads, each on its own database connection, released together at a barrier for each slot."""
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions, settings=ONE_SEAT)
    bj = store_id(sessions, "bj-volvo")
    callers = 4
    slots = [local("2026-11-24T08:00") + timedelta(hours=h) for h in (0, 1, 2, 3, 5)]
    results: dict[datetime, list[Any]] = {s: [] for s in slots}
    now = service.now()

    def caller(slot: datetime, customer_id: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            results[slot].append(service.appointments.book(customer_id=customer_id, store_id=bj, slot=slot,
                                                           actor=ADMIN, now=now, uniqueid=f"{slot}:{customer_id}"))
        except TicketError as exc:
            results[slot].append(exc)

    for slot in slots:
        barrier = threading.Barrier(callers)
        threads = [threading.Thread(target=caller, args=(slot, c, barrier)) for c in range(1, callers + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    for slot, outcome in results.items():
        won = [r for r in outcome if not isinstance(r, TicketError)]
        lost = [r for r in outcome if isinstance(r, TicketError)]
        assert len(won) == 1, (slot, outcome)
        assert len(lost) == callers - 1 and all((e.status, e.field) == (409, "slot") for e in lost)
    with sessions() as s:
        per_slot = dict(s.execute(select(Appointment.slot_start, func.count()).group_by(Appointment.slot_start)).all())
        assert sorted(per_slot.values()) == [1] * len(slots)
        # the losers left nothing behind: one appointment ticket per booking
        assert s.execute(select(func.count()).select_from(Ticket).where(Ticket.kind == "appointment")).scalar() == \
            len(slots)


def test_the_ivr_books_once_per_call_and_hears_slot_taken(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions, settings=ONE_SEAT)
    gz = store_id(sessions, "gz-honda")
    offered = asyncio.run(service.free_slots(gz, service.now(), 3))
    assert [s.starts_at.astimezone(SH) for s in offered] == [local("2026-11-23T11:00"), local("2026-11-23T13:00"),
                                                             local("2026-11-23T14:00")]
    assert all(isinstance(s, Slot) and s.store_id == gz and s.ends_at - s.starts_at == timedelta(hours=1)
               for s in offered)
    booking = asyncio.run(service.book_appointment(2, gz, None, offered[0], "1700000001.5"))
    assert isinstance(booking, Booking) and booking.customer_id == 2 and booking.slot.starts_at == offered[0].starts_at
    again = asyncio.run(service.book_appointment(2, gz, None, offered[0], "1700000001.5"))
    assert again == booking  # the same call asking again: the same booking, no second place taken
    taken = asyncio.run(service.book_appointment(1, gz, None, offered[0], "1700000002.9"))
    assert taken == SlotTaken(offered[0])
    asyncio.run(service.notify_booking(booking))  # written with the booking: nothing more to queue
    assert [e for e, t in notifications(sessions) if t == booking.ticket_id] == ["booking.made"]


def test_reschedule_moves_the_place(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions, settings=ONE_SEAT)
    bj = store_id(sessions, "bj-volvo")
    first = asyncio.run(service.book(ADMIN, customer_id=1, store_id=bj, slot=local("2026-11-24T09:00")))
    other = asyncio.run(service.book(ADMIN, customer_id=2, store_id=bj, slot=local("2026-11-24T10:00")))
    with pytest.raises(TicketError) as full:
        asyncio.run(service.reschedule(first.ticket_id, local("2026-11-24T10:00"), ADMIN))
    assert (full.value.status, full.value.field) == (409, "slot")
    moved = asyncio.run(service.reschedule(first.ticket_id, local("2026-11-24T11:00"), ADMIN, comment="客户要求"))
    assert moved.slot == local("2026-11-24T11:00") and moved.seat == 1
    # the old place is free again
    assert asyncio.run(service.book(ADMIN, customer_id=3, store_id=bj, slot=local("2026-11-24T09:00"))).seat == 1
    assert [e[0] for e in events(sessions, first.ticket_id)] == ["created", "booked", "rescheduled"]
    with pytest.raises(TicketError) as not_appointment:
        repair = asyncio.run(service.create_ticket("repair", 1, bj, "breakdown", "x", "", "normal", "u9"))
        asyncio.run(service.reschedule(repair, local("2026-11-24T13:00"), ADMIN))
    assert not_appointment.value.status == 400
    assert other.seat == 1


def test_a_customer_cannot_hold_two_appointments_at_one_time(loaded: Any) -> None:
    """Booked twice into one slot (two seats), or at another store at the same hour: refused, naming the first."""
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    bj, sh = store_id(sessions, "bj-volvo"), store_id(sessions, "sh-bmw")
    first = asyncio.run(service.book(ADMIN, customer_id=1, store_id=sh, slot=local("2026-11-24T08:00")))
    for store in (sh, bj):
        with pytest.raises(TicketError) as twice:
            asyncio.run(service.book(ADMIN, customer_id=1, store_id=store, slot=local("2026-11-24T08:00")))
        assert (twice.value.status, twice.value.field, twice.value.extra) == (
            409, "customer_id", {"existing_ticket": first.ticket_id})
        assert str(twice.value) == (f"the customer already has appointment #{first.ticket_id} at sh-bmw, "
                                    "2026-11-24 08:00, at that time")
    # the IVR hears "taken" and offers another time
    ivr_slot = Slot(bj, local("2026-11-24T08:00"), local("2026-11-24T09:00"))
    assert asyncio.run(service.book_appointment(1, bj, None, ivr_slot, "1700000003.1")) == SlotTaken(ivr_slot)
    # the next hour does not overlap; another customer takes the second seat of the first
    nine = asyncio.run(service.book(ADMIN, customer_id=1, store_id=bj, slot=local("2026-11-24T09:00")))
    assert asyncio.run(service.book(ADMIN, customer_id=2, store_id=sh, slot=local("2026-11-24T08:00"))).seat == 2
    # nor can a reschedule put the customer's two appointments together
    with pytest.raises(TicketError) as moved:
        asyncio.run(service.reschedule(nine.ticket_id, local("2026-11-24T08:00"), ADMIN))
    assert (moved.value.status, moved.value.field) == (409, "customer_id")
    # an appointment cancelled, or done (resolved), no longer holds the customer
    asyncio.run(service.transition(first.ticket_id, "cancelled", ADMIN, comment="客户改期"))
    again = asyncio.run(service.book(ADMIN, customer_id=1, store_id=sh, slot=local("2026-11-24T08:00")))
    asyncio.run(service.transition(again.ticket_id, "in_progress", ADMIN))
    asyncio.run(service.transition(again.ticket_id, "resolved", ADMIN))
    assert asyncio.run(service.book(ADMIN, customer_id=1, store_id=bj, slot=local("2026-11-24T08:00"))).created


def test_one_customer_booked_twice_at_once_gets_one_appointment(loaded: Any) -> None:
    """Real threads on their own connections book one customer into the same hour (free seats, two stores) at once:
    one wins, the others hear 409 naming the customer, and nothing of theirs is left behind."""
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    stores = [store_id(sessions, "sh-bmw"), store_id(sessions, "bj-volvo")] * 2
    now = service.now()
    outcome: list[Any] = []
    barrier = threading.Barrier(len(stores))

    def caller(store: int) -> None:
        barrier.wait()
        try:
            outcome.append(service.appointments.book(customer_id=5, store_id=store, slot=local("2026-11-24T10:00"),
                                                     actor=ADMIN, now=now))
        except TicketError as exc:
            outcome.append(exc)

    threads = [threading.Thread(target=caller, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [r for r in outcome if not isinstance(r, TicketError)]
    lost = [r for r in outcome if isinstance(r, TicketError)]
    assert len(won) == 1, outcome
    assert len(lost) == len(stores) - 1 and all((e.status, e.field) == (409, "customer_id") for e in lost)
    with sessions() as s:
        assert s.scalars(select(Appointment.ticket_id).where(Appointment.customer_id == 5)).all() == \
            [won[0].ticket_id]
