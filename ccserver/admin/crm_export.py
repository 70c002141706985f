"""Export customers and tickets as CSV, and erase a customer's personal data on request.

Exports stream in chunks (the CLI writes them to a file, the API sends them as one body) and are audited by the
caller. Erasure keeps what statistics need — the customer row and its id, tier and score, orders, visits, calls,
tickets and their timings — and removes what identifies the person: name, numbers (unless another customer shares
them), company contacts, plates, VINs, ticket texts and call-back numbers, the numbers on call and decision rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ccserver.admin.users import Actor, AdminError, audit
from ccserver.db.models import (
    Call,
    CallbackTask,
    CompanyContact,
    Customer,
    PhoneNumber,
    RoutingDecision,
    ServiceVisit,
    Store,
    Ticket,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.texts import T

EXPORT_KINDS = ("customers", "tickets")
CHUNK = 2000
ERASED_NAME = "(erased)"

CUSTOMER_COLUMNS = ("id", "name", "kind", "phone", "phone2", "store", "language", "lifecycle", "tier",
                    "value_score", "consent", "do_not_call", "vip", "membership_level", "sales_consultant",
                    "service_advisor", "created_at")
TICKET_COLUMNS = ("id", "kind", "status", "category", "severity", "source", "store", "department", "assignee",
                  "customer_id", "contact_phone", "subject", "created_at", "first_responded_at", "resolved_at",
                  "closed_at", "sla_due_at", "satisfaction")


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""


def _csv(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


# A plain number (a phone number "+8613800138000", "-5") may start with + or -: nothing a spreadsheet runs.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ().-]*")


def _safe(value: Any) -> Any:
    """No spreadsheet formulas from data: a text starting with = + - @ (or tab / CR, which some spreadsheets
    strip first) is prefixed with ' unless it is a plain number ("-2+3+cmd|' /C calc'!A0" is not)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def export_csv(session_factory: Callable[[], Session], kind: str, *,
               store_id: int | None = None) -> Iterator[str]:
    """The CSV, in chunks of text (header first). ``store_id`` limits it to one store (a store manager)."""
    if kind not in EXPORT_KINDS:
        raise AdminError(T("cannot export {kind}; one of {export_kinds}", kind=repr(kind),
                           export_kinds=', '.join(EXPORT_KINDS)), 404)
    yield _csv([list(CUSTOMER_COLUMNS if kind == "customers" else TICKET_COLUMNS)])
    with session_factory() as session:
        stores = {i: c for i, c in session.execute(select(Store.id, Store.code))}
        users = {i: n for i, n in session.execute(select(User.id, User.username))}
        last = 0
        while True:
            if kind == "customers":
                query = select(Customer).where(Customer.id > last).order_by(Customer.id).limit(CHUNK)
                if store_id is not None:
                    query = query.where(Customer.home_store_id == store_id)
                batch = list(session.scalars(query))
                if not batch:
                    return
                numbers = _numbers(session, [c.id for c in batch])
                rows = [[c.id, _safe(c.name), c.kind, *(numbers.get(c.id, []) + ["", ""])[:2],
                         stores.get(c.home_store_id or 0, ""), c.language, c.lifecycle, c.tier, c.value_score,
                         int(c.consent), int(c.do_not_call), int(c.manual_vip), c.membership_level,
                         users.get(c.sales_consultant_id or 0, ""), users.get(c.service_advisor_id or 0, ""),
                         _iso(c.created_at)] for c in batch]
                last = batch[-1].id
            else:
                tquery = select(Ticket).where(Ticket.id > last).order_by(Ticket.id).limit(CHUNK)
                if store_id is not None:
                    tquery = tquery.where(Ticket.store_id == store_id)
                tickets = list(session.scalars(tquery))
                if not tickets:
                    return
                rows = [[t.id, t.kind, t.status, t.category or "", t.severity, t.source or "",
                         stores.get(t.store_id or 0, ""), t.department or "", users.get(t.assignee_id or 0, ""),
                         t.customer_id or "", t.contact_e164 or "", _safe(t.subject), _iso(t.created_at),
                         _iso(t.first_responded_at), _iso(t.resolved_at), _iso(t.closed_at), _iso(t.sla_due_at),
                         t.satisfaction or ""] for t in tickets]
                last = tickets[-1].id
            session.expunge_all()
            yield _csv(rows)


def _numbers(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    query = (select(customer_phones.c.customer_id, PhoneNumber.e164)
             .join(PhoneNumber, PhoneNumber.id == customer_phones.c.phone_id)
             .where(customer_phones.c.customer_id.in_(ids))
             .order_by(customer_phones.c.customer_id, customer_phones.c.is_primary.desc(), PhoneNumber.id))
    for cid, e164 in session.execute(query):
        found.setdefault(cid, []).append(e164)
    return found


def erase_customer(session_factory: Callable[[], Session], actor: Actor, customer_id: int) -> dict[str, Any]:
    """Remove the customer's personal data (one transaction); returns what was done. Audited without the data."""
    with session_factory() as session, session.begin():
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise AdminError(T("no customer #{customer_id}", customer_id=customer_id), 404)
        if customer.name == ERASED_NAME:
            raise AdminError(T("customer #{customer_id} is erased already", customer_id=customer_id), 409)
        phone_ids = list(session.scalars(select(customer_phones.c.phone_id)
                                         .where(customer_phones.c.customer_id == customer_id)))
        numbers = list(session.scalars(select(PhoneNumber.e164).where(PhoneNumber.id.in_(phone_ids))))
        session.execute(delete(customer_phones).where(customer_phones.c.customer_id == customer_id))
        # A number nobody else has is deleted; a shared one (family phone) stays with the others.
        still_used = set(session.scalars(select(customer_phones.c.phone_id)
                                         .where(customer_phones.c.phone_id.in_(phone_ids))))
        still_used |= set(session.scalars(select(CompanyContact.phone_id).where(CompanyContact.phone_id.in_(phone_ids))
                                          .where(CompanyContact.company_id != customer_id)))
        gone = [p for p in phone_ids if p not in still_used]
        session.execute(delete(CompanyContact).where(CompanyContact.company_id == customer_id))
        if gone:
            session.execute(delete(PhoneNumber).where(PhoneNumber.id.in_(gone)))
        vehicles = list(session.scalars(select(Vehicle).where(Vehicle.customer_id == customer_id)))
        for v in vehicles:  # the VIN is unique and required: a placeholder of the same length
            v.vin, v.plate = f"ERASED{v.id:011d}"[-17:], None
        session.execute(update(ServiceVisit).where(ServiceVisit.customer_id == customer_id).values(description=None))
        tickets = session.execute(update(Ticket).where(Ticket.customer_id == customer_id)
                                  .values(body=None, contact_e164=None, subject=ERASED_NAME)).rowcount  # type: ignore[attr-defined]
        session.execute(update(Call).where(Call.customer_id == customer_id).values(caller_raw=None, caller_e164=None))
        if numbers:
            session.execute(update(Call).where(Call.caller_e164.in_(numbers))
                            .values(caller_raw=None, caller_e164=None))
            session.execute(update(RoutingDecision).where(RoutingDecision.caller_e164.in_(numbers))
                            .values(caller_raw=None, caller_e164=None))
        session.execute(update(RoutingDecision).where(RoutingDecision.customer_id == customer_id)
                        .values(caller_raw=None, caller_e164=None))
        open_callbacks = session.scalar(select(func.count()).select_from(CallbackTask).where(
            CallbackTask.customer_id == customer_id, CallbackTask.done_at.is_(None))) or 0
        session.execute(update(CallbackTask).where(CallbackTask.customer_id == customer_id,
                                                   CallbackTask.done_at.is_(None))
                        .values(done_at=dt.datetime.now(dt.UTC), outcome="cancelled"))
        customer.name = ERASED_NAME
        customer.source = None
        customer.birthday = None
        customer.consent = False
        customer.do_not_call = True
        customer.score_components = None
        result = {"customer_id": customer_id, "numbers_removed": len(gone), "numbers_kept_shared": len(phone_ids)
                  - len(gone), "vehicles_anonymised": len(vehicles), "tickets_anonymised": tickets,
                  "callbacks_cancelled": open_callbacks}
        audit(session, actor, "customer.erased", f"customer:{customer_id}", None, result)
    return result
