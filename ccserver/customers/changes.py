"""Change hooks: what the write paths call so scores and the number cache follow the data.

The hooks are **blocking** (run them in the worker thread that did the write, with its session) and return an
``Invalidation``: the customer ids and numbers whose cached identities are now wrong. They never commit.
Usage in a write path::

    def record_order(session, ...):                 # worker thread
        session.add(Order(...))
        inv = changes.order_or_visit_recorded(session, customer_id)   # rescored in this transaction
        session.commit()
        return inv
    inv = await ctx.run_blocking(record_order, ...)
    await invalidator.apply(inv)                    # on the loop, after the commit

Apply **after** the commit: invalidating before it would let a concurrent call re-cache the old row. From a
thread that has no loop at hand, ``Invalidator.submit(inv)`` schedules the same onto the loop with
``loop.call_soon_threadsafe`` (fire and forget; errors are logged).

Which hook:

- ``customer_changed(session, id)``: any edit of the customer row (name, VIP flag, people, language) **and its
  deletion** (call it before or after the delete; it only invalidates).
- ``numbers_changed(session, e164s)``: a number added to / removed from / moved between customers or company
  contacts. Returns the numbers, plus every customer currently on them (their "shared" state may change).
- ``order_or_visit_recorded(session, id)`` / ``ticket_changed(session, id)``: rescored at once against the
  current cut-offs (``scores.rescore_customer``), then invalidated. A missing customer is only invalidated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from ccserver.customers.cache import SummaryCache
from ccserver.customers.scores import DEFAULT_TIME_ZONE, rescore_customer
from ccserver.db.models import CompanyContact, PhoneNumber, customer_phones
from routing.value import ValueWeights

__all__ = [
    "Invalidation",
    "Invalidator",
    "customer_changed",
    "numbers_changed",
    "order_or_visit_recorded",
    "ticket_changed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invalidation:
    customer_ids: frozenset[int] = field(default_factory=frozenset)
    numbers: frozenset[str] = field(default_factory=frozenset)
    rescored: tuple[tuple[int, float, str], ...] = ()  # (customer id, score, tier) the hook wrote

    def __or__(self, other: Invalidation) -> Invalidation:
        return Invalidation(self.customer_ids | other.customer_ids, self.numbers | other.numbers,
                            self.rescored + other.rescored)  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.customer_ids or self.numbers)


def _today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def customer_changed(session: Session, customer_id: int) -> Invalidation:
    return Invalidation(customer_ids=frozenset({int(customer_id)}))


def numbers_changed(session: Session, e164s: Iterable[str]) -> Invalidation:
    numbers = frozenset(e for e in e164s if e)
    if not numbers:
        return Invalidation()
    p, cp, cc = PhoneNumber.__table__, customer_phones, CompanyContact.__table__
    owners = session.execute(
        union(
            select(cp.c.customer_id).join(p, p.c.id == cp.c.phone_id).where(p.c.e164.in_(numbers)),
            select(cc.c.company_id).join(p, p.c.id == cc.c.phone_id).where(p.c.e164.in_(numbers)),
        )
    ).scalars()
    return Invalidation(customer_ids=frozenset(int(i) for i in owners), numbers=numbers)


def _rescore(session: Session, customer_id: int, as_of: date | None, weights: ValueWeights | None,
             tz: str) -> Invalidation:  # fmt: skip
    inv = customer_changed(session, customer_id)
    try:
        score, tier = rescore_customer(session, customer_id, as_of=as_of or _today(tz), weights=weights, tz=tz)
    except LookupError:
        return inv
    return Invalidation(inv.customer_ids, inv.numbers, ((int(customer_id), score, tier),))


def order_or_visit_recorded(
    session: Session,
    customer_id: int,
    *,
    as_of: date | None = None,
    weights: ValueWeights | None = None,
    tz: str = DEFAULT_TIME_ZONE,
) -> Invalidation:
    """An order or a service visit was written for ``customer_id``: rescore now (``as_of`` default: today in
    ``tz``) and invalidate."""
    return _rescore(session, customer_id, as_of, weights, tz)


def ticket_changed(
    session: Session,
    customer_id: int,
    *,
    as_of: date | None = None,
    weights: ValueWeights | None = None,
    tz: str = DEFAULT_TIME_ZONE,
) -> Invalidation:
    """A ticket of ``customer_id`` was opened / changed status (the open-complaint flag, the risk flag)."""
    return _rescore(session, customer_id, as_of, weights, tz)


class Invalidator:
    """Applies Invalidations to a SummaryCache: ``await apply(inv)`` on the loop, ``submit(inv)`` from any
    thread. Twisted-driven coroutines await ``apply`` through ``cache.bridge`` like any cache call."""

    def __init__(self, cache: SummaryCache, loop: asyncio.AbstractEventLoop | None = None):
        self.cache = cache
        self.loop = loop

    async def apply(self, inv: Invalidation) -> None:
        if inv.numbers:
            await self.cache.invalidate_numbers(sorted(inv.numbers))
        for customer_id in sorted(inv.customer_ids):
            await self.cache.invalidate_customer(customer_id)

    def submit(self, inv: Invalidation) -> None:
        """Thread-safe, fire and forget: schedule ``apply(inv)`` on the loop."""
        if not inv:
            return
        loop = self.loop
        if loop is None:
            raise RuntimeError("Invalidator.submit needs the loop (pass loop=...)")
        loop.call_soon_threadsafe(self._start, inv)

    def _start(self, inv: Invalidation) -> None:
        task = asyncio.ensure_future(self.apply(inv))
        task.add_done_callback(self._done)

    @staticmethod
    def _done(task: Any) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("cache invalidation failed: %s", task.exception())
