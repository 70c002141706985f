"""Tickets over HTTP: the API the desktop, the inbox page and scripts use, and the department inbox page.

- ``POST /api/tickets`` create; ``GET /api/tickets/{id}``; ``GET /api/tickets?customer_id=&kind=&status=&store=
  &department=&assignee=&sort=&limit=&offset=`` → ``{"tickets": […], "total": n}``;
- ``POST /api/tickets/{id}/transition`` ``{"to", "comment"?, "satisfaction"?}``; ``POST /api/tickets/{id}/comments``
  ``{"text"}``; ``POST /api/tickets/{id}/assign`` ``{"department"?, "assignee_id"?, "comment"?}``;
- ``GET /api/slots?store=&from=&limit=``; ``POST /api/appointments`` ``{"customer_id", "store_id", "slot", …}``;
  ``POST /api/tickets/{id}/reschedule`` ``{"slot", "comment"?}``; cancelling is the transition to ``cancelled``;
- ``GET /api/callbacks?limit=`` — the call-back worklist;
- ``GET /inbox`` — the department inbox page.

Who sees what is ccserver/tickets/access.py (a ticket out of sight is 404). Errors are JSON ``{"error", "field"?}``
(an illegal transition: 409 with ``allowed``). Every write is audited (``audit_log``) besides the ticket's own
history.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ccserver.db.models import TICKET_KINDS, TICKET_SEVERITIES, TICKET_STATUSES, Store, User
from ccserver.texts import T, translated
from ccserver.tickets import Actor, NewTicket, TicketError, TicketService
from ccserver.tickets.appointments import slot_json
from ccserver.tickets.store import MAX_BODY, MAX_COMMENT, MAX_SUBJECT, SORTS, clean_text
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response, json_response
from ccserver.web.moments import bounded
from routing.numbers import normalize

READ_ROLES: Final = ("agent", "supervisor", "department")
CALLBACK_ROLES: Final = ("agent", "supervisor", "department", "campaign_manager")
INBOX_ROLES: Final = ("department", "supervisor")
CREATE_FIELDS: Final = {"kind", "subject", "body", "category", "severity", "store_id", "customer_id", "vehicle_id",
                        "department", "phone"}
BOOK_FIELDS: Final = {"customer_id", "store_id", "slot", "vehicle_id", "category", "subject", "body"}
_DEPARTMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
MAX_LIMIT: Final = 200


def _fields(body: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), field=unknown[0])


def _id(value: Any, name: str, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise HTTPError(400, T("{name} is required", name=name), field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise HTTPError(400, T("{name} must be a positive integer", name=name), field=name)
    return value


def _query_id(req: Req, name: str) -> int | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**53:
        raise HTTPError(400, T("{name} must be a positive integer", name=name), field=name)
    return int(raw)


def _int(req: Req, name: str, default: int, low: int, high: int) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPError(400, T("{name} must be an integer from {low} to {high}", name=name, low=low, high=high),
                        field=name)
    return int(raw)


def _choices(req: Req, name: str, allowed: tuple[str, ...]) -> list[str]:
    raw = req.arg(name)
    if not raw:
        return []
    values = [v.strip() for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise HTTPError(400, T("{name} must be one or more (comma-separated) of {allowed}", name=name,
                               allowed=', '.join(allowed)), field=name)
    return values


def _when(value: Any, name: str, tz: str) -> dt.datetime:
    """An ISO date-time (a naive one is in ``tz``) or date (its start in ``tz``)."""
    if not isinstance(value, str):
        raise HTTPError(400, T("{name} must be an ISO date-time such as 2026-11-24T09:00+08:00", name=name), field=name)
    try:
        if len(value) == 10:
            day = bounded(dt.date.fromisoformat(value), name)
            return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise HTTPError(400, T("{name} must be an ISO date-time such as 2026-11-24T09:00+08:00", name=name),
                        field=name) from None
    bounded(moment, name)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(tz))


def _scope(session_factory: Any, user_id: int) -> tuple[int | None, str | None, str] | None:
    with session_factory() as session:
        row = session.execute(select(User.store_id, User.department, User.display_name)
                              .where(User.id == user_id)).one_or_none()
    return (row.store_id, row.department, row.display_name) if row is not None else None


def _store_ref(session_factory: Any, text: str) -> int | None:
    """A store by id or code."""
    with session_factory() as session:
        if text.isascii() and text.isdigit():
            found = session.execute(select(Store.id).where(Store.id == int(text))).scalar()
        else:
            found = session.execute(select(Store.id).where(Store.code == text)).scalar()
    return int(found) if found is not None else None


class TicketRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/tickets", self.create, access="api", roles=READ_ROLES)
        router.add("GET", "/api/tickets", self.find, access="api", roles=READ_ROLES)
        router.add("GET", "/api/tickets/{id}", self.get, access="api", roles=READ_ROLES)
        router.add("POST", "/api/tickets/{id}/transition", self.transition, access="api", roles=READ_ROLES)
        router.add("POST", "/api/tickets/{id}/comments", self.comment, access="api", roles=READ_ROLES)
        router.add("POST", "/api/tickets/{id}/assign", self.assign, access="api", roles=READ_ROLES)
        router.add("POST", "/api/tickets/{id}/reschedule", self.reschedule, access="api", roles=READ_ROLES)
        router.add("GET", "/api/slots", self.slots, access="api", roles=READ_ROLES)
        router.add("POST", "/api/appointments", self.book, access="api", roles=READ_ROLES)
        router.add("GET", "/api/callbacks", self.callbacks, access="api", roles=CALLBACK_ROLES)
        router.add("GET", "/inbox", self.inbox, access="page", roles=INBOX_ROLES)

    # -- plumbing ------------------------------------------------------------------------------------------------------
    def _service(self) -> TicketService:
        service = self.ctx.tickets
        if service is None or self.ctx.session_factory is None:
            raise HTTPError(503, T("tickets not configured"))
        return service

    async def _actor(self, req: Req) -> Actor:
        p = req.principal
        assert p is not None
        scope = await self.ctx.run_blocking(_scope, self.ctx.session_factory, p.user_id)
        if scope is None:
            raise HTTPError(401, T("user not found"))
        store_id, department, _name = scope
        return Actor(p.user_id, p.username, p.role, store_id, department, req.client_ip)

    async def _audit(self, actor: Actor, action: str, detail: dict[str, Any]) -> None:
        await self.ctx.run_blocking(self.ctx.users.audit, action, actor.user_id, actor.name, actor.ip or "",
                                    detail)

    @staticmethod
    async def _call(coro: Any) -> Any:
        try:
            return await coro
        except TicketError as exc:
            extra = dict(exc.extra)
            if exc.field is not None:
                extra["field"] = exc.field
            raise HTTPError(exc.status, exc.message, **extra) from None

    def _ticket_id(self, req: Req) -> int:
        raw = req.path_params["id"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**53:
            raise HTTPError(404, T("no such ticket"))
        return int(raw)

    # -- tickets -------------------------------------------------------------------------------------------------------
    async def create(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, CREATE_FIELDS)
        actor = await self._actor(req)
        kind = body.get("kind")
        if kind not in TICKET_KINDS:
            raise HTTPError(400, T("kind must be one of {kinds}", kinds=', '.join(TICKET_KINDS)),
                            field="kind")
        severity = body.get("severity", "normal")
        if severity not in TICKET_SEVERITIES:
            raise HTTPError(400, T("severity must be one of {severities}",
                                   severities=', '.join(TICKET_SEVERITIES)), field="severity")
        category = body.get("category")
        if category is not None and not isinstance(category, str):
            raise HTTPError(400, T("category must be text"), field="category")
        department = body.get("department")
        if department is not None and (not isinstance(department, str) or not _DEPARTMENT.match(department)):
            raise HTTPError(400, T("department must be a department name"), field="department")
        store_id = _id(body.get("store_id"), "store_id")
        if actor.store_id is not None and actor.role != "admin":
            if store_id is not None and store_id != actor.store_id:
                raise HTTPError(403, T("you may open tickets for your own store only"), field="store_id")
            store_id = actor.store_id
        phone = body.get("phone")
        contact = None
        if phone is not None:
            number = normalize(str(phone), region=self.ctx.config.phone.default_region)
            if not isinstance(phone, str) or not number.ok or not number.e164:
                raise HTTPError(400, T("phone must be a phone number"), field="phone")
            contact = number.e164
        try:
            subject = clean_text(body.get("subject"), "subject", MAX_SUBJECT, required=True, one_line=True)
            text = clean_text(body.get("body"), "body", MAX_BODY, required=False)
            new = NewTicket(kind=kind, subject=subject or "", body=text,
                            category=category, severity=severity, store_id=store_id,
                            customer_id=_id(body.get("customer_id"), "customer_id"),
                            vehicle_id=_id(body.get("vehicle_id"), "vehicle_id"), department=department,
                            source="web", contact_e164=contact)
        except TicketError as exc:
            raise HTTPError(exc.status, exc.message, field=exc.field) from None
        ticket = await self._call(service.create(new, actor))
        await self._audit(actor, "ticket.create", {"ticket": ticket["id"], "kind": kind})
        return json_response(ticket, 201)

    async def get(self, req: Req) -> Response:
        service = self._service()
        actor = await self._actor(req)
        return json_response(await self._call(service.get(self._ticket_id(req), actor)))

    async def find(self, req: Req) -> Response:
        service = self._service()
        filters: dict[str, Any] = {
            "customer_id": _query_id(req, "customer_id"),
            "kinds": _choices(req, "kind", TICKET_KINDS),
            "statuses": _choices(req, "status", TICKET_STATUSES),
            "limit": _int(req, "limit", 50, 1, MAX_LIMIT),
            "offset": _int(req, "offset", 0, 0, 10_000_000),
        }
        store = req.arg("store")
        if store:
            found = await self.ctx.run_blocking(_store_ref, self.ctx.session_factory, store)
            if found is None:
                raise HTTPError(400, T("store must be a store id or code"), field="store")
            filters["store_id"] = found
        department = req.arg("department")
        if department:
            if not _DEPARTMENT.match(department):
                raise HTTPError(400, T("department must be a department name"), field="department")
            filters["department"] = department
        actor = await self._actor(req)
        assignee = req.arg("assignee")
        if assignee == "me":
            filters["assignee_id"] = actor.user_id
        elif assignee:
            filters["assignee_id"] = _query_id(req, "assignee")
        mine = req.arg("mine")
        if mine not in (None, "", "0", "1"):
            raise HTTPError(400, T("mine must be 1 or 0"), field="mine")
        if mine == "1":
            filters["involving_id"] = actor.user_id  # assigned to them or opened by them
        sort = req.arg("sort") or "due"
        if sort not in SORTS:
            raise HTTPError(400, T("sort must be one of {sorts}", sorts=', '.join(SORTS)), field="sort")
        filters["sort"] = sort
        tickets, total = await self._call(service.find(actor, **filters))
        return json_response({"tickets": tickets, "total": total})

    async def transition(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, {"to", "comment", "satisfaction"})
        to = body.get("to")
        if not isinstance(to, str) or to not in TICKET_STATUSES:
            raise HTTPError(400, T("to must be one of {statuses}", statuses=', '.join(TICKET_STATUSES)),
                            field="to")
        satisfaction = body.get("satisfaction")
        if satisfaction is not None and (isinstance(satisfaction, bool) or not isinstance(satisfaction, int)
                                         or not 1 <= satisfaction <= 5):
            raise HTTPError(400, T("satisfaction must be an integer from 1 to 5"), field="satisfaction")
        comment = await self._call(_async(clean_text, body.get("comment"), "comment", MAX_COMMENT, required=False))
        actor = await self._actor(req)
        ticket_id = self._ticket_id(req)
        ticket = await self._call(service.transition(ticket_id, to, actor, comment=comment,
                                                     satisfaction=satisfaction))
        await self._audit(actor, "ticket.transition", {"ticket": ticket_id, "to": to})
        return json_response(ticket)

    async def comment(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, {"text"})
        text = await self._call(_async(clean_text, body.get("text"), "text", MAX_COMMENT, required=True))
        actor = await self._actor(req)
        ticket_id = self._ticket_id(req)
        ticket = await self._call(service.comment(ticket_id, text, actor))
        await self._audit(actor, "ticket.comment", {"ticket": ticket_id})
        return json_response(ticket, 201)

    async def assign(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, {"department", "assignee_id", "comment"})
        department = body.get("department")
        if department is not None and (not isinstance(department, str) or not _DEPARTMENT.match(department)):
            raise HTTPError(400, T("department must be a department name"), field="department")
        comment = await self._call(_async(clean_text, body.get("comment"), "comment", MAX_COMMENT, required=False))
        actor = await self._actor(req)
        ticket_id = self._ticket_id(req)
        ticket = await self._call(service.assign(ticket_id, actor, department=department,
                                                 assignee_id=_id(body.get("assignee_id"), "assignee_id"),
                                                 comment=comment))
        await self._audit(actor, "ticket.assign", {"ticket": ticket_id, "department": department,
                                                   "assignee_id": body.get("assignee_id")})
        return json_response(ticket)

    # -- appointments --------------------------------------------------------------------------------------------------
    async def slots(self, req: Req) -> Response:
        service = self._service()
        store = req.arg("store")
        if not store:
            raise HTTPError(400, T("store is required (a store id or code)"), field="store")
        store_id = await self.ctx.run_blocking(_store_ref, self.ctx.session_factory, store)
        if store_id is None:
            raise HTTPError(400, T("store must be a store id or code"), field="store")
        raw_from = req.arg("from")
        after = _when(raw_from, "from", self.ctx.config.server.time_zone) if raw_from else None
        limit = _int(req, "limit", 20, 1, 100)
        found = await self._call(service.slots(store_id, after, limit))
        return json_response({"store_id": store_id, "slots": [slot_json(s) for s in found]})

    async def book(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, BOOK_FIELDS)
        actor = await self._actor(req)
        store_id = _id(body.get("store_id"), "store_id", required=True)
        if actor.store_id is not None and actor.role != "admin" and store_id != actor.store_id:
            raise HTTPError(403, T("you may book at your own store only"), field="store_id")
        slot = _when(body.get("slot"), "slot", self.ctx.config.server.time_zone)
        try:
            subject = clean_text(body.get("subject"), "subject", MAX_SUBJECT, required=False, one_line=True)
            text = clean_text(body.get("body"), "body", MAX_BODY, required=False)
        except TicketError as exc:
            raise HTTPError(exc.status, exc.message, field=exc.field) from None
        category = body.get("category", "maintenance")
        if not isinstance(category, str):
            raise HTTPError(400, T("category must be text"), field="category")
        # A stored subject is data: written in the booker's language (a page's; English for a script).
        subject = subject or translated(T("Workshop appointment"), req.reader_gettext)
        booking = await self._call(service.book(
            actor, customer_id=_id(body.get("customer_id"), "customer_id", required=True), store_id=store_id,
            slot=slot, vehicle_id=_id(body.get("vehicle_id"), "vehicle_id"), category=category, subject=subject,
            body=text, source="web"))
        await self._audit(actor, "appointment.book", {"ticket": booking.ticket_id, "slot": booking.slot.isoformat()})
        ticket = await self._call(service.get(booking.ticket_id, Actor.system()))
        return json_response(ticket, 201)

    async def reschedule(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        _fields(body, {"slot", "comment"})
        slot = _when(body.get("slot"), "slot", self.ctx.config.server.time_zone)
        comment = await self._call(_async(clean_text, body.get("comment"), "comment", MAX_COMMENT, required=False))
        actor = await self._actor(req)
        ticket_id = self._ticket_id(req)
        await self._call(service.reschedule(ticket_id, slot, actor, comment))
        await self._audit(actor, "appointment.reschedule", {"ticket": ticket_id, "slot": slot.isoformat()})
        return json_response(await self._call(service.get(ticket_id, actor)))

    # -- call backs ----------------------------------------------------------------------------------------------------
    async def callbacks(self, req: Req) -> Response:
        service = self._service()
        limit = _int(req, "limit", 200, 1, 1000)
        actor = await self._actor(req)
        items = await self._call(service.callbacks(actor, limit))
        return json_response({"callbacks": items, "total": len(items)})

    # -- the department inbox page -------------------------------------------------------------------------------------
    async def inbox(self, req: Req) -> Response:
        self._service()
        actor = await self._actor(req)
        p = req.principal
        assert p is not None
        settings = self.ctx.tickets.settings if self.ctx.tickets is not None else None
        page = self.ctx.templates.render(
            "inbox.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            # the title names a department only when the list is that department's (department staff); a supervisor's
            # or an admin's lists every department they may see
            department=actor.department if p.role == "department" else None, statuses=TICKET_STATUSES,
            kinds=TICKET_KINDS,
            categories=dict(settings.categories) if settings is not None else {})
        return html_response(page)


async def _async(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)
