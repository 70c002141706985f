"""Stores, DIDs, queues, business hours, holidays and make-up days: validated edits in SQL, each audited.

Blocking (the web calls these through ``run_blocking``). ``limit_store`` is a store manager's store: they may
only see and change what belongs to it (an admin passes None). Every change is refused with a reason before it
is written — a DID that names an unknown queue or store, an hours row that closes before it opens — so routing
never loads something it cannot use. After a change the caller publishes a reload (ccserver/admin/reload.py):
routing reads these tables again on every node, and the next call sees the change.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from ccserver.admin.rules import named_queues
from ccserver.admin.users import Actor, AdminError, audit
from ccserver.db.models import (
    LINES,
    Appointment,
    AuditLog,
    BusinessHours,
    CallbackTask,
    Campaign,
    Customer,
    DealerGroup,
    Did,
    Holiday,
    MakeupWorkday,
    Order,
    Queue,
    ServiceVisit,
    Store,
    Ticket,
    User,
)
from ccserver.dialer.store import caller_ids
from ccserver.textcheck import CONTROLS
from ccserver.texts import T, Text

STORE_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
DID_NUMBER = re.compile(r"^\+?[0-9]{3,31}$")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # goes into queues.conf and AMI actions
STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered")
SessionFactory = Callable[[], Session]


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise AdminError(T("{key} is required", key=key), field=key)
        return None
    if not isinstance(value, str) or len(value) > limit or CONTROLS.search(value):
        raise AdminError(T("{key} must be one line of text of at most {limit} characters", key=key, limit=limit),
                         field=key)
    return value.strip()


def _check_fields(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise AdminError(T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))))


def _store_by_ref(session: Session, ref: Any) -> Store:
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise AdminError(T("store must be a store's code or id"), field="store")
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        number = int(ref)  # an id beyond the column's range is no store (not a database error)
        store = session.get(Store, number) if 0 < number < 2**31 else None
    else:
        store = session.scalars(select(Store).where(Store.code == ref)).one_or_none()
    if store is None:
        raise AdminError(T("unknown store {ref}", ref=repr(ref)), 404, field="store")
    return store


def _in_scope(store_id: int | None, limit_store: int | None, what: str) -> None:
    if limit_store is not None and store_id != limit_store:
        raise AdminError(T("{what} belongs to another store", what=what), 403)


# --- stores ------------------------------------------------------------------------------------------------


def store_dict(s: Store) -> dict[str, Any]:
    return {"id": s.id, "code": s.code, "name": s.name, "brand": s.brand, "city": s.city,
            "time_zone": s.time_zone, "address": s.address}


def list_stores(sf: SessionFactory, limit_store: int | None = None) -> list[dict[str, Any]]:
    with sf() as session:
        query = select(Store).order_by(Store.code)
        if limit_store is not None:
            query = query.where(Store.id == limit_store)
        return [store_dict(s) for s in session.scalars(query)]


def save_store(sf: SessionFactory, actor: Actor, data: dict[str, Any], store_id: int | None = None) -> dict[str, Any]:
    """Create (``store_id`` None) or change a store. Only an admin may (checked by the route)."""
    _check_fields(data, {"code", "name", "brand", "city", "time_zone", "address"})
    creating = store_id is None
    code = _text(data, "code", 32, required=creating)
    if code is not None and not STORE_CODE.match(code):
        raise AdminError(T("store code {code}: 2-32 lower-case letters, digits and dashes, e.g. bj-volvo",
                           code=repr(code)), field="code")
    fields = {key: _text(data, key, limit, required=creating and key != "address")
              for key, limit in (("name", 120), ("brand", 60), ("city", 60), ("time_zone", 64), ("address", 255))
              if creating or key in data}
    tz = fields.get("time_zone")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise AdminError(T("unknown time zone {tz} (e.g. Asia/Shanghai)", tz=repr(tz)), field="time_zone") from None
    with sf() as session, session.begin():
        if code is not None:
            clash = session.scalars(select(Store.id).where(Store.code == code)).first()
            if clash is not None and clash != store_id:
                raise AdminError(T("a store with code {code} exists already", code=repr(code)), 409, field="code")
        if creating:
            group = session.scalars(select(DealerGroup).order_by(DealerGroup.id)).first()
            if group is None:
                group = DealerGroup(name="Dealer group")
                session.add(group)
                session.flush()
            store = Store(group_id=group.id, code=code, **fields)
            session.add(store)
            before = None
        else:
            store = _store_by_ref(session, store_id)
            before = store_dict(store)
            if code is not None:
                store.code = code
            for key, value in fields.items():
                if value is None and key != "address":
                    raise AdminError(T("{key} cannot be empty", key=key), field=key)
                setattr(store, key, value)
        session.flush()
        after = store_dict(store)
        audit(session, actor, "store.created" if creating else "store.updated", f"store:{store.code}", before, after)
        return after


# What still names a store (a row that would lose its store, or go with it): deleting it is refused while any
# does. The store's own hours and days are not in the list: they go with it.
_STORE_USES: tuple[tuple[Any, Any, Callable[[int], Text]], ...] = (
    (User, User.store_id, lambda n: T("{n} user(s)", n=n)),
    (Queue, Queue.store_id, lambda n: T("{n} queue(s)", n=n)),
    (Did, Did.store_id, lambda n: T("{n} DID(s)", n=n)),
    (Customer, Customer.home_store_id, lambda n: T("{n} customer(s)", n=n)),
    (Ticket, Ticket.store_id, lambda n: T("{n} ticket(s)", n=n)),
    (Order, Order.store_id, lambda n: T("{n} order(s)", n=n)),
    (ServiceVisit, ServiceVisit.store_id, lambda n: T("{n} service visit(s)", n=n)),
    (CallbackTask, CallbackTask.store_id, lambda n: T("{n} call-back task(s)", n=n)),
    (Appointment, Appointment.store_id, lambda n: T("{n} appointment(s)", n=n)),
    (Campaign, Campaign.store_id, lambda n: T("{n} campaign(s)", n=n)))


def _listing(parts: list[Text]) -> Text:
    """The texts as one list, each read in the reader's language (ccserver/texts.py translates nested texts), and
    so is the comma between them (、 in Chinese)."""
    listed = parts[0]
    for part in parts[1:]:
        listed = T("{first}, {then}", first=listed, then=part)
    return listed


def store_id_by_code(sf: SessionFactory, code: str) -> int:
    """The id of the store with this code (a command names a store by its code; an all-digit code such as "12" is
    a code there, never an id)."""
    with sf() as session:
        found = session.scalars(select(Store.id).where(Store.code == code)).one_or_none()
    if found is None:
        raise AdminError(T("unknown store {ref}", ref=repr(code)), 404, field="store")
    return int(found)


def delete_store(sf: SessionFactory, actor: Actor, store_id: int) -> None:
    """Remove a store that nothing uses any more (an admin's typo, a store never opened); its hours and its own
    holidays go with it. Refused (409), naming what still uses it, otherwise: those are moved or removed first."""
    with sf() as session, session.begin():
        store = _store_by_ref(session, store_id)
        uses = []
        for model, column, counted in _STORE_USES:
            n = session.scalar(select(func.count()).select_from(model).where(column == store.id)) or 0
            if n:
                uses.append(counted(n))
        if uses:
            raise AdminError(T("store {code} is still used by {uses}: move or remove them first",
                               code=repr(store.code), uses=_listing(uses)), 409)
        before = store_dict(store)
        for model in (BusinessHours, Holiday, MakeupWorkday):  # as ON DELETE CASCADE would (and does in SQL)
            session.execute(delete(model).where(model.store_id == store.id))
        session.delete(store)
        audit(session, actor, "store.deleted", f"store:{before['code']}", before, None)


# --- queues ------------------------------------------------------------------------------------------------


def queue_dict(q: Queue, stores: dict[int, str]) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "store": stores.get(q.store_id) if q.store_id else None, "line": q.line,
            "description": q.description, "strategy": q.strategy}


def _stores(session: Session) -> dict[int, str]:
    return {int(i): str(c) for i, c in session.execute(select(Store.id, Store.code))}


def list_queues(sf: SessionFactory, limit_store: int | None = None) -> list[dict[str, Any]]:
    with sf() as session:
        query = select(Queue).order_by(Queue.name)
        if limit_store is not None:
            query = query.where(Queue.store_id == limit_store)
        stores = _stores(session)
        return [queue_dict(q, stores) for q in session.scalars(query)]


def _line(value: Any, *, required: bool) -> str | None:
    if value in (None, ""):
        if required:
            raise AdminError(T("line is required: one of {lines}", lines=', '.join(LINES)), field="line")
        return None
    if value not in LINES:
        raise AdminError(T("unknown line {value}; one of {lines}", value=repr(value), lines=', '.join(LINES)),
                         field="line")
    return str(value)


def save_queue(sf: SessionFactory, actor: Actor, data: dict[str, Any], queue_id: int | None = None,
               limit_store: int | None = None) -> dict[str, Any]:
    """A queue as ccserver knows it: its name is the Asterisk queue (queues.conf) it maps to."""
    _check_fields(data, {"name", "store", "line", "description", "strategy"})
    creating = queue_id is None
    name = _text(data, "name", 80, required=creating)
    if name is not None and not QUEUE_NAME.match(name):
        raise AdminError(T("queue name {name}: letters, digits, _ and - (the Asterisk queue's name)", name=repr(name)),
                         field="name")
    strategy = data.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise AdminError(T("unknown strategy {strategy}; one of {strategies}", strategy=repr(strategy),
                           strategies=', '.join(STRATEGIES)), field="strategy")
    with sf() as session, session.begin():
        stores = _stores(session)
        if name is not None and session.scalars(select(Queue.id).where(Queue.name == name,
                                                                       Queue.id != (queue_id or 0))).first():
            raise AdminError(T("a queue named {name} exists already", name=repr(name)), 409, field="name")
        if creating:
            queue = Queue(name=name, strategy=strategy or "leastrecent")
            session.add(queue)
            before = None
        else:
            found = session.get(Queue, queue_id)
            if found is None:
                raise AdminError(T("no queue #{queue_id}", queue_id=queue_id), 404)
            queue = found
            _in_scope(queue.store_id, limit_store, f"queue {queue.name}")
            before = queue_dict(queue, stores)
            if name is not None:
                queue.name = name
            if strategy is not None:
                queue.strategy = strategy
        if "store" in data or creating:
            queue.store_id = _store_by_ref(session, data["store"]).id if data.get("store") else None
        if "line" in data:
            queue.line = _line(data["line"], required=False)
        if "description" in data:
            queue.description = _text(data, "description", 255)
        _in_scope(queue.store_id, limit_store, f"queue {queue.name}")
        session.flush()
        after = queue_dict(queue, stores)
        audit(session, actor, "queue.created" if creating else "queue.updated", f"queue:{queue.name}", before, after)
        return after


def queue_id_by_name(sf: SessionFactory, name: str) -> int:
    """The id of the queue with this name (the Asterisk queue's)."""
    with sf() as session:
        found = session.scalars(select(Queue.id).where(Queue.name == name)).one_or_none()
    if found is None:
        raise AdminError(T("no queue named {name}", name=repr(name)), 404, field="name")
    return int(found)


def delete_queue(sf: SessionFactory, actor: Actor, queue_id: int, limit_store: int | None = None,
                 rules: dict[str, Any] | None = None) -> None:
    """Remove a queue nothing routes to. Refused (409) while a DID has it as its default queue, the routing rules in
    use (``rules``, as :func:`ccserver.admin.rules.effective` gives them) name it, or a campaign that has not finished
    puts its answered calls in it. Calls keep the queue's name (history survives)."""
    with sf() as session, session.begin():
        queue = session.get(Queue, queue_id)
        if queue is None:
            raise AdminError(T("no queue #{queue_id}", queue_id=queue_id), 404)
        _in_scope(queue.store_id, limit_store, f"queue {queue.name}")
        uses = []
        dids = list(session.scalars(select(Did.number).where(Did.default_queue_id == queue.id).order_by(Did.number)))
        if dids:
            uses.append(T("the DID(s) {numbers} (default queue)", numbers=", ".join(dids)))
        named_by_rules = [where for where, name in named_queues(rules or {}) if str(name) == queue.name]
        if named_by_rules:
            uses.append(T("the routing rules ({keys})", keys=", ".join(named_by_rules)))
        campaigns = list(session.scalars(select(Campaign.name).where(Campaign.queue == queue.name,
                                                                     Campaign.status != "finished")))
        if campaigns:
            uses.append(T("the campaign(s) {names}", names=", ".join(repr(c) for c in campaigns)))
        if uses:
            raise AdminError(T("queue {name} is still used by {uses}: change them first", name=repr(queue.name),
                               uses=_listing(uses)), 409)
        before = queue_dict(queue, _stores(session))
        session.delete(queue)
        audit(session, actor, "queue.deleted", f"queue:{before['name']}", before, None)


# --- DIDs --------------------------------------------------------------------------------------------------


def did_dict(d: Did, stores: dict[int, str], queues: dict[int, str]) -> dict[str, Any]:
    return {"id": d.id, "number": d.number, "store": stores.get(d.store_id) if d.store_id else None,
            "line": d.line, "default_queue": queues.get(d.default_queue_id) if d.default_queue_id else None,
            "description": d.description}


def _queues(session: Session) -> dict[int, str]:
    return {int(i): str(n) for i, n in session.execute(select(Queue.id, Queue.name))}


def list_dids(sf: SessionFactory, limit_store: int | None = None) -> list[dict[str, Any]]:
    with sf() as session:
        query = select(Did).order_by(Did.number)
        if limit_store is not None:
            query = query.where(Did.store_id == limit_store)
        stores, queues = _stores(session), _queues(session)
        return [did_dict(d, stores, queues) for d in session.scalars(query)]


def save_did(sf: SessionFactory, actor: Actor, data: dict[str, Any], did_id: int | None = None,
             limit_store: int | None = None) -> dict[str, Any]:
    """A DID: the number callers dial, its store (none: group-wide), its line, its default route (a queue)."""
    _check_fields(data, {"number", "store", "line", "default_queue", "description"})
    creating = did_id is None
    number = _text(data, "number", 32, required=creating)
    if number is not None:
        number = number.replace(" ", "").replace("-", "")
        if not DID_NUMBER.match(number):
            raise AdminError(T("DID {number} is not a number as Asterisk's ${{EXTEN}} shows it", number=repr(number)),
                             field="number")
    with sf() as session, session.begin():
        stores, queues = _stores(session), _queues(session)
        if number is not None and session.scalars(select(Did.id).where(Did.number == number,
                                                                       Did.id != (did_id or 0))).first():
            raise AdminError(T("DID {number} exists already", number=number), 409, field="number")
        if creating:
            did = Did(number=number, line=_line(data.get("line"), required=True))
            session.add(did)
            before = None
        else:
            found = session.get(Did, did_id)
            if found is None:
                raise AdminError(T("no DID #{did_id}", did_id=did_id), 404)
            did = found
            _in_scope(did.store_id, limit_store, f"DID {did.number}")
            before = did_dict(did, stores, queues)
            if number is not None:
                did.number = number
            if "line" in data:
                did.line = str(_line(data["line"], required=True))
        if "store" in data or creating:
            did.store_id = _store_by_ref(session, data["store"]).id if data.get("store") else None
        if "default_queue" in data or creating:
            wanted = data.get("default_queue")
            if wanted is not None and not isinstance(wanted, str):
                raise AdminError(T("default_queue must be a queue's name"), field="default_queue")
            if wanted:
                by_name = {v: k for k, v in queues.items()}
                if wanted not in by_name:
                    raise AdminError(T("unknown queue {queue}: create it first (known: {known})", queue=repr(wanted),
                                       known=", ".join(sorted(by_name)) or "-"), field="default_queue")
                did.default_queue_id = by_name[wanted]
            else:
                did.default_queue_id = None
        if "description" in data:
            did.description = _text(data, "description", 255)
        _in_scope(did.store_id, limit_store, f"DID {did.number}")
        session.flush()
        after = did_dict(did, stores, queues)
        audit(session, actor, "did.created" if creating else "did.updated", f"did:{did.number}", before, after)
        return after


# Campaigns that call, or will again when resumed: they must keep a caller ID.
_CALLING_CAMPAIGNS = ("running", "paused")


def delete_did(sf: SessionFactory, actor: Actor, did_id: int, limit_store: int | None = None) -> None:
    """Remove a DID. Refused (409), naming the campaigns, while a running or paused campaign would be left with no
    caller ID: it is the last number the campaign can call from (its store's DIDs, else the group's number —
    ``ccserver.dialer.store.caller_ids``)."""
    with sf() as session, session.begin():
        did = session.get(Did, did_id)
        if did is None:
            raise AdminError(T("no DID #{did_id}", did_id=did_id), 404)
        _in_scope(did.store_id, limit_store, f"DID {did.number}")
        calling = session.execute(select(Campaign.name, Campaign.store_id)
                                  .where(Campaign.status.in_(_CALLING_CAMPAIGNS)).order_by(Campaign.name)).all()
        left = caller_ids(session, {store for _, store in calling}, without=did.id)
        stranded = [name for name, store in calling if left[store] is None]
        if stranded:
            names = T("the campaign(s) {names}", names=", ".join(repr(name) for name in stranded))
            raise AdminError(T("DID {number} is the last caller ID of {uses}: add another DID or finish them first",
                               number=did.number, uses=names), 409)
        before = did_dict(did, _stores(session), _queues(session))
        session.delete(did)
        audit(session, actor, "did.deleted", f"did:{before['number']}", before, None)


# --- hours, holidays, make-up days --------------------------------------------------------------------------


def _clock(value: Any, what: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise AdminError(T("{what} {value} is not a time like 08:30", what=what, value=repr(value))) from None


def hours_of(sf: SessionFactory, store: Any, limit_store: int | None = None) -> dict[str, Any]:
    with sf() as session:
        found = _store_by_ref(session, store)
        _in_scope(found.id, limit_store, f"store {found.code}")
        rows = session.scalars(select(BusinessHours).where(BusinessHours.store_id == found.id)
                               .order_by(BusinessHours.line, BusinessHours.weekday, BusinessHours.opens_at))
        return {"store": found.code, "hours": [
            {"line": h.line, "weekday": h.weekday, "opens": _hhmm(h.opens_at), "closes": _hhmm(h.closes_at)}
            for h in rows]}


def _hhmm(value: dt.time) -> str:
    """08:30, or 23:59:59 when there are seconds (a round trip through the page must not change the hours)."""
    return value.isoformat(timespec="seconds" if value.second or value.microsecond else "minutes")


def set_hours(sf: SessionFactory, actor: Actor, store: Any, hours: Any,
              limit_store: int | None = None) -> dict[str, Any]:
    """Replace a store's opening hours: ``[{"weekday": 0-6 (Monday 0), "opens": "08:30", "closes": "18:00",
    "line": null or a line}]`` (closes before opens: until the next morning; equal: 24 hours). An empty list: the
    store is always open (routing cannot know better)."""
    if not isinstance(hours, list):
        raise AdminError(T("hours must be a list"))
    rows = []
    for n, item in enumerate(hours, 1):
        if not isinstance(item, dict):
            raise AdminError(T("hours row {n} must be an object", n=n))
        _check_fields(item, {"weekday", "opens", "closes", "line"})
        weekday = item.get("weekday")
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise AdminError(T("hours row {n}: weekday must be 0 (Monday) to 6 (Sunday)", n=n))
        # routing/calendar.py: closes < opens runs overnight, closes == opens is 24 hours, 00:00 is midnight.
        opens, closes = _clock(item.get("opens"), f"hours row {n}: opens"), _clock(item.get("closes"),
                                                                                   f"hours row {n}: closes")
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise AdminError(T("hours row {n}: wall-clock times only (the store's time zone applies)", n=n))
        rows.append((weekday, opens, closes, _line(item.get("line"), required=False)))
    with sf() as session, session.begin():
        found = _store_by_ref(session, store)
        _in_scope(found.id, limit_store, f"store {found.code}")
        code = found.code
    before = hours_of(sf, code)
    with sf() as session, session.begin():
        session.execute(delete(BusinessHours).where(BusinessHours.store_id == found.id))
        session.add_all([BusinessHours(store_id=found.id, weekday=w, opens_at=o, closes_at=c, line=line)
                         for w, o, c, line in rows])
    after = hours_of(sf, code)
    with sf() as session, session.begin():
        audit(session, actor, "hours.updated", f"store:{code}", before["hours"], after["hours"])
    return after


def list_days(sf: SessionFactory, year: int | None = None, limit_store: int | None = None) -> dict[str, Any]:
    """Holidays and make-up working days (group-wide and per store), with whether the year is provisional."""
    from ccserver.demo.calendar_cn import PROVISIONAL_YEARS, has_official_table

    with sf() as session:
        stores = _stores(session)
        out: dict[str, Any] = {}
        calendars: tuple[tuple[str, Any], ...] = (("holidays", Holiday), ("makeup_workdays", MakeupWorkday))
        for key, model in calendars:
            query = select(model).order_by(model.day)
            if year is not None:
                query = query.where(model.day >= dt.date(year, 1, 1), model.day <= dt.date(year, 12, 31))
            if limit_store is not None:
                query = query.where((model.store_id.is_(None)) | (model.store_id == limit_store))
            out[key] = [_day_dict(d, stores) for d in session.scalars(query)]
        if year is not None:
            out["year"] = year
            imported = any(d["name"] for d in out["holidays"])
            out["provisional"] = year in PROVISIONAL_YEARS or not has_official_table(year)
            out["imported"] = imported
        return out


def _calendar(kind: str) -> Any:
    model: Any = {"holidays": Holiday, "makeup_workdays": MakeupWorkday}.get(kind)
    if model is None:
        raise AdminError(T("unknown calendar {kind}", kind=repr(kind)), 404)
    return model


def _day(data: dict[str, Any]) -> dt.date:
    try:
        day = dt.date.fromisoformat(str(data.get("day")))
    except ValueError:
        raise AdminError(T("day {value} is not a date like 2027-02-06", value=repr(data.get('day'))),
                         field="day") from None
    if not 1970 <= day.year <= 9000:  # as every date a request names (ccserver/web/moments.py): the calendar lists it
        raise AdminError(T("day {value} must be between the years 1970 and 9000", value=repr(data.get('day'))),
                         field="day")
    return day


def _day_dict(row: Any, stores: dict[int, str]) -> dict[str, Any]:
    return {"id": row.id, "day": row.day.isoformat(), "name": row.name,
            "store": stores.get(row.store_id) if row.store_id else None}


def _day_taken(session: Session, model: Any, day: dt.date, store_id: int | None, row_id: int = 0) -> None:
    if session.scalars(select(model.id).where(model.day == day, model.id != row_id, and_(
            model.store_id.is_(None) if store_id is None else model.store_id == store_id))).first():
        raise AdminError(T("{day} is already on that calendar", day=day), 409, field="day")


def _own_day(store_id: int | None, limit_store: int | None, refusal: Text) -> None:
    """A store manager's days are their store's: another store's, or a group-wide one (an admin's), is refused with
    what they tried (add, change or delete), in the reader's language."""
    if limit_store is not None and store_id != limit_store:
        raise AdminError(refusal, 403)


def add_day(sf: SessionFactory, actor: Actor, kind: str, data: dict[str, Any],
            limit_store: int | None = None) -> dict[str, Any]:
    _check_fields(data, {"day", "name", "store"})
    model = _calendar(kind)
    day = _day(data)
    name = _text(data, "name", 80, required=True)
    with sf() as session, session.begin():
        store_id = _store_by_ref(session, data["store"]).id if data.get("store") else None
        _own_day(store_id, limit_store, T("a store manager may only add days for their own store"))
        _day_taken(session, model, day, store_id)
        row = model(day=day, name=name, store_id=store_id)
        session.add(row)
        session.flush()
        after = {"id": row.id, "day": day.isoformat(), "name": name, "store": data.get("store") or None}
        audit(session, actor, f"{kind[:-1]}.created", f"{kind}:{day}", None, after)
        return after


def update_day(sf: SessionFactory, actor: Actor, kind: str, day_id: int, data: dict[str, Any],
               limit_store: int | None = None) -> dict[str, Any]:
    """Change a holiday's or make-up day's date, name or store (the fields ``add_day`` takes, checked alike)."""
    _check_fields(data, {"day", "name", "store"})
    model = _calendar(kind)
    day = _day(data) if "day" in data else None
    name = _text(data, "name", 80, required=True) if "name" in data else None
    with sf() as session, session.begin():
        row = session.get(model, day_id)
        if row is None:
            raise AdminError(T("no such day #{day_id}", day_id=day_id), 404)
        _own_day(row.store_id, limit_store, T("a store manager may only change their own store's days"))
        stores = _stores(session)
        before = _day_dict(row, stores)
        if "store" in data:
            row.store_id = _store_by_ref(session, data["store"]).id if data.get("store") else None
            _own_day(row.store_id, limit_store, T("a store manager may only change their own store's days"))
        if day is not None:
            row.day = day
        if name is not None:
            row.name = name
        _day_taken(session, model, row.day, row.store_id, row.id)
        session.flush()
        after = _day_dict(row, stores)
        audit(session, actor, f"{kind[:-1]}.updated", f"{kind}:{row.day}", before, after)
        return after


def delete_day(sf: SessionFactory, actor: Actor, kind: str, day_id: int, limit_store: int | None = None) -> None:
    model = _calendar(kind)
    with sf() as session, session.begin():
        row = session.get(model, day_id)
        if row is None:
            raise AdminError(T("no such day #{day_id}", day_id=day_id), 404)
        _own_day(row.store_id, limit_store, T("a store manager may only delete their own store's days"))
        before = {"day": row.day.isoformat(), "name": row.name, "store_id": row.store_id}
        session.delete(row)
        audit(session, actor, f"{kind[:-1]}.deleted", f"{kind}:{before['day']}", before, None)


def import_cn_year(sf: SessionFactory, actor: Actor, year: int) -> dict[str, Any]:
    """The bundled Chinese holiday calendar of ``year`` (ccserver/demo/calendar_cn.py), group-wide; days already
    there are kept. A provisional year (not yet published by the State Council) is imported only on purpose."""
    from ccserver.demo.calendar_cn import PROVISIONAL_YEARS, has_official_table, holidays, makeup_workdays

    if not has_official_table(year) and year not in PROVISIONAL_YEARS:
        raise AdminError(T("no bundled calendar for {year}; enter its days by hand", year=year), 404)
    added = {"holidays": 0, "makeup_workdays": 0}
    with sf() as session, session.begin():
        for key, model, days in (("holidays", Holiday, holidays(year)),
                                 ("makeup_workdays", MakeupWorkday, makeup_workdays(year))):
            have = set(session.scalars(select(model.day).where(model.store_id.is_(None))))
            for day, name in days:
                if day not in have:
                    session.add(model(day=day, name=name[:80], store_id=None))
                    added[key] += 1
        result = {"year": year, "provisional": year in PROVISIONAL_YEARS, **added}
        audit(session, actor, "calendar.imported", f"calendar:{year}", None, result)
    return result


# --- the audit log -----------------------------------------------------------------------------------------


def audit_entries(sf: SessionFactory, *, action: str | None = None, actor: str | None = None,
                  target: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
    """The newest entries first; ``action`` and ``target`` match a prefix (``user.``, ``store:bj-volvo``)."""
    with sf() as session:
        query = select(AuditLog).order_by(AuditLog.id.desc()).limit(max(1, min(limit, 1000)))
        if action:
            query = query.where(AuditLog.action.startswith(action, autoescape=True))
        if actor:
            query = query.where(AuditLog.actor_name == actor)
        if target:
            query = query.where(AuditLog.target.startswith(target, autoescape=True))
        if since:
            query = query.where(AuditLog.at >= since)
        if until:
            query = query.where(AuditLog.at < until)
        if before_id:
            query = query.where(AuditLog.id < before_id)
        return [{"id": a.id, "at": a.at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                 "actor": a.actor_name, "action": a.action, "target": a.target, "ip": a.ip, "detail": a.detail}
                for a in session.scalars(query)]
