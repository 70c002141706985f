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
- a change to many customers at once — a full score recompute (the nightly job, ``ccserver scores recompute``),
  a demo-data load — ``await Invalidator.everything()``: every cached customer is dropped, and once more after
  ``settle`` seconds. A recompute changes nearly every score (recency decays daily), so "what changed" is
  every cached customer anyway; the cache holds only the numbers called in the last ``ttl`` (10 min), so this
  costs one SQL read per recently active number. The second sweep catches a lookup that read SQL before the
  change and stored its answer after the first sweep (the fences only cover customers that were cached).
  ``ccserver scores recompute`` and ``ccserver demo-data`` run in their own process: with Redis they sweep
  the shared cache themselves; a single node without Redis notices their new ``value_cutoffs`` row
  (``CutoffsWatcher``) and sweeps its in-process cache.

A customer created by a call (a prospect) needs no hook: the call stores the new identity right after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from ccserver.customers.cache import SummaryCache
from ccserver.customers.scores import DEFAULT_TIME_ZONE, rescore_customer
from ccserver.db.models import CompanyContact, PhoneNumber, ValueCutoffs, customer_phones
from routing.value import ValueWeights

__all__ = [
    "CutoffsWatcher",
    "Invalidation",
    "Invalidator",
    "customer_changed",
    "latest_cutoffs_id",
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


def campaign_disposed(
    session: Session,
    customer_id: int,
    *,
    as_of: date | None = None,
    weights: ValueWeights | None = None,
    tz: str = DEFAULT_TIME_ZONE,
) -> Invalidation:
    """An agent disposed a campaign call of ``customer_id`` (reached, booked, refused …): rescore and invalidate."""
    return _rescore(session, customer_id, as_of, weights, tz)


class Invalidator:
    """Applies Invalidations to a SummaryCache: ``await apply(inv)`` on the loop, ``submit(inv)`` from any
    thread. Twisted-driven coroutines await ``apply`` through ``cache.bridge`` like any cache call.

    ``settle``: seconds between the two sweeps of ``everything()`` — longer than a lookup takes from its SQL
    read to its store (the routing deadline, 1.5 s), like the cache's own fences (10 s). ``sleep`` is
    injectable for tests."""

    def __init__(self, cache: SummaryCache, loop: asyncio.AbstractEventLoop | None = None, *,
                 settle: float = 10.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.cache = cache
        self.loop = loop
        self.settle = settle
        self._sleep = sleep
        # Other caches of customer data (the screen-pop cards) drop what changed too: ``listener(inv)``.
        self.listeners: list[Callable[[Invalidation], Any]] = []

    async def everything(self) -> int:
        """Drop every cached customer, wait ``settle`` seconds, drop again; returns how many were dropped."""
        dropped = await self.cache.invalidate_all()
        log.info("customer cache: %d cached customers dropped after a bulk change", dropped)
        await self._sleep(self.settle)
        late = await self.cache.invalidate_all()
        if late:
            log.info("customer cache: %d more dropped (stored while the change committed)", late)
        return dropped + late

    async def apply(self, inv: Invalidation) -> None:
        for listener in self.listeners:
            listener(inv)
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


def latest_cutoffs_id(session_factory: Callable[[], Session]) -> int | None:
    """Id of the newest ``value_cutoffs`` row (every full recompute adds one), or None. Blocking."""
    with session_factory() as session:
        latest = session.execute(select(func.max(ValueCutoffs.id))).scalar()
    return None if latest is None else int(latest)


class CutoffsWatcher:
    """A single node without Redis: another process's full recompute (``ccserver scores recompute``,
    ``ccserver demo-data``) cannot reach this process's cache, but it leaves a new ``value_cutoffs`` row. Every
    ``interval`` seconds ``read_latest()`` (``latest_cutoffs_id`` in a worker thread) is compared with the id
    seen before; a new one → ``invalidator.everything()``. The first read only sets the baseline."""

    def __init__(self, read_latest: Callable[[], Awaitable[int | None]], invalidator: Invalidator, *,
                 interval: float = 30.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._read = read_latest
        self.invalidator = invalidator
        self.interval = interval
        self._sleep = sleep
        self._seen: int | None = None
        self._started = False
        self.sweeps = 0

    async def check(self) -> bool:
        """Read once; True when a new recompute was seen and the cache swept."""
        latest = await self._read()
        if not self._started:
            self._started, self._seen = True, latest
            return False
        if latest == self._seen:
            return False
        self._seen = latest
        log.info("customer cache: a score recompute finished elsewhere (value_cutoffs %s); sweeping", latest)
        await self.invalidator.everything()
        self.sweeps += 1
        return True

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled; a failed read is logged and retried."""
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away: try again later
                log.warning("customer cache: could not check for a finished recompute (%s)", exc)
            await self._sleep(self.interval)
