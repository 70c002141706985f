"""The cross-node relay of one Asterisk's AMI stream: the node holding the server's lease (ccserver/ami/lease.py)
publishes, in order, every message its state tracker applied; the other nodes apply the same messages to theirs.

Wire format: each Redis pub/sub message on ``ccserver:ami:events:<db>:<server>`` carries one or more relayed
messages, in order, one JSON object per line (a leader publishes what it applied since its last publish at once)::

    {"v": 1, "server": "pbx1", "node": "host:1234", "term": 7, "seq": 42, "kind": "event", ...}

- ``term``: the leadership term, from ``INCR ccserver:ami-term:<server>`` when the lease was taken — a later leader
  always has a higher one, so a follower recognises the new leader's numbering and drops a deposed one's stragglers.
- ``seq``: 1, 2, 3 … within the term, in the order the leader's tracker applied the messages.
- ``kind`` ``start`` (always seq 1): the term begins; ``after``: [term, seq] of the last message the new leader had
  applied as a follower (null: it did not know), so a follower that holds exactly that goes straight on.
- ``kind`` ``event``: ``event`` = ``{"arrival": t, "items": [[header, value], …]}``, one AMI event, repeats kept.
- ``kind`` ``resync``: ``at``, ``queues``, ``channels`` — the items of the QueueStatus and CoreShowChannels answers of
  a full resync (``StateTracker.resync``), so every follower applies the same truth after an Asterisk restart.
- ``kind`` ``mark``: nothing to apply — the leader numbered messages without publishing them (no other node
  followed) and now has an audience: the follower sees the numbers skip before it, rebuilds from the mirror up to
  there, and follows from it at once instead of at the leader's next AMI event.
- ``kind`` ``hello`` (from a follower, not numbered: ``term`` and ``seq`` are 0): ``after`` = [term, seq] it rebuilt
  to from the mirror (null: unknown). A leader that was publishing nothing publishes what it kept after that.

:class:`RelayOutbox` numbers and publishes (the leader); :class:`EventRelay` is the pub/sub transport; the follower's
side (ordering, gaps, rebuilding from the mirror) is :mod:`ccserver.state.follower`.

Nobody listening, nothing published: every node follows every server's channel, the leader too (it skips its own
messages), so ``PUBSUB NUMSUB`` less the leader's own subscription is how many other nodes follow. While that is
none (checked every ``AUDIENCE_SECONDS``), the leader still numbers each message — the mirror records the position
— but neither encodes nor publishes it: a lone node spends nothing on a relay no one reads. A node that starts
following meanwhile rebuilds from the mirror on subscribing and says ``hello`` with the position it reached; the
leader publishes the messages it kept after that position, so the newcomer follows without a gap. Only when the
kept messages do not reach back that far, or a subscriber never says hello, does a ``mark`` make it rebuild again
(``ccserver_relay_gaps_total``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ccserver.ami.message import AMIMessage
from ccserver.clock import Clock, LoopClock
from ccserver.metrics import REGISTRY

__all__ = ["AUDIENCE_SECONDS", "EVENT", "HELLO", "KINDS", "MARK", "RESYNC", "START", "EventRelay", "Position",
           "RelayOutbox", "Relayed", "decode_event", "decode_relayed", "encode_event", "encode_relayed", "own_prefix"]

log = logging.getLogger("ccserver.ami.relay")

VERSION = 1
START, EVENT, RESYNC, MARK, HELLO = "start", "event", "resync", "mark", "hello"
KINDS = (START, EVENT, RESYNC, MARK, HELLO)

Position = tuple[int, int]  # (term, seq) of one relayed message
AUDIENCE_SECONDS = 1.0  # how often a leader asks Redis whether another node follows its relay
QUIET_KEEP = 20_000  # messages a leader keeps, unpublished, while no other node follows (for the next follower) …
QUIET_SECONDS = 10.0  # … for this long: a newcomer rebuilds from a mirror written every 50 ms

UNHEARD = REGISTRY.counter(
    "ccserver_relay_unheard_total",
    "AMI messages a leader numbered but did not publish on the cross-node relay because no other node followed it, "
    "by server")


@dataclass(frozen=True, slots=True)
class Relayed:
    """One relayed message (see the module docstring for the kinds and their fields)."""

    server: str
    node: str
    term: int
    seq: int
    kind: str
    event: AMIMessage | None = None
    after: Position | None = None
    at: float = 0.0
    queue_items: tuple[AMIMessage, ...] = ()
    channel_items: tuple[AMIMessage, ...] = ()

    @property
    def position(self) -> Position:
        return (self.term, self.seq)


def _message_json(msg: AMIMessage) -> dict[str, Any]:
    return {"arrival": msg.arrival, "items": msg.items()}


def _message_from(obj: Any, server: str) -> AMIMessage:
    if not isinstance(obj, dict) or not isinstance(obj.get("items"), list):
        raise ValueError("an AMI message needs a list of items")
    raw = obj["items"]
    if not all(type(pair) is list and len(pair) == 2 for pair in raw):
        raise ValueError("an AMI message item must be a [header, value] pair of strings")
    items = [(pair[0], pair[1]) for pair in raw]
    if not all(type(name) is str and type(value) is str for name, value in items):
        raise ValueError("an AMI message item must be a [header, value] pair of strings")
    arrival = obj.get("arrival")
    if arrival is not None and (type(arrival) not in (int, float)):
        raise ValueError("arrival must be a number")
    first: dict[str, str] = {}
    for name, value in items:
        first.setdefault(name, value)
    msg = AMIMessage._from_parsed(items, first, 0)  # checked above: skip the constructor's copy
    msg.server, msg.arrival = server, arrival
    return msg


def encode_event(msg: AMIMessage) -> str:
    """One AMI message as JSON: server tag, arrival time and every header pair in order (repeats kept)."""
    return orjson.dumps({"server": msg.server, **_message_json(msg)}).decode("utf-8")


def decode_event(data: str | bytes) -> AMIMessage:
    obj = orjson.loads(data)
    return _message_from(obj, obj.get("server"))


def encode_relayed(msg: Relayed) -> str:
    return _encode_relayed(msg).decode("utf-8")


def _encode_relayed(msg: Relayed) -> bytes:
    if msg.kind == EVENT:
        assert msg.event is not None
        # The hot path (every AMI event the tracker applied): the fields before "event" as text, in the same order,
        # and the message's own header list serialised as it is (no copy, no dict of the whole message).
        return b"".join((_event_head(msg.server, msg.node, msg.term), str(msg.seq).encode(),
                         b',"kind":"event","event":',
                         orjson.dumps({"arrival": msg.event.arrival, "items": msg.event._items}), b"}"))
    obj: dict[str, Any] = {"v": VERSION, "server": msg.server, "node": msg.node, "term": msg.term, "seq": msg.seq,
                           "kind": msg.kind}
    if msg.kind in (START, HELLO):
        obj["after"] = list(msg.after) if msg.after is not None else None
    elif msg.kind == RESYNC:
        obj.update(at=msg.at, queues=[_message_json(m) for m in msg.queue_items],
                   channels=[_message_json(m) for m in msg.channel_items])
    return orjson.dumps(obj)


@functools.lru_cache(maxsize=64)
def _event_head(server: str, node: str, term: int) -> bytes:
    """``{"v":1,"server":…,"node":…,"term":…,"seq":`` — what every event message of one leadership term begins with."""
    return orjson.dumps({"v": VERSION, "server": server, "node": node, "term": term})[:-1] + b',"seq":'


# A relay PUBLISH carries up to this many bytes of messages (one per line); Redis's default pub/sub client output
# limit (8 MB for 60 s, 32 MB at once) stays far away even for a follower that is a little behind.
MAX_PUBLISH_BYTES = 256 * 1024


def own_prefix(server: str, node: str) -> bytes:
    """How every message ``node`` relays for ``server`` begins, as :func:`encode_relayed` writes it: a follower that
    is that node skips its own messages by this prefix instead of decoding each one (it would drop them anyway —
    they are what its own tracker applied)."""
    return orjson.dumps({"v": VERSION, "server": server, "node": node})[:-1] + b","


def _positive(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _position(after: Any) -> Position | None:
    if after is not None and not (isinstance(after, list) and len(after) == 2
                                  and all(isinstance(x, int) and not isinstance(x, bool) for x in after)):
        raise ValueError("after must be [term, seq] or null")
    return (after[0], after[1]) if after is not None else None


def decode_relayed(data: str | bytes) -> Relayed:
    """The message, or ValueError naming what is wrong with it (nothing half-read is returned)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # invalid UTF-8 included
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        raise ValueError(f"not a version {VERSION} relay message")
    server, node, kind = obj.get("server"), obj.get("node"), obj.get("kind")
    if not isinstance(server, str) or not server or not isinstance(node, str):
        raise ValueError("server and node must be strings")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if kind == HELLO:
        return Relayed(server, node, 0, 0, kind, after=_position(obj.get("after")))
    term, seq = _positive(obj, "term"), _positive(obj, "seq")
    if kind == EVENT:
        return Relayed(server, node, term, seq, kind, event=_message_from(obj.get("event"), server))
    if kind == START:
        if seq != 1:
            raise ValueError("a term starts at seq 1")
        return Relayed(server, node, term, seq, kind, after=_position(obj.get("after")))
    if kind == MARK:
        return Relayed(server, node, term, seq, kind)
    at, queues, channels = obj.get("at"), obj.get("queues"), obj.get("channels")
    if not isinstance(at, (int, float)) or not isinstance(queues, list) or not isinstance(channels, list):
        raise ValueError("a resync needs at, queues and channels")
    return Relayed(server, node, term, seq, kind, at=float(at),
                   queue_items=tuple(_message_from(m, server) for m in queues),
                   channel_items=tuple(_message_from(m, server) for m in channels))


class EventRelay:
    """The pub/sub transport: publish relayed messages in order, follow one server's channel.

    Redis pub/sub ignores the database number (a message published by a client of db 3 reaches subscribers of
    every db), so the default channel, ``ccserver:ami:events:<db>:<server>``, names the database: two
    deployments sharing one Redis in different databases never hear each other."""

    def __init__(self, redis: Any, channel_prefix: str | None = None) -> None:
        self.redis = redis
        if channel_prefix is None:
            pool = getattr(redis, "connection_pool", None)
            db = getattr(pool, "connection_kwargs", {}).get("db", 0) if pool is not None else 0
            channel_prefix = f"ccserver:ami:events:{db}:"
        self.prefix = channel_prefix

    def channel(self, server: str) -> str:
        return f"{self.prefix}{server}"

    async def hello(self, server: str, node: str, after: Position | None) -> None:
        """Say to ``server``'s leader that ``node`` follows, rebuilt up to ``after`` (see :meth:`RelayOutbox.hello`)."""
        await self.redis.publish(self.channel(server), _encode_relayed(Relayed(server, node, 0, 0, HELLO,
                                                                               after=after)))

    async def listeners(self, server: str) -> int:
        """How many subscriptions ``server``'s channel has (``PUBSUB NUMSUB``), this node's own included."""
        reply = await self.redis.pubsub_numsub(self.channel(server))
        return int(reply[0][1]) if reply else 0

    async def publish_batch(self, messages: Sequence[Relayed]) -> None:
        """Publish in order, in one round trip: a pipeline runs on one connection (separate publishes may go out on
        several pooled connections and reach followers out of order). Consecutive messages of one server go out as
        one PUBLISH of their encodings, one per line (JSON has no raw newline), up to ``MAX_PUBLISH_BYTES`` each: a
        follower reads a busy hour in a few hundred messages instead of one per AMI event."""
        pipe = self.redis.pipeline(transaction=False)
        server, size = "", 0
        lines: list[bytes] = []
        for msg in messages:
            line = _encode_relayed(msg)
            if lines and (msg.server != server or size + len(line) > MAX_PUBLISH_BYTES):
                pipe.publish(self.channel(server), b"\n".join(lines))
                lines, size = [], 0
            server = msg.server
            lines.append(line)
            size += len(line) + 1
        if lines:
            pipe.publish(self.channel(server), b"\n".join(lines))
        await pipe.execute()

    async def follow(self, server: str, deliver: Callable[[Relayed], Any], *,
                     subscribed: Callable[[], Any] | None = None, stopping: Callable[[], bool] = lambda: False,
                     poll: float = 0.5, idle: float = 10.0, skip_prefix: bytes | None = None) -> None:
        """Hand each message relayed for ``server`` to ``deliver(msg)`` until ``stopping()`` (looked at every ``poll``
        seconds at least); a Redis error ends it (raised: the caller restarts it, see ``RelayFollower.run``).
        ``subscribed()`` runs each time Redis confirms the subscription: the first time, and again should the client
        re-subscribe by itself. (redis-py 8 does not: a dropped connection raises here, and the caller's restart
        subscribes anew and runs it then — messages published meanwhile are lost, hence the rebuild.)

        A connection that goes silent may be dead without anyone saying so (a Redis host gone, a partition): after
        ``idle`` quiet seconds it is sent a PING, and if ``idle`` more pass without anything, ``TimeoutError`` ends
        it. It ends on ``stopping()`` rather than on a cancel alone: redis-py (8.1) can swallow a cancel that
        arrives while it reads, and the reader would go on. ``skip_prefix``: messages starting with it are dropped
        undecoded (see :func:`own_prefix`)."""
        channel = self.channel(server)
        pubsub = self.redis.pubsub(push_handler_func=_as_is)
        loop = asyncio.get_running_loop()
        try:
            await pubsub.subscribe(channel)
            heard, pinged = loop.time(), False
            while not stopping():
                item = await pubsub.get_message(timeout=poll)
                if item is None:
                    if loop.time() - heard >= idle:
                        if pinged:
                            raise TimeoutError(f"relay {server}: Redis did not answer a PING within {idle:.0f} s")
                        await pubsub.ping()
                        heard, pinged = loop.time(), True
                    continue
                heard, pinged = loop.time(), False
                if stopping():
                    continue
                kind = item.get("type")
                if kind == "subscribe":
                    if subscribed is not None:
                        subscribed()
                elif kind == "message":
                    data = item["data"]
                    if isinstance(data, str):
                        data = data.encode("utf-8")
                    if skip_prefix is not None and data.startswith(skip_prefix):
                        continue  # a batch is one node's: this node's own
                    for line in data.split(b"\n"):
                        try:
                            msg = decode_relayed(line)
                        except ValueError as exc:  # one bad message must not stop following (its gap is noticed)
                            log.warning("relay %s: unreadable message dropped (%s): %r", server, exc, line[:120])
                            continue
                        if msg.server != server:
                            log.warning("relay %s: message of server %r dropped", server, msg.server)
                            continue
                        deliver(msg)
        finally:
            try:
                await pubsub.aclose()
            except Exception as exc:  # noqa: BLE001 - the connection is already gone: nothing to close cleanly
                log.debug("relay %s: closing the subscription failed: %s", server, exc)


async def _as_is(response: Any) -> Any:
    """The subscription's push handler: redis-py's default one logs ``str(response)`` at debug level — it builds that
    text (a whole relayed batch, up to ``MAX_PUBLISH_BYTES``) for every message, logged or not."""
    return response


class RelayOutbox:
    """The leader's side: numbers each message it relays (per server, within its term) as its tracker applies it,
    and publishes them in order from one background task — the AMI read path never waits for Redis. Messages that
    cannot be published are lost to the followers, who see the numbers skip and rebuild from the mirror.

    With no other node following (see "Nobody listening" above) messages are numbered and kept — the last
    ``quiet_keep`` of them, unencoded — instead of published. A follower says :data:`HELLO` with the position it
    rebuilt to from the mirror: the kept messages after that position go out at once, in order, and it follows
    without a gap. When they do not reach back that far, or an audience shows up in ``PUBSUB NUMSUB`` and has not
    said hello by the next look, a :data:`MARK` tells it to rebuild."""

    def __init__(self, relay: EventRelay, node_id: str, *, listening: Callable[[str], bool] | None = None,
                 clock: Clock | None = None, audience_interval: float | None = None,
                 quiet_keep: int = QUIET_KEEP) -> None:
        """``audience_interval``: seconds between asking Redis whether another node follows (None: never ask,
        always publish). ``listening(server)``: whether this node's own follower is subscribed to that channel
        now (its subscription is not an audience)."""
        self.relay = relay
        self.node_id = node_id
        self._positions: dict[str, Position] = {}
        self._pending: list[Relayed] = []
        self._drain: asyncio.Task[None] | None = None
        self.published = 0
        self.lost = 0
        self._listening = listening
        self._clock: Clock = clock if clock is not None else LoopClock()
        self.audience_interval = audience_interval
        self.quiet_keep = quiet_keep
        # Per server, while no other node follows: what was numbered and not published, (seq, message) — a message
        # is an AMI event, or a Relayed for the rare other kinds. Absent: publishing (or not known yet).
        self._quiet: dict[str, deque[tuple[int, AMIMessage | Relayed]]] = {}
        self._hellos: dict[str, int] = {}  # per server: hellos heard (a listener count asked before one is stale)
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self.unheard: dict[str, int] = {}  # per server: messages numbered while no other node followed
        self._counted: dict[str, int] = {}  # … of which already in the metric

    def heard(self, server: str) -> bool:
        """Whether ``server``'s messages are published now (another node follows, or it is not known yet)."""
        return server not in self._quiet

    def position(self, server: str) -> Position | None:
        """(term, seq) of the last message numbered for ``server``; None while this node does not relay it."""
        return self._positions.get(server)

    def positions(self) -> dict[str, Position]:
        return dict(self._positions)

    def begin(self, server: str, term: int, after: Position | None) -> None:
        """This node leads ``server`` from now on, in ``term``; ``after``: the last message it applied before."""
        self._positions[server] = (term, 0)
        self._quiet.pop(server, None)
        self._add(Relayed(server, self.node_id, term, 1, START, after=after))
        if self.audience_interval is not None and server not in self._watchers:
            watcher = asyncio.ensure_future(self._watch(server, self.audience_interval))
            watcher.add_done_callback(_log_crash)
            self._watchers[server] = watcher

    def end(self, server: str) -> Position | None:
        """This node stops leading ``server``: the position of the last message it numbered."""
        watcher = self._watchers.pop(server, None)
        if watcher is not None:
            watcher.cancel()
        self._quiet.pop(server, None)
        self._count_unheard(server)
        return self._positions.pop(server, None)

    def close(self) -> None:
        """Stop asking Redis about listeners (at shutdown)."""
        for server in list(self._watchers):
            self._watchers.pop(server).cancel()

    def event(self, server: str, msg: AMIMessage) -> None:
        term, seq = self._next(server)
        if self._keep(server, term, seq, msg):
            self.unheard[server] = self.unheard.get(server, 0) + 1
        else:
            self._add(Relayed(server, self.node_id, term, seq, EVENT, event=msg))

    def resync(self, server: str, queue_items: Iterable[AMIMessage], channel_items: Iterable[AMIMessage],
               at: float) -> None:
        term, seq = self._next(server)
        msg = Relayed(server, self.node_id, term, seq, RESYNC, at=at, queue_items=tuple(queue_items),
                      channel_items=tuple(channel_items))
        if not self._keep(server, term, seq, msg):
            self._add(msg)

    def _keep(self, server: str, term: int, seq: int, item: AMIMessage | Relayed) -> bool:
        """While no other node follows: ``item`` numbered (the mirror keeps the position) and kept, never encoded.
        False when messages are published."""
        quiet = self._quiet.get(server)
        if quiet is None:
            return False
        self._positions[server] = (term, seq)
        quiet.append((seq, item))
        return True

    # -- the audience -----------------------------------------------------------------------------------------
    def hello(self, server: str, after: Position | None) -> None:
        """A follower of ``server`` rebuilt from the mirror up to ``after``: publish from there on."""
        if server not in self._positions:
            return  # this node does not lead it (any more): the leader that does will hear the same hello
        self._hellos[server] = self._hellos.get(server, 0) + 1
        quiet = self._quiet.pop(server, None)
        if quiet is None:
            return  # publishing already
        term, seq = self._positions[server]
        newer = [(n, m) for n, m in quiet if after is not None and n > after[1]]
        if after is not None and after[0] == term and (after[1] >= seq or (newer and newer[0][0] == after[1] + 1)):
            for n, m in newer:  # what the follower lacks, in order (their numbers are already taken)
                self._enqueue(m if isinstance(m, Relayed) else Relayed(server, self.node_id, term, n, EVENT, event=m))
            log.info("relay %s: a follower said hello at %s: publishing from there (%d kept messages)", server,
                     after, len(newer))
        else:
            self._mark(server)
            log.info("relay %s: a follower said hello at %s, before what was kept: it rebuilds", server, after)

    def _mark(self, server: str) -> None:
        """Tell whoever follows that they missed messages (they rebuild from the mirror)."""
        term, seq = self._next(server)
        self._add(Relayed(server, self.node_id, term, seq, MARK))

    def _count_unheard(self, server: str) -> None:
        unheard = self.unheard.get(server, 0)
        counted = self._counted.get(server, 0)
        if unheard > counted:
            UNHEARD.inc(unheard - counted, server=server)
            self._counted[server] = unheard

    async def _watch(self, server: str, interval: float) -> None:
        seen = False  # an audience without a hello, seen at the last look
        while server in self._positions:
            hellos = self._hellos.get(server, 0)
            try:
                subscriptions = await self.relay.listeners(server)
                own = 1 if self._listening is not None and self._listening(server) else 0
                others = subscriptions - own > 0
            except Exception as exc:  # noqa: BLE001 - cannot tell: publish (the publish reports Redis errors)
                log.debug("relay %s: could not count listeners: %s", server, exc)
                others = True
            if server not in self._positions:
                return  # stopped leading while asking
            if self._hellos.get(server, 0) == hellos:  # else a hello came meanwhile: the count may predate it
                quiet = server in self._quiet
                if not others and not quiet:
                    log.info("relay %s: no other node follows: numbering without publishing", server)
                    self._quiet[server] = deque(maxlen=self.quiet_keep)
                elif others and quiet and seen:  # a follower that never said hello (it was lost): it rebuilds
                    self._quiet.pop(server, None)
                    self._mark(server)
                    log.info("relay %s: another node follows: publishing", server)
                    seen = False
                elif others and quiet:
                    seen = True  # give it until the next look to say hello
                else:
                    seen = False
            self._count_unheard(server)
            self._forget(server, self._clock.time() - QUIET_SECONDS)
            await self._clock.sleep(interval)

    def _forget(self, server: str, before: float) -> None:
        """Drop kept messages that arrived before ``before``: no newcomer's mirror is that old (memory stays small
        on a lone node)."""
        quiet = self._quiet.get(server)
        while quiet:
            kept = quiet[0][1]
            if (kept.at if isinstance(kept, Relayed) else kept.arrival or 0.0) >= before:
                break
            quiet.popleft()

    # -- publishing -------------------------------------------------------------------------------------------
    def _next(self, server: str) -> Position:
        try:
            term, seq = self._positions[server]
        except KeyError:
            raise LookupError(f"this node does not relay {server!r}") from None
        return (term, seq + 1)

    def _add(self, msg: Relayed) -> None:
        self._positions[msg.server] = msg.position
        self._enqueue(msg)

    def _enqueue(self, msg: Relayed) -> None:
        self._pending.append(msg)
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._publish())
            self._drain.add_done_callback(_log_crash)

    async def _publish(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self.relay.publish_batch(batch)
                    self.published += len(batch)
                except Exception as exc:  # noqa: BLE001 - Redis down: followers notice the gap and rebuild later
                    self.lost += len(batch)
                    log.warning("event relay: %d messages not relayed: %s", len(batch), exc)
        finally:
            self._drain = None  # no await since the last check: nothing can have been added unseen

    async def flush(self) -> None:
        """Wait until everything numbered so far was published (or given up on)."""
        while self._drain is not None:
            await asyncio.shield(self._drain)


def _log_crash(task: asyncio.Future[None]) -> None:
    # Redis errors are handled per batch; anything reaching here is a bug: say so loudly.
    if not task.cancelled() and task.exception() is not None:
        log.error("event relay drain crashed: %r", task.exception())
