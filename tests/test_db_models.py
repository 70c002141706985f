"""The ORM model on a migrated database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from ccserver.db import migrate
from ccserver.db.engine import make_engine, normalize_url, session_factory
from ccserver.db.models import (
    Base,
    Customer,
    DealerGroup,
    PhoneNumber,
    Store,
    User,
    customer_phones,
)

T0 = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def session(db_url):
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory() as s:
        yield s
    engine.dispose()


def _store(s) -> Store:
    group = DealerGroup(id=1, name="G")
    store = Store(id=1, group=group, code="bj-volvo", name="Volvo", brand="Volvo", city="Beijing")
    s.add(store)
    s.flush()
    return store


def _customer(s, name: str, store: Store, **kw) -> Customer:
    c = Customer(name=name, home_store_id=store.id, created_at=T0, updated_at=T0, **kw)
    s.add(c)
    return c


def test_every_constraint_and_index_has_a_deterministic_name():
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"{table.name}: unnamed {constraint!r}"
        for index in table.indexes:
            assert index.name and index.name.startswith("ix_"), index


def test_shared_number_belongs_to_several_customers(session):
    store = _store(session)
    home = PhoneNumber(e164="+861051234567", kind="landline", shared=True)
    husband = _customer(session, "张伟", store)
    wife = _customer(session, "李娜", store)
    husband.phones = [home, PhoneNumber(e164="+8613800138000")]
    wife.phones = [home]
    session.commit()

    owners = session.scalars(
        select(Customer).join(customer_phones).join(PhoneNumber).where(PhoneNumber.e164 == "+861051234567")
    ).all()
    assert sorted(c.name for c in owners) == ["张伟", "李娜"]
    assert len(session.get(Customer, husband.id).phones) == 2


def test_phone_e164_is_unique(session):
    session.add_all([PhoneNumber(e164="+8613800138000"), PhoneNumber(e164="+8613800138000")])
    with pytest.raises(IntegrityError):
        session.commit()


def test_check_constraint_rejects_unknown_tier(session):
    store = _store(session)
    _customer(session, "X", store, tier="platinum")
    with pytest.raises(IntegrityError):
        session.commit()


def test_customer_outlives_their_consultant(session):
    """ON DELETE SET NULL (SQLite only enforces it with PRAGMA foreign_keys=ON, set by make_engine)."""
    store = _store(session)
    consultant = User(username="bj-sales01", display_name="Li", role="department", created_at=T0)
    session.add(consultant)
    session.flush()
    customer = _customer(session, "王芳", store, sales_consultant_id=consultant.id, service_advisor_id=consultant.id)
    session.commit()

    session.delete(consultant)
    session.commit()
    session.expire_all()
    kept = session.get(Customer, customer.id)
    assert kept is not None
    assert kept.sales_consultant_id is None and kept.service_advisor_id is None


def test_datetimes_come_back_aware_utc(session):
    store = _store(session)
    shanghai = timezone(timedelta(hours=8))
    c = _customer(session, "Z", store)
    c.last_activity_at = datetime(2026, 1, 15, 10, 0, tzinfo=shanghai)
    session.commit()
    session.expire_all()
    got = session.get(Customer, c.id)
    assert got.last_activity_at == datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    assert got.last_activity_at.utcoffset() == timedelta(0)
    assert got.created_at.tzinfo is not None


def test_naive_datetime_is_refused(session):
    store = _store(session)
    _customer(session, "N", store, last_activity_at=datetime(2026, 1, 15, 10, 0))
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()


def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    engine.dispose()


def test_postgresql_urls_use_psycopg3():
    assert normalize_url("postgresql://root@h/db").startswith("postgresql+psycopg://")
    assert normalize_url("postgresql+psycopg://root@h/db?options=-csearch_path%3Dx").endswith("%3Dx")
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert make_engine("postgresql://root@127.0.0.1/test").dialect.driver == "psycopg"
