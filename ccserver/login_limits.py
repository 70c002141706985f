"""Login attempt budgets: per username and, separately and larger, per client address.

An attempt is counted when it is admitted — before the awaited password check — so a burst of simultaneous
wrong logins cannot all reach the check (limit 5: at most 5 are checked, the rest answered 429 at once).
The outcome then settles it:

- failure: the attempt stays counted against both budgets until it leaves the window;
- success: the username's failures are cleared and this attempt is refunded to the address, so a call floor
  behind one NAT address spends its (larger) address budget on mistakes only, never on good logins;
- no verdict (the server was busy, the user store failed): the attempt is refunded to both.

A refused attempt is not counted, so hammering does not extend a lock-out past the window. Two stores behind
one interface: ``MemoryLoginLimiter`` (one process; stale keys pruned as it goes and capped) and
``RedisLoginLimiter`` (shared by every node; one Lua script per admission; keys expire with the window).
Hand-written because the refund semantics above are not what rate-limit libraries offer.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

USER_PREFIX = "u:"
ADDRESS_PREFIX = "a:"


@dataclass(frozen=True)
class Admission:
    """One login attempt: admitted (``retry_after == 0``, counted, ``attempt`` names it) or refused."""

    username_key: str
    address_key: str
    attempt: str
    retry_after: float

    @property
    def admitted(self) -> bool:
        return self.retry_after <= 0

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for a Retry-After header (never 0 on a refusal)."""
        return max(1, math.ceil(self.retry_after))


class LoginLimiter(Protocol):
    async def admit(self, username: str, address: str) -> Admission: ...

    async def succeeded(self, admission: Admission) -> None: ...

    async def cancel(self, admission: Admission) -> None: ...


def _keys(username: str, address: str) -> tuple[str, str]:
    return USER_PREFIX + username.casefold(), ADDRESS_PREFIX + address


class MemoryLoginLimiter:
    """Budgets in this process. Keys live in touch order, so pruning walks only the stale front; ``max_keys``
    bounds memory under a spray of usernames from many addresses (the oldest keys go first)."""

    def __init__(self, user_attempts: int, address_attempts: int, window: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.user_attempts = user_attempts
        self.address_attempts = address_attempts
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._attempts: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._attempts)

    def _prune(self, now: float) -> None:
        cutoff = now - self.window
        while self._attempts:
            key, stamps = next(iter(self._attempts.items()))
            if stamps and stamps[-1][0] > cutoff:
                break  # touch order: every key behind this one was touched later
            del self._attempts[key]
        while len(self._attempts) > self.max_keys:
            self._attempts.popitem(last=False)

    def _wait(self, key: str, limit: int, now: float) -> float:
        stamps = self._attempts.get(key)
        if not stamps:
            return 0.0
        cutoff = now - self.window
        while stamps and stamps[0][0] <= cutoff:
            stamps.popleft()
        if len(stamps) < limit:
            return 0.0
        return stamps[len(stamps) - limit][0] + self.window - now

    async def admit(self, username: str, address: str) -> Admission:
        now = self._clock()
        self._prune(now)
        user_key, address_key = _keys(username, address)
        wait = max(self._wait(user_key, self.user_attempts, now), self._wait(address_key, self.address_attempts, now))
        if wait > 0:
            return Admission(user_key, address_key, "", wait)
        attempt = secrets.token_hex(8)
        for key in (user_key, address_key):
            self._attempts.setdefault(key, deque()).append((now, attempt))
            self._attempts.move_to_end(key)
        return Admission(user_key, address_key, attempt, 0.0)

    def _refund(self, key: str, attempt: str) -> None:
        stamps = self._attempts.get(key)
        if stamps is None:
            return
        for entry in stamps:
            if entry[1] == attempt:
                stamps.remove(entry)
                break
        if not stamps:
            del self._attempts[key]

    async def succeeded(self, admission: Admission) -> None:
        self._attempts.pop(admission.username_key, None)
        self._refund(admission.address_key, admission.attempt)

    async def cancel(self, admission: Admission) -> None:
        self._refund(admission.username_key, admission.attempt)
        self._refund(admission.address_key, admission.attempt)


# KEYS: username, address. ARGV: now (ms), window (ms), username limit, address limit, attempt id.
# Returns 0 when admitted (and counted in both sorted sets), else the milliseconds to wait.
_ADMIT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limits[i] then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limits[i], count - limits[i], 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
"""


class RedisLoginLimiter:
    """The same budgets in Redis (``ccserver:login:u:<name>``, ``ccserver:login:a:<address>``), shared by every
    node behind the load balancer. ``redis`` is a ``redis.asyncio`` client."""

    PREFIX = "ccserver:login:"

    def __init__(self, redis: Any, user_attempts: int, address_attempts: int, window: float,
                 clock: Callable[[], float] = time.time):
        from ccserver.customers.cache import as_deferred

        self.user_attempts = user_attempts
        self.address_attempts = address_attempts
        self.window = window
        self._redis = redis
        self._clock = clock
        self._script = redis.register_script(_ADMIT)
        self._bridge = as_deferred

    async def admit(self, username: str, address: str) -> Admission:
        user_key, address_key = _keys(username, address)
        attempt = secrets.token_hex(8)
        now_ms = int(self._clock() * 1000)
        wait_ms = await self._bridge(self._script(
            keys=[self.PREFIX + user_key, self.PREFIX + address_key],
            args=[now_ms, int(self.window * 1000), self.user_attempts, self.address_attempts, attempt],
        ))
        wait = float(wait_ms) / 1000
        return Admission(user_key, address_key, "" if wait > 0 else attempt, wait)

    async def _run(self, *commands: tuple[str, ...]) -> None:
        async def pipeline() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                await pipe.execute()

        await self._bridge(pipeline())

    async def succeeded(self, admission: Admission) -> None:
        await self._run(("DEL", self.PREFIX + admission.username_key),
                        ("ZREM", self.PREFIX + admission.address_key, admission.attempt))

    async def cancel(self, admission: Admission) -> None:
        await self._run(("ZREM", self.PREFIX + admission.username_key, admission.attempt),
                        ("ZREM", self.PREFIX + admission.address_key, admission.attempt))
