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
