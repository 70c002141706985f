"""Sessions after the signature: ended sessions, the user's current state, and the "session ended" hook.

Tokens (bearer or session cookie) are signed and stateless, and live for ``auth.token_lifetime_hours``. So every
authenticated request is also checked here:

1. **Revoked?** A session ended by logout or by a detected deactivation is refused (401 "session ended"). The
   revocations live in Redis when ``redis.url`` is set (``ccserver:session-ended:<session id>``: every node sees
   a logout at once; each key expires shortly after its token would have), in this process otherwise.
2. **The user now.** The user is looked up by id — through a cache of ``auth.user_cache_seconds``, and one lookup
   at a time per user — and a user who is deactivated or gone ends the session (401 within that time); a changed
   role or username applies to the request at once.

If either check cannot be made (SQL or Redis down), the request is answered 503, never let through.

``Sessions.on_session_ended`` is a plain list of callbacks ``hook(principal, reason)``, reason one of
``logout``, ``deactivated``, ``expired``, called once per session (the revocation decides who is first, across
nodes too). A hook may return a coroutine (run as an asyncio task); its failure is logged, and it never delays the
request that ended the session. ``expired`` fires from a timer on the node that issued the session; a node
restarted in between does not fire it (a token that simply runs out is refused all the same).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from ccserver.auth import AuthError, AuthUnavailable, Principal
from ccserver.logs import exception_summary
from ccserver.texts import T

log = logging.getLogger(__name__)

LOGOUT = "logout"
DEACTIVATED = "deactivated"
EXPIRED = "expired"

SessionEndedHook = Callable[[Principal, str], object]

# A revocation outlives its token a little, so nodes whose clocks run behind still refuse it.
REVOCATION_GRACE_SECONDS = 300


class UserState(Protocol):
    """What the check needs of a user (``ccserver.web.context.UserRecord``)."""

    id: int
    username: str
    role: str
    active: bool


class Revocations(Protocol):
    async def revoke(self, session_id: str, expires_at: float) -> bool:
        """End the session; True when this call ended it (False: it had already ended)."""
        ...

    async def is_revoked(self, session_id: str) -> bool: ...


class MemoryRevocations:
    """Ended sessions of this process, forgotten once their token has expired (plus the grace)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._until: dict[str, float] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._until)

    async def revoke(self, session_id: str, expires_at: float) -> bool:
        now = self._clock()
        self._until = {k: v for k, v in self._until.items() if v > now}
        if session_id in self._until:
            return False
        self._until[session_id] = expires_at + REVOCATION_GRACE_SECONDS
        return True

    async def is_revoked(self, session_id: str) -> bool:
        return session_id in self._until


class RedisRevocations:
    """Ended sessions in Redis, seen by every node. ``redis`` is a ``redis.asyncio`` client."""

    PREFIX = "ccserver:session-ended:"

    def __init__(self, redis: Any):
        self._redis = redis

    async def revoke(self, session_id: str, expires_at: float) -> bool:
        until = math.ceil(expires_at) + REVOCATION_GRACE_SECONDS
        created = await self._redis.set(self.PREFIX + session_id, b"1", nx=True, exat=until)
        return bool(created)

    async def is_revoked(self, session_id: str) -> bool:
        return bool(await self._redis.exists(self.PREFIX + session_id))


class UserCache:
    """Users by id, each kept ``ttl`` seconds; concurrent misses for one user share a single lookup."""

    MAX_ENTRIES = 10_000

    def __init__(self, load: Callable[[int], Awaitable[UserState | None]], ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[int, tuple[float, UserState | None]] = {}
        self._loading: dict[int, list[asyncio.Future[UserState | None]]] = {}

    def forget(self, user_id: int) -> None:
        """Drop a cached user (after a change made through this node, say)."""
        self._entries.pop(user_id, None)

    async def get(self, user_id: int) -> UserState | None:
        entry = self._entries.get(user_id)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        waiting = self._loading.get(user_id)
        if waiting is not None:
            mine: asyncio.Future[UserState | None] = asyncio.get_running_loop().create_future()
            waiting.append(mine)
            return await mine
        self._loading[user_id] = []
        try:
            user = await self._load(user_id)
        except Exception as exc:
            for waiter in self._loading.pop(user_id):
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        if len(self._entries) >= self.MAX_ENTRIES:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        if self._ttl > 0:
            self._entries[user_id] = (self._clock() + self._ttl, user)
        for waiter in self._loading.pop(user_id):
            if not waiter.done():
                waiter.set_result(user)
        return user


class Sessions:
    """The per-request session check and the one place sessions end."""

    def __init__(self, users: UserCache, revocations: Revocations, reactor: Any = None, log_pii: bool = False):
        self.users = users
        self.revocations = revocations
        self.on_session_ended: list[SessionEndedHook] = []
        self._reactor = reactor  # IReactorTime for the expiry timers; None: no timers
        self._timers: dict[str, Any] = {}
        self._log_pii = log_pii  # a failing hook's exception text is logged only with server.log_pii

    async def check(self, principal: Principal) -> Principal:
        """The principal as it stands now (current role and username), or AuthError / AuthUnavailable."""
        try:
            revoked = await self.revocations.is_revoked(principal.session_id)
        except Exception as exc:
            log.warning("session check failed: revocations unavailable (%s)", type(exc).__name__)
            raise AuthUnavailable(T("session check unavailable; try again shortly")) from None
        if revoked:
            raise AuthError(T("session ended"))
        try:
            user = await self.users.get(principal.user_id)
        except Exception as exc:
            log.warning("session check failed: user lookup unavailable (%s)", type(exc).__name__)
            raise AuthUnavailable(T("session check unavailable; try again shortly")) from None
        if user is None or not user.active:
            try:
                ended_here = await self.end(principal, DEACTIVATED)
            except Exception as exc:
                log.warning("session check failed: revocations unavailable (%s)", type(exc).__name__)
                raise AuthUnavailable(T("session check unavailable; try again shortly")) from None
            if ended_here:
                log.info("session of user id %d ended: %s", principal.user_id, "deactivated" if user else "deleted")
            raise AuthError(T("user deactivated"))
        must_change = bool(getattr(user, "must_change_password", False))
        if user.role != principal.role or user.username != principal.username \
                or must_change != principal.must_change_password:
            principal = replace(principal, role=user.role, username=user.username, must_change_password=must_change)
        return principal

    def started(self, principal: Principal) -> None:
        """A session issued here: ``expired`` fires when its token runs out, unless it ended before."""
        if self._reactor is None:
            return
        delay = max(0.0, principal.expires_at - self._reactor.seconds())
        loop = asyncio.get_running_loop()  # the timer may fire from outside it (task.Clock in tests): run there
        self._timers[principal.session_id] = self._reactor.callLater(delay, self._expire, principal, loop)

    def _expire(self, principal: Principal, loop: asyncio.AbstractEventLoop) -> None:
        self._timers.pop(principal.session_id, None)

        def done(task: asyncio.Future[bool]) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                log.warning("session expiry not recorded: %s", type(error).__name__)

        loop.create_task(self.end(principal, EXPIRED)).add_done_callback(done)

    async def end(self, principal: Principal, reason: str) -> bool:
        """End the session (revoke it) and tell the hooks; False when it had already ended."""
        timer = self._timers.pop(principal.session_id, None)
        if timer is not None and timer.active():
            timer.cancel()
        if not await self.revocations.revoke(principal.session_id, principal.expires_at):
            return False
        for hook in list(self.on_session_ended):
            self._call(hook, principal, reason)
        return True

    def _call(self, hook: SessionEndedHook, principal: Principal, reason: str) -> None:
        def failed(exc: BaseException) -> None:
            log.error("session-ended hook %r failed (user id %d, %s): %s", hook, principal.user_id, reason,
                      exception_summary(exc, self._log_pii))

        try:
            result = hook(principal, reason)
        except Exception as exc:
            failed(exc)
            return
        if inspect.isawaitable(result):
            def done(task: asyncio.Future[Any]) -> None:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    failed(error)

            asyncio.ensure_future(result).add_done_callback(done)
