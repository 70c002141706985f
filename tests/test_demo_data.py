"""Demo data: deterministic, realistic enough for the recorded transcripts, loadable on both databases."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal

import phonenumbers
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, select

from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import (
    Base,
    Customer,
    Did,
    Holiday,
    MakeupWorkday,
    Order,
    PhoneNumber,
    ServiceVisit,
    Ticket,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.demo import DemoDataExists, calendar_cn, demo_password_for, generate
from ccserver.demo.generator import COLUMNS, DemoGenerator, vin_check_digit
from ccserver.passwords import verify_password

AS_OF = date(2026, 3, 16)
N = 300


def _fingerprint(conn: Connection) -> str:
    """A digest of what the generator decides (not password hashes, which are salted)."""
    digest = hashlib.sha256()
    queries = [
        select(Customer.id, Customer.name, Customer.lifecycle, Customer.tier, Customer.value_score,
               Customer.sales_consultant_id, Customer.created_at).order_by(Customer.id),
        select(PhoneNumber.id, PhoneNumber.e164, PhoneNumber.shared).order_by(PhoneNumber.id),
        select(customer_phones.c.customer_id, customer_phones.c.phone_id, customer_phones.c.label)
        .order_by(customer_phones.c.customer_id, customer_phones.c.phone_id),
        select(Vehicle.id, Vehicle.vin, Vehicle.plate, Vehicle.insurance_expiry).order_by(Vehicle.id),
        select(Order.id, Order.kind, Order.amount, Order.ordered_on).order_by(Order.id),
        select(ServiceVisit.id, ServiceVisit.status, ServiceVisit.opened_at).order_by(ServiceVisit.id),
        select(User.username, User.display_name, User.interface, User.skills).order_by(User.id),
    ]  # fmt: skip
    for query in queries:
        for row in conn.execute(query):
            # SQLite hands back 92 where PostgreSQL says 92.0 or Decimal('92.00'): compare numbers as numbers.
            normalised = [f"{float(v):.2f}" if type(v) in (int, float, Decimal) else str(v) for v in row]
            digest.update("|".join(normalised).encode())
    return digest.hexdigest()


def _fp(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as conn:
        fp = _fingerprint(conn)
    engine.dispose()
    return fp


@pytest.fixture
def loaded(db_url):
    summary = generate(db_url, customers=N, seed=7, as_of=AS_OF)
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        yield db_url, summary, session
    engine.dispose()


def test_summary_and_counts(loaded):
    _, summary, s = loaded
    assert summary["customers"] == N == s.scalar(select(func.count()).select_from(Customer))
    rows = summary["rows"]
    for table in ("phone_numbers", "customer_phones", "vehicles", "orders", "users", "dids", "queues"):
        assert rows[table] == s.scalar(select(func.count()).select_from(Base.metadata.tables[table])), table
    assert 1.2 * N < rows["phone_numbers"] < 1.8 * N  # some customers have 2-3 numbers
    assert 0.7 * N < rows["vehicles"] < 1.3 * N
    assert rows["orders"] > 2 * N
    lifecycles = dict(s.execute(select(Customer.lifecycle, func.count()).group_by(Customer.lifecycle)).all())
    assert set(lifecycles) == {"target", "prospect", "customer", "dormant"}
    tiers = dict(s.execute(select(Customer.tier, func.count()).group_by(Customer.tier)).all())
    assert tiers["bronze"] > tiers.get("gold", 0) >= 1 and tiers.get("diamond", 0) >= 1
    assert s.scalar(select(func.count()).where(Customer.kind == "company")) >= 1
    assert summary["logins"]["admin"] == {"username": "admin", "password": "admin"}
    assert summary["logins"]["demo_password"] == demo_password_for(7)


def test_recorded_dids_exist(loaded):
    _, _, s = loaded
    dids = {d.number: d.line for d in s.scalars(select(Did))}
    assert dids["4008001000"] == "sales"
    assert dids["4008002000"] == "service"
    assert dids["4008003000"] == "complaints"
    assert dids["4008009000"] == "hotline"
    assert sum(1 for d in s.scalars(select(Did)) if d.store_id is not None) >= 5  # per-store numbers
    assert all(d.default_queue_id for d in s.scalars(select(Did)))


def test_transcript_callers_exist_and_unknown_landline_does_not(loaded):
    _, _, s = loaded

    def owner(e164: str) -> Customer | None:
        return s.scalars(
            select(Customer).join(customer_phones).join(PhoneNumber).where(PhoneNumber.e164 == e164)
        ).first()

    zhang = owner("+8613800138000")
    assert zhang.name == "张伟" and zhang.tier == "diamond" and zhang.manual_vip
    liu = owner("+8613912345678")
    assert liu.name == "刘洋" and liu.lifecycle == "customer" and liu.tier == "silver" and not liu.manual_vip
    statuses = s.scalars(select(ServiceVisit.status).where(ServiceVisit.customer_id == liu.id)).all()
    assert "ready" in statuses  # "is my car ready?" has an answer
    chen = owner("+8613700000001")
    assert chen.name == "陈静" and chen.tier == "bronze"
    complaint = s.scalars(select(Ticket).where(Ticket.customer_id == chen.id)).one()
    assert complaint.kind == "complaint" and complaint.status == "new"
    wang = owner("+8613600000002")
    assert wang.name == "王磊" and wang.lifecycle == "prospect" and wang.tier == "prospect"
    assert s.scalar(select(func.count()).where(PhoneNumber.e164 == "+862158881234")) == 0


def test_every_phone_number_is_valid_e164(loaded):
    _, _, s = loaded
    numbers = s.scalars(select(PhoneNumber.e164)).all()
    assert len(numbers) == len(set(numbers))
    kinds = set()
    for e164 in numbers:
        parsed = phonenumbers.parse(e164, "CN")
        assert phonenumbers.is_valid_number(parsed), e164
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == e164
        kinds.add(e164[:5])
    assert {"+8610", "+8621"} <= kinds  # Beijing and Shanghai landlines are among them
    shared = s.scalar(select(func.count()).where(PhoneNumber.shared.is_(True)))
    multi_owner = s.execute(
        select(customer_phones.c.phone_id).group_by(customer_phones.c.phone_id).having(func.count() > 1)
    ).all()
    assert shared >= 1 and len(multi_owner) >= 1


def test_vehicles_look_real(loaded):
    _, _, s = loaded
    for v in s.scalars(select(Vehicle)):
        assert len(v.vin) == 17 and vin_check_digit(v.vin[:8] + "0" + v.vin[9:]) == v.vin[8]
        assert re.fullmatch(r"[京沪粤渝琼][A-Z][A-Z0-9]{5}", v.plate), v.plate
        assert v.insurance_expiry > v.purchase_date
    months = {d.month for d in s.scalars(select(Vehicle.insurance_expiry))}
    assert len(months) >= 10  # spread over the year
    amounts = dict(s.execute(select(Order.kind, func.max(Order.amount)).group_by(Order.kind)).all())
    assert 100_000 <= amounts["vehicle_sale"] <= 600_000
    assert amounts["service"] <= 8000 and amounts["insurance"] <= 15_000


def test_users_and_logins(loaded):
    _, summary, s = loaded
    admin = s.scalars(select(User).where(User.username == "admin")).one()
    assert admin.role == "admin" and verify_password("admin", admin.password_hash)
    agent = s.scalars(select(User).where(User.username == "agent8001")).one()
    assert agent.role == "agent" and agent.extension == "8001" and agent.interface == "PJSIP/8001"
    assert verify_password(summary["logins"]["demo_password"], agent.password_hash)
    roles = set(s.scalars(select(User.role)))
    assert roles == {"admin", "agent", "supervisor", "department", "campaign_manager"}
    skills = {k for u in s.scalars(select(User).where(User.role == "agent")) for k in u.skills}
    assert {"sales", "service", "complaints", "insurance", "en"} <= skills


def test_calendar_rows_for_the_year(loaded):
    _, _, s = loaded
    holidays = set(s.scalars(select(Holiday.day)))
    assert date(2026, 10, 1) in holidays and date(2026, 2, 17) in holidays
    makeups = set(s.scalars(select(MakeupWorkday.day)))
    assert date(2026, 2, 14) in makeups
    assert all(d.weekday() >= 5 for d in makeups)


def test_refuses_to_load_twice_and_replace_reloads_identically(loaded):
    url, _, _ = loaded
    before = _fp(url)
    with pytest.raises(DemoDataExists, match="replace=True"):
        generate(url, customers=N, seed=7, as_of=AS_OF)
    assert _fp(url) == before
    generate(url, customers=N, seed=7, as_of=AS_OF, replace=True)
    assert _fp(url) == before
    generate(url, customers=N, seed=8, as_of=AS_OF, replace=True)
    assert _fp(url) != before


def test_constraints_restored_and_ids_continue_after_load(loaded):
    url, _, s = loaded
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()
    top = s.scalar(select(func.max(Customer.id)))
    new = Customer(name="新客户", created_at=s.get(Customer, 1).created_at, updated_at=s.get(Customer, 1).created_at)
    s.add(new)
    s.commit()
    assert new.id == top + 1


def test_same_rows_on_sqlite_and_postgresql(sqlite_url, pg_url):
    generate(sqlite_url, customers=120, seed=3, as_of=AS_OF)
    generate(pg_url, customers=120, seed=3, as_of=AS_OF)
    assert _fp(sqlite_url) == _fp(pg_url)


def test_progress_is_reported(sqlite_url):
    calls: list[tuple[int, int]] = []
    generate(sqlite_url, customers=250, seed=1, as_of=AS_OF, progress=lambda d, t: calls.append((d, t)), batch_size=100)
    assert calls[0] == (0, 250) and calls[-1] == (250, 250)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 3


def test_generator_is_pure_and_seeded():
    def rows(seed: int, as_of: date = AS_OF) -> list:
        gen = DemoGenerator(200, seed, as_of)
        gen.reference_tables("a", "d")
        return [r for b in gen.batches(50) for table in COLUMNS for r in b.rows[table]]

    assert rows(1) == rows(1)
    assert rows(1) != rows(2)
    assert rows(1) != rows(1, date(2026, 3, 17))


def test_agent_interface_template(sqlite_url):
    generate(sqlite_url, customers=10, as_of=AS_OF, agent_interface="Local/{ext}@agent-phones/n")
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        got = conn.execute(select(User.interface).where(User.username == "agent8003")).scalar_one()
    engine.dispose()
    assert got == "Local/8003@agent-phones/n"
    with pytest.raises(ValueError, match="ext"):
        generate(sqlite_url, customers=10, agent_interface="PJSIP/8001", replace=True)


def test_calendar_tables():
    for year in (2025, 2026, 2027):
        days = calendar_cn.holidays(year)
        assert days and all(d.year == year for d, _ in days)
        assert all(d.weekday() >= 5 for d, _ in calendar_cn.makeup_workdays(year))
    assert (date(2025, 1, 28), "春节 Spring Festival") in calendar_cn.holidays(2025)
    assert calendar_cn.has_official_table(2026) and not calendar_cn.has_official_table(2027)
    # Unknown years: fixed-date holidays only, never a crash.
    assert date(2031, 10, 1) in {d for d, _ in calendar_cn.holidays(2031)}
    assert calendar_cn.makeup_workdays(2031) == []
