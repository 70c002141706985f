"""Preview mode over HTTP (the router on a real event loop, the demo data): the agent's next contact through the
planner and the gate, held for them; skip with a reason; dial through the desktop's click-to-dial (agent's phone
first); the disposition settles the attempt; the gate asked again at the dial; roles, bad input, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from ccserver.campaigns.preview import PreviewService, PreviewStore
from ccserver.campaigns.service import CampaignService
from ccserver.clock import ManualClock
from ccserver.db.models import AuditLog, CampaignAttempt, CampaignTarget, Customer, DncNumber, Queue
from ccserver.web.agent_routes import end_sign_ins_with_web_sessions
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from tests.desktop_support import AGENT_PHONE, in_thread, make_desk
from tests.test_desktop_api import request
from tests.web_support import asterisk_up, make_context

START = 1_795_000_000.0  # Wed 2026-11-18 19:06 in Shanghai: inside the 09:00-20:00 window


@pytest.fixture
def api(loaded: Any) -> Any:
    _url, sessions = loaded
    desk = make_desk(sessions)
    ctx = make_context(SQLUserStore(sessions))
    ctx.agents, ctx.tracker, ctx.session_factory, ctx.run_blocking = desk.agents, desk.tracker, sessions, in_thread
    ctx.tickets, ctx.desktop = desk.tickets, desk.service
    clock = ManualClock(START)
    ctx.campaigns = CampaignService(sessions, in_thread, clock=clock)
    ctx.asterisk = asterisk_up
    ctx.preview = PreviewService(ctx.campaigns, desk.service, default_zone="Asia/Shanghai")
    end_sign_ins_with_web_sessions(ctx.sessions, desk.agents)
    with sessions.begin() as s:
        if s.scalar(select(Queue.id).where(Queue.name == "sales")) is None:
            s.add(Queue(name="sales", line="sales"))

    def token(username: str) -> str:
        u = desk.users[username]
        return ctx.signer.issue(u.id, u.username, u.role)[0]

    return build_router(ctx), token, desk, clock


def audit(desk: Any, action: str) -> list[Any]:
    with desk.sessions() as s:
        return [a.detail for a in s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))]


def test_next_skip_dial_and_disposition(api: Any) -> None:
    router, token, desk, clock = api
    me, manager = token("agent8001"), token("campaigns")
    with desk.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(5)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["not_signed_in"] = await request(router, "POST", "/api/preview/next", me, {})
        out["manager"] = await request(router, "POST", "/api/preview/next", manager, {})
        created = await request(router, "POST", "/api/campaigns", manager, {
            "name": "购车3天回访", "type": "return_visit", "mode": "preview", "queue": "sales",
            "targets": {"customer_ids": ids}, "script": "您好，我是4S店回访专员……"})
        assert created[0] == 201, created
        cid = created[1]["id"]
        assert (await request(router, "POST", f"/api/campaigns/{cid}/start", manager, {}))[0] == 200
        with desk.sessions.begin() as s:  # the first customer's number goes on the DNC list
            first = s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == cid)
                              .order_by(CampaignTarget.id)).first()
            assert first is not None
            s.add(DncNumber(e164=first.e164, source="test"))
        out["none_yet"] = await request(router, "POST", "/api/preview/next", me, {})
        login = await request(router, "POST", "/api/agents/8001/login", me,
                              {"queues": ["vip", "sales"], "interface": AGENT_PHONE})
        assert login[0] == 200, login
        out["first"] = await request(router, "POST", "/api/preview/next", me, {})
        out["again"] = await request(router, "POST", "/api/preview/next", me, {})
        held = out["first"][1]["target"]["id"]
        out["bad_reason"] = await request(router, "POST", f"/api/preview/{held}/skip", me, {"reason": "bored"})
        out["bad_id"] = await request(router, "POST", "/api/preview/1x/dial", me, {})
        out["later"] = await request(router, "POST", f"/api/preview/{held}/skip", me, {"reason": "later"})
        out["second"] = await request(router, "POST", "/api/preview/next", me, {})
        second = out["second"][1]["target"]["id"]
        out["not_mine"] = await request(router, "POST", f"/api/preview/{held}/dial", me, {})
        out["dial"] = await request(router, "POST", f"/api/preview/{second}/dial", me, {})
        out["dial_again"] = await request(router, "POST", f"/api/preview/{second}/dial", me, {})
        out["skip_dialled"] = await request(router, "POST", f"/api/preview/{second}/skip", me, {"reason": "other"})
        out["still_held"] = await request(router, "POST", "/api/preview/next", me, {})
        attempt = out["dial"][1]["attempt_id"]
        out["booked"] = await request(router, "POST", f"/api/campaigns/{cid}/dispositions", me,
                                      {"attempt_id": attempt, "disposition": "booked", "note": "周六保养"})
        out["third"] = await request(router, "POST", "/api/preview/next", me, {})
        third = out["third"][1]["target"]["id"]
        out["wrong"] = await request(router, "POST", f"/api/preview/{third}/skip", me, {"reason": "wrong_number"})
        out["fourth"] = await request(router, "POST", "/api/preview/next", me, {})
        await clock.advance(4 * 3600.0)  # 23:06 in Shanghai: the window has closed since the contact was shown
        fourth = out["fourth"][1]["target"]["id"] if out["fourth"][1]["target"] else None
        out["closed"] = await request(router, "POST", f"/api/preview/{fourth}/dial", me, {})
        out.update(cid=cid, held=held, second_id=second, third_id=third, fourth_id=fourth, first_e164=first.e164)
        return out

    out = asyncio.run(main())
    assert out["not_signed_in"][0] == 409 and "sign in" in out["not_signed_in"][1]["error"]
    assert out["manager"][0] == 403
    assert out["none_yet"][0] == 409  # still not signed in
    status, first = out["first"]
    assert status == 200 and first["campaign"]["script"] == "您好，我是4S店回访专员……"
    assert first["target"]["e164"] != out["first_e164"]  # the DNC number was dropped by the gate, not shown
    assert first["customer"]["name"] and first["campaign"]["name"] == "购车3天回访"
    assert out["again"][1]["target"]["id"] == out["held"]  # asked again: the contact the agent holds
    assert out["bad_reason"][0] == 400 and out["bad_reason"][1]["field"] == "reason"
    assert out["bad_id"][0] == 404
    assert out["later"] == (200, {"target_id": out["held"], "campaign_id": out["cid"], "reason": "later",
                                  "status": "pending"})
    assert out["second"][1]["target"]["id"] not in (out["held"],)  # the rested one is not offered again
    assert out["not_mine"][0] == 404
    status, dialled = out["dial"]
    assert status == 200 and dialled["status"] == "ringing_agent" and dialled["number"] == \
        out["second"][1]["target"]["e164"]
    originate = [s for s in desk.calls.sent if s[0] == "originate"]
    assert len(originate) == 1  # one Originate, the agent's phone first, the customer's digits as the exten
    _, channel, context, exten, _caller_id, _timeout, variables = originate[0]
    assert channel == AGENT_PHONE and context == "ccserver-dial" and variables["CC_DIAL_E164"] == dialled["number"]
    assert out["dial_again"][0] == 409 and out["skip_dialled"][0] == 409
    assert out["still_held"][1]["attempt_id"] == dialled["attempt_id"]
    assert out["booked"][0] == 200 and out["booked"][1]["ticket_id"]
    assert out["third"][1]["target"]["id"] not in (out["held"], out["second_id"])
    assert out["wrong"][1]["status"] == "dropped"
    assert out["closed"][0] == 409 and "window" in out["closed"][1]["error"]
    with desk.sessions() as s:
        targets = {t.id: t for t in s.scalars(select(CampaignTarget).where(CampaignTarget.campaign_id == out["cid"]))}
        attempt = s.get(CampaignAttempt, dialled["attempt_id"])
        assert attempt is not None
        assert (attempt.action_id, attempt.outcome, attempt.disposition, attempt.agent_interface) == (
            dialled["action_id"], "reached", "booked", AGENT_PHONE)
        assert attempt.answered_at is not None and attempt.ticket_id == out["booked"][1]["ticket_id"]
    done = targets[out["second_id"]]
    assert (done.status, done.attempts, done.held_by) == ("done", 1, None)
    assert (targets[out["third_id"]].status, targets[out["third_id"]].drop_reason) == ("dropped", "skip:wrong_number")
    assert targets[out["held"]].status == "pending"
    dnc = [t for t in targets.values() if t.e164 == out["first_e164"]][0]
    assert (dnc.status, dnc.drop_reason) == ("dropped", "dnc_number")
    assert [d["target_id"] for d in audit(desk, "campaign.preview_dial")] == [out["second_id"]]
    assert [d["reason"] for d in audit(desk, "campaign.preview_skip")] == ["later", "wrong_number"]
    assert len(audit(desk, "call.dial")) == 1


def test_no_answer_on_a_preview_call_returns_the_contact_and_is_refused_for_dialer_attempts(api: Any) -> None:
    router, token, desk, _clock = api
    me, manager = token("agent8001"), token("campaigns")
    with desk.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(1)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False))

    async def main() -> dict[str, Any]:
        created = await request(router, "POST", "/api/campaigns", manager, {
            "name": "满意度", "type": "satisfaction", "mode": "preview", "queue": "sales",
            "targets": {"customer_ids": ids}})
        cid = created[1]["id"]
        await request(router, "POST", f"/api/campaigns/{cid}/start", manager, {})
        await request(router, "POST", "/api/agents/8001/login", me, {"queues": ["sales"], "interface": AGENT_PHONE})
        shown = await request(router, "POST", "/api/preview/next", me, {})
        dialled = await request(router, "POST", f"/api/preview/{shown[1]['target']['id']}/dial", me, {})
        no_answer = await request(router, "POST", f"/api/campaigns/{cid}/dispositions", me,
                                  {"attempt_id": dialled[1]["attempt_id"], "disposition": "no_answer"})
        empty = await request(router, "POST", "/api/preview/next", me, {})
        return {"cid": cid, "shown": shown, "no_answer": no_answer, "empty": empty}

    out = asyncio.run(main())
    assert out["no_answer"][0] == 200
    assert out["empty"] == (200, {"target": None})  # back to the pool, held back for the no_answer spacing
    with desk.sessions() as s:
        target = s.get(CampaignTarget, out["shown"][1]["target"]["id"])
        assert target is not None
        assert (target.status, target.attempts, target.last_outcome, target.held_by) == (
            "pending", 1, "no_answer", None)
        # a dialer (progressive) attempt may not be disposed as no_answer: the dialer records outcomes
        s.execute(update(CampaignAttempt).values(outcome="reached"))
    with desk.sessions.begin() as s:
        from ccserver.db.models import Campaign

        s.execute(update(Campaign).where(Campaign.id == out["cid"]).values(mode="progressive"))
        attempt = s.scalars(select(CampaignAttempt)).first()
        assert attempt is not None
        attempt.disposition, attempt.answered_at = None, attempt.originated_at
        aid = attempt.id
    refused = asyncio.run(request(router, "POST", f"/api/campaigns/{out['cid']}/dispositions", me,
                                  {"attempt_id": aid, "disposition": "busy"}))
    assert refused[0] == 400 and refused[1]["field"] == "disposition"


def test_preview_dial_reaches_asterisk_as_the_recorded_originate(api: Any) -> None:
    """The dial through the real AMI client to the replay peer of a recorded Originate session: the Originate rings
    the agent's phone (Channel) with the customer's digits as Exten, and the attempt takes its ActionID."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    from ccserver.ami.client import AMIServerConfig
    from ccserver.ami.manager import AMIManager
    from ccserver.desktop.calls import AMIDesktopCalls
    from tests.replay.ami_peer import AMIReplayFactory

    router, token, desk, _clock = api
    me, manager = token("agent8001"), token("campaigns")
    with desk.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(1)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False))

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        reactor = AsyncioSelectorReactor(loop)
        peer = AMIReplayFactory("ami-originate-results", clock=reactor, skip_actions=[])
        port = reactor.listenTCP(0, peer, interface="127.0.0.1")
        ami = AMIManager({"default": AMIServerConfig(port=port.getHost().port, auth="plain",
                                                     secret="ccserver-secret")}, reactor=reactor)
        ami.start()
        await ami.clients["default"].when_connected().asFuture(loop)
        desk.service.calls = AMIDesktopCalls(ami, loop)
        try:
            created = await request(router, "POST", "/api/campaigns", manager, {
                "name": "投诉处理回访", "type": "complaint_callback", "mode": "preview", "queue": "sales",
                "targets": {"customer_ids": ids}})
            cid = created[1]["id"]
            await request(router, "POST", f"/api/campaigns/{cid}/start", manager, {})
            await request(router, "POST", "/api/agents/8001/login", me,
                          {"queues": ["sales"], "interface": AGENT_PHONE})
            shown = await request(router, "POST", "/api/preview/next", me, {})
            dialled = await request(router, "POST", f"/api/preview/{shown[1]['target']['id']}/dial", me, {})
            return {"shown": shown, "dialled": dialled,
                    "sent": [dict(a.items()) for a in peer.actions if a.get("Action") == "Originate"]}
        finally:
            ami.stop()
            port.stopListening()

    out = asyncio.run(main())
    status, dialled = out["dialled"]
    assert status == 200, dialled
    sent = out["sent"][0]
    e164 = out["shown"][1]["target"]["e164"]
    assert sent["ActionID"] == dialled["action_id"] and sent["Channel"] == AGENT_PHONE
    assert (sent["Context"], sent["Async"]) == ("ccserver-dial", "true") and e164.endswith(sent["Exten"][-8:])
    with desk.sessions() as s:
        attempt = s.get(CampaignAttempt, dialled["attempt_id"])
        assert attempt is not None and attempt.action_id == sent["ActionID"] and attempt.outcome is None


def test_a_hold_that_runs_out_undialled_goes_back_to_the_pool(api: Any) -> None:
    router, token, desk, clock = api
    me, manager = token("agent8001"), token("campaigns")
    with desk.sessions.begin() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(1)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False))

    async def main() -> tuple[Any, Any, Any]:
        created = await request(router, "POST", "/api/campaigns", manager, {
            "name": "回访", "type": "satisfaction", "mode": "preview", "queue": "sales",
            "targets": {"customer_ids": ids}})
        await request(router, "POST", f"/api/campaigns/{created[1]['id']}/start", manager, {})
        await request(router, "POST", "/api/agents/8001/login", me, {"queues": ["sales"], "interface": AGENT_PHONE})
        shown = await request(router, "POST", "/api/preview/next", me, {})
        await clock.advance(601.0)  # campaigns.preview_hold_seconds (600) later, never dialled
        released = await in_thread(PreviewStore(desk.sessions).release_expired,
                                   datetime.fromtimestamp(clock.time(), UTC))
        again = await request(router, "POST", "/api/preview/next", me, {})
        return shown, released, again

    shown, released, again = asyncio.run(main())
    assert released == 1
    assert again[1]["target"]["id"] == shown[1]["target"]["id"]  # free again: offered anew, held anew
    with desk.sessions() as s:
        target = s.get(CampaignTarget, shown[1]["target"]["id"])
        assert target is not None and (target.status, target.held_by, target.attempts) == (
            "active", desk.users["agent8001"].id, 0)
        assert target.held_until is not None and target.held_until.timestamp() == clock.time() + 600
