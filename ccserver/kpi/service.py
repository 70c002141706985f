"""The KPI service: a subscriber of the call-events hub that keeps one :class:`~ccserver.kpi.book.ServerBook` per
Asterisk server this node leads, and the job that ends intervals.

- **Only the leader counts.** Every node's tracker sees every server's events (followers through the relay), but a
  book is kept only for a server in ``leading`` (``Telephony.leading``: the servers whose AMI this node consumes),
  so nothing is counted twice. A node that stops leading a server drops its book; the next leader continues it.
- **Live for every node.** With Redis, each book's whole state is written to ``ccserver:kpi:live:<server>`` (JSON,
  at most every ``write_every`` seconds when something changed); any node reads it for ``GET /api/queues``, and a
  node that starts leading a server continues from it (a few seconds of events between the last write and the
  change of leader can be missed; they are never counted twice). Without Redis the books live in this process.
- **Intervals end on time.** The job sleeps to the next quarter hour (local), ends the interval in every book it
  keeps and writes the rows to SQL (``KpiStore``, an upsert per interval: writing twice never adds). Rows SQL
  refused stay pending (in the book, so in Redis too) and are tried again at the next interval end. It is not a
  once-per-cluster job: each server's counters exist only on the node leading it, so that node writes them.
- **Restarts.** At shutdown the open interval's rows are written too (and the book to Redis); a book started
  without Redis state reads its day back from SQL, so today's figures survive a restart and the interval's row is
  completed, not duplicated, when it ends.
- **Callbacks.** A callback request may reach any node over FastAGI: the leader of its server counts it; another
  node pushes it to the leader's inbox (``ccserver:kpi:inbox:<server>``), drained at every live write.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

from ccserver.bridge import spawn
from ccserver.clock import Clock, LoopClock
from ccserver.events.types import (
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallTransferred,
    CallUpdated,
    QueueChanged,
    Resynced,
)
from ccserver.kpi.book import KpiSettings, ServerBook
from ccserver.kpi.intervals import interval_start
from ccserver.kpi.store import KpiStore

__all__ = ["KINDS", "KpiService", "inbox_key", "live_key"]

log = logging.getLogger("ccserver.kpi")

KINDS = (CallOffered, CallAnswered, CallAbandoned, CallEnded, CallTransferred, AgentRingStopped, AgentStateChanged,
         Resynced, CallUpdated, QueueChanged)
LIVE_TTL_SECONDS = 2 * 86_400  # a server no node leads any more fades from Redis
INBOX_BATCH = 1000
_WAITING = ("queued", "ringing")


def live_key(server: str) -> str:
    return f"ccserver:kpi:live:{server}"


def inbox_key(server: str) -> str:
    return f"ccserver:kpi:inbox:{server}"


class KpiService:
    """See the module docstring. ``leading``: the servers this node counts (a live set, e.g. ``Telephony.leading``;
    None = every server); ``servers``: every configured server (read from Redis when another node leads it);
    ``tracker``: the live model's read-only queries (who left a queue, members' wrapuptime); ``run_blocking``:
    ``await run_blocking(fn, …)`` for SQL."""

    def __init__(self, settings: KpiSettings, *, store: KpiStore | None,
                 run_blocking: Callable[..., Awaitable[Any]], redis: Any = None,
                 leading: Collection[str] | None = None, servers: Iterable[str] = (), tracker: Any = None,
                 clock: Clock | None = None, write_every: float = 1.0, grace: float = 1.0) -> None:
        self.settings = settings
        self.store = store
        self.run_blocking = run_blocking
        self.redis = redis
        self.leading = leading
        self.servers = list(servers)
        self.tracker = tracker
        self.clock: Clock = clock or LoopClock()
        self.write_every = write_every
        self.grace = grace
        self.books: dict[str, ServerBook] = {}
        self._dirty: set[str] = set()
        self._loading = asyncio.Lock()
        self._members: dict[tuple[str, str], int] = {}  # (server, queue) -> member count last seen
        self._tasks: list[asyncio.Task[Any]] = []

    def subscribe(self, hub: Any) -> Any:
        return hub.subscribe("kpi", self.on_event, kinds=KINDS)

    def leads(self, server: str) -> bool:
        return self.leading is None or server in self.leading

    # -- events ------------------------------------------------------------------------------------------------
    def on_event(self, event: CallEvent) -> Awaitable[None] | None:
        """The hub's handler: plain for most events; a coroutine (the hub awaits it before the next event) only
        when the server's book must first be read back from Redis or SQL."""
        server = event.server
        if not self.leads(server):
            if self.books.pop(server, None) is not None:
                log.info("KPI: this node no longer leads %s; the next leader continues its figures", server)
            return None
        if isinstance(event, CallUpdated):
            self._check_left(event)
            return None
        if isinstance(event, QueueChanged):
            self._check_members(event)
            return None
        book = self.books.get(server)
        if book is None:
            return self._load_and_apply(event)
        book.apply(event)
        self._dirty.add(server)
        return None

    async def _load_and_apply(self, event: CallEvent) -> None:
        book = await self._book(event.server, event.at)
        book.apply(event)
        self._dirty.add(event.server)

    def _check_left(self, event: CallUpdated) -> None:
        # A caller who leaves a queue unanswered (its timeout, leave-empty) has no event of its own: the live model
        # says so. Its outcome is counted later, by the event that tells it.
        book = self.books.get(event.server)
        visit = book.visits.get(event.uniqueid) if book is not None else None
        if book is None or visit is None or visit.left or self.tracker is None:
            return
        call = self.tracker.call(event.uniqueid, event.server)
        if call is None or call.state not in _WAITING or call.queue != visit.queue:
            book.left_queue(event.uniqueid)
            self._dirty.add(event.server)

    def _check_members(self, event: QueueChanged) -> None:
        # Members added since the last resync: learn their wrapuptime (configuration: reading it late is harmless).
        key = (event.server, event.queue)
        book = self.books.get(event.server)
        if book is None or self.tracker is None or self._members.get(key) == event.members:
            return
        self._members[key] = event.members
        queue = self.tracker.queue(event.queue, event.server)
        for member in queue.members.values() if queue is not None else ():
            book.set_wrapup_time(event.queue, member.interface, member.wrapuptime)

    async def callback_requested(self, server: str, queue: str, at: float) -> None:
        """A caller asked for a callback (the callback FastAGI script ran) for ``queue``."""
        if self.leads(server):
            book = await self._book(server, at)
            book.callback_requested(queue, at)
            self._dirty.add(server)
        elif self.redis is not None:
            key = inbox_key(server)
            await self.redis.rpush(key, json.dumps({"queue": queue, "at": at}))
            await self.redis.expire(key, LIVE_TTL_SECONDS)
        else:
            log.warning("KPI: a callback for %s was not counted: no node counts that server", server)

    def note_callback(self, server: str, queue: str, at: float) -> None:
        """:meth:`callback_requested` in the background (the routing service's hook: it never waits for it)."""
        spawn(self.callback_requested(server, queue, at), f"KPI callback count for {server}")

    # -- books -------------------------------------------------------------------------------------------------
    async def _book(self, server: str, now: float) -> ServerBook:
        book = self.books.get(server)
        if book is not None:
            return book
        async with self._loading:
            book = self.books.get(server)
            if book is None:
                book = self.books[server] = await self._load(server, now)
        return book

    async def _load(self, server: str, now: float) -> ServerBook:
        if self.redis is not None:
            try:
                raw = await self.redis.get(live_key(server))
            except Exception as exc:  # noqa: BLE001 - start from SQL instead
                log.warning("KPI: the live figures of %s could not be read from Redis (%s)", server, exc)
                raw = None
            if raw:
                try:
                    book = ServerBook.from_state(json.loads(raw), self.settings)
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("KPI: the live figures of %s in Redis are unreadable (%s); starting from SQL", server,
                              exc)
                else:
                    book.roll(now)
                    log.info("KPI: counting %s from its live figures in Redis", server)
                    return book
        book = ServerBook(server, self.settings)
        book.roll(now)
        if self.store is not None:
            try:
                book.seed(await self.run_blocking(self.store.day_rows, server, book.day))
            except Exception as exc:  # noqa: BLE001 - SQL down: today's figures restart from the interval on
                log.error("KPI: today's rows of %s could not be read (%s); today's figures start from now", server,
                          exc)
        log.info("KPI: counting %s (today %s)", server, book.day)
        return book

    def _kept(self) -> list[tuple[str, ServerBook]]:
        """The books of the servers this node leads (a book of a server it no longer leads is dropped)."""
        for server in [s for s in self.books if not self.leads(s)]:
            self.books.pop(server)
        return list(self.books.items())

    # -- the job -----------------------------------------------------------------------------------------------
    async def roll(self, now: float | None = None) -> int:
        """End every interval that is over in the books kept here, then write the rows; returns rows written."""
        now = self.clock.time() if now is None else now
        for server, book in self._kept():
            if book.roll(now):
                self._dirty.add(server)
        return await self.flush()

    async def flush(self, extra: Iterable[dict[str, Any]] = ()) -> int:
        """Write every book's pending rows (and ``extra``) to SQL; rows SQL refuses stay pending."""
        extra = list(extra)
        if self.store is None:
            return 0
        taken = [(book, book.take_pending()) for _server, book in self._kept()]
        rows = [row for _book, pending in taken for row in pending] + extra
        if not rows:
            return 0
        try:
            written = int(await self.run_blocking(self.store.write, rows))
        except Exception as exc:  # noqa: BLE001 - kept and tried again at the next interval end
            for book, pending in taken:
                book.pending[:0] = pending
            log.error("KPI: %d interval rows could not be written (%s); they are kept and tried again", len(rows),
                      exc)
            return 0
        for server, _book in self._kept():
            self._dirty.add(server)
        return written

    async def publish_live(self) -> None:
        """Count the callbacks other nodes noted, then write the changed books to Redis."""
        if self.redis is None:
            self._dirty.clear()
            return
        for server, book in self._kept():
            items = await self.redis.lpop(inbox_key(server), INBOX_BATCH)
            for raw in items or ():
                try:
                    item = json.loads(raw)
                    book.callback_requested(str(item["queue"]), float(item["at"]))
                except (ValueError, KeyError, TypeError):
                    log.warning("KPI: an unreadable callback note for %s was dropped", server)
                    continue
                self._dirty.add(server)
        dirty, self._dirty = self._dirty, set()
        try:
            for server, book in self._kept():
                if server in dirty:
                    await self.redis.set(live_key(server), json.dumps(book.to_state(), separators=(",", ":")),
                                         ex=LIVE_TTL_SECONDS)
        except BaseException:
            self._dirty |= dirty  # written next time
            raise

    async def _roller(self) -> None:
        while True:
            now = self.clock.time()
            boundary = interval_start(now, self.settings.time_zone, self.settings.interval_seconds)
            await self.clock.sleep(boundary + self.settings.interval_seconds - now + self.grace)
            try:
                written = await self.roll()
                await self.publish_live()
                log.debug("KPI: interval ended, %d rows written", written)
            except Exception:  # noqa: BLE001 - the next interval tries again
                log.exception("KPI: ending the interval failed")

    async def _writer(self) -> None:
        while True:
            await self.clock.sleep(self.write_every)
            try:
                await self.publish_live()
            except Exception as exc:  # noqa: BLE001 - Redis blip: the next round writes it
                log.warning("KPI: live figures not written to Redis (%s)", exc)

    async def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._roller())]
        if self.redis is not None:
            self._tasks.append(asyncio.ensure_future(self._writer()))

    async def stop(self) -> None:
        """Stop the job; write the rows of the intervals ended and of the open one (partial), and the live state."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        now = self.clock.time()
        partial: list[dict[str, Any]] = []
        for server, book in self._kept():
            book.roll(now)
            book.count_to(now)
            partial.extend(book.rows())
            self._dirty.add(server)
        written = await self.flush(partial)
        try:
            await self.publish_live()
        except Exception as exc:  # noqa: BLE001
            log.warning("KPI: live figures not written to Redis at shutdown (%s)", exc)
        log.info("KPI: stopped (%d rows written)", written)

    # -- reading -----------------------------------------------------------------------------------------------
    async def live(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every server's live figures (:meth:`ServerBook.snapshot`): this node's books, the others' from Redis."""
        now = self.clock.time() if now is None else now
        out = {server: book.snapshot(now) for server, book in self._kept()}
        others = [s for s in self.servers if s not in out]
        if self.redis is not None and others:
            for server, raw in zip(others, await self.redis.mget([live_key(s) for s in others]), strict=True):
                if not raw:
                    continue
                try:
                    book = ServerBook.from_state(json.loads(raw), self.settings)
                    book.roll(now)  # a copy: brought to the current interval and day for reading
                    out[server] = book.snapshot(now)
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("KPI: the live figures of %s in Redis are unreadable (%s)", server, exc)
        return [out[s] for s in sorted(out)]
