"""Blocking SQL for the desktop (called through ``run_blocking``): notes and dispositions on calls, the caller ID
for click-to-dial, customer search and history, editing a prospect and merging it into a known customer.

Every query is built from bound parameters; search text is matched with ``LIKE`` after escaping its wildcards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ccserver.db.models import (
    Appointment,
    AuditLog,
    Call,
    CallbackTask,
    CallNote,
    Customer,
    Did,
    Order,
    PhoneNumber,
    Queue,
    RoutingDecision,
    ServiceVisit,
    Store,
    Ticket,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.texts import T

__all__ = ["DesktopStore", "MergeRefused", "UserScope"]

MAX_NOTE = 4000
EDITABLE = ("name", "language", "home_store_id", "kind")


class MergeRefused(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class UserScope:
    id: int
    role: str
    display_name: str
    extension: str | None
    store_id: int | None
    department: str | None


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class DesktopStore:
    def __init__(self, sessions: sessionmaker[Session], now: Any = None, *, time_zone: str = "Asia/Shanghai") -> None:
        self.sessions = sessions
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self.time_zone = time_zone  # server.time_zone: the zone of what belongs to no store

    # -- who ------------------------------------------------------------------------------------------------------
    def user(self, user_id: int) -> UserScope | None:
        with self.sessions() as s:
            u = s.get(User, user_id)
            if u is None or not u.active:
                return None
            return UserScope(u.id, u.role, u.display_name, u.extension, u.store_id, u.department)

    def extensions(self) -> set[str]:
        with self.sessions() as s:
            return {e for e in s.scalars(select(User.extension).where(User.active.is_(True),
                                                                     User.extension.is_not(None))) if e}

    def queue_names(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Queue.name).order_by(Queue.name)))

    # -- calls ----------------------------------------------------------------------------------------------------
    def call(self, uniqueid: str) -> dict[str, Any] | None:
        with self.sessions() as s:
            c = s.scalars(select(Call).where(Call.uniqueid == uniqueid).order_by(Call.id.desc())).first()
            if c is None:
                return None
            return {"server": c.server, "agent_id": c.agent_id, "customer_id": c.customer_id,
                    "caller": c.caller_e164, "queue": c.queue, "disposition": c.disposition,
                    "agent_interface": c.agent_interface}

    def add_note(self, uniqueid: str, server: str | None, kind: str, user_id: int | None, *, code: str | None = None,
                 text: str | None = None, ticket_id: int | None = None) -> dict[str, Any]:
        now = self._now()
        with self.sessions.begin() as s:
            note = CallNote(uniqueid=uniqueid, server=server, kind=kind, code=code, text=text, user_id=user_id,
                            ticket_id=ticket_id, created_at=now)
            s.add(note)
            if kind == "disposition":
                where = [Call.uniqueid == uniqueid] + ([Call.server == server] if server else [])
                s.execute(update(Call).where(*where).values(disposition=code))
            s.flush()
            return {"id": note.id, "uniqueid": uniqueid, "kind": kind, "code": code, "text": text,
                    "ticket_id": ticket_id, "created_at": _iso(now)}

    def notes(self, uniqueid: str) -> list[dict[str, Any]]:
        with self.sessions() as s:
            rows = s.execute(select(CallNote, User.display_name).outerjoin(User, User.id == CallNote.user_id)
                             .where(CallNote.uniqueid == uniqueid).order_by(CallNote.id))
            return [{"id": n.id, "kind": n.kind, "code": n.code, "text": n.text, "ticket_id": n.ticket_id,
                     "by": name, "created_at": _iso(n.created_at)} for n, name in rows]

    def note_authors(self, uniqueid: str) -> set[int]:
        with self.sessions() as s:
            return {u for u in s.scalars(select(CallNote.user_id).where(CallNote.uniqueid == uniqueid)) if u}

    def disposition_of(self, uniqueid: str) -> str | None:
        with self.sessions() as s:
            return s.scalars(select(CallNote.code).where(CallNote.uniqueid == uniqueid,
                                                         CallNote.kind == "disposition")
                             .order_by(CallNote.id.desc())).first()

    # -- click-to-dial: the caller ID -----------------------------------------------------------------------------
    def caller_id(self, store_id: int | None, line: str | None = None) -> str | None:
        """The DID a customer sees: one of ``store_id``'s (its ``line`` first), else a group-wide one."""
        with self.sessions() as s:
            for where in ([Did.store_id == store_id] if store_id is not None else []) + [Did.store_id.is_(None)]:
                rows = list(s.execute(select(Did.number, Did.line).where(where).order_by(Did.id)))
                if rows:
                    preferred = [r for r in rows if line and r.line == line]
                    return str((preferred or rows)[0].number)
        return None

    # -- customers ------------------------------------------------------------------------------------------------
    def search(self, text: str, e164: str | None, limit: int = 20, *,
               first: Sequence[int] = ()) -> list[dict[str, Any]]:
        """By name (substring), number (exact E.164), plate or VIN (substring, case-insensitive); ``first``: the
        customers identification found for the number, listed before the rest."""
        pattern = _like(text.upper())
        with self.sessions() as s:
            ids: list[int] = list(first)
            if e164:
                ids += list(s.scalars(select(customer_phones.c.customer_id)
                                      .join(PhoneNumber, PhoneNumber.id == customer_phones.c.phone_id)
                                      .where(PhoneNumber.e164 == e164).limit(limit)))
            ids += list(s.scalars(select(Vehicle.customer_id).where(or_(
                func.upper(Vehicle.plate).like(pattern, escape="\\"),
                func.upper(Vehicle.vin).like(pattern, escape="\\"))).limit(limit)))
            ids += list(s.scalars(select(Customer.id).where(Customer.name.like(_like(text), escape="\\"))
                                  .order_by(Customer.value_score.desc()).limit(limit)))
            seen: list[int] = []
            for i in ids:
                if i not in seen:
                    seen.append(i)
            rows = {c.id: c for c in s.scalars(select(Customer).where(Customer.id.in_(seen[:limit])))}
            return [self._brief(s, rows[i]) for i in seen[:limit] if i in rows]

    def _brief(self, s: Session, c: Customer) -> dict[str, Any]:
        phones = list(s.scalars(select(PhoneNumber.e164).join(customer_phones,
                                                             customer_phones.c.phone_id == PhoneNumber.id)
                                .where(customer_phones.c.customer_id == c.id)))
        plates = list(s.scalars(select(Vehicle.plate).where(Vehicle.customer_id == c.id, Vehicle.plate.is_not(None))))
        return {"id": c.id, "name": c.name, "tier": c.tier, "lifecycle": c.lifecycle, "kind": c.kind,
                "language": c.language, "home_store_id": c.home_store_id, "phones": phones, "plates": plates,
                "prospect": c.tier == "prospect" and c.source == "inbound_call"}

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        with self.sessions() as s:
            c = s.get(Customer, customer_id)
            if c is None:
                return None
            out = self._brief(s, c)
            out["source"] = c.source
            out["vehicles"] = [{"id": v.id, "brand": v.brand, "model": v.model, "plate": v.plate, "vin": v.vin,
                                "mileage_km": v.mileage_km,
                                "next_maintenance_due": v.next_maintenance_due.isoformat()
                                if v.next_maintenance_due else None,
                                "insurance_expiry": v.insurance_expiry.isoformat() if v.insurance_expiry else None}
                               for v in s.scalars(select(Vehicle).where(Vehicle.customer_id == c.id))]
            stores = {row.id: row for row in s.execute(select(Store.id, Store.code, Store.name, Store.time_zone))}

            # Each time goes with the zone of the store it happened at (else the server's): the desktop shows it
            # in that store's hours, wherever the agent's browser is.
            def zone(store_id: int | None) -> str:
                found = stores.get(store_id) if store_id is not None else None
                return str(found.time_zone) if found is not None and found.time_zone else self.time_zone

            calls = list(s.scalars(select(Call).where(Call.customer_id == c.id)
                                   .order_by(Call.entered_at.desc()).limit(20)))
            call_stores = self._call_stores(s, calls)
            out["calls"] = [{"uniqueid": k.uniqueid, "entered_at": _iso(k.entered_at), "direction": k.direction,
                             "queue": k.queue, "outcome": k.outcome, "disposition": k.disposition,
                             "talk_seconds": k.talk_seconds, "time_zone": zone(call_stores.get(k.id))}
                            for k in calls]
            out["tickets"] = [{"id": t.id, "kind": t.kind, "status": t.status, "subject": t.subject,
                               "created_at": _iso(t.created_at), "time_zone": zone(t.store_id)}
                              for t in s.scalars(select(Ticket).where(Ticket.customer_id == c.id)
                                                 .order_by(Ticket.id.desc()).limit(20))]
            home = stores.get(c.home_store_id) if c.home_store_id else None
            # the desktop's appointment form starts at the home store (by code, as agents type it)
            out["home_store"] = {"id": home.id, "code": home.code, "name": home.name} if home else None
            out["visits"] = [{"id": v.id, "opened_at": _iso(v.opened_at), "status": v.status,
                              "store": stores[v.store_id].name if v.store_id in stores else None,
                              "description": v.description, "time_zone": zone(v.store_id)}
                             for v in s.scalars(select(ServiceVisit).where(ServiceVisit.customer_id == c.id)
                                                .order_by(ServiceVisit.opened_at.desc()).limit(10))]
            return out

    @staticmethod
    def _call_stores(s: Session, calls: list[Call]) -> dict[int, int]:
        """Call id → the store it was for: the dialled number's (a DID of that store), else its queue's."""
        dialed = {k.dialed for k in calls if k.dialed}
        queues = {k.queue for k in calls if k.queue}
        by_did = {str(n): i for n, i in s.execute(select(Did.number, Did.store_id).where(
            Did.number.in_(dialed))) if i is not None} if dialed else {}
        by_queue = {str(n): i for n, i in s.execute(select(Queue.name, Queue.store_id).where(
            Queue.name.in_(queues))) if i is not None} if queues else {}
        out: dict[int, int] = {}
        for k in calls:
            store = by_did.get(k.dialed or "") or by_queue.get(k.queue or "")
            if store is not None:
                out[k.id] = store
        return out

    def update_customer(self, customer_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self.sessions.begin() as s:
            c = s.get(Customer, customer_id)
            if c is None:
                return None
            for key, value in changes.items():
                setattr(c, key, value)
        return self.customer(customer_id)

    def merge(self, prospect_id: int, into_id: int) -> dict[str, int]:
        """Move everything of the prospect (numbers, calls, tickets, tasks, bookings, decisions, surveys) to
        ``into_id`` and delete the prospect. Only a prospect (tier ``prospect``, no vehicles, orders or visits)
        may be merged away: a real customer's history is never folded into another by a click."""
        if prospect_id == into_id:
            raise MergeRefused(T("a customer cannot be merged into itself"))
        with self.sessions.begin() as s:
            prospect, into = s.get(Customer, prospect_id), s.get(Customer, into_id)
            if prospect is None or into is None:
                raise LookupError(T("no such customer"))
            owns = sum(s.scalar(select(func.count()).select_from(m).where(m.customer_id == prospect_id)) or 0
                       for m in (Vehicle, Order, ServiceVisit))
            if prospect.tier != "prospect" or owns:
                raise MergeRefused(T("only a prospect without vehicles, orders or visits can be merged away"))
            moved: dict[str, int] = {}
            for model in (Call, Ticket, CallbackTask, Appointment, RoutingDecision):
                result = s.execute(update(model).where(model.customer_id == prospect_id).values(customer_id=into_id))
                moved[model.__tablename__] = result.rowcount or 0  # type: ignore[attr-defined]
            have = set(s.scalars(select(customer_phones.c.phone_id).where(customer_phones.c.customer_id == into_id)))
            phones = list(s.execute(select(customer_phones).where(customer_phones.c.customer_id == prospect_id)))
            for row in phones:
                if row.phone_id not in have:
                    s.execute(customer_phones.insert().values(customer_id=into_id, phone_id=row.phone_id,
                                                              label=row.label, is_primary=False))
            s.execute(delete(customer_phones).where(customer_phones.c.customer_id == prospect_id))
            moved["phones"] = len(phones)
            s.delete(prospect)
            into.updated_at = self._now()
        return moved

    def audit(self, action: str, actor_id: int | None, actor_name: str, target: str, detail: dict[str, Any],
              ip: str | None) -> None:
        with self.sessions.begin() as s:
            s.add(AuditLog(at=self._now(), actor_id=actor_id, actor_name=actor_name[:64], action=action,
                           target=target[:200], ip=ip, detail=detail))
