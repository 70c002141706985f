"""Who is calling: E.164 number → the customer the routing decision needs (blocking SQL, worker thread).

``identify`` is on the call path, so it is **one** SQL round trip when the number is known or unknown (and a
few more only when it creates a prospect):

    SELECT customer columns, consultant / advisor interface (active users only), EXISTS(open complaint)
      FROM phone_numbers p JOIN customer_phones  → customers …  WHERE p.e164 = :e164
    UNION ALL
    SELECT …  FROM phone_numbers p JOIN company_contacts → customers (the company) … WHERE p.e164 = :e164

Indexes it walks (all present since migration 0001): ``uq_phone_numbers_e164`` (unique), the
``customer_phones`` primary key plus ``ix_customer_phones_phone_id``, ``ix_company_contacts_phone_id``, the
``customers`` and ``users`` primary keys, and ``ix_tickets_customer_id`` for the complaint probe.

A number several customers share (a family landline, a company switchboard, a contact who is also a private
customer) resolves to the **most recently active** of them (``last_activity_at``, then ``updated_at``, then the
higher id), flagged ``ambiguous``; the others are listed most recent first.

Unknown numbers become a *prospect* when the caller asks (``create_prospect``; the routing handler passes False
for campaign legs and our own DIDs). The prospect is named with a neutral placeholder built from the verified
number (``来电 138****8000``) — never from the caller ID name, which the caller controls. Creation is race-safe:
the unique index on ``phone_numbers.e164`` lets one of two concurrent calls insert the number; the other gets
an IntegrityError and finds the first one's customer on its retry. A number already on file without any
customer (left behind when it was unlinked) is claimed with a row-locking UPDATE before the re-check, so two
calls cannot both attach a prospect to it either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccserver.customers.valuation import reasons_from_components
from ccserver.db.models import (
    PHONE_KINDS,
    AuditLog,
    CompanyContact,
    Customer,
    PhoneNumber,
    Ticket,
    User,
    Vehicle,
    customer_phones,
)
from routing.decision import CustomerSummary
from routing.numbers import normalize
from routing.value import is_vip

__all__ = ["Identity", "CustomerDirectory", "CustomerProfile", "by_number_sql", "placeholder_name",
           "OPEN_COMPLAINT_STATUSES"]

# A complaint still being worked (tickets lifecycle: not yet resolved): routing's bonus, the score's risk flag.
OPEN_COMPLAINT_STATUSES: Final = ("new", "assigned", "in_progress")
PROSPECT_SOURCE: Final = "inbound_call"
_CREATE_ATTEMPTS: Final = 4


@dataclass(frozen=True)
class Identity:
    """The outcome of ``CustomerDirectory.identify``.

    ``customer``: the customer to route for (fully filled except ``calls_last_24h``, which the cache layer's
    24-hour counter fills — see ``cache.with_calls``), or None for an unknown number.
    ``other_customer_ids``: when the number is shared, the other customers on it, most recently active first.
    ``created_prospect``: this call created the customer (a new prospect).
    """

    customer: CustomerSummary | None
    other_customer_ids: tuple[int, ...] = ()
    created_prospect: bool = False


@dataclass(frozen=True)
class CustomerProfile:
    """What the API shows of a customer (not on the call path)."""

    id: int
    name: str
    numbers: tuple[str, ...]  # E.164, primary first
    tier: str
    score: float
    vip: bool
    vehicle_count: int
    score_components: dict[str, Any] | None

    def reasons(self) -> list[str]:
        return reasons_from_components(self.score_components, self.score)


def placeholder_name(e164: str, kind: str | None = None) -> str:
    """A neutral display name for a new prospect: ``来电 138****8000`` (CN numbers in national form)."""
    if e164.startswith("+86"):
        national = e164[3:]
        if not national.startswith("1") or (kind is not None and kind != "mobile"):
            national = "0" + national  # landlines and service numbers are written with the trunk 0
    else:
        national = e164
    if len(national) >= 9:
        masked = national[:3] + "****" + national[-4:]
    else:
        masked = "****" + national[-4:]
    return f"来电 {masked}"


_c = cast(Table, Customer.__table__)
_p = cast(Table, PhoneNumber.__table__)
_cp = customer_phones
_cc = cast(Table, CompanyContact.__table__)
_t = cast(Table, Ticket.__table__)
_v = cast(Table, Vehicle.__table__)
_E164: BindParameter[str] = bindparam("e164")
# Table aliases, not ORM ``aliased(User)``: an ORM entity anywhere in the statement sends every execution through
# the ORM's compile/loading layer; plain Core keeps identify() a thin Connection.execute (worker-thread CPU).
_users = cast(Table, User.__table__)
_consultant = _users.alias("consultant")
_advisor = _users.alias("advisor")


# Constants rendered into the SQL: an ``in_()`` of a Python tuple is an "expanding" parameter that SQLAlchemy
# re-renders on every execution (~20 µs per identify).
_OPEN_STATUSES_SQL: list[ColumnElement[Any]] = [literal_column(f"'{status}'") for status in OPEN_COMPLAINT_STATUSES]


def _summary_select() -> Select[Any]:
    complaint = (
        exists()
        .where(_t.c.customer_id == _c.c.id, _t.c.kind == "complaint", _t.c.status.in_(_OPEN_STATUSES_SQL))
        .label("open_complaint")
    )
    return select(
        _c.c.id,
        _c.c.name,
        _c.c.tier,
        _c.c.value_score,
        _c.c.manual_vip,
        _c.c.language,
        _consultant.c.extension.label("consultant_extension"),
        _advisor.c.extension.label("advisor_extension"),
        complaint,
        _c.c.last_activity_at,
        _c.c.updated_at,
    )


def _with_people(stmt: Select[Any], source: Any) -> Select[Any]:
    return stmt.select_from(
        source.outerjoin(_consultant, and_(_consultant.c.id == _c.c.sales_consultant_id, _consultant.c.active))
        .outerjoin(_advisor, and_(_advisor.c.id == _c.c.service_advisor_id, _advisor.c.active))
    )


def _build_by_number(many: bool = False, contacts: bool = True) -> Any:
    """The customers on one number (``e164``): by their own phones, and companies by their contacts' phones.
    ``many``: on any of the numbers in ``numbers`` (an expanding parameter), each row naming its ``number``;
    ``contacts=False``: by their own phones only."""
    where = _p.c.e164.in_(bindparam("numbers", expanding=True)) if many else _p.c.e164 == _E164

    def rows(joined: Any) -> Select[Any]:
        stmt = _summary_select()
        if many:
            stmt = stmt.add_columns(_p.c.e164.label("number"))
        return _with_people(stmt, joined).where(where)

    direct = rows(_p.join(_cp, _cp.c.phone_id == _p.c.id).join(_c, _c.c.id == _cp.c.customer_id))
    if not contacts:
        return direct
    contact = rows(_p.join(_cc, _cc.c.phone_id == _p.c.id).join(_c, _c.c.id == _cc.c.company_id))
    return union_all(direct, contact)


_BY_NUMBER = _build_by_number()
_BY_NUMBERS = _build_by_number(many=True)
_BY_OWN_NUMBERS = _build_by_number(many=True, contacts=False)
# Numbers per query of identities(): bound once in each half of the union, inside SQLite's oldest limit (999).
_MANY_CHUNK = 400


def by_number_sql(dialect: Any) -> tuple[str, dict[str, Any]]:
    """The by-number query as SQL text for ``dialect`` and its fixed parameters (``e164`` to be filled in):
    for running it outside SQLAlchemy (``loop_lookup``), with rows for ``CustomerDirectory.identity_from_rows``."""
    compiled = _BY_NUMBER.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)
_BY_ID = _with_people(_summary_select(), _c).where(_c.c.id == bindparam("customer_id"))
_PHONE_ID = select(_p.c.id).where(_p.c.e164 == _E164)


def _recency_key(row: Any) -> tuple[bool, float, float, int]:
    last, updated = row.last_activity_at, row.updated_at
    return (
        last is not None,
        last.timestamp() if last is not None else 0.0,
        updated.timestamp() if updated is not None else 0.0,
        int(row.id),
    )


class CustomerDirectory:
    """Blocking lookups over SQL; call them from a worker thread (``run_blocking`` / ``deferToThreadPool``)."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        vip_tiers: Iterable[str] = ("diamond", "gold"),
        clock: Callable[[], float] = time.time,
    ):
        self._sessions = session_factory
        self.vip_tiers = frozenset(vip_tiers)
        self._clock = clock

    # --- the call path ------------------------------------------------------------------------------

    def identify(self, e164: str, *, store_id: int | None, line: str | None, create_prospect: bool) -> Identity:
        """The customer behind ``e164`` (an already normalised, valid E.164 number). BLOCKING.

        ``store_id``: the dialled store (home store of a created prospect). ``line``: the dialled line (recorded
        in the audit entry of a created prospect). ``create_prospect``: create a prospect for an unknown number.
        """
        with self._sessions() as session:
            identity = self._lookup(session, e164)
            # End the read-only transaction with COMMIT, not the pool's ROLLBACK: psycopg 3 forgets its
            # server-side prepared statements on rollback, and re-planning this query costs ~1 ms on PostgreSQL
            # (measured: 0.45 ms per identify with commit, 1.8 ms without).
            session.commit()
            if identity.customer is not None or not create_prospect:
                return identity
            return self._create_prospect(session, e164, store_id, line)

    def identities(self, numbers: Sequence[str], *, company_contacts: bool = True) -> dict[str, Identity]:
        """Who each of many numbers (E.164) is, by the same rule as :meth:`identify` (a shared number: the most
        recently active customer, the others named): for a bulk job such as a campaign's target import. Numbers
        nobody has are left out. No prospect is made. ``company_contacts=False``: a company contact's number is
        not the company's (whose consent is not the contact's). BLOCKING."""
        found: dict[str, list[Any]] = {}
        wanted = list(dict.fromkeys(numbers))
        query = _BY_NUMBERS if company_contacts else _BY_OWN_NUMBERS
        with self._sessions() as session:
            for start in range(0, len(wanted), _MANY_CHUNK):
                for row in session.execute(query, {"numbers": wanted[start:start + _MANY_CHUNK]}):
                    found.setdefault(row.number, []).append(row)
            session.commit()  # see identify()
        return {number: self.identity_from_rows(rows) for number, rows in found.items()}

    def summary(self, customer_id: int) -> CustomerSummary | None:
        """One customer's routing summary by id (None if there is no such customer). BLOCKING."""
        with self._sessions() as session:
            row = session.execute(_BY_ID, {"customer_id": customer_id}).first()
            session.commit()  # see identify()
            return self._summary(row, ambiguous=False) if row is not None else None

    def _lookup(self, session: Session, e164: str) -> Identity:
        return self.identity_from_rows(session.execute(_BY_NUMBER, {"e164": e164}).all())

    def identity_from_rows(self, rows: Sequence[Any]) -> Identity:
        """The Identity from the rows of the by-number query (``by_number_sql``), however they were fetched."""
        if not rows:
            return Identity(None)
        if len(rows) == 1:  # most numbers: one customer, nothing to order
            return Identity(self._summary(rows[0], ambiguous=False), (), False)
        unique = {row.id: row for row in rows}
        ordered = sorted(unique.values(), key=_recency_key, reverse=True)
        best = ordered[0]
        return Identity(
            self._summary(best, ambiguous=len(ordered) > 1), tuple(int(r.id) for r in ordered[1:]), False
        )

    def _summary(self, row: Any, *, ambiguous: bool) -> CustomerSummary:
        tier = row.tier or "prospect"
        return CustomerSummary(
            id=str(row.id),
            name=row.name or "",
            tier=tier,
            score=float(row.value_score or 0.0),
            vip=is_vip(tier, bool(row.manual_vip), self.vip_tiers),
            preferred_language=row.language or None,
            sales_consultant=row.consultant_extension or None,
            service_advisor=row.advisor_extension or None,
            open_complaint=bool(row.open_complaint),
            calls_last_24h=0,
            ambiguous=ambiguous,
        )

    def _create_prospect(self, session: Session, e164: str, store_id: int | None, line: str | None) -> Identity:
        kind = normalize(e164).kind
        kind = kind if kind in PHONE_KINDS else "other"
        for _ in range(_CREATE_ATTEMPTS):
            session.commit()  # end any read transaction; the creation is one transaction of its own
            try:
                with session.begin():
                    if session.get_bind().dialect.name == "postgresql":
                        # A prospect lost to a database crash is re-created by the caller's next call; not worth
                        # a WAL flush on the call path (~1–3 ms).
                        session.execute(text("SET LOCAL synchronous_commit = off"))
                    phone_id = session.execute(_PHONE_ID, {"e164": e164}).scalar()
                    if phone_id is None:
                        phone = PhoneNumber(e164=e164, kind=kind, shared=False)
                        session.add(phone)
                        session.flush()  # IntegrityError here: another call inserted the number first
                        phone_id = phone.id
                    else:
                        # On file but (when we looked) nobody's: lock the row, then look again, so two calls
                        # never both attach a prospect to it.
                        session.execute(update(_p).where(_p.c.id == phone_id).values(kind=_p.c.kind))
                        found = self._lookup(session, e164)
                        if found.customer is not None:
                            return found
                    now = datetime.fromtimestamp(self._clock(), UTC)
                    customer = Customer(
                        kind="person",
                        name=placeholder_name(e164, kind),
                        lifecycle="prospect",
                        source=PROSPECT_SOURCE,
                        language="zh",
                        tier="prospect",
                        value_score=0.0,
                        home_store_id=store_id,
                        created_at=now,
                        updated_at=now,
                        last_activity_at=now,
                    )
                    session.add(customer)
                    session.flush()
                    session.execute(
                        _cp.insert().values(customer_id=customer.id, phone_id=phone_id, label=kind, is_primary=True)
                    )
                    session.add(AuditLog(at=now, actor_name="ccserver", action="customer.prospect_created",
                                         target=f"customer:{customer.id}",
                                         detail={"store_id": store_id, "line": line, "source": PROSPECT_SOURCE}))
                    summary = CustomerSummary(
                        id=str(customer.id), name=customer.name, tier="prospect", score=0.0,
                        vip=is_vip("prospect", False, self.vip_tiers), preferred_language="zh",
                    )  # fmt: skip
                return Identity(summary, (), True)
            except IntegrityError:
                found = self._lookup(session, e164)
                if found.customer is not None:
                    return found
        raise RuntimeError(f"could not create a prospect for {e164} after {_CREATE_ATTEMPTS} attempts")

    # --- the API (not on the call path) -------------------------------------------------------------

    def profiles(self, ids: Sequence[int]) -> dict[int, CustomerProfile]:
        """Profiles of these customers (missing ids are left out). BLOCKING; three queries."""
        if not ids:
            return {}
        wanted = list(dict.fromkeys(int(i) for i in ids))
        with self._sessions() as session:
            rows = session.execute(
                select(_c.c.id, _c.c.name, _c.c.tier, _c.c.value_score, _c.c.manual_vip, _c.c.score_components)
                .where(_c.c.id.in_(wanted))
            ).all()
            numbers: dict[int, list[str]] = {}
            for cid, e164 in session.execute(
                select(_cp.c.customer_id, _p.c.e164)
                .join(_p, _p.c.id == _cp.c.phone_id)
                .where(_cp.c.customer_id.in_(wanted))
                .order_by(_cp.c.customer_id, _cp.c.is_primary.desc(), _p.c.e164)
            ):
                numbers.setdefault(int(cid), []).append(e164)
            counted = select(_v.c.customer_id, func.count()).where(_v.c.customer_id.in_(wanted))
            vehicles = {int(r[0]): int(r[1]) for r in session.execute(counted.group_by(_v.c.customer_id))}
        out: dict[int, CustomerProfile] = {}
        for row in rows:
            tier = row.tier or "prospect"
            out[int(row.id)] = CustomerProfile(
                id=int(row.id),
                name=row.name or "",
                numbers=tuple(numbers.get(int(row.id), ())),
                tier=tier,
                score=float(row.value_score or 0.0),
                vip=is_vip(tier, bool(row.manual_vip), self.vip_tiers),
                vehicle_count=int(vehicles.get(row.id, 0)),
                score_components=row.score_components if isinstance(row.score_components, dict) else None,
            )
        return out

    def top_customers(self, tier: str | None, limit: int) -> list[CustomerProfile]:
        """Customers by score, highest first (ties by id), optionally of one tier. BLOCKING."""
        stmt = select(_c.c.id).order_by(_c.c.value_score.desc(), _c.c.id).limit(limit)
        if tier is not None:
            stmt = stmt.where(_c.c.tier == tier)
        with self._sessions() as session:
            ids = [int(i) for i in session.execute(stmt).scalars()]
        found = self.profiles(ids)
        return [found[i] for i in ids if i in found]
