"""The tickets service on the demo data, SQLite and PostgreSQL: create (routing, SLA in business hours, history,
notification, rescoring), the lifecycle with resolution call backs and satisfaction, comments and reassignment,
what each role sees, the IVR's port, the call-back worklist and abandoned callers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ccserver.db.models import BusinessHours, CallbackTask, Customer, Notification, Ticket, Vehicle
from ccserver.events import CallAbandoned
from ccserver.tickets import Actor, NewTicket, TicketError, TicketSettings
from ccserver.tickets.abandoned import AbandonedCallers
from ivr.ports import OpenRepair, TicketsPort
from tests.tickets_support import MONDAY_10, actor, events, make_service, notifications, store_id

SH = ZoneInfo("Asia/Shanghai")
CHEN = 3  # 陈静, Chongqing Ford (store 4), with an open complaint in the demo data
ADMIN = Actor(None, "admin", "admin")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_create_routes_times_records_notifies_and_rescores(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, recorder = make_service(sessions)
    cq = store_id(sessions, "cq-ford")
    view = asyncio.run(service.create(NewTicket(
        kind="complaint", subject="异响未修好", body="保养后底盘异响", category="service_quality", store_id=cq,
        customer_id=CHEN), ADMIN))
    assert view["status"] == "new" and view["department"] == "service" and view["store"]["code"] == "cq-ford"
    assert view["customer"]["name"] == "陈静" and view["allowed"] == ["assigned", "in_progress", "cancelled"]
    # Monday 10:00: 2 business hours → 12:00; 48 business hours of the service line (08:00-17:30, Mon-Sat)
    first, resolution = view["sla"]["first_response"], view["sla"]["resolution"]
    assert datetime.fromisoformat(first["due_at"]) == local("2026-11-23T12:00")
    assert first["state"] == "ok" and first["seconds_left"] == 7200
    assert datetime.fromisoformat(resolution["due_at"]) == local("2026-11-28T10:30")
    assert events(sessions, view["id"]) == [("created", None, "new")]
    assert notifications(sessions) == [("ticket.created", view["id"])]
    assert [sorted(inv.customer_ids) for inv in recorder.applied] == [[CHEN]]  # rescored, then dropped from cache
    # a complaint billing issue goes to finance (a route), a sales promise to sales
    billing = asyncio.run(service.create(NewTicket(kind="complaint", subject="多收费", category="billing"), ADMIN))
    assert billing["department"] == "finance"


def test_after_hours_the_clock_starts_when_the_store_opens(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions, at=local("2026-11-23T19:00"))
    view = asyncio.run(service.create(NewTicket(kind="repair", subject="无法启动", category="breakdown",
                                                store_id=store_id(sessions, "bj-volvo")), ADMIN))
    # repair: first response 1 business hour, fixed the same working day (the service line closes at 17:30)
    assert datetime.fromisoformat(view["sla"]["first_response"]["due_at"]) == local("2026-11-24T09:00")
    assert datetime.fromisoformat(view["sla"]["resolution"]["due_at"]) == local("2026-11-24T17:30")


@pytest.mark.parametrize("changes, field", [
    ({"kind": "grumble"}, "kind"),
    ({"category": "weather"}, "category"),
    ({"severity": "apocalyptic"}, "severity"),
    ({"store_id": 999}, "store_id"),
    ({"customer_id": 10_000_000}, "customer_id"),
    ({"vehicle_id": 10_000_000}, "vehicle_id"),
    ({"department": "no spaces please"}, "department"),
])  # fmt: skip
def test_bad_input_names_the_field_and_writes_nothing(loaded: Any, changes: dict[str, Any], field: str) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    new = NewTicket(**{"kind": "complaint", "subject": "x", **changes})
    with pytest.raises(TicketError) as caught:
        asyncio.run(service.create(new, ADMIN))
    assert (caught.value.status, caught.value.field) == (400, field)
    with sessions() as s:
        assert s.scalars(select(Ticket).where(Ticket.subject == "x")).first() is None
    assert notifications(sessions) == []


def test_a_complaint_from_new_to_closed(loaded: Any) -> None:
    _url, sessions = loaded
    service, clock, recorder = make_service(sessions)
    advisor = actor(sessions, "cq-ford-service01")
    ticket = asyncio.run(service.create(NewTicket(kind="complaint", subject="配件缺货", category="parts",
                                                  store_id=store_id(sessions, "cq-ford"), customer_id=CHEN), ADMIN))
    tid = ticket["id"]

    async def go(to: str, **kw: Any) -> dict[str, Any]:
        await clock.advance(600)
        return await service.transition(tid, to, advisor, **kw)

    assigned = asyncio.run(go("assigned", comment="我来处理"))
    assert assigned["assignee"]["username"] == "cq-ford-service01"
    assert assigned["sla"]["first_response"]["state"] == "met"
    asyncio.run(go("in_progress"))
    resolved = asyncio.run(go("resolved", comment="已更换"))
    assert resolved["allowed"] == ["customer_called_back", "in_progress"]
    with sessions() as s:
        task = s.scalars(select(CallbackTask).where(CallbackTask.ticket_id == tid)).one()
        # resolved 10:30 Monday + 4 business hours of the service line
        assert task.due_at == local("2026-11-23T14:30") and task.done_at is None and task.customer_id == CHEN
    with pytest.raises(TicketError) as illegal:
        asyncio.run(go("closed"))
    assert illegal.value.status == 409 and illegal.value.extra["allowed"] == ["customer_called_back", "in_progress"]
    with pytest.raises(TicketError) as missing:
        asyncio.run(go("customer_called_back"))
    assert missing.value.field == "satisfaction"
    called = asyncio.run(go("customer_called_back", satisfaction=4, comment="客户满意"))
    assert called["satisfaction"] == 4 and called["called_back_at"] is not None
    closed = asyncio.run(go("closed"))
    assert closed["status"] == "closed" and closed["allowed"] == []
    with sessions() as s:
        task = s.scalars(select(CallbackTask).where(CallbackTask.ticket_id == tid)).one()
        assert task.outcome == "called_back" and task.done_by == advisor.user_id
    assert [e[:3] for e in events(sessions, tid)] == [
        ("created", None, "new"), ("transition", "new", "assigned"), ("transition", "assigned", "in_progress"),
        ("transition", "in_progress", "resolved"), ("transition", "resolved", "customer_called_back"),
        ("transition", "customer_called_back", "closed")]
    assert [e for e, t in notifications(sessions) if t == tid] == ["ticket.created", "ticket.assigned",
                                                                   "ticket.resolved"]
    # rescored when opened, when it stopped being open (resolved) and when the satisfaction came in
    assert sum(1 for inv in recorder.applied if CHEN in inv.customer_ids) == 3
    view = asyncio.run(service.get(tid, advisor))
    assert [e["action"] for e in view["events"]][-1] == "transition" and view["events"][1]["comment"] == "我来处理"


def test_reopen_and_cancel_need_a_comment_and_end_the_call_back(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    tid = asyncio.run(service.create(NewTicket(kind="repair", subject="刹车异响", customer_id=CHEN), ADMIN))["id"]
    for to in ("in_progress", "resolved"):
        asyncio.run(service.transition(tid, to, ADMIN))
    with pytest.raises(TicketError) as caught:
        asyncio.run(service.transition(tid, "in_progress", ADMIN))
    assert caught.value.field == "comment"
    asyncio.run(service.transition(tid, "in_progress", ADMIN, comment="客户说仍有异响"))
    with sessions() as s:
        assert s.scalars(select(CallbackTask.outcome).where(CallbackTask.ticket_id == tid)).one() == "reopened"
    asyncio.run(service.transition(tid, "cancelled", ADMIN, comment="重复工单"))
    with pytest.raises(TicketError) as final:
        asyncio.run(service.transition(tid, "in_progress", ADMIN, comment="again"))
    assert final.value.status == 409 and final.value.extra["allowed"] == []
    with pytest.raises(TicketError):
        asyncio.run(service.transition(tid, "nonsense", ADMIN))


def test_comment_and_reassign(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    bj = store_id(sessions, "bj-volvo")
    advisor, consultant = actor(sessions, "bj-volvo-service01"), actor(sessions, "bj-volvo-sales01")
    tid = asyncio.run(service.create(NewTicket(kind="complaint", subject="销售承诺未兑现", store_id=bj), ADMIN))["id"]
    with_comment = asyncio.run(service.comment(tid, "已联系客户", advisor))
    assert with_comment["events"][-1]["comment"] == "已联系客户"
    with pytest.raises(TicketError) as empty:
        asyncio.run(service.comment(tid, "  ", advisor))
    assert empty.value.field == "comment"
    # sent to sales: the service advisor no longer sees it, the sales consultant does, and it is assigned
    moved = asyncio.run(service.assign(tid, advisor, department="sales", comment="转销售部"))
    assert moved == {"id": tid, "visible": False}
    with pytest.raises(TicketError) as gone:
        asyncio.run(service.get(tid, advisor))
    assert gone.value.status == 404
    seen = asyncio.run(service.assign(tid, consultant, assignee_id=consultant.user_id))
    assert seen["status"] == "assigned" and seen["assignee"]["id"] == consultant.user_id
    with pytest.raises(TicketError) as nobody:
        asyncio.run(service.assign(tid, consultant, assignee_id=10_000))
    assert nobody.value.field == "assignee_id"


def test_who_sees_what(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    bj, sh = store_id(sessions, "bj-volvo"), store_id(sessions, "sh-bmw")
    made = {}
    for name, kind, store, category in (("bj-service", "repair", bj, None), ("bj-sales", "complaint", bj,
                                        "sales_promise"), ("sh-service", "repair", sh, None),
                                        ("group", "inquiry", None, None)):
        made[name] = asyncio.run(service.create(NewTicket(kind=kind, subject=name, store_id=store,
                                                          category=category), ADMIN))["id"]

    def seen(who: Actor) -> set[str]:
        found, total = asyncio.run(service.find(who, limit=200))
        assert total == len(found)
        return {t["subject"] for t in found if t["subject"] in made}

    everything = set(made)
    assert seen(ADMIN) == everything
    assert seen(actor(sessions, "supervisor1")) == everything  # a supervisor without a store
    assert seen(actor(sessions, "agent8001")) == everything  # the group call centre
    assert seen(Actor(50, "bj-manager", "supervisor", bj)) == {"bj-service", "bj-sales"}  # a store manager
    assert seen(Actor(51, "bj-agent", "agent", bj)) == {"bj-service", "bj-sales"}
    assert seen(actor(sessions, "bj-volvo-service01")) == {"bj-service"}
    assert seen(actor(sessions, "bj-volvo-sales01")) == {"bj-sales"}
    assert seen(actor(sessions, "sh-bmw-service01")) == {"sh-service"}
    assert seen(Actor(52, "nodept", "department", None, None)) == set()
    # filters and paging
    found, total = asyncio.run(service.find(ADMIN, kinds=["repair"], store_id=bj))
    assert [t["subject"] for t in found] == ["bj-service"] and total == 1
    page, total = asyncio.run(service.find(ADMIN, limit=2, offset=0, sort="created"))
    assert len(page) == 2 and total >= 4


def test_the_ivr_port(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    assert isinstance(service, TicketsPort)
    gz = store_id(sessions, "gz-honda")
    first = asyncio.run(service.create_ticket("repair", 2, gz, "breakdown", "车辆故障", "客户来电报修", "high",
                                              "1700000000.42"))
    again = asyncio.run(service.create_ticket("repair", 2, gz, "breakdown", "车辆故障", "客户来电报修", "high",
                                              "1700000000.42"))
    other = asyncio.run(service.create_ticket("complaint", 2, gz, "parts", "投诉", "", "normal", "1700000000.42"))
    assert first == again != other  # one ticket per call and kind: the IVR may repeat a call
    with sessions() as s:
        t = s.get(Ticket, first)
        assert (t.source, t.uniqueid, t.severity, t.department) == ("ivr", "1700000000.42", "high", "service")
    repairs = asyncio.run(service.open_repairs(2))
    assert repairs == [OpenRepair(first, "new", None, "breakdown", repairs[0].updated_at)]
    asyncio.run(service.transition(first, "in_progress", ADMIN))
    asyncio.run(service.transition(first, "resolved", ADMIN))
    assert asyncio.run(service.open_repairs(2)) == []  # resolved: not open any more
    with pytest.raises(TicketError):
        asyncio.run(service.create_ticket("repair", 2, gz, "weather", "x", "", "normal", "u2"))


def test_callback_worklist_by_due_time_then_tier(loaded: Any) -> None:
    _url, sessions = loaded
    service, clock, _ = make_service(sessions)
    with sessions() as s:
        tiers = dict(s.execute(select(Customer.id, Customer.tier).where(Customer.id.in_([1, 2, 3]))).all())
    assert tiers == {1: "diamond", 2: "silver", 3: "bronze"}
    # two abandoned callers due at the same time (silver first arrives, diamond second) and a resolved repair
    hub_events = [CallAbandoned(server="default", seq=i, at=clock.time(), uniqueid=f"u{i}", queue="hotline",
                                position=1, original_position=1, wait_seconds=40.0, holdtime=40,
                                caller_number=number, decision_id=None, customer_id=str(cid))
                  for i, (number, cid) in enumerate((("13912345678", 2), ("13800138000", 1)))]
    abandoned = AbandonedCallers(service)
    tickets = [asyncio.run(abandoned.on_event(e)) for e in hub_events]
    repair = asyncio.run(service.create(NewTicket(kind="repair", subject="r", customer_id=CHEN), ADMIN))["id"]
    for to in ("in_progress", "resolved"):
        asyncio.run(service.transition(repair, to, ADMIN))
    items = asyncio.run(service.callbacks(ADMIN))
    mine = [(i["type"], i["ticket_id"]) for i in items if i["ticket_id"] in (*tickets, repair)]
    # the hotline is open 24 h: the callbacks are due in 2 h, the resolution call back in 4 business hours
    assert mine == [("abandoned_call", tickets[1]), ("abandoned_call", tickets[0]), ("resolution_callback", repair)]
    first = next(i for i in items if i["ticket_id"] == tickets[1])
    assert first["customer"]["tier"] == "diamond" and first["phone"] == "+8613800138000"
    assert first["arrived_at"] == (MONDAY_10 - timedelta(seconds=40)).isoformat() and first["overdue"] is False
    task = next(i for i in items if i["ticket_id"] == repair)
    assert task["task_id"] is not None and task["phone"] and task["customer"]["id"] == CHEN


def test_abandoned_callers_get_one_callback_a_day(loaded: Any) -> None:
    _url, sessions = loaded
    service, clock, _ = make_service(sessions)
    abandoned = AbandonedCallers(service, owns=lambda event: event.server == "default")

    def hung_up(number: str | None, wait: float, server: str = "default") -> Any:
        return asyncio.run(abandoned.on_event(CallAbandoned(
            server=server, seq=1, at=clock.time(), uniqueid="1700000000.7", queue="bj-volvo-sales", position=2,
            original_position=3, wait_seconds=wait, holdtime=int(wait), caller_number=number, decision_id="d" * 16,
            customer_id=None)))

    assert hung_up("13700000001", 4.0) is None  # hung up quickly: no call back
    assert hung_up("anonymous", 60.0) is None  # nobody to call back
    assert hung_up("13700000001", 60.0, server="other") is None  # another node's Asterisk
    first = hung_up("13700000001", 60.0)
    assert hung_up("13700000001", 90.0) == first  # one per number and day
    with sessions() as s:
        t = s.get(Ticket, first)
        assert (t.kind, t.source, t.status, t.contact_e164) == ("callback", "abandoned_call", "new", "+8613700000001")
        assert t.store_id == store_id(sessions, "bj-volvo") and t.department == "sales"
        assert t.arrived_at == MONDAY_10 - timedelta(seconds=60)
        assert t.sla_due_at == MONDAY_10 + timedelta(hours=2)  # the sales line is open: due in 2 h
    assert notifications(sessions) == [("ticket.created", first)]


def test_an_abandoned_customers_callback_goes_to_their_home_store(loaded: Any) -> None:
    _url, sessions = loaded
    bj, sh = store_id(sessions, "bj-volvo"), store_id(sessions, "sh-bmw")
    with sessions.begin() as s:
        homed, homeless = Customer(name="上海车主", home_store_id=sh), Customer(name="无门店客户")
        s.add_all([homed, homeless])
        # sh-bmw's sales line opens at 14:00 this Monday: its hours, not the queue's store's, set the due time
        monday = s.scalars(select(BusinessHours).where(BusinessHours.store_id == sh, BusinessHours.line == "sales",
                                                        BusinessHours.weekday == 0)).one()
        monday.opens_at = monday.opens_at.replace(hour=14)
        s.flush()
        homed_id, homeless_id = homed.id, homeless.id
    service, clock, _ = make_service(sessions)
    abandoned = AbandonedCallers(service)

    def hung_up(number: str, customer_id: int | None) -> Ticket:
        ticket_id = asyncio.run(abandoned.on_event(CallAbandoned(
            server="default", seq=1, at=clock.time(), uniqueid=f"1700000000.{number}", queue="bj-volvo-sales",
            position=1, original_position=1, wait_seconds=60.0, holdtime=60, caller_number=number,
            decision_id="d" * 16, customer_id=str(customer_id) if customer_id is not None else None)))
        with sessions() as s:
            ticket = s.get(Ticket, ticket_id)
            assert ticket is not None
            return ticket

    home = hung_up("13700000011", homed_id)
    assert (home.store_id, home.department, home.customer_id) == (sh, "sales", homed_id)
    assert home.sla_due_at == local("2026-11-23T16:00")  # sh-bmw's sales line opens at 14:00, + 2 h
    for number, customer_id in (("13700000012", homeless_id), ("13700000013", None)):  # no home store; unknown
        ticket = hung_up(number, customer_id)
        assert (ticket.store_id, ticket.customer_id) == (bj, customer_id)
        assert ticket.sla_due_at == MONDAY_10 + timedelta(hours=2)  # bj-volvo's sales line is open


def test_vehicle_must_be_the_customers(loaded: Any) -> None:
    _url, sessions = loaded
    service, _clock, _ = make_service(sessions)
    with sessions() as s:
        zhang_car = s.scalars(select(Vehicle.id).where(Vehicle.customer_id == 1)).first()
    ok = asyncio.run(service.create(NewTicket(kind="repair", subject="x", customer_id=1, vehicle_id=zhang_car), ADMIN))
    assert ok["vehicle_id"] == zhang_car
    with pytest.raises(TicketError) as caught:
        asyncio.run(service.create(NewTicket(kind="repair", subject="x", customer_id=2, vehicle_id=zhang_car), ADMIN))
    assert caught.value.field == "vehicle_id"


def test_a_customers_ticket_without_a_store_is_their_home_stores(loaded: Any) -> None:
    _url, sessions = loaded
    # a store route: a complaint of bj-volvo's goes to sales; only a ticket that has the store takes it
    settings = TicketSettings.from_dict({"routes": [{"kind": "complaint", "store": "bj-volvo", "department": "sales"}]})
    service, _clock, _ = make_service(sessions, settings=settings)
    bj, sh = store_id(sessions, "bj-volvo"), store_id(sessions, "sh-bmw")
    with sessions.begin() as s:
        homed, homeless = Customer(name="北京车主", home_store_id=bj), Customer(name="无门店客户")
        s.add_all([homed, homeless])
        s.flush()
        homed_id, homeless_id = homed.id, homeless.id

    def create(**fields: Any) -> dict[str, Any]:
        return asyncio.run(service.create(NewTicket(kind="complaint", subject="home store", **fields), ADMIN))

    home = create(customer_id=homed_id)
    assert home["store"]["code"] == "bj-volvo" and home["department"] == "sales"  # routed as bj-volvo's
    assert notifications(sessions)[-1] == ("ticket.created", home["id"])
    with sessions() as s:
        assert s.scalars(select(Notification.payload).order_by(Notification.id.desc())).first()["ticket"][
            "store_id"] == bj
    given = create(customer_id=homed_id, store_id=sh)  # a store given wins
    assert given["store"]["code"] == "sh-bmw" and given["department"] == "service"
    assert create(customer_id=homeless_id)["store"] is None  # no home store: none
    assert create()["store"] is None  # no customer: none
    # the IVR's port too
    ivr = asyncio.run(service.create_ticket("repair", homed_id, None, "breakdown", "报修", "", "normal", "u-home"))
    with sessions() as s:
        assert s.get(Ticket, ivr).store_id == bj  # type: ignore[union-attr]

    # seen as bj-volvo's: its store manager and its sales staff see it, another store's do not
    def sees(who: Actor) -> bool:
        return home["id"] in {t["id"] for t in asyncio.run(service.find(who, limit=500))[0]}

    assert sees(Actor(50, "bj-manager", "supervisor", bj)) and sees(actor(sessions, "bj-volvo-sales01"))
    assert not sees(Actor(53, "sh-manager", "supervisor", sh)) and not sees(actor(sessions, "sh-bmw-sales01"))
    assert asyncio.run(service.get(home["id"], Actor(50, "bj-manager", "supervisor", bj)))["id"] == home["id"]
