"""/api/tickets, /api/slots, /api/appointments, /api/callbacks and /inbox over the real router on the demo data:
validation (errors name the field), every role rule, CSRF, audit."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from sqlalchemy import select, update
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from ccserver.db.models import AuditLog, Customer, Store, User
from ccserver.web.app import build_router
from ccserver.web.http import SESSION_COOKIE
from ccserver.web.sql_users import SQLUserStore
from tests.tickets_support import in_thread, make_service
from tests.web_support import make_context


async def _request(router: Any, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    path_only, _, query = path.partition("?")
    req = DummyRequest([p.encode() for p in path_only.split("/") if p], client=IPv4Address("TCP", "192.0.2.1", 1))
    req.client = IPv4Address("TCP", "192.0.2.1", 1)
    req.method, req.path, req.uri = method.encode(), path_only.encode(), path.encode()
    if query:
        from urllib.parse import parse_qs

        req.args = {k.encode(): [x.encode() for x in v] for k, v in parse_qs(query).items()}
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req.content = io.BytesIO(raw)
    for name, value in headers.items():
        req.requestHeaders.addRawHeader(name, value)
    if body is not None and "Content-Type" not in headers:
        req.requestHeaders.addRawHeader("Content-Type", "application/json")
    router.render(req)
    while not req.finished:
        await asyncio.sleep(0)
    data = b"".join(req.written)
    content_type = (req.responseHeaders.getRawHeaders(b"content-type") or [b""])[0]
    return req.responseCode or 200, json.loads(data) if content_type.startswith(b"application/json") else data


@pytest.fixture
def api(loaded: Any) -> Any:
    _url, sessions = loaded
    service, clock, _ = make_service(sessions)
    ctx = make_context(SQLUserStore(sessions))
    ctx.run_blocking, ctx.session_factory, ctx.tickets = in_thread, sessions, service
    with sessions.begin() as s:
        bj = s.scalars(select(Store.id).where(Store.code == "bj-volvo")).one()
        # a store manager (a supervisor with a store) and a store's own agent
        s.execute(update(User).where(User.username == "supervisor2").values(store_id=bj))
        s.execute(update(User).where(User.username == "agent8002").values(store_id=bj))
        users = {u.username: u for u in s.scalars(select(User))}
    router = build_router(ctx)

    def call(who: str | None, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        if who is not None:
            u = users[who]
            headers.setdefault("Authorization", f"Bearer {ctx.signer.issue(u.id, u.username, u.role)[0]}")
        return asyncio.run(_request(router, method, path, headers, body))

    call.ctx = ctx  # type: ignore[attr-defined]
    call.users = users  # type: ignore[attr-defined]
    call.sessions = sessions  # type: ignore[attr-defined]
    call.bj = bj  # type: ignore[attr-defined]
    return call


def make(api: Any, who: str = "admin", **body: Any) -> dict[str, Any]:
    status, ticket = api(who, "POST", "/api/tickets", {"kind": "complaint", "subject": "投诉", **body})
    assert status == 201, ticket
    return ticket


def test_auth_and_roles_per_route(api: Any) -> None:
    assert api(None, "GET", "/api/tickets")[0] == 401
    assert api(None, "POST", "/api/tickets", {"kind": "complaint"})[0] == 401
    for route in ("/api/tickets", "/api/tickets/1", "/api/slots?store=1"):
        assert api("campaigns", "GET", route)[0] == 403
    assert api("campaigns", "GET", "/api/callbacks")[0] == 200  # the campaign engine reads the worklist
    assert api("campaigns", "POST", "/api/tickets", {"kind": "complaint", "subject": "x"})[0] == 403
    for who in ("admin", "supervisor1", "agent8001", "service-dept"):
        assert api(who, "GET", "/api/tickets")[0] == 200


@pytest.mark.parametrize("body, status, field", [
    ({"kind": "complaint"}, 400, "subject"),
    ({"kind": "complaint", "subject": "   "}, 400, "subject"),
    ({"kind": "grumble", "subject": "x"}, 400, "kind"),
    ({"kind": "complaint", "subject": "x", "severity": "extreme"}, 400, "severity"),
    ({"kind": "complaint", "subject": "x", "category": "weather"}, 400, "category"),
    ({"kind": "complaint", "subject": "x", "customer_id": "3"}, 400, "customer_id"),
    ({"kind": "complaint", "subject": "x", "customer_id": 99_999_999}, 400, "customer_id"),
    ({"kind": "complaint", "subject": "x", "store_id": 999}, 400, "store_id"),
    ({"kind": "complaint", "subject": "x", "phone": "hello"}, 400, "phone"),
    ({"kind": "complaint", "subject": "x", "department": "<script>"}, 400, "department"),
    ({"kind": "complaint", "subject": "x" * 201}, 400, "subject"),
    ({"kind": "complaint", "subject": "x\x00y"}, 400, "subject"),
    ({"kind": "complaint", "subject": "first line\nsecond line"}, 400, "subject"),  # a list row's one line
    ({"kind": "complaint", "subject": "refund \u202eredro"}, 400, "subject"),  # displays in another order
    ({"kind": "complaint", "subject": "x", "body": "\u2066hidden\u2069"}, 400, "body"),
    ({"kind": "complaint", "subject": "x", "priority": 9}, 400, "priority"),
])  # fmt: skip
def test_create_validation_names_the_field(api: Any, body: dict[str, Any], status: int, field: str) -> None:
    got, answer = api("admin", "POST", "/api/tickets", body)
    assert (got, answer.get("field")) == (status, field), answer
    assert api("admin", "GET", "/api/tickets?kind=complaint")[1]["total"] == 1  # only the demo's own


def test_create_get_list_and_filters(api: Any) -> None:
    ticket = make(api, kind="repair", subject="<b>发动机</b>故障", category="breakdown", store_id=api.bj,
                  customer_id=2, phone="13912345678", severity="urgent")
    assert ticket["subject"] == "<b>发动机</b>故障" and ticket["phone"] == "+8613912345678"
    assert ticket["department"] == "service" and ticket["severity"] == "urgent" and ticket["source"] == "web"
    status, got = api("admin", "GET", f"/api/tickets/{ticket['id']}")
    assert status == 200 and got["events"][0]["action"] == "created"
    assert api("admin", "GET", "/api/tickets/999999")[0] == 404
    assert api("admin", "GET", "/api/tickets/abc")[0] == 404
    status, found = api("admin", "GET", "/api/tickets?kind=repair&store=bj-volvo&status=new,assigned&customer_id=2")
    assert status == 200 and [t["id"] for t in found["tickets"]] == [ticket["id"]] and found["total"] == 1
    assert api("admin", "GET", f"/api/tickets?store={api.bj}&department=service")[1]["total"] == 1
    for query, field in (("status=open", "status"), ("kind=x", "kind"), ("limit=0", "limit"), ("limit=abc", "limit"),
                         ("offset=-1", "offset"), ("store=nowhere", "store"), ("sort=random", "sort"),
                         ("customer_id=x", "customer_id"), ("department=a%20b", "department")):
        status, error = api("admin", "GET", f"/api/tickets?{query}")
        assert (status, error["field"]) == (400, field), query
    assert api("admin", "POST", "/api/tickets", b"not json", **{"Content-Type": "text/plain"})[0] == 415


def test_transitions_over_http(api: Any) -> None:
    tid = make(api, customer_id=3)["id"]
    status, error = api("agent8001", "POST", f"/api/tickets/{tid}/transition", {"to": "resolved"})
    assert status == 409 and error["allowed"] == ["assigned", "in_progress", "cancelled"] and error["field"] == "to"
    assert error["current"] == "new"
    for body, field in (({"to": "done"}, "to"), ({}, "to"), ({"to": "in_progress", "satisfaction": 9}, "satisfaction"),
                        ({"to": "in_progress", "why": "x"}, "why"), ({"to": "in_progress", "comment": 5}, "comment")):
        status, error = api("agent8001", "POST", f"/api/tickets/{tid}/transition", body)
        assert (status, error["field"]) == (400, field), body
    for to in ("in_progress", "resolved"):
        status, ticket = api("agent8001", "POST", f"/api/tickets/{tid}/transition", {"to": to, "comment": "ok"})
        assert status == 200 and ticket["status"] == to
    status, ticket = api("agent8001", "POST", f"/api/tickets/{tid}/transition",
                         {"to": "customer_called_back", "satisfaction": 5})
    assert status == 200 and ticket["satisfaction"] == 5
    status, ticket = api("agent8001", "POST", f"/api/tickets/{tid}/comments", {"text": "客户很满意"})
    assert status == 201 and ticket["events"][-1]["comment"] == "客户很满意"
    assert api("agent8001", "POST", f"/api/tickets/{tid}/comments", {"text": ""})[1]["field"] == "text"
    with api.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.action.like("ticket.%"))
                                               .order_by(AuditLog.id))]
    assert actions == ["ticket.create", "ticket.transition", "ticket.transition", "ticket.transition",
                       "ticket.comment"]


def test_role_rules(api: Any) -> None:
    bj_repair = make(api, kind="repair", subject="bj repair", store_id=api.bj)["id"]
    bj_sales = make(api, subject="bj promise", store_id=api.bj, category="sales_promise")["id"]
    sh = make(api, kind="repair", subject="sh repair", store_id=api.bj + 1)["id"]
    group = make(api, kind="inquiry", subject="group inquiry")["id"]
    mine = {bj_repair, bj_sales, sh, group}

    def visible(who: str) -> set[int]:
        status, found = api(who, "GET", "/api/tickets?limit=200")
        assert status == 200
        listed = {t["id"] for t in found["tickets"]} & mine
        for tid in mine:  # a single ticket answers like the list: out of sight is 404
            assert api(who, "GET", f"/api/tickets/{tid}")[0] == (200 if tid in listed else 404), (who, tid)
        return listed

    assert visible("admin") == mine
    assert visible("supervisor1") == mine  # no store: the whole group
    assert visible("agent8001") == mine  # the group call centre
    assert visible("supervisor2") == {bj_repair, bj_sales}  # a store manager: that store only
    assert visible("agent8002") == {bj_repair, bj_sales}  # a store's agent
    assert visible("service-dept") == {bj_repair}  # department staff: their department (of their store)
    assert visible("bj-volvo-sales01") == {bj_sales}
    assert visible("sh-bmw-service01") == {sh}
    # out of sight: no transition, no comment either (404, nothing revealed)
    assert api("service-dept", "POST", f"/api/tickets/{sh}/transition", {"to": "in_progress"})[0] == 404
    assert api("service-dept", "POST", f"/api/tickets/{sh}/comments", {"text": "x"})[0] == 404
    # a store's staff open tickets for their own store only; the store is theirs by default
    status, error = api("agent8002", "POST", "/api/tickets", {"kind": "inquiry", "subject": "x",
                                                              "store_id": api.bj + 1})
    assert (status, error["field"]) == (403, "store_id")
    status, ticket = api("agent8002", "POST", "/api/tickets", {"kind": "inquiry", "subject": "x"})
    assert status == 201 and ticket["store"]["id"] == api.bj
    # a department nobody works in and no setting routes to: refused (the ticket would leave every inbox)
    status, error = api("service-dept", "POST", f"/api/tickets/{bj_repair}/assign", {"department": "nosuchdept"})
    assert (status, error["field"]) == (400, "department") and "nosuchdept" in error["error"]
    status, error = api("agent8002", "POST", "/api/tickets", {"kind": "inquiry", "subject": "x",
                                                              "department": "nosuchdept"})
    assert (status, error["field"]) == (400, "department")
    # reassigned away, it leaves the department's view
    status, moved = api("service-dept", "POST", f"/api/tickets/{bj_repair}/assign", {"department": "sales"})
    assert status == 200 and moved == {"id": bj_repair, "visible": False}
    assert visible("service-dept") == set()
    assert api("service-dept", "POST", f"/api/tickets/{bj_sales}/assign", {})[1]["field"] == "department"


def test_slots_booking_and_reschedule(api: Any) -> None:
    status, found = api("agent8001", "GET", "/api/slots?store=bj-volvo&limit=2")
    assert status == 200 and found["store_id"] == api.bj and len(found["slots"]) == 2
    first = found["slots"][0]
    assert first["free"] == 3 and first["start"].endswith("+00:00")
    status, later = api("agent8001", "GET", "/api/slots?store=bj-volvo&from=2026-11-25&limit=1")
    assert later["slots"][0]["start"] == "2026-11-25T00:00:00+00:00"  # 08:00 in Beijing
    for query, field in (("", "store"), ("store=nowhere", "store"), ("store=1&from=tomorrow", "from"),
                         ("store=1&limit=500", "limit")):
        status, error = api("agent8001", "GET", f"/api/slots?{query}")
        assert (status, error["field"]) == (400, field), query
    booked = []
    for customer in (1, 2, 3):
        status, ticket = api("agent8001", "POST", "/api/appointments",
                             {"customer_id": customer, "store_id": api.bj, "slot": first["start"]})
        assert status == 201 and ticket["kind"] == "appointment" and ticket["appointment"]["status"] == "booked"
        booked.append(ticket["id"])
    status, error = api("agent8001", "POST", "/api/appointments",
                        {"customer_id": 4, "store_id": api.bj, "slot": first["start"]})
    assert (status, error["field"]) == (409, "slot")
    for body, field in (({"store_id": api.bj, "slot": first["start"]}, "customer_id"),
                        ({"customer_id": 1, "store_id": api.bj, "slot": "soon"}, "slot"),
                        ({"customer_id": 1, "store_id": api.bj, "slot": "2026-11-23T14:30:00+08:00"}, "slot"),
                        ({"customer_id": 1, "slot": first["start"]}, "store_id")):
        status, error = api("agent8001", "POST", "/api/appointments", body)
        assert (status, error["field"]) == (400, field), body
    status, error = api("agent8002", "POST", "/api/appointments",
                        {"customer_id": 1, "store_id": api.bj + 1, "slot": first["start"]})
    assert (status, error["field"]) == (403, "store_id")
    status, moved = api("agent8001", "POST", f"/api/tickets/{booked[0]}/reschedule",
                        {"slot": found["slots"][1]["start"], "comment": "改时间"})
    assert status == 200 and moved["appointment"]["slot"] == found["slots"][1]["start"]
    status, cancelled = api("agent8001", "POST", f"/api/tickets/{booked[1]}/transition",
                            {"to": "cancelled", "comment": "客户取消"})
    assert status == 200 and cancelled["appointment"]["status"] == "cancelled"
    assert api("agent8001", "GET", "/api/slots?store=bj-volvo&limit=1")[1]["slots"][0]["free"] == 2


@pytest.mark.parametrize(("language", "subject"), [({"Cookie": "ccserver_lang=zh-CN"}, "维修保养预约"),
                                                    ({"Accept-Language": "en-US,en"}, "Workshop appointment"),
                                                    ({}, "Workshop appointment")])
def test_a_booking_without_subject_is_titled_in_the_bookers_language(api: Any, language: dict[str, str],
                                                                       subject: str) -> None:
    slot = api("agent8001", "GET", "/api/slots?store=bj-volvo&limit=1")[1]["slots"][0]["start"]
    status, ticket = api("agent8001", "POST", "/api/appointments",
                         {"customer_id": 1, "store_id": api.bj, "slot": slot}, **language)
    assert status == 201 and ticket["subject"] == subject


def test_slots_and_bookings_carry_the_stores_time_zone(api: Any) -> None:
    """A page shows a slot in the store's hours whatever the browser's zone: the zone's name and the start with the
    store's offset come with each slot, and the zone with a booked ticket's appointment."""
    from datetime import datetime

    from ccserver.db.models import Store

    status, found = api("agent8001", "GET", "/api/slots?store=bj-volvo&from=2026-11-25&limit=1")
    slot = found["slots"][0]
    assert (slot["start"], slot["local_start"], slot["time_zone"]) == (
        "2026-11-25T00:00:00+00:00", "2026-11-25T08:00:00+08:00", "Asia/Shanghai")
    with api.sessions.begin() as s:  # a store in another zone: its 08:00 is another instant
        s.get(Store, api.bj).time_zone = "Asia/Tokyo"
    status, found = api("agent8001", "GET", "/api/slots?store=bj-volvo&from=2026-11-25&limit=1")
    slot = found["slots"][0]
    assert slot["local_start"].endswith("+09:00") and slot["time_zone"] == "Asia/Tokyo"
    assert datetime.fromisoformat(slot["local_start"]) == datetime.fromisoformat(slot["start"])
    status, ticket = api("agent8001", "POST", "/api/appointments",
                         {"customer_id": 1, "store_id": api.bj, "slot": slot["start"]})
    assert status == 201 and ticket["appointment"]["time_zone"] == "Asia/Tokyo"


def test_callbacks_worklist(api: Any) -> None:
    tid = make(api, kind="repair", subject="修好了", customer_id=1)["id"]
    for to in ("in_progress", "resolved"):
        api("admin", "POST", f"/api/tickets/{tid}/transition", {"to": to})
    status, found = api("agent8001", "GET", "/api/callbacks")
    assert status == 200 and found["total"] == len(found["callbacks"])
    item = next(i for i in found["callbacks"] if i["ticket_id"] == tid)
    assert item["type"] == "resolution_callback" and item["customer"]["tier"] == "diamond" and item["phone"]
    assert api("agent8001", "GET", "/api/callbacks?limit=0")[1]["field"] == "limit"
    # a store's agent sees only the call backs of their store
    assert tid not in {i["ticket_id"] for i in api("agent8002", "GET", "/api/callbacks")[1]["callbacks"]}


def test_tickets_and_callbacks_carry_the_stores_time_zone(api: Any) -> None:
    """Pages show a ticket's times (created, SLA due, history) and a call back's due time in the store's hours:
    each carries its store's zone, and a ticket of no store the server's (tickets.time_zone, from server.time_zone)."""
    with api.sessions.begin() as s:
        s.get(Store, api.bj).time_zone = "America/Los_Angeles"
    at_bj = make(api, kind="callback", subject="请回电", store_id=api.bj, phone="+8613800138000")
    nowhere = make(api, kind="inquiry", subject="问问")
    assert nowhere["store"] is None
    assert (at_bj["time_zone"], nowhere["time_zone"]) == ("America/Los_Angeles", "Asia/Shanghai")
    assert api("admin", "GET", f"/api/tickets/{at_bj['id']}")[1]["time_zone"] == "America/Los_Angeles"
    listed = {t["id"]: t["time_zone"] for t in api("admin", "GET", "/api/tickets?limit=200")[1]["tickets"]}
    assert (listed[at_bj["id"]], listed[nowhere["id"]]) == ("America/Los_Angeles", "Asia/Shanghai")
    repair = make(api, kind="repair", subject="修好了", customer_id=1, store_id=api.bj)["id"]
    for to in ("in_progress", "resolved"):
        api("admin", "POST", f"/api/tickets/{repair}/transition", {"to": to})
    worklist = {(i["type"], i["ticket_id"]): i for i in api("admin", "GET", "/api/callbacks")[1]["callbacks"]}
    assert worklist[("callback_request", at_bj["id"])]["time_zone"] == "America/Los_Angeles"
    assert worklist[("resolution_callback", repair)]["time_zone"] == "America/Los_Angeles"
    assert {i["time_zone"] for i in worklist.values() if i["store_id"] != api.bj} <= {"Asia/Shanghai"}


def test_cookie_sessions_need_csrf(api: Any) -> None:
    u = api.users["service-dept"]
    token, principal = api.ctx.signer.issue(u.id, u.username, u.role)
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    assert api(None, "POST", "/api/tickets", {"kind": "inquiry", "subject": "x"}, **cookie)[0] == 403
    csrf = api.ctx.signer.csrf_token(principal.session_id)
    assert api(None, "POST", "/api/tickets", {"kind": "inquiry", "subject": "x"}, **cookie,
               **{"X-CSRF-Token": csrf})[0] == 201


def test_inbox_page(api: Any) -> None:
    u = api.users["service-dept"]
    token, _ = api.ctx.signer.issue(u.id, u.username, u.role)
    status, page = api(None, "GET", "/inbox", **{"Cookie": f"{SESSION_COOKIE}={token}"})
    assert status == 200 and "部门工单箱".encode() in page and b'src="/static/inbox.js"' in page
    assert b'data-department="service"' in page and b'<span class="dept">' in page
    # a supervisor's list is every department they may see: the title names none (theirs is the call centre)
    sup = api.users["supervisor1"]
    status, page = api(None, "GET", "/inbox", **{"Cookie": f"{SESSION_COOKIE}={api.ctx.signer.issue(sup.id, sup.username, sup.role)[0]}"})  # noqa: E501
    assert status == 200 and b'<span class="dept">' not in page
    status, page = api(None, "GET", "/inbox", **{"Cookie": f"{SESSION_COOKIE}={token}; ccserver_lang=en"})
    assert b"Department inbox" in page and b'"customer_called_back": "Customer called back"' in page
    # tiers and departments by the labels the other pages show, not their codes (inbox.js reads these)
    labels = json.loads(page.decode().split('id="inbox-labels">')[1].split("</script>")[0])
    assert labels["tier"]["diamond"] == "Diamond" and labels["department"]["call_center"] == "Call centre"
    zh = api(None, "GET", "/inbox", **{"Cookie": f"{SESSION_COOKIE}={token}; ccserver_lang=zh-CN"})[1].decode()
    labels = json.loads(zh.split('id="inbox-labels">')[1].split("</script>")[0])
    assert labels["tier"] == {"diamond": "钻石", "gold": "金牌", "silver": "银牌", "bronze": "铜牌",
                              "prospect": "潜在客户"}
    agent = api.users["agent8001"]
    assert api(None, "GET", "/inbox", **{"Cookie": f"{SESSION_COOKIE}={api.ctx.signer.issue(agent.id, agent.username, agent.role)[0]}"})[0] == 403  # noqa: E501
    assert api(None, "GET", "/inbox")[0] == 303  # not logged in: to the login page


def test_a_customers_ticket_takes_their_home_store_and_its_staff_see_it(api: Any) -> None:
    sh = api.bj + 1
    with api.sessions.begin() as s:
        homed_bj = Customer(name="北京车主", home_store_id=api.bj)
        homed_sh = Customer(name="上海车主", home_store_id=sh)
        s.add_all([homed_bj, homed_sh])
        s.flush()
        bj_customer, sh_customer = homed_bj.id, homed_sh.id
        service_dept = s.scalars(select(User).where(User.username == "service-dept")).one()
        assert service_dept.store_id == api.bj  # the service department's inbox of bj-volvo
    # the group call centre opens a complaint for the customer, naming no store: it is their home store's
    ticket = make(api, "agent8001", customer_id=bj_customer)
    assert ticket["store"]["id"] == api.bj and ticket["department"] == "service"
    for who, sees in (("supervisor2", True), ("agent8002", True), ("service-dept", True),
                      ("sh-bmw-service01", False)):
        listed = {t["id"] for t in api(who, "GET", "/api/tickets?limit=200")[1]["tickets"]}
        assert (ticket["id"] in listed) is sees, who
        assert api(who, "GET", f"/api/tickets/{ticket['id']}")[0] == (200 if sees else 404), who
    # a store given wins over the home store
    assert make(api, "agent8001", customer_id=bj_customer, store_id=sh)["store"]["id"] == sh
    # a store's own agent opens tickets for their store, whichever store the customer calls home
    assert make(api, "agent8002", customer_id=sh_customer)["store"]["id"] == api.bj


def test_mine_is_what_the_agent_opened_or_was_given(api: Any) -> None:
    """The desktop's "my tickets": a ticket the agent opened for a department (nobody has taken it yet) is theirs to
    follow, as is one assigned to them; a colleague's is not."""
    opened = make(api, "agent8001", kind="inquiry", subject="opened by the agent")["id"]
    given = make(api, kind="repair", subject="assigned to the agent")["id"]
    status, assigned = api("admin", "POST", f"/api/tickets/{given}/assign",
                           {"assignee_id": api.users["agent8001"].id})
    assert status == 200, assigned
    other = make(api, kind="inquiry", subject="someone else's")["id"]
    status, found = api("agent8001", "GET", "/api/tickets?mine=1&limit=200")
    assert status == 200 and {t["id"] for t in found["tickets"]} == {opened, given} and found["total"] == 2
    assert other in {t["id"] for t in api("agent8001", "GET", "/api/tickets?mine=0&limit=200")[1]["tickets"]}
    assert {t["id"] for t in api("agent8001", "GET", "/api/tickets?assignee=me")[1]["tickets"]} == {given}
    status, error = api("agent8001", "GET", "/api/tickets?mine=yes")
    assert (status, error["field"]) == (400, "mine")
