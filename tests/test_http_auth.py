"""Auth over HTTP: bearer tokens for the API, session cookie + CSRF for browsers, roles, rate limits."""

from __future__ import annotations

import re

import pytest
from twisted.internet import task

from tests.web_support import MemoryUsers, call, inline_blocking, make_router


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    store.add(1, "admin", "admin", "admin-pass")
    store.add(2, "agent8001", "agent", "agent-pass")
    store.add(3, "sup", "supervisor", "sup-pass")
    store.add(4, "gone", "agent", "gone-pass", active=False)
    return store


def login(router, username, password, **kw):
    return call(router, "POST", "/api/login", json_body={"username": username, "password": password}, **kw)


def test_api_login_returns_token_and_expiry(users):
    router, _ = make_router(users)
    reply = login(router, "agent8001", "agent-pass")
    assert reply.status == 200
    body = reply.json()
    assert body["role"] == "agent" and body["username"] == "agent8001"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    me = call(router, "GET", "/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status == 200 and me.json()["username"] == "agent8001"
    assert ("login.succeeded", 2, "agent8001", "192.0.2.10", {}) in users.audit_log


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"username": "agent8001", "password": "wrong"}, 401),
        ({"username": "nobody", "password": "x"}, 401),
        ({"username": "gone", "password": "gone-pass"}, 401),
        ({"username": "agent8001"}, 400),
        ({"username": 5, "password": []}, 400),
        ({"username": "a" * 500, "password": "x"}, 400),
    ],
)
def test_api_login_rejects_bad_credentials_and_payloads(users, payload, status):
    router, _ = make_router(users)
    reply = call(router, "POST", "/api/login", json_body=payload)
    assert reply.status == status
    assert "error" in reply.json()
    assert "token" not in reply.json()


@pytest.mark.parametrize(
    "body, content_type, status",
    [(b"{not json", "application/json", 400), (b"[1, 2]", "application/json", 400),
     (b"\xff\xfe", "application/json", 400), (b"username=a", "text/plain", 415)],
)
def test_api_login_malformed_bodies_get_clear_errors(users, body, content_type, status):
    router, _ = make_router(users)
    reply = call(router, "POST", "/api/login", body=body, headers={"Content-Type": content_type})
    assert reply.status == status
    assert reply.json()["error"]


def test_failed_logins_are_audited_and_rate_limited(users):
    router, ctx = make_router(users)
    for _ in range(3):
        assert login(router, "agent8001", "wrong").status == 401
    ctx.clock.advance(100)
    limited = login(router, "agent8001", "agent-pass")
    assert limited.status == 429 and limited.reason == b"Too Many Requests"
    assert limited.json()["retry_after"] == 200 and limited.header("retry-after") == "200"
    actions = [entry[0] for entry in users.audit_log]
    assert actions.count("login.failed") == 3 and "login.rate_limited" in actions
    ctx.clock.advance(201)
    assert login(router, "agent8001", "agent-pass").status == 200


def test_hammering_a_lock_out_is_refused_every_time_but_audited_once_a_minute(users):
    router, ctx = make_router(users)
    for _ in range(3):
        assert login(router, "agent8001", "wrong").status == 401
    for _ in range(40):
        assert login(router, "agent8001", "agent-pass").status == 429
    limited = [entry for entry in users.audit_log if entry[0] == "login.rate_limited"]
    assert len(limited) == 1 and limited[0][3] == "192.0.2.10"
    ctx.clock.advance(61)
    assert login(router, "agent8001", "agent-pass").status == 429
    limited = [entry for entry in users.audit_log if entry[0] == "login.rate_limited"]
    assert len(limited) == 2 and limited[-1][4] == {"repeats": 39}


def test_login_form_rate_limited_says_when(users):
    router, _ = make_router(users)
    for _ in range(3):
        assert _browser_login(router, password="wrong").status == 401
    page = _browser_login(router)
    assert page.status == 429 and page.reason == b"Too Many Requests" and int(page.header("retry-after")) > 0
    assert b"Too many attempts" in page.body and "ccserver_session" not in page.cookies()


def test_one_mistyping_agent_behind_nat_does_not_lock_out_the_floor(users):
    # The seen failure: 5 wrong passwords from 127.0.0.1, then admin/admin got 429 for 5 minutes.
    router, _ = make_router(users)
    for _ in range(5):
        assert login(router, "agent8001", "wrong", client_ip="127.0.0.1").status in (401, 429)
    assert login(router, "agent8001", "agent-pass", client_ip="127.0.0.1").status == 429  # their own budget
    assert login(router, "admin", "admin-pass", client_ip="127.0.0.1").status == 200
    assert login(router, "sup", "sup-pass", client_ip="127.0.0.1").status == 200


def test_address_budget_is_larger_and_spent_on_failures_only(users):
    router, _ = make_router(users)  # per username 3, per address 10
    for _ in range(30):  # good logins from one NAT address cost nothing
        assert login(router, "sup", "sup-pass", client_ip="198.51.100.7").status == 200
    for n in range(10):
        assert login(router, f"guess{n}", "x", client_ip="198.51.100.7").status == 401
    refused = login(router, "admin", "admin-pass", client_ip="198.51.100.7")
    assert refused.status == 429 and refused.header("retry-after")
    assert login(router, "admin", "admin-pass", client_ip="198.51.100.8").status == 200


class HeldPasswordChecks:
    """run_in_thread for PasswordWork that holds every check until released: logins stay in flight."""

    def __init__(self):
        self.held: list = []

    def __call__(self, fn, *args):
        from tests.web_support import LOOP

        future = LOOP.create_future()
        self.held.append((future, fn, args))
        return future

    def release(self):
        from tests.web_support import spin

        for future, fn, args in self.held:
            future.set_result(fn(*args))
        self.held.clear()
        spin()


def test_simultaneous_wrong_logins_are_counted_before_the_password_check(users):
    from ccserver.passwords import PasswordWork
    from tests.web_support import reply_of, send, spin

    router, ctx = make_router(users)  # 3 attempts per username
    checks = HeldPasswordChecks()
    ctx.passwords = PasswordWork(checks, max_pending=1000)
    requests = [send(router, "POST", "/api/login", json_body={"username": "agent8001", "password": "wrong"},
                     client_ip=f"203.0.113.{n % 250}") for n in range(200)]
    spin()  # every request runs until it waits: on the KDF (admitted) or nothing (refused)
    assert len(checks.held) == 3  # only the admitted ones reach the KDF
    checks.release()
    statuses = [reply_of(r).status for r in requests if r.finished]
    assert len(statuses) == 200 and statuses.count(401) == 3 and statuses.count(429) == 197


def test_a_login_that_gets_no_verdict_is_not_held_against_the_user(users):
    from ccserver.passwords import PasswordWork

    router, ctx = make_router(users)
    ctx.passwords = PasswordWork(HeldPasswordChecks(), max_pending=0)  # always busy
    for _ in range(5):
        busy = login(router, "agent8001", "agent-pass")
        assert busy.status == 503 and busy.header("retry-after") == "1" and busy.reason == b"Service Unavailable"
    ctx.passwords = PasswordWork(inline_blocking, max_pending=8)
    assert login(router, "agent8001", "agent-pass").status == 200


TRUSTING = {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
            "CCSERVER_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}


@pytest.mark.parametrize("peer, forwarded, client", [
    ("10.0.0.5", "203.0.113.7", "203.0.113.7"),  # our proxy says who it served
    ("10.0.0.5", "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),  # the rightmost hop not a proxy of ours
    ("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # every hop ours: the leftmost
    ("10.0.0.5", "garbage, 10.0.0.9", "10.0.0.9"),  # a bad entry stops the walk at the last trusted hop
    ("192.0.2.66", "203.0.113.7", "192.0.2.66"),  # not from a trusted proxy: the header is ignored
    ("10.0.0.5", "", "10.0.0.5"),
])
def test_client_address_behind_trusted_proxies(users, peer, forwarded, client):
    router, _ = make_router(users, environ=TRUSTING)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert login(router, "agent8001", "agent-pass", client_ip=peer, headers=headers).status == 200
    assert users.audit_log[-1][:4] == ("login.succeeded", 2, "agent8001", client)


def test_spoofed_forwarded_for_does_not_buy_a_fresh_address_budget(users):
    router, _ = make_router(users)  # no trusted proxies
    for n in range(10):
        login(router, f"guess{n}", "x", client_ip="192.0.2.66", headers={"X-Forwarded-For": f"203.0.113.{n}"})
    assert login(router, "admin", "admin-pass", client_ip="192.0.2.66",
                 headers={"X-Forwarded-For": "203.0.113.200"}).status == 429


@pytest.mark.parametrize(
    "authorization, message",
    [(None, "authentication required"), ("Bearer", "expected Authorization"), ("Basic abc", "expected Authorization"),
     ("Bearer garbage", "malformed token"), ("Bearer v1.abc.def", "invalid token")],
)
def test_api_without_valid_auth_is_401_json(users, authorization, message):
    router, _ = make_router(users)
    headers = {"Authorization": authorization} if authorization else {}
    reply = call(router, "GET", "/api/me", headers=headers)
    assert reply.status == 401
    assert message in reply.json()["error"]
    assert reply.header("content-type").startswith("application/json")


def test_expired_token_is_401(users):
    clock = task.Clock()
    router, _ = make_router(users, clock=clock)
    token = login(router, "agent8001", "agent-pass").json()["token"]
    clock.advance(3599)
    assert call(router, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}).status == 200
    clock.advance(2)
    reply = call(router, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 401 and reply.json()["error"] == "token expired"


def test_tampered_token_is_401(users):
    router, _ = make_router(users)
    token = login(router, "agent8001", "agent-pass").json()["token"]
    version, payload, signature = token.split(".")
    import base64
    import json

    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["r"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    reply = call(router, "GET", "/api/me", headers={"Authorization": f"Bearer {version}.{forged}.{signature}"})
    assert reply.status == 401


def test_wrong_role_is_403_json(users):
    router, _ = make_router(users)

    async def supervisors_only(req):
        from ccserver.web.http import json_response

        return json_response({"ok": True})

    router.add("GET", "/api/supervisor-thing", supervisors_only, access="api", roles=("supervisor",))
    agent = login(router, "agent8001", "agent-pass").json()["token"]
    sup = login(router, "sup", "sup-pass").json()["token"]
    admin = login(router, "admin", "admin-pass").json()["token"]
    denied = call(router, "GET", "/api/supervisor-thing", headers={"Authorization": f"Bearer {agent}"})
    assert denied.status == 403 and "agent" in denied.json()["error"]
    assert call(router, "GET", "/api/supervisor-thing", headers={"Authorization": f"Bearer {sup}"}).status == 200
    assert call(router, "GET", "/api/supervisor-thing", headers={"Authorization": f"Bearer {admin}"}).status == 200


def _browser_login(router, username="agent8001", password="agent-pass"):
    page = call(router, "GET", "/login")
    assert page.status == 200
    nonce = page.cookies()["ccserver_login"]
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    reply = call(router, "POST", "/login", form={"username": username, "password": password, "csrf_token": csrf,
                                                 "next": "/"}, headers={"Cookie": f"ccserver_login={nonce}",
                                                                               "Accept-Language": "en"})
    return reply


def test_browser_login_sets_httponly_strict_cookie(users):
    router, _ = make_router(users)
    reply = _browser_login(router)
    assert reply.status == 303 and reply.header("location") == "/"
    raw = [c for c in reply.headers["set-cookie"] if c.startswith("ccserver_session=")][0]
    assert "HttpOnly" in raw and "SameSite=Strict" in raw
    session = reply.cookies()["ccserver_session"]
    home = call(router, "GET", "/", headers={"Cookie": f"ccserver_session={session}"})
    assert home.status == 200 and b"agent8001" in home.body


def test_login_form_without_csrf_is_refused(users):
    router, _ = make_router(users)
    page = call(router, "GET", "/login")
    nonce = page.cookies()["ccserver_login"]
    reply = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass",
                                                 "csrf_token": "forged"}, headers={"Cookie": f"ccserver_login={nonce}"})
    assert reply.status == 403
    assert "ccserver_session" not in reply.cookies()
    no_cookie = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass"})
    assert no_cookie.status == 403


def test_cookie_auth_needs_csrf_on_unsafe_methods(users):
    router, ctx = make_router(users)
    session = _browser_login(router).cookies()["ccserver_session"]
    cookie = {"Cookie": f"ccserver_session={session}"}
    refused = call(router, "POST", "/api/logout", headers=cookie)
    assert refused.status == 403 and "CSRF" in refused.json()["error"]
    csrf = call(router, "GET", "/api/me", headers=cookie).json()["csrf_token"]
    ok = call(router, "POST", "/api/logout", headers={**cookie, "X-CSRF-Token": csrf})
    assert ok.status == 200
    # The session is over even though its token has not expired.
    assert call(router, "GET", "/api/me", headers=cookie).status == 401


def test_logout_form_with_csrf(users):
    router, _ = make_router(users)
    session = _browser_login(router).cookies()["ccserver_session"]
    cookie = {"Cookie": f"ccserver_session={session}"}
    home = call(router, "GET", "/", headers=cookie)
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', home.body).group(1).decode()
    assert call(router, "POST", "/logout", form={"csrf_token": "nope"}, headers=cookie).status == 403
    out = call(router, "POST", "/logout", form={"csrf_token": csrf}, headers=cookie)
    assert out.status == 303 and out.header("location") == "/login"


def test_pages_redirect_to_login_and_next_is_never_offsite(users):
    router, _ = make_router(users)
    reply = call(router, "GET", "/")
    assert reply.status == 303 and reply.header("location").startswith("/login")
    page = call(router, "GET", "/login?next=//evil.example/x")
    assert b'name="next" value="/"' in page.body


def test_login_page_escapes_reflected_username(users):
    router, _ = make_router(users)
    page = call(router, "GET", "/login")
    nonce = page.cookies()["ccserver_login"]
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    hostile = '"><script>alert(1)</script>'
    reply = call(router, "POST", "/login", form={"username": hostile, "password": "x", "csrf_token": csrf},
                 headers={"Cookie": f"ccserver_login={nonce}"})
    assert reply.status == 401
    assert b"<script>alert(1)</script>" not in reply.body
    assert b"&lt;script&gt;" in reply.body


def test_unknown_routes_and_methods(users):
    router, _ = make_router(users)
    assert call(router, "GET", "/api/nope").status == 404
    assert call(router, "DELETE", "/api/login").status == 405
    assert call(router, "POST", "/api/login", body=b"x" * (2 << 20),
                headers={"Content-Type": "application/json"}).status == 413


def test_healthz_reports_components(users):
    async def ok():
        return "ok"

    async def broken():
        raise ConnectionError("down")

    router, _ = make_router(users, probes={"database": ok, "redis": broken})
    reply = call(router, "GET", "/healthz")
    assert reply.status == 200
    assert reply.json() == {"status": "degraded", "database": "ok", "redis": "error: ConnectionError",
                            "ami": "not configured"}
    router, _ = make_router(users, probes={"database": broken})
    reply = call(router, "GET", "/healthz")
    assert reply.status == 503 and reply.json()["status"] == "unavailable"


def test_healthz_times_out_a_hung_probe(users):
    from tests.web_support import LOOP, reply_of, send, spin

    clock = task.Clock()
    hung = LOOP.create_future()  # a database that never answers

    async def never():
        return await hung

    router, _ = make_router(users, clock=clock, probes={"database": never})
    request = send(router, "GET", "/healthz")
    spin(request)
    assert not request.finished  # waiting on the probe
    clock.advance(1.5)  # the probe's bound passes on the HTTP side's clock
    spin(request)
    assert request.finished and reply_of(request).status == 503
    assert b"timed out" in b"".join(request.written)
    hung.cancel()


def test_metrics_access(users):
    router, _ = make_router(users, environ={"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
                                            "CCSERVER_HTTP_METRICS_TOKEN": "scrape-me"})
    assert call(router, "GET", "/metrics", client_ip="192.0.2.50").status == 401
    ok = call(router, "GET", "/metrics", headers={"Authorization": "Bearer scrape-me"}, client_ip="192.0.2.50")
    assert ok.status == 200 and ok.header("content-type").startswith("text/plain")
    one = call(router, "GET", "/metrics?name[]=ccserver_http_timeouts_total&name=ccserver_no_such_metric",
               headers={"Authorization": "Bearer scrape-me"}, client_ip="192.0.2.50")
    families = [line.split()[2] for line in one.body.decode().splitlines() if line.startswith("# TYPE")]
    assert one.status == 200 and families == ["ccserver_http_timeouts_total"]
    assert call(router, "GET", "/metrics?name[]=x", client_ip="192.0.2.50").status == 401  # still checked
    # Loopback is no exemption: behind a reverse proxy on the same host every client comes from there.
    unauthenticated = call(router, "GET", "/metrics", client_ip="127.0.0.1")
    assert unauthenticated.status == 401 and unauthenticated.header("www-authenticate") == "Bearer"
    assert call(router, "GET", "/metrics", client_ip="::1").status == 401
    assert call(router, "GET", "/metrics", headers={"Authorization": "Bearer wrong-token"}).status == 401
    agent = login(router, "agent8001", "agent-pass").json()["token"]
    sup = login(router, "sup", "sup-pass").json()["token"]
    admin = login(router, "admin", "admin-pass").json()["token"]
    denied = call(router, "GET", "/metrics", headers={"Authorization": f"Bearer {agent}"})
    assert denied.status == 403 and "agent" in denied.json()["error"]  # valid, but not a supervisor
    assert call(router, "GET", "/metrics", headers={"Authorization": f"Bearer {sup}"}).status == 200
    assert call(router, "GET", "/metrics", headers={"Authorization": f"Bearer {admin}"}).status == 200
    browser = _browser_login(router, "sup", "sup-pass").cookies()["ccserver_session"]
    assert call(router, "GET", "/metrics", headers={"Cookie": f"ccserver_session={browser}"}).status == 200


def test_metrics_without_a_token_configured_need_a_supervisor(users):
    router, _ = make_router(users)
    assert call(router, "GET", "/metrics", client_ip="127.0.0.1").status == 401
    assert call(router, "GET", "/metrics", headers={"Authorization": "Bearer "}).status == 401


def test_metrics_public_when_configured(users):
    router, _ = make_router(users, environ={"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
                                            "CCSERVER_HTTP_METRICS_PUBLIC": "true"})
    reply = call(router, "GET", "/metrics", client_ip="192.0.2.50")
    assert reply.status == 200 and reply.header("content-type").startswith("text/plain")


@pytest.mark.parametrize("token", ["v1.é.x", "v1.abc.签名", "v1.\u00ff\u00fe.abc", "é"])
def test_non_ascii_bearer_token_is_401_not_500(users, token):
    router, _ = make_router(users)
    reply = call(router, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 401 and reply.json()["error"]


def test_non_ascii_session_cookie_and_csrf_are_refused_not_500(users):
    router, _ = make_router(users)
    assert call(router, "GET", "/api/me", headers={"Cookie": "ccserver_session=v1.é.x"}).status == 401
    session = _browser_login(router).cookies()["ccserver_session"]
    cookie = {"Cookie": f"ccserver_session={session}"}
    assert call(router, "POST", "/api/logout", headers={**cookie, "X-CSRF-Token": "é" * 43}).status == 403
    assert call(router, "POST", "/logout", form={"csrf_token": "令牌"}, headers=cookie).status == 403
    page = call(router, "GET", "/login")
    nonce = page.cookies()["ccserver_login"]
    reply = call(router, "POST", "/login", form={"username": "agent8001", "password": "agent-pass",
                                                 "csrf_token": "令牌"}, headers={"Cookie": f"ccserver_login={nonce}"})
    assert reply.status == 403
    # the session still works: the refused attempts ended nothing
    assert call(router, "GET", "/api/me", headers=cookie).status == 200


@pytest.mark.parametrize("name", ["a" * 5000, "é" * 300, "a\x00b", "app.css\x00.png", "..", ".", "%2e%2e",
                                  "..%2fsecret_key", "~", "app.css%00", "\\..\\x", "app.css/"])
def test_static_odd_names_are_404_never_500(users, name):
    router, _ = make_router(users)
    reply = call(router, "GET", "/static/" + name)
    assert reply.status == 404


def test_static_serves_the_shipped_files(users):
    router, _ = make_router(users)
    reply = call(router, "GET", "/static/app.css")
    assert reply.status == 200 and reply.header("content-type").startswith("text/css") and reply.body
    assert call(router, "HEAD", "/static/app.css").status == 200


@pytest.mark.parametrize("path", ["/api//me", "/api/me/", "//api/me", "/api/me\x00", "/api/\tme", "/static//app.css"])
def test_a_path_has_one_spelling(users, path):
    router, _ = make_router(users)
    token = login(router, "agent8001", "agent-pass").json()["token"]
    assert call(router, "GET", path, headers={"Authorization": f"Bearer {token}"}).status == 404


@pytest.mark.parametrize("log_pii", [False, True])
def test_a_crash_is_logged_without_the_path_or_personal_data(users, caplog, log_pii):
    import logging

    router, _ = make_router(users, environ={"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789",
                                            "CCSERVER_SERVER_LOG_PII": str(log_pii).lower()})

    async def boom(req):  # the message carries request data (as a SQL error carries its parameters)
        raise ValueError(f"customer +86{req.path_params['phone']}\r\nforged line")

    router.add("GET", "/api/lookup/{phone}", boom, access="public")
    with caplog.at_level(logging.ERROR, logger="ccserver.web.http"):
        reply = call(router, "GET", "/api/lookup/13800138000?token=v1.secret")
    assert reply.status == 500 and reply.json() == {"error": "internal error"}
    text = caplog.text
    assert "/api/lookup/{phone}" in text and "ValueError" in text
    assert "13800138000" not in text.replace("+8613800138000", "") and "v1.secret" not in text
    assert ("+8613800138000" in text) is log_pii  # the exception's text only with server.log_pii
    assert "\r" not in text and not any(line.startswith("forged line") for line in text.splitlines())


class BrokenBudgets:
    """A login limiter whose store is down (Redis gone)."""

    async def admit(self, username, address):
        raise ConnectionError("redis down")

    async def succeeded(self, admission):
        raise ConnectionError("redis down")

    async def cancel(self, admission):
        raise ConnectionError("redis down")


def test_login_budgets_unavailable_is_503_never_an_unlimited_login(users):
    router, _ = make_router(users, limiter=BrokenBudgets())
    reply = login(router, "agent8001", "agent-pass")
    assert reply.status == 503 and reply.header("retry-after") and "token" not in reply.json()


def test_a_refund_that_fails_does_not_undo_a_good_login(users):
    from ccserver.login_limits import MemoryLoginLimiter

    class RefundsFail(MemoryLoginLimiter):
        async def succeeded(self, admission):
            raise ConnectionError("redis down")

    router, ctx = make_router(users, limiter=RefundsFail(3, 10, 300))
    assert login(router, "agent8001", "agent-pass").status == 200
