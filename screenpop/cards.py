"""Where the cards come from: one SQL read per customer, off the pop's hot path, cached by customer id.

``CardCache.prefetch(uniqueid, …)`` runs at ``CallOffered`` (the caller joined a queue — seconds before any phone
rings): it finds the customer (the call's ``CC_CUSTOMER_ID``, else the caller's number through the customer
directory, never creating a prospect) and loads their card data in the thread pool, unless a fresh copy is
cached. ``AgentRinging`` then takes ``card_for(uniqueid)``: a dict lookup, no SQL. A customer's entry is dropped
when the customer changes (``Invalidator.listeners``: orders, visits, tickets, edits) and after ``ttl`` seconds in
any case (another node's changes).

The IVR path is looked up beside the card, by the call's decision id (``ivr_of``: the routing node's memo, else
the decision log — ``ccserver.callrouting.decision_memo``), and joins the card when it is known: a slow lookup
never holds the card back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from screenpop.card import CallFacts

log = logging.getLogger("ccserver.screenpop")

CARD_TTL = 120.0
MAX_CALLS = 5_000  # calls remembered between CallOffered and CallEnded (a leak guard, far above a busy hour)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def load_card_data(session_factory: Callable[[], Any], customer_id: int) -> dict[str, Any] | None:
    """Everything the card shows of one customer (blocking: the thread pool)."""
    from sqlalchemy import select

    from ccserver.customers.valuation import reasons_from_components
    from ccserver.db.models import Call, Customer, Order, ServiceVisit, Store, Ticket, User, Vehicle
    from ccserver.tickets.lifecycle import FINAL

    with session_factory() as s:
        c = s.get(Customer, customer_id)
        if c is None:
            return None

        def person(user_id: int | None) -> dict[str, Any] | None:
            u = s.get(User, user_id) if user_id else None
            return {"name": u.display_name or u.username, "extension": u.extension} if u is not None else None

        store = s.get(Store, c.home_store_id) if c.home_store_id else None
        vehicles = s.scalars(select(Vehicle).where(Vehicle.customer_id == c.id).order_by(Vehicle.id)).all()
        orders = s.scalars(select(Order).where(Order.customer_id == c.id)
                           .order_by(Order.ordered_on.desc(), Order.id.desc()).limit(5)).all()
        visits = s.scalars(select(ServiceVisit).where(ServiceVisit.customer_id == c.id)
                           .order_by(ServiceVisit.opened_at.desc(), ServiceVisit.id.desc()).limit(5)).all()
        tickets = s.scalars(select(Ticket).where(Ticket.customer_id == c.id, Ticket.status.not_in(FINAL))
                            .order_by(Ticket.id.desc()).limit(10)).all()
        calls = s.scalars(select(Call).where(Call.customer_id == c.id)
                          .order_by(Call.entered_at.desc(), Call.id.desc()).limit(5)).all()
        return {
            "id": c.id, "kind": c.kind, "name": c.name, "tier": c.tier, "score": c.value_score,
            "reasons": reasons_from_components(c.score_components, c.value_score),
            "membership_level": c.membership_level, "membership_points": c.membership_points,
            "language": c.language, "lifecycle": c.lifecycle,
            "consultant": person(c.sales_consultant_id), "advisor": person(c.service_advisor_id),
            "store": store.name if store is not None else None,
            "birthday": _iso(c.birthday),
            "numbers": [p.e164 for p in c.phones],
            "vehicles": [{"brand": v.brand, "model": v.model, "plate": v.plate, "vin": v.vin,
                          "purchase_date": _iso(v.purchase_date), "mileage_km": v.mileage_km,
                          "next_maintenance_due": _iso(v.next_maintenance_due),
                          "insurance_expiry": _iso(v.insurance_expiry)} for v in vehicles],
            "orders": [{"kind": o.kind, "amount": float(o.amount), "date": _iso(o.ordered_on)} for o in orders],
            "visits": [{"date": _iso(v.opened_at), "status": v.status, "description": v.description}
                       for v in visits],
            "tickets": [{"id": t.id, "kind": t.kind, "status": t.status, "severity": t.severity,
                         "subject": t.subject} for t in tickets],
            "calls": [{"date": _iso(k.entered_at), "outcome": k.outcome, "disposition": k.disposition,
                       "queue": k.queue} for k in calls],
        }


def names_of(session_factory: Callable[[], Any], ids: list[int]) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from ccserver.db.models import Customer

    if not ids:
        return []
    with session_factory() as s:
        found = {row[0]: row[1] for row in s.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids)))}
    return [(str(i), found[i]) for i in ids if i in found]


@dataclass
class Prefetched:
    """What CallOffered found out for one call: the card data (None: nobody on file) and the call's facts."""

    data: dict[str, Any] | None
    facts: CallFacts


class CardCache:
    """``identify(raw_number) -> (customer_id | None, other_ids, created)`` and ``load(customer_id)`` are
    coroutines (the customer directory and :func:`load_card_data` through the thread pool)."""

    def __init__(self, load: Callable[[int], Awaitable[dict[str, Any] | None]],
                 identify: Callable[[str], Awaitable[tuple[int | None, list[tuple[str, str]]]]] | None = None, *,
                 now: Callable[[], float], ttl: float = CARD_TTL,
                 ivr_of: Callable[[str], Awaitable[str | None]] | None = None) -> None:
        self._load = load
        self._identify = identify
        self._ivr_of = ivr_of
        self._ivr: dict[str, asyncio.Future[str | None]] = {}  # uniqueid -> the IVR path lookup
        self._now = now
        self.ttl = ttl
        self._by_customer: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._loading: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._calls: dict[str, asyncio.Future[Prefetched]] = {}

    def invalidate(self, customer_ids: Any) -> None:
        for cid in customer_ids:
            self._by_customer.pop(int(cid), None)

    def listener(self, inv: Any) -> None:
        """For ``Invalidator.listeners``: a changed customer's card is read again at their next call."""
        self.invalidate(inv.customer_ids)

    async def customer(self, customer_id: int) -> dict[str, Any] | None:
        hit = self._by_customer.get(customer_id)
        if hit is not None and self._now() - hit[0] < self.ttl:
            return hit[1]
        pending = self._loading.get(customer_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(customer_id))
            self._loading[customer_id] = pending
            try:
                data = await pending
            finally:
                self._loading.pop(customer_id, None)
            self._by_customer[customer_id] = (self._now(), data)
            return data
        return await pending

    def prefetch(self, uniqueid: str, customer_id: str | None, caller_number: str | None,
                 ivr_path: str | None = None, caller_name: str | None = None,
                 decision_id: str | None = None) -> asyncio.Future[Prefetched]:
        """Start (once per call) finding and loading the caller's card, and its IVR path by ``decision_id``."""
        known = self._calls.get(uniqueid)
        if known is not None:
            return known
        if len(self._calls) >= MAX_CALLS:
            self._calls.pop(next(iter(self._calls)))
        if len(self._ivr) >= MAX_CALLS:
            self._ivr.pop(next(iter(self._ivr)))
        if decision_id and self._ivr_of is not None and ivr_path is None:
            self._ivr[uniqueid] = asyncio.ensure_future(self._ivr_of(decision_id))
        task = asyncio.ensure_future(self._prefetch(customer_id, caller_number, ivr_path, caller_name))
        self._calls[uniqueid] = task
        return task

    async def _prefetch(self, customer_id: str | None, caller_number: str | None, ivr_path: str | None,
                        caller_name: str | None) -> Prefetched:
        withheld = not caller_number or caller_number.lower() in ("anonymous", "unknown", "<unknown>", "restricted")
        if caller_name is not None and caller_name.lower() in ("<unknown>", "unknown", ""):
            caller_name = None
        facts = CallFacts(caller_number=None if withheld else caller_number, withheld=withheld, ivr_path=ivr_path)
        cid: int | None = int(customer_id) if customer_id and customer_id.isdigit() else None
        variants: list[tuple[str, str]] = []
        try:
            if self._identify is not None and not withheld and caller_number:
                found, variants = await self._identify(caller_number)
                if cid is None:
                    cid = found
            data = await self.customer(cid) if cid is not None else None
        except Exception as exc:  # noqa: BLE001 - a card that cannot load pops as an unknown caller, never fails
            log.warning("screen pop card could not load (%s): %s", type(exc).__name__, exc)
            data = None
        facts = CallFacts(caller_number=facts.caller_number, caller_name=caller_name, withheld=withheld,
                          ivr_path=ivr_path, variants=tuple(v for v in variants if cid is None or v[0] != str(cid)),
                          new_prospect=bool(data and data.get("lifecycle") == "target"
                                            and data.get("tier") == "prospect" and not data.get("orders")))
        return Prefetched(data, facts)

    def ready(self, uniqueid: str) -> Prefetched | None:
        """The call's card if its prefetch finished (the hot path: no waiting, no SQL)."""
        task = self._calls.get(uniqueid)
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return self.with_ivr(uniqueid, task.result())

    def with_ivr(self, uniqueid: str, found: Prefetched) -> Prefetched:
        """``found`` with the call's IVR path when its lookup has finished (else as it is)."""
        ivr = self._ivr.get(uniqueid)
        if ivr is not None and found.facts.ivr_path is None and ivr.done() and not ivr.cancelled() \
                and ivr.exception() is None and ivr.result():
            found = Prefetched(found.data, dataclasses.replace(found.facts, ivr_path=ivr.result()))
        return found

    def pending(self, uniqueid: str) -> asyncio.Future[Prefetched] | None:
        return self._calls.get(uniqueid)

    def ivr_pending(self, uniqueid: str) -> asyncio.Future[str | None] | None:
        """The call's IVR path lookup (None: none started)."""
        return self._ivr.get(uniqueid)

    def forget(self, uniqueid: str) -> None:
        for task in (self._calls.pop(uniqueid, None), self._ivr.pop(uniqueid, None)):
            if task is not None and not task.done():
                task.cancel()
