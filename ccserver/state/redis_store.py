"""Mirror of the live model in Redis, and a reader for other nodes / processes.

Layout (``{p}`` = prefix, default ``cc``; every key names the Asterisk server, so servers never collide):

- ``{p}:call:{server}:{uniqueid}`` hash — one call (JSON-encoded field values); ended calls expire after a while
- ``{p}:calls:{server}`` set — uniqueids of live calls
- ``{p}:queue:{server}:{queue}`` hash — strategy, counters, running averages, service level
- ``{p}:qwait:{server}:{queue}`` sorted set — waiting uniqueids, ordered by (priority desc, join time)
- ``{p}:qcaller:{server}:{queue}`` hash — uniqueid -> waiting-caller JSON
- ``{p}:qmembers:{server}:{queue}`` hash — interface -> member JSON
- ``{p}:queues:{server}`` / ``{p}:agents:{server}`` sets, ``{p}:servers`` set — indexes
- ``{p}:agent:{server}:{interface}`` hash — one agent
- ``{p}:relay:{server}`` hash — ``version`` (bumped by every write of the server's keys), ``term`` and ``seq``: the
  last relayed message (ccserver/ami/relay.py) whose effects the server's keys hold exactly (absent while they
  hold a state between two such points), ``complete`` (the tracker holds the server's full queue list)

:class:`RedisMirror` is a subscriber of the call-events hub. Writes never happen on the event path: an event only
marks *which* call, queue or agent is dirty; a background task reads their current state from the tracker every
``flush_interval`` (or sooner when many are dirty) and writes them in one atomic script (``_APPLY_LUA``, the
commands as one JSON argument) — one round trip and one reply however many events touched them. A ``Resynced``
event rewrites the server's indexes from the tracker's truth, so calls and queues that vanished while the link was
down (an Asterisk restart) leave Redis too.

With several ccserver nodes only the node consuming a server's AMI mirrors it (``owns``); it tells the mirror where
its relay stands (``positions``), so a follower that missed relayed messages can load :meth:`RedisStateReader.snapshot`
and go on from the message after the one it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson

from ccserver.clock import Clock, LoopClock
from ccserver.events.types import AgentStateChanged, CallEnded, CallEvent, CallUpdated, QueueChanged, Resynced
from ccserver.state import query
from ccserver.state.model import DEFAULT_SERVER, AgentState, Call, Member, QueueState, WaitingCaller

__all__ = ["MirrorSnapshot", "RedisMirror", "RedisStateReader", "waiting_score"]

log = logging.getLogger(__name__)

_CALL_FIELDS = tuple(f.name for f in fields(Call))
_AGENT_FIELDS = tuple(f.name for f in fields(AgentState))
_QUEUE_SCALARS = tuple(f.name for f in fields(QueueState) if f.name not in ("callers", "members"))
_MEMBER_FIELDS = tuple(f.name for f in fields(Member))
_WAITING_FIELDS = tuple(f.name for f in fields(WaitingCaller))
_PRIORITY_SCALE = 1e10  # > any epoch join time in seconds, so priority dominates the score


def waiting_score(priority: int, joined_at: float) -> float:
    """Sorted-set score: ascending score = Asterisk's order (higher priority first, then earlier join)."""
    return -priority * _PRIORITY_SCALE + joined_at


_STATE = "state"  # the one hash field holding an object's fields as a JSON object


def _encode(obj: Any, names: tuple[str, ...]) -> dict[str, str]:
    """One field, the whole object as JSON: one encode and one HSET field per object, not one per attribute (a call
    has ~36: packing them was most of a busy hour's flush)."""
    return {_STATE: orjson.dumps({name: getattr(obj, name) for name in names}).decode("utf-8")}


def _json(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode("utf-8")


def _decode(raw: dict[Any, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The object's fields known to this version (an older mirror's one-field-per-attribute hash is read too)."""
    out = {}
    state = raw.get(_STATE.encode()) if _STATE.encode() in raw else raw.get(_STATE)
    if state is not None:
        return {k: v for k, v in orjson.loads(state).items() if k in names}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else k
        if key in names:
            out[key] = json.loads(v)
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.p = prefix

    def call(self, server: str, uid: str) -> str:
        return f"{self.p}:call:{server}:{uid}"

    def calls(self, server: str) -> str:
        return f"{self.p}:calls:{server}"

    def queue(self, server: str, name: str) -> str:
        return f"{self.p}:queue:{server}:{name}"

    def qwait(self, server: str, name: str) -> str:
        return f"{self.p}:qwait:{server}:{name}"

    def qcaller(self, server: str, name: str) -> str:
        return f"{self.p}:qcaller:{server}:{name}"

    def qmembers(self, server: str, name: str) -> str:
        return f"{self.p}:qmembers:{server}:{name}"

    def queues(self, server: str) -> str:
        return f"{self.p}:queues:{server}"

    def agent(self, server: str, interface: str) -> str:
        return f"{self.p}:agent:{server}:{interface}"

    def agents(self, server: str) -> str:
        return f"{self.p}:agents:{server}"

    def relay(self, server: str) -> str:
        return f"{self.p}:relay:{server}"

    @property
    def servers(self) -> str:
        return f"{self.p}:servers"


class RedisMirror:
    """Coalescing, asynchronous mirror of a tracker's model into Redis (``redis.asyncio.Redis`` client).

    Subscribe :meth:`on_event` to the hub (``hub.subscribe("redis-mirror", mirror.on_event)``); it reads the live
    objects from ``tracker`` (its query side only) when it flushes.
    """

    def __init__(
        self,
        redis: Any,
        tracker: Any,
        *,
        prefix: str = "cc",
        flush_interval: float = 0.05,
        max_dirty: int = 500,
        ended_ttl: int = 300,
        owns: Callable[[str], bool] | None = None,
        positions: Callable[[], Mapping[str, tuple[int, int]]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``owns(server)``: whether this node mirrors that server now (default: every server). ``positions()``:
        server -> (term, seq) of the last message this node relayed for it, for the servers it relays. ``clock``:
        the flush interval and the retry backoff run on it (:class:`ccserver.clock.ManualClock` in tests)."""
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.redis = redis
        self.tracker = tracker
        self.owns = owns
        self.positions = positions
        self._seen: dict[str, int] = {}  # server -> seq of the last event this mirror was handed
        self._written: dict[str, tuple[int, int] | None] = {}  # server -> the position last written for it
        self.keys = _Keys(prefix)
        self.flush_interval = flush_interval
        self.max_dirty = max_dirty
        self.ended_ttl = ended_ttl
        self._calls: set[tuple[str, str]] = set()
        self._ended: dict[tuple[str, str], dict[str, Any]] = {}
        self._queues: set[tuple[str, str]] = set()
        self._agents: set[tuple[str, str]] = set()
        self._resynced: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self._resume: asyncio.Event | None = None  # set to end a backoff (close())
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()
        self.flushes = 0
        self.errors = 0  # failed flushes in all
        self.failing = 0  # … in a row (the backoff's exponent)

    # -- events (O(1), no I/O) -----------------------------------------------------------------------------------
    def on_event(self, event: CallEvent) -> None:
        server = event.server
        self._seen[server] = event.seq
        if self.owns is not None and not self.owns(server):
            return
        if type(event) is CallUpdated:  # most events: one call changed
            self._calls.add((server, event.uniqueid))
            self._maybe_wake()
            return
        if isinstance(event, QueueChanged):
            self._queues.add((server, event.queue))
        elif isinstance(event, AgentStateChanged):
            self._agents.add((server, event.interface))
        elif isinstance(event, CallEnded):
            key = (server, event.uniqueid)
            self._calls.discard(key)
            self._ended[key] = event.final
        elif isinstance(event, Resynced):
            self._resynced.add(server)
        else:
            uniqueid = getattr(event, "uniqueid", None)
            if uniqueid is not None:
                self._calls.add((server, uniqueid))
        self._maybe_wake()

    def rewrite(self, server: str) -> None:
        """Write all of ``server`` at the next flush, as after ``Resynced`` (a node that has just taken the server
        over: the keys may still hold a state the previous owner reached and this node never did)."""
        self._resynced.add(server)
        self._maybe_wake()

    @property
    def dirty(self) -> int:
        return len(self._calls) + len(self._ended) + len(self._queues) + len(self._agents) + len(self._resynced)

    def _maybe_wake(self) -> None:
        if self._wakeup is not None and self.dirty >= self.max_dirty:
            self._wakeup.set()

    # -- background flushing -----------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-state-flusher")
        return self._task

    async def _run(self) -> None:
        assert self._wakeup is not None
        # Ends on ``_closing``, not only on cancel: redis-py (8.1) can swallow a cancel that arrives during a flush.
        retry = False
        while not self._closing:
            if not retry:
                # Up at the interval, or sooner when enough is dirty (_maybe_wake) or on close.
                interval = self.clock.call_later(self.flush_interval, self._wakeup.set)
                try:
                    await self._wakeup.wait()
                finally:
                    interval.cancel()
            retry = False
            if self._closing:
                return
            self._wakeup.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis down: keep the model, retry after a backoff
                self.errors += 1
                self.failing += 1
                log.warning("redis state flush failed (%d dirty)", self.dirty, exc_info=self.failing == 1)
                await self._back_off(self.retry_delay())
                retry = True
            else:
                if self.failing:
                    log.info("redis state flush works again after %d failures", self.failing)
                    self.failing = 0

    async def _back_off(self, seconds: float) -> None:
        """Wait ``seconds`` before trying again — however much gets dirty meanwhile — or until :meth:`close`."""
        resume = self._resume = asyncio.Event()
        timer = self.clock.call_later(seconds, resume.set)
        try:
            await resume.wait()
        finally:
            timer.cancel()
            self._resume = None

    def retry_delay(self) -> float:
        """The wait before the next try after ``failing`` failed flushes in a row: twice the interval, doubled
        per further failure, at most 64 times the interval and at most 5 s."""
        return min(5.0, self.flush_interval * 2 ** min(self.failing, 6))

    async def close(self) -> None:
        self._closing = True
        if self._resume is not None:
            self._resume.set()  # out of a backoff at once
        if self._task is not None:
            if self._wakeup is not None:
                self._wakeup.set()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write every dirty object's current state in one round trip: one script running every write (atomic, as
        MULTI/EXEC was), the commands its one JSON argument — no packing of each argument, no reply per command."""
        async with self._lock:
            if self.owns is not None:
                self._drop_unowned()
            moved = self._moved_positions()
            if not self.dirty and not moved:
                return
            calls, ended, queues, agents, resynced = self._calls, self._ended, self._queues, self._agents, \
                self._resynced
            self._calls, self._ended, self._queues, self._agents, self._resynced = set(), {}, set(), set(), set()
            tracker = self.tracker
            pipe = _Writes()
            servers = set(resynced) | set(moved)
            for server in resynced:
                self._write_server(pipe, server)
            for key in calls:
                servers.add(key[0])
                call = tracker.calls.get(key)
                if call is not None:
                    self._write_call(pipe, call)
                else:  # left the live model without being a call (a stray channel): forget it
                    pipe.srem(self.keys.calls(key[0]), key[1])
                    pipe.delete(self.keys.call(*key))
            for key, final in ended.items():
                servers.add(key[0])
                self._write_call(pipe, Call(**final))
            for key in queues:
                servers.add(key[0])
                q = tracker.queues.get(key)
                if q is not None:
                    self._write_queue(pipe, q)
                else:
                    self._drop_queue(pipe, *key)
            for key in agents:
                servers.add(key[0])
                agent = tracker.agents.get(key)
                if agent is not None:
                    self._write_agent(pipe, agent)
            pipe.sadd(self.keys.servers, *servers)
            positions = self.positions() if self.positions is not None else {}
            written = {server: self._write_relay(pipe, server, positions) for server in servers}
            try:
                batch = self.redis.pipeline(transaction=False)
                batch.eval(_APPLY_LUA, 0, pipe.payload())
                await batch.execute()
            except BaseException:
                # Put back what we took (the tracker holds the current state; ended calls their final one).
                self._calls |= calls
                self._queues |= queues
                self._agents |= agents
                self._resynced |= resynced
                for k, v in ended.items():
                    self._ended.setdefault(k, v)
                raise
            self._written.update(written)
            self.flushes += 1

    def _drop_unowned(self) -> None:
        """Forget what became dirty for servers this node no longer mirrors (their new owner writes them)."""
        owns = self.owns
        assert owns is not None
        self._calls = {k for k in self._calls if owns(k[0])}
        self._ended = {k: v for k, v in self._ended.items() if owns(k[0])}
        self._queues = {k for k in self._queues if owns(k[0])}
        self._agents = {k for k in self._agents if owns(k[0])}
        self._resynced = {s for s in self._resynced if owns(s)}

    def _moved_positions(self) -> dict[str, tuple[int, int]]:
        """Relay positions that moved since last written (relayed messages that changed no state move it too)."""
        if self.positions is None:
            return {}
        return {server: position for server, position in self.positions().items()
                if (self.owns is None or self.owns(server)) and position != self._written.get(server)}

    def _write_relay(self, pipe: Any, server: str, positions: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        """Bump the server's version; record its relay position if the keys now hold exactly the state it names.
        The tracker is read synchronously while the pipeline is built, so they do when every event the tracker
        published for the server has reached this mirror (else an object it touched may not be marked dirty yet)."""
        key = self.keys.relay(server)
        pipe.hincrby(key, "version", 1)
        complete = getattr(self.tracker, "queues_complete", None)
        pipe.hset(key, "complete", "1" if complete is not None and complete(server) else "0")
        position = positions.get(server)
        if position is None or self._seen.get(server, 0) != self.tracker.last_seq(server):
            pipe.hdel(key, "term", "seq")
            return None
        pipe.hset(key, mapping={"term": position[0], "seq": position[1]})
        return position

    def _write_server(self, pipe: Any, server: str) -> None:
        """After a resync: the server's indexes are exactly the tracker's (vanished calls and queues leave)."""
        k, tracker = self.keys, self.tracker
        live = [uid for (srv, uid) in tracker.calls if srv == server]
        pipe.delete(k.calls(server))
        if live:
            pipe.sadd(k.calls(server), *live)
        for (srv, _uid), call in tracker.calls.items():
            if srv == server:
                self._write_call(pipe, call)
        names = [name for (srv, name) in tracker.queues if srv == server]
        pipe.delete(k.queues(server))
        if names:
            pipe.sadd(k.queues(server), *names)
        for (srv, _name), q in tracker.queues.items():
            if srv == server:
                self._write_queue(pipe, q)
        interfaces = [iface for (srv, iface) in tracker.agents if srv == server]
        pipe.delete(k.agents(server))
        if interfaces:
            pipe.sadd(k.agents(server), *interfaces)
        for (srv, _iface), agent in tracker.agents.items():
            if srv == server:
                self._write_agent(pipe, agent)

    def _drop_queue(self, pipe: Any, server: str, name: str) -> None:
        k = self.keys
        pipe.srem(k.queues(server), name)
        pipe.delete(k.queue(server, name), k.qwait(server, name), k.qcaller(server, name), k.qmembers(server, name))

    def _write_call(self, pipe: Any, call: Call) -> None:
        key = self.keys.call(call.server, call.uniqueid)
        pipe.hset(key, mapping=_encode(call, _CALL_FIELDS))
        if call.ended_at is not None:
            pipe.expire(key, self.ended_ttl)
            pipe.srem(self.keys.calls(call.server), call.uniqueid)
        else:
            pipe.sadd(self.keys.calls(call.server), call.uniqueid)

    def _write_queue(self, pipe: Any, q: QueueState) -> None:
        k = self.keys
        pipe.hset(k.queue(q.server, q.name), mapping=_encode(q, _QUEUE_SCALARS))
        pipe.sadd(k.queues(q.server), q.name)
        # Waiting callers and members are small: rewrite them whole, atomically inside the flush's script.
        pipe.delete(k.qwait(q.server, q.name), k.qcaller(q.server, q.name), k.qmembers(q.server, q.name))
        if q.callers:
            scores = {c.uniqueid: waiting_score(c.priority, c.joined_at) for c in q.callers}
            pipe.zadd(k.qwait(q.server, q.name), scores)
            pipe.hset(
                k.qcaller(q.server, q.name),
                mapping={c.uniqueid: _json({n: getattr(c, n) for n in _WAITING_FIELDS}) for c in q.callers},
            )
        if q.members:
            pipe.hset(
                k.qmembers(q.server, q.name),
                mapping={
                    m.interface: _json({n: getattr(m, n) for n in _MEMBER_FIELDS}) for m in q.members.values()
                },
            )

    def _write_agent(self, pipe: Any, agent: AgentState) -> None:
        pipe.hset(self.keys.agent(agent.server, agent.interface), mapping=_encode(agent, _AGENT_FIELDS))
        pipe.sadd(self.keys.agents(agent.server), agent.interface)


# Runs the commands of a flush, given as one JSON array of [name, argument…] arrays (one argument for the client to
# encode and send, not thousands: redis-py's packing of each argument was most of a flush). Like MULTI/EXEC, a failing
# command does not stop the others (pcall), and the first error is the reply (the flush then fails and is retried).
_APPLY_LUA = """
local err = nil
for _, c in ipairs(cjson.decode(ARGV[1])) do
  local r = redis.pcall(unpack(c))
  if err == nil and type(r) == 'table' and r.err then err = r.err end
end
if err then return redis.error_reply(err) end
return 1
"""
_CHUNK = 1000  # at most this many members / fields / pairs per command (Lua's unpack has a limit, ~8000 values)


def _arg(value: Any) -> str:
    """An argument as redis-py would send it (str as is, numbers by repr), as text."""
    if type(value) is str:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, bytes)):
        raise TypeError(f"a Redis argument cannot be a {type(value).__name__}")
    return value.decode("utf-8") if isinstance(value, bytes) else repr(value)


class _Writes:
    """The commands of one flush, with the redis-py pipeline methods the mirror uses, for ``_APPLY_LUA``."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def payload(self) -> bytes:
        return orjson.dumps(self.commands)

    def _add(self, name: str, key: str, values: list[str], step: int) -> None:
        for i in range(0, len(values), _CHUNK * step):
            self.commands.append([name, key, *values[i:i + _CHUNK * step]])

    def hset(self, key: str, field: str | None = None, value: Any = None, mapping: Mapping[str, Any] | None = None
             ) -> None:
        pairs: list[str] = [field, _arg(value)] if field is not None else []
        if mapping:
            for k, v in mapping.items():
                pairs += (k, v if type(v) is str else _arg(v))
        self._add("HSET", key, pairs, 2)

    def sadd(self, key: str, *members: str) -> None:
        self._add("SADD", key, list(members), 1)

    def srem(self, key: str, *members: str) -> None:
        self._add("SREM", key, list(members), 1)

    def hdel(self, key: str, *fields: str) -> None:
        self._add("HDEL", key, list(fields), 1)

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        pairs: list[str] = []
        for member, score in mapping.items():
            pairs += (_arg(score), member)
        self._add("ZADD", key, pairs, 2)

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self.commands.append(["HINCRBY", key, field, _arg(amount)])

    def expire(self, key: str, seconds: int) -> None:
        self.commands.append(["EXPIRE", key, _arg(seconds)])

    def delete(self, *keys: str) -> None:
        self.commands.append(["DEL", *keys])


@dataclass(frozen=True, slots=True)
class MirrorSnapshot:
    """One server's state as the mirror holds it, read consistently (see :meth:`RedisStateReader.snapshot`).

    ``position``: (term, seq) of the last relayed message whose effects it holds exactly; None when the mirror
    holds a state between two such points (or was written without a relay) — then nobody can tell which relayed
    messages it already holds. ``version`` names the write it was read at (0: nothing written yet)."""

    server: str
    calls: tuple[Call, ...]
    queues: tuple[QueueState, ...]
    agents: tuple[AgentState, ...]
    position: tuple[int, int] | None
    queues_complete: bool
    version: int


def _queue_from(params: dict[Any, Any], order: list[Any], callers: dict[Any, Any],
                members: dict[Any, Any]) -> QueueState | None:
    if not params:
        return None
    q = QueueState(**_decode(params, _QUEUE_SCALARS))
    details = {_text(u): json.loads(v) for u, v in callers.items()}
    q.callers = [WaitingCaller(**details[_text(u)]) for u in order if _text(u) in details]
    q.members = {_text(i): Member(**json.loads(v)) for i, v in members.items()}
    return q


class RedisStateReader:
    """Reads what a :class:`RedisMirror` wrote, with the tracker's query API (async, one round trip each)."""

    def __init__(self, redis: Any, *, prefix: str = "cc") -> None:
        self.redis = redis
        self.keys = _Keys(prefix)

    async def servers(self) -> list[str]:
        return sorted(_text(s) for s in await self.redis.smembers(self.keys.servers))

    async def queue_names(self, server: str = DEFAULT_SERVER) -> list[str]:
        return sorted(_text(s) for s in await self.redis.smembers(self.keys.queues(server)))

    async def agent_interfaces(self, server: str = DEFAULT_SERVER) -> list[str]:
        return sorted(_text(s) for s in await self.redis.smembers(self.keys.agents(server)))

    async def live_call_ids(self, server: str = DEFAULT_SERVER) -> list[str]:
        return sorted(_text(s) for s in await self.redis.smembers(self.keys.calls(server)))

    async def call(self, uniqueid: str, server: str = DEFAULT_SERVER) -> Call | None:
        raw = await self.redis.hgetall(self.keys.call(server, uniqueid))
        return Call(**_decode(raw, _CALL_FIELDS)) if raw else None

    async def agent(self, interface: str, server: str = DEFAULT_SERVER) -> AgentState | None:
        raw = await self.redis.hgetall(self.keys.agent(server, interface))
        return AgentState(**_decode(raw, _AGENT_FIELDS)) if raw else None

    async def queue(self, name: str, server: str = DEFAULT_SERVER) -> QueueState | None:
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)  # one consistent read of the four keys
        pipe.hgetall(k.queue(server, name))
        pipe.zrange(k.qwait(server, name), 0, -1)
        pipe.hgetall(k.qcaller(server, name))
        pipe.hgetall(k.qmembers(server, name))
        params, order, callers, members = await pipe.execute()
        return _queue_from(params, order, callers, members)

    async def snapshot(self, server: str = DEFAULT_SERVER, *, attempts: int = 5) -> MirrorSnapshot:
        """Everything the mirror holds about ``server`` — live calls, queues (waiting callers, members), agents — and
        the relay position it holds, as of one write: two MULTI round trips (the indexes, then the objects), read
        again when a write came between them (the ``version`` moved). After ``attempts`` such misses the last read
        is returned with ``position`` None: usable, but not known to match any relayed message."""
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        k = self.keys
        for attempt in range(1, attempts + 1):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hgetall(k.relay(server))
            pipe.smembers(k.calls(server))
            pipe.smembers(k.queues(server))
            pipe.smembers(k.agents(server))
            relay, call_ids, queue_names, interfaces = await pipe.execute()
            relay = {_text(f): _text(v) for f, v in relay.items()}
            uids = sorted(_text(u) for u in call_ids)
            names = sorted(_text(n) for n in queue_names)
            ifaces = sorted(_text(i) for i in interfaces)
            pipe = self.redis.pipeline(transaction=True)
            for uid in uids:
                pipe.hgetall(k.call(server, uid))
            for name in names:
                pipe.hgetall(k.queue(server, name))
                pipe.zrange(k.qwait(server, name), 0, -1)
                pipe.hgetall(k.qcaller(server, name))
                pipe.hgetall(k.qmembers(server, name))
            for iface in ifaces:
                pipe.hgetall(k.agent(server, iface))
            pipe.hget(k.relay(server), "version")
            found = await pipe.execute()
            version = relay.get("version")
            steady = _text(found[-1]) == version if found[-1] is not None else version is None
            if not steady and attempt < attempts:
                continue
            calls = tuple(Call(**_decode(raw, _CALL_FIELDS)) for raw in found[:len(uids)] if raw)
            at = len(uids)
            queues = []
            for _name in names:
                q = _queue_from(*found[at:at + 4])
                at += 4
                if q is not None:
                    queues.append(q)
            agents = tuple(AgentState(**_decode(raw, _AGENT_FIELDS)) for raw in found[at:at + len(ifaces)] if raw)
            position = None
            if steady and "term" in relay and "seq" in relay:
                position = (int(relay["term"]), int(relay["seq"]))
            return MirrorSnapshot(server, calls, tuple(queues), agents, position, relay.get("complete") == "1",
                                  int(version or 0))
        raise AssertionError("unreachable")  # the last attempt always returns

    async def queue_snapshot(self, name: str, server: str = DEFAULT_SERVER, now: float | None = None) -> dict | None:
        q = await self.queue(name, server)
        return None if q is None else query.queue_snapshot(q, time.time() if now is None else now)

    async def calls_in_queue(self, name: str, server: str = DEFAULT_SERVER) -> list[Call]:
        order = await self.redis.zrange(self.keys.qwait(server, name), 0, -1)
        if not order:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for uid in order:
            pipe.hgetall(self.keys.call(server, _text(uid)))
        return [Call(**_decode(raw, _CALL_FIELDS)) for raw in await pipe.execute() if raw]

    async def callers_ahead(self, queue: str, priority: int, joined_at: float, server: str = DEFAULT_SERVER) -> int:
        score = waiting_score(priority, joined_at)
        return int(await self.redis.zcount(self.keys.qwait(server, queue), "-inf", f"({score!r}"))
