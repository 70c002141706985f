"""Password hashing has threads of its own: during a login storm /healthz (whose database probe uses the
shared SQL thread pool) still answers at once. Real threads, real scrypt, a private event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from ccserver.bridge import BlockingPool
from ccserver.login_limits import MemoryLoginLimiter
from ccserver.passwords import PasswordBusy, PasswordWork
from ccserver.web.app import build_router
from tests.web_support import MemoryUsers, make_context, reply_of, send

STORM = 60


def test_healthz_stays_up_while_many_logins_hash(aio_reactor: Any) -> None:
    loop = aio_reactor._asyncioEventloop
    shared = BlockingPool(2, name="shared-test")  # the pool SQL and the probes use

    async def database_probe() -> str:
        return str(await shared.run(lambda: "ok"))

    users = MemoryUsers()
    ctx = make_context(users, clock=aio_reactor, probes={"database": database_probe},
                       limiter=MemoryLoginLimiter(1000, 1000, 300))
    ctx.run_blocking = shared.run
    ctx.passwords = PasswordWork.on_own_threads(threads=1, max_waiting=STORM)
    router = build_router(ctx)

    async def until(condition: Any) -> None:
        while not condition():  # real threads are working: wait for them, in small steps
            await asyncio.sleep(0.005)

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

    try:
        status, still_hashing, left, statuses = loop.run_until_complete(asyncio.wait_for(storm(), 60))
    finally:
        ctx.passwords.stop()
        shared.shutdown()
    assert status == 200  # answered at once: it did not wait behind the password work
    assert still_hashing > STORM // 4  # ... which was still going on when /healthz answered
    assert left == 0 and statuses == [401] * STORM


def test_password_checks_beyond_the_bound_are_refused_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        held: list[asyncio.Future[Any]] = []

        def hold(fn: Any, *args: Any) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = loop.create_future()
            held.append(future)
            return future

        work = PasswordWork(hold, max_pending=3)
        checks = [asyncio.ensure_future(work.verify("pw", "scrypt$...")) for _ in range(5)]
        await asyncio.sleep(0)
        assert len(held) == 3 and work.pending == 3
        for refused in checks[3:]:
            assert isinstance(refused.exception(), PasswordBusy)
        for future in held:
            future.set_result(True)
        assert await asyncio.gather(*checks[:3]) == [True] * 3 and work.pending == 0

    asyncio.run(main())
