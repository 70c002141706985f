"""/api/admin/…: stores, queues, DIDs and holidays changed and removed as they are added — the same checks, roles,
CSRF and audit — removal refused while something still uses the row, routing reloaded after each change."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from ccserver.db.models import AuditLog, BusinessHours, Campaign, Did, Holiday, Store, User
from ccserver.dialer.store import DialerStore
from tests.admin_support import SYSTEM, admin_db, login, page_session, store_database  # noqa: F401 - a fixture
from tests.test_admin_api import admin  # noqa: F401 - a fixture
from tests.web_support import call

ZH = {"Accept-Language": "zh-CN"}


def _audit(router, boss, action: str) -> list[dict]:
    return call(router, "GET", f"/api/admin/audit?action={action}", headers=boss).json()["entries"]


def _store_id(router, boss, code: str) -> int:
    return next(s["id"] for s in call(router, "GET", "/api/admin/stores", headers=boss).json()["stores"]
                if s["code"] == code)


def test_a_store_is_edited_with_the_add_checks_and_removed_only_when_unused(admin):  # noqa: F811
    router, _, sessions = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    made = call(router, "POST", "/api/admin/stores", headers=boss, json_body={
        "code": "gz-tpyo", "name": "广州丰田", "brand": "Toyota", "city": "Guangzhou", "time_zone": "Asia/Shanghai"})
    store_id = made.json()["result"]["id"]
    fixed = call(router, "PATCH", f"/api/admin/stores/{store_id}", headers=boss,
                 json_body={"code": "gz-toyota", "address": "天河路 1 号"})
    assert fixed.status == 200 and fixed.json()["reloaded"] is True
    assert fixed.json()["result"]["code"] == "gz-toyota" and fixed.json()["result"]["name"] == "广州丰田"
    entry = _audit(router, boss, "store.updated")[0]
    assert entry["detail"]["before"]["code"] == "gz-tpyo" and entry["detail"]["after"]["code"] == "gz-toyota"

    spoof = call(router, "PATCH", f"/api/admin/stores/{store_id}", headers=boss, json_body={"name": "广州\u202e店田丰"})
    assert spoof.status == 400 and spoof.json()["field"] == "name"
    two_lines = call(router, "PATCH", f"/api/admin/stores/{store_id}", headers=boss, json_body={"city": "广州\n深圳"})
    assert two_lines.status == 400 and two_lines.json()["field"] == "city"
    taken = call(router, "PATCH", f"/api/admin/stores/{store_id}", headers=boss, json_body={"code": "bj-volvo"})
    assert taken.status == 409 and taken.json()["field"] == "code"
    assert call(router, "PATCH", f"/api/admin/stores/{store_id}", headers=mgr, json_body={"name": "x"}).status == 403

    # Its hours and its own holiday go with it; nothing else names it.
    call(router, "PUT", "/api/admin/stores/gz-toyota/hours", headers=boss,
         json_body={"hours": [{"weekday": 0, "opens": "09:00", "closes": "18:00"}]})
    call(router, "POST", "/api/admin/calendar/holidays", headers=boss,
         json_body={"day": "2027-03-01", "name": "店庆", "store": "gz-toyota"})
    assert call(router, "DELETE", f"/api/admin/stores/{store_id}", headers=mgr).status == 403
    no_csrf = call(router, "DELETE", f"/api/admin/stores/{store_id}", headers=page_session(router, "boss"))
    assert no_csrf.status == 403 and "CSRF" in no_csrf.json()["error"]
    gone = call(router, "DELETE", f"/api/admin/stores/{store_id}", headers=boss)
    assert gone.status == 200 and gone.json()["reloaded"] is True
    with sessions() as s:
        assert s.get(Store, store_id) is None
        assert s.query(BusinessHours).filter_by(store_id=store_id).count() == 0
        assert s.query(Holiday).filter_by(store_id=store_id).count() == 0
    entry = _audit(router, boss, "store.deleted")[0]
    assert entry["target"] == "store:gz-toyota" and entry["detail"]["after"] is None
    assert call(router, "DELETE", f"/api/admin/stores/{store_id}", headers=boss).status == 404


def test_a_store_in_use_is_not_removed_and_the_reason_says_by_what(admin):  # noqa: F811
    router, _, sessions = admin
    boss = login(router, "boss")
    call(router, "POST", "/api/admin/queues", headers=boss, json_body={"name": "bj-sales", "store": "bj-volvo"})
    bj = _store_id(router, boss, "bj-volvo")
    refused = call(router, "DELETE", f"/api/admin/stores/{bj}", headers=boss)
    assert refused.status == 409
    assert refused.json()["error"] == ("store 'bj-volvo' is still used by 2 user(s), 1 queue(s): "
                                       "move or remove them first")
    in_chinese = call(router, "DELETE", f"/api/admin/stores/{bj}", headers={**boss, **ZH}).json()["error"]
    assert in_chinese == "门店 'bj-volvo' 仍被以下使用：2 个用户、1 个队列。请先将它们移走或删除", in_chinese
    with sessions() as s:
        assert s.get(Store, bj) is not None and s.query(User).filter_by(store_id=bj).count() == 2
    assert _audit(router, boss, "store.deleted") == []


def test_a_did_is_edited_with_the_add_checks_and_removed(admin):  # noqa: F811
    router, refresher, _ = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    call(router, "POST", "/api/admin/queues", headers=boss, json_body={"name": "sh-sales", "store": "sh-bmw"})
    theirs = call(router, "POST", "/api/admin/dids", headers=boss,
                  json_body={"number": "02158881000", "line": "sales", "store": "sh-bmw"}).json()["result"]["id"]
    mine = call(router, "POST", "/api/admin/dids", headers=mgr,
                json_body={"number": "01064882000", "line": "service", "store": "bj-volvo"}).json()["result"]["id"]
    bad = call(router, "PATCH", f"/api/admin/dids/{theirs}", headers=boss, json_body={"number": "call-me"})
    assert bad.status == 400 and bad.json()["field"] == "number"
    unknown = call(router, "PATCH", f"/api/admin/dids/{theirs}", headers=boss, json_body={"default_queue": "nope"})
    assert unknown.status == 400 and unknown.json()["field"] == "default_queue"
    ok = call(router, "PATCH", f"/api/admin/dids/{theirs}", headers=boss,
              json_body={"default_queue": "sh-sales", "description": "销售热线"})
    assert ok.status == 200 and refresher.current.did("02158881000").default_queue == "sh-sales"
    assert call(router, "PATCH", f"/api/admin/dids/{theirs}", headers=mgr, json_body={"line": "sales"}).status == 403
    assert call(router, "DELETE", f"/api/admin/dids/{theirs}", headers=mgr).status == 403
    agent = login(router, "li")
    assert call(router, "DELETE", f"/api/admin/dids/{mine}", headers=agent).status == 403
    assert call(router, "DELETE", f"/api/admin/dids/{mine}", headers=page_session(router, "mgr")).status == 403
    assert refresher.current.did("01064882000") is not None
    removed = call(router, "DELETE", f"/api/admin/dids/{mine}", headers=mgr)
    assert removed.status == 200 and refresher.current.did("01064882000") is None  # the next call: unknown DID
    assert _audit(router, boss, "did.deleted")[0]["detail"]["before"]["number"] == "01064882000"


def _campaign(sessions, name: str, status: str, store_id: int | None) -> None:
    with sessions.begin() as s:
        s.add(Campaign(name=name, type="maintenance", mode="progressive", status=status, queue="sales",
                       store_id=store_id, window={}, targets_spec={}))


@pytest.fixture
def org_db(db_url):
    """An empty database (SQLite, PostgreSQL) with two stores: its session factory."""
    from ccserver.admin import org

    with store_database(db_url) as sessions:
        org.save_store(sessions, SYSTEM, {"code": "sh-bmw", "name": "上海宝马", "brand": "x", "city": "x",
                                          "time_zone": "Asia/Shanghai"})
        yield sessions


def test_a_did_is_not_removed_while_a_calling_campaign_has_no_other_caller_id(org_db):
    """Campaigns call from their store's first DID, else the group's number (any DID, a group-wide one first:
    dialer/store.py caller_ids): removing the last number a running or paused campaign can call from is refused."""
    from ccserver.admin import org
    from ccserver.admin.users import AdminError

    sessions = org_db

    def did(number: str, store: str | None = None) -> int:
        return int(org.save_did(sessions, SYSTEM, {"number": number, "line": "sales", "store": store})["id"])

    bj_sales = did("01064881000", "bj-volvo")
    with sessions() as s:
        bj = s.scalars(select(Store.id).where(Store.code == "bj-volvo")).one()
    _campaign(sessions, "春季保养", "running", bj)
    _campaign(sessions, "老客回访", "paused", None)  # of no store: the group's number, here bj-volvo's DID
    _campaign(sessions, "草稿", "draft", bj)  # neither calls now nor will when resumed: not counted
    _campaign(sessions, "旧活动", "finished", bj)
    with pytest.raises(AdminError) as refused:
        org.delete_did(sessions, SYSTEM, bj_sales)
    assert refused.value.status == 409
    assert refused.value.message == ("DID 01064881000 is the last caller ID of the campaign(s) '春季保养', '老客回访': "
                                     "add another DID or finish them first")
    with sessions() as s:
        assert s.get(Did, bj_sales) is not None
        assert s.scalars(select(AuditLog).where(AuditLog.action == "did.deleted")).first() is None

    # Another DID of the store: the store's campaign calls from it, the others from the group's number.
    bj_service = did("01064882000", "bj-volvo")
    org.delete_did(sessions, SYSTEM, bj_sales)
    # The group's number: a store's campaign without a DID of its own falls back on it.
    group = did("4008001000")
    org.delete_did(sessions, SYSTEM, bj_service)
    assert [r.caller_id for r in DialerStore(sessions).running_campaigns()] == ["4008001000"]
    with pytest.raises(AdminError) as last:
        org.delete_did(sessions, SYSTEM, group)
    assert last.value.status == 409 and "'春季保养', '老客回访'" in last.value.message
    # Another store's DID is the group's number too when there is no group-wide one.
    sh_sales = did("02158881000", "sh-bmw")
    org.delete_did(sessions, SYSTEM, group)
    assert [r.caller_id for r in DialerStore(sessions).running_campaigns()] == ["02158881000"]
    # Only campaigns that call count: once they are finished the last DID goes.
    with sessions.begin() as s:
        s.execute(update(Campaign).where(Campaign.status.in_(("running", "paused"))).values(status="finished"))
    org.delete_did(sessions, SYSTEM, sh_sales)
    with sessions() as s:
        assert s.scalars(select(Did)).first() is None


def test_removing_a_campaigns_last_did_is_refused_over_http_in_the_readers_language(admin):  # noqa: F811
    router, refresher, sessions = admin
    boss = login(router, "boss")
    did = call(router, "POST", "/api/admin/dids", headers=boss,
               json_body={"number": "01064881000", "line": "sales", "store": "bj-volvo"}).json()["result"]["id"]
    _campaign(sessions, "春季保养", "running", _store_id(router, boss, "bj-volvo"))
    refused = call(router, "DELETE", f"/api/admin/dids/{did}", headers=boss)
    assert refused.status == 409
    assert refused.json()["error"] == ("DID 01064881000 is the last caller ID of the campaign(s) '春季保养': "
                                       "add another DID or finish them first")
    in_chinese = call(router, "DELETE", f"/api/admin/dids/{did}", headers={**boss, **ZH}).json()["error"]
    assert in_chinese == "DID 01064881000 是 外呼活动 '春季保养' 仅剩的来电显示号码。请先添加其他 DID，或结束这些活动"
    assert refresher.current.did("01064881000") is not None and _audit(router, boss, "did.deleted") == []
    call(router, "POST", "/api/admin/dids", headers=boss, json_body={"number": "4008001000", "line": "sales"})
    removed = call(router, "DELETE", f"/api/admin/dids/{did}", headers=boss)
    assert removed.status == 200 and refresher.current.did("01064881000") is None


def test_a_queue_is_edited_and_removed_only_when_nothing_routes_to_it(admin):  # noqa: F811
    router, refresher, _ = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    queue = call(router, "POST", "/api/admin/queues", headers=mgr,
                 json_body={"name": "bj-sales", "store": "bj-volvo", "line": "sales"}).json()["result"]["id"]
    other = call(router, "POST", "/api/admin/queues", headers=boss,
                 json_body={"name": "sh-sales", "store": "sh-bmw"}).json()["result"]["id"]
    bad = call(router, "PATCH", f"/api/admin/queues/{queue}", headers=mgr, json_body={"name": "bj sales;Action"})
    assert bad.status == 400 and bad.json()["field"] == "name"
    bidi = call(router, "PATCH", f"/api/admin/queues/{queue}", headers=mgr, json_body={"description": "a\u2067b"})
    assert bidi.status == 400 and bidi.json()["field"] == "description"
    ok = call(router, "PATCH", f"/api/admin/queues/{queue}", headers=mgr,
              json_body={"name": "bj-sales-1", "description": "北京销售"})
    assert ok.status == 200 and ok.json()["result"]["name"] == "bj-sales-1"
    assert _audit(router, boss, "queue.updated")[0]["detail"]["before"]["name"] == "bj-sales"

    did = call(router, "POST", "/api/admin/dids", headers=mgr, json_body={
        "number": "01064881000", "line": "sales", "store": "bj-volvo", "default_queue": "bj-sales-1"}).json()
    refused = call(router, "DELETE", f"/api/admin/queues/{queue}", headers=mgr)
    assert refused.status == 409 and "the DID(s) 01064881000 (default queue)" in refused.json()["error"]
    assert "01064881000" in call(router, "DELETE", f"/api/admin/queues/{queue}", headers={**mgr, **ZH}).json()["error"]
    call(router, "PATCH", f"/api/admin/dids/{did['result']['id']}", headers=mgr, json_body={"default_queue": None})
    call(router, "PUT", "/api/admin/routing-rules", headers=boss, json_body={"rules": {"fallback_queue": "bj-sales-1"}})
    by_rules = call(router, "DELETE", f"/api/admin/queues/{queue}", headers=mgr)
    assert by_rules.status == 409 and "routing.fallback_queue" in by_rules.json()["error"]
    call(router, "DELETE", "/api/admin/routing-rules", headers=boss)

    assert call(router, "DELETE", f"/api/admin/queues/{other}", headers=mgr).status == 403
    assert call(router, "DELETE", f"/api/admin/queues/{queue}", headers=login(router, "li")).status == 403
    assert call(router, "DELETE", f"/api/admin/queues/{queue}", headers=page_session(router, "mgr")).status == 403
    gone = call(router, "DELETE", f"/api/admin/queues/{queue}", headers=mgr)
    assert gone.status == 200 and gone.json()["reloaded"] is True
    assert [q["name"] for q in call(router, "GET", "/api/admin/queues", headers=boss).json()["queues"]] == ["sh-sales"]
    assert _audit(router, boss, "queue.deleted")[0]["target"] == "queue:bj-sales-1"
    assert refresher.current.did("01064881000").default_queue == "sales"  # the line's, as with no queue set


def test_a_holiday_is_edited_and_removed_and_routing_sees_it(admin):  # noqa: F811
    router, refresher, _ = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    call(router, "POST", "/api/admin/dids", headers=boss,
         json_body={"number": "01064881000", "line": "sales", "store": "bj-volvo"})
    call(router, "PUT", "/api/admin/stores/bj-volvo/hours", headers=mgr,  # (a store without hours is always open)
         json_body={"hours": [{"weekday": d, "opens": "09:00", "closes": "18:00"} for d in range(7)]})
    route = refresher.current.did("01064881000")
    tuesday_noon = dt.datetime(2027, 3, 2, 4, 0, tzinfo=dt.UTC)  # 12:00 in Beijing
    day = call(router, "POST", "/api/admin/calendar/holidays", headers=mgr,
               json_body={"day": "2027-03-01", "name": "店庆", "store": "bj-volvo"}).json()["result"]["id"]
    group = call(router, "POST", "/api/admin/calendar/holidays", headers=boss,
                 json_body={"day": "2027-05-01", "name": "劳动节"}).json()["result"]["id"]
    assert refresher.current.is_open(route, tuesday_noon)
    moved = call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=mgr,
                 json_body={"day": "2027-03-02", "name": "店庆日"})
    assert moved.status == 200 and moved.json()["result"] == {"id": day, "day": "2027-03-02", "name": "店庆日",
                                                              "store": "bj-volvo"}
    assert not refresher.current.is_open(route, tuesday_noon)  # reloaded: the new day is closed
    bad = call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=mgr, json_body={"day": "2027-02-30"})
    assert bad.status == 400 and bad.json()["field"] == "day"
    spoof = call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=mgr, json_body={"name": "a\u202eb"})
    assert spoof.status == 400 and spoof.json()["field"] == "name"
    empty = call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=mgr, json_body={"name": ""})
    assert empty.status == 400 and empty.json()["field"] == "name"
    call(router, "POST", "/api/admin/calendar/holidays", headers=mgr,
         json_body={"day": "2027-03-03", "name": "x", "store": "bj-volvo"})
    clash = call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=mgr, json_body={"day": "2027-03-03"})
    assert clash.status == 409
    # A group-wide day is an admin's, and a day cannot move to another store: refused as a change (not an add),
    # in the reader's language; a delete as a delete.
    changing = "a store manager may only change their own store's days"
    for day_id, body in ((group, {"name": "五一"}), (day, {"store": "sh-bmw"}), (day, {"store": None})):
        refused = call(router, "PATCH", f"/api/admin/calendar/holidays/{day_id}", headers=mgr, json_body=body)
        assert refused.status == 403 and refused.json()["error"] == changing, body
    refused = call(router, "PATCH", f"/api/admin/calendar/holidays/{group}", headers={**mgr, **ZH},
                   json_body={"name": "五一"})
    assert refused.status == 403 and refused.json()["error"] == "门店经理只能修改本门店的日期"
    refused = call(router, "DELETE", f"/api/admin/calendar/holidays/{group}", headers=mgr)
    assert refused.status == 403 and refused.json()["error"] == "a store manager may only delete their own store's days"
    refused = call(router, "DELETE", f"/api/admin/calendar/holidays/{group}", headers={**mgr, **ZH})
    assert refused.status == 403 and refused.json()["error"] == "门店经理只能删除本门店的日期"
    added = call(router, "POST", "/api/admin/calendar/holidays", headers={**mgr, **ZH},
                 json_body={"day": "2027-03-09", "name": "x"})  # group-wide: an admin's to add
    assert added.status == 403 and added.json()["error"] == "门店经理只能为自己的门店添加日期"
    assert call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=login(router, "li"),
                json_body={"name": "x"}).status == 403
    assert call(router, "PATCH", f"/api/admin/calendar/holidays/{day}", headers=page_session(router, "mgr"),
                json_body={"name": "x"}).status == 403
    assert call(router, "DELETE", f"/api/admin/calendar/holidays/{day}", headers=page_session(router, "mgr")
                ).status == 403
    assert [e["detail"]["before"]["day"] for e in _audit(router, boss, "holiday.updated")] == ["2027-03-01"]
    gone = call(router, "DELETE", f"/api/admin/calendar/holidays/{day}", headers=mgr)
    assert gone.status == 200 and refresher.current.is_open(route, tuesday_noon)
    days = call(router, "GET", "/api/admin/calendar?year=2027", headers=boss).json()["holidays"]
    assert [d["day"] for d in days] == ["2027-03-03", "2027-05-01"]

    makeup = call(router, "POST", "/api/admin/calendar/makeup_workdays", headers=boss,
                  json_body={"day": "2027-02-07", "name": "春节调休"}).json()["result"]["id"]
    renamed = call(router, "PATCH", f"/api/admin/calendar/makeup_workdays/{makeup}", headers=boss,
                   json_body={"day": "2027-02-20", "store": "sh-bmw"})
    assert renamed.status == 200 and renamed.json()["result"]["store"] == "sh-bmw"
    assert _audit(router, boss, "makeup_workday.updated")[0]["detail"]["after"]["day"] == "2027-02-20"
    assert call(router, "PATCH", f"/api/admin/calendar/birthdays/{makeup}", headers=boss,
                json_body={"name": "x"}).status == 404


def test_removal_on_the_demo_data_in_sqlite_and_postgresql(loaded):
    """What refuses a removal is counted by each database alike; a removed store's hours and days go with it."""
    from sqlalchemy import select

    from ccserver.admin import org
    from ccserver.admin.users import Actor, AdminError
    from ccserver.db.models import Did, Queue

    _, sessions = loaded
    actor = Actor(None, "test")
    with sessions() as s:
        first = s.scalars(select(Store).order_by(Store.id)).first()
        routed = s.scalars(select(Queue).where(Queue.id.in_(select(Did.default_queue_id)))).first()
    with pytest.raises(AdminError) as store_refused:
        org.delete_store(sessions, actor, first.id)
    assert store_refused.value.status == 409
    assert "user(s)" in store_refused.value.message and "customer(s)" in store_refused.value.message
    assert routed is not None
    with pytest.raises(AdminError) as queue_refused:
        org.delete_queue(sessions, actor, routed.id)
    assert queue_refused.value.status == 409 and "(default queue)" in queue_refused.value.message
    made = org.save_store(sessions, actor, {"code": "zz-new", "name": "新店", "brand": "x", "city": "x",
                                            "time_zone": "Asia/Shanghai"})
    org.set_hours(sessions, actor, "zz-new", [{"weekday": 1, "opens": "09:00", "closes": "17:00"}])
    org.add_day(sessions, actor, "makeup_workdays", {"day": "2027-02-07", "name": "调休", "store": "zz-new"})
    org.delete_store(sessions, actor, made["id"])
    with sessions() as s:
        assert s.get(Store, made["id"]) is None and s.get(Store, first.id) is not None
        assert s.query(BusinessHours).filter_by(store_id=made["id"]).count() == 0


def test_a_page_session_changes_and_removes_only_from_our_own_origin(admin):  # noqa: F811
    router, _, _ = admin
    boss = login(router, "boss")
    host = {"Host": "cc.example.com"}
    page = page_session(router, "boss")
    token = call(router, "GET", "/api/me", headers={**page, **host}).json()["csrf_token"]
    session = {**page, **host, "X-CSRF-Token": token}
    store = call(router, "POST", "/api/admin/stores", headers=boss, json_body={
        "code": "gz-toyota", "name": "广州丰田", "brand": "Toyota", "city": "Guangzhou", "time_zone": "Asia/Shanghai"})
    day = call(router, "POST", "/api/admin/calendar/holidays", headers=boss,
               json_body={"day": "2027-03-01", "name": "店庆", "store": "gz-toyota"}).json()["result"]["id"]
    evil = {**session, "Origin": "https://evil.example"}
    own = {**session, "Origin": "http://cc.example.com"}
    store_path, day_path = f"/api/admin/stores/{store.json()['result']['id']}", f"/api/admin/calendar/holidays/{day}"
    for method, path, body in (("PATCH", store_path, {"name": "x"}), ("PATCH", day_path, {"name": "x"}),
                               ("DELETE", day_path, None), ("DELETE", store_path, None)):
        refused = call(router, method, path, headers=evil, json_body=body)
        assert refused.status == 403 and refused.json()["error"] == "origin not allowed", (method, path)
    for method, path, body in (("PATCH", store_path, {"name": "广州丰田4S店"}),
                               ("PATCH", day_path, {"name": "周年店庆"}),
                               ("DELETE", day_path, None), ("DELETE", store_path, None)):
        assert call(router, method, path, headers=own, json_body=body).status == 200, (method, path)
    entries = call(router, "GET", "/api/admin/audit?target=store:gz-toyota", headers=boss).json()["entries"]
    assert [e["action"] for e in entries] == ["store.deleted", "store.updated", "store.created"]
    assert entries[1]["actor"] == "boss" and entries[1]["detail"]["after"]["name"] == "广州丰田4S店"


# Each refusal of a user's create or edit names the form field to blame (the page marks that input).
USER_REFUSALS = (
    ("POST", "/api/admin/users", {"role": "agent", "password": "initial-pass"}, "username"),
    ("POST", "/api/admin/users", {"username": "a b", "role": "agent", "password": "initial-pass"}, "username"),
    ("POST", "/api/admin/users", {"username": "li", "role": "agent", "password": "initial-pass"}, "username"),
    ("POST", "/api/admin/users", {"username": "new.one", "password": "initial-pass"}, "role"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "wizard", "password": "initial-pass"}, "role"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "short"}, "password"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": 12345678}, "password"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "store": "nowhere"}, "store"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "store": True}, "store"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "extension": "12ab"}, "extension"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "extension": "8101"}, "extension"),  # li's
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "interface": "PJSIP/8\r\nAction: x"}, "interface"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "skills": "sales"}, "skills"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "languages": ["zh", "fr"]}, "languages"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "display_name": "a\nb"}, "display_name"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "department": "x" * 41}, "department"),
    ("PATCH", "/api/admin/users/chen", {"role": "wizard"}, "role"),
    ("PATCH", "/api/admin/users/chen", {"display_name": ""}, "display_name"),
    ("PATCH", "/api/admin/users/chen", {"display_name": "a\u0000b"}, "display_name"),
    ("PATCH", "/api/admin/users/chen", {"display_name": "张\u202e伟"}, "display_name"),
    ("PATCH", "/api/admin/users/chen", {"department": "x\u2066y"}, "department"),
    ("PATCH", "/api/admin/users/chen", {"store": "nowhere"}, "store"),
    ("PATCH", "/api/admin/users/chen", {"extension": 8101}, "extension"),
    ("PATCH", "/api/admin/users/chen", {"extension": "8101"}, "extension"),
    ("PATCH", "/api/admin/users/chen", {"interface": "no interface"}, "interface"),
    ("PATCH", "/api/admin/users/chen", {"languages": "zh"}, "languages"),
    ("PATCH", "/api/admin/users/chen", {"skills": [""]}, "skills"),
    ("PATCH", "/api/admin/users/chen", {"department": 7}, "department"),
    ("PATCH", "/api/admin/users/nobody", {"department": "x"}, "username"),
    ("POST", "/api/admin/users/chen/password", {"password": "short"}, "password"),
    ("POST", "/api/admin/users/nobody/password", {"password": "long-enough-1"}, "username"),
    ("POST", "/api/admin/users/chen/deactivate", {"reassign_to": "nobody"}, "reassign_to"),
    ("POST", "/api/admin/users/chen/deactivate", {"reassign_to": "chen"}, "reassign_to"),
    ("POST", "/api/admin/users/chen/deactivate", {"reassign_to": 7}, "reassign_to"),
    ("POST", "/api/admin/users/boss/deactivate", {}, "username"),  # oneself
)

# A store manager's refusals too: roles and stores they may not give, users they may not change.
MANAGER_REFUSALS = (
    ("POST", "/api/admin/users", {"username": "new.one", "role": "supervisor", "password": "initial-pass"}, "role"),
    ("POST", "/api/admin/users", {"username": "new.one", "role": "agent", "password": "initial-pass",
                                  "store": "sh-bmw"}, "store"),
    ("PATCH", "/api/admin/users/li", {"role": "admin"}, "role"),
    ("PATCH", "/api/admin/users/chen", {"department": "x"}, "username"),  # another store's
    ("PATCH", "/api/admin/users/mgr", {"department": "x"}, "username"),  # a supervisor: an admin's to change
    ("POST", "/api/admin/users/li/deactivate", {"reassign_to": "chen"}, "reassign_to"),
)


def test_every_user_refusal_names_its_field(admin):  # noqa: F811
    router, _, _ = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    assert call(router, "PATCH", "/api/admin/users/li", headers=boss, json_body={"extension": "8101"}).status == 200
    for who, cases in ((boss, USER_REFUSALS), (mgr, MANAGER_REFUSALS)):
        for method, path, body, field in cases:
            reply = call(router, method, path, headers={**who, **ZH}, json_body=body)
            assert reply.status in (400, 403, 404, 409), (method, path, body, reply.status)
            assert reply.json().get("field") == field, (method, path, body, reply.json())
    names = {u["username"] for u in call(router, "GET", "/api/admin/users", headers=boss).json()["users"]}
    # none was made (skills given as one string are refused, not split into letters)
    assert "new.one" not in names and {"li", "chen", "boss"} <= names


def test_a_store_manager_is_offered_only_what_the_api_lets_them_do(admin):  # noqa: F811
    router, _, _ = admin
    boss, mgr = page_session(router, "boss"), page_session(router, "mgr")

    def page(who, section: str):
        return call(router, "GET", f"/admin/{section}", headers=who)

    stores = page(mgr, "stores")
    assert stores.status == 200 and 'id="store-form"' not in stores.body.decode()  # adding a store: an admin's
    assert 'id="store-form"' in page(boss, "stores").body.decode()
    dids = page(mgr, "dids").body.decode()  # their queues and DIDs are their store's: the field is fixed
    assert dids.count('<input name="store" readonly value="bj-volvo">') == 2
    assert '<input name="store" readonly' not in page(boss, "dids").body.decode()
    calendar = page(mgr, "calendar").body.decode()
    assert calendar.count('readonly value="bj-volvo"') == 3  # the hours', the holidays', the make-up days'
    assert calendar.count('data-changeable="store:bj-volvo"') == 2 and 'id="import-year"' not in calendar
    users = page(mgr, "users").body.decode()
    assert 'data-changeable="role:agent,department"' in users
    assert '<option value="supervisor">' not in users and '<option value="agent">' in users
    assert 'data-changeable' not in page(boss, "users").body.decode()
    for section in ("routing", "codes", "data", "audit"):  # pages made of admin actions only
        assert page(mgr, section).status == 403, section
        assert page(boss, section).status == 200, section
    assert page(page_session(router, "floating"), "stores").status == 403  # a supervisor without a store

    # What the fixed field sends, their store's code, is accepted as theirs; another store still is not.
    api = login(router, "mgr")
    made = call(router, "POST", "/api/admin/users", headers=api, json_body={
        "username": "bj.agent", "role": "agent", "password": "initial-pass", "store": "bj-volvo"})
    assert made.status == 201 and made.json()["result"]["store"] == "bj-volvo"
    edited = call(router, "PATCH", "/api/admin/users/bj.agent", headers=api, json_body={"store": "bj-volvo"})
    assert edited.status == 200
    elsewhere = call(router, "PATCH", "/api/admin/users/bj.agent", headers=api, json_body={"store": "sh-bmw"})
    assert elsewhere.status == 403 and elsewhere.json()["field"] == "store"
    nowhere = call(router, "PATCH", "/api/admin/users/bj.agent", headers=api, json_body={"store": "nowhere"})
    assert nowhere.status == 404 and nowhere.json()["field"] == "store"
