"""The campaign manager's tools: the dry-run count through the real selection and gate, results per day (pure +
SVG + API), the audited CSV export, the DNC list."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from ccserver.campaigns.results import daily, daily_chart, export_rows
from ccserver.db.models import AuditLog, CampaignAttempt, CampaignTarget, Customer, DncNumber
from tests.test_campaigns_api import api, body  # noqa: F401 - api is a fixture


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def test_daily_results_by_local_day_and_the_chart() -> None:
    attempts = [
        {"originated_at": _at(17, 15), "answered_at": _at(17, 15), "outcome": "reached", "disposition": "booked"},
        # 17 Nov 23:00 UTC is 18 Nov 07:00 in Shanghai: the next local day
        {"originated_at": _at(17, 23), "answered_at": None, "outcome": "no_answer", "disposition": None},
        {"originated_at": _at(18, 2), "answered_at": _at(18, 2), "outcome": "refused", "disposition": "refused"},
    ]
    days = daily(attempts, "Asia/Shanghai")
    assert days == [
        {"day": "2026-11-17", "dialed": 1, "answered": 1, "reached": 1, "booked": 1, "refused": 0},
        {"day": "2026-11-18", "dialed": 2, "answered": 1, "reached": 1, "booked": 0, "refused": 1}]
    assert [d["day"] for d in daily(attempts, "UTC")] == ["2026-11-17", "2026-11-18"]
    svg = daily_chart(days)
    assert svg.startswith("<svg") and "<script" not in svg and "11-17" in svg and "11-18" in svg
    assert svg.count('class="series') == 5
    # each of the five lines has its own dash (not told apart by colour alone): none repeats the first's solid line
    groups = re.findall(r'<g class="series[^"]*"[^>]*>(.*?)</g>', svg, re.S)
    dashes = [m.group(1) if (m := re.search(r'<polyline[^>]*stroke-dasharray="([^"]+)"', g)) else "" for g in groups]
    assert len(groups) == 5 and len(set(dashes)) == 5, dashes
    rows = export_rows([{**attempts[0], "attempt_id": 1, "number": "=cmd|' /C calc'!A0"}])
    assert rows[0]["originated_at"] == "2026-11-17T15:00:00+00:00" and rows[0]["attempt_id"] == 1


def test_dry_run_count_applies_the_gate_without_writing(api: Any) -> None:  # noqa: F811
    with api.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(6)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False, consent=True))
        s.execute(update(Customer).where(Customer.id == ids[0]).values(do_not_call=True))
        s.execute(update(Customer).where(Customer.id == ids[1]).values(consent=False))
    status, counted = api("campaigns", "POST", "/api/campaigns/count", body(targets={"customer_ids": ids}))
    assert status == 200, counted
    assert counted["matched"] == 6 and counted["excluded"] == {"dnc_customer": 1, "no_consent": 1}
    assert counted["eligible"] == 4 and counted["excluded_total"] == 2
    with api.sessions() as s:
        assert s.scalars(select(CampaignTarget)).first() is None  # the dry run wrote nothing
    # a service call needs no consent; the customer's do_not_call stops every type
    survey = api("campaigns", "POST", "/api/campaigns/count", body(type="satisfaction",
                                                                   targets={"customer_ids": ids}))[1]
    assert survey["excluded"] == {"dnc_customer": 1} and survey["eligible"] == 5
    assert api("campaigns", "POST", "/api/campaigns/count", body(queue="nope"))[0] == 422
    assert api("campaigns", "POST", "/api/campaigns/count", body(mode="turbo"))[1]["field"] == "mode"
    assert api("agent8001", "POST", "/api/campaigns/count", body())[0] == 403
    assert api("admin", "POST", "/api/campaigns", body(targets={"customer_ids": ids}))[0] == 201


def test_results_svg_and_audited_csv_export(api: Any) -> None:  # noqa: F811
    with api.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(2)))
    cid = api("campaigns", "POST", "/api/campaigns", body(targets={"customer_ids": ids}))[1]["id"]
    with api.sessions.begin() as s:
        targets = list(s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == cid)))
        s.add(CampaignAttempt(campaign_id=cid, target_id=targets[0].id, customer_id=ids[0], action_id="r-1",
                              originated_at=_at(17, 3), answered_at=_at(17, 3), outcome="reached",
                              disposition="booked"))
        s.add(CampaignAttempt(campaign_id=cid, target_id=targets[1].id, customer_id=ids[1], action_id="r-2",
                              originated_at=_at(18, 3), outcome="busy"))
    status, results = api("campaigns", "GET", f"/api/campaigns/{cid}/results")
    assert status == 200 and [(d["day"], d["dialed"], d["booked"]) for d in results["days"]] == [
        ("2026-11-17", 1, 1), ("2026-11-18", 1, 0)]
    status, svg = api("campaigns", "GET", f"/api/campaigns/{cid}/results.svg")
    assert status == 200 and "<svg" in str(svg)
    status, csv_body = api("campaigns", "GET", f"/api/campaigns/{cid}/results.csv")
    text = csv_body if isinstance(csv_body, str) else bytes(csv_body).decode("utf-8-sig")
    assert status == 200 and text.lstrip("\ufeff").startswith("attempt_id,target_id")
    assert "reached,booked" in text and "busy" in text and targets[0].e164 in text
    with api.sessions() as s:
        audit = [a.detail for a in s.scalars(select(AuditLog).where(AuditLog.action == "campaign.export"))]
    assert audit == [{"campaign_id": cid, "rows": 2}]
    assert api("agent8001", "GET", f"/api/campaigns/{cid}/results.csv")[0] == 403
    assert api("campaigns", "GET", "/api/campaigns/999999/results")[0] == 404


def test_dnc_list(api: Any) -> None:  # noqa: F811
    assert api("campaigns", "GET", "/api/dnc") == (200, {"numbers": []})
    api("campaigns", "POST", "/api/dnc", {"number": "13800138000"})
    status, listed = api("campaigns", "GET", "/api/dnc")
    assert status == 200 and [n["number"] for n in listed["numbers"]] == ["+8613800138000"]
    assert listed["numbers"][0]["source"] == "api"
    with api.sessions() as s:
        assert s.get(DncNumber, "+8613800138000") is not None
    assert api("agent8001", "GET", "/api/dnc")[0] == 403
