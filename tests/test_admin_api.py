"""/api/admin/…: validated, audited edits that routing picks up at once; store managers limited to their store."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from ccserver.admin import org
from ccserver.admin import users as admin_users
from ccserver.admin.reload import ConfigReloads
from ccserver.callrouting.directory_data import RoutingData, RoutingDataRefresher
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from tests.admin_support import SYSTEM, add_user, admin_db, login, page_session  # noqa: F401 - admin_db is a fixture
from tests.web_support import LOOP, call, inline_blocking, make_context


@pytest.fixture
def admin(admin_db):  # noqa: F811
    """admin_db with a second store (sh-bmw), an admin, store managers and agents; the router over it."""
    sessions = admin_db
    org.save_store(sessions, SYSTEM, {"code": "sh-bmw", "name": "上海宝马", "brand": "BMW", "city": "Shanghai",
                                      "time_zone": "Asia/Shanghai"})
    for name, role, store in (("boss", "admin", None), ("mgr", "supervisor", "bj-volvo"),
                              ("floating", "supervisor", None), ("li", "agent", "bj-volvo"),
                              ("chen", "agent", "sh-bmw")):
        add_user(sessions, name, role, store=store)
    refresher = RoutingDataRefresher(lambda: RoutingData.load(sessions), inline_blocking)
    reloads = ConfigReloads(None)
    reloads.on_reload(refresher.reload_now)
    from ccserver.admin import rules as admin_rules

    async def reload_rules() -> None:  # as ccserver/server.py does: the routing service gets the new rules
        refresher.rules = admin_rules.effective(sessions, None)

    reloads.on_reload(reload_rules)
    ctx = make_context(SQLUserStore(sessions))
    ctx.session_factory = sessions
    ctx.admin_reload = reloads
    return build_router(ctx), refresher, sessions


def test_a_new_did_is_refused_with_the_reason_then_routes_the_next_call(admin):
    router, refresher, _ = admin
    boss = login(router, "boss")
    store = call(router, "POST", "/api/admin/stores", headers=boss, json_body={
        "code": "sz-byd", "name": "深圳比亚迪4S店", "brand": "BYD", "city": "Shenzhen", "time_zone": "Asia/Shanghai"})
    assert store.status == 201 and store.json()["result"]["code"] == "sz-byd"
    bad_tz = call(router, "POST", "/api/admin/stores", headers=boss, json_body={
        "code": "x1", "name": "x", "brand": "x", "city": "x", "time_zone": "Mars/Olympus"})
    assert bad_tz.status == 400 and "unknown time zone" in bad_tz.json()["error"]
    spoof = call(router, "POST", "/api/admin/stores", headers=boss, json_body={  # U+202E: shows reversed
        "code": "x2", "name": "深圳\u202e店4S迪亚比", "brand": "x", "city": "x", "time_zone": "Asia/Shanghai"})
    assert spoof.status == 400 and "name" in spoof.json()["error"]
    did = {"number": "075586001000", "line": "sales", "store": "sz-byd", "default_queue": "sz-sales"}
    refused = call(router, "POST", "/api/admin/dids", headers=boss, json_body=did)
    assert refused.status == 400 and "unknown queue 'sz-sales'" in refused.json()["error"]
    assert refresher.current.did("075586001000") is None
    queue = call(router, "POST", "/api/admin/queues", headers=boss,
                 json_body={"name": "sz-sales", "store": "sz-byd", "line": "sales"})
    assert queue.status == 201
    created = call(router, "POST", "/api/admin/dids", headers=boss, json_body=did)
    assert created.status == 201 and created.json()["reloaded"] is True
    route = refresher.current.did("075586001000")  # no restart, no 60 s wait
    assert route is not None and route.default_queue == "sz-sales" and route.line == "sales"
    dup = call(router, "POST", "/api/admin/dids", headers=boss, json_body=did)
    assert dup.status == 409
    did_id = created.json()["result"]["id"]
    moved = call(router, "PATCH", f"/api/admin/dids/{did_id}", headers=boss, json_body={"line": "service"})
    assert moved.status == 200 and refresher.current.did("075586001000").line == "service"
    entries = call(router, "GET", "/api/admin/audit?action=did.", headers=boss).json()["entries"]
    assert [e["action"] for e in entries] == ["did.updated", "did.created"]
    assert entries[0]["actor"] == "boss" and entries[0]["detail"]["before"]["line"] == "sales"
    assert entries[0]["detail"]["after"]["line"] == "service"


def test_hours_are_validated_and_take_effect(admin):
    router, refresher, _ = admin
    boss = login(router, "boss")
    call(router, "POST", "/api/admin/queues", headers=boss, json_body={"name": "bj-sales", "store": "bj-volvo"})
    call(router, "POST", "/api/admin/dids", headers=boss,
         json_body={"number": "01064881000", "line": "sales", "store": "bj-volvo", "default_queue": "bj-sales"})
    bad = call(router, "PUT", "/api/admin/stores/bj-volvo/hours", headers=boss,
               json_body={"hours": [{"weekday": 0, "opens": "25:00", "closes": "09:00"}]})
    assert bad.status == 400 and "hours row 1: opens '25:00' is not a time" in bad.json()["error"]
    weekday = call(router, "PUT", "/api/admin/stores/bj-volvo/hours", headers=boss,
                   json_body={"hours": [{"weekday": 7, "opens": "09:00", "closes": "18:00"}]})
    assert weekday.status == 400 and "weekday must be 0 (Monday) to 6" in weekday.json()["error"]
    hours = [{"weekday": d, "opens": "09:00", "closes": "18:00"} for d in range(7)]
    ok = call(router, "PUT", "/api/admin/stores/bj-volvo/hours", headers=boss, json_body={"hours": hours})
    assert ok.status == 200 and len(ok.json()["result"]["hours"]) == 7
    import datetime as dt

    route = refresher.current.did("01064881000")
    assert route is not None
    at_night = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)  # 23:00 in Beijing
    at_noon = dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC)
    assert not refresher.current.is_open(route, at_night) and refresher.current.is_open(route, at_noon)
    days = call(router, "GET", "/api/admin/calendar?year=2027", headers=boss).json()
    assert days["provisional"] is True and days["holidays"] == []
    imported = call(router, "POST", "/api/admin/calendar/import", headers=boss, json_body={"year": 2026})
    assert imported.status == 200 and imported.json()["result"]["holidays"] > 20
    assert not refresher.current.is_open(route, dt.datetime(2026, 10, 2, 4, 0, tzinfo=dt.UTC))  # National Day


def test_a_store_manager_is_limited_to_their_store(admin):
    router, _, _ = admin
    boss, mgr = login(router, "boss"), login(router, "mgr")
    call(router, "POST", "/api/admin/queues", headers=boss, json_body={"name": "sh-sales", "store": "sh-bmw"})
    assert call(router, "POST", "/api/admin/stores", headers=mgr, json_body={"code": "zz"}).status == 403
    assert call(router, "GET", "/api/admin/stores", headers=mgr).json()["stores"][0]["code"] == "bj-volvo"
    other = call(router, "POST", "/api/admin/dids", headers=mgr,
                 json_body={"number": "02158881000", "line": "sales", "store": "sh-bmw"})
    assert other.status == 403 and "another store" in other.json()["error"]
    own = call(router, "POST", "/api/admin/dids", headers=mgr,
               json_body={"number": "01064882000", "line": "service", "store": "bj-volvo"})
    assert own.status == 201
    users = {u["username"] for u in call(router, "GET", "/api/admin/users", headers=mgr).json()["users"]}
    assert users == {"mgr", "li"}
    made = call(router, "POST", "/api/admin/users", headers=mgr,
                json_body={"username": "new.agent", "role": "agent", "password": "initial-pass", "extension": "8101"})
    assert made.status == 201 and made.json()["result"]["store"] == "bj-volvo"
    assert made.json()["result"]["must_change_password"] is True
    escalate = call(router, "POST", "/api/admin/users", headers=mgr,
                    json_body={"username": "evil", "role": "admin", "password": "initial-pass"})
    assert escalate.status == 403
    assert call(router, "POST", "/api/admin/users/chen/deactivate", headers=mgr, json_body={}).status == 404
    assert call(router, "GET", "/api/admin/audit", headers=mgr).status == 403
    floating = login(router, "floating")
    assert call(router, "GET", "/api/admin/dids", headers=floating).status == 403
    li = login(router, "li")
    assert call(router, "GET", "/api/admin/dids", headers=li).status == 403


def test_users_reset_and_deactivate_with_reassignment(admin):
    router, _, sessions = admin
    boss = login(router, "boss")
    li = login(router, "li")
    from ccserver.db.models import Customer

    with sessions.begin() as s:
        li_id = admin_users.list_users(sessions)[[u["username"] for u in admin_users.list_users(sessions)]
                                                 .index("li")]["id"]
        s.add_all([Customer(name=f"c{n}", sales_consultant_id=li_id) for n in range(3)])
    reset = call(router, "POST", "/api/admin/users/li/password", headers=boss, json_body={"password": "short"})
    assert reset.status == 400
    gone = call(router, "POST", "/api/admin/users/li/deactivate", headers=boss, json_body={"reassign_to": "mgr"})
    assert gone.status == 200 and gone.json()["result"]["sales_customers"] == 3
    assert call(router, "GET", "/api/me", headers=li).status == 401  # their session ended
    edited = call(router, "PATCH", "/api/admin/users/chen", headers=boss,
                  json_body={"skills": ["vip"], "languages": ["zh", "en"], "interface": "PJSIP/8202"})
    assert edited.status == 200 and edited.json()["result"]["interface"] == "PJSIP/8202"
    bad = call(router, "PATCH", "/api/admin/users/chen", headers=boss, json_body={"interface": "PJSIP/8\r\nAction"})
    assert bad.status == 400


def test_export_is_role_limited_and_audited(admin):
    router, _, sessions = admin
    from ccserver.db.models import Customer, Store

    with sessions.begin() as s:
        stores = {c: i for i, c in s.query(Store.id, Store.code)}
        s.add_all([Customer(name="北京客户", home_store_id=stores["bj-volvo"]),
                   Customer(name="=HYPERLINK(1)", home_store_id=stores["sh-bmw"])])
    boss, mgr = login(router, "boss"), login(router, "mgr")
    reply = call(router, "GET", "/api/admin/export/customers", headers=boss)
    assert reply.status == 200 and reply.header("content-type").startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.body.decode("utf-8-sig"))))
    assert {r["name"] for r in rows} == {"北京客户", "'=HYPERLINK(1)"}  # no formula reaches a spreadsheet
    mine = call(router, "GET", "/api/admin/export/customers", headers=mgr)
    assert [r["name"] for r in csv.DictReader(io.StringIO(mine.body.decode("utf-8-sig")))] == ["北京客户"]
    assert call(router, "GET", "/api/admin/export/tickets", headers=login(router, "chen")).status == 403
    entries = call(router, "GET", "/api/admin/audit?action=crm.exported", headers=boss).json()["entries"]
    assert len(entries) == 2


def test_cookie_sessions_need_the_csrf_token(admin):
    router, _, _ = admin
    refused = call(router, "POST", "/api/admin/stores", headers=page_session(router, "boss"),
                   json_body={"code": "zz"})
    assert refused.status == 403 and "CSRF" in refused.json()["error"]


def test_a_reload_reaches_the_other_nodes_over_redis(redis_url):
    import redis.asyncio as aioredis

    async def scenario() -> tuple[int, int]:
        a_client, b_client = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        a, b = ConfigReloads(a_client, node="a"), ConfigReloads(b_client, node="b")
        heard = asyncio.Event()

        async def b_reload() -> None:
            heard.set()

        a_calls: list[int] = []

        async def a_reload() -> None:
            a_calls.append(1)

        a.on_reload(a_reload)
        b.on_reload(b_reload)
        await a.start()
        await b.start()
        await asyncio.wait_for(asyncio.gather(a.subscribed.wait(), b.subscribed.wait()), 5)
        assert await a.publish("did") is True
        await asyncio.wait_for(heard.wait(), 5)
        await a.stop()
        await b.stop()
        await a_client.aclose()
        await b_client.aclose()
        return len(a_calls), b.applied

    a_count, b_count = LOOP.run_until_complete(scenario())
    assert a_count == 1 and b_count == 1  # the sender reloaded once (not again from its own message)


def test_routing_rules_are_validated_stored_and_reloaded(admin):
    router, refresher, _ = admin
    boss = login(router, "boss")
    call(router, "POST", "/api/admin/queues", headers=boss, json_body={"name": "bj-vip", "store": "bj-volvo"})
    unknown = call(router, "PUT", "/api/admin/routing-rules", headers=boss,
                   json_body={"rules": {"queues": {"sales": {"diamond": "nope"}}}})
    assert unknown.status == 400
    assert unknown.json()["error"].startswith("routing.queues.sales.diamond: unknown queue 'nope'")
    broken = call(router, "PUT", "/api/admin/routing-rules", headers=boss,
                  json_body={"rules": {"priority": {"gold": "high"}}})
    assert broken.status == 400 and broken.json()["error"].startswith("routing.priority.gold")
    assert call(router, "GET", "/api/admin/routing-rules", headers=boss).json()["source"] == "file"
    ok = call(router, "PUT", "/api/admin/routing-rules", headers=boss,
              json_body={"rules": {"queues": {"sales": {"diamond": "bj-vip"}}, "fallback_queue": "bj-vip"}})
    assert ok.status == 200 and ok.json()["reloaded"] is True
    assert refresher.rules.queues["sales"]["diamond"] == "bj-vip"  # what the next call is routed by
    shown = call(router, "GET", "/api/admin/routing-rules", headers=boss).json()
    assert shown["source"] == "admin" and shown["rules"]["fallback_queue"] == "bj-vip"
    mgr = login(router, "mgr")
    assert call(router, "PUT", "/api/admin/routing-rules", headers=mgr, json_body={"rules": {}}).status == 403
    assert call(router, "DELETE", "/api/admin/routing-rules", headers=boss).status == 200
    assert refresher.rules.fallback_queue == "default"
    actions = [e["action"] for e in call(router, "GET", "/api/admin/audit?target=setting:", headers=boss)
               .json()["entries"]]
    assert actions == ["routing_rules.reset", "routing_rules.updated"]


def test_ivr_menus_are_validated_stored_and_reset(admin):
    router, _, _ = admin
    boss = login(router, "boss")
    assert call(router, "GET", "/api/admin/ivr", headers=boss).json()["source"] == "file"
    broken = call(router, "PUT", "/api/admin/ivr", headers=boss,
                  json_body={"ivr": {"lines": {"hotline": "menu:nowhere"}}})
    assert broken.status == 400 and broken.json()["error"].startswith("ivr.lines.hotline")
    assert "nowhere" in broken.json()["error"]
    ok = call(router, "PUT", "/api/admin/ivr", headers=boss,
              json_body={"ivr": {"timeout_ms": 4000, "lines": {"hotline": "menu:main", "sales": "menu:main"}}})
    assert ok.status == 200
    shown = call(router, "GET", "/api/admin/ivr", headers=boss).json()
    assert shown["source"] == "admin" and shown["ivr"]["lines"]["sales"] == "menu:main"
    assert call(router, "PUT", "/api/admin/ivr", headers=login(router, "mgr"), json_body={"ivr": {}}).status == 403
    assert call(router, "DELETE", "/api/admin/ivr", headers=boss).status == 200
    assert call(router, "DELETE", "/api/admin/ivr", headers=boss).status == 409
    actions = [e["action"] for e in call(router, "GET", "/api/admin/audit?action=ivr.", headers=boss).json()["entries"]]
    assert actions == ["ivr.reset", "ivr.updated"]


@pytest.mark.parametrize(("lang", "field"), [("en", '"What"'), ("zh-CN", "“类型”")])
def test_a_file_missing_columns_is_refused_naming_the_forms_field_not_cli_options(admin, lang, field):
    """The CLI's own message says --mapping / --template; a web user has neither: the answer names the form's
    "What" field (the kind of file), in the reader's language."""
    router, _, _ = admin
    boss = login(router, "boss")
    reply = call(router, "POST", "/api/admin/import/customers?dry_run=1",
                 headers={**boss, "Content-Type": "text/csv", "Accept-Language": lang},
                 body=b"colour,size\nred,9\n")
    error = reply.json()["error"]
    assert reply.status == 400 and "--" not in error, error
    assert field in error and "name, phone" in error and "colour, size" in error, error
