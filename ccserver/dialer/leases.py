"""Contact leases: two nodes (or two campaigns) never dial the same contact or the same customer at once.

Before an Originate the dialer takes, in one atomic step, ``ccserver:dialer:target:<id>`` and — when the target
is a customer's — ``ccserver:dialer:customer:<id>`` (``SET NX PX`` on both, or neither: a Lua script). The value
is the holder (node id + ActionID), so only the holder may release or extend them. An attempt's leases last
until its outcome is known and written; a node that crashes leaves them to expire (``ttl``), and its attempts are
reconciled, never re-sent. Without Redis (one node) a dictionary does the same in process.

**Send marks.** The dialer writes its attempt rows ahead of the Originates (ccserver/dialer/engine.py); the one
write on an Originate's path is its send mark, ``ccserver:dialer:sent:<ActionID>`` (one ``SET PX`` per tick for
all its Originates, awaited before they leave). After a crash, a row written ahead whose mark is missing was
never sent: it is released, not reconciled. Marks last ``MARK_TTL`` (a day: far past any reconciliation). The
in-process marks of :class:`MemoryContactLeases` die with the process: a restarted single node cannot tell, so
it reconciles such rows as sent (``durable`` False) — never a double dial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["ContactLeases", "MemoryContactLeases", "RedisContactLeases"]

PREFIX = "ccserver:dialer:"
MARK_TTL = 86400.0

# KEYS: the lease keys; ARGV: holder, ttl ms. All or nothing.
_TAKE = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""
# KEYS: the lease keys; ARGV: holder, ttl ms (0: delete). Only what the holder still holds.
_KEEP = """
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', key, ARGV[2]) else redis.call('DEL', key) end
    n = n + 1
  end
end
return n
"""


def _keys(target_id: int, customer_id: int | None) -> list[str]:
    keys = [f"{PREFIX}target:{target_id}"]
    if customer_id is not None:
        keys.append(f"{PREFIX}customer:{customer_id}")
    return keys


class ContactLeases:
    """The interface: ``take`` (all or nothing), ``extend``, ``release``; ``holder`` names who holds a target;
    ``mark_sent`` / ``marked``: the send marks (``durable``: they outlive this process)."""

    durable = False

    async def mark_sent(self, action_ids: list[str]) -> None:
        raise NotImplementedError

    async def marked(self, action_ids: list[str]) -> set[str]:
        raise NotImplementedError

    async def take(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> bool:
        raise NotImplementedError

    async def extend(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> int:
        raise NotImplementedError

    async def release(self, target_id: int, customer_id: int | None, holder: str) -> int:
        raise NotImplementedError


class RedisContactLeases(ContactLeases):
    durable = True

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def mark_sent(self, action_ids: list[str]) -> None:
        if not action_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for action_id in action_ids:
            pipe.set(f"{PREFIX}sent:{action_id}", 1, px=int(MARK_TTL * 1000))
        await pipe.execute()

    async def marked(self, action_ids: list[str]) -> set[str]:
        if not action_ids:
            return set()
        found = await self.redis.mget([f"{PREFIX}sent:{a}" for a in action_ids])
        return {a for a, v in zip(action_ids, found, strict=True) if v is not None}

    async def take(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> bool:
        keys = _keys(target_id, customer_id)
        return bool(await self.redis.eval(_TAKE, len(keys), *keys, holder, max(1, int(ttl * 1000))))

    async def extend(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> int:
        keys = _keys(target_id, customer_id)
        return int(await self.redis.eval(_KEEP, len(keys), *keys, holder, max(1, int(ttl * 1000))))

    async def release(self, target_id: int, customer_id: int | None, holder: str) -> int:
        keys = _keys(target_id, customer_id)
        return int(await self.redis.eval(_KEEP, len(keys), *keys, holder, 0))


class MemoryContactLeases(ContactLeases):
    """One node, no Redis: the same rules in a dictionary (``clock``: monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._marks: dict[str, float] = {}

    async def mark_sent(self, action_ids: list[str]) -> None:
        now = self._clock()
        for action_id in action_ids:
            self._marks[action_id] = now + MARK_TTL
        if len(self._marks) > 100_000:  # keep a day's worth at most
            self._marks = {k: v for k, v in self._marks.items() if v > now}

    async def marked(self, action_ids: list[str]) -> set[str]:
        now = self._clock()
        return {a for a in action_ids if self._marks.get(a, 0.0) > now}

    def _live(self, key: str) -> tuple[str, float] | None:
        entry = self._held.get(key)
        if entry is not None and entry[1] <= self._clock():
            del self._held[key]
            return None
        return entry

    async def take(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> bool:
        keys = _keys(target_id, customer_id)
        if any(self._live(k) is not None for k in keys):
            return False
        for key in keys:
            self._held[key] = (holder, self._clock() + ttl)
        return True

    async def extend(self, target_id: int, customer_id: int | None, holder: str, ttl: float) -> int:
        n = 0
        for key in _keys(target_id, customer_id):
            entry = self._live(key)
            if entry is not None and entry[0] == holder:
                self._held[key] = (holder, self._clock() + ttl)
                n += 1
        return n

    async def release(self, target_id: int, customer_id: int | None, holder: str) -> int:
        n = 0
        for key in _keys(target_id, customer_id):
            entry = self._live(key)
            if entry is not None and entry[0] == holder:
                del self._held[key]
                n += 1
        return n
