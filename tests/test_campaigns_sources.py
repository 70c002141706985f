"""Where targets come from besides the saved filter: a CSV checked row by row (pure + API, audited)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ccserver.campaigns.target_csv import parse_targets_csv
from ccserver.db.models import AuditLog, CampaignTarget, Customer, PhoneNumber, customer_phones
from tests.test_campaigns_api import api, body  # noqa: F401 - api is a fixture


def test_csv_rows_are_checked_one_by_one() -> None:
    text = ("姓名,号码,到期日\n张三,138 0013 8000,2026-12-01\n李四,not-a-number,\n王五,13912345678,2026-13-40\n"
            "\n赵六,+8613800138000,\n钱七,021-5888 1234,\n")
    parsed = parse_targets_csv(text, "CN")
    assert parsed.rows == 5 and parsed.duplicates == 1
    assert [(row, e164) for row, e164, _ in parsed.good] == [(2, "+8613800138000"), (7, "+862158881234")]
    assert parsed.good[0][2] is not None and parsed.good[0][2].date().isoformat() == "2026-12-01"
    assert [(e["row"], e["value"]) for e in parsed.errors] == [(3, "not-a-number"), (4, "2026-13-40")]
    assert "date" in parsed.errors[1]["error"]
    headerless = parse_targets_csv("13800138000\n13912345678\n", "CN")
    assert [e164 for _, e164, _ in headerless.good] == ["+8613800138000", "+8613912345678"]


def test_csv_import_links_known_customers_and_reports_bad_rows(api: Any) -> None:  # noqa: F811
    with api.sessions() as s:
        known = s.execute(select(PhoneNumber.e164, customer_phones.c.customer_id)
                          .join(customer_phones, customer_phones.c.phone_id == PhoneNumber.id)
                          .order_by(PhoneNumber.e164)).first()
        first = s.scalar(select(Customer.id).order_by(Customer.id))
    assert known is not None
    cid = api("campaigns", "POST", "/api/campaigns", body(targets={"customer_ids": [first]}))[1]["id"]
    csv_text = f"number,due\n{known[0]},2026-12-01\n+8613955550123,\nbad,\n+8613955550123,\n"
    status, done = api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", csv_text.encode(),
                       **{"Content-Type": "text/csv"})
    assert status == 200, done
    already = 1 if known[1] == first else 0
    assert (done["rows"], done["duplicates"], done["error_count"]) == (4, 1, 1)
    assert done["added"] + done["already"] == 2 and done["already"] == already
    assert done["errors"] == [{"row": 4, "value": "bad", "error": done["errors"][0]["error"]}]
    with api.sessions() as s:
        rows = {t.e164: t.customer_id for t in s.scalars(select(CampaignTarget)
                                                          .where(CampaignTarget.campaign_id == cid))}
        audit = [a.detail for a in s.scalars(select(AuditLog).where(AuditLog.action == "campaign.targets_import"))]
    assert rows["+8613955550123"] is None and rows[known[0]] == known[1]
    assert audit and audit[0]["added"] == done["added"] and audit[0]["campaign_id"] == cid
    # again: nothing new
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", csv_text.encode(),
               **{"Content-Type": "text/csv"})[1]["added"] == 0
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", b"x",
               **{"Content-Type": "application/json"})[0] == 415
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", b"\xff\xfe",
               **{"Content-Type": "text/csv"})[0] == 400
    assert api("campaigns", "POST", "/api/campaigns/999999/targets/import", b"13800138000",
               **{"Content-Type": "text/csv"})[0] == 404
    assert api("agent8001", "POST", f"/api/campaigns/{cid}/targets/import", b"13800138000",
               **{"Content-Type": "text/csv"})[0] == 403


def test_worklist_items_become_targets_in_their_order() -> None:
    from ccserver.campaigns.sources import worklist_targets

    items = [
        {"type": "abandoned_call", "phone": "+8613900000002", "arrived_at": "2026-11-23T02:10:00+00:00",
         "customer": {"id": 2, "tier": "gold"}},
        {"type": "abandoned_call", "phone": "+8613900000001", "arrived_at": "2026-11-23T02:00:00+00:00",
         "customer": None},
        {"type": "abandoned_call", "phone": "+8613900000001", "arrived_at": "2026-11-23T02:30:00+00:00",
         "customer": None},  # the same caller again: one target
        {"type": "abandoned_call", "phone": None, "arrived_at": None, "customer": None},
        {"type": "resolution_callback", "phone": "+8613900000003", "due_at": "2026-11-24T01:00:00+00:00",
         "customer": {"id": 3, "tier": "silver"}},
    ]
    rows, unusable = worklist_targets(items, "abandoned_callers", "CN")
    assert [(r[0], r[1]) for r in rows] == [(None, "+8613900000001"), (2, "+8613900000002")]  # first arrival first
    assert unusable == 1
    rows, _ = worklist_targets(items, "resolution_callbacks", "CN")
    assert [(r[0], r[1], r[2]) for r in rows] == [(3, "+8613900000003", "silver")]


def test_campaigns_from_the_tickets_worklist(api: Any) -> None:  # noqa: F811
    from datetime import UTC, datetime

    from ccserver.db.models import CallbackTask, Ticket
    from tests.tickets_support import make_service

    api.ctx.tickets = make_service(api.sessions)[0]
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    with api.sessions.begin() as s:
        customer = s.scalars(select(Customer).order_by(Customer.id)).first()
        assert customer is not None
        for n, minute in enumerate((30, 5)):
            s.add(Ticket(kind="callback", subject="未接来电", status="new", severity="normal",
                         source="abandoned_call", contact_e164=f"+861390000001{n}", customer_id=None,
                         arrived_at=at.replace(minute=minute), sla_due_at=at.replace(hour=4),
                         created_at=at, updated_at=at))
        repair = Ticket(kind="repair", subject="维修完成", status="resolved", severity="normal", source="web",
                        customer_id=customer.id, contact_e164="+8613900000020", created_at=at, updated_at=at)
        s.add(repair)
        s.flush()
        s.add(CallbackTask(ticket_id=repair.id, customer_id=customer.id, due_at=at.replace(hour=6), created_at=at))
    made = api("campaigns", "POST", "/api/campaigns", body(type="abandoned_caller", mode="preview",
                                                           targets={"source": "abandoned_callers"}))
    assert made[0] == 201 and made[1]["targets"] == 2, made
    with api.sessions() as s:
        rows = list(s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == made[1]["id"])
                              .order_by(CampaignTarget.order_at)))
    assert [t.e164 for t in rows] == ["+8613900000011", "+8613900000010"]  # 02:05 arrival before 02:30
    counted = api("campaigns", "POST", "/api/campaigns/count", body(type="complaint_callback",
                                                                    targets={"source": "resolution_callbacks"}))
    assert counted[0] == 200 and counted[1]["matched"] == 1, counted
    made = api("campaigns", "POST", "/api/campaigns", body(type="complaint_callback",
                                                           targets={"source": "resolution_callbacks"}))
    assert made[0] == 201 and made[1]["targets"] == 1
    assert api("campaigns", "POST", "/api/campaigns", body(targets={"source": "everyone"}))[1]["field"] == \
        "targets.source"


def test_csv_import_reads_gbk_and_a_bom_and_refuses_garbage_whole(api: Any) -> None:  # noqa: F811
    with api.sessions() as s:
        first = s.scalar(select(Customer.id).order_by(Customer.id))
    cid = api("campaigns", "POST", "/api/campaigns", body(targets={"customer_ids": [first]}))[1]["id"]
    csv_type = {"Content-Type": "text/csv"}

    def targets() -> dict[str, Any]:
        with api.sessions() as s:
            return {t.e164: t.order_at for t in s.scalars(select(CampaignTarget)
                                                                .where(CampaignTarget.campaign_id == cid))}

    # a Chinese Excel export: GBK, Chinese headers (号码, 到期日) and names
    gbk = "姓名,号码,到期日\n张三,139 5555 0201,2026-12-01\n李四,不是号码,\n".encode("gbk")
    status, done = api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", gbk, **csv_type)
    assert status == 200, done
    assert (done["rows"], done["added"], done["error_count"]) == (2, 1, 1)
    assert (done["errors"][0]["row"], done["errors"][0]["value"]) == (3, "不是号码")
    # UTF-8 with a BOM: the header (电话) is still found past it
    bom = b"\xef\xbb\xbf" + "电话,姓名\n13955550202,王五\n".encode()
    status, done = api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", bom, **csv_type)
    assert status == 200 and (done["rows"], done["added"], done["error_count"]) == (1, 1, 0), done
    before = targets()
    assert {"+8613955550201", "+8613955550202"} <= set(before)
    assert before["+8613955550201"] is not None and before["+8613955550201"].date().isoformat() == "2026-12-01"
    # bytes neither UTF-8 nor GB18030: a 400 naming the byte, no target added, nothing audited
    garbage = "号码\n13955550203\n".encode("gbk") + b"\x80\n13955550204\n"
    status, done = api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import", garbage, **csv_type)
    assert status == 400 and done["field"] == "body"
    offset = garbage.index(b"\x80")
    assert done["error"] == f"the file is neither UTF-8 nor GB18030/GBK (byte {offset})"
    assert targets() == before
    with api.sessions() as s:
        assert len(list(s.scalars(select(AuditLog.id).where(AuditLog.action == "campaign.targets_import")))) == 2


def test_csv_import_links_each_number_to_whom_a_call_from_it_would_be_identified(api: Any) -> None:  # noqa: F811
    """The import asks identification: a shared number goes to its most recently active customer (not the lowest
    id, nor whose number is primary). A company contact's own number is not linked to the company: the company's
    consent is not the contact's."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func

    from ccserver.db.models import CompanyContact
    from tests.test_customers_directory import add_contact_only_number

    contact_only = "+8613311112299"
    with api.sessions.begin() as s:
        phone_id = s.execute(select(customer_phones.c.phone_id).group_by(customer_phones.c.phone_id)
                             .having(func.count() == 2).order_by(customer_phones.c.phone_id).limit(1)).scalar_one()
        shared = s.get(PhoneNumber, phone_id).e164
        low, high = sorted(s.scalars(select(customer_phones.c.customer_id)
                                     .where(customer_phones.c.phone_id == phone_id)))
        s.execute(customer_phones.update().where(customer_phones.c.phone_id == phone_id)
                  .values(is_primary=customer_phones.c.customer_id == low))  # the old join's pick: low
        now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        s.get(Customer, low).last_activity_at = now - timedelta(days=30)
        s.get(Customer, high).last_activity_at = now - timedelta(days=1)  # identification's pick: high
        add_contact_only_number(s, s.scalars(select(CompanyContact.company_id).order_by(CompanyContact.id)).first(),
                                contact_only)
        first = s.scalar(select(Customer.id).order_by(Customer.id))
        high_tier = s.get(Customer, high).tier
    cid = api("campaigns", "POST", "/api/campaigns", body(targets={"customer_ids": [first]}))[1]["id"]
    status, done = api("campaigns", "POST", f"/api/campaigns/{cid}/targets/import",
                       f"number\n{shared}\n{contact_only}\n".encode(), **{"Content-Type": "text/csv"})
    assert status == 200, done
    assert (done["added"], done["customers"]) == (2, 1)
    with api.sessions() as s:
        rows = {t.e164: (t.customer_id, t.tier) for t in s.scalars(
            select(CampaignTarget).where(CampaignTarget.campaign_id == cid, CampaignTarget.e164.in_(
                [shared, contact_only])))}
    assert rows == {shared: (high, high_tier), contact_only: (None, None)}
