"""Number → Identity cache for the call path, and the per-number 24-hour call counter.

Two implementations of ``SummaryCache``:

- ``RedisSummaryCache(redis.asyncio client)``: shared by every node, so an invalidation anywhere is global.
  ``lookup`` is **one** round trip (a small Lua script: GET + ZADD + ZREMRANGEBYSCORE + ZCARD + EXPIRE);
  ``store`` and ``invalidate_*`` are one round trip each (Lua scripts / a pipeline).
- ``MemorySummaryCache``: single node without Redis; plain dicts, bounded (LRU), no thread hop.

**Awaiting.** Both are asyncio coroutines: await them from asyncio code or a FastAGI handler (its runner waits on
asyncio futures too). The routed call's hot path awaits ``RedisSummaryCache.lookup_deferred`` instead, a Deferred
from the call-path RESP client that resumes the handler without an extra loop turn (see README, "The routed call's
own I/O"). ``bridge(cache, coro)`` gives a Deferred for code that chains on Deferreds (``ccserver.bridge``).

**Keys** (Redis; ``prefix`` default ``ccserver:cust:``)::

    num:<e164>      JSON Identity (created_prospect not kept), TTL ``ttl`` (default 600 s), ``negative_ttl`` for
                    unknown numbers (default 60 s)
    calls:<e164>    sorted set of call times (score = epoch seconds), trimmed to 24 h, expires after 24 h idle
    cust:<id>       set of the numbers cached for customer <id> (the reverse index; TTL refreshed on store)
    fence:c:<id>    "recently invalidated" markers, ``fence_seconds`` (default 10 s): ``store`` refuses an
    fence:n:<e164>  identity that names a fenced customer or number

**Never serving stale or deleted customers.** The write paths call ``changes`` hooks, whose ``Invalidation`` is
applied here: ``invalidate_customer`` drops every cached number of that customer (reverse index) — on delete
too — and ``invalidate_numbers`` drops numbers that were added to / removed from any customer. The fences close
the classic race where a lookup that read SQL *before* the change stores its (old) answer *after* the
invalidation: for ``fence_seconds`` such a store is refused. The TTL is the safety net for writes that bypass
the hooks. After a change to many customers at once (a full score recompute, a demo reload)
``invalidate_all`` drops every cached customer (Redis: a ``SCAN`` of the reverse indexes, never a blocking
walk). Redis may over-invalidate (a number that moved away from a customer can stay in that customer's
reverse index until it expires): one extra SQL read, never a wrong answer.

``lookup`` returns the number of calls from the number in the last 24 h **including this one**;
``CustomerSummary.calls_last_24h`` counts the earlier ones — ``with_calls(identity, n)`` fills it (n − 1).
"""

from __future__ import annotations

import json
import operator
import os
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import fields, replace
from typing import Any, Final, Protocol, TypeVar

from ccserver.bridge import as_deferred
from ccserver.customers.directory import Identity
from ccserver.customers.resp import RespError, RespOutOfStep, ScriptDigest
from ccserver.jsontext import json_encoder
from routing.decision import CustomerSummary

__all__ = [
    "SummaryCache",
    "RedisSummaryCache",
    "MemorySummaryCache",
    "as_deferred",
    "bridge",
    "with_calls",
    "encode_identity",
    "decode_identity",
    "DAY_SECONDS",
]

DAY_SECONDS: Final = 86_400
T = TypeVar("T")

_FIELDS: Final = ("id", "name", "tier", "score", "vip", "preferred_language", "sales_consultant",
                  "service_advisor", "open_complaint", "ambiguous")  # fmt: skip


class SummaryCache(Protocol):
    inline: bool  # True: the coroutines never suspend, await them directly anywhere

    async def lookup(self, e164: str, now: float) -> tuple[Identity | None, int]:
        """(cached identity or None, calls from ``e164`` in the 24 h up to ``now`` including this one)."""
        ...

    async def peek(self, e164: str) -> Identity | None:
        """The cached identity or None, counting no call: who a number is for a screen pop or a search."""
        ...

    async def store(self, e164: str, identity: Identity) -> None: ...

    async def invalidate_customer(self, customer_id: int) -> None: ...

    async def invalidate_numbers(self, e164s: Iterable[str]) -> None: ...

    async def invalidate_all(self) -> int:
        """Drop every cached identity that names a customer (as ``invalidate_customer`` each, fences included);
        returns how many customers were dropped. Unknown-number entries and call counters stay."""
        ...


def bridge(cache: SummaryCache, coro: Coroutine[Any, Any, T]) -> Any:
    """Something a Twisted-driven coroutine can await: the coroutine itself for an inline cache, else a
    Deferred (``as_deferred``)."""
    return coro if cache.inline else as_deferred(coro)


def with_calls(identity: Identity, calls_including_this: int) -> Identity:
    """The identity with ``calls_last_24h`` = earlier calls in 24 h (the counter includes this call)."""
    customer = identity.customer
    if customer is None:
        return identity
    earlier = max(0, int(calls_including_this) - 1)
    if customer.calls_last_24h == earlier:
        return identity
    if type(customer) is CustomerSummary:
        # dataclasses.replace, minus its walk over the fields' metadata (every repeat caller's call)
        values = list(_SUMMARY_VALUES(customer))
        values[_CALLS_AT] = earlier
        changed = CustomerSummary(*values)
    else:
        changed = replace(customer, calls_last_24h=earlier)
    return Identity(changed, identity.other_customer_ids, identity.created_prospect)


# CustomerSummary's fields in __init__ order, read in one C call (with_calls).
_SUMMARY_INIT: Final = tuple(f.name for f in fields(CustomerSummary) if f.init)
_SUMMARY_VALUES: Final = operator.attrgetter(*_SUMMARY_INIT)
_CALLS_AT: Final = _SUMMARY_INIT.index("calls_last_24h")


_JSON: Final = json_encoder(ensure_ascii=False, separators=(",", ":"))  # made once, not per call
_FIELD_VALUES: Final = operator.attrgetter(*_FIELDS)


def encode_identity(identity: Identity) -> str:
    """Compact JSON (``ensure_ascii=False``: names stay readable UTF-8)."""
    c = identity.customer
    data: dict[str, Any] = {"c": None if c is None else _FIELD_VALUES(c)}
    if identity.other_customer_ids:
        data["o"] = list(identity.other_customer_ids)
    return _JSON(data)


def decode_identity(raw: str | bytes) -> Identity | None:
    """The identity back (``created_prospect`` False: the call that created it is over); None if unreadable."""
    try:
        data = json.loads(raw)
        c = data["c"]
        if c is None:
            customer = None
        else:
            # _FIELDS in order (checked below); a list of another length fails the unpacking (ValueError)
            id_, name, tier, score, vip, language, consultant, advisor, complaint, ambiguous = c
            customer = CustomerSummary(id_, name, tier, score, vip, language, consultant, advisor, complaint,
                                       ambiguous=ambiguous)
        return Identity(customer, tuple(map(int, data.get("o", ()))), False)
    except (ValueError, TypeError, KeyError):
        return None


# decode_identity unpacks exactly _FIELDS (ten, "ambiguous" last) and passes the first nine by position: they must
# be CustomerSummary's first nine fields.
if tuple(f.name for f in fields(CustomerSummary))[:9] != _FIELDS[:9] or _FIELDS[9:] != ("ambiguous",):
    raise ImportError("CustomerSummary's fields moved: update decode_identity")


def _customer_ids(identity: Identity) -> list[int]:
    ids = list(identity.other_customer_ids)
    if identity.customer is not None:
        ids.insert(0, int(identity.customer.id))
    return ids


# --- Redis --------------------------------------------------------------------------------------------

# The 32 random bits that tell two calls in the same microsecond apart in a number's call counter: from a generator
# seeded by the OS once (again in a forked child), not a getrandom() system call per call as secrets.token_hex.
# Uniqueness is all they are for: nothing secret rests on them.
_MEMBER_RANDOM = random.Random()
_member_bits = _MEMBER_RANDOM.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_MEMBER_RANDOM.seed)

# Both call-path scripts answer with the number they were asked about first: the client checks it against the
# request (a reply stream out of step must never hand one caller another caller's identity).

# KEYS: num:<e164>, fence:n:<e164>, cust:<id>...; ARGV: json, ttl, fence:c: prefix, e164, index ttl, ids...
# → {e164, 1 stored | 0 refused (fenced)}
_STORE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {ARGV[4], 0} end
for i = 6, #ARGV do
  if redis.call('EXISTS', ARGV[3] .. ARGV[i]) == 1 then return {ARGV[4], 0} end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
return {ARGV[4], 1}
"""

# KEYS: num:<e164>, calls:<e164>; ARGV: now, member, horizon (now - 24 h), counter ttl, e164
# → {e164, count, identity or nil} (the identity last: a nil ends a Lua table)
# After the trim every member is within the window, so ZCARD is the 24-hour count (ZCOUNT horizon..+inf).
_LOOKUP_LUA = """
local raw = redis.call('GET', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
local count = redis.call('ZCARD', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {ARGV[5], count, raw}
"""

# KEYS: cust:<id>, fence:c:<id>; ARGV: num prefix, fence ms
_INVALIDATE_CUSTOMER_LUA = """
local numbers = redis.call('SMEMBERS', KEYS[1])
for _, n in ipairs(numbers) do redis.call('DEL', ARGV[1] .. n) end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return #numbers
"""

# ARGV: key prefix, fence ms, customer ids... (invalidate_all: the customer script above, for a batch of ids)
_INVALIDATE_CUSTOMERS_LUA = """
for i = 3, #ARGV do
  local index = ARGV[1] .. 'cust:' .. ARGV[i]
  for _, n in ipairs(redis.call('SMEMBERS', index)) do redis.call('DEL', ARGV[1] .. 'num:' .. n) end
  redis.call('DEL', index)
  redis.call('SET', ARGV[1] .. 'fence:c:' .. ARGV[i], '1', 'PX', ARGV[2])
end
return #ARGV - 2
"""
_SCAN_BATCH = 500

# How long a cache store after a miss may wait on the call-path client for a request to be written with
# (RedisSummaryCache.store_deferred): the next caller's lookup, on a busy server, well within this.
STORE_DELAY: Final = 0.02


class RedisSummaryCache:
    """Shared cache in Redis (see the module docstring for keys and guarantees).

    The invalidation scripts build key names from a prefix inside Lua, so this needs a single Redis (or a
    cluster-less deployment), like the rest of ccserver's live state.
    """

    inline = False

    def __init__(
        self,
        client: Any,  # redis.asyncio.Redis
        *,
        ttl: int = 600,
        negative_ttl: int = 60,
        fence_seconds: float = 10.0,
        prefix: str = "ccserver:cust:",
        call_path: Any = None,  # ccserver.customers.resp.RespClient: lookups on Twisted (see lookup_deferred)
        lookup_timeout: float | None = None,  # redis-py's bound on a lookup (socket timeouts, no retries), if any
        store_delay: float = STORE_DELAY,  # the longest a store on call_path waits for a request to go with
    ):
        self.client = client
        self.call_path = call_path
        self.store_delay = store_delay
        self.lookup_timeout = lookup_timeout
        self.ttl = int(ttl)
        self.negative_ttl = int(negative_ttl)
        self.fence_ms = max(1, int(fence_seconds * 1000))
        self.prefix = prefix
        self._lookup = client.register_script(_LOOKUP_LUA)
        self._lookup_digest = ScriptDigest(_LOOKUP_LUA)
        self._store = client.register_script(_STORE_LUA)
        self._store_digest = ScriptDigest(_STORE_LUA)
        self._invalidate = client.register_script(_INVALIDATE_CUSTOMER_LUA)
        self._invalidate_many = client.register_script(_INVALIDATE_CUSTOMERS_LUA)

    def _num(self, e164: str) -> str:
        return f"{self.prefix}num:{e164}"

    def _calls(self, e164: str) -> str:
        return f"{self.prefix}calls:{e164}"

    def _cust(self, customer_id: int) -> str:
        return f"{self.prefix}cust:{customer_id}"

    def _lookup_call(self, e164: str, now: float) -> tuple[tuple[str, str], tuple[object, ...]]:
        member = f"{now:.6f}:{_member_bits(32):08x}"  # two calls in the same microsecond still count twice
        prefix = self.prefix
        return ((f"{prefix}num:{e164}", f"{prefix}calls:{e164}"),
                (repr(now), member, repr(now - DAY_SECONDS), DAY_SECONDS + 60, e164))

    async def lookup(self, e164: str, now: float) -> tuple[Identity | None, int]:
        # One EVALSHA, not a 5-command pipeline: the call path's only Redis round trip, and redis-py's client
        # side (packing five commands, parsing five replies) was most of its CPU (~0.1 ms per call).
        keys, args = self._lookup_call(e164, now)
        return _lookup_reply(await self._checked(self._lookup(keys=keys, args=args), e164))

    async def peek(self, e164: str) -> Identity | None:
        # A plain GET through redis-py: not the call path, and not a call (no counter touched).
        raw = await self.client.get(self._num(e164))
        return decode_identity(raw) if raw is not None else None

    async def _checked(self, reply: Any, e164: str) -> Any:
        """The reply, once it names ``e164``; else the connections are dropped (which one carried it is not
        known here) and RespOutOfStep raised."""
        value = await reply
        if not answers(e164)(value):
            await self.client.connection_pool.disconnect()
            raise RespOutOfStep("Redis reply does not match its request")
        return value

    @property
    def max_wait(self) -> float | None:
        """The longest a lookup can take before it fails by itself — the call-path client's timeout while it
        is connected — or None when unknown (the routing service then races it against its own deadline)."""
        fast = self.call_path
        return fast.timeout if fast is not None and fast.connected else self.lookup_timeout

    def lookup_deferred(self, e164: str, now: float) -> Any:
        """``lookup`` as a Deferred, for Twisted-driven callers (the routing service). Through ``call_path``
        (the Twisted RESP client) when it is connected — no asyncio Task, no redis-py on the call's path —
        else through redis-py as ``lookup``. Same script, same keys, same answer."""
        fast = self.call_path
        if fast is None or not fast.connected:
            return as_deferred(self.lookup(e164, now))
        keys, args = self._lookup_call(e164, now)
        return self._run_script(fast, self._lookup_digest, keys, args, e164).addCallback(_lookup_reply)

    @staticmethod
    def _run_script(fast: Any, script: ScriptDigest, keys: Sequence[str], args: Sequence[object], e164: str,
                    behind: float | None = None) -> Any:
        """EVALSHA; on NOSCRIPT (Redis restarted or flushed its scripts) once more as EVAL, which loads it. The
        reply must name ``e164`` (see ``answers``). ``behind``: written with the client's next request, or
        within that many seconds (``RespClient.request_behind``)."""
        check = answers(e164)

        def again(failure: Any) -> Any:
            if failure.check(RespError) and str(failure.value).startswith("NOSCRIPT"):
                return fast.request("EVAL", script.source, len(keys), *keys, *args, check=check)
            return failure

        if behind is not None:
            sent = fast.request_behind("EVALSHA", script.sha, len(keys), *keys, *args, within=behind, check=check)
        else:
            sent = fast.request("EVALSHA", script.sha, len(keys), *keys, *args, check=check)
        return sent.addErrback(again)

    def _store_call(self, e164: str, identity: Identity) -> tuple[list[str], list[object]]:
        ids = _customer_ids(identity)
        ttl = self.ttl if identity.customer is not None else self.negative_ttl
        keys = [self._num(e164), f"{self.prefix}fence:n:{e164}", *(self._cust(i) for i in ids)]
        args: list[object] = [encode_identity(identity), ttl, f"{self.prefix}fence:c:", e164, self.ttl + 60,
                              *map(str, ids)]
        return keys, args

    async def store(self, e164: str, identity: Identity) -> None:
        keys, args = self._store_call(e164, identity)
        await self._checked(self._store(keys=keys, args=args), e164)

    def store_deferred(self, e164: str, identity: Identity) -> Any:
        """``store`` as a Deferred, for the store after every cache miss. Through ``call_path`` when it is
        connected — answered and checked like a lookup: on a connection whose replies are matched by order, a
        command without a reply (``CLIENT REPLY SKIP``) would hand every later caller the reply before theirs
        wherever SKIP is not honoured (a proxy, an old Redis) — else through redis-py.

        On ``call_path`` the store is written with the client's next request (the next call's lookup), or at
        the latest ``store_delay`` seconds later: the send to Redis — waking it — and the read of the reply,
        each the cost of a whole lookup, are shared with that request (on the routed-call benchmark the store
        was ~0.1 ms of a cache miss's server CPU). A store is refused by the fences just as before: it is
        checked when Redis runs it, at most ``store_delay`` later, well inside ``fence_seconds``."""
        fast = self.call_path
        if fast is not None and fast.connected:
            keys, args = self._store_call(e164, identity)
            return self._run_script(fast, self._store_digest, keys, args, e164,
                                    behind=self.store_delay).addCallback(_nothing)
        return as_deferred(self.store(e164, identity))

    async def invalidate_customer(self, customer_id: int) -> None:
        await self._invalidate(
            keys=[self._cust(customer_id), f"{self.prefix}fence:c:{customer_id}"],
            args=[f"{self.prefix}num:", self.fence_ms],
        )

    async def invalidate_numbers(self, e164s: Iterable[str]) -> None:
        numbers = list(dict.fromkeys(e164s))
        if not numbers:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(*(self._num(n) for n in numbers))
        for n in numbers:
            pipe.set(f"{self.prefix}fence:n:{n}", "1", px=self.fence_ms)
        await pipe.execute()

    async def invalidate_all(self) -> int:
        index = f"{self.prefix}cust:"
        dropped = 0
        batch: list[str] = []
        async for key in self.client.scan_iter(match=f"{index}*", count=1000):
            batch.append((key.decode() if isinstance(key, bytes) else key)[len(index):])
            if len(batch) >= _SCAN_BATCH:
                dropped += int(await self._invalidate_many(args=[self.prefix, self.fence_ms, *batch]))
                batch = []
        if batch:
            dropped += int(await self._invalidate_many(args=[self.prefix, self.fence_ms, *batch]))
        return dropped


def _nothing(_: Any) -> None:
    return None


def answers(e164: str) -> Callable[[Any], bool]:
    """Whether a call-path script's reply is the answer about ``e164`` (its first element names the number)."""
    expected = e164.encode("utf-8")

    def check(reply: Any) -> bool:
        if not isinstance(reply, list) or not reply:
            return False
        first = reply[0]
        return (first if isinstance(first, bytes) else str(first).encode("utf-8")) == expected

    return check


def _lookup_reply(reply: Any) -> tuple[Identity | None, int]:
    raw = reply[2] if len(reply) > 2 else None
    return (decode_identity(raw) if raw is not None else None), int(reply[1])


# --- in process -----------------------------------------------------------------------------------------


class MemorySummaryCache:
    """Single-node cache: an LRU of at most ``max_entries`` numbers, the same TTL / fence rules as Redis.

    Coroutines that never suspend (``inline``): awaiting them costs no loop iteration and no thread hop.
    ``clock`` (monotonic-free wall time, like the ``now`` the caller passes) is only used for TTLs.
    """

    inline = True
    max_wait = 0.0  # never waits

    def __init__(
        self,
        max_entries: int = 100_000,
        *,
        ttl: float = 600.0,
        negative_ttl: float = 60.0,
        fence_seconds: float = 10.0,
        clock: Any = time.time,
    ):
        if max_entries < 1:
            raise ValueError("max_entries must be ≥ 1")
        self.max_entries = max_entries
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.fence_seconds = fence_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._by_customer: dict[int, set[str]] = {}
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()
        self._fenced_customers: dict[int, float] = {}
        self._fenced_numbers: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, e164: str, now: float) -> tuple[Identity | None, int]:
        return self.lookup_now(e164, now)

    def lookup_now(self, e164: str, now: float) -> tuple[Identity | None, int]:
        """``lookup`` without the coroutine (for synchronous callers)."""
        times = self._calls.pop(e164, None)
        if times is None:
            times = deque()
        times.append(now)
        horizon = now - DAY_SECONDS
        while times and times[0] < horizon:
            times.popleft()
        self._calls[e164] = times  # most recently called last
        while len(self._calls) > self.max_entries:
            self._calls.popitem(last=False)
        return self._live(e164), len(times)

    def _live(self, e164: str) -> Identity | None:
        """The cached identity while its TTL lasts (an expired one is dropped), marked recently used."""
        entry = self._entries.get(e164)
        if entry is None:
            return None
        expires, identity = entry
        if expires <= self._clock():
            self._drop(e164)
            return None
        self._entries.move_to_end(e164)
        return identity

    async def peek(self, e164: str) -> Identity | None:
        return self._live(e164)

    async def store(self, e164: str, identity: Identity) -> None:
        self.store_now(e164, identity)

    def store_now(self, e164: str, identity: Identity) -> None:
        now = self._clock()
        ids = _customer_ids(identity)
        if self._fenced(self._fenced_numbers, e164, now) or any(
            self._fenced(self._fenced_customers, i, now) for i in ids
        ):
            return
        self._drop(e164)
        ttl = self.ttl if identity.customer is not None else self.negative_ttl
        self._entries[e164] = (now + ttl, replace(identity, created_prospect=False))
        for i in ids:
            self._by_customer.setdefault(i, set()).add(e164)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    async def invalidate_customer(self, customer_id: int) -> None:
        self.invalidate_customer_now(customer_id)

    def invalidate_customer_now(self, customer_id: int) -> None:
        now = self._clock()
        self._fenced_customers[customer_id] = now + self.fence_seconds
        for e164 in list(self._by_customer.get(customer_id, ())):
            self._drop(e164)
        self._by_customer.pop(customer_id, None)
        self._prune_fences(now)

    async def invalidate_numbers(self, e164s: Iterable[str]) -> None:
        self.invalidate_numbers_now(e164s)

    async def invalidate_all(self) -> int:
        return self.invalidate_all_now()

    def invalidate_all_now(self) -> int:
        customers = list(self._by_customer)
        for customer_id in customers:
            self.invalidate_customer_now(customer_id)
        return len(customers)

    def invalidate_numbers_now(self, e164s: Iterable[str]) -> None:
        now = self._clock()
        for e164 in e164s:
            self._fenced_numbers[e164] = now + self.fence_seconds
            self._drop(e164)
        self._prune_fences(now)

    def _drop(self, e164: str) -> None:
        entry = self._entries.pop(e164, None)
        if entry is None:
            return
        for i in _customer_ids(entry[1]):
            numbers = self._by_customer.get(i)
            if numbers is not None:
                numbers.discard(e164)
                if not numbers:
                    del self._by_customer[i]

    @staticmethod
    def _fenced(fences: dict[Any, float], key: Any, now: float) -> bool:
        until = fences.get(key)
        return until is not None and until > now

    def _prune_fences(self, now: float) -> None:
        if len(self._fenced_customers) + len(self._fenced_numbers) > 1024:
            self._fenced_customers = {k: v for k, v in self._fenced_customers.items() if v > now}
            self._fenced_numbers = {k: v for k, v in self._fenced_numbers.items() if v > now}
