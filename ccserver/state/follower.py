"""A follower node's copy of an Asterisk server's live state: the leader's relayed messages, applied in order to this
node's own tracker (so its hub publishes the same typed events), and a rebuild from the Redis mirror whenever this
node cannot know what it missed.

Ordering (:func:`verdict`): a message is applied when it is the very next one — same term and the next ``seq``, or
seq 1 of a later term whose ``after`` is exactly the last message applied here. Older ones (a deposed leader's
stragglers, duplicates) are dropped. Anything else is a gap: a number skipped, or a new leader's term whose start
was not seen here (counted in ``ccserver_relay_gaps_total{server}`` and logged). A gap, and every (re)subscription
(the first one, a reader restarted after a Redis error, or the Redis client re-subscribing by itself after its
connection dropped), rebuilds the server's state:

1. relayed messages are held from then on;
2. the mirror is read (``RedisStateReader.snapshot``) until its relay position joins up with what is held — the
   leader's mirror lags its relay by up to a flush interval — or ``rebuild_wait`` seconds pass;
3. ``StateTracker.load_snapshot`` replaces the server's state (publishing ``Resynced``) and the held messages that
   come after the snapshot's position are applied in order.

If the mirror never joins up (its leader died, Redis lost writes) the snapshot is loaded anyway and the held messages
after it are applied as they are; that is logged as a warning.

After every rebuild the follower says *hello* on the relay with the position it reached: a leader that published
nothing because no other node followed publishes from there (``RelayOutbox.hello``). While this node leads, the
hellos of the others go to its own outbox (``on_hello``).

The reader (:meth:`RelayFollower.run`) is supervised: a Redis error ends the subscription (so does a connection
that stays silent through a PING: see ``EventRelay.follow``), and it is restarted after a capped exponential backoff
with jitter (``ccserver.ami.client.backoff_delay``; counted in
``ccserver_relay_reader_restarts_total{server}``).

While this node leads a server (:meth:`pause`), relayed messages of that server are not applied here: its own
tracker is fed by AMI. When it stops leading (:meth:`resume`), it goes on from the last message it relayed itself —
with the messages of a later term that arrived while it still led (the next leader may start before this node
notices its lease is gone), so a hand-over needs no rebuild when the next leader had applied everything.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ccserver.ami.client import backoff_delay
from ccserver.ami.relay import EVENT, HELLO, RESYNC, START, EventRelay, Position, Relayed, own_prefix
from ccserver.clock import Clock, LoopClock
from ccserver.logs import log_text
from ccserver.metrics import REGISTRY
from ccserver.state.redis_store import MirrorSnapshot, RedisStateReader

__all__ = ["APPLY", "GAP", "STALE", "RelayFollower", "follows", "joins", "verdict"]

log = logging.getLogger("ccserver.relay")

GAPS = REGISTRY.counter(
    "ccserver_relay_gaps_total",
    "Relayed AMI messages a follower found missing (a sequence number skipped, or a new leader's term whose start it "
    "did not see), by server")
REBUILDS = REGISTRY.counter(
    "ccserver_relay_rebuilds_total",
    "Times a follower rebuilt a server's live state from the Redis mirror (after a gap or a (re)subscription)")
RESTARTS = REGISTRY.counter(
    "ccserver_relay_reader_restarts_total", "Relay subscriptions restarted after a Redis error, by server")

APPLY, STALE, GAP = "apply", "stale", "gap"


def follows(position: Position | None, msg: Relayed) -> bool:
    """Whether ``msg`` is the very next message after ``position`` (None: unknown, so nothing is)."""
    if position is None:
        return False
    if msg.term == position[0]:
        return msg.seq == position[1] + 1
    return msg.term > position[0] and msg.kind == START and msg.after == position


def verdict(position: Position | None, msg: Relayed) -> str:
    """APPLY the next message, drop a STALE one (already applied, or a lower term's), else a GAP."""
    if follows(position, msg):
        return APPLY
    if position is not None and msg.position <= position:
        return STALE
    return GAP


def joins(position: Position | None, held: Sequence[Relayed]) -> bool:
    """Whether a snapshot holding everything up to ``position`` leaves nothing missing before the ``held`` messages:
    the first held message it does not already hold is the next one (or it holds them all)."""
    if position is None:
        return False
    newer = [m for m in held if m.position > position]
    return not newer or follows(position, newer[0])


MAX_EARLY = 10_000  # a later leader's messages kept while this node still leads (the hand-over overlap)


@dataclass
class _Server:
    position: Position | None = None  # the last relayed message applied here
    leading: int | None = None  # the term this node leads the server in (None: it follows)
    early: list[Relayed] | None = None  # a later term's messages, seen while this node still led
    held: list[Relayed] | None = None  # messages held while rebuilding (None: not rebuilding)
    rebuild: asyncio.Task[None] | None = None
    subscribed: bool = False  # since the reader last (re)started


class RelayFollower:
    """Follows the leader of each server named to :meth:`run` into ``tracker`` (see the module docstring).

    ``clock`` (``ccserver.clock``) paces the rebuild's polling and the reader's backoff; ``rng`` the jitter."""

    def __init__(self, relay: EventRelay, reader: RedisStateReader, tracker: Any, *, clock: Clock | None = None,
                 rebuild_wait: float = 10.0, poll_interval: float = 0.05, backoff_initial: float = 0.5,
                 backoff_cap: float = 10.0, reader_idle: float = 10.0, rng: random.Random | None = None,
                 node_id: str | None = None, on_hello: Callable[[str, Position | None], Any] | None = None) -> None:
        self.relay = relay
        # While this node leads a server, a follower's hello goes to its outbox (RelayOutbox.hello).
        self.on_hello = on_hello
        self.node_id = node_id  # this node's own relayed messages are skipped undecoded (its tracker applied them)
        self.reader = reader
        self.tracker = tracker
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.rebuild_wait = rebuild_wait
        self.poll_interval = poll_interval
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.reader_idle = reader_idle  # quiet seconds before the reader checks its connection (PING)
        self.rng = rng
        self._servers: dict[str, _Server] = {}
        self._hellos: set[asyncio.Future[None]] = set()
        self.rebuilt = 0  # rebuilds completed (for tests and logs)
        self.stopped = False

    def stop(self) -> None:
        """End every :meth:`run` (within the reader's poll interval) and every rebuild; apply nothing more."""
        self.stopped = True
        for state in self._servers.values():
            self._stop_rebuild(state)

    def _server(self, server: str) -> _Server:
        state = self._servers.get(server)
        if state is None:
            state = self._servers[server] = _Server()
        return state

    def position(self, server: str) -> Position | None:
        """The last relayed message applied to ``server``'s state here (None: unknown)."""
        return self._server(server).position

    def listening(self, server: str) -> bool:
        """Whether this node's reader of ``server``'s relay is subscribed now (Redis confirmed it, and it has not
        ended since): the leader does not count its own subscription as an audience."""
        state = self._servers.get(server)
        return state is not None and state.subscribed and not self.stopped

    def rebuilding(self, server: str) -> bool:
        return self._server(server).held is not None

    # -- leadership ------------------------------------------------------------------------------------------
    def pause(self, server: str, term: int) -> Position | None:
        """This node leads ``server`` now, in ``term``: its tracker is fed by AMI, relayed messages are not applied.
        Returns the position reached."""
        state = self._server(server)
        state.leading = term
        state.early = []
        self._stop_rebuild(state)
        return state.position

    def resume(self, server: str, position: Position | None) -> None:
        """This node stopped leading ``server``; ``position``: the last message it relayed for it. A later leader
        may have started before this node noticed: its messages seen meanwhile are applied now, in order."""
        state = self._server(server)
        early, state.early, state.leading = state.early or [], None, None
        state.position = position
        if len(early) > MAX_EARLY:
            state.position = None  # too many to keep: the next message starts a rebuild
            early = []
        for msg in early:
            self.deliver(server, msg)

    # -- messages --------------------------------------------------------------------------------------------
    def deliver(self, server: str, msg: Relayed) -> None:
        """One relayed message, in the order Redis delivered it."""
        state = self._server(server)
        if self.stopped:
            return
        if msg.kind == HELLO:  # another follower's, not numbered: for the leader only
            if state.leading is not None and self.on_hello is not None:
                self.on_hello(server, msg.after)
            return
        if state.leading is not None:
            if msg.term > state.leading and state.early is not None and len(state.early) <= MAX_EARLY:
                state.early.append(msg)  # a later leader already: kept for when this node notices
            return  # this node's own messages (or a deposed leader's)
        if state.held is not None:
            state.held.append(msg)
            return
        decided = verdict(state.position, msg)
        if decided == APPLY:
            self._apply(server, state, msg)
        elif decided == STALE:
            log.debug("relay %s: message %s of %s dropped (this node is at %s)", server, msg.position,
                      log_text(msg.node, 64), state.position)
        else:
            GAPS.inc(server=server)
            log.warning("relay %s: gap before message %s of %s (this node is at %s): rebuilding from the mirror",
                        server, msg.position, log_text(msg.node, 64), state.position)
            self._start_rebuild(server, state, [msg])

    def _apply(self, server: str, state: _Server, msg: Relayed) -> None:
        try:
            if msg.kind == EVENT:
                assert msg.event is not None
                self.tracker.handle(msg.event, msg.event.arrival)
            elif msg.kind == RESYNC:
                self.tracker.resync(server, msg.queue_items, msg.channel_items, msg.at)
        except Exception:  # noqa: BLE001 - the leader applied it; one failure here must not stop following
            log.exception("relay %s: applying message %s failed", server, msg.position)
        state.position = msg.position

    # -- rebuilding from the mirror --------------------------------------------------------------------------
    def _subscribed(self, server: str) -> None:
        state = self._server(server)
        state.subscribed = True
        if state.leading is None and not self.stopped:  # it may have missed anything before this subscription
            self._start_rebuild(server, state, [])

    def _start_rebuild(self, server: str, state: _Server, held: list[Relayed]) -> None:
        self._stop_rebuild(state)
        state.held = held
        state.rebuild = asyncio.ensure_future(self._rebuild(server, state))
        state.rebuild.add_done_callback(functools.partial(_log_crash, server))

    @staticmethod
    def _stop_rebuild(state: _Server) -> None:
        if state.rebuild is not None:
            state.rebuild.cancel()
            state.rebuild = None
        state.held = None

    async def _rebuild(self, server: str, state: _Server) -> None:
        REBUILDS.inc(server=server)
        deadline = self.clock.monotonic() + self.rebuild_wait
        failures = 0
        me = asyncio.current_task()
        while True:
            try:
                snap = await self.reader.snapshot(server)
            except Exception as exc:  # noqa: BLE001 - Redis down: the reader restarts too; keep trying, paced
                failures += 1
                delay = backoff_delay(failures, initial=self.poll_interval, cap=self.backoff_cap, rng=self.rng)
                log.warning("relay %s: reading the mirror failed (%s); again in %.1f s", server, exc, delay)
                await self.clock.sleep(delay)
                continue
            if state.rebuild is not me or state.held is None:
                return  # superseded (this node took the lead, or a newer rebuild started) while reading
            if joins(snap.position, state.held):
                break
            if self.clock.monotonic() >= deadline:
                log.warning("relay %s: the mirror (at %s) did not join up with the relayed messages (from %s) within "
                            "%.0f s; loaded as it is", server, snap.position,
                            state.held[0].position if state.held else None, self.rebuild_wait)
                self._load(server, state, snap, exact=False)
                return
            await self.clock.sleep(self.poll_interval)
        self._load(server, state, snap, exact=True)

    def _load(self, server: str, state: _Server, snap: MirrorSnapshot, *, exact: bool) -> None:
        held = state.held or []
        state.held, state.rebuild = None, None
        self.tracker.load_snapshot(server, snap.calls, snap.queues, snap.agents,
                                   queues_complete=snap.queues_complete)
        state.position = snap.position
        self.rebuilt += 1
        log.info("relay %s: rebuilt from the mirror at %s (%d calls, %d queues, %d agents); %d held messages",
                 server, snap.position, len(snap.calls), len(snap.queues), len(snap.agents), len(held))
        hello = asyncio.ensure_future(self._hello(server, snap.position))  # a quiet leader publishes from there
        self._hellos.add(hello)
        hello.add_done_callback(self._hellos.discard)
        newer = [m for m in held if snap.position is None or m.position > snap.position]
        if exact:
            for msg in newer:  # in order; a gap among them starts the next rebuild
                self.deliver(server, msg)
        else:
            for msg in newer:
                self._apply(server, state, msg)

    async def _hello(self, server: str, position: Position | None) -> None:
        try:
            await self.relay.hello(server, self.node_id or "follower", position)
        except Exception as exc:  # noqa: BLE001 - the leader also counts subscriptions: it finds this node anyway
            log.debug("relay %s: hello not sent: %s", server, exc)

    # -- the supervised reader -------------------------------------------------------------------------------
    async def run(self, server: str) -> None:
        """Follow ``server``'s relay until :meth:`stop`, restarting the subscription after Redis errors."""
        state = self._server(server)
        attempt = 0
        while not self.stopped:
            state.subscribed = False
            try:
                await self.relay.follow(server, functools.partial(self.deliver, server),
                                        subscribed=functools.partial(self._subscribed, server),
                                        stopping=lambda: self.stopped, idle=self.reader_idle,
                                        skip_prefix=own_prefix(server, self.node_id) if self.node_id else None)
                reason = "the subscription ended"
            except asyncio.CancelledError:
                state.subscribed = False
                self._stop_rebuild(state)
                raise
            except Exception as exc:  # noqa: BLE001 - any Redis failure: restart it
                reason = f"{type(exc).__name__}: {exc}"
            subscribed, state.subscribed = state.subscribed, False
            if self.stopped:
                return
            attempt = 1 if subscribed else attempt + 1
            delay = backoff_delay(attempt, initial=self.backoff_initial, cap=self.backoff_cap, rng=self.rng)
            RESTARTS.inc(server=server)
            log.warning("relay %s: reader stopped (%s); restarting in %.1f s", server, reason, delay)
            await self.clock.sleep(delay)


def _log_crash(server: str, task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("relay %s: rebuild crashed: %r", server, task.exception())
