"""The reports page: queue / agent / store views from the interval rows, server-side SVG, the CSV link, caller- or
admin-controlled names escaped, a store manager limited to their store, agents refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import DealerGroup, KpiAgentInterval, KpiQueueInterval, Queue, Store, User
from ccserver.kpi.report_page import agent_totals, store_totals
from ccserver.kpi.reports import agent_report
from ccserver.web.app import build_router
from tests.web_support import MemoryUsers, call, make_context

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def site(sqlite_url: str) -> Any:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(DealerGroup(id=1, name="Group"))
        s.flush()
        s.add_all([Store(id=1, group_id=1, code="bj", name="北京店", brand="Volvo", city="Beijing"),
                   Store(id=2, group_id=1, code="sh", name=HOSTILE, brand="BMW", city="Shanghai")])
        s.flush()
        s.add_all([Queue(name="bj-sales", store_id=1), Queue(name=HOSTILE[:40], store_id=2), Queue(name="vip")])
        s.add_all([User(id=2, username="boss", display_name="Boss", role="supervisor"),
                   User(id=3, username="bj-manager", display_name="BJ", role="supervisor", store_id=1)])
        day = date(2026, 11, 30)
        for k, q in enumerate(("bj-sales", HOSTILE[:40], "vip")):
            start = datetime(2026, 11, 30, 2 + k, 0, tzinfo=UTC)
            s.add(KpiQueueInterval(server="default", queue=q, interval_start=start, day=day, sl_threshold=20.0,
                                   offered=10, answered=9, abandoned=1, short_abandoned=0, unanswered=0,
                                   answered_in_sl=8 - k, wait_answered=90.0, wait_abandoned=5.0, max_wait=30.0,
                                   handled=9, talk=900.0, wrapup=90.0, transfers=0, callbacks=0))
        s.add(KpiAgentInterval(server="default", interface="PJSIP/8001", name=HOSTILE, interval_start=start, day=day,
                               queues=["bj-sales"], handled=7, talk=700.0, wrapup=70.0, transfers=0, missed=1,
                               available=600.0, ringing=30.0, talking=700.0, paused=100.0, paused_by_reason={}))
    users = MemoryUsers()
    users.add(1, "agent8001", "agent", "pw-agent-1")
    users.add(2, "boss", "supervisor", "pw-boss-1")
    users.add(3, "bj-manager", "supervisor", "pw-bj-1")
    ctx = make_context(users, environ={"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
                                       "CCSERVER_SERVER_TIME_ZONE": "UTC"})
    ctx.session_factory = sessions
    router = build_router(ctx)

    def auth(name: str, pw: str) -> dict[str, str]:
        token = call(router, "POST", "/api/login", json_body={"username": name, "password": pw}).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    yield router, {"agent": auth("agent8001", "pw-agent-1"), "boss": auth("boss", "pw-boss-1"),
                   "bj": auth("bj-manager", "pw-bj-1")}
    engine.dispose()


RANGE = "from=2026-11-30&to=2026-11-30"


def test_queue_view_chart_table_and_escaping(site: Any) -> None:
    router, auth = site
    page = call(router, "GET", f"/reports?{RANGE}&interval=15m", headers={**auth["boss"], "Accept-Language": "en"})
    assert page.status == 200
    html = page.body.decode()
    assert "<svg" in html and "<polyline" not in html  # one point per queue: markers, no line
    assert html.count("<tr><td>2026-11-30") == 3
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)" in html
    assert 'href="/api/reports/queues?from=2026-11-30&amp;to=2026-11-30&amp;interval=15m&amp;format=csv"' in html
    assert "<script>" not in html


def test_store_view_side_by_side_and_agent_view(site: Any) -> None:
    router, auth = site
    stores = call(router, "GET", f"/reports?view=stores&{RANGE}", headers={**auth["boss"], "Accept-Language": "en"})
    html = stores.body.decode()
    assert stores.status == 200 and html.count('class="bar') == 3  # two stores and the queues without one
    assert "北京店" in html and HOSTILE not in html and "(no store)" in html
    agents = call(router, "GET", f"/reports?view=agents&{RANGE}", headers={**auth["boss"], "Accept-Language": "zh-CN"})
    assert agents.status == 200 and "按坐席" in agents.body.decode() and HOSTILE not in agents.body.decode()


def test_store_manager_sees_only_their_store_and_agents_are_refused(site: Any) -> None:
    router, auth = site
    html = call(router, "GET", f"/reports?{RANGE}", headers=auth["bj"]).body.decode()
    assert "bj-sales" in html and "vip" not in html.split("<table", 1)[1] and "&lt;img" not in html
    stores = call(router, "GET", f"/reports?view=stores&{RANGE}", headers=auth["bj"]).body.decode()
    assert "北京店" in stores and "&lt;img" not in stores
    assert call(router, "GET", f"/reports?{RANGE}", headers=auth["agent"]).status == 403
    assert call(router, "GET", f"/reports?view=nope&{RANGE}", headers=auth["boss"]).status == 400


def test_store_totals_pure() -> None:
    rows = [{"queue": "a", "offered": 10, "answered": 10, "answered_in_sl": 5},
            {"queue": "b", "offered": 10, "answered": 10, "answered_in_sl": 10},
            {"queue": "c", "offered": 4, "answered": 2, "abandoned": 2, "answered_in_sl": 2}]
    totals = store_totals(rows, {"a": 1, "b": 1}, {1: "One"})
    assert [(t["store"], t["offered"], t["service_level"]) for t in totals] == [("One", 20, 75.0), (None, 4, 50.0)]


def test_agent_totals_add_the_stored_seconds_not_the_reports_roundings() -> None:
    # Two days of one agent: each day's states round to a tenth (21315.225 -> 21315.2, 6797.55 -> 6797.5 …);
    # added up again they would not make the 64,800 s the agent was signed in.
    day = {"server": "default", "interface": "PJSIP/8004", "name": "Jia Kai", "handled": 34, "talk": 6797.55,
           "available": 21315.225, "ringing": 205.165, "talking": 6797.55, "wrapup": 482.06, "paused": 3600.0,
           "paused_by_reason": {"lunch": 3600.0}, "queues": ["hotline"]}
    rows = [{**day, "interval_start": 1.0, "day": "2026-11-21"}, {**day, "interval_start": 2.0, "day": "2026-11-22"}]
    (total,) = agent_totals(rows)
    assert total["signed_in"] == 64800.0 and total["handled"] == 68
    drifted = agent_totals(agent_report(rows, "day", "Asia/Shanghai"))[0]["signed_in"]
    assert drifted != 64800.0  # what the page showed when it summed the report


@pytest.mark.parametrize(("lang", "cookie", "reason"), [
    ("zh-CN", "zh-CN", "“至”须晚于“从”"),
    ("en", "en", "“To” must be after “From”"),
])
def test_a_reversed_range_is_refused_on_the_page_in_its_language_keeping_the_choices(
        site: Any, lang: str, cookie: str, reason: str) -> None:
    router, auth = site
    page = call(router, "GET", "/reports?view=agents&from=2026-12-05&to=2026-11-01&interval=15m",
                headers={**auth["boss"], "Cookie": f"ccserver_lang={cookie}", "Accept": "text/html"})
    assert page.status == 400 and page.headers["content-type"][0].startswith("text/html")
    html = page.body.decode()
    assert f'<html lang="{lang}">' in html and 'id="report-form"' in html  # the reports page, not the error page
    assert reason in html and "from" not in html.split('id="report-error">')[1].split("<")[0]
    assert 'value="2026-12-05"' in html and 'value="2026-11-01" aria-invalid="true"' in html
    assert '<option value="agents" selected>' in html and '<option value="15m" selected>' in html
    assert "format=csv" not in html  # no export of a range that was refused


def test_a_range_over_the_allowed_span_names_the_pages_labels(site: Any) -> None:
    router, auth = site
    page = call(router, "GET", "/reports?from=2025-01-01&to=2026-12-02&interval=15m",
                headers={**auth["boss"], "Cookie": "ccserver_lang=zh-CN"})
    assert page.status == 400
    assert "“从”到“至”最多 31 天（“间隔”为 15m 时）" in page.body.decode()


def test_one_day_is_a_report_and_the_api_keeps_its_field_names(site: Any) -> None:
    router, auth = site
    assert call(router, "GET", "/reports?from=2026-11-30&to=2026-11-30", headers=auth["boss"]).status == 200
    one_day = call(router, "GET", "/api/reports/queues?from=2026-11-30&to=2026-11-30", headers=auth["boss"])
    assert one_day.status == 200 and len(one_day.json()["rows"]) == 3
    reversed_ = call(router, "GET", "/api/reports/queues?from=2026-11-30&to=2026-11-29", headers=auth["boss"])
    assert reversed_.status == 400 and reversed_.json() == {"error": "to must be after from", "field": "to"}
