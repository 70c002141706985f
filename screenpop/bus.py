"""Frames to agents' sockets, on this node or any other.

``publish(user_id, frame)`` numbers the frame in the agent's log (:mod:`screenpop.frames`) and hands it to every
socket of that agent, wherever it is connected:

- :class:`MemoryBus` (no Redis, one node): the log in this process, straight to the local sockets.
- :class:`RedisBus` (several nodes): one Lua script numbers the frame (``INCR``), keeps it in the agent's replay
  list, remembers the agent's current call / state frame and ``PUBLISH``es it on ``ccserver:screenpop:frames``;
  every node listens there and delivers to the sockets it holds. The numbering is atomic with the publish, so
  every node sees an agent's frames in seq order. The publishing node does not wait for its own message to come
  back through the subscription: when the script returns, the frame goes to this node's sockets at once if it is
  the next one they expect (``deliver_next``); out of order (another node's frame still on its way), it waits
  for the subscription, which delivers both in order. The copy that comes back later is skipped by seq.

:class:`LocalSockets` is the node's registry of open sockets per agent; each socket remembers the last seq it
sent, so a frame reaching it twice (replay racing a live frame) goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError

from ccserver.metrics import REGISTRY
from screenpop.frames import REPLAY_FRAMES, AgentLog, encode_body, replay_after, with_seq

log = logging.getLogger("ccserver.screenpop")

FRAMES = REGISTRY.counter("ccserver_screenpop_frames_total", "Screen-pop frames published, by type")
DELIVERED = REGISTRY.counter("ccserver_screenpop_delivered_total", "Screen-pop frames written to a socket")
CHANNEL = "ccserver:screenpop:frames"
KEY = "ccserver:screenpop:"  # + seq:/log:/cur:/st: + user id
KEEP_SECONDS = 86_400

# KEYS: seq, log, current call, state. ARGV: body, channel, user id, replay size, ttl, call mode, state mode.
PUBLISH_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local body = ARGV[1]
local text
if body == '{}' then text = '{"seq":' .. n .. '}' else text = '{"seq":' .. n .. ',' .. string.sub(body, 2) end
redis.call('RPUSH', KEYS[2], text)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[5])
if ARGV[6] == 'set' then redis.call('SET', KEYS[3], text, 'EX', ARGV[5])
elseif ARGV[6] == 'clear' then redis.call('DEL', KEYS[3]) end
if ARGV[7] == 'set' then redis.call('SET', KEYS[4], text, 'EX', ARGV[5]) end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. text)
return n
"""


class Socket:
    """One open agent socket as the bus sees it: ``send(text)`` writes without waiting (websockets' broadcast)."""

    __slots__ = ("user_id", "send", "last_sent", "held")

    def __init__(self, user_id: int, send: Callable[[str], Any]) -> None:
        self.user_id = user_id
        self.send = send
        self.last_sent = 0
        self.held: list[tuple[int, str]] | None = []  # live frames arriving while the socket is being resumed

    def deliver(self, seq: int, text: str) -> None:
        if self.held is not None:
            self.held.append((seq, text))
        elif seq > self.last_sent:
            self.last_sent = seq
            self.send(text)
            DELIVERED.inc()

    def deliver_next(self, seq: int, text: str) -> None:
        """Only if ``seq`` is the very next frame (the publisher's shortcut; never skips one still on its way)."""
        if self.held is None and seq == self.last_sent + 1:
            self.last_sent = seq
            self.send(text)
            DELIVERED.inc()

    def release(self, last_sent: int) -> None:
        """Resume done (hello or replay sent up to ``last_sent``): now the held frames, skipping what went out."""
        self.last_sent = max(self.last_sent, last_sent)
        held, self.held = self.held or [], None
        for seq, text in held:
            self.deliver(seq, text)


class LocalSockets:
    def __init__(self) -> None:
        self.by_user: dict[int, set[Socket]] = {}

    def add(self, sock: Socket) -> None:
        self.by_user.setdefault(sock.user_id, set()).add(sock)

    def remove(self, sock: Socket) -> None:
        socks = self.by_user.get(sock.user_id)
        if socks is not None:
            socks.discard(sock)
            if not socks:
                del self.by_user[sock.user_id]

    def deliver(self, user_id: int, seq: int, text: str) -> None:
        for sock in self.by_user.get(user_id, ()):
            sock.deliver(seq, text)

    def deliver_next(self, user_id: int, seq: int, text: str) -> None:
        for sock in self.by_user.get(user_id, ()):
            sock.deliver_next(seq, text)

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_user.values())


class MemoryBus:
    def __init__(self, replay_frames: int = REPLAY_FRAMES) -> None:
        self.local = LocalSockets()
        self.replay_frames = replay_frames
        self._logs: dict[int, AgentLog] = {}
        self._current: dict[int, str] = {}
        self._state: dict[int, str] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, user_id: int, frame: dict[str, Any], *, call: str = "keep", state: bool = False) -> int:
        return self.post(user_id, frame, call=call, state=state)

    def post(self, user_id: int, frame: dict[str, Any], *, call: str = "keep", state: bool = False) -> int:
        """Publish without waiting (here: at once)."""
        return self.post_body(user_id, encode_body(frame), frame.get("type", "?"), call=call, state=state)

    def post_body(self, user_id: int, body: str, kind: str, *, call: str = "keep", state: bool = False) -> int:
        """:meth:`post` of a frame already encoded (``body``: a JSON object without its seq; ``kind``: its type)."""
        FRAMES.inc(type=kind)
        agent_log = self._logs.get(user_id)
        if agent_log is None:
            agent_log = self._logs[user_id] = AgentLog(self.replay_frames)
        seq, text = agent_log.append(body)
        if call == "set":
            self._current[user_id] = text
        elif call == "clear":
            self._current.pop(user_id, None)
        if state:
            self._state[user_id] = text
        self.local.deliver(user_id, seq, text)
        return seq

    async def snapshot(self, user_id: int) -> tuple[int, str | None, str | None]:
        agent_log = self._logs.get(user_id)
        return (agent_log.seq if agent_log else 0), self._current.get(user_id), self._state.get(user_id)

    async def replay(self, user_id: int, last_seq: int) -> list[str] | None:
        agent_log = self._logs.get(user_id)
        if agent_log is None:
            return [] if last_seq == 0 else None
        return replay_after(agent_log.frames, agent_log.seq, last_seq)


class RedisBus:
    def __init__(self, redis: Any, replay_frames: int = REPLAY_FRAMES, channel: str = CHANNEL) -> None:
        self.redis = redis
        self.local = LocalSockets()
        self.replay_frames = replay_frames
        self.channel = channel
        self._script = redis.register_script(PUBLISH_SCRIPT)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._pending: list[tuple[int, str, str, bool, asyncio.Future[int] | None]] = []
        self._flusher: asyncio.Future[None] | None = None

    def _keys(self, user_id: int) -> list[str]:
        return [f"{KEY}{part}:{user_id}" for part in ("seq", "log", "cur", "st")]

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._listen())
        await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    raw = message.get("data")
                    if not isinstance(raw, bytes | str):
                        continue
                    text = raw.decode() if isinstance(raw, bytes) else raw
                    user, _, frame = text.partition(" ")
                    try:
                        self.local.deliver(int(user), int(frame[7:frame.index(",", 7)]), frame)
                    except ValueError:
                        log.warning("screen pop: a malformed message on %s was ignored", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis restarting: listen again; clients resume by seq
                log.warning("screen pop: lost the Redis subscription (%s); resubscribing", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def publish(self, user_id: int, frame: dict[str, Any], *, call: str = "keep", state: bool = False) -> int:
        """Publish and wait for the frame's seq."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.post(user_id, frame, call=call, state=state, done=done)
        return await done

    def post(self, user_id: int, frame: dict[str, Any], *, call: str = "keep", state: bool = False,
             done: asyncio.Future[int] | None = None) -> None:
        """Publish without waiting: frames posted meanwhile go to Redis in order (one EVALSHA, or one pipeline for
        several), so a pop never waits behind the round trips of the frames before it (``agent_state`` …)."""
        self.post_body(user_id, encode_body(frame), frame.get("type", "?"), call=call, state=state, done=done)

    def post_body(self, user_id: int, body: str, kind: str, *, call: str = "keep", state: bool = False,
                  done: asyncio.Future[int] | None = None) -> None:
        """:meth:`post` of a frame already encoded (``body``: a JSON object without its seq; ``kind``: its type)."""
        FRAMES.inc(type=kind)
        self._pending.append((user_id, body, call, state, done))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    if len(batch) == 1:  # one EVALSHA (loading the script first if Redis lacks it)
                        user_id, body, call, state, _done = batch[0]
                        seqs = [await self._script(keys=self._keys(user_id), args=[
                            body, self.channel, str(user_id), self.replay_frames, KEEP_SECONDS, call,
                            "set" if state else "keep"])]
                    else:  # a ring's agent_state + pop …: one pipeline of EVALSHAs, one round trip
                        try:
                            seqs = await self._evalsha_pipeline(batch)
                        except NoScriptError:  # Redis restarted or flushed its scripts: none of them ran
                            await self.redis.script_load(PUBLISH_SCRIPT)
                            seqs = await self._evalsha_pipeline(batch)
                    if len(seqs) != len(batch):
                        raise RuntimeError(f"{len(seqs)} answers to {len(batch)} frames")
                except Exception as exc:  # noqa: BLE001 - Redis away: those frames are lost; clients resume by seq
                    log.warning("screen pop: %d frames not published (%s)", len(batch), type(exc).__name__)
                    for *_rest, done in batch:
                        if done is not None and not done.done():
                            done.set_exception(exc)
                    continue
                for (user_id, body, _call, _state, done), seq in zip(batch, seqs, strict=False):
                    if user_id in self.local.by_user:  # this node's sockets: no pub/sub round trip
                        self.local.deliver_next(user_id, int(seq), with_seq(body, int(seq)))
                    if done is not None and not done.done():
                        done.set_result(int(seq))
        finally:
            self._flusher = None

    async def _evalsha_pipeline(self, batch: list[tuple[int, str, str, bool, asyncio.Future[int] | None]]
                                ) -> list[Any]:
        """The frames' scripts by their SHA in one pipeline. Not redis-py's ``Script`` in a pipeline: that asks
        ``SCRIPT EXISTS`` first, a second round trip on every ring."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, body, call, state, _done in batch:
                pipe.evalsha(self._script.sha, 4, *self._keys(user_id), body, self.channel, str(user_id),
                             self.replay_frames, KEEP_SECONDS, call, "set" if state else "keep")
            return list(await pipe.execute())

    async def snapshot(self, user_id: int) -> tuple[int, str | None, str | None]:
        seq_key, _log, cur, st = self._keys(user_id)
        seq, current, state = await self.redis.mget(seq_key, cur, st)
        return (int(seq) if seq else 0, current.decode() if current else None, state.decode() if state else None)

    async def replay(self, user_id: int, last_seq: int) -> list[str] | None:
        seq_key, log_key, _cur, _st = self._keys(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            seq, frames = await pipe.get(seq_key).lrange(log_key, 0, -1).execute()
        current = int(seq) if seq else 0
        return replay_after([f.decode() for f in frames], current, last_seq)


__all__ = ["CHANNEL", "LocalSockets", "MemoryBus", "RedisBus", "Socket"]
