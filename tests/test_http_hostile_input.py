"""Hostile bytes and values at the HTTP door get a clear 4xx (never a 500), whatever route they reach."""

from __future__ import annotations

import json

import pytest

from ccserver.web.http import HTTPError
from tests.web_support import MemoryUsers, call, make_router


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    store.add(2, "agent8001", "agent", "agent-pass")
    return store


BAD = b"\xff\xfe\xc3"  # not UTF-8: twisted's getHeader raised on it (a 500)


@pytest.mark.parametrize(("method", "path", "header", "status"), [
    ("GET", "/api/me", "Authorization", 401),  # b"Bearer \xff…": a malformed token
    ("GET", "/api/me", "Cookie", 401),
    ("GET", "/login", "Cookie", 200),
    ("GET", "/login", "Accept-Language", 200),
    ("POST", "/api/login", "Origin", 403),
    ("POST", "/api/login", "Referer", 403),
    ("POST", "/api/login", "Content-Type", 415),
    ("GET", "/healthz", "If-None-Match", 503),  # no probes configured here: unavailable, not a crash
])
def test_header_bytes_that_are_not_utf8(users, method, path, header, status) -> None:
    router, _ = make_router(users)
    value = (b"Bearer " + BAD) if header == "Authorization" else (b"ccserver_session=" + BAD if header == "Cookie"
                                                                 else b"https://x" + BAD)
    if header == "Content-Type":
        value = b"application/json" + BAD
    body = json.dumps({"username": "agent8001", "password": "x"}).encode() if method == "POST" else None
    reply = call(router, method, path, headers={header: value}, body=body)
    assert reply.status == status, reply.body


@pytest.mark.parametrize(("body", "reason"), [
    ('{"username": "agent\\ud800", "password": "x"}', "surrogate"),  # valid JSON, no UTF-8 encodes it
    ('{"username": "adm\\u0000in", "password": "x"}', "NUL"),  # PostgreSQL refuses NUL in text
    ('{"x": {"\\u0000": 1}}', "NUL"),  # keys too
    ('{"x": [[["\\udfff"]]]}', "surrogate"),
    ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
    ('{"x": ' + "9" * 5000 + "}", "JSON"),  # past Python's int-from-text limit
])
def test_json_bodies_no_database_could_store(users, body, reason) -> None:
    router, _ = make_router(users)
    reply = call(router, "POST", "/api/login", body=body.encode(), headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reason in reply.json()["error"], reply.body


def test_nul_in_a_query_value_or_a_form_is_refused(users) -> None:
    router, _ = make_router(users)
    assert call(router, "GET", "/api/admin/audit?actor=adm%00in").status == 400
    reply = call(router, "POST", "/login", form={"username": "adm\x00in", "password": "x", "csrf_token": "t"})
    assert reply.status in (400, 403) and reply.status != 500


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "0001-01-01T00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_dates_at_the_edges_of_the_calendar_are_refused_before_any_arithmetic(text) -> None:
    from ccserver.web.call_routes import _when as call_when
    from ccserver.web.ticket_routes import _when as ticket_when

    for parse in (lambda: call_when(text, "to", end=True), lambda: ticket_when(text, "slot", "Asia/Shanghai")):
        with pytest.raises(HTTPError) as refused:
            parse()
        assert refused.value.status == 400 and "between the years 1970 and 9000" in refused.value.message
    assert call_when("2026-12-01", "to", end=True).isoformat() == "2026-12-02T00:00:00+00:00"


def test_a_page_refusal_is_a_page_in_the_readers_language_and_the_api_keeps_json(users) -> None:
    router, _ = make_router(users)
    page = call(router, "GET", "/no-such-page", headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    assert page.status == 404 and page.header("content-type").startswith("text/html")
    text = page.body.decode()
    assert "页面不存在" in text and "未找到" in text and '<html lang="zh-CN">' in text and "<script>" not in text
    english = call(router, "GET", "/no-such-page", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert "Page not found" in english.body.decode()
    api = call(router, "GET", "/api/no-such-route", headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    assert api.status == 404 and api.json() == {"error": "未找到"}
    script = call(router, "GET", "/no-such-page")  # no Accept: text/html, a script: JSON as before
    assert script.json() == {"error": "not found"}


def test_the_error_page_leads_back_to_the_page_of_ours_the_reader_came_from(users) -> None:
    router, _ = make_router(users)
    html = {"Accept": "text/html", "Accept-Language": "zh-CN", "Host": "cc.example"}
    came = call(router, "GET", "/no-such-page", headers={**html, "Referer": "http://cc.example/reports?view=agents"})
    assert '<a href="/reports?view=agents">返回上一页</a>' in came.body.decode()
    for referer in ("https://evil.example/x", "javascript:alert(1)", "http://cc.example//evil.example/"):
        page = call(router, "GET", "/no-such-page", headers={**html, "Referer": referer}).body.decode()
        assert "返回上一页" not in page and "返回首页" in page, referer


def test_a_signed_in_reader_keeps_the_navigation_and_log_out_on_a_refusal() -> None:
    from tests.web_support import router_with_logins

    router, _, auth = router_with_logins(("boss", "supervisor", "boss-pass"), ("agent8001", "agent", "agent-pass"))
    html = {"Accept": "text/html", "Accept-Language": "en"}
    bad = call(router, "GET", "/reports?view=nope", headers={**html, **auth["boss"]})
    assert bad.status == 400
    page = bad.body.decode()
    assert "view must be queues, agents or stores" in page
    assert '<a href="/wallboard">Wallboard</a>' in page and '<a href="/reports">Reports</a>' in page
    assert 'action="/logout"' in page and 'name="csrf_token" value="' in page and "boss · " in page
    refused = call(router, "GET", "/wallboard", headers={**html, **auth["agent8001"]})
    assert refused.status == 403
    page = refused.body.decode()
    assert '<a href="/desktop">Desktop</a>' in page and "/wallboard" not in page.split("</nav>")[0]
    anonymous = call(router, "GET", "/no-such-page", headers=html).body.decode()
    assert 'class="pages"' not in anonymous and 'action="/logout"' not in anonymous


def test_a_refusal_names_the_role_in_the_readers_language_and_the_api_keeps_the_code() -> None:
    from tests.web_support import router_with_logins

    router, _, auth = router_with_logins(("agent8001", "agent", "agent-pass"))
    zh = call(router, "GET", "/wallboard", headers={"Accept": "text/html", "Accept-Language": "zh-CN",
                                                    **auth["agent8001"]}).body.decode()
    assert "坐席角色无权执行此操作" in zh and "&#39;agent&#39;" not in zh
    en = call(router, "GET", "/wallboard", headers={"Accept": "text/html", "Accept-Language": "en",
                                                    **auth["agent8001"]}).body.decode()
    assert "role &#39;agent&#39; may not do this" in en  # English readers keep the code they would type
    api = call(router, "GET", "/api/wallboard", headers=auth["agent8001"])
    assert api.status == 403 and api.json() == {"error": "role 'agent' may not do this"}
