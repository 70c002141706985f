"""The SQL data model (SQLAlchemy 2 typed ORM).

Enumerated values are plain strings guarded by CHECK constraints rather than native enums: they migrate
the same way on SQLite and PostgreSQL and a new value is one constraint change, not an ALTER TYPE.
Every constraint and index has a deterministic name (see NAMING_CONVENTION) so migrations can refer to it
on any backend. All datetimes are timezone-aware UTC (UTCDateTime); calendar facts are plain dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ccserver.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The vocabularies (DESIGN.md "Domain vocabulary"). Other modules import these rather than repeat them.
LINES = ("sales", "service", "complaints", "insurance", "hotline")
CUSTOMER_KINDS = ("person", "company")
LIFECYCLES = ("target", "prospect", "customer", "dormant")
LANGUAGES = ("zh", "en")
TIERS = ("diamond", "gold", "silver", "bronze", "prospect")
PHONE_KINDS = ("mobile", "landline", "toll_free", "other")
ORDER_KINDS = ("vehicle_sale", "service", "insurance", "accessories", "used_car")
VISIT_STATUSES = ("booked", "in_progress", "waiting_parts", "ready", "collected", "cancelled")
ROLES = ("agent", "supervisor", "department", "campaign_manager", "admin")
CALL_DIRECTIONS = ("inbound", "outbound", "internal")
CALL_OUTCOMES = (
    "answered", "abandoned", "no_answer", "busy", "failed", "ivr_hangup", "ivr_self_service", "voicemail",
    "transferred", "in_progress",
)  # fmt: skip
CALL_NOTE_KINDS = ("note", "disposition", "dial")
TICKET_KINDS = ("complaint", "repair", "appointment", "callback", "inquiry", "praise")
# The lifecycle (ccserver/tickets/lifecycle.py says which moves are legal).
TICKET_STATUSES = ("new", "assigned", "in_progress", "resolved", "customer_called_back", "closed", "cancelled")
TICKET_SEVERITIES = ("low", "normal", "high", "urgent")
# Where a ticket came from: a person at a screen (web), the IVR, a callback request, an abandoned call.
TICKET_SOURCES = ("web", "ivr", "callback_request", "abandoned_call")
APPOINTMENT_STATUSES = ("booked", "cancelled")
SLA_CLOCKS = ("first_response", "resolution")
SLA_STAGES = ("warning", "breach")


def one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> CheckConstraint:
    """CHECK (column IN (...)), named after the column (the naming convention adds the table)."""
    listed = ", ".join(f"'{v}'" for v in values)
    sql = f"{column} IN ({listed})"
    if nullable:
        sql = f"{column} IS NULL OR {sql}"
    return CheckConstraint(sql, name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _fk(target: str, ondelete: str | None = None) -> ForeignKey:
    return ForeignKey(target, ondelete=ondelete)


# --- organisation ---------------------------------------------------------------------------------------


class DealerGroup(Base):
    __tablename__ = "dealer_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)

    stores: Mapped[list[Store]] = relationship(back_populates="group")


class Store(Base):
    """A 4S shop: one brand in one city."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(_fk("dealer_groups.id", "CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # short stable key, e.g. 'bj-volvo'
    name: Mapped[str] = mapped_column(String(120))
    brand: Mapped[str] = mapped_column(String(60))
    city: Mapped[str] = mapped_column(String(60))
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    address: Mapped[str | None] = mapped_column(String(255))

    group: Mapped[DealerGroup] = relationship(back_populates="stores")
    business_hours: Mapped[list[BusinessHours]] = relationship(back_populates="store")


class Queue(Base):
    """An Asterisk app_queue queue, by the name the dialplan uses."""

    __tablename__ = "queues"
    __table_args__ = (one_of("line", LINES, nullable=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    line: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(255))
    strategy: Mapped[str] = mapped_column(String(32), default="leastrecent")


class Did(Base):
    """A dialled number (DID) and what it means: which store, which line, which queue by default."""

    __tablename__ = "dids"
    __table_args__ = (one_of("line", LINES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # As Asterisk presents it in ${EXTEN}: E.164 or national digits as dialled, e.g. '4008001000'.
    number: Mapped[str] = mapped_column(String(32), unique=True)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)  # NULL: group-wide
    line: Mapped[str] = mapped_column(String(16))
    default_queue_id: Mapped[int | None] = mapped_column(_fk("queues.id", "SET NULL"), index=True)
    description: Mapped[str | None] = mapped_column(String(255))


class BusinessHours(Base):
    """Opening hours of a store on one weekday (0 = Monday), for all lines (line NULL) or one line."""

    __tablename__ = "business_hours"
    __table_args__ = (
        one_of("line", LINES, nullable=True),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        Index("ix_business_hours_store_weekday", "store_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(_fk("stores.id", "CASCADE"))
    line: Mapped[str | None] = mapped_column(String(16))
    weekday: Mapped[int] = mapped_column(SmallInteger)
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)

    store: Mapped[Store] = relationship(back_populates="business_hours")


class Holiday(Base):
    """A public holiday (store NULL: every store) — closed although it may be a weekday."""

    __tablename__ = "holidays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    name: Mapped[str] = mapped_column(String(80))
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "CASCADE"), index=True)


class MakeupWorkday(Base):
    """调休: a weekend date that is a working day, traded for a longer holiday."""

    __tablename__ = "makeup_workdays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    name: Mapped[str] = mapped_column(String(80))
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "CASCADE"), index=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extension: Mapped[str | None] = mapped_column(String(20), index=True)
    interface: Mapped[str | None] = mapped_column(String(80), index=True)  # e.g. 'PJSIP/8001'
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    department: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    # Set by an admin's password reset and by `ccserver users add`: the first login must choose a new one.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


# --- customers ------------------------------------------------------------------------------------------


customer_phones = Table(
    "customer_phones",
    Base.metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    # Looked up from the phone side on every inbound call.
    Column("phone_id", ForeignKey("phone_numbers.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("label", String(40)),  # 'mobile', 'home', 'office', 'wife', ...
    Column("is_primary", Boolean, nullable=False, default=False),
)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        one_of("kind", CUSTOMER_KINDS),
        one_of("lifecycle", LIFECYCLES),
        one_of("language", LANGUAGES),
        one_of("tier", TIERS),
        Index("ix_customers_tier_score", "tier", "value_score"),
        Index("ix_customers_value_score", "value_score"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="person")
    name: Mapped[str] = mapped_column(String(120), index=True)
    lifecycle: Mapped[str] = mapped_column(String(10), default="target")
    source: Mapped[str | None] = mapped_column(String(40))  # walk_in, web, referral, autohome, event, ...
    language: Mapped[str] = mapped_column(String(2), default="zh")
    membership_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    membership_points: Mapped[int] = mapped_column(Integer, default=0)
    manual_vip: Mapped[bool] = mapped_column(Boolean, default=False)
    sales_consultant_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    service_advisor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    value_score: Mapped[float] = mapped_column(Numeric(8, 2, asdecimal=False), default=0)
    tier: Mapped[str] = mapped_column(String(10), default="prospect")
    score_components: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    score_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    home_store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    birthday: Mapped[date | None] = mapped_column(Date)  # a person's, from the CRM import: the card's care reminder
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, onupdate=_utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    phones: Mapped[list[PhoneNumber]] = relationship(secondary=customer_phones, back_populates="customers")
    vehicles: Mapped[list[Vehicle]] = relationship(back_populates="customer")
    contacts: Mapped[list[CompanyContact]] = relationship(back_populates="company")
    sales_consultant: Mapped[User | None] = relationship(foreign_keys=[sales_consultant_id])
    service_advisor: Mapped[User | None] = relationship(foreign_keys=[service_advisor_id])


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (one_of("kind", PHONE_KINDS),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)  # the unique index is the caller lookup
    kind: Mapped[str] = mapped_column(String(10), default="mobile")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)  # family phone, company switchboard

    customers: Mapped[list[Customer]] = relationship(secondary=customer_phones, back_populates="phones")


class CompanyContact(Base):
    """A person at a company customer (fleet manager, purchaser, ...)."""

    __tablename__ = "company_contacts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    company_id: Mapped[int] = mapped_column(_fk("customers.id", "CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str | None] = mapped_column(String(80))
    phone_id: Mapped[int | None] = mapped_column(_fk("phone_numbers.id", "SET NULL"), index=True)

    company: Mapped[Customer] = relationship(back_populates="contacts")
    phone: Mapped[PhoneNumber | None] = relationship()


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (
        Index("ix_vehicles_next_maintenance_due", "next_maintenance_due"),
        Index("ix_vehicles_insurance_expiry", "insurance_expiry"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_fk("customers.id", "CASCADE"), index=True)
    brand: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(80))
    plate: Mapped[str | None] = mapped_column(String(16), index=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    purchase_date: Mapped[date | None] = mapped_column(Date)
    mileage_km: Mapped[int | None] = mapped_column(Integer)
    next_maintenance_due: Mapped[date | None] = mapped_column(Date)
    insurance_expiry: Mapped[date | None] = mapped_column(Date)

    customer: Mapped[Customer] = relationship(back_populates="vehicles")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        one_of("kind", ORDER_KINDS),
        Index("ix_orders_customer_ordered_on", "customer_id", "ordered_on"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_fk("customers.id", "CASCADE"))
    vehicle_id: Mapped[int | None] = mapped_column(_fk("vehicles.id", "SET NULL"), index=True)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    ordered_on: Mapped[date] = mapped_column(Date)


class ServiceVisit(Base):
    """A workshop visit; lets a caller ask "is my car ready"."""

    __tablename__ = "service_visits"
    __table_args__ = (
        one_of("status", VISIT_STATUSES),
        Index("ix_service_visits_customer_opened_at", "customer_id", "opened_at"),
        Index("ix_service_visits_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_fk("customers.id", "CASCADE"))
    vehicle_id: Mapped[int | None] = mapped_column(_fk("vehicles.id", "SET NULL"), index=True)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    advisor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    description: Mapped[str | None] = mapped_column(Text)


# --- contact centre -------------------------------------------------------------------------------------


class Call(Base):
    """One Asterisk call leg as the contact centre saw it (keyed by Asterisk's uniqueid)."""

    __tablename__ = "calls"
    __table_args__ = (
        one_of("direction", CALL_DIRECTIONS),
        one_of("outcome", CALL_OUTCOMES, nullable=True),
        # Uniqueids are only unique within one Asterisk: several servers may reuse them.
        UniqueConstraint("server", "uniqueid", name="uq_calls_server_uniqueid"),
        Index("ix_calls_entered_at", "entered_at"),
        Index("ix_calls_queue_entered_at", "queue", "entered_at"),
        Index("ix_calls_agent_entered_at", "agent_id", "entered_at"),
        Index("ix_calls_customer_entered_at", "customer_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    server: Mapped[str] = mapped_column(String(64), default="default")  # which Asterisk (ami.servers name)
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    caller_raw: Mapped[str | None] = mapped_column(String(64))  # attacker-controlled: display only
    caller_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    dialed: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"))
    queue: Mapped[str | None] = mapped_column(String(80))  # the name, so history survives queue renames
    agent_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"))
    agent_interface: Mapped[str | None] = mapped_column(String(80))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    talk_seconds: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    outcome: Mapped[str | None] = mapped_column(String(20))
    ivr_path: Mapped[str | None] = mapped_column(String(255))
    disposition: Mapped[str | None] = mapped_column(String(80))
    recording_path: Mapped[str | None] = mapped_column(String(255))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CallNote(Base):
    """What an agent wrote or chose about a call from the desktop: a ``note``, the wrap-up ``disposition`` (also
    copied to ``calls.disposition`` once that row exists), or a click-to-``dial`` (``uniqueid`` is then the
    Originate's ActionID, ``text`` the number in E.164, ``ticket_id`` the task it was for)."""

    __tablename__ = "call_notes"
    __table_args__ = (one_of("kind", CALL_NOTE_KINDS),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    server: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))
    code: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(_fk("tickets.id", "SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class Ticket(Base):
    """A work order: complaint, repair, appointment, callback, inquiry or praise (ccserver/tickets).

    Two SLA clocks: ``first_response_due_at`` (met by ``first_responded_at``: the first move out of ``new``) and
    ``sla_due_at`` (resolution, met by ``resolved_at``).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        one_of("kind", TICKET_KINDS),
        one_of("status", TICKET_STATUSES),
        one_of("severity", TICKET_SEVERITIES),
        one_of("source", TICKET_SOURCES, nullable=True),
        CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction"),
        Index("ix_tickets_status_sla_due_at", "status", "sla_due_at"),
        Index("ix_tickets_status_first_response_due_at", "status", "first_response_due_at"),
        Index("ix_tickets_department_status", "department", "status"),
        Index("ix_tickets_created_at", "created_at"),
        # At most one ticket per de-duplication key; most tickets have none (partial: they cost nothing here).
        Index("ix_tickets_dedupe_key", "dedupe_key", unique=True,
              postgresql_where=text("dedupe_key IS NOT NULL"), sqlite_where=text("dedupe_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="new")
    category: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    source: Mapped[str | None] = mapped_column(String(24))
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    department: Mapped[str | None] = mapped_column(String(40))
    assignee_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    vehicle_id: Mapped[int | None] = mapped_column(_fk("vehicles.id", "SET NULL"), index=True)
    call_id: Mapped[int | None] = mapped_column(_fk("calls.id", "SET NULL"), index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64))  # the Asterisk call it was opened from
    contact_e164: Mapped[str | None] = mapped_column(String(20))  # the number to call back
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the caller first called about it
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # resolution due
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, onupdate=_utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)  # 1-5, asked on the resolution call back
    created_by: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)  # "my tickets"
    # Set only where a request must not open two tickets: callback requests, "callback:<e164>:<local due day>";
    # tickets the IVR opens, "call:<uniqueid>:<kind>".
    dedupe_key: Mapped[str | None] = mapped_column(String(120))


class TicketEvent(Base):
    """A ticket's history: every creation, transition, comment, assignment, booking change and SLA alarm."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(_fk("tickets.id", "CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(64))  # kept: the user row may be gone; "ivr", "system"
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    comment: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TicketSlaAlarm(Base):
    """An SLA alarm raised (once: the primary key) for one due time of one clock of a ticket."""

    __tablename__ = "ticket_sla_alarms"
    __table_args__ = (one_of("clock", SLA_CLOCKS), one_of("stage", SLA_STAGES))

    ticket_id: Mapped[int] = mapped_column(_fk("tickets.id", "CASCADE"), primary_key=True)
    clock: Mapped[str] = mapped_column(String(16), primary_key=True)
    stage: Mapped[str] = mapped_column(String(8), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallbackTask(Base):
    """A resolution call back: after a complaint or repair is resolved, someone calls the customer to tell them and
    ask how satisfied they are. Open while ``done_at`` is NULL."""

    __tablename__ = "callback_tasks"
    __table_args__ = (Index("ix_callback_tasks_done_at_due_at", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(_fk("tickets.id", "CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(24))  # called_back, reopened, cancelled
    done_by: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"))


class Appointment(Base):
    """A booked workshop slot. ``seat`` (1..capacity) makes booking race-safe: the unique index lets one booking
    take each seat of a slot; a cancelled booking gives its seat up (NULL)."""

    __tablename__ = "appointments"
    __table_args__ = (
        one_of("status", APPOINTMENT_STATUSES),
        UniqueConstraint("store_id", "slot_start", "seat", name="uq_appointments_store_id_slot_start_seat"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(_fk("tickets.id", "CASCADE"), unique=True)
    store_id: Mapped[int] = mapped_column(_fk("stores.id", "CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    vehicle_id: Mapped[int | None] = mapped_column(_fk("vehicles.id", "SET NULL"))
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime)
    seat: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(12), default="booked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notification(Base):
    """The webhook outbox: written in the same transaction as the change it reports, delivered (and retried)
    afterwards, moved to ``notification_dead_letters`` after the last attempt."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_next_attempt_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a node is delivering it
    last_error: Mapped[str | None] = mapped_column(String(255))


class NotificationDeadLetter(Base):
    """A notification the webhook never accepted: kept with its last error for a person (or a replay) to handle."""

    __tablename__ = "notification_dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    notification_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(255))


class AgentSession(Base):
    """An agent signed in to queues from one phone (``interface``) on one Asterisk (``server``).

    ``queues``: queue name → penalty, the personal queue included. Active while ``ended_at`` is NULL: at most one
    per extension and one per phone. ``auth_session_id``/``expires_at``: the web login that started it; when that
    ends (logout, expiry, deactivation) the agent is signed out of every queue.
    """

    __tablename__ = "agent_sessions"
    __table_args__ = (
        Index("ix_agent_sessions_active_extension", "extension", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
        Index("ix_agent_sessions_active_interface", "server", "interface", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    extension: Mapped[str] = mapped_column(String(20))
    interface: Mapped[str] = mapped_column(String(80))
    state_interface: Mapped[str | None] = mapped_column(String(80))
    member_name: Mapped[str] = mapped_column(String(120))
    server: Mapped[str] = mapped_column(String(64))
    queues: Mapped[dict[str, int]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(40))
    auth_session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, default=_utcnow)
    started_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(40))


class AdminSetting(Base):
    """A setting an admin changed in the pages or the API; it overrides the config file's value (``routing``:
    the routing rules, in the ``[routing]`` table's schema)."""

    __tablename__ = "admin_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, default=_utcnow)
    actor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(64))  # kept: the user row may be gone
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# --- routing ----------------------------------------------------------------------------------------------


class ValueCutoffs(Base):
    """Tier cut-offs from the last full score recompute; the newest row is current.

    Scoring one customer at once (an order, a visit, a ticket) uses these, so a single update never has to
    rank the whole customer base.
    """

    __tablename__ = "value_cutoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, default=_utcnow)
    diamond: Mapped[float] = mapped_column(Numeric(8, 2, asdecimal=False))
    gold: Mapped[float] = mapped_column(Numeric(8, 2, asdecimal=False))
    silver: Mapped[float] = mapped_column(Numeric(8, 2, asdecimal=False))
    population: Mapped[int] = mapped_column(Integer)  # customers with purchases that were ranked
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the shares and weights used


class RoutingDecision(Base):
    """Every routing decision answered over FastAGI, with why (joined to calls by decision_id)."""

    __tablename__ = "routing_decisions"
    __table_args__ = (Index("ix_routing_decisions_made_at", "made_at"),)

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    server: Mapped[str | None] = mapped_column(String(64))
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    caller_raw: Mapped[str | None] = mapped_column(String(64))  # attacker-controlled: display only
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    dialed: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    tier: Mapped[str | None] = mapped_column(String(10))
    queue: Mapped[str | None] = mapped_column(String(80))
    priority: Mapped[int | None] = mapped_column(Integer)
    preferred_agent_interface: Mapped[str | None] = mapped_column(String(80))
    ewt_seconds: Mapped[int | None] = mapped_column(Integer)
    callback_offer: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)  # the DID's default route (deadline/outage)
    latency_ms: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    reasons: Mapped[list[str] | None] = mapped_column(JSON)
    variables: Mapped[dict[str, str] | None] = mapped_column(JSON)  # exactly what the dialplan was told


class SurveyResult(Base):
    """A caller's post-call rating (1–5), keyed in by DTMF after the agent hung up (joined by decision_id)."""

    __tablename__ = "survey_results"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    decision_id: Mapped[str | None] = mapped_column(String(64), index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    server: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(SmallInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- KPIs -------------------------------------------------------------------------------------------------

SECONDS = Numeric(14, 3, asdecimal=False)  # durations in seconds, to the millisecond


class KpiQueueInterval(Base):
    """One queue's KPI counters over one 15-minute interval of one Asterisk server (ccserver/kpi/counts.py says
    what each counts). Written when the interval ends (and, partly, at shutdown); rewritten, never added to, if the
    same interval is written again."""

    __tablename__ = "kpi_queue_intervals"
    __table_args__ = (
        UniqueConstraint("server", "queue", "interval_start", name="uq_kpi_queue_intervals_slot"),
        Index("ix_kpi_queue_intervals_interval_start", "interval_start"),
        Index("ix_kpi_queue_intervals_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    server: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(80))
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime)
    day: Mapped[date] = mapped_column(Date)  # the local day (server.time_zone) the interval belongs to
    sl_threshold: Mapped[float] = mapped_column(Numeric(8, 2, asdecimal=False))
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    unanswered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    wait_answered: Mapped[float] = mapped_column(SECONDS, default=0)
    wait_abandoned: Mapped[float] = mapped_column(SECONDS, default=0)
    max_wait: Mapped[float] = mapped_column(SECONDS, default=0)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    talk: Mapped[float] = mapped_column(SECONDS, default=0)
    wrapup: Mapped[float] = mapped_column(SECONDS, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    callbacks: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class KpiAgentInterval(Base):
    """One agent's (phone interface's) KPI counters over one 15-minute interval of one Asterisk server."""

    __tablename__ = "kpi_agent_intervals"
    __table_args__ = (
        UniqueConstraint("server", "interface", "interval_start", name="uq_kpi_agent_intervals_slot"),
        Index("ix_kpi_agent_intervals_interval_start", "interval_start"),
        Index("ix_kpi_agent_intervals_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    server: Mapped[str] = mapped_column(String(64))
    interface: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120))  # the member name then (attacker-controlled text: escape it)
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime)
    day: Mapped[date] = mapped_column(Date)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    talk: Mapped[float] = mapped_column(SECONDS, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    available: Mapped[float] = mapped_column(SECONDS, default=0)
    ringing: Mapped[float] = mapped_column(SECONDS, default=0)
    talking: Mapped[float] = mapped_column(SECONDS, default=0)
    wrapup: Mapped[float] = mapped_column(SECONDS, default=0)
    paused: Mapped[float] = mapped_column(SECONDS, default=0)
    paused_by_reason: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)  # the queues it served (store filtering)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


# --- outbound campaigns (issue #14) -----------------------------------------------------------------------

CAMPAIGN_TYPES = ("return_visit", "satisfaction", "maintenance", "insurance", "member_event",
                  "complaint_callback", "callback_request", "abandoned_caller")
CAMPAIGN_MODES = ("preview", "progressive", "predictive")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "finished")
CAMPAIGN_TARGET_STATUSES = ("pending", "active", "done", "dropped")
# ``unsent``: written ahead of its Originate, never sent (not an attempt: the target keeps its count);
# ``undisposed``: a preview call that ended without the agent's disposition (retried per the retry matrix).
CAMPAIGN_OUTCOMES = ("busy", "no_answer", "failed", "machine", "abandoned", "reached", "refused", "invalid",
                     "unsent", "undisposed")


class Campaign(Base):
    """An outbound campaign: what it calls for (``type``), how it dials (``mode``), where answered calls go
    (``queue``), whose caller ID it shows (``store_id``'s DID), when (``window``, the callee's local time)."""

    __tablename__ = "campaigns"
    __table_args__ = (one_of("type", CAMPAIGN_TYPES), one_of("mode", CAMPAIGN_MODES),
                      one_of("status", CAMPAIGN_STATUSES))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(24))
    mode: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    queue: Mapped[str] = mapped_column(String(80))
    store_id: Mapped[int | None] = mapped_column(_fk("stores.id", "SET NULL"), index=True)
    window: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"start": "09:00", "end": "20:00", "weekdays": [...]}
    targets_spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # as posted: {"filter": {...}} | {"customer_ids"}
    tiers_first: Mapped[bool] = mapped_column(Boolean, default=False)
    max_attempts: Mapped[int] = mapped_column(SmallInteger, default=3)
    created_by: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    script: Mapped[str | None] = mapped_column(Text)  # what the agent says (preview); None: campaigns.preview_scripts


class CampaignTarget(Base):
    """One number a campaign calls (a customer's, or a CSV row's). Open while ``pending``; ``active`` while an
    attempt is in flight; ``done`` (final outcome) or ``dropped`` (the gate refused it for good, ``drop_reason``)."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        one_of("status", CAMPAIGN_TARGET_STATUSES),
        UniqueConstraint("campaign_id", "e164", name="uq_campaign_targets_campaign_id_e164"),
        Index("ix_campaign_targets_campaign_id_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(_fk("campaigns.id", "CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    e164: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str | None] = mapped_column(String(10))
    order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # due date or original arrival: earlier first
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(12))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drop_reason: Mapped[str | None] = mapped_column(String(24))
    # Preview mode: the agent shown this target, until when (a skip "later" keeps them, so it is not re-offered).
    held_by: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignAttempt(Base):
    """One Originate: its ActionID (announced to the tracker before it is sent), what became of it, the
    disposition the agent gave and the ticket it made."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (one_of("outcome", CAMPAIGN_OUTCOMES, nullable=True),
                      Index("ix_campaign_attempts_campaign_id_originated_at", "campaign_id", "originated_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(_fk("campaigns.id", "CASCADE"))
    target_id: Mapped[int] = mapped_column(_fk("campaign_targets.id", "CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(_fk("customers.id", "SET NULL"), index=True)
    action_id: Mapped[str] = mapped_column(String(64), unique=True)
    node: Mapped[str | None] = mapped_column(String(120))
    server: Mapped[str | None] = mapped_column(String(64))
    uniqueid: Mapped[str | None] = mapped_column(String(64))
    originated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the Originate left; None while the row is only written ahead (ccserver/dialer/engine.py "reserve").
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(12))
    agent_interface: Mapped[str | None] = mapped_column(String(80))
    disposition: Mapped[str | None] = mapped_column(String(40))
    ticket_id: Mapped[int | None] = mapped_column(_fk("tickets.id", "SET NULL"))


class DncNumber(Base):
    """The number-level do-not-call list (numbers that may belong to no customer)."""

    __tablename__ = "dnc_numbers"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    added_by: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="api")  # api, csv, refusal
