"""The routing service: the FastAGI ``incoming`` handler (and the post-call ``survey``).

Per call, in order::

    caller ID ─ normalise (a local landline takes the DID's store area code)
    ${EXTEN}  ─ DID from the in-memory table (unknown DID → the configured hotline/default route)
    arg 1     ─ ${CC_CAMPAIGN_ID}: a campaign leg, like a caller ID that is one of our own DIDs, never
                creates a prospect (agi-06: an answered campaign leg re-enters the inbound context)
    identity  ─ Redis summary cache (hit) or the SQL directory in a worker thread (miss; then cached)
                ── raced against the deadline ──
    calendar, live view (in memory) → decide() → ONE ``EXEC MSet`` with Decision.to_dialplan()
    log line + write-behind record (routing_decisions) — never on the call's path

**Deadline.** The variables go out within ``deadline_seconds`` (1.5 s) of the session start whatever SQL and
Redis do. Identification is the only step that waits on I/O; it is raced against a timer on the service's
clock (``deadline − margin − time already spent``). A cache that bounds its own wait within that budget
(``max_wait``: the in-process cache, or Redis through the call-path client and its timeout) is awaited
directly and only the SQL lookup after a miss is raced — a cache hit then needs no timer. When the timer
wins, or the lookup fails, the call is routed **without customer data by the full rules** (business hours,
overflow, live queues, callback offers still apply: they are all in memory) — not by the bare ``default_decision`` —
so a slow CRM costs the caller their tier, never their route. ``default_decision(did)`` is used only when the
decision itself fails (a bug or corrupt data). Each fallback logs a warning and counts
``ccserver_routing_fallbacks_total{reason}`` (``timeout``, ``directory_error``, ``directory_busy``,
``cache_error``, ``decision_error``); the decision record says ``fallback``. A lookup that loses the race is
not cancelled: it finishes in its thread and warms the cache for the caller's next call.

**Lookup slots.** At most ``max_pending_lookups`` SQL lookups run at once, so a hung database cannot eat the
thread pool or the connections. A call that finds them all busy waits for one in a FIFO
(``lookup_slots.LookupSlots``, at most ``max_waiting_lookups`` waiting) within its deadline: a burst of new
callers is identified, not turned away. ``directory_busy`` counts the calls that never got a slot — the queue was
full, or the deadline came while they waited (they leave the queue then, and no lookup is started for them);
``timeout`` counts lookups that started and did not answer in time.

A Redis failure alone is not a lost customer: the lookup goes straight to SQL (counted as ``cache_error``).

**Decision ids** are 16 characters of lowercase base32 (``[a-z2-7]``, safe in dialplan, MSet and CDRs):
48 bits of epoch milliseconds, a 16-bit per-process counter and 16 random bits chosen at start-up —
time-ordered, unique across restarts and nodes in practice.

**Preferred agent.** ``decide()`` offers the customer's own consultant/advisor only when the live view shows
them logged in and free, as ``CC_AGENT_QUEUE`` = their personal queue (``agent-8001``, that agent its only
dynamic member): the shipped dialplan queues the call there first, so app_queue emits the same events as for
any queue call (screen pop, wallboard), then falls through to ``CC_QUEUE``.
"""

from __future__ import annotations

import base64
import functools
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from ccserver.agi.session import AGISession
from ccserver.callrouting.callback import CALLBACK_TICKETS, PromiseKeeper, callback_due, callback_key
from ccserver.callrouting.directory_data import RoutingData, RoutingDataRefresher
from ccserver.callrouting.live import agent_of_interest, live_view, queues_of_interest
from ccserver.callrouting.lookup_slots import DirectoryBusy, LookupSlots
from ccserver.callrouting.records import decision_record, survey_record
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.cache import SummaryCache, as_deferred, with_calls
from ccserver.customers.directory import Identity
from ccserver.logs import caller_number, log_text
from ccserver.metrics import REGISTRY
from ccserver.state.tracker import StateTracker
from routing.decision import CallFacts, CustomerSummary, Decision, DidRoute, decide, default_decision, sanitize_value
from routing.numbers import normalize
from routing.rules import RoutingRules

if TYPE_CHECKING:
    from ccserver.customers.loop_lookup import LoopLookup

__all__ = [
    "DECISIONS",
    "Directory",
    "FALLBACKS",
    "LATENCY",
    "RoutingService",
    "await_cache",
    "new_decision_id",
]

log = logging.getLogger("ccserver.routing")

DECISIONS = REGISTRY.counter("ccserver_routing_decisions_total", "Routing decisions answered to the dialplan")
FALLBACKS = REGISTRY.counter(
    "ccserver_routing_fallbacks_total",
    "Routing without (part of) the customer data: timeout, directory_error, directory_busy, cache_error, "
    "decision_error",
)
LATENCY = REGISTRY.histogram(
    "ccserver_routing_decision_seconds",
    "Session start to routing decision (identification, calendar, live view, decide), before the MSet",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0),
)


class Directory(Protocol):
    """What the service needs of ``ccserver.customers.directory.CustomerDirectory`` (fakes in tests)."""

    def identify(self, e164: str, *, store_id: int | None, line: str | None,
                 create_prospect: bool) -> Identity: ...  # blocking: run in a worker thread


def await_cache(cache: SummaryCache, coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
    """A Deferred for one cache coroutine: driven inline (``cache.inline``: it never waits on asyncio, or it
    waits on Deferreds only), else as an asyncio task on the reactor's loop (redis.asyncio)."""
    if getattr(cache, "inline", False):
        return Deferred.fromCoroutine(coro)
    return as_deferred(coro)  # type: ignore[no-any-return]


# -- decision ids ----------------------------------------------------------------------------------------------
_SALT = secrets.randbits(16)
_COUNTER = itertools.count(secrets.randbits(16))


def new_decision_id(now: float) -> str:
    """16 chars of lowercase base32: epoch ms (48 bits), counter (16), per-process salt (16)."""
    value = ((int(now * 1000) & 0xFFFF_FFFF_FFFF) << 32) | ((next(_COUNTER) & 0xFFFF) << 16) | _SALT
    return base64.b32encode(value.to_bytes(10, "big")).decode("ascii").lower()


_TIMED_OUT = object()
CALLBACK_ATTEMPTS = 3  # writes of a callback ticket that failed outright, within the deadline


def _tee(source: Deferred[Any]) -> tuple[Deferred[Any], Deferred[Any]]:
    """Two Deferreds with ``source``'s result (a race consumes one; the other is there for what comes after)."""
    first: Deferred[Any] = Deferred()
    second: Deferred[Any] = Deferred()

    def fan_out(result: Any) -> None:
        for d in (first, second):
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

    source.addBoth(fan_out)
    return first, second


def _clean(text: object, limit: int = 64) -> str:
    """Caller-controlled text for a log line: bounded, escaped (``ccserver.logs.log_text``)."""
    return log_text(text, limit)


class RoutingService:
    """See the module docstring. ``routing_data``: a :class:`RoutingData` or a :class:`RoutingDataRefresher`
    (its current copy is read per call). ``directory`` / ``cache`` / ``tracker`` may be None (no SQL lookup,
    no Redis, no AMI). ``run_blocking(fn, *a, **kw)`` → Deferred (worker thread). ``clock``: the reactor or a
    ``task.Clock``. ``record_sink(record)``: ``RecordBatcher.submit``. ``wall``: epoch time (calendar, EWT).
    """

    def __init__(self, routing_data: RoutingData | RoutingDataRefresher, directory: Directory | None,
                 cache: SummaryCache | None, tracker: StateTracker | None, rules: RoutingRules,
                 settings: RoutingSettings, run_blocking: Callable[..., Deferred[Any]], clock: Any,
                 record_sink: Callable[[dict[str, Any]], None] | None = None, *,
                 wall: Callable[[], float] = time.time,
                 callback_tickets: Callable[..., tuple[int, bool]] | None = None,
                 loop_lookup: LoopLookup | None = None) -> None:
        if isinstance(routing_data, RoutingData):
            fixed = routing_data
            self._data: Callable[[], RoutingData] = lambda: fixed
        else:
            refresher = routing_data
            self._data = lambda: refresher.current
        self._directory = directory
        self._cache = cache
        self._tracker = tracker
        self.rules = rules
        self.settings = settings
        self._run_blocking = run_blocking
        self._clock = clock
        self._record_sink = record_sink
        self._wall = wall
        self._callback_tickets = callback_tickets  # blocking: open_callback_ticket bound to a session factory
        self._promises = PromiseKeeper(run_blocking, clock)  # callbacks promised before their ticket was written
        self._loop_lookup = loop_lookup  # PostgreSQL: cache misses read on the loop
        self._slots = LookupSlots(settings.max_pending_lookups, settings.max_waiting_lookups)
        self._interest: dict[tuple[str, str], frozenset[str]] = {}

    def handlers(self) -> dict[str, Callable[[AGISession], Coroutine[Any, Any, None]]]:
        """FastAGI routes: ``{"incoming": ..., "survey": ..., "callback": ...}`` for ``FastAGIFactory``."""
        return {"incoming": self.incoming, "survey": self.survey, "callback": self.callback}

    # -- incoming ----------------------------------------------------------------------------------------------
    async def incoming(self, session: AGISession) -> None:
        started = self._clock.seconds()
        perf0 = time.perf_counter()
        settings = self.settings
        data = self._data()
        uniqueid = session.uniqueid
        raw = session.callerid
        extension = session.extension
        server = self._server(session)
        args = session.args
        campaign = sanitize_value(args[0].strip()) if args and args[0].strip() else ""
        decision_id = new_decision_id(self._wall())
        notes: list[str] = []

        did = data.did(extension)
        if did is None:
            did = self._unknown_did(extension)
            notes.append(f"unknown DID {sanitize_value(extension) or '(none)'}: {did.line} route")
        caller = normalize(raw, region=settings.default_region, local_area_code=did.area_code)

        customer: CustomerSummary | None = None
        fallback: str | None = None
        if caller.ok and caller.e164 is not None:
            if data.is_own_number(caller):
                notes.append("caller ID is one of our DIDs (campaign leg): not identified, no prospect")
            else:
                if campaign:
                    notes.append(f"campaign {campaign} leg: no prospect created")
                remaining = settings.deadline_seconds - settings.margin_seconds - (self._clock.seconds() - started)
                customer, fallback = await self._identify(caller.e164, did, not campaign, remaining, uniqueid, notes)

        decision = self._decide(decision_id, caller, uniqueid, extension, did, customer, server, notes)
        if decision is None:
            fallback = "decision_error"
            decision = default_decision(did, decision_id, self.rules)
        elif decision.fallback:
            # The rules named a queue Asterisk does not have (after a resync): routed to the DID's fallback.
            FALLBACKS.inc(reason=decision.fallback)
            log.warning("routing uniqueid=%s: the rules' queue is not defined in Asterisk; routed to %s",
                        _clean(uniqueid), decision.queue or "the callback-request flow")
            fallback = fallback or decision.fallback
        decision.reasons[0:0] = notes
        variables = decision.to_dialplan()
        latency = time.perf_counter() - perf0
        # Answer first: the caller waits on the variables, not on the bookkeeping (done even if they hung up).
        try:
            await session.set_variables(variables)
        finally:
            self._account(decision, variables, latency, fallback, raw, caller, did, extension, server, uniqueid)

    def _account(self, decision: Decision, variables: dict[str, str], latency: float, fallback: str | None,
                 raw: str, caller: Any, did: DidRoute, extension: str, server: str, uniqueid: str) -> None:
        """Metrics, the log line with the reasons, and the decision record (written behind)."""
        DECISIONS.inc()
        LATENCY.observe(latency)
        log.info("route uniqueid=%s decision=%s caller=%s did=%s -> queue=%s prio=%s tier=%s agent=%s ewt=%s%s "
                 "(%.1f ms): %s", _clean(uniqueid), decision.decision_id, caller_number(raw, log), did.did,
                 variables["CC_QUEUE"] or "-", variables["CC_PRIORITY"], variables["CC_TIER"],
                 variables["CC_AGENT_QUEUE"] or "-", variables["CC_EWT"],
                 f" FALLBACK={fallback}" if fallback else "", latency * 1000, "; ".join(decision.reasons))
        self._submit(decision_record(decision, variables, made_at=self._wall(), server=server, uniqueid=uniqueid,
                                     caller_raw=raw, caller_e164=caller.e164, dialed=extension,
                                     fallback=fallback is not None, latency_ms=latency * 1000))

    def _decide(self, decision_id: str, caller: Any, uniqueid: str, extension: str, did: DidRoute,
                customer: CustomerSummary | None, server: str, notes: list[str]) -> Decision | None:
        rules = self.rules
        try:
            now = self._wall()
            open_now = self._data().is_open(did, datetime.fromtimestamp(now, UTC))
            agent = agent_of_interest(did, customer, rules)
            live = live_view(self._tracker, server, now, self._queues_for(did), agent)
            return decide(CallFacts(decision_id, caller, now, uniqueid, extension), customer, did, open_now, live,
                          rules)
        except Exception:  # noqa: BLE001 - a bug here must not leave the caller in silence
            FALLBACKS.inc(reason="decision_error")
            log.exception("routing decision failed (uniqueid=%s): default route of DID %s", _clean(uniqueid), did.did)
            notes.append("decision failed: default route")
            return None

    def _queues_for(self, did: DidRoute) -> frozenset[str]:
        key = (did.line, did.default_queue)
        names = self._interest.get(key)
        if names is None:
            names = self._interest[key] = frozenset(queues_of_interest(did, self.rules))
        return names

    def _unknown_did(self, extension: str) -> DidRoute:
        s = self.settings
        return DidRoute(did=sanitize_value(extension) or "unknown", store_id="", line=s.unknown_did_line,
                        default_queue=s.unknown_did_queue, area_code=s.default_area_code, language=s.default_language)

    def _server(self, session: AGISession) -> str:
        if "?" in session.request:
            name = session.query.get("server")
            if name:
                return sanitize_value(name)
        return self.settings.server

    def _submit(self, record: dict[str, Any]) -> None:
        if self._record_sink is None:
            return
        try:
            self._record_sink(record)
        except Exception:  # noqa: BLE001 - recording never fails a call
            log.exception("routing record not queued (decision %s)", record.get("decision_id"))

    # -- identification, raced against the deadline ---------------------------------------------------------------
    async def _identify(self, e164: str, did: DidRoute, create_prospect: bool, remaining: float, uniqueid: str,
                        notes: list[str]) -> tuple[CustomerSummary | None, str | None]:
        if self._directory is None and self._cache is None:
            return None, None
        if remaining <= 0:
            return None, self._fallback("timeout", uniqueid, notes, "no time left before the deadline")
        cache = self._cache
        queued: list[Deferred[None]] = []  # this call's place in the lookup queue while it waits for a slot
        bound = getattr(cache, "max_wait", None)
        if cache is not None and bound is not None and bound < remaining:
            # The cache bounds its own wait well inside the budget (its client's timeout): awaited directly — a
            # hit, most calls, needs no timer and no extra Deferred. Only the SQL lookup is raced.
            started = self._clock.seconds()
            identity, count, cache_ok = await self._from_cache(cache, e164, uniqueid, notes)
            if identity is not None or self._directory is None:
                return self._identified(identity, count, notes), None
            remaining -= self._clock.seconds() - started
            if remaining <= 0:
                return None, self._fallback("timeout", uniqueid, notes, "no time left after the cache")
            pending = self._from_directory(e164, did, create_prospect, cache if cache_ok else None, count, queued)
        else:
            pending = self._lookup(e164, did, create_prospect, uniqueid, notes, queued)
        outcome = (await self._race(Deferred.fromCoroutine(pending), remaining))[0]
        if outcome is _TIMED_OUT:
            if queued:  # still waiting for a lookup slot: leave the queue, no lookup for a call already routed
                queued.pop().cancel()
                return None, self._fallback("directory_busy", uniqueid, notes,
                                            f"no lookup slot free within {remaining:.2f} s")
            return None, self._fallback("timeout", uniqueid, notes, f"no answer within {remaining:.2f} s")
        if isinstance(outcome, Failure):
            reason = "directory_busy" if outcome.check(DirectoryBusy) else "directory_error"
            return None, self._fallback(reason, uniqueid, notes, outcome.getErrorMessage())
        identity, count = outcome
        return self._identified(identity, count, notes), None

    @staticmethod
    def _identified(identity: Identity | None, count: int | None, notes: list[str]) -> CustomerSummary | None:
        if identity is not None and count is not None:
            identity = with_calls(identity, count)  # the counter includes this call; routing wants earlier ones
        if identity is not None and identity.created_prospect:
            notes.append("new prospect recorded for this number")
        return identity.customer if identity is not None else None

    def _fallback(self, reason: str, uniqueid: str, notes: list[str], detail: str) -> str:
        FALLBACKS.inc(reason=reason)
        log.warning("routing uniqueid=%s without customer data (%s): %s", _clean(uniqueid), reason,
                    _clean(detail, 300))
        notes.append(f"customer lookup {reason}: routed as unidentified")
        return reason

    def _race(self, lookup: Deferred[Any], timeout: float) -> Deferred[Any]:
        """Fires with a 1-tuple: the lookup's result, its Failure (as a value, not an error), or ``_TIMED_OUT`` —
        whichever comes first. The lookup itself is not cancelled (it warms the cache when it completes)."""
        race: Deferred[Any] = Deferred()
        timer: Any = None
        early: list[Any] = []

        def fire(value: Any) -> None:
            if not race.called:
                race.callback((value,))

        def done(result: Any) -> None:
            if timer is None:  # finished synchronously (an inline cache hit): no timer needed
                early.append(result)
                return
            if timer.active():
                timer.cancel()
            if race.called:
                if isinstance(result, Failure):
                    log.debug("late customer lookup failed: %s", result.getErrorMessage())
                return
            fire(result)

        lookup.addBoth(done)
        if early:
            return succeed((early[0],))
        timer = self._clock.callLater(timeout, fire, _TIMED_OUT)
        return race

    async def _lookup(self, e164: str, did: DidRoute, create_prospect: bool, uniqueid: str, notes: list[str],
                      queued: list[Deferred[None]]) -> tuple[Identity | None, int | None]:
        """Cache, then (on a miss) SQL: the whole lookup, when it is raced as one against the deadline."""
        cache = self._cache
        if cache is None:
            return await self._from_directory(e164, did, create_prospect, None, None, queued)
        identity, count, cache_ok = await self._from_cache(cache, e164, uniqueid, notes)
        if identity is not None or self._directory is None:
            return identity, count
        return await self._from_directory(e164, did, create_prospect, cache if cache_ok else None, count, queued)

    async def _from_cache(self, cache: SummaryCache, e164: str, uniqueid: str,
                          notes: list[str]) -> tuple[Identity | None, int | None, bool]:
        """(identity or None, 24-hour call count, whether the cache answered). Redis down is not a lost customer:
        the caller goes on to SQL."""
        try:
            fast = getattr(cache, "lookup_deferred", None)  # Redis: a Deferred, no asyncio hop
            if fast is not None:
                identity, count = await fast(e164, self._wall())
            else:
                identity, count = await await_cache(cache, cache.lookup(e164, self._wall()))
            return identity, count, True
        except Exception as exc:  # noqa: BLE001 - Redis down: go to SQL
            self._fallback_cache(uniqueid, notes, exc)
            return None, None, False

    async def _from_directory(self, e164: str, did: DidRoute, create_prospect: bool, cache: SummaryCache | None,
                              count: int | None, queued: list[Deferred[None]]) -> tuple[Identity | None, int | None]:
        """The SQL lookup in a lookup slot (waiting for one in ``queued`` while all are busy): read on the loop
        when there is a loop lookup (PostgreSQL), else — and to create a prospect — by the directory in a worker
        thread. Its answer is cached."""
        if self._directory is None:
            return None, count
        turn = self._slots.take()  # DirectoryBusy when the queue is full
        if turn is not None:
            queued.append(turn)
            await turn  # cancelled (CancelledError) when the call's deadline comes first
            queued.clear()
        try:
            identity: Identity | None = None
            if self._loop_lookup is not None:
                identity = await as_deferred(self._loop_lookup.identify(e164))
                if identity is not None and identity.customer is None and create_prospect:
                    identity = None  # unknown: the directory creates the prospect (a transaction, in a thread)
            if identity is None:
                store_id = int(did.store_id) if did.store_id.isdigit() else None
                identity = await self._run_blocking(self._directory.identify, e164, store_id=store_id,
                                                    line=did.line, create_prospect=create_prospect)
        finally:
            self._slots.give_back()
        if cache is not None and identity is not None:
            # Fire and forget. Redis: a Deferred through the call-path client, no asyncio hop.
            store = getattr(cache, "store_deferred", None)
            stored = store(e164, identity) if store is not None else await_cache(cache, cache.store(e164, identity))
            stored.addErrback(lambda f: log.debug("summary cache store failed: %s", f.getErrorMessage()))
        return identity, count

    def _fallback_cache(self, uniqueid: str, notes: list[str], exc: BaseException) -> None:
        FALLBACKS.inc(reason="cache_error")
        log.warning("routing uniqueid=%s: summary cache unavailable (%s); asking SQL", _clean(uniqueid),
                    _clean(exc, 300))
        notes.append("summary cache unavailable: looked up in SQL")

    # -- callback requests ---------------------------------------------------------------------------------------
    async def callback(self, session: AGISession) -> None:
        """``AGI(agi://…/callback,${CC_DECISION_ID},${CC_DID})``: open (or reuse) a callback ticket for the
        caller's number, due after the line next opens, and answer ``CC_CALLBACK_TICKET``: the ticket id; or,
        when SQL has not confirmed it within the deadline, its reference (``callback:<e164>:<due day>``, the
        ticket's de-duplication key) while the write goes on (see ``callback.PromiseKeeper``); or empty when no
        callback can be promised: withheld number, our own DID, SQL refused the ticket within the deadline."""
        started = self._clock.seconds()
        args = session.args
        decision_id = sanitize_value(args[0]) if args and args[0] else ""
        extension = args[1].strip() if len(args) > 1 and args[1].strip() else session.extension
        data = self._data()
        did = data.did(extension) or self._unknown_did(extension)
        caller = normalize(session.callerid, region=self.settings.default_region, local_area_code=did.area_code)
        uniqueid = session.uniqueid
        ticket = ""
        if caller.ok and caller.e164 is not None and not data.is_own_number(caller) and self._callback_tickets:
            budget = self.settings.deadline_seconds - self.settings.margin_seconds
            customer, _ = await self._identify(caller.e164, did, True, budget, uniqueid, [])
            now = datetime.fromtimestamp(self._wall(), UTC)
            store_id = int(did.store_id) if did.store_id.isdigit() else None
            # A store DID: that store's calendar; a group-wide DID: whichever store opens first.
            if store_id is None:
                calendars = list(data.calendars.values())
            else:
                calendars = [c] if (c := data.calendars.get(store_id)) else []
            due = callback_due(calendars, did.line, now)
            customer_id = int(customer.id) if customer is not None and customer.id.isdigit() else None
            key = callback_key(caller.e164, due, self.settings.time_zone)
            write = functools.partial(self._callback_tickets, e164=caller.e164, customer_id=customer_id,
                                      store_id=store_id, line=did.line, decision_id=decision_id, uniqueid=uniqueid,
                                      due_at=due, now=now, dedupe_key=key)
            ticket = await self._open_ticket(write, key, started + budget, uniqueid, decision_id, due)
        else:
            log.info("callback request uniqueid=%s: no number to call back (%s)", _clean(uniqueid), caller.status)
        await session.set_variables({"CC_CALLBACK_TICKET": ticket})

    async def _open_ticket(self, write: Callable[[], tuple[int, bool]], key: str, deadline: float, uniqueid: str,
                           decision_id: str, due: datetime) -> str:
        """What to answer for a callback request: the ticket id when SQL confirms it by ``deadline`` (service
        clock); the key when SQL is still writing then (the promise is kept: ``PromiseKeeper``); "" when every
        attempt failed in time (nothing written, nothing promised). A failed attempt is retried while time is
        left — safe, as the key makes a repeated insert return the same ticket."""
        context = f"uniqueid={_clean(uniqueid)} decision={decision_id or '-'} due={due.date().isoformat()}"
        attempts = 0
        while True:
            attempts += 1
            raced, later = _tee(self._run_blocking(write))
            outcome = (await self._race(raced, max(deadline - self._clock.seconds(), 0.05)))[0]
            if outcome is _TIMED_OUT:
                CALLBACK_TICKETS.inc(outcome="pending")
                log.warning("callback %s: ticket not confirmed within the deadline; callback promised, the write "
                            "goes on", context)
                self._promises.keep(later, write, context=context)
                return key
            later.addErrback(lambda _failure: None)  # the race saw it
            if not isinstance(outcome, Failure):
                ticket_id, created = outcome
                log.info("callback %s: ticket %s (%s)", context, ticket_id, "new" if created else "already open")
                return str(ticket_id)
            if attempts >= CALLBACK_ATTEMPTS or deadline - self._clock.seconds() <= 0:
                FALLBACKS.inc(reason="callback_error")
                CALLBACK_TICKETS.inc(outcome="refused")
                log.error("callback %s NOT recorded, no callback promised: %s", context, outcome.getErrorMessage())
                return ""
            log.warning("callback %s: ticket write failed (%s); trying again", context, outcome.getErrorMessage())

    # -- survey --------------------------------------------------------------------------------------------------
    async def survey(self, session: AGISession) -> None:
        """Post-call survey: one digit 1–5 (one retry), stored write-behind, thanks, hang up.

        ``AGI(agi://…/survey,${CC_DECISION_ID})``; a caller who hangs up simply ends it (nothing stored)."""
        s = self.settings
        args = session.args
        decision_id = sanitize_value(args[0]) if args and args[0] else ""
        score: int | None = None
        for attempt in range(1 + s.survey_retries):
            result = await session.get_data(s.survey_prompt, s.survey_timeout_ms, 1)
            digits = result.digits
            if len(digits) == 1 and digits in "12345":
                score = int(digits)
                break
            if attempt < s.survey_retries:
                await session.stream_file(s.survey_invalid_prompt)
        if score is not None:
            self._submit(survey_record(decision_id=decision_id, uniqueid=session.uniqueid,
                                       server=self._server(session), score=score, at=self._wall()))
            log.info("survey uniqueid=%s decision=%s score=%d", _clean(session.uniqueid), decision_id, score)
            await session.stream_file(s.survey_thanks_prompt)
        await session.hangup()

