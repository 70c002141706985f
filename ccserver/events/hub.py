"""The call-events hub: one publisher (the state tracker), any number of subscribers, none able to hold up another.

``hub.subscribe("screenpop", handler, kinds=(AgentRinging, CallAnswered))`` registers ``handler(event)`` — a plain
function or an ``async def`` — for the event types listed (all when ``kinds`` is None). Each subscriber has its
own bounded queue and its own task on the event loop: :meth:`EventHub.publish` only appends to the queues of the
interested subscribers and wakes their tasks, so publishing costs the tracker a few list operations, whatever the
subscribers do. A subscriber that falls behind by ``maxsize`` events loses its oldest ones (counted in
``ccserver_events_dropped_total{subscriber}`` and logged); one that raises is logged and counted in
``ccserver_events_failed_total{subscriber}`` and keeps receiving the next events. ``batch=True``: the handler is
called with a list of every event queued since its last call instead (one SQL query for many calls, say).
``on_overflow(event)``: called with each event the subscriber loses, at once and in the publisher's turn — for a
subscriber that must not lose what it was told (the Redis mirror rewrites the server; the call records write
the record): keep it O(1).

Readers first (:mod:`ccserver.events.backlog`): while an AMI reader is behind on a burst, a woken subscriber parks
until the readers catch up (at most ``hub.backlog.hold`` seconds, or until its queue is half full), then handles
everything queued meanwhile in one go.

Without a running event loop (plain unit tests), events wait in the queues until :meth:`EventHub.drain` delivers
them to the synchronous handlers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ccserver.clock import Clock, LoopClock
from ccserver.events.backlog import ReadBacklog
from ccserver.events.types import CallEvent
from ccserver.metrics import REGISTRY

log = logging.getLogger("ccserver.events")

PUBLISHED = REGISTRY.counter("ccserver_events_published_total", "Call events published on the hub")
DROPPED = REGISTRY.counter("ccserver_events_dropped_total",
                           "Call events a subscriber lost because its queue was full (slow subscriber)")
FAILED = REGISTRY.counter("ccserver_events_failed_total", "Call events whose subscriber raised an error")

_HUBS: weakref.WeakSet[EventHub] = weakref.WeakSet()


def _queued() -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for hub in list(_HUBS):
        for sub in hub._subs:
            key = (("subscriber", sub.name),)
            out[key] = out.get(key, 0.0) + len(sub.queue)
    return out


QUEUED = REGISTRY.sampled_gauge("ccserver_events_queued",
                                "Call events waiting for their subscriber (held behind a burst, or a slow subscriber)",
                                _queued)

Handler = Callable[[Any], Awaitable[Any] | Any]
DEFAULT_MAXSIZE = 10_000
_LOG_INTERVAL = 10.0


class Subscription:
    __slots__ = ("name", "handler", "kinds", "maxsize", "soft", "batch", "queue", "dropped", "failed", "delivered",
                 "on_overflow", "_wake", "_task", "_hub", "_last_log", "_park")

    def __init__(self, hub: EventHub, name: str, handler: Handler, kinds: frozenset[type] | None,
                 maxsize: int, batch: bool = False,
                 on_overflow: Callable[[Any], Any] | None = None) -> None:
        self._hub = hub
        self.name = name
        self.handler = handler
        self.kinds = kinds
        self.maxsize = maxsize
        self.soft = max(1, maxsize // 2)  # this many queued: no parking behind a reader (publish takes _offer)
        self.batch = batch
        self.on_overflow = on_overflow
        self.queue: deque[CallEvent] = deque()
        self.dropped = 0
        self.failed = 0
        self.delivered = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_log = float("-inf")
        self._park: asyncio.Future[None] | None = None  # while parked behind a reader's backlog

    def close(self) -> None:
        """Stop receiving events (the ones queued are discarded)."""
        self._hub._remove(self)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.queue.clear()

    def _offer(self, event: CallEvent) -> None:
        queue = self.queue
        if len(queue) >= self.maxsize:
            lost = queue.popleft()
            self.dropped += 1
            DROPPED.inc(subscriber=self.name)
            now = time.monotonic()
            if now - self._last_log >= _LOG_INTERVAL:
                self._last_log = now
                log.warning("event subscriber %s is too slow: %d events dropped so far", self.name, self.dropped)
            if self.on_overflow is not None:
                try:
                    self.on_overflow(lost)
                except Exception:  # noqa: BLE001 - never the publisher's problem
                    self._failed(lost)
        queue.append(event)
        park = self._park
        if park is not None and len(queue) >= self.soft and not park.done():
            park.set_result(None)  # half full: go on now rather than drop events later
        wake = self._wake
        if wake is not None and not wake.is_set():
            wake.set()

    def _deliver(self, event: CallEvent) -> Awaitable[Any] | None:
        try:
            result = self.handler(event)
        except Exception:  # noqa: BLE001 - a failing subscriber must never stop the others
            self._failed(event)
            return None
        self.delivered += 1
        return None if result is None or not inspect.isawaitable(result) else result

    def _deliver_batch(self) -> tuple[CallEvent, Awaitable[Any] | None]:
        """A batch subscriber: everything queued, in one call (the first event names the batch in a failure)."""
        events = list(self.queue)
        self.queue.clear()
        try:
            result = self.handler(events)
        except Exception:  # noqa: BLE001
            self._failed(events[0])
            return events[0], None
        self.delivered += len(events)
        return events[0], None if result is None or not inspect.isawaitable(result) else result

    def _failed(self, event: CallEvent) -> None:
        self.failed += 1
        FAILED.inc(subscriber=self.name)
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL:  # a subscriber failing on every event must not flood the log
            self._last_log = now
            log.exception("event subscriber %s failed on %s (seq %d of %s); %d failures so far", self.name,
                          type(event).__name__, event.seq, event.server, self.failed)

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            if self.queue:
                self._wake.set()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"events:{self.name}")

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        queue = self.queue
        backlog = self._hub.backlog
        while True:
            await wake.wait()
            wake.clear()
            if backlog.holding and len(queue) < self.soft:
                self._park = backlog.park()
                try:
                    await self._park
                finally:
                    self._park = None
                wake.clear()  # what was published meanwhile is queued: handled now
            while queue:
                if self.batch:
                    event, pending = self._deliver_batch()
                else:
                    event = queue.popleft()
                    pending = self._deliver(event)
                if pending is not None:
                    try:
                        await pending
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # noqa: BLE001
                        self._failed(event)


class EventHub:
    def __init__(self, backlog: ReadBacklog | None = None, clock: Clock | None = None) -> None:
        """``clock``: what :meth:`stop` waits on (default: the loop's), and the backlog's when none is given."""
        self.backlog = backlog if backlog is not None else ReadBacklog(clock=clock)  # the AMI readers report to it
        self.clock: Clock = clock if clock is not None else LoopClock()
        _HUBS.add(self)
        self._subs: list[Subscription] = []
        self._by_kind: dict[type, tuple[Subscription, ...]] = {}  # event type -> its subscribers, built on first use
        self._running = False

    def subscribe(self, name: str, handler: Handler, *, kinds: Iterable[type] | None = None,
                  maxsize: int = DEFAULT_MAXSIZE, batch: bool = False,
                  on_overflow: Callable[[Any], Any] | None = None) -> Subscription:
        """``batch``: ``handler(events)`` receives every event queued since its last call, as a list (in order) —
        for a subscriber whose work per event is a round trip it can make once for many. ``on_overflow(event)``:
        each event the subscriber loses to a full queue (module docstring)."""
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        sub = Subscription(self, name, handler, frozenset(kinds) if kinds is not None else None, maxsize, batch,
                           on_overflow)
        self._subs = [*self._subs, sub]  # copy-on-write: publish iterates without a guard
        self._by_kind = {}
        if self._running:
            sub.start()
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subs = [s for s in self._subs if s is not sub]
        self._by_kind = {}

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)

    def publish(self, event: CallEvent) -> None:
        PUBLISHED.inc()
        kind = type(event)
        subs = self._by_kind.get(kind)
        if subs is None:
            subs = self._by_kind[kind] = tuple(s for s in self._subs if s.kinds is None or kind in s.kinds)
        for sub in subs:
            queue = sub.queue
            if len(queue) >= sub.soft - 1:
                sub._offer(event)  # the slow path: ends a parking, drops the oldest when full (counted, logged)
                continue
            queue.append(event)
            wake = sub._wake
            if wake is not None and not wake.is_set():
                wake.set()

    def start(self) -> None:
        """Start every subscriber's delivery task (call from the running event loop)."""
        self._running = True
        self.backlog.close()
        for sub in self._subs:
            sub.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the tasks."""
        clock = self.clock
        deadline = clock.monotonic() + timeout
        self.backlog.open()
        while any(s.queue for s in self._subs) and clock.monotonic() < deadline:
            await clock.sleep(0.01)
        self._running = False
        for sub in self._subs:
            if sub._task is not None:
                sub._task.cancel()
                sub._task = None

    def drain(self) -> int:
        """Deliver every queued event now, synchronously (no event loop: unit tests, tools). Awaitables returned
        by ``async`` handlers are closed undelivered, so use this with plain handlers only."""
        count = 0
        progress = True
        while progress:
            progress = False
            for sub in self._subs:
                while sub.queue:
                    if sub.batch:
                        count += len(sub.queue)
                        _first, pending = sub._deliver_batch()
                    else:
                        pending = sub._deliver(sub.queue.popleft())
                        count += 1
                    if pending is not None and hasattr(pending, "close"):
                        pending.close()
                    progress = True
        return count
