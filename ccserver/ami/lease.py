"""Which ccserver node consumes an Asterisk's AMI: a Redis lease with renewal and takeover on expiry.

``SET key node NX PX ttl`` takes a free lease; the holder renews it (compare-and-PEXPIRE in Lua, so a
node never extends a lease it lost); when the holder dies the key expires and another node takes it.
A node that cannot reach Redis treats its lease as lost once its local copy would have expired — it
must stop consuming before someone else may start (no two consumers).

Followers get the events through Redis pub/sub: see :mod:`ccserver.ami.relay`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("ccserver.ami.lease")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    """One lease (e.g. ``ccserver:ami-lease:<server>``) held by at most one node id at a time.

    ``redis`` is a ``redis.asyncio.Redis``. ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(self, redis: Any, key: str, node_id: str, *, ttl_ms: int = 15_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        self.redis = redis
        self.key = key
        self.node_id = node_id
        self.ttl_ms = ttl_ms
        self.clock = clock
        self.valid_until = 0.0  # local, conservative expiry of our hold

    @property
    def held(self) -> bool:
        return self.clock() < self.valid_until

    def _granted(self, started: float) -> None:
        # Count from before the request: the server's expiry is at least this late.
        self.valid_until = started + self.ttl_ms / 1000.0

    async def acquire(self) -> bool:
        """Take the lease if free, or renew it if we hold it. True if we hold it afterwards."""
        started = self.clock()
        if await self.redis.set(self.key, self.node_id, nx=True, px=self.ttl_ms):
            self._granted(started)
            return True
        return await self.renew()

    async def renew(self) -> bool:
        started = self.clock()
        if await self.redis.eval(_RENEW, 1, self.key, self.node_id, self.ttl_ms):
            self._granted(started)
            return True
        self.valid_until = 0.0
        return False

    async def release(self) -> bool:
        self.valid_until = 0.0
        return bool(await self.redis.eval(_RELEASE, 1, self.key, self.node_id))

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        if isinstance(value, bytes):
            value = value.decode()
        return value


class LeaseKeeper:
    """Keeps trying to hold a lease; calls ``on_acquired()`` / ``on_lost()`` on transitions (plain functions or
    coroutines). If ``on_acquired()`` raises, the lease is released and the next step tries again.

    Call ``step()`` every ``interval`` seconds (default ttl/3): it acquires, renews or notices loss. ``stop()`` ends
    :meth:`run` by itself, without relying on cancelling it: redis-py (8.1) can swallow a cancel that arrives while
    a command is in flight, and a keeper that went on would take the lease again for a node that stopped.
    """

    def __init__(self, lease: RedisLease, *, on_acquired: Callable[[], Any], on_lost: Callable[[], Any],
                 interval: float | None = None) -> None:
        self.lease = lease
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.interval = interval if interval is not None else lease.ttl_ms / 3000.0
        self.active = False  # whether we told the owner it holds the lease
        self.stopped = False

    async def step(self) -> bool:
        if self.stopped:
            return False
        try:
            holds = await self.lease.acquire()
        except Exception as exc:  # noqa: BLE001 - Redis down: keep the lease only while surely valid
            holds = self.lease.held
            log.warning("lease %s: Redis error (%s); %s", self.lease.key, exc,
                        "still valid locally" if holds else "treating it as lost")
        if self.stopped:  # stopped while Redis answered: whatever it granted goes back
            if holds:
                await self._release()
            return False
        if holds and not self.active:
            log.info("lease %s acquired by %s", self.lease.key, self.lease.node_id)
            try:
                await _maybe_await(self.on_acquired())
            except Exception:  # noqa: BLE001 - the owner could not take over: give the lease back, retry next step
                log.exception("lease %s: taking over failed; released", self.lease.key)
                await self._release()
                return False
            self.active = True
        elif not holds and self.active:
            self.active = False
            log.warning("lease %s lost by %s", self.lease.key, self.lease.node_id)
            await _maybe_await(self.on_lost())
        return holds

    async def run(self, sleep: Callable[[float], Awaitable[Any]]) -> None:
        """Step every ``interval`` until :meth:`stop`; ``sleep`` is e.g. ``asyncio.sleep``."""
        while not self.stopped:
            await self.step()
            if not self.stopped:
                await sleep(self.interval)

    async def stop(self) -> None:
        self.stopped = True
        if self.active:
            self.active = False
            await _maybe_await(self.on_lost())
        await self._release()

    async def _release(self) -> None:
        try:
            await self.lease.release()
        except Exception as exc:  # noqa: BLE001
            log.warning("lease %s: release failed (%s); it will expire", self.lease.key, exc)


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
