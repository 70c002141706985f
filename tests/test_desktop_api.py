"""The desktop's API over HTTP (the router on a real event loop): notes, dispositions, transfers, click-to-dial,
customers — each with its role refusals and bad payloads, the audit rows, and the page."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from ccserver.db.models import (
    Appointment,
    AuditLog,
    Call,
    CallNote,
    Customer,
    Did,
    Queue,
    ServiceVisit,
    Store,
    Ticket,
    TicketEvent,
)
from ccserver.web.agent_routes import end_sign_ins_with_web_sessions
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from tests.desktop_support import AGENT_PHONE, CALL, HOSTILE, Desk, make_desk, make_prospect, play_until
from tests.web_support import make_context


async def request(router: Any, method: str, path: str, token: str, body: Any = None,
                  lang: str | None = None) -> tuple[int, Any]:
    from twisted.internet.address import IPv4Address
    from twisted.web.test.requesthelper import DummyRequest

    path_only, _, query = path.partition("?")
    req = DummyRequest([p.encode() for p in path_only.split("/") if p], client=IPv4Address("TCP", "192.0.2.1", 1))
    req.client = IPv4Address("TCP", "192.0.2.1", 1)
    req.method, req.path, req.uri = method.encode(), path_only.encode(), path.encode()
    if query:
        from urllib.parse import parse_qs

        req.args = {k.encode(): [x.encode() for x in v] for k, v in parse_qs(query).items()}
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req.content = io.BytesIO(raw)
    req.requestHeaders.addRawHeader("Authorization", f"Bearer {token}")
    if lang is not None:  # a reader's language: errors come in it (API clients without one get English)
        req.requestHeaders.addRawHeader("Accept-Language", lang)
    if body is not None:
        req.requestHeaders.addRawHeader("Content-Type", "application/json")
    router.render(req)
    while not req.finished:
        await asyncio.sleep(0)
    data = b"".join(req.written)
    kind = req.responseHeaders.getRawHeaders(b"content-type", [b""])[0]
    return req.responseCode or 200, json.loads(data) if kind.startswith(b"application/json") else data.decode()


@pytest.fixture
def api(loaded: Any) -> Any:
    _url, sessions = loaded
    desk = make_desk(sessions)
    ctx = make_context(SQLUserStore(sessions))
    ctx.agents, ctx.tracker, ctx.session_factory = desk.agents, desk.tracker, sessions
    ctx.tickets, ctx.desktop = desk.tickets, desk.service
    end_sign_ins_with_web_sessions(ctx.sessions, desk.agents)

    def token(username: str) -> str:
        u = desk.users[username]
        return ctx.signer.issue(u.id, u.username, u.role)[0]

    return build_router(ctx), token, desk


def on_a_call(router: Any, token: Any, desk: Desk) -> Any:
    """Agent 8001 signed in from the recordings' phone, the recorded VIP call answered by it."""
    async def sign_in() -> None:
        status, body = await request(router, "POST", "/api/agents/8001/login", token("agent8001"),
                                     {"queues": ["vip", "sales"], "interface": AGENT_PHONE})
        assert status == 200, body

    play_until(desk.tracker, "AgentConnect")
    return sign_in()


def audit(desk: Desk, action: str) -> list[Any]:
    with desk.sessions() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        return [(a.actor_name, a.target, a.detail) for a in rows]


def test_notes_and_disposition_on_ones_own_call(api: Any) -> None:
    router, token, desk = api
    me, other = token("agent8001"), token("agent8002")
    url = f"/api/calls/{CALL}"

    async def main() -> list[tuple[int, Any]]:
        await on_a_call(router, token, desk)
        return [
            await request(router, "GET", "/api/desktop/state", me),
            await request(router, "POST", f"{url}/notes", me, {"text": f"客户说 {HOSTILE}"}),
            await request(router, "GET", f"{url}/notes", me),
            await request(router, "POST", f"{url}/notes", other, {"text": "not mine"}),
            await request(router, "POST", f"{url}/notes", token("campaigns"), {"text": "x"}),
            await request(router, "POST", f"{url}/notes", me, {}),
            await request(router, "POST", f"{url}/notes", me, {"text": "x", "colour": "red"}),
            await request(router, "POST", f"{url}/notes", me, {"text": "a\x00b"}),
            await request(router, "POST", f"{url}/notes", me, {"text": "x", "ticket_id": "7"}),
            await request(router, "POST", f"{url}/notes", me, b"not json"),
            await request(router, "POST", "/api/calls/..%2Fetc/notes", me, {"text": "x"}),
            await request(router, "POST", "/api/calls/1795416999.9/notes", me, {"text": "x"}),
            await request(router, "POST", f"{url}/disposition", me, {"code": "nope"}),
            await request(router, "POST", f"{url}/disposition", me, {"code": "resolved"}),
            await request(router, "POST", f"{url}/disposition", token("supervisor1"), {"code": "sales_lead"}),
        ]

    (state, note, notes, other_agent, campaign, empty, unknown, nul, bad_ticket, not_json, bad_id, no_call,
     bad_code, disposed, by_supervisor) = asyncio.run(main())
    assert state[0] == 200 and state[1]["signed_in"] and state[1]["call"]["uniqueid"] == CALL
    assert state[1]["asterisk_link"]["configured"] is False  # make_context has none: the desktop's banner says so
    assert note[0] == 201 and note[1]["text"] == f"客户说 {HOSTILE}"  # JSON data: the page shows it as text
    assert notes[0] == 200 and [n["kind"] for n in notes[1]["notes"]] == ["note"]
    assert other_agent[0] == 403 and campaign[0] == 403
    assert (empty[0], empty[1]["field"]) == (400, "text")
    assert (unknown[0], unknown[1]["field"]) == (400, "colour")
    assert (nul[0], nul[1]["field"]) == (400, "text")
    assert (bad_ticket[0], bad_ticket[1]["field"]) == (400, "ticket_id")
    assert not_json[0] in (400, 415)
    assert bad_id[0] == 404 and no_call[0] == 404
    assert (bad_code[0], bad_code[1]["field"]) == (400, "code")
    assert disposed[0] == 201 and disposed[1]["code"] == "resolved"
    assert by_supervisor[0] == 201
    assert [a[0] for a in audit(desk, "call.note")] == ["agent8001"]
    assert [a[2]["code"] for a in audit(desk, "call.disposition")] == ["resolved", "sales_lead"]


def test_transfers_reach_the_agents_channel_and_bad_targets_are_refused(api: Any) -> None:
    router, token, desk = api
    me = token("agent8001")
    url = f"/api/calls/{CALL}/transfer"

    async def main() -> list[tuple[int, Any]]:
        await on_a_call(router, token, desk)
        out = [
            await request(router, "POST", url, me, {"kind": "blind", "to": "sales"}),
            await request(router, "POST", url, me, {"kind": "attended", "to": "8002"}),
            await request(router, "POST", url, me, {"kind": "blind", "to": "139 1234 5678"}),
            await request(router, "POST", url, token("supervisor1"), {"kind": "blind", "to": "vip",
                                                                       "target": "queue"}),
            await request(router, "POST", url, me, {"kind": "sideways", "to": "sales"}),
            await request(router, "POST", url, me, {"kind": "blind", "to": "nosuchqueue"}),
            await request(router, "POST", url, me, {"kind": "blind", "to": "13912345678\r\nAction: Originate"}),
            await request(router, "POST", url, me, {"kind": "blind", "to": "8001"}),
            await request(router, "POST", url, me, {"kind": "blind", "to": "9999", "target": "agent"}),
            await request(router, "POST", url, me, {"kind": "blind"}),
            await request(router, "POST", url, token("agent8002"), {"kind": "blind", "to": "sales"}),
            await request(router, "POST", url, token("campaigns"), {"kind": "blind", "to": "sales"}),
        ]
        desk.calls.fail = "BlindTransfer refused by Asterisk default: No such channel"
        out.append(await request(router, "POST", url, me, {"kind": "blind", "to": "sales"}))
        return out

    (queue, agent, number, supervisor, bad_kind, no_queue, injected, own, no_agent, no_to, other, campaign,
     refused) = asyncio.run(main())
    assert (queue[0], agent[0], number[0], supervisor[0]) == (202, 202, 202, 202)
    assert number[1]["target"] == {"type": "number", "value": "+8613912345678"}
    channel = "Local/8001@agent-phones-00000001;1"
    assert [s for s in desk.calls.sent if s[0] == "transfer"][:4] == [
        ("transfer", "blind", channel, "ccserver-transfer", "q-sales"),
        ("transfer", "attended", channel, "ccserver-transfer", "A8002"),
        ("transfer", "blind", channel, "ccserver-transfer", "13912345678"),
        ("transfer", "blind", channel, "ccserver-transfer", "q-vip")]
    # the channel is looked up by the agent leg the recording's AgentConnect named
    assert ("channels", "default", AGENT_PHONE, "1795416921.2") in desk.calls.sent
    for reply, field in ((bad_kind, "kind"), (no_queue, "to"), (injected, "to"), (own, "to"), (no_agent, "to"),
                         (no_to, "to")):
        assert (reply[0], reply[1].get("field")) == (400, field), reply
    assert other[0] == 403 and campaign[0] == 403
    assert refused[0] == 502 and "No such channel" in refused[1]["error"]
    assert len(audit(desk, "call.transfer")) == 4 and len(audit(desk, "call.transfer_failed")) == 1
    assert not any("Originate" in str(s) for s in desk.calls.sent)


def test_click_to_dial_rings_the_agent_first_with_the_stores_did_and_is_linked_to_the_task(api: Any) -> None:
    router, token, desk = api
    me = token("agent8001")

    async def main() -> list[tuple[int, Any]]:
        await on_a_call(router, token, desk)
        ticket = await request(router, "POST", "/api/tickets", token("admin"),
                               {"kind": "callback", "subject": "请回电", "store_id": 1, "phone": "13912345678"})
        assert ticket[0] == 201, ticket
        tid = ticket[1]["id"]
        return [
            ticket,
            await request(router, "POST", "/api/dial", me, {"number": "13912345678", "ticket_id": tid}),
            await request(router, "POST", "/api/dial", me, {"number": "021-5888 1234"}),
            await request(router, "POST", "/api/dial", token("agent8002"), {"number": "13912345678"}),
            await request(router, "POST", "/api/dial", me, {"number": "13912345678\r\nAction: Hangup"}),
            await request(router, "POST", "/api/dial", me, {"number": "8001&PJSIP/9999"}),
            await request(router, "POST", "/api/dial", me, {"number": 13912345678}),
            await request(router, "POST", "/api/dial", me, {"number": "13912345678", "ticket_id": "1"}),
            await request(router, "POST", "/api/dial", me, {"number": "13912345678", "ticket_id": 99999999}),
            await request(router, "POST", "/api/dial", token("campaigns"), {"number": "13912345678"}),
        ]

    ticket, dialled, landline, not_signed_in, injected, dial_string, not_text, bad_ticket, no_ticket, campaign = \
        asyncio.run(main())
    tid = ticket[1]["id"]
    assert dialled[0] == 202 and dialled[1]["number"] == "+8613912345678" and dialled[1]["ticket_id"] == tid
    originates = [s for s in desk.calls.sent if s[0] == "originate"]
    _, channel, context, exten, caller_id, timeout_ms, variables = originates[0]
    assert (channel, context, exten, timeout_ms) == (AGENT_PHONE, "ccserver-dial", "13912345678", 30000)
    assert caller_id and caller_id == dialled[1]["caller_id"]  # one of store 1's DIDs
    assert variables["CC_TICKET_ID"] == str(tid) and variables["CC_DIAL_E164"] == "+8613912345678"
    assert landline[0] == 202 and originates[1][3] == "02158881234"
    assert not_signed_in[0] == 409
    for reply in (injected, dial_string, not_text):
        assert (reply[0], reply[1]["field"]) == (400, "number"), reply
    assert (bad_ticket[0], bad_ticket[1]["field"]) == (400, "ticket_id")
    assert no_ticket[0] == 404
    assert campaign[0] == 403
    assert len(originates) == 2  # nothing refused reached Asterisk
    with desk.sessions() as s:
        note = s.scalars(select(CallNote).where(CallNote.kind == "dial")).first()
        assert note is not None and (note.ticket_id, note.text) == (tid, "+8613912345678")
        comments = [e.comment for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid))]
        assert any(c and "click-to-dial +8613912345678" in c for c in comments)
    assert [d[2]["ticket"] for d in audit(desk, "call.dial")] == [tid, None]


def test_customer_search_history_edit_and_merge_of_a_prospect(api: Any) -> None:
    router, token, desk = api
    me = token("agent8001")
    prospect, known, plate = make_prospect(desk)

    async def main() -> list[tuple[int, Any]]:
        base = "/api/desktop/customers"
        return [
            await request(router, "GET", f"{base}?q=13955550000", me),
            await request(router, "GET", f"{base}?q={plate}", me),
            await request(router, "GET", f"{base}?q=x", me),
            await request(router, "GET", f"{base}/{prospect}", me),
            await request(router, "POST", f"{base}/{prospect}", me, {"name": "王先生", "language": "zh"}),
            await request(router, "POST", f"{base}/{prospect}", me, {"name": ""}),
            await request(router, "POST", f"{base}/{prospect}", me, {"tier": "diamond"}),
            await request(router, "POST", f"{base}/{known}", me, {"name": "改名"}),
            await request(router, "POST", f"{base}/{known}/merge", me, {"into": prospect}),
            await request(router, "POST", f"{base}/{prospect}/merge", me, {"into": "x"}),
            await request(router, "POST", f"{base}/{prospect}/merge", token("campaigns"), {"into": known}),
            await request(router, "POST", f"{base}/{prospect}/merge", me, {"into": known}),
            await request(router, "GET", f"{base}/{prospect}", me),
            await request(router, "GET", f"{base}/{known}", me),
            await request(router, "GET", f"{base}?q=13955550000", me),  # the number is the known customer's now
        ]

    (by_number, by_plate, too_short, detail, edited, empty_name, not_editable, known_edit, merge_known, bad_into,
     campaign, merged, gone, into, number_again) = asyncio.run(main())
    assert by_number[0] == 200 and [c["id"] for c in by_number[1]["customers"]] == [prospect]
    assert by_number[1]["customers"][0]["name"] == HOSTILE and by_number[1]["customers"][0]["prospect"]
    assert by_plate[0] == 200 and known in [c["id"] for c in by_plate[1]["customers"]]
    assert (too_short[0], too_short[1]["field"]) == (400, "q")
    assert detail[0] == 200 and [c["uniqueid"] for c in detail[1]["calls"]] == ["1795000000.0000"]
    assert [t["subject"] for t in detail[1]["tickets"]] == ["询价"]
    assert edited[0] == 200 and edited[1]["name"] == "王先生"
    assert (empty_name[0], empty_name[1]["field"]) == (400, "name")
    assert (not_editable[0], not_editable[1]["field"]) == (400, "tier")
    assert known_edit[0] == 403  # agents edit only prospects
    assert merge_known[0] == 409  # a real customer is never merged away
    assert (bad_into[0], bad_into[1]["field"]) == (400, "into")
    assert campaign[0] == 403
    assert merged[0] == 200 and merged[1]["moved"]["calls"] == 1 and merged[1]["moved"]["tickets"] == 1
    assert gone[0] == 404
    assert "+8613955550000" in into[1]["phones"] and "1795000000.0000" in [c["uniqueid"] for c in into[1]["calls"]]
    assert [(a[1], a[2]["from"]) for a in audit(desk, "customer.merge")] == [(f"customer:{known}", prospect)]
    assert len(audit(desk, "customer.update")) == 1
    # Identification's cache had the number as the prospect's (the first search): the merge dropped it.
    assert number_again[0] == 200 and [c["id"] for c in number_again[1]["customers"]] == [known]


def test_a_customers_history_carries_each_stores_time_zone(api: Any) -> None:
    """The desktop shows a customer's calls, tickets and visits in the hours of the store each was at: a call by
    the store's DID (else its queue's store), a ticket's and a visit's own store; what has no store, the server's."""
    router, token, desk = api
    prospect, _known, _plate = make_prospect(desk)
    when = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    with desk.sessions.begin() as s:
        did = s.scalars(select(Did).where(Did.store_id.is_not(None)).order_by(Did.id)).first()
        queue = s.scalars(select(Queue).where(Queue.store_id.is_not(None), Queue.store_id != did.store_id)
                          .order_by(Queue.id)).first()
        assert did is not None and queue is not None
        s.get(Store, did.store_id).time_zone = "Asia/Tokyo"
        s.get(Store, queue.store_id).time_zone = "Europe/Berlin"
        s.add_all([Call(uniqueid="1795000001.1", server="default", customer_id=prospect, dialed=did.number,
                        queue=queue.name, entered_at=when),
                   Call(uniqueid="1795000001.2", server="default", customer_id=prospect, queue=queue.name,
                        entered_at=when - dt.timedelta(hours=1)),
                   Ticket(kind="repair", subject="异响", status="new", severity="normal", source="web",
                          customer_id=prospect, store_id=queue.store_id, created_at=when, updated_at=when),
                   ServiceVisit(customer_id=prospect, store_id=did.store_id, opened_at=when, status="in_progress")])

    status, detail = asyncio.run(request(router, "GET", f"/api/desktop/customers/{prospect}", token("agent8001")))
    assert status == 200
    assert {c["uniqueid"]: c["time_zone"] for c in detail["calls"]} == {
        "1795000001.1": "Asia/Tokyo", "1795000001.2": "Europe/Berlin", "1795000000.0000": "Asia/Shanghai"}
    assert {t["subject"]: t["time_zone"] for t in detail["tickets"]} == {"异响": "Europe/Berlin",
                                                                       "询价": "Asia/Shanghai"}
    assert [v["time_zone"] for v in detail["visits"]] == ["Asia/Tokyo"]


def a_customer_with_a_home_store(desk: Desk) -> int:
    with desk.sessions() as s:
        found = s.scalars(select(Customer.id).where(Customer.home_store_id.is_not(None), Customer.tier != "prospect")
                          .order_by(Customer.id)).first()
    assert found is not None
    return int(found)


def test_off_call_a_customer_found_under_customers_gets_a_ticket_and_an_appointment(api: Any) -> None:
    """An agent not signed in and on no call (a customer e-mailed): the customer from the search, then the ticket
    and the booking the desktop's forms send for them — no call, no call note; an unknown customer is refused."""
    router, token, desk = api
    me = token("agent8001")
    cid = a_customer_with_a_home_store(desk)

    async def main() -> list[tuple[int, Any]]:
        state = await request(router, "GET", "/api/desktop/state", me)
        detail = await request(router, "GET", f"/api/desktop/customers/{cid}", me)
        home = detail[1]["home_store"]
        ticket = await request(router, "POST", "/api/tickets", me, {
            "kind": "inquiry", "subject": "邮件询价", "customer_id": cid, "phone": detail[1]["phones"][0]})
        slots = await request(router, "GET", f"/api/slots?store={home['code']}&limit=2", me)
        slot = slots[1]["slots"][0]["start"]
        booked = await request(router, "POST", "/api/appointments", me,
                               {"customer_id": cid, "store_id": home["id"], "slot": slot})
        return [state, detail, ticket, slots, booked,
                # the same customer booked again into the same slot (a free seat left): refused, in the page's words
                await request(router, "POST", "/api/appointments", me,
                              {"customer_id": cid, "store_id": home["id"], "slot": slot}, lang="zh-CN"),
                # what the desk sent off-call before: no caller, so no customer
                await request(router, "POST", "/api/appointments", me,
                              {"customer_id": None, "store_id": home["id"], "slot": slot}),
                await request(router, "POST", "/api/tickets", me,
                              {"kind": "inquiry", "subject": "x", "customer_id": 99999999}, lang="zh-CN"),
                await request(router, "POST", "/api/appointments", me,
                              {"customer_id": 99999999, "store_id": home["id"], "slot": slot}, lang="zh-CN"),
                await request(router, "POST", "/api/tickets", token("campaigns"),
                              {"kind": "inquiry", "subject": "x", "customer_id": cid}),
                await request(router, "POST", "/api/appointments", token("campaigns"),
                              {"customer_id": cid, "store_id": home["id"], "slot": slot}),
                await request(router, "GET", f"/api/desktop/customers/{cid}", me)]

    (state, detail, ticket, slots, booked, twice, no_customer, unknown_ticket, unknown_booking, campaign_ticket,
     campaign_booking, after) = asyncio.run(main())
    assert state[0] == 200 and not state[1]["signed_in"] and state[1]["call"] is None
    assert detail[0] == 200 and detail[1]["home_store"]["code"]
    assert ticket[0] == 201, ticket
    assert ticket[1]["customer"]["id"] == cid and ticket[1]["kind"] == "inquiry"
    assert slots[0] == 200 and slots[1]["slots"]
    assert booked[0] == 201, booked
    assert (booked[1]["kind"], booked[1]["customer"]["id"]) == ("appointment", cid)
    assert (twice[0], twice[1]["field"], twice[1]["existing_ticket"]) == (409, "customer_id", booked[1]["id"])
    assert twice[1]["error"].startswith(f"该客户在此时段已有预约 #{booked[1]['id']}"), twice
    assert (no_customer[0], no_customer[1]["field"]) == (400, "customer_id")
    assert unknown_ticket[0] == 400 and unknown_ticket[1] == {"error": "没有这位客户", "field": "customer_id"}
    assert unknown_booking[0] == 400 and unknown_booking[1] == {"error": "没有这位客户", "field": "customer_id"}
    assert campaign_ticket[0] == 403 and campaign_booking[0] == 403  # roles kept
    assert {ticket[1]["id"], booked[1]["id"]} <= {t["id"] for t in after[1]["tickets"]}  # in the history
    with desk.sessions() as s:
        assert s.scalars(select(CallNote)).all() == []  # no call: nothing links, nothing fails
        appointment = s.scalars(select(Appointment).where(Appointment.ticket_id == booked[1]["id"])).one()
        assert (appointment.customer_id, appointment.store_id) == (cid, detail[1]["home_store"]["id"])
    assert [a[2]["ticket"] for a in audit(desk, "ticket.create")] == [ticket[1]["id"]]
    assert [a[2]["ticket"] for a in audit(desk, "appointment.book")] == [booked[1]["id"]]


def test_off_call_store_staff_open_tickets_and_book_at_their_own_store_only(api: Any) -> None:
    """Store staff on the desktop (department role with a store): a found customer's ticket is their store's and
    a booking elsewhere is refused, in the reader's language."""
    router, token, desk = api
    me = token("bj-volvo-service01")
    own = desk.users["bj-volvo-service01"].store_id
    assert own is not None
    cid = a_customer_with_a_home_store(desk)

    async def main() -> list[tuple[int, Any]]:
        other_slots = await request(router, "GET", f"/api/slots?store={own + 1}&limit=1", me)
        own_slots = await request(router, "GET", f"/api/slots?store={own}&limit=1", me)
        return [
            await request(router, "POST", "/api/tickets", me,
                          {"kind": "repair", "subject": "回访", "customer_id": cid}),
            await request(router, "POST", "/api/tickets", me,
                          {"kind": "repair", "subject": "回访", "customer_id": cid, "store_id": own + 1}, lang="zh-CN"),
            await request(router, "POST", "/api/appointments", me, {
                "customer_id": cid, "store_id": own + 1, "slot": other_slots[1]["slots"][0]["start"]}, lang="zh-CN"),
            await request(router, "POST", "/api/appointments", me, {
                "customer_id": cid, "store_id": own, "slot": own_slots[1]["slots"][0]["start"]}),
        ]

    ticket, other_store_ticket, other_store_booking, booked = asyncio.run(main())
    assert ticket[0] == 201 and ticket[1]["store"]["id"] == own and ticket[1]["customer"]["id"] == cid
    assert other_store_ticket[0] == 403
    assert other_store_ticket[1] == {"error": "您只能为自己的门店创建工单", "field": "store_id"}
    assert other_store_booking[0] == 403
    assert other_store_booking[1] == {"error": "您只能在自己的门店预约", "field": "store_id"}
    assert booked[0] == 201 and booked[1]["customer"]["id"] == cid and booked[1]["store"]["id"] == own


def test_the_desktop_page_and_its_config(api: Any) -> None:
    router, token, desk = api

    async def main() -> list[tuple[int, Any]]:
        return [
            await request(router, "GET", "/desktop", token("agent8001")),
            await request(router, "GET", "/desktop", token("bj-volvo-service01")),
            await request(router, "GET", "/desktop", token("supervisor1")),
            await request(router, "GET", "/desktop", token("campaigns")),
            await request(router, "GET", "/api/desktop/config", token("agent8001")),
            await request(router, "POST", "/api/desktop/wrapup/end", token("agent8001"), {}),
        ]

    page, department, supervisor, campaign, config, end = asyncio.run(main())
    assert page[0] == 200 and '<section id="cc-card" aria-live="polite"' in page[1]  # card.js's labels follow
    assert '<html lang="zh-CN">' in page[1] and 'src="/static/desktop.js"' in page[1]
    assert "<script>" not in page[1]  # no inline script: only modules and JSON data
    assert "午餐" in page[1]  # pause codes in the page's language
    assert department[0] == 200 and supervisor[0] == 200 and campaign[0] == 403
    assert config[0] == 200 and config[1]["extension"] == "8001"
    assert [c["code"] for c in config[1]["pause_codes"]][:2] == ["break", "lunch"]
    assert "agent-8001" not in config[1]["queues"] and "sales" in config[1]["queues"]
    assert end == (200, {"extension": "8001", "wrapup_ended": False})
