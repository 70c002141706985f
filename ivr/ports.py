"""What the IVR needs from the tickets service: a port (``typing.Protocol``) the IVR codes against.

The tickets service (``ccserver/tickets``) implements it; the IVR's tests use an in-memory double
(``tests/ivr_support.py``). Every method is ``async`` and may be awaited from a FastAGI handler (which resumes on
asyncio futures, e.g. ``pool.run`` for SQL, and on Deferreds).

Contract, beyond the signatures:

- **Nothing half-written.** Each call is one transaction: it has happened entirely or not at all. The IVR only
  calls ``create_ticket`` / ``book_appointment`` once the caller has decided (a confirmed key press), so a
  caller who hangs up before that leaves nothing, and one who hangs up after it leaves a whole ticket or booking.
- **Retry-safe by call.** ``uniqueid`` is the call's Asterisk uniqueid: ``create_ticket`` with a ``(kind,
  uniqueid)`` already used returns that ticket's id, and ``book_appointment`` with a ``uniqueid`` already booked
  returns that booking, so the IVR may repeat a call whose answer it did not get.
- **Times** are timezone-aware datetimes (UTC or the store's zone); the IVR reads them back in the store's zone.
- **Failures** are exceptions (SQL down, a bug): the IVR then hands the caller to a person and logs it. The one
  expected "no" is :class:`SlotTaken` — returned, not raised — when another caller took the last place of a slot
  first (nothing was written; the IVR offers the next free slots).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["Booking", "OpenRepair", "SEVERITIES", "Slot", "SlotTaken", "TicketsPort"]

# Severities the IVR files tickets with (the tickets service's SLA table is per kind and severity).
SEVERITIES = ("normal", "high")


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable workshop appointment slot at one store: ``starts_at`` up to ``ends_at`` (aware datetimes)."""

    store_id: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Booking:
    """A booked appointment: the appointment ticket ``ticket_id`` holding one place of ``slot``."""

    ticket_id: int
    customer_id: int
    store_id: int
    vehicle_id: int | None
    slot: Slot


@dataclass(frozen=True, slots=True)
class SlotTaken:
    """``book_appointment``'s answer when ``slot`` has no place left (nothing was written)."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class OpenRepair:
    """One of the customer's repair tickets that is not resolved yet. ``status``: the ticket's lifecycle state
    (``new``, ``assigned``, ``in_progress``); ``vehicle_id`` when the ticket names the car."""

    ticket_id: int
    status: str
    vehicle_id: int | None
    category: str
    updated_at: datetime


@runtime_checkable
class TicketsPort(Protocol):
    async def create_ticket(self, kind: str, customer_id: int | None, store_id: int | None, category: str,
                            subject: str, body: str, severity: str, uniqueid: str) -> int:
        """Open a ticket (``kind``: ``repair``, ``complaint``, ``callback`` …; ``category`` one of the kind's
        categories, e.g. ``breakdown``; ``severity`` one of :data:`SEVERITIES`); its id. ``customer_id`` None: an
        unidentified caller (the body names the number). Routed to its department by the service's rules."""
        ...

    async def free_slots(self, store_id: int, after: datetime, limit: int) -> list[Slot]:
        """The next ``limit`` (at most) slots of ``store_id`` with a place free, starting after ``after``,
        earliest first; ``[]`` when none in the service's booking horizon."""
        ...

    async def book_appointment(self, customer_id: int, store_id: int, vehicle_id: int | None, slot: Slot,
                               uniqueid: str) -> Booking | SlotTaken:
        """Book one place of ``slot`` atomically (the appointment ticket and the place in one transaction): the
        :class:`Booking`, or :class:`SlotTaken` when the slot filled up first. Two callers racing for the last
        place: exactly one gets it."""
        ...

    async def notify_booking(self, booking: Booking) -> None:
        """Send the booking notification (the webhook's "booking made", e.g. an SMS to the customer). Idempotent
        per booking; the IVR calls it right after booking, whether or not the caller is still on the line."""
        ...

    async def open_repairs(self, customer_id: int) -> list[OpenRepair]:
        """The customer's repair tickets not yet resolved, most recently updated first."""
        ...
