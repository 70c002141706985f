"""The Origin check: a browser's state-changing request with the session cookie must come from our own origin."""

from __future__ import annotations

import re

import pytest

from ccserver.web.origin import OriginPolicy, RequestView, normalize_origin
from tests.web_support import MemoryUsers, call, make_router


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    store.add(2, "agent8001", "agent", "agent-pass")
    return store


def browser_session(router, host="cc.example.com"):
    """Log in through the form (as a browser on our own origin): the session cookie and its CSRF token."""
    own = {"Host": host, "Origin": f"http://{host}"}
    page = call(router, "GET", "/login", headers={"Host": host})
    nonce = page.cookies()["ccserver_login"]
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    reply = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass",
                                                 "csrf_token": csrf, "next": "/"},
                 headers={**own, "Cookie": f"ccserver_login={nonce}"})
    assert reply.status == 303, reply.body
    cookie = {"Cookie": f"ccserver_session={reply.cookies()['ccserver_session']}", "Host": host}
    token = call(router, "GET", "/api/me", headers=cookie).json()["csrf_token"]
    return {**cookie, "X-CSRF-Token": token}


@pytest.mark.parametrize("origin", ["https://evil.example", "http://cc.example.com.evil.example", "null",
                                    "http://cc.example.com:8443", "file://", "http://cc.example.com\x00"])
def test_cookie_post_from_another_origin_is_refused_and_audited(users, origin):
    router, _ = make_router(users)
    session = browser_session(router)
    reply = call(router, "POST", "/api/logout", headers={**session, "Origin": origin})
    assert reply.status == 403 and reply.json() == {"error": "origin not allowed"}
    entry = users.audit_log[-1]
    assert entry[0] == "http.origin_refused" and entry[1:4] == (2, "agent8001", "192.0.2.10")
    assert entry[4]["route"] == "/api/logout" and entry[4]["method"] == "POST" and "\x00" not in entry[4]["origin"]
    # Nothing happened: the session still works.
    assert call(router, "GET", "/api/me", headers=session).status == 200


def test_referer_from_another_site_is_refused_when_origin_is_absent(users):
    router, _ = make_router(users)
    session = browser_session(router)
    reply = call(router, "POST", "/api/logout", headers={**session, "Referer": "https://evil.example/page?x=1"})
    assert reply.status == 403 and reply.json()["error"] == "origin not allowed"
    assert users.audit_log[-1][4]["origin"] == "https://evil.example"  # the origin only, not the page's path


@pytest.mark.parametrize("extra", [{"Origin": "http://cc.example.com"}, {"Origin": "HTTP://CC.EXAMPLE.COM:80"},
                                   {"Referer": "http://cc.example.com/desktop"}])
def test_cookie_post_from_our_own_origin_is_served(users, extra):
    router, _ = make_router(users)
    session = browser_session(router)
    assert call(router, "POST", "/api/logout", headers={**session, **extra}).status == 200


def test_no_origin_nor_referer_still_needs_and_accepts_the_csrf_token(users):
    router, _ = make_router(users)
    session = browser_session(router)
    no_token = {k: v for k, v in session.items() if k != "X-CSRF-Token"}
    refused = call(router, "POST", "/api/logout", headers=no_token)
    assert refused.status == 403 and "CSRF" in refused.json()["error"]
    assert call(router, "POST", "/api/logout", headers=session).status == 200  # a CLI, an old browser


def test_bearer_calls_are_exempt(users):
    router, _ = make_router(users)
    token = call(router, "POST", "/api/login",
                 json_body={"username": "agent8001", "password": "agent-pass"}).json()["token"]
    reply = call(router, "POST", "/api/logout",
                 headers={"Authorization": f"Bearer {token}", "Origin": "https://elsewhere.example"})
    assert reply.status == 200


def test_the_login_form_from_another_origin_is_refused(users):
    router, _ = make_router(users)
    page = call(router, "GET", "/login", headers={"Host": "cc.example.com"})
    nonce = page.cookies()["ccserver_login"]
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    reply = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass",
                                                 "csrf_token": csrf},
                 headers={"Host": "cc.example.com", "Origin": "https://evil.example",
                          "Cookie": f"ccserver_login={nonce}"})
    assert reply.status == 403 and "ccserver_session" not in reply.cookies()
    assert users.audit_log[-1][0] == "http.origin_refused" and users.audit_log[-1][1] is None


def test_allowed_origins_from_config(users):
    environ = {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
               "CCSERVER_HTTP_ALLOWED_ORIGINS": "https://cc.example.com"}
    router, _ = make_router(users, environ=environ)
    session = browser_session(router, host="10.0.0.5:8080")
    assert call(router, "POST", "/api/logout", headers={**session, "Origin": "https://cc.example.com"}).status == 200


def test_forwarded_origin_believed_only_from_trusted_proxies(users):
    environ = {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
               "CCSERVER_HTTP_TRUSTED_PROXIES": "192.0.2.10"}
    router, _ = make_router(users, environ=environ)
    session = browser_session(router, host="127.0.0.1:8080")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cc.example.com",
                 "Origin": "https://cc.example.com"}
    assert call(router, "POST", "/api/logout", headers={**session, **forwarded}).status == 200
    router2, _ = make_router(users)  # no trusted proxies: the forwarded headers are anyone's words
    session2 = browser_session(router2, host="127.0.0.1:8080")
    assert call(router2, "POST", "/api/logout", headers={**session2, **forwarded}).status == 403


@pytest.mark.parametrize("text, want", [
    ("https://CC.example.com:443", "https://cc.example.com"), ("http://h:8080/x?y", "http://h:8080"),
    ("http://[2001:db8::1]:80", "http://[2001:db8::1]"), ("null", None), ("ftp://h", None),
    ("http://u:p@h", None), ("http://h:99999", None), ("", None), ("http://h\r\nX: y", None),
])
def test_normalize_origin(text, want):
    assert normalize_origin(text) == want


def test_policy_pure():
    policy = OriginPolicy(["https://alias.example"])
    view = RequestView(origin="https://alias.example", referer=None, host="h:8080", secure=False,
                       via_trusted_proxy=False)
    assert policy.allows(view)
    assert policy.own_origins(view) == {"http://h:8080", "https://alias.example"}
    assert not policy.allows(RequestView(origin="", referer=None, host="h", secure=False, via_trusted_proxy=False))


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "//evil.example",
                                    "/\\evil.example", "https://evil.example", "/\x00x"])
def test_login_next_is_never_offsite(users, target):
    router, _ = make_router(users)
    page = call(router, "GET", "/login")
    nonce = page.cookies()["ccserver_login"]
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    reply = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass",
                                                 "csrf_token": csrf, "next": target},
                 headers={"Cookie": f"ccserver_login={nonce}"})
    if "\x00" in target:  # no text with NUL is taken at all: the form is refused, nowhere to go
        assert reply.status == 400 and reply.header("location") is None
        return
    assert reply.status == 303 and reply.header("location") == "/"


def test_repeated_refusals_are_counted_but_written_once_a_minute(users):
    """A hostile page can make every visitor's browser send foreign-origin requests, and anyone can send them
    without logging in: each is refused and counted, but the audit table and the log get one entry per client,
    origin and route a minute, the next one saying how many went unwritten."""
    from ccserver.web.http import ORIGIN_REFUSED

    router, _ = make_router(users)
    now = [1000.0]
    router.origin_refusals.clock = lambda: now[0]
    session = browser_session(router)
    before = ORIGIN_REFUSED.value()
    audited = len(users.audit_log)
    for _ in range(50):
        reply = call(router, "POST", "/api/logout", headers={**session, "Origin": "https://evil.example"})
        assert reply.status == 403 and reply.json() == {"error": "origin not allowed"}
    assert ORIGIN_REFUSED.value() == before + 50
    rows = [e for e in users.audit_log[audited:] if e[0] == "http.origin_refused"]
    assert len(rows) == 1 and "repeats" not in rows[0][4]
    # Another origin, or another route, is another key: written at once.
    call(router, "POST", "/api/logout", headers={**session, "Origin": "https://other.example"})
    call(router, "POST", "/api/password", headers={**session, "Origin": "https://evil.example"})
    rows = [e for e in users.audit_log[audited:] if e[0] == "http.origin_refused"]
    assert [(r[4]["origin"], r[4]["route"]) for r in rows] == [
        ("https://evil.example", "/api/logout"), ("https://other.example", "/api/logout"),
        ("https://evil.example", "/api/password")]
    now[0] += 61
    call(router, "POST", "/api/logout", headers={**session, "Origin": "https://evil.example"})
    last = users.audit_log[-1]
    assert last[0] == "http.origin_refused" and last[4]["repeats"] == 49
    assert call(router, "GET", "/api/me", headers=session).status == 200  # nothing happened to the session


def test_refusal_keys_are_bounded():
    from ccserver.web.refusals import RefusalThrottle

    throttle = RefusalThrottle(lambda: 0.0, max_keys=3)
    assert [throttle.admit("192.0.2.1", f"https://e{i}.example", "/api/x") for i in range(5)] == [0] * 5
    assert len(throttle._seen) == 3
    assert throttle.admit("192.0.2.1", "https://e4.example", "/api/x") is None  # still remembered
    assert throttle.admit("192.0.2.1", "https://e0.example", "/api/x") == 0  # forgotten: written again
