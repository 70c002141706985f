"""Tickets in SQL (blocking: run every method in a worker thread, ``await pool.run(store.method, …)``).

Each write is one transaction that also writes the ticket's history row (``ticket_events``), its webhook
notification (the outbox) and, when the customer's open-complaint state or satisfaction changed, their new score
(``customers.changes.ticket_changed``); it returns the cache ``Invalidation`` for the caller to apply after the
commit. ``now`` is always an argument (the service's clock).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ccserver.callrouting.directory_data import StoreCalendar
from ccserver.customers.changes import Invalidation, ticket_changed
from ccserver.db.models import (
    TICKET_KINDS,
    TICKET_SEVERITIES,
    TICKET_SOURCES,
    TICKET_STATUSES,
    Appointment,
    CallbackTask,
    Customer,
    PhoneNumber,
    Store,
    Ticket,
    TicketEvent,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.textcheck import CONTROLS_BUT_LINE_BREAKS
from ccserver.texts import T, message_of
from ccserver.tickets import lifecycle
from ccserver.tickets.access import Actor
from ccserver.tickets.notify import Outbox
from ccserver.tickets.settings import TicketSettings
from ccserver.tickets.sla import due_at

__all__ = ["NewTicket", "TicketError", "TicketStore", "callback_store", "clean_text", "home_store", "retrying"]

log = logging.getLogger("ccserver.tickets")

_T: Table = Ticket.__table__  # type: ignore[assignment]
MAX_SUBJECT = 200
MAX_BODY = 10_000
MAX_COMMENT = 4_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
STAFF_ROLES = ("agent", "supervisor", "department", "admin")
SORTS = ("due", "created", "updated", "severity")
WRITE_ATTEMPTS = 6


def home_store(session: Session, customer_id: int | None, otherwise: int | None) -> int | None:
    """The store of a ticket for ``customer_id`` that nobody placed: the customer's home store, so the ticket is
    routed (departments by store, the store's opening hours for its SLA) and seen (store staff) as that store's;
    ``otherwise`` for no customer, an unknown one or one without a home store. The one rule for every ticket: those
    opened through :meth:`TicketStore.create` and callback tickets (:func:`callback_store`)."""
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer is None or customer.home_store_id is None:
        return otherwise
    return int(customer.home_store_id)


def callback_store(session_factory: Callable[[], Session], customer_id: int | None,
                   called: int | None) -> int | None:
    """The store of a callback ticket (a callback request, an abandoned caller): the caller's :func:`home_store`
    when they are a customer with one, else ``called`` — the store of the number or queue called (None: the
    group's). Known before the ticket is written: the store's hours set when it is due. Blocking."""
    if customer_id is None:
        return called
    with session_factory() as session:
        return home_store(session, customer_id, called)


class TicketError(Exception):
    """A refused request: ``status`` is its HTTP status, ``field`` the offending field, ``extra`` more JSON."""

    def __init__(self, http_status: int, message: str, field: str | None = None, /, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = http_status, message, field, extra


@dataclass(frozen=True)
class NewTicket:
    kind: str
    subject: str
    body: str | None = None
    category: str | None = None
    severity: str = "normal"
    store_id: int | None = None
    customer_id: int | None = None
    vehicle_id: int | None = None
    department: str | None = None  # None: routed by the settings
    source: str = "web"
    uniqueid: str | None = None  # the call it was opened from; one ticket per call and kind
    contact_e164: str | None = None
    arrived_at: datetime | None = None


def clean_text(value: Any, field: str, limit: int, *, required: bool, one_line: bool = False) -> str | None:
    """Text from a person: stripped, at most ``limit`` characters, no control characters but newlines and tabs
    (``one_line``: nor those line breaks — a subject shown in a list row)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise TicketError(400, T("{field} is required", field=field), field)
        return None
    if not isinstance(value, str):
        raise TicketError(400, T("{field} must be text", field=field), field)
    text = value.strip()
    if len(text) > limit:
        raise TicketError(400, T("{field} is longer than {limit} characters", field=field, limit=limit), field)
    if CONTROLS_BUT_LINE_BREAKS.search(text):
        raise TicketError(400, T("{field} contains control characters", field=field), field)
    if one_line and ("\n" in text or "\r" in text):
        raise TicketError(400, T("{field} must be one line", field=field), field)
    return text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def retrying(write: Callable[[], Any]) -> Any:
    """Run ``write`` (one whole transaction) again when it lost a race: a unique index taken by a concurrent
    writer (both backends), or SQLite's "database is locked" when two writers met."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return write()
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
        except OperationalError as exc:
            if "locked" not in str(exc).lower() or attempt == WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class TicketStore:
    def __init__(self, session_factory: sessionmaker[Session], settings: TicketSettings,
                 calendars: Callable[[], Mapping[int, StoreCalendar]], outbox: Outbox | None = None) -> None:
        self.sessions = session_factory
        self.settings = settings
        self.calendars = calendars
        self.outbox = outbox or Outbox(False)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _calendar(self, store_id: int | None) -> StoreCalendar | None:
        return self.calendars().get(store_id) if store_id is not None else None

    def _due(self, kind: str, severity: str, store_id: int | None, department: str | None,
             start: datetime) -> tuple[datetime | None, datetime | None]:
        first, resolution = self.settings.sla_for(kind, severity)
        calendar = self._calendar(store_id)
        tz = self.settings.time_zone
        return due_at(first, start, calendar, department, tz), due_at(resolution, start, calendar, department, tz)

    @staticmethod
    def _event(session: Session, ticket_id: int, actor: Actor, now: datetime, action: str, *,
               from_status: str | None = None, to_status: str | None = None, comment: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
        session.execute(insert(TicketEvent).values(
            ticket_id=ticket_id, at=now, actor_id=actor.user_id, actor_name=actor.name[:64], action=action,
            from_status=from_status, to_status=to_status, comment=comment, detail=detail))

    def _rescore(self, session: Session, customer_id: int | None) -> Invalidation:
        if customer_id is None:
            return Invalidation()
        return ticket_changed(session, customer_id, tz=self.settings.time_zone)

    def _load(self, session: Session, ticket_id: int, actor: Actor, *, lock: bool = False) -> Ticket:
        stmt = select(Ticket).where(Ticket.id == ticket_id)
        if lock:
            stmt = stmt.with_for_update()
        ticket = session.scalars(stmt).one_or_none()
        if ticket is None or not actor.may_see(ticket.store_id, ticket.department, ticket.assignee_id):
            raise TicketError(404, T("no such ticket"))
        return ticket

    def _notify(self, session: Session, event: str, ticket: Ticket, now: datetime, **more: Any) -> None:
        if not self.outbox.enabled:
            return
        phone = ticket.contact_e164 or (self._primary_phone(session, ticket.customer_id)
                                        if ticket.customer_id is not None else None)
        data = {"ticket": {
            "id": ticket.id, "kind": ticket.kind, "status": ticket.status, "category": ticket.category,
            "severity": ticket.severity, "store_id": ticket.store_id, "department": ticket.department,
            "assignee_id": ticket.assignee_id, "customer_id": ticket.customer_id, "subject": ticket.subject,
            "first_response_due_at": _iso(ticket.first_response_due_at), "sla_due_at": _iso(ticket.sla_due_at),
            "phone": phone}, **more}
        self.outbox.enqueue(session, event, data, now)

    @staticmethod
    def _primary_phone(session: Session, customer_id: int) -> str | None:
        found = session.execute(
            select(PhoneNumber.e164).join(customer_phones, customer_phones.c.phone_id == PhoneNumber.id)
            .where(customer_phones.c.customer_id == customer_id)
            .order_by(customer_phones.c.is_primary.desc(), PhoneNumber.id).limit(1)).scalar()
        return str(found) if found is not None else None

    def store_codes(self, session: Session) -> dict[int, str]:
        return {int(i): str(c) for i, c in session.execute(select(Store.id, Store.code))}

    # -- create ----------------------------------------------------------------------------------------------------
    def validate_new(self, session: Session, new: NewTicket) -> tuple[str, str | None]:
        """(department, store code) for a new ticket; TicketError naming the field when something is wrong."""
        if new.kind not in TICKET_KINDS:
            raise TicketError(400, T("kind must be one of {kinds}", kinds=', '.join(TICKET_KINDS)),
                              "kind")
        if new.severity not in TICKET_SEVERITIES:
            raise TicketError(400, T("severity must be one of {severities}",
                                     severities=', '.join(TICKET_SEVERITIES)), "severity")
        if new.source not in TICKET_SOURCES:
            raise TicketError(400, T("source must be one of {sources}",
                                     sources=', '.join(TICKET_SOURCES)), "source")
        if new.category is not None and new.category not in self.settings.categories[new.kind]:
            raise TicketError(400, T("category must be one of {categories}",
                                     categories=', '.join(self.settings.categories[new.kind])),
                              "category")
        codes = self.store_codes(session)
        if new.store_id is not None and new.store_id not in codes:
            raise TicketError(400, T("no such store"), "store_id")
        if new.customer_id is not None and session.get(Customer, new.customer_id) is None:
            raise TicketError(400, T("no such customer"), "customer_id")
        if new.vehicle_id is not None:
            owner = session.execute(select(Vehicle.customer_id).where(Vehicle.id == new.vehicle_id)).scalar()
            if owner is None or (new.customer_id is not None and int(owner) != new.customer_id):
                raise TicketError(400, T("no such vehicle of this customer"), "vehicle_id")
        if new.department is not None and not _NAME.match(new.department):
            raise TicketError(400, T("department must be a department name"), "department")
        if new.department is not None:
            self._check_department(session, new.department)
        store_code = codes.get(new.store_id) if new.store_id is not None else None
        department = new.department or self.settings.department_for(new.kind, store_code, new.category)
        return department, store_code

    def _insert_ticket(self, session: Session, new: NewTicket, actor: Actor, now: datetime, department: str, *,
                       status: str = "new", responded: bool = False,
                       due: tuple[datetime | None, datetime | None] | None = None) -> tuple[int, bool]:
        """(ticket id, created); an IVR ticket of a call that already has one of that kind is that one."""
        first_due, resolution_due = due or self._due(new.kind, new.severity, new.store_id, department, now)
        key = f"call:{new.uniqueid}:{new.kind}" if new.uniqueid else None
        if key is not None:
            existing = session.execute(select(Ticket.id).where(Ticket.dedupe_key == key)).scalar()
            if existing is not None:
                return int(existing), False
        values = dict(kind=new.kind, status=status, category=new.category, severity=new.severity, source=new.source,
                      store_id=new.store_id, department=department, customer_id=new.customer_id,
                      vehicle_id=new.vehicle_id, uniqueid=new.uniqueid, contact_e164=new.contact_e164,
                      subject=new.subject, body=new.body, arrived_at=new.arrived_at or now,
                      first_response_due_at=first_due, first_responded_at=now if responded else None,
                      sla_due_at=resolution_due, created_at=now, updated_at=now, dedupe_key=key,
                      created_by=actor.user_id)
        ticket_id = int(session.execute(insert(Ticket).values(**values).returning(Ticket.id)).scalar_one())
        self._event(session, ticket_id, actor, now, "created", to_status=status,
                    detail={"source": new.source, "department": department, "uniqueid": new.uniqueid})
        return ticket_id, True

    @staticmethod
    def _at_home_store(session: Session, new: NewTicket) -> NewTicket:
        """``new`` with the customer's home store when it names a customer but no store (:func:`home_store`). A
        store given wins; an unknown customer is left for :meth:`validate_new` to refuse."""
        if new.store_id is not None:
            return new
        store_id = home_store(session, new.customer_id, None)  # validate_new's own look-up then finds it loaded
        return new if store_id is None else replace(new, store_id=store_id)

    def create(self, new: NewTicket, actor: Actor, now: datetime) -> tuple[int, bool, Invalidation]:
        """Open a ticket: (id, created, invalidation). Idempotent per call (``uniqueid``) and kind. A ticket for a
        customer with no store given is their home store's (:meth:`_at_home_store`)."""

        def write() -> tuple[int, bool, Invalidation]:
            with self.sessions.begin() as session:
                ticket_new = self._at_home_store(session, new)
                department, _code = self.validate_new(session, ticket_new)
                ticket_id, created = self._insert_ticket(session, ticket_new, actor, now, department)
                inv = Invalidation()
                if created:
                    ticket = session.get(Ticket, ticket_id)
                    assert ticket is not None
                    self._notify(session, "ticket.created", ticket, now)
                    if new.kind == "complaint":
                        inv = self._rescore(session, new.customer_id)
                return ticket_id, created, inv

        return retrying(write)  # type: ignore[no-any-return]

    # -- read ------------------------------------------------------------------------------------------------------
    def get(self, ticket_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
        with self.sessions() as session:
            ticket = self._load(session, ticket_id, actor)
            view = self._views(session, [ticket], now)[0]
            view["events"] = [
                {"at": _iso(e.at), "actor": e.actor_name, "action": e.action, "from": e.from_status,
                 "to": e.to_status, "comment": e.comment, "detail": e.detail}
                for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                         .order_by(TicketEvent.at, TicketEvent.id))]
            view["callback_tasks"] = [
                {"id": t.id, "due_at": _iso(t.due_at), "done_at": _iso(t.done_at), "outcome": t.outcome}
                for t in session.scalars(select(CallbackTask).where(CallbackTask.ticket_id == ticket_id)
                                         .order_by(CallbackTask.id))]
            return view

    def find(self, actor: Actor, now: datetime, *, customer_id: int | None = None, kinds: Iterable[str] = (),
             statuses: Iterable[str] = (), store_id: int | None = None, department: str | None = None,
             assignee_id: int | None = None, involving_id: int | None = None, sort: str = "due", limit: int = 50,
             offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """``involving_id``: the tickets assigned to that user or opened by them (an agent's "my tickets": what
        they opened for a department, which nobody has taken yet, as well as what they were given)."""
        conditions = [actor.where(_T)]
        if customer_id is not None:
            conditions.append(_T.c.customer_id == customer_id)
        if kinds := list(kinds):
            conditions.append(_T.c.kind.in_(kinds))
        if statuses := list(statuses):
            conditions.append(_T.c.status.in_(statuses))
        if store_id is not None:
            conditions.append(_T.c.store_id == store_id)
        if department is not None:
            conditions.append(_T.c.department == department)
        if assignee_id is not None:
            conditions.append(_T.c.assignee_id == assignee_id)
        if involving_id is not None:
            conditions.append(or_(_T.c.assignee_id == involving_id, _T.c.created_by == involving_id))
        where = and_(*conditions)
        next_due = case((and_(_T.c.first_responded_at.is_(None), _T.c.first_response_due_at.is_not(None),
                              _T.c.status == "new"), _T.c.first_response_due_at),
                        (_T.c.status.in_(lifecycle.WORKING), _T.c.sla_due_at), else_=None)
        severity_rank = case({s: i for i, s in enumerate(reversed(TICKET_SEVERITIES))}, value=_T.c.severity)
        order = {"due": [next_due.asc().nulls_last(), _T.c.id.desc()],
                 "created": [_T.c.created_at.desc(), _T.c.id.desc()],
                 "updated": [_T.c.updated_at.desc(), _T.c.id.desc()],
                 "severity": [severity_rank.asc(), next_due.asc().nulls_last(), _T.c.id.desc()]}[sort]
        with self.sessions() as session:
            total = int(session.execute(select(func.count()).select_from(_T).where(where)).scalar_one())
            tickets = list(session.scalars(select(Ticket).where(where).order_by(*order).limit(limit)
                                           .offset(offset)))
            return self._views(session, tickets, now), total

    def _views(self, session: Session, tickets: list[Ticket], now: datetime) -> list[dict[str, Any]]:
        customer_ids = {t.customer_id for t in tickets if t.customer_id is not None}
        user_ids = {t.assignee_id for t in tickets if t.assignee_id is not None}
        store_ids = {t.store_id for t in tickets if t.store_id is not None}
        customers = {int(r.id): r for r in session.execute(
            select(Customer.id, Customer.name, Customer.tier).where(Customer.id.in_(customer_ids)))} \
            if customer_ids else {}
        users = {int(r.id): r for r in session.execute(
            select(User.id, User.username, User.display_name).where(User.id.in_(user_ids)))} if user_ids else {}
        stores = {int(r.id): r for r in session.execute(
            select(Store.id, Store.code, Store.name, Store.time_zone).where(Store.id.in_(store_ids)))} \
            if store_ids else {}
        appointments = {int(a.ticket_id): a for a in session.scalars(
            select(Appointment).where(Appointment.ticket_id.in_([t.id for t in tickets])))} if tickets else {}
        out = []
        for t in tickets:
            c = customers.get(t.customer_id) if t.customer_id is not None else None
            u = users.get(t.assignee_id) if t.assignee_id is not None else None
            s = stores.get(t.store_id) if t.store_id is not None else None
            a = appointments.get(t.id)
            # the store's zone (else the server's): the pages show every time of the ticket in the store's hours
            zone = (s.time_zone if s is not None else None) or self.settings.time_zone
            out.append({
                "id": t.id, "kind": t.kind, "status": t.status, "category": t.category, "severity": t.severity,
                "source": t.source, "subject": t.subject, "body": t.body, "department": t.department,
                "store": {"id": s.id, "code": s.code, "name": s.name} if s is not None else None,
                "customer": {"id": c.id, "name": c.name, "tier": c.tier} if c is not None else None,
                "assignee": {"id": u.id, "username": u.username, "name": u.display_name} if u is not None else None,
                "vehicle_id": t.vehicle_id, "uniqueid": t.uniqueid, "phone": t.contact_e164, "time_zone": zone,
                "satisfaction": t.satisfaction, "arrived_at": _iso(t.arrived_at), "created_at": _iso(t.created_at),
                "updated_at": _iso(t.updated_at), "resolved_at": _iso(t.resolved_at),
                "called_back_at": _iso(t.called_back_at), "closed_at": _iso(t.closed_at),
                "sla": {
                    "first_response": _clock(t.first_response_due_at, t.first_responded_at, now,
                                             running=t.status == "new", warning=self.settings.warning_before),
                    "resolution": _clock(t.sla_due_at, t.resolved_at, now,
                                         running=t.status in lifecycle.WORKING, warning=self.settings.warning_before),
                },
                "appointment": ({"slot": _iso(a.slot_start), "status": a.status, "time_zone": zone}
                                if a is not None else None),
                "allowed": list(lifecycle.allowed_next(t.kind, t.status)),
            })
        return out

    # -- change ----------------------------------------------------------------------------------------------------
    def transition(self, ticket_id: int, to: str, actor: Actor, now: datetime, *, comment: str | None = None,
                   satisfaction: int | None = None) -> Invalidation:
        if to not in TICKET_STATUSES:
            raise TicketError(400, T("to must be one of {statuses}",
                                     statuses=', '.join(TICKET_STATUSES)), "to")
        if satisfaction is not None and to != "customer_called_back":
            raise TicketError(400, T("satisfaction is recorded with the call back (to = customer_called_back)"),
                              "satisfaction")
        if to == "customer_called_back" and satisfaction is None:
            raise TicketError(400, T("satisfaction (1-5) is required when the customer was called back"),
                              "satisfaction")
        with self.sessions.begin() as session:
            ticket = self._load(session, ticket_id, actor, lock=True)
            current = ticket.status
            try:
                lifecycle.check(ticket.kind, current, to)
            except lifecycle.IllegalTransition as exc:
                raise TicketError(409, message_of(exc), "to", allowed=list(exc.allowed), current=current) from None
            reopening = to == "in_progress" and current in ("resolved", "customer_called_back")
            if (to == "cancelled" or reopening) and not comment:
                raise TicketError(400, T("a comment is required to cancel or reopen a ticket"), "comment")
            ticket.status, ticket.updated_at = to, now
            if current == "new" and ticket.first_responded_at is None:
                ticket.first_responded_at = now
            if to in ("assigned", "in_progress") and ticket.assignee_id is None and actor.user_id is not None \
                    and actor.role != "system":
                ticket.assignee_id = actor.user_id  # picked up by whoever moved it
            if to == "resolved":
                ticket.resolved_at = now
            if reopening:
                ticket.resolved_at = None
            if to == "customer_called_back":
                ticket.satisfaction, ticket.called_back_at = satisfaction, now
            if to in lifecycle.FINAL:
                ticket.closed_at = now
            self._callback_tasks(session, ticket, current, to, actor, now)
            if to == "cancelled":
                session.execute(update(Appointment).where(Appointment.ticket_id == ticket.id)
                                .values(status="cancelled", seat=None, updated_at=now))
            self._event(session, ticket.id, actor, now, "transition", from_status=current, to_status=to,
                        comment=comment, detail={"satisfaction": satisfaction} if satisfaction is not None else None)
            session.flush()
            if to == "assigned":
                self._notify(session, "ticket.assigned", ticket, now)
            elif to == "resolved":
                self._notify(session, "ticket.resolved", ticket, now)
            elif to == "cancelled" and ticket.kind == "appointment":
                self._notify(session, "booking.cancelled", ticket, now)
            was_open, is_open = current in lifecycle.WORKING, to in lifecycle.WORKING
            if (ticket.kind == "complaint" and was_open != is_open) or satisfaction is not None:
                return self._rescore(session, ticket.customer_id)
            return Invalidation()

    def _callback_tasks(self, session: Session, ticket: Ticket, current: str, to: str, actor: Actor,
                        now: datetime) -> None:
        """Resolving a complaint or repair opens its resolution call back; calling back, reopening or cancelling
        ends the open one."""
        if to == "resolved" and ticket.kind in lifecycle.CALL_BACK_KINDS:
            spec = self.settings.resolution_callback
            if spec is not None:
                due = due_at(spec, now, self._calendar(ticket.store_id), ticket.department, self.settings.time_zone)
                session.add(CallbackTask(ticket_id=ticket.id, customer_id=ticket.customer_id,
                                         store_id=ticket.store_id, due_at=due or now, created_at=now))
            return
        outcome = {"customer_called_back": "called_back", "in_progress": "reopened", "cancelled": "cancelled",
                   "closed": "closed"}.get(to)
        if outcome is not None:
            session.execute(update(CallbackTask)
                            .where(CallbackTask.ticket_id == ticket.id, CallbackTask.done_at.is_(None))
                            .values(done_at=now, outcome=outcome, done_by=actor.user_id)
                            .execution_options(synchronize_session=False))

    def comment(self, ticket_id: int, text: str, actor: Actor, now: datetime) -> None:
        with self.sessions.begin() as session:
            ticket = self._load(session, ticket_id, actor, lock=True)
            if ticket.status in lifecycle.FINAL:
                raise TicketError(409, T("the ticket is {status}", status=ticket.status), "ticket",
                                  current=ticket.status)
            ticket.updated_at = now
            self._event(session, ticket.id, actor, now, "comment", comment=text)

    def _check_department(self, session: Session, department: str) -> None:
        """TicketError 400 unless tickets can be in ``department``: one the settings route tickets to, or one an
        active user works in (any other name leaves the ticket out of every department's inbox)."""
        known = set(self.settings.departments.values()) | {route.department for route in self.settings.routes}
        if department in known:
            return
        known |= {d for d in session.scalars(select(User.department).where(User.department.is_not(None),
                                                                          User.active.is_(True))) if d}
        if department not in known:
            raise TicketError(400, T("unknown department {department}", department=repr(department)),
                              "department", known=sorted(known))

    def assign(self, ticket_id: int, actor: Actor, now: datetime, *, department: str | None = None,
               assignee_id: int | None = None, comment: str | None = None) -> None:
        """Reassign to another department and/or person; a new ticket becomes ``assigned``."""
        if department is None and assignee_id is None:
            raise TicketError(400, T("name a department or an assignee"), "department")
        if department is not None and not _NAME.match(department):
            raise TicketError(400, T("department must be a department name"), "department")
        with self.sessions.begin() as session:
            ticket = self._load(session, ticket_id, actor, lock=True)
            if ticket.status in lifecycle.FINAL:
                raise TicketError(409, T("the ticket is {status}", status=ticket.status), "ticket",
                                  current=ticket.status)
            if assignee_id is not None:
                user = session.get(User, assignee_id)
                if user is None or not user.active or user.role not in STAFF_ROLES:
                    raise TicketError(400, T("no such active staff member"), "assignee_id")
            if department is not None and department != ticket.department:
                self._check_department(session, department)  # a name no inbox shows: it would leave every view
            before = {"department": ticket.department, "assignee_id": ticket.assignee_id}
            if department is not None:
                ticket.department = department
                if assignee_id is None:
                    ticket.assignee_id = None  # another department picks its own person
            if assignee_id is not None:
                ticket.assignee_id = assignee_id
            current = ticket.status
            if current == "new" and ticket.assignee_id is not None:
                ticket.status = "assigned"
                ticket.first_responded_at = ticket.first_responded_at or now
            ticket.updated_at = now
            self._event(session, ticket.id, actor, now, "assigned", from_status=current, to_status=ticket.status,
                        comment=comment, detail={"before": before, "department": ticket.department,
                                                 "assignee_id": ticket.assignee_id})
            session.flush()
            self._notify(session, "ticket.assigned", ticket, now)

    # -- for the IVR and the desktop -------------------------------------------------------------------------------
    def open_repairs(self, customer_id: int) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.execute(
                select(Ticket.id, Ticket.status, Ticket.subject, Ticket.category, Ticket.store_id, Ticket.vehicle_id,
                       Ticket.created_at, Ticket.updated_at, Ticket.sla_due_at)
                .where(Ticket.customer_id == customer_id, Ticket.kind == "repair",
                       Ticket.status.in_(lifecycle.WORKING))
                .order_by(Ticket.updated_at.desc(), Ticket.id.desc()))
            return [dict(r._mapping) for r in rows]

    def callbacks(self, actor: Actor, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """The call-back worklist: open callback requests and abandoned callers (callback tickets) and open
        resolution call backs, by due time, then tier (diamond first); each with its store's time zone (else the
        server's), the one its due time is shown in."""
        tier_rank = {"diamond": 0, "gold": 1, "silver": 2, "bronze": 3, "prospect": 4}
        with self.sessions() as session:
            items: list[dict[str, Any]] = []
            callback_rows = session.execute(
                select(Ticket.id, Ticket.source, Ticket.contact_e164, Ticket.customer_id, Ticket.sla_due_at,
                       Ticket.arrived_at, Ticket.store_id, Ticket.department, Ticket.status, Ticket.subject,
                       Customer.name, Customer.tier, Store.time_zone)
                .outerjoin(Customer, Customer.id == Ticket.customer_id)
                .outerjoin(Store, Store.id == Ticket.store_id)
                .where(Ticket.kind == "callback", Ticket.status.in_(lifecycle.WORKING), actor.where(_T))
                .order_by(Ticket.sla_due_at).limit(limit))
            for r in callback_rows:
                items.append({"type": "abandoned_call" if r.source == "abandoned_call" else "callback_request",
                              "ticket_id": r.id, "task_id": None, "due_at": r.sla_due_at, "phone": r.contact_e164,
                              "customer": _customer(r), "arrived_at": _iso(r.arrived_at), "store_id": r.store_id,
                              "department": r.department, "status": r.status, "subject": r.subject,
                              "time_zone": r.time_zone or self.settings.time_zone})
            task_rows = session.execute(
                select(CallbackTask.id, CallbackTask.ticket_id, CallbackTask.due_at, Ticket.customer_id,
                       Ticket.contact_e164, Ticket.store_id, Ticket.department, Ticket.status, Ticket.subject,
                       Ticket.kind, Customer.name, Customer.tier, Store.time_zone)
                .join(Ticket, Ticket.id == CallbackTask.ticket_id)
                .outerjoin(Customer, Customer.id == Ticket.customer_id)
                .outerjoin(Store, Store.id == Ticket.store_id)
                .where(CallbackTask.done_at.is_(None), actor.where(_T))
                .order_by(CallbackTask.due_at).limit(limit))
            for row in task_rows:
                items.append({"type": "resolution_callback", "ticket_id": row.ticket_id, "task_id": row.id,
                              "due_at": row.due_at, "customer": _customer(row),
                              "phone": row.contact_e164 or (self._primary_phone(session, row.customer_id)
                                                          if row.customer_id is not None else None),
                              "arrived_at": None, "store_id": row.store_id, "department": row.department,
                              "status": row.status, "subject": row.subject, "kind": row.kind,
                              "time_zone": row.time_zone or self.settings.time_zone})
        far = datetime.max.replace(tzinfo=now.tzinfo)
        items.sort(key=lambda i: (i["due_at"] or far, tier_rank.get(str((i["customer"] or {}).get("tier")), 5),
                                  i["ticket_id"]))
        for item in items:
            item["overdue"] = item["due_at"] is not None and item["due_at"] <= now
            item["due_at"] = _iso(item["due_at"])
        return items[:limit]


def _customer(row: Any) -> dict[str, Any] | None:
    if row.customer_id is None:
        return None
    return {"id": row.customer_id, "name": row.name, "tier": row.tier}


def _clock(due: datetime | None, met: datetime | None, now: datetime, *, running: bool,
           warning: Any) -> dict[str, Any] | None:
    """One SLA clock as the pages show it: due, met, state (met, breached, warning, ok, stopped), seconds left."""
    if due is None:
        return None
    if met is not None:
        state = "met" if met <= due else "met_late"
    elif not running:
        state = "stopped"
    elif now >= due:
        state = "breached"
    elif due - now <= warning:
        state = "warning"
    else:
        state = "ok"
    return {"due_at": _iso(due), "met_at": _iso(met), "state": state,
            "seconds_left": round((due - now).total_seconds()) if met is None and running else None}
