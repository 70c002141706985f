"""Password hashing has threads of its own: during a login storm /healthz (whose database probe uses the
shared worker pool, as SQL does) still answers at once. Real threads, real scrypt, a private reactor."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ccserver.login_limits import MemoryLoginLimiter
from ccserver.passwords import PasswordWork
from ccserver.web.app import build_router
from tests.web_support import MemoryUsers, make_context, reply_of, send

STORM = 60


def test_healthz_stays_up_while_many_logins_hash(aio_reactor: Any) -> None:
    reactor = aio_reactor
    loop = reactor._asyncioEventloop
    shared = ThreadPool(minthreads=2, maxthreads=2, name="shared-test")  # the pool SQL and probes use
    shared.start()
    run_blocking = partial(deferToThreadPool, reactor, shared)

    async def database_probe() -> str:
        return str(await run_blocking(lambda: "ok"))

    users = MemoryUsers()
    ctx = make_context(users, clock=reactor, probes={"database": database_probe},
                       limiter=MemoryLoginLimiter(1000, 1000, 300))
    ctx.run_blocking = run_blocking
    ctx.passwords = PasswordWork.on_own_threads(reactor, threads=1, max_waiting=STORM)
    router = build_router(ctx)

    async def until(condition: Any) -> None:
        while not condition():
            await task.deferLater(reactor, 0.005, lambda: None)

    async def storm() -> tuple[int, int, int, list[int]]:
        # Unknown users: each check still runs the full KDF against the dummy hash (~30 ms).
        logins = [send(router, "POST", "/api/login", json_body={"username": f"nobody{n}", "password": "x"},
                       client_ip=f"203.0.113.{n}") for n in range(STORM)]
        await until(lambda: ctx.passwords.pending >= STORM // 2)  # the KDF queue is long now
        health = send(router, "GET", "/healthz")
        await until(lambda: health.finished)
        still_hashing = ctx.passwords.pending
        await until(lambda: all(r.finished for r in logins))
        return reply_of(health).status, still_hashing, ctx.passwords.pending, [reply_of(r).status for r in logins]

    async def main() -> Any:
        return await defer.Deferred.fromCoroutine(storm()).asFuture(loop)

    try:
        status, still_hashing, left, statuses = loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        ctx.passwords.stop()
        shared.stop()
    assert status == 200  # answered at once: it did not wait behind the password work
    assert still_hashing > STORM // 4  # ... which was still going on when /healthz answered
    assert left == 0 and statuses == [401] * STORM


def test_password_checks_beyond_the_bound_are_refused_at_once() -> None:
    held: list[defer.Deferred[Any]] = []

    def hold(fn: Any, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        held.append(d)
        return d

    work = PasswordWork(hold, max_pending=3)
    checks = [defer.ensureDeferred(work.verify("pw", "scrypt$...")) for _ in range(5)]
    assert len(held) == 3 and work.pending == 3
    from ccserver.passwords import PasswordBusy

    for refused in checks[3:]:
        assert isinstance(refused.result.value, PasswordBusy)
        refused.addErrback(lambda _: None)
    for d in held:
        d.callback(True)
    assert [c.result for c in checks[:3]] == [True] * 3 and work.pending == 0
