"""/api/campaigns and /api/dnc over the real router on the demo data: roles, validation (errors name the field),
status moves, progress, the refusal stop, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from ccserver.campaigns.service import CampaignService
from ccserver.clock import ManualClock
from ccserver.db.models import AuditLog, Campaign, CampaignAttempt, CampaignTarget, Customer, DncNumber, Queue, User
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from tests.test_tickets_api import _request
from tests.tickets_support import in_thread
from tests.web_support import make_context


@pytest.fixture
def api(loaded: Any) -> Any:
    _url, sessions = loaded
    with sessions.begin() as s:
        if s.scalar(select(Queue.id).where(Queue.name == "outbound")) is None:
            s.add(Queue(name="outbound", line="hotline"))
        users = {u.username: u for u in s.scalars(select(User))}
    ctx = make_context(SQLUserStore(sessions))
    ctx.run_blocking, ctx.session_factory = in_thread, sessions
    ctx.campaigns = CampaignService(sessions, in_thread, clock=ManualClock(1_795_000_000.0))
    router = build_router(ctx)

    def call(who: str | None, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        if who is not None:
            u = users[who]
            headers.setdefault("Authorization", f"Bearer {ctx.signer.issue(u.id, u.username, u.role)[0]}")
        return asyncio.run(_request(router, method, path, headers, body))

    call.sessions = sessions  # type: ignore[attr-defined]
    call.ctx = ctx  # type: ignore[attr-defined]
    return call


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "保险到期提醒", "type": "insurance", "mode": "predictive", "queue": "outbound",
                            "window": {"start": "09:30", "end": "19:00"},
                            "targets": {"filter": {"tiers": ["diamond", "gold", "silver"]}}}
    base.update(changes)
    return base


def test_roles_and_auth(api: Any) -> None:
    assert api(None, "GET", "/api/campaigns")[0] == 401
    for who in ("agent8001", "supervisor1", "service-dept"):
        assert api(who, "GET", "/api/campaigns")[0] == 403
        assert api(who, "POST", "/api/campaigns", body())[0] == 403
        assert api(who, "POST", "/api/dnc", {"number": "+8613800138000"})[0] == 403
    assert api("campaigns", "GET", "/api/campaigns") == (200, {"campaigns": []})
    assert api("admin", "GET", "/api/campaigns")[0] == 200


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"name": ""}, 400, "name"),
    ({"type": "spam"}, 400, "type"),
    ({"mode": "blast"}, 400, "mode"),
    ({"queue": "bad queue"}, 400, "queue"),
    ({"queue": "nosuch"}, 422, "queue"),
    ({"store": "nosuch-store"}, 422, "store"),
    ({"window": {"start": "25:00"}}, 400, "window"),
    ({"window": {"start": "20:00", "end": "09:00"}}, 400, "window"),
    ({"targets": {"filter": {"tier": ["gold"]}}}, 400, "targets.filter.tier"),
    ({"targets": {"filter": {"tiers": ["platinum"]}}}, 400, "targets.filter.tiers"),
    ({"targets": {"customer_ids": ["1"]}}, 400, "targets.customer_ids"),
    ({"targets": {"customer_ids": [10**9]}}, 422, "targets"),
    ({"targets": {}}, 400, "targets"),
    ({"max_attempts": 0}, 400, "max_attempts"),
    ({"extra": 1}, 400, "extra"),
])
def test_bad_payloads_name_the_field(api: Any, change: dict[str, Any], status: int, field: str) -> None:
    got_status, got = api("campaigns", "POST", "/api/campaigns", body(**change))
    assert (got_status, got.get("field")) == (status, field), got
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0  # nothing half-written


def test_create_start_pause_resume_and_progress(api: Any) -> None:
    status, created = api("campaigns", "POST", "/api/campaigns", body(tiers_first=True))
    assert status == 201 and created["targets"] > 0
    cid = created["id"]
    with api.sessions() as s:
        expected = s.scalar(select(func.count()).select_from(Customer)
                            .where(Customer.tier.in_(("diamond", "gold", "silver"))))
        tiers = set(s.scalars(select(CampaignTarget.tier).where(CampaignTarget.campaign_id == cid)))
    assert 0 < created["targets"] <= expected and tiers <= {"diamond", "gold", "silver"}
    status, got = api("campaigns", "GET", f"/api/campaigns/{cid}")
    assert status == 200 and got["status"] == "draft" and got["window"] == {"start": "09:30", "end": "19:00"}
    assert got["progress"]["targets"] == created["targets"] and got["progress"]["dialed"] == 0
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/pause")[0] == 409  # not running yet
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/start")[1]["status"] == "running"
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/start")[0] == 409
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/pause")[1] == {"id": cid, "status": "paused",
                                                                        "from": "running"}
    assert api("campaigns", "POST", f"/api/campaigns/{cid}/resume")[1]["status"] == "running"
    assert api("campaigns", "POST", "/api/campaigns/999999/start")[0] == 404
    assert api("campaigns", "GET", "/api/campaigns/abc")[0] == 404
    # Progress counts the attempts.
    with api.sessions.begin() as s:
        targets = list(s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == cid).limit(3)))
        at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
        for n, (target, outcome) in enumerate(zip(targets, ("reached", "abandoned", "no_answer"), strict=True)):
            s.add(CampaignAttempt(campaign_id=cid, target_id=target.id, customer_id=target.customer_id,
                                  action_id=f"cc-test-{n}", originated_at=at, outcome=outcome,
                                  answered_at=at if outcome != "no_answer" else None,
                                  disposition="booked" if outcome == "reached" else None))
    progress = api("campaigns", "GET", f"/api/campaigns/{cid}")[1]["progress"]
    assert {k: progress[k] for k in ("dialed", "answered", "reached", "abandoned", "abandon_rate", "appointments")} \
        == {"dialed": 3, "answered": 2, "reached": 1, "abandoned": 1, "abandon_rate": 0.5, "appointments": 1}
    listed = api("campaigns", "GET", "/api/campaigns")[1]["campaigns"]
    assert [c["id"] for c in listed] == [cid]
    with api.sessions() as s:
        actions = [a for a in s.scalars(select(AuditLog.action).order_by(AuditLog.id)) if a.startswith("campaign")]
    assert actions == ["campaign.create", "campaign.start", "campaign.pause", "campaign.resume"]


def test_customer_ids_targets(api: Any) -> None:
    with api.sessions() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(5)))
    status, created = api("admin", "POST", "/api/campaigns",
                          body(type="callback_request", mode="progressive", targets={"customer_ids": ids}))
    assert status == 201 and created["targets"] == 5


def test_dnc_add_remove_normalises_and_audits(api: Any) -> None:
    assert api("campaigns", "POST", "/api/dnc", {"number": "138 0013 8000"}) == (
        201, {"number": "+8613800138000", "added": True})
    assert api("campaigns", "POST", "/api/dnc", {"number": "+8613800138000"})[1]["added"] is False
    assert api("campaigns", "POST", "/api/dnc", {"number": "hello"})[1]["field"] == "number"
    refused = api("campaigns", "POST", "/api/dnc", {"number": "hello"}, **{"Accept-Language": "zh-CN"})[1]
    assert refused["error"].startswith("号码 必须是") and "number" not in refused["error"]  # the form's label
    assert api("campaigns", "POST", "/api/dnc", {"number": "+8613800138000", "x": 1})[1]["field"] == "x"
    assert api("campaigns", "DELETE", "/api/dnc/%2B8613800138000") == (200, {"number": "+8613800138000",
                                                                           "removed": True})
    assert api("campaigns", "DELETE", "/api/dnc/+8613800138000")[0] == 404
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DncNumber)) == 0
        actions = list(s.scalars(select(AuditLog.action).where(AuditLog.action.like("dnc.%"))))
    assert actions == ["dnc.add", "dnc.add", "dnc.remove"]


def test_a_refusal_stops_every_marketing_campaign_for_the_customer(api: Any) -> None:
    with api.sessions.begin() as s:
        s.execute(update(Customer).values(consent=True))
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(3)))
    insurance = api("admin", "POST", "/api/campaigns", body(targets={"customer_ids": ids}))[1]["id"]
    events = api("admin", "POST", "/api/campaigns",
                 body(type="member_event", targets={"customer_ids": ids}))[1]["id"]
    survey = api("admin", "POST", "/api/campaigns", body(type="satisfaction", targets={"customer_ids": ids}))[1]["id"]
    service: CampaignService = api.ctx.campaigns
    assert asyncio.run(service.refused(ids[0])) == 2
    with api.sessions() as s:
        rows = {(t.campaign_id, t.customer_id): (t.status, t.drop_reason) for t in s.scalars(select(CampaignTarget))}
        assert s.get(Customer, ids[0]).consent is False  # type: ignore[union-attr]
    assert rows[(insurance, ids[0])] == rows[(events, ids[0])] == ("dropped", "refused")
    assert rows[(survey, ids[0])] == ("pending", None)  # not marketing: the satisfaction call may still happen
    assert rows[(insurance, ids[1])] == ("pending", None)


def test_dispositions_open_tickets_and_a_refusal_stops_marketing(api: Any) -> None:
    from ccserver.db.models import Ticket
    from tests.tickets_support import make_service

    api.ctx.tickets = make_service(api.sessions)[0]
    with api.sessions.begin() as s:
        s.execute(update(Customer).values(consent=True))
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(2)))
    cid = api("admin", "POST", "/api/campaigns", body(targets={"customer_ids": ids}))[1]["id"]
    other = api("admin", "POST", "/api/campaigns", body(type="maintenance", targets={"customer_ids": ids}))[1]["id"]
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    with api.sessions.begin() as s:
        targets = {t.customer_id: t for t in s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == cid))}
        attempts = []
        for n, customer in enumerate(ids):
            a = CampaignAttempt(campaign_id=cid, target_id=targets[customer].id, customer_id=customer,
                                action_id=f"cc-d-{n}", originated_at=at, answered_at=at, outcome="reached",
                                uniqueid=f"1795416969.{n}")
            s.add(a)
            s.flush()
            attempts.append(a.id)
        unanswered = CampaignAttempt(campaign_id=cid, target_id=targets[ids[0]].id, customer_id=ids[0],
                                     action_id="cc-d-x", originated_at=at, outcome="busy")
        s.add(unanswered)
        s.flush()
        unanswered_id = unanswered.id
    path = f"/api/campaigns/{cid}/dispositions"
    assert api("agent8001", "POST", path, {"attempt_id": attempts[0], "disposition": "maybe"})[1]["field"] == \
        "disposition"
    assert api("agent8001", "POST", path, {"attempt_id": "1", "disposition": "booked"})[1]["field"] == "attempt_id"
    assert api("agent8001", "POST", path, {"attempt_id": unanswered_id, "disposition": "booked"})[0] == 409
    assert api("agent8001", "POST", f"/api/campaigns/{other}/dispositions",
               {"attempt_id": attempts[0], "disposition": "booked"})[0] == 404
    status, booked = api("agent8001", "POST", path, {"attempt_id": attempts[0], "disposition": "booked",
                                                     "note": "周六上午保养"})
    assert status == 200 and booked["ticket_id"]
    assert api("agent8001", "POST", path, {"attempt_id": attempts[0], "disposition": "booked"})[0] == 409
    status, refused = api("agent8001", "POST", path, {"attempt_id": attempts[1], "disposition": "refused"})
    assert status == 200 and refused["ticket_id"] is None and refused["marketing_stopped"] == 1
    with api.sessions() as s:
        ticket = s.get(Ticket, booked["ticket_id"])
        assert ticket is not None and ticket.kind == "appointment" and ticket.customer_id == ids[0]
        assert s.get(Customer, ids[1]).consent is False  # type: ignore[union-attr]
        assert {t.campaign_id: t.status for t in s.scalars(select(CampaignTarget)
                                                           .where(CampaignTarget.customer_id == ids[1]))} == {
            cid: "done", other: "dropped"}
    progress = api("campaigns", "GET", f"/api/campaigns/{cid}")[1]["progress"]
    assert progress["appointments"] == 1 and progress["reached"] == 2


def test_dnc_csv_import_row_by_row(api: Any) -> None:
    csv_text = "name,number\n张三,138 0013 8000\n李四,not-a-number\n\n王五,+8613912345678\n赵六,13800138000\n"
    status, done = api("campaigns", "POST", "/api/dnc/import", csv_text.encode(), **{"Content-Type": "text/csv"})
    assert status == 200
    assert {k: done[k] for k in ("rows", "added", "already", "duplicates", "error_count")} == {
        "rows": 4, "added": 2, "already": 0, "duplicates": 1, "error_count": 1}
    assert done["errors"][0]["row"] == 3 and done["errors"][0]["value"] == "not-a-number"
    again = api("campaigns", "POST", "/api/dnc/import", b"13912345678\n", **{"Content-Type": "text/csv"})[1]
    assert (again["added"], again["already"]) == (0, 1)  # no header: the first column
    zh = api("campaigns", "POST", "/api/dnc/import", csv_text.encode(),
             **{"Content-Type": "text/csv", "Accept-Language": "zh-CN"})[1]
    assert zh["errors"][0]["error"] == "不是电话号码（不是号码）"  # the number library's reason too
    assert done["errors"][0]["error"] == "not a phone number (not a number)"  # a script reads English
    assert api("campaigns", "POST", "/api/dnc/import", b"x", **{"Content-Type": "application/json"})[0] == 415
    assert api("campaigns", "POST", "/api/dnc/import", b"\xff\xfe", **{"Content-Type": "text/csv"})[0] == 400
    assert api("agent8001", "POST", "/api/dnc/import", b"13912345678\n", **{"Content-Type": "text/csv"})[0] == 403
    with api.sessions() as s:
        assert set(s.scalars(select(DncNumber.e164))) == {"+8613800138000", "+8613912345678"}
        assert list(s.scalars(select(AuditLog.action).where(AuditLog.action == "dnc.import"))) == ["dnc.import"] * 3


def test_dnc_csv_import_reads_gbk_and_a_bom_and_refuses_garbage_whole(api: Any) -> None:
    csv_type = {"Content-Type": "text/csv"}
    # a Chinese Excel export: GBK, Chinese headers and names
    gbk = "姓名,号码\n张三,138 0013 8000\n李四,不是号码\n".encode("gbk")
    status, done = api("campaigns", "POST", "/api/dnc/import", gbk, **csv_type)
    assert status == 200, done
    assert (done["rows"], done["added"], done["error_count"]) == (2, 1, 1)
    assert (done["errors"][0]["row"], done["errors"][0]["value"]) == (3, "不是号码")
    # UTF-8 with a BOM: the header is still found past it
    bom = b"\xef\xbb\xbf" + "电话,备注\n13912345678,王五\n".encode()
    status, done = api("campaigns", "POST", "/api/dnc/import", bom, **csv_type)
    assert status == 200 and (done["rows"], done["added"], done["error_count"]) == (1, 1, 0), done
    with api.sessions() as s:
        before = set(s.scalars(select(DncNumber.e164)))
    assert before == {"+8613800138000", "+8613912345678"}
    # bytes neither UTF-8 nor GB18030: a 400 naming the byte, nothing added, nothing audited
    garbage = "号码\n13700137000\n".encode("gbk") + b"\xff\xfe13600136000\n"
    status, done = api("campaigns", "POST", "/api/dnc/import", garbage, **csv_type)
    assert status == 400 and done["field"] == "body"
    assert done["error"] == f"the file is neither UTF-8 nor GB18030/GBK (byte {len(garbage) - 14})"
    zh = api("campaigns", "POST", "/api/dnc/import", garbage, **csv_type, **{"Accept-Language": "zh-CN"})[1]
    assert str(len(garbage) - 14) in zh["error"] and "GB18030" in zh["error"] and zh["error"] != done["error"]
    with api.sessions() as s:
        assert set(s.scalars(select(DncNumber.e164))) == before
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "dnc.import")) == 2
