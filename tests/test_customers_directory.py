"""Caller identification over SQL (SQLite and PostgreSQL, small demo data)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ccserver.customers.directory import CustomerDirectory, Identity, placeholder_name
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import AuditLog, CompanyContact, Customer, PhoneNumber, Ticket, User, customer_phones


def ident(directory: CustomerDirectory, e164: str, create: bool = False) -> Identity:
    return directory.identify(e164, store_id=1, line="sales", create_prospect=create)


def add_contact_only_number(session: Any, company_id: int, e164: str) -> None:
    """A company contact whose number is *only* on the contact row (not linked to the company's numbers)."""
    phone = PhoneNumber(e164=e164, kind="mobile")
    session.add(phone)
    session.flush()
    session.add(CompanyContact(company_id=company_id, name="赵六", title="车队经理", phone_id=phone.id))


def test_transcript_callers(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    zhang = ident(d, "+8613800138000").customer
    assert zhang is not None
    assert (zhang.name, zhang.tier, zhang.vip, zhang.ambiguous, zhang.open_complaint) == ("张伟", "diamond", True,
                                                                                         False, False)
    assert zhang.sales_consultant and zhang.sales_consultant.isdigit()  # extensions: where they sit is live state
    assert zhang.service_advisor and zhang.service_advisor.isdigit()
    assert zhang.preferred_language == "zh" and zhang.score > 0 and zhang.calls_last_24h == 0
    liu = ident(d, "+8613912345678").customer
    assert liu is not None and (liu.name, liu.tier, liu.vip) == ("刘洋", "silver", False)
    chen = ident(d, "+8613700000001").customer
    assert chen is not None and (chen.name, chen.tier, chen.open_complaint) == ("陈静", "bronze", True)
    wang = ident(d, "+8613600000002").customer
    assert wang is not None and (wang.name, wang.tier, wang.vip) == ("王磊", "prospect", False)
    assert ident(d, "+862158881234") == Identity(None, (), False)
    # summary() by id gives the same
    assert d.summary(int(zhang.id)) == zhang
    assert d.summary(10**9) is None


def test_every_number_of_a_customer_finds_them(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    with sessions() as s:
        numbers = s.execute(
            select(PhoneNumber.e164).join(customer_phones, customer_phones.c.phone_id == PhoneNumber.id)
            .where(customer_phones.c.customer_id == 1)
        ).scalars().all()  # fmt: skip
    assert len(numbers) == 2  # Zhang Wei: mobile + office landline
    for number in numbers:
        c = ident(d, number).customer
        assert c is not None and c.id == "1"


def test_vip_tiers_and_inactive_people(loaded):
    _, sessions = loaded
    with sessions.begin() as s:
        liu = s.get(Customer, 2)
        assert liu is not None
        s.execute(User.__table__.update().where(User.id == liu.sales_consultant_id).values(active=False))
    d = CustomerDirectory(sessions, vip_tiers=("silver",))
    c = ident(d, "+8613912345678").customer
    assert c is not None and c.vip is True  # silver is VIP in this config
    assert c.sales_consultant is None  # left the firm: no personal routing
    assert c.service_advisor is not None


def test_company_contact_number_finds_the_company(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    with sessions.begin() as s:
        contact = s.execute(select(CompanyContact).order_by(CompanyContact.id).limit(1)).scalar_one()
        company_id = contact.company_id
        demo_number = s.get(PhoneNumber, contact.phone_id).e164
        add_contact_only_number(s, company_id, "+8613311112222")
    for number in (demo_number, "+8613311112222"):
        identity = ident(d, number)
        assert identity.customer is not None and identity.customer.id == str(company_id)
        assert not identity.customer.ambiguous and identity.other_customer_ids == ()


def test_shared_number_picks_most_recently_active(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    with sessions.begin() as s:
        phone_id, = s.execute(
            select(customer_phones.c.phone_id).group_by(customer_phones.c.phone_id)
            .having(func.count() == 2).order_by(customer_phones.c.phone_id).limit(1)
        ).one()  # fmt: skip
        e164 = s.get(PhoneNumber, phone_id).e164
        a, b = sorted(s.execute(select(customer_phones.c.customer_id)
                                .where(customer_phones.c.phone_id == phone_id)).scalars())  # fmt: skip
        now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        s.get(Customer, a).last_activity_at = now - timedelta(days=30)
        s.get(Customer, b).last_activity_at = now - timedelta(days=1)
    identity = ident(d, e164)
    assert identity.customer is not None
    assert identity.customer.id == str(b) and identity.customer.ambiguous
    assert identity.other_customer_ids == (a,)
    with sessions.begin() as s:
        s.get(Customer, a).last_activity_at = now
    identity = ident(d, e164)
    assert identity.customer.id == str(a) and identity.other_customer_ids == (b,)
    # Their own mobiles are not ambiguous.
    with sessions() as s:
        own = s.execute(
            select(PhoneNumber.e164).join(customer_phones, customer_phones.c.phone_id == PhoneNumber.id)
            .where(customer_phones.c.customer_id == a, customer_phones.c.is_primary)
        ).scalar_one()  # fmt: skip
    assert not ident(d, own).customer.ambiguous


def test_open_complaint_follows_ticket_status(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    assert ident(d, "+8613700000001").customer.open_complaint
    with sessions.begin() as s:
        s.execute(Ticket.__table__.update().where(Ticket.customer_id == 3).values(status="resolved"))
    assert not ident(d, "+8613700000001").customer.open_complaint
    with sessions.begin() as s:
        s.execute(Ticket.__table__.update().where(Ticket.customer_id == 3).values(status="in_progress"))
    assert ident(d, "+8613700000001").customer.open_complaint


def test_unknown_number_creates_one_prospect(loaded):
    _, sessions = loaded
    clock = datetime(2026, 11, 23, 2, 0, tzinfo=UTC).timestamp()
    d = CustomerDirectory(sessions, clock=lambda: clock)
    assert ident(d, "+862158881234", create=False).customer is None
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(PhoneNumber)
                         .where(PhoneNumber.e164 == "+862158881234")).scalar_one() == 0  # fmt: skip
    first = ident(d, "+862158881234", create=True)
    assert first.created_prospect and first.customer is not None
    c = first.customer
    assert c.name == "来电 021****1234" and c.tier == "prospect" and not c.vip and c.score == 0.0
    second = ident(d, "+862158881234", create=True)
    assert not second.created_prospect and second.customer == c
    with sessions() as s:
        row = s.get(Customer, int(c.id))
        assert (row.lifecycle, row.tier, row.source, row.home_store_id) == ("prospect", "prospect", "inbound_call", 1)
        assert row.created_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        assert [p.e164 for p in row.phones] == ["+862158881234"] and row.phones[0].kind == "landline"
        audit = s.execute(select(AuditLog).where(AuditLog.action == "customer.prospect_created")).scalar_one()
        assert audit.target == f"customer:{c.id}" and audit.detail["line"] == "sales"


def test_orphan_number_is_claimed_not_duplicated(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    with sessions.begin() as s:
        s.add(PhoneNumber(e164="+8613599998888", kind="mobile"))  # on file, nobody's
    made = ident(d, "+8613599998888", create=True)
    assert made.created_prospect and made.customer.name == "来电 135****8888"
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(customer_phones)
                         .join(PhoneNumber, PhoneNumber.id == customer_phones.c.phone_id)
                         .where(PhoneNumber.e164 == "+8613599998888")).scalar_one() == 1  # fmt: skip


@pytest.mark.parametrize("number", ["+8613811112222", "+8613599990000"])
def test_concurrent_first_calls_create_one_prospect(loaded, number):
    url, _ = loaded
    if number == "+8613599990000":  # the orphan-number variant
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(PhoneNumber.__table__.insert().values(e164=number, kind="mobile", shared=False))
        engine.dispose()
    engines = [make_engine(url) for _ in range(4)]
    directories = [CustomerDirectory(session_factory(e)) for e in engines]
    barrier = threading.Barrier(len(directories))
    results: list[Identity] = []
    errors: list[BaseException] = []

    def work(d: CustomerDirectory) -> None:
        try:
            barrier.wait()
            results.append(ident(d, number, create=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in directories]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for e in engines:
        e.dispose()
    assert not errors, errors
    assert len({r.customer.id for r in results}) == 1
    assert sum(r.created_prospect for r in results) == 1
    engine = make_engine(url)
    with engine.connect() as conn:
        made = conn.execute(text("select count(*) from customers where source = 'inbound_call'")).scalar_one()
    engine.dispose()
    assert made == 1


def test_profiles_and_top_customers(loaded):
    _, sessions = loaded
    d = CustomerDirectory(sessions)
    p = d.profiles([1, 10**9])
    assert list(p) == [1]
    zhang = p[1]
    assert zhang.numbers[0] == "+8613800138000" and len(zhang.numbers) == 2
    assert zhang.vehicle_count == 2 and zhang.vip and zhang.score_components
    assert any("vehicle purchases" in r for r in zhang.reasons())
    gold = d.top_customers("gold", 5)
    assert len(gold) == 5 and all(c.tier == "gold" for c in gold)
    assert [c.score for c in gold] == sorted((c.score for c in gold), reverse=True)
    everyone = d.top_customers(None, 500)
    assert len(everyone) == 300


def test_placeholder_names_never_use_caller_text():
    assert placeholder_name("+8613800138000") == "来电 138****8000"
    assert placeholder_name("+862158881234", "landline") == "来电 021****1234"
    assert placeholder_name("+4420794600000", "landline") == "来电 +44****0000"
    assert placeholder_name("+86400800", "toll_free") == "来电 ****0800"


def test_many_numbers_at_once_are_who_each_is_alone(loaded, monkeypatch):
    """identities() — a campaign import's bulk lookup — gives every number the customer identify() gives it (shared
    numbers, company contacts' numbers), in chunks, and makes no prospect for a number nobody has."""
    import ccserver.customers.directory as directory_module

    _, sessions = loaded
    d = CustomerDirectory(sessions)
    contact_only = "+8613311112288"
    with sessions.begin() as s:
        add_contact_only_number(s, s.scalars(select(CompanyContact.company_id).order_by(CompanyContact.id)).first(),
                                contact_only)
    with sessions() as s:
        numbers = list(s.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.e164)))
        customers = s.scalar(select(func.count()).select_from(Customer))
    numbers += ["+8613955550123", numbers[0]]  # nobody's, and a repeat
    monkeypatch.setattr(directory_module, "_MANY_CHUNK", 7)  # several queries
    many = d.identities(numbers)
    alone = {n: ident(d, n) for n in numbers}
    assert many == {n: identity for n, identity in alone.items() if identity.customer is not None}
    assert "+8613955550123" not in many and len(many) > 7
    assert any(identity.other_customer_ids for identity in many.values())  # a shared number was among them
    # A number only a company contact has: the company's — or nobody's when contacts are left out.
    assert contact_only in numbers and many[contact_only].customer is not None
    own = d.identities(numbers, company_contacts=False)
    assert contact_only not in own and all(own[n] == many[n] for n in own)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == customers
    assert d.identities([]) == {}
