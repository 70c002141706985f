"""Every request rechecks its session: revoked (logout), the user deactivated or gone, the current role; the
session-ended hook; logout is audited. Revocations in Redis are shared by nodes (real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from twisted.internet import defer, task

from ccserver.auth import AuthError, AuthUnavailable
from ccserver.web.context import UserRecord
from ccserver.web.sessions import DEACTIVATED, EXPIRED, LOGOUT, RedisRevocations, Sessions, UserCache
from tests.web_support import MemoryUsers, call, make_router

SECRET = {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789"}


class CountingUsers(MemoryUsers):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.down = False

    def get(self, user_id: int) -> UserRecord | None:
        self.lookups += 1
        if self.down:
            raise ConnectionError("database gone")
        return super().get(user_id)


@pytest.fixture
def users() -> CountingUsers:
    store = CountingUsers()
    store.add(1, "admin", "admin", "admin-pass")
    store.add(2, "agent8001", "agent", "agent-pass")
    store.add(3, "sup", "supervisor", "sup-pass")
    return store


def bearer(router, username, password) -> dict[str, str]:
    reply = call(router, "POST", "/api/login", json_body={"username": username, "password": password})
    assert reply.status == 200
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def add_supervisor_route(router) -> None:
    from ccserver.web.http import json_response

    async def supervisors_only(req):
        return json_response({"role": req.principal.role})

    router.add("GET", "/api/sup-only", supervisors_only, access="api", roles=("supervisor",))


def test_deactivated_user_is_refused_within_the_cache_time(users):
    router, ctx = make_router(users)  # auth.user_cache_seconds: 5 by default
    headers = bearer(router, "agent8001", "agent-pass")
    assert call(router, "GET", "/api/me", headers=headers).status == 200
    users.update("agent8001", active=False)
    ctx.clock.advance(5.01)
    refused = call(router, "GET", "/api/me", headers=headers)
    assert refused.status == 401 and refused.json()["error"] == "user deactivated"
    assert call(router, "GET", "/api/me", headers=headers).json()["error"] == "session ended"
    users.update("agent8001", active=True)  # reactivated: that session stays over; a new login works
    ctx.clock.advance(5.01)
    assert call(router, "GET", "/api/me", headers=headers).status == 401
    assert call(router, "GET", "/api/me", headers=bearer(router, "agent8001", "agent-pass")).status == 200


def test_without_a_cache_deactivation_applies_to_the_next_request(users):
    router, _ = make_router(users, environ={**SECRET, "CCSERVER_AUTH_USER_CACHE_SECONDS": "0"})
    headers = bearer(router, "agent8001", "agent-pass")
    users.update("agent8001", active=False)
    assert call(router, "GET", "/api/me", headers=headers).status == 401


def test_browser_session_of_a_deleted_user_goes_to_the_login_page(users):
    router, ctx = make_router(users)
    page = call(router, "GET", "/login")
    import re

    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    login = call(router, "POST", "/login", form={"username": "sup", "password": "sup-pass", "csrf_token": csrf},
                 headers={"Cookie": f"ccserver_login={page.cookies()['ccserver_login']}"})
    cookie = {"Cookie": f"ccserver_session={login.cookies()['ccserver_session']}"}
    assert call(router, "GET", "/", headers=cookie).status == 200
    del users.users["sup"]
    ctx.clock.advance(6)
    gone = call(router, "GET", "/", headers=cookie)
    assert gone.status == 303 and gone.header("location").startswith("/login")


def test_a_changed_role_applies(users):
    router, ctx = make_router(users)
    add_supervisor_route(router)
    agent = bearer(router, "agent8001", "agent-pass")
    sup = bearer(router, "sup", "sup-pass")
    assert call(router, "GET", "/api/sup-only", headers=agent).status == 403
    users.update("agent8001", role="supervisor")
    users.update("sup", role="agent")
    ctx.clock.advance(5.01)
    promoted = call(router, "GET", "/api/sup-only", headers=agent)
    assert promoted.status == 200 and promoted.json() == {"role": "supervisor"}
    assert call(router, "GET", "/api/me", headers=agent).json()["role"] == "supervisor"
    assert call(router, "GET", "/api/sup-only", headers=sup).status == 403


def test_user_is_looked_up_once_per_cache_time(users):
    router, ctx = make_router(users)
    headers = bearer(router, "agent8001", "agent-pass")
    before = users.lookups
    for _ in range(50):
        assert call(router, "GET", "/api/me", headers=headers).status == 200
    assert users.lookups - before == 1
    ctx.clock.advance(5.01)
    call(router, "GET", "/api/me", headers=headers)
    assert users.lookups - before == 2


def test_user_check_unavailable_is_503_not_a_pass(users):
    router, ctx = make_router(users)
    headers = bearer(router, "agent8001", "agent-pass")
    users.down = True
    ctx.clock.advance(5.01)
    reply = call(router, "GET", "/api/me", headers=headers)
    assert reply.status == 503 and reply.header("retry-after")
    users.down = False
    assert call(router, "GET", "/api/me", headers=headers).status == 200


def test_logout_is_audited_and_ends_the_session_once(users):
    router, ctx = make_router(users)
    ended: list[tuple[str, str]] = []
    ctx.sessions.on_session_ended.append(lambda p, reason: ended.append((p.username, reason)))
    headers = bearer(router, "agent8001", "agent-pass")
    assert call(router, "POST", "/api/logout", headers=headers).status == 200
    assert ("logout", 2, "agent8001", "192.0.2.10", {"via": "api"}) in users.audit_log
    assert call(router, "GET", "/api/me", headers=headers).status == 401
    assert call(router, "POST", "/api/logout", headers=headers).status == 401  # already over: nothing twice
    assert ended == [("agent8001", LOGOUT)]


def test_logout_form_is_audited(users):
    import re

    router, ctx = make_router(users)
    page = call(router, "GET", "/login")
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    login = call(router, "POST", "/login", form={"username": "sup", "password": "sup-pass", "csrf_token": csrf},
                 headers={"Cookie": f"ccserver_login={page.cookies()['ccserver_login']}"}, client_ip="198.51.100.4")
    cookie = {"Cookie": f"ccserver_session={login.cookies()['ccserver_session']}"}
    home = call(router, "GET", "/", headers=cookie)
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', home.body).group(1).decode()
    out = call(router, "POST", "/logout", form={"csrf_token": csrf}, headers=cookie, client_ip="198.51.100.4")
    assert out.status == 303
    assert users.audit_log[-1] == ("logout", 3, "sup", "198.51.100.4", {"via": "form"})


def test_session_ended_hook_on_deactivation_and_expiry(users):
    router, ctx = make_router(users)
    ended: list[tuple[str, str]] = []
    ctx.sessions.on_session_ended.append(lambda p, reason: ended.append((p.username, reason)))
    failing: list[str] = []

    def broken(p, reason):
        failing.append(reason)
        raise RuntimeError("a broken hook must not break the others or the request")

    async def later(p, reason):  # a hook may be asynchronous
        await defer.succeed(None)
        ended.append((p.username, "async " + reason))

    ctx.sessions.on_session_ended.insert(0, broken)
    ctx.sessions.on_session_ended.append(later)
    agent = bearer(router, "agent8001", "agent-pass")
    bearer(router, "sup", "sup-pass")  # never used again: it simply runs out
    users.update("agent8001", active=False)
    ctx.clock.advance(5.01)
    for _ in range(3):
        assert call(router, "GET", "/api/me", headers=agent).status == 401
    assert ended == [("agent8001", DEACTIVATED), ("agent8001", "async " + DEACTIVATED)]
    ctx.clock.advance(3600)  # both tokens' lifetime: only the session nobody ended expires
    assert ended[2:] == [("sup", EXPIRED), ("sup", "async " + EXPIRED)]
    assert failing == [DEACTIVATED, EXPIRED]


def test_concurrent_misses_share_one_lookup():
    pending: list[defer.Deferred[Any]] = []

    def load(user_id: int) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        pending.append(d)
        return d

    cache = UserCache(load, ttl=5, clock=task.Clock().seconds)
    waiting = [defer.ensureDeferred(cache.get(7)) for _ in range(10)]
    assert len(pending) == 1
    record = UserRecord(7, "u7", "agent", "", True)
    pending[0].callback(record)
    assert [d.result for d in waiting] == [record] * 10
    failed = [defer.ensureDeferred(cache.get(8)) for _ in range(3)]
    pending[1].errback(ConnectionError("down"))
    for d in failed:
        assert isinstance(d.result.value, ConnectionError)
        d.addErrback(lambda _: None)


# -- Redis: a logout on one node is seen by every node ---------------------------------------------------------------
def run(reactor: Any, coro: Any, timeout: float = 5.0) -> Any:
    loop = reactor._asyncioEventloop

    async def inside() -> Any:
        return await defer.Deferred.fromCoroutine(coro).asFuture(loop)

    return loop.run_until_complete(asyncio.wait_for(inside(), timeout))


def test_redis_revocations_are_shared_and_expire_with_the_token(aio_reactor, redis_url):
    import time

    import redis.asyncio as aioredis

    from ccserver.auth import TokenSigner

    reactor = aio_reactor
    client = aioredis.Redis.from_url(redis_url)
    users = MemoryUsers()
    users.add(2, "agent8001", "agent", "agent-pass")

    async def lookup(user_id: int) -> Any:
        return users.get(user_id)

    def node() -> Sessions:
        return Sessions(UserCache(lookup, ttl=0), RedisRevocations(client))

    one, two = node(), node()
    ended: list[tuple[str, str]] = []
    for sessions in (one, two):
        sessions.on_session_ended.append(lambda p, reason: ended.append((p.username, reason)))
    signer = TokenSigner(b"test-secret-key-0123456789", 3600)
    _, principal = signer.issue(2, "agent8001", "agent")
    assert run(reactor, two.check(principal)) == principal
    assert run(reactor, one.end(principal, LOGOUT)) is True
    with pytest.raises(AuthError, match="session ended"):
        run(reactor, two.check(principal))
    assert run(reactor, two.end(principal, LOGOUT)) is False  # ended once, across nodes
    key = RedisRevocations.PREFIX + principal.session_id
    ttl = reactor._asyncioEventloop.run_until_complete(client.ttl(key))
    assert 3600 < ttl <= 3600 + 300 + 1 and principal.expires_at - time.time() <= 3600
    # a deactivation detected by both nodes at once fires the hook once
    _, other = signer.issue(2, "agent8001", "agent")
    users.update("agent8001", active=False)

    async def both_at_once() -> list[Any]:
        checks = [defer.Deferred.fromCoroutine(sessions.check(other)) for sessions in (one, two)]
        return await defer.DeferredList(checks, consumeErrors=True)

    outcomes = run(reactor, both_at_once())
    assert [ok for ok, _ in outcomes] == [False, False]
    assert all(failure.check(AuthError) for _, failure in outcomes)
    assert ended == [("agent8001", LOGOUT), ("agent8001", DEACTIVATED)]
    reactor._asyncioEventloop.run_until_complete(client.aclose())


def test_redis_down_is_503_not_a_pass(aio_reactor):
    import socket

    import redis.asyncio as aioredis

    from ccserver.auth import TokenSigner

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)

    async def lookup(user_id: int) -> Any:
        return UserRecord(user_id, "u", "agent", "", True)

    sessions = Sessions(UserCache(lookup, ttl=0), RedisRevocations(client))
    _, principal = TokenSigner(b"test-secret-key-0123456789", 3600).issue(2, "u", "agent")
    with pytest.raises(AuthUnavailable):
        run(aio_reactor, sessions.check(principal))
    aio_reactor._asyncioEventloop.run_until_complete(client.aclose())


def test_logout_that_cannot_be_recorded_says_so(users):
    router, ctx = make_router(users)
    headers = bearer(router, "agent8001", "agent-pass")

    class Down:
        async def revoke(self, session_id, expires_at):
            raise ConnectionError("redis down")

        async def is_revoked(self, session_id):
            return False

    ctx.sessions.revocations = Down()
    reply = call(router, "POST", "/api/logout", headers=headers)
    assert reply.status == 503 and reply.header("retry-after")
    assert not any(entry[0] == "logout" for entry in users.audit_log)  # nothing audited that did not happen
