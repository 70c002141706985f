"""Abandoned callers get a call back: a hub subscriber on ``CallAbandoned``.

A caller who hung up after waiting more than ``tickets.abandoned_min_wait_seconds`` in a queue gets a callback
ticket (``source = abandoned_call``), through the same de-duplication as callback requests
(ccserver/callrouting/callback.py): one per number and callback day, whether the caller asked for a call back,
hung up twice, or both. The ticket keeps when the caller first arrived (``arrived_at``: the hang-up minus the
wait). Like any ticket it is the caller's home store's when they are a customer with one, else the queue's store
(``tickets.store.callback_store``), and is due when that store's line next opens (any store for a group queue
and a caller without a home store), like a callback request.
Withheld and unusable numbers cannot be called back and are skipped. With several nodes only the node that
consumed the Asterisk server's AMI when the event was published acts (``owns(event)``: ``Telephony.owns``); the key
would make the others' tickets the same one. Judged by the event, not by leadership when it is handled: the hub may
deliver it late (after a burst, README: readers first), and a lease lost meanwhile must not lose the call back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ccserver.callrouting.callback import callback_due, callback_key, open_callback_ticket
from ccserver.db.models import Queue
from ccserver.events import CallAbandoned
from ccserver.metrics import REGISTRY
from ccserver.tickets.store import home_store
from routing.numbers import normalize

__all__ = ["AbandonedCallers"]

log = logging.getLogger("ccserver.tickets.abandoned")

ABANDONED = REGISTRY.counter("ccserver_abandoned_callbacks_total",
                             "Abandoned callers by outcome: created, reused (already had one), short (hung up "
                             "before the minimum wait), unreachable (no usable number)")


def _queue_place(session: Any, queue: str) -> tuple[int | None, str | None]:
    """(store id, line) of a queue by name; (None, None) when unknown."""
    row = session.execute(select(Queue.store_id, Queue.line).where(Queue.name == queue)).one_or_none()
    return (row.store_id, row.line) if row is not None else (None, None)


def callback_place(session_factory: Any, queue: str, customer_id: int | None) -> tuple[int | None, str | None]:
    """(store, line) of an abandoned caller's callback ticket: the caller's home store when they have one, else the
    queue's (``tickets.store.callback_store``), and the queue's line. One session, one worker-thread hop: a burst
    of abandons (a queue that melts down) is many of these at once. Blocking."""
    with session_factory() as session:
        queue_store, line = _queue_place(session, queue)
        store_id = home_store(session, customer_id, queue_store) if customer_id is not None else queue_store
    return store_id, line


class AbandonedCallers:
    def __init__(self, service: Any, *, region: str = "CN", owns: Callable[[CallAbandoned], bool] | None = None
                 ) -> None:
        self.service = service
        self.region = region
        self.owns = owns

    def subscribe(self, hub: Any) -> Any:
        return hub.subscribe("tickets-abandoned", self.on_event, kinds=(CallAbandoned,))

    async def on_event(self, event: CallAbandoned) -> int | None:
        """The callback ticket opened or reused for the caller, or None when none is due."""
        if self.owns is not None and not self.owns(event):
            return None
        settings = self.service.settings
        wait = event.wait_seconds if event.wait_seconds is not None else float(event.holdtime)
        if settings.abandoned_min_wait_seconds < 0 or wait <= settings.abandoned_min_wait_seconds:
            ABANDONED.inc(outcome="short")
            return None
        number = normalize(event.caller_number or "", region=self.region)
        if not number.ok or not number.e164:
            ABANDONED.inc(outcome="unreachable")
            return None
        customer_id = int(event.customer_id) if event.customer_id and event.customer_id.isdigit() else None
        return await self.service.abandoned_call(e164=number.e164, customer_id=customer_id, queue=event.queue,
                                                 waited=wait, at=event.at, uniqueid=event.uniqueid,
                                                 decision_id=event.decision_id or "")


async def open_for_abandoned(service: Any, run_blocking: Callable[..., Awaitable[Any]], *, e164: str,
                             customer_id: int | None, queue: str, waited: float, at: float, uniqueid: str,
                             decision_id: str) -> int:
    """Open (or reuse) the abandoned caller's callback ticket; its id."""
    store = service.store
    store_id, line = await run_blocking(callback_place, store.sessions, queue, customer_id)
    calendars = store.calendars()
    chosen = [c for c in ([calendars.get(store_id)] if store_id is not None else list(calendars.values())) if c]
    now = datetime.fromtimestamp(service.clock.time(), UTC)
    due = callback_due(chosen, line, now)
    key = callback_key(e164, due, service.settings.time_zone)
    arrived = datetime.fromtimestamp(at - waited, UTC)

    def on_new(session: Any, ticket_id: int, _outcome: str) -> None:
        from ccserver.db.models import Ticket

        ticket = session.get(Ticket, ticket_id)
        store._notify(session, "ticket.created", ticket, now)

    ticket_id, fresh = await run_blocking(
        open_callback_ticket, store.sessions, e164=e164, customer_id=customer_id, store_id=store_id, line=line,
        decision_id=decision_id, uniqueid=uniqueid, due_at=due, now=now, dedupe_key=key, source="abandoned_call",
        arrived_at=arrived, on_new=on_new)
    ABANDONED.inc(outcome="created" if fresh else "reused")
    log.info("abandoned call %s after %.0f s: callback ticket %d (%s)", uniqueid, waited, ticket_id,
             "new" if fresh else "already open")
    return int(ticket_id)
