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

Writes never happen on the event path: the tracker's change notifications only remember *which* objects are
dirty; a background task serialises their current state every ``flush_interval`` (or sooner when many are dirty)
and writes them in one MULTI/EXEC pipeline — one round trip however many events touched them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import fields
from typing import Any

from ccserver.state import query
from ccserver.state.model import DEFAULT_SERVER, AgentState, Call, Member, QueueState, WaitingCaller
from ccserver.state.store import StateStore

__all__ = ["RedisStateReader", "RedisStateStore", "waiting_score"]

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


def _encode(obj: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: json.dumps(getattr(obj, name), separators=(",", ":")) for name in names}


def _decode(raw: dict[Any, Any], names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
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

    @property
    def servers(self) -> str:
        return f"{self.p}:servers"


class RedisStateStore(StateStore):
    """Coalescing, asynchronous mirror of a tracker's model into Redis (``redis.asyncio.Redis`` client)."""

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "cc",
        flush_interval: float = 0.05,
        max_dirty: int = 500,
        ended_ttl: int = 300,
    ) -> None:
        self.redis = redis
        self.keys = _Keys(prefix)
        self.flush_interval = flush_interval
        self.max_dirty = max_dirty
        self.ended_ttl = ended_ttl
        self._calls: dict[tuple[str, str], Call] = {}
        self._queues: dict[tuple[str, str], QueueState] = {}
        self._agents: dict[tuple[str, str], AgentState] = {}
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.flushes = 0
        self.errors = 0

    # -- change notifications (event path: O(1), no I/O) -------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        self._calls[call.key] = call
        self._maybe_wake()

    def call_ended(self, call: Call) -> None:
        self._calls[call.key] = call
        self._maybe_wake()

    def queue_changed(self, queue: QueueState) -> None:
        self._queues[queue.key] = queue
        self._maybe_wake()

    def agent_changed(self, agent: AgentState) -> None:
        self._agents[agent.key] = agent
        self._maybe_wake()

    @property
    def dirty(self) -> int:
        return len(self._calls) + len(self._queues) + len(self._agents)

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
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.flush_interval)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis down: keep the model, retry on the next tick
                self.errors += 1
                log.warning("redis state flush failed (%d dirty)", self.dirty, exc_info=self.errors == 1)
                await asyncio.sleep(min(5.0, self.flush_interval * 2 ** min(self.errors, 6)))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write every dirty object's current state in one MULTI/EXEC round trip."""
        async with self._lock:
            if not self.dirty:
                return
            calls, queues, agents = self._calls, self._queues, self._agents
            self._calls, self._queues, self._agents = {}, {}, {}
            pipe = self.redis.pipeline(transaction=True)
            servers = set()
            for call in calls.values():
                servers.add(call.server)
                self._write_call(pipe, call)
            for q in queues.values():
                servers.add(q.server)
                self._write_queue(pipe, q)
            for agent in agents.values():
                servers.add(agent.server)
                self._write_agent(pipe, agent)
            pipe.sadd(self.keys.servers, *servers)
            try:
                await pipe.execute()
            except BaseException:
                # Put back what we took, unless something newer is already dirty (it is the same object anyway).
                for src, dst in ((calls, self._calls), (queues, self._queues), (agents, self._agents)):
                    for k, v in src.items():
                        dst.setdefault(k, v)  # type: ignore[arg-type]
                raise
            self.flushes += 1

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
        # Waiting callers and members are small: rewrite them whole, atomically inside MULTI.
        pipe.delete(k.qwait(q.server, q.name), k.qcaller(q.server, q.name), k.qmembers(q.server, q.name))
        if q.callers:
            scores = {c.uniqueid: waiting_score(c.priority, c.joined_at) for c in q.callers}
            pipe.zadd(k.qwait(q.server, q.name), scores)
            pipe.hset(
                k.qcaller(q.server, q.name),
                mapping={c.uniqueid: json.dumps({n: getattr(c, n) for n in _WAITING_FIELDS}) for c in q.callers},
            )
        if q.members:
            pipe.hset(
                k.qmembers(q.server, q.name),
                mapping={
                    m.interface: json.dumps({n: getattr(m, n) for n in _MEMBER_FIELDS}) for m in q.members.values()
                },
            )

    def _write_agent(self, pipe: Any, agent: AgentState) -> None:
        pipe.hset(self.keys.agent(agent.server, agent.interface), mapping=_encode(agent, _AGENT_FIELDS))
        pipe.sadd(self.keys.agents(agent.server), agent.interface)


class RedisStateReader:
    """Reads what a :class:`RedisStateStore` wrote, with the tracker's query API (async, one round trip each)."""

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
        if not params:
            return None
        q = QueueState(**_decode(params, _QUEUE_SCALARS))
        details = {_text(u): json.loads(v) for u, v in callers.items()}
        q.callers = [WaitingCaller(**details[_text(u)]) for u in order if _text(u) in details]
        q.members = {_text(i): Member(**json.loads(v)) for i, v in members.items()}
        return q

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
