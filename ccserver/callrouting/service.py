"""The routing service: the FastAGI ``incoming`` handler (and the post-call ``survey``).

Per call, in order::

    caller ID ─ normalise (a local landline takes the DID's store area code)
    ${EXTEN}  ─ DID from the in-memory table (unknown DID → the configured hotline/default route)
    arg 1     ─ ${CC_CAMPAIGN_ID}: a campaign leg, like a caller ID that is one of our own DIDs, never
                creates a prospect (agi-06: an answered campaign leg re-enters the inbound context)
    identity  ─ the identification service: Redis summary cache (hit) or SQL (miss; then cached), within
                the deadline
    calendar, live view (in memory) → decide() → ONE ``EXEC MSet`` with Decision.to_dialplan()
    log line + write-behind record (routing_decisions) — never on the call's path

**Deadline.** The variables go out within ``deadline_seconds`` (1.5 s) of the session start whatever SQL and
Redis do. Identification (``ccserver.identification.IdentificationService``: cache, then SQL, raced against the
deadline, lookup slots; its own docstring tells the details) is the only step that waits on I/O. When it gives up,
or the lookup fails, the call is routed **without customer data by the full rules** (business hours, overflow,
live queues, callback offers still apply: they are all in memory) — not by the bare ``default_decision`` — so a
slow CRM costs the caller their tier, never their route. ``default_decision(did)`` is used only when the decision
itself fails (a bug or corrupt data). Each fallback logs a warning and counts
``ccserver_routing_fallbacks_total{reason}`` (``timeout``, ``directory_error``, ``directory_busy``,
``cache_error``, ``decision_error``, ``unknown_queue``); the decision record says ``fallback``.

**Decision ids** are 16 characters of lowercase base32 (``[a-z2-7]``, safe in dialplan, MSet and CDRs):
48 bits of epoch milliseconds, a 16-bit per-process counter and 16 random bits chosen at start-up —
time-ordered, unique across restarts and nodes in practice.

**Preferred agent.** ``decide()`` offers the customer's own consultant/advisor only when the live view shows
them signed in to their personal queue and free there, as ``CC_AGENT_QUEUE`` = that queue (``agent-8001``, the
agent its only dynamic member): the shipped dialplan queues the call there first, so app_queue emits the same
events as for any queue call (screen pop, wallboard), then falls through to ``CC_QUEUE``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ccserver.agi.session import AGISession
from ccserver.callrouting.callback import CALLBACK_TICKETS, PromiseKeeper, callback_due, callback_key
from ccserver.callrouting.directory_data import RoutingData, RoutingDataRefresher
from ccserver.callrouting.live import agent_of_interest, live_view, queues_of_interest
from ccserver.callrouting.records import decision_record, survey_record
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.cache import SummaryCache
from ccserver.identification import FALLBACKS, TIMED_OUT, Directory, IdentificationService, await_cache, race
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
LATENCY = REGISTRY.histogram(
    "ccserver_routing_decision_seconds",
    "Session start to routing decision (identification, calendar, live view, decide), before the MSet",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0),
)


# -- decision ids ----------------------------------------------------------------------------------------------
_SALT = secrets.randbits(16)
_COUNTER = itertools.count(secrets.randbits(16))


# Lowercase base32 (RFC 4648's alphabet) of every 10-bit value, two characters each: the 80 bits of an id are 8
# look-ups — what base64.b32encode of its 10 bytes, lowercased, gives, in a fraction of the time.
_B32: Final = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS: Final = tuple(high + low for high in _B32 for low in _B32)


def new_decision_id(now: float) -> str:
    """16 chars of lowercase base32: epoch ms (48 bits), counter (16), per-process salt (16)."""
    value = ((int(now * 1000) & 0xFFFF_FFFF_FFFF) << 32) | ((next(_COUNTER) & 0xFFFF) << 16) | _SALT
    p = _B32_PAIRS
    return (p[value >> 70] + p[(value >> 60) & 1023] + p[(value >> 50) & 1023] + p[(value >> 40) & 1023]
            + p[(value >> 30) & 1023] + p[(value >> 20) & 1023] + p[(value >> 10) & 1023] + p[value & 1023])


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


# A caller's arrival time older than this is not believed (a stale or forged CC_ARRIVED): the request's own time.
ARRIVAL_WINDOW_SECONDS = 6 * 3600


def _arrival(text: str, now: float) -> datetime | None:
    """``${CC_ARRIVED}`` (epoch seconds) as an aware datetime, when it is plausible: digits, not in the future,
    at most ``ARRIVAL_WINDOW_SECONDS`` ago."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        return None
    when = int(text)
    if not now - ARRIVAL_WINDOW_SECONDS <= when <= now:
        return None
    return datetime.fromtimestamp(when, UTC)


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
                 callback_store: Callable[[int | None, int | None], int | None] | None = None,
                 loop_lookup: LoopLookup | None = None,
                 identification: IdentificationService | None = None) -> None:
        if isinstance(routing_data, RoutingData):
            fixed = routing_data
            self._data: Callable[[], RoutingData] = lambda: fixed
        else:
            refresher = routing_data
            self._data = lambda: refresher.current
        self.identification = identification or IdentificationService(
            directory, cache, region=settings.default_region, run_blocking=run_blocking, clock=clock,
            max_pending_lookups=settings.max_pending_lookups, max_waiting_lookups=settings.max_waiting_lookups,
            wall=wall, loop_lookup=loop_lookup)
        self._tracker = tracker
        self.rules = rules
        self.settings = settings
        self._run_blocking = run_blocking
        self._clock = clock
        self._record_sink = record_sink
        self._wall = wall
        self._callback_tickets = callback_tickets  # blocking: open_callback_ticket bound to a session factory
        # blocking: tickets.store.callback_store bound to a session factory (None: the DID's store)
        self._callback_store = callback_store
        self._promises = PromiseKeeper(run_blocking, clock)  # callbacks promised before their ticket was written
        self._interest: dict[tuple[str, str], frozenset[str]] = {}
        # Which calls the dialplan records (ccserver.recordings.RecordingPolicy; None: none): CC_RECORD and the file.
        self.recording_policy: Any = None
        # hook(server, queue, at) for every callback request, e.g. the KPIs' count; called, never awaited.
        self.on_callback: list[Callable[[str, str, float], Any]] = []
        # Each decision record as it is queued for the log (the screen pop's IVR paths: decision_memo.py).
        self.on_decision: list[Callable[[dict[str, Any]], None]] = []

    def replace_rules(self, rules: RoutingRules) -> None:
        """An admin changed the routing rules (ccserver/admin/rules.py): the next call uses them."""
        self.rules = rules
        self._interest.clear()

    def handlers(self) -> dict[str, Callable[[AGISession], Coroutine[Any, Any, None]]]:
        """FastAGI routes: ``{"incoming": ..., "survey": ..., "callback": ...}`` for ``FastAGIFactory``."""
        return {"incoming": self.incoming, "survey": self.survey, "callback": self.callback}

    # -- incoming ----------------------------------------------------------------------------------------------
    async def incoming(self, session: AGISession) -> None:
        started = self._clock.seconds()
        perf0 = time.perf_counter()
        decision_id = new_decision_id(self._wall())
        notes: list[str] = []
        did = self.did_for(session.extension, notes)
        caller, customer, fallback = await self.who_is_calling(session, did, started, notes)
        await self.answer(session, decision_id, session.callerid, caller, did, customer, fallback, notes, perf0)

    def did_for(self, extension: str, notes: list[str]) -> DidRoute:
        """The dialled number's route; an unknown DID takes ``callrouting.unknown_did_*`` (said in ``notes``)."""
        did = self._data().did(extension)
        if did is None:
            did = self._unknown_did(extension)
            notes.append(f"unknown DID {sanitize_value(extension) or '(none)'}: {did.line} route")
        return did

    @property
    def data(self) -> RoutingData:
        """The routing data in use now (DIDs, calendars)."""
        return self._data()

    async def who_is_calling(self, session: AGISession, did: DidRoute, started: float,
                             notes: list[str]) -> tuple[Any, CustomerSummary | None, str | None]:
        """(normalised caller, customer or None, fallback reason or None) within the deadline counted from
        ``started`` (service clock). A campaign leg (``${CC_CAMPAIGN_ID}``, the script's first argument) or a
        caller ID that is one of our DIDs never creates a prospect."""
        settings = self.settings
        args = session.args
        campaign = sanitize_value(args[0].strip()) if args and args[0].strip() else ""
        caller = normalize(session.callerid, region=settings.default_region, local_area_code=did.area_code)
        customer: CustomerSummary | None = None
        fallback: str | None = None
        if caller.ok and caller.e164 is not None:
            if self._data().is_own_number(caller):
                notes.append("caller ID is one of our DIDs (campaign leg): not identified, no prospect")
            else:
                if campaign:
                    notes.append(f"campaign {campaign} leg: no prospect created")
                remaining = settings.deadline_seconds - settings.margin_seconds - (self._clock.seconds() - started)
                customer, fallback = await self.identification.identify(caller.e164, did, not campaign, remaining,
                                                                        session.uniqueid, notes)
        return caller, customer, fallback

    async def answer(self, session: AGISession, decision_id: str, raw: str, caller: Any, did: DidRoute,
                     customer: CustomerSummary | None, fallback: str | None, notes: list[str], perf0: float, *,
                     server: str | None = None, bonus: int = 0, bonus_reason: str = "",
                     extra: dict[str, str] | None = None) -> Decision:
        """Decide for a caller already identified and answer the dialplan in one MSet: the tail of ``incoming``,
        and how the IVR hands a call over once it knows the line (``did`` with the IVR's line), the ``bonus``
        priority and ``extra`` variables (``CC_TICKET_ID``…) to set with the contract's. ``perf0``: when this
        decision began (``time.perf_counter()``), for the latency metric. Returns the decision."""
        uniqueid = session.uniqueid
        extension = session.extension
        server = server or self._server(session)
        decision = self._decide(decision_id, caller, uniqueid, extension, did, customer, server, notes, bonus,
                                bonus_reason)
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
        if extra:
            variables.update(extra)
        if self.recording_policy is not None:
            variables.update(self.recording_policy.variables(decision.queue or None, did.line,
                                                             decision.decision_id, self._wall()))
        latency = time.perf_counter() - perf0
        # Answer first: the caller waits on the variables, not on the bookkeeping (done even if they hung up).
        try:
            await session.set_variables(variables)
        finally:
            self._account(decision, variables, latency, fallback, raw, caller, did, extension, server, uniqueid)
        return decision

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
        record = decision_record(decision, variables, made_at=self._wall(), server=server, uniqueid=uniqueid,
                                 caller_raw=raw, caller_e164=caller.e164, dialed=extension,
                                 fallback=fallback is not None, latency_ms=latency * 1000)
        self._submit(record)
        for hook in self.on_decision:
            try:
                hook(record)
            except Exception:  # noqa: BLE001 - bookkeeping never fails a call
                log.exception("decision hook failed (decision %s)", decision.decision_id)

    def _decide(self, decision_id: str, caller: Any, uniqueid: str, extension: str, did: DidRoute,
                customer: CustomerSummary | None, server: str, notes: list[str], bonus: int = 0,
                bonus_reason: str = "") -> Decision | None:
        rules = self.rules
        try:
            now = self._wall()
            open_now = self._data().is_open(did, datetime.fromtimestamp(now, UTC))
            agent = agent_of_interest(did, customer, rules)
            live = live_view(self._tracker, server, now, self._queues_for(did), agent)
            return decide(CallFacts(decision_id, caller, now, uniqueid, extension, bonus, bonus_reason), customer, did,
                          open_now, live, rules)
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

    # -- callback requests ---------------------------------------------------------------------------------------
    async def callback(self, session: AGISession) -> None:
        """``AGI(agi://…/callback,${CC_DECISION_ID},${CC_DID},${CC_ARRIVED},${CC_LINE},${CC_QUEUE})``: open (or reuse) a
        callback ticket for the caller's number — at their home store when they are a customer with one, else the
        DID's store — due after that store's line next opens, and answer ``CC_CALLBACK_TICKET``:
        the ticket id; or, when SQL has not confirmed it within the deadline, its reference
        (``callback:<e164>:<due day>``, the ticket's de-duplication key) while the write goes on (see
        ``callback.PromiseKeeper``); or empty when no callback can be promised: withheld number, our own DID, SQL
        refused the ticket within the deadline.

        ``CC_ARRIVED`` (optional): the epoch second the caller arrived (the dialplan's ``${EPOCH}`` on entry). A
        caller who leaves a queue for a callback keeps their place: the ticket is created as of that moment and
        due counted from it. ``CC_LINE`` (optional): the line the IVR chose on a group DID (its calendar and
        department), else the DID's own. ``CC_QUEUE`` (optional): the queue the caller left, counted by the
        KPIs' callback figures."""
        started = self._clock.seconds()
        args = session.args
        decision_id = sanitize_value(args[0]) if args and args[0] else ""
        extension = args[1].strip() if len(args) > 1 and args[1].strip() else session.extension
        data = self._data()
        did = data.did(extension) or self._unknown_did(extension)
        if len(args) > 3 and args[3].strip() and sanitize_value(args[3].strip()) != did.line:
            did = dataclasses.replace(did, line=sanitize_value(args[3].strip()))
        arrived = _arrival(args[2] if len(args) > 2 else "", self._wall())
        caller = normalize(session.callerid, region=self.settings.default_region, local_area_code=did.area_code)
        uniqueid = session.uniqueid
        self._count_callback(session, args, did)
        ticket = ""
        if caller.ok and caller.e164 is not None and not data.is_own_number(caller) and self._callback_tickets:
            budget = self.settings.deadline_seconds - self.settings.margin_seconds
            customer, _ = await self.identification.identify(caller.e164, did, True, budget, uniqueid, [])
            customer_id = int(customer.id) if customer is not None and customer.id.isdigit() else None
            called = int(did.store_id) if did.store_id.isdigit() else None
            store_id = await self._store_of_callback(customer_id, called, started + budget, uniqueid)
            now = datetime.fromtimestamp(self._wall(), UTC)
            asked = arrived or now  # when the caller began waiting: their place among the callbacks
            # The ticket's store's calendar; a group-wide DID and a caller without a home store: whichever store
            # opens first.
            if store_id is None:
                calendars = list(data.calendars.values())
            else:
                calendars = [c] if (c := data.calendars.get(store_id)) else []
            due = callback_due(calendars, did.line, asked)
            key = callback_key(caller.e164, due, self.settings.time_zone)
            write = functools.partial(self._callback_tickets, e164=caller.e164, customer_id=customer_id,
                                      store_id=store_id, line=did.line, decision_id=decision_id, uniqueid=uniqueid,
                                      due_at=due, now=asked, dedupe_key=key)
            ticket = await self._open_ticket(write, key, started + budget, uniqueid, decision_id, due)
        else:
            log.info("callback request uniqueid=%s: no number to call back (%s)", _clean(uniqueid), caller.status)
        await session.set_variables({"CC_CALLBACK_TICKET": ticket})

    async def _store_of_callback(self, customer_id: int | None, called: int | None, deadline: float,
                                 uniqueid: str) -> int | None:
        """The callback ticket's store (``tickets.store.callback_store``): the caller's home store when they are a
        customer with one, else ``called`` (the DID's) — also when SQL does not answer by ``deadline`` (service
        clock): the ticket is still written, and the caller promised their call back."""
        if customer_id is None or self._callback_store is None:
            return called
        lookup = self._run_blocking(self._callback_store, customer_id, called)
        outcome = (await race(lookup, max(deadline - self._clock.seconds(), 0.05), self._clock))[0]
        if outcome is TIMED_OUT or isinstance(outcome, Failure):
            why = outcome.getErrorMessage() if isinstance(outcome, Failure) else "no answer in time"
            log.warning("callback request uniqueid=%s: home store not known (%s); the called number's store",
                        _clean(uniqueid), _clean(why, 200))
            return called
        return outcome  # type: ignore[no-any-return]

    def _count_callback(self, session: AGISession, args: list[str], did: DidRoute) -> None:
        """Tell the hooks which queue the request was for: the dialplan's CC_QUEUE (fifth argument), else the queue
        the caller waited in, else the DID's default queue."""
        if not self.on_callback:
            return
        server = self._server(session)
        queue = sanitize_value(args[4].strip()) if len(args) > 4 and args[4].strip() else ""
        if not queue and self._tracker is not None:
            call = self._tracker.call(session.uniqueid, server)
            queue = call.queue if call is not None and call.queue else ""
        queue = queue or did.default_queue or ""
        for hook in self.on_callback:
            try:
                hook(server, queue, self._wall())
            except Exception:  # noqa: BLE001 - counting never fails a call
                log.exception("callback hook failed (uniqueid=%s)", _clean(session.uniqueid))

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
            outcome = (await race(raced, max(deadline - self._clock.seconds(), 0.05), self._clock))[0]
            if outcome is TIMED_OUT:
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

