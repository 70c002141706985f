"""What the IVR reads from SQL itself (read-only, blocking: run in the thread pool): the caller's cars and home
store, and their cars' workshop visits of the day. Tickets and appointment slots are the tickets service's
(``ivr.ports``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from ccserver.db.models import Customer, ServiceVisit, Vehicle

__all__ = ["CallerCars", "Car", "TodaysVisit", "caller_cars", "todays_visits", "ACTIVE_VISITS", "MAX_CARS"]

MAX_CARS = 9  # one key each
# Visits a caller may ask about: not collected, not cancelled.
ACTIVE_VISITS = ("booked", "in_progress", "waiting_parts", "ready")


@dataclass(frozen=True, slots=True)
class Car:
    id: int
    model: str
    plate: str | None


@dataclass(frozen=True, slots=True)
class CallerCars:
    home_store_id: int | None
    cars: tuple[Car, ...]


@dataclass(frozen=True, slots=True)
class TodaysVisit:
    visit_id: int
    status: str
    model: str | None
    plate: str | None
    vehicle_id: int | None
    store_id: int | None
    promised_at: datetime | None


def caller_cars(session_factory: Callable[[], Any], customer_id: int) -> CallerCars:
    """The customer's home store and cars (newest purchase first, at most :data:`MAX_CARS`)."""
    with session_factory() as session:
        home = session.scalar(select(Customer.home_store_id).where(Customer.id == customer_id))
        rows = session.execute(
            select(Vehicle.id, Vehicle.model, Vehicle.plate).where(Vehicle.customer_id == customer_id)
            .order_by(Vehicle.purchase_date.desc().nulls_last(), Vehicle.id).limit(MAX_CARS)
        ).all()
    return CallerCars(home, tuple(Car(int(r.id), r.model, r.plate) for r in rows))


def todays_visits(session_factory: Callable[[], Any], customer_id: int, day_start: datetime,
                  day_end: datetime) -> list[TodaysVisit]:
    """The customer's workshop visits that concern today (``day_start`` … ``day_end``, aware): booked in for
    today, or opened by today and still in the workshop (in progress, waiting for parts, ready). Oldest first."""
    with session_factory() as session:
        rows = session.execute(
            select(ServiceVisit.id, ServiceVisit.status, ServiceVisit.vehicle_id, ServiceVisit.store_id,
                   ServiceVisit.promised_at, Vehicle.model, Vehicle.plate)
            .outerjoin(Vehicle, Vehicle.id == ServiceVisit.vehicle_id)
            .where(ServiceVisit.customer_id == customer_id, ServiceVisit.status.in_(ACTIVE_VISITS),
                   ServiceVisit.opened_at < day_end,
                   or_(ServiceVisit.opened_at >= day_start, ServiceVisit.status != "booked"))
            .order_by(ServiceVisit.opened_at, ServiceVisit.id).limit(MAX_CARS)
        ).all()
    return [TodaysVisit(int(r.id), r.status, r.model, r.plate, r.vehicle_id, r.store_id, r.promised_at)
            for r in rows]
