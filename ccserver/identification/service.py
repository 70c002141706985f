"""Caller identification as a service: a raw caller ID (and the DID it dialled) → the customer, within a deadline.

Every feature that must know who one number is calls this one service — routing (the FastAGI ``incoming`` script),
callback requests, the IVR, screen pop, the desktop's search, ``/api/customers/lookup`` — instead of copying the
lookup. A campaign's CSV import links thousands of numbers at once through :meth:`IdentificationService.find_many`
(the directory's rule, a query per few hundred numbers); the dialer's targets carry their customer from there.

    normalise (phonenumbers; a local landline takes the DID's store area code)
    → the number → customer cache (Redis, shared by every node; in-process without Redis)
    → on a miss, SQL: read on the loop (PostgreSQL) or by the directory in the thread pool, which also creates a
      prospect for an unknown number when asked (never for a campaign leg or one of our own DIDs)
    → the answer cached for the next call.

**Deadline.** :meth:`IdentificationService.identify` answers within ``budget`` seconds whatever SQL and Redis do.
A cache that bounds its own wait within the budget (``max_wait``: the in-process cache, or Redis through the
call-path client and its timeout) is awaited directly; the SQL lookup after a miss is raced against a timer on the
service's clock. When the timer wins or the lookup fails, the answer is "unidentified" with the reason
(``timeout``, ``directory_error``, ``directory_busy``, ``cache_error``), each counted in
``ccserver_routing_fallbacks_total{reason}`` and logged. A lookup that loses the race is not cancelled: it finishes
and warms the cache for the caller's next call.

**Lookup slots.** At most ``max_pending_lookups`` SQL lookups run at once, so a hung database cannot eat the thread
pool or the connections. A call that finds them all busy waits for one in a FIFO (``lookup_slots.LookupSlots``, at
most ``max_waiting_lookups`` waiting) within its deadline: a burst of new callers is identified, not turned away.
``directory_busy`` counts the calls that never got a slot; ``timeout`` the lookups that started and did not answer
in time. A Redis failure alone is not a lost customer: the lookup goes straight to SQL (``cache_error``); nor is a
loop lookup that fails (no connection free in time, a broken one): the directory answers in a worker thread, within
the same deadline.

**Without a call.** :meth:`find` answers screen pop, the desktop's search and ``/api/customers/lookup``: the same
path, but the cache is only read (``peek``: no call counted) and no prospect made. ``ccserver run`` gives those
features a service of their own over the same cache and directory, with two loop-lookup connections of its own, so
a burst of pops never queues in front of a routed call's lookup; its give-ups are counted with routing's.

Awaitables: this service runs inside FastAGI handlers (driven by ``ccserver.agi.request.HandlerRunner``) on the
routed call's hot path, where the call-path Redis client answers with Deferreds resumed without a loop turn;
from an asyncio task, ``await service.identify_async(...)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from ccserver.bridge import as_deferred, drive, settle, wait
from ccserver.customers.cache import SummaryCache, with_calls
from ccserver.customers.directory import Identity
from ccserver.identification.lookup_slots import DirectoryBusy, LookupSlots
from ccserver.logs import log_text
from ccserver.metrics import REGISTRY
from routing.decision import CustomerSummary, DidRoute
from routing.numbers import CallerNumber, normalize

if TYPE_CHECKING:
    from ccserver.customers.loop_lookup import LoopLookup

__all__ = ["FALLBACKS", "TIMED_OUT", "Directory", "Identified", "IdentificationService", "await_cache", "race"]

log = logging.getLogger("ccserver.routing")

FALLBACKS = REGISTRY.counter(
    "ccserver_routing_fallbacks_total",
    "Routing without (part of) the customer data: timeout, directory_error, directory_busy, cache_error, "
    "decision_error",
)

TIMED_OUT = object()


class Directory(Protocol):
    """What identification needs of ``ccserver.customers.directory.CustomerDirectory`` (fakes in tests)."""

    def identify(self, e164: str, *, store_id: int | None, line: str | None,
                 create_prospect: bool) -> Identity: ...  # blocking: run in a worker thread

    def identities(self, numbers: Sequence[str], *,
                   company_contacts: bool = True) -> dict[str, Identity]: ...  # blocking: many numbers at once


def await_cache(cache: SummaryCache, coro: Any) -> Deferred[Any]:
    """A Deferred for one cache coroutine: driven inline (``cache.inline``: it never waits on asyncio, or it
    waits on Deferreds only), else as an asyncio task on the reactor's loop (redis.asyncio)."""
    if getattr(cache, "inline", False):
        return drive(coro)
    return as_deferred(coro)


def race(lookup: Deferred[Any], timeout: float, clock: Any) -> Deferred[Any]:
    """Fires with a 1-tuple: the lookup's result, its Failure (as a value, not an error), or ``TIMED_OUT`` —
    whichever comes first on ``clock`` (the reactor, or a task.Clock). The lookup itself is not cancelled (a late
    customer lookup warms the cache when it completes).

    On Twisted's asyncio reactor the timer is the loop's own (``call_later``): the reactor's ``callLater`` costs
    about three times as much (its heap, and a reschedule of its one loop timer whenever the new call is the
    earliest — every cache miss's deadline — whose cancelled call still wakes the loop when it falls due)."""
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
        timer.cancel()
        if race.called:
            if isinstance(result, Failure):
                log.debug("late lookup failed: %s", result.getErrorMessage())
            return
        fire(result)

    lookup.addBoth(done)
    if early:
        return succeed((early[0],))
    loop = _running_loop(clock) if isinstance(clock, AsyncioSelectorReactor) else None
    if loop is not None:
        timer = loop.call_later(timeout, fire, TIMED_OUT)  # its cancel(): a no-op once it has run
    else:
        timer = _Timer(clock.callLater(timeout, fire, TIMED_OUT))
    return race


def _running_loop(reactor: AsyncioSelectorReactor) -> asyncio.AbstractEventLoop | None:
    """The reactor's asyncio loop while it runs, else None (not running yet: the reactor's own callLater).
    Not ``asyncio.get_running_loop()``: on Python 3.11 that is a ``getpid()`` system call each time (its check
    against a fork), one per cache miss."""
    loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
    return loop if loop.is_running() else None


class _Timer:
    """A reactor or task.Clock call whose ``cancel()`` is a no-op once it has run (as an asyncio handle's)."""

    __slots__ = ("_call",)

    def __init__(self, call: Any) -> None:
        self._call = call

    def cancel(self) -> None:
        if self._call.active():
            self._call.cancel()


def _settled(identity: Identity | None, create_prospect: bool) -> bool:
    """Whether a cached answer is final: a customer, or "unknown" when no prospect is to be made (an "unknown"
    cached by a lookup that made none — a campaign leg, the desktop's search — must not stop a caller's prospect)."""
    return identity is not None and (identity.customer is not None or not create_prospect)


def _clean(text: object, limit: int = 64) -> str:
    return log_text(text, limit)


@dataclass
class Identified:
    """Who called: the normalised ``caller``; the ``customer`` (None: unknown, withheld, or not found in time);
    ``fallback`` the reason the lookup gave up (None when it did not); ``notes`` what happened, in words."""

    caller: CallerNumber
    customer: CustomerSummary | None = None
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)
    others: tuple[int, ...] = ()  # the other customers on a shared number, most recently active first


class IdentificationService:
    """See the module docstring. ``directory`` / ``cache`` may be None (no SQL, no cache). ``run_blocking(fn, *a,
    **kw)`` → a Deferred or an asyncio future (the thread pool). ``clock``: the reactor or a ``task.Clock``.
    ``wall``: epoch time (the 24-hour call counter)."""

    def __init__(self, directory: Directory | None, cache: SummaryCache | None, *, region: str,
                 run_blocking: Callable[..., Any], clock: Any, max_pending_lookups: int = 8,
                 max_waiting_lookups: int = 256, wall: Callable[[], float] = time.time,
                 loop_lookup: LoopLookup | None = None) -> None:
        self._directory = directory
        self._cache = cache
        self.region = region
        self._run_blocking = run_blocking
        self._clock = clock
        self._wall = wall
        self._loop_lookup = loop_lookup  # PostgreSQL: cache misses read on the loop
        self._slots = LookupSlots(max_pending_lookups, max_waiting_lookups)

    async def aclose(self) -> None:
        """Close the loop lookup's connections (for a service that owns its lookup; routing's closes its own)."""
        if self._loop_lookup is not None:
            await self._loop_lookup.aclose()

    def normalize(self, raw: str, did: DidRoute | None = None) -> CallerNumber:
        """The caller ID as a number: E.164, kind, or why not (withheld, garbage)."""
        return normalize(raw, region=self.region, local_area_code=did.area_code if did is not None else None)

    async def identify(self, e164: str, did: DidRoute, create_prospect: bool, budget: float, context: str,
                       notes: list[str]) -> tuple[CustomerSummary | None, str | None]:
        """The customer behind ``e164`` (already normalised), within ``budget`` seconds: (customer or None,
        fallback reason or None). ``context`` names the call in log lines (its uniqueid); ``notes`` gets what
        happened, for the decision's reasons."""
        identity, fallback = await self._identify(e164, did, create_prospect, budget, context, notes)
        return (identity.customer if identity is not None else None), fallback

    async def identify_async(self, raw: str, did: DidRoute | None = None, *, create_prospect: bool = False,
                             budget: float = 1.4, context: str = "-") -> Identified:
        """From an asyncio task, for a caller on the line (the call counts in the number's 24-hour calls):
        normalise ``raw`` and identify it."""
        return await self._identified_number(raw, did, create_prospect, budget, context, counted=True)

    async def find(self, raw: str, did: DidRoute | None = None, *, budget: float = 1.0,
                   context: str = "-") -> Identified:
        """Who a number is, for the features that look a caller up without routing a call — screen pop, the
        desktop's search, ``/api/customers/lookup``: the same normalising, cache, SQL and deadline, but no call
        is counted and no prospect made. A number shared by several customers names the others in ``others``."""
        return await self._identified_number(raw, did, False, budget, context, counted=False)

    async def find_many(self, numbers: Sequence[str], *, company_contacts: bool = True) -> dict[str, Identity]:
        """Who each of many numbers (already E.164) is, for a bulk job — a campaign's targets: the directory's
        rule, as for a call (a shared number goes to its most recently active customer), in one worker thread
        and one query per few hundred numbers. No cache, no call counted, no prospect, no deadline: nobody is on
        the line. Numbers nobody has are left out. ``company_contacts=False``: a company contact's number is
        nobody's (see ``CustomerDirectory.identities``)."""
        if self._directory is None or not numbers:
            return {}
        found = await settle(self._run_blocking(self._directory.identities, list(numbers),
                                                company_contacts=company_contacts))
        return dict(found)

    async def _identified_number(self, raw: str, did: DidRoute | None, create_prospect: bool, budget: float,
                                 context: str, *, counted: bool) -> Identified:
        caller = self.normalize(raw, did)
        found = Identified(caller)
        if caller.ok and caller.e164 is not None:
            route = did or DidRoute(did="", store_id="", line="", default_queue="")
            identity, found.fallback = await _as_future(
                self._identify(caller.e164, route, create_prospect, budget, context, found.notes, counted=counted))
            if identity is not None:
                found.customer = identity.customer
                found.others = identity.other_customer_ids
        return found

    async def _identify(self, e164: str, did: DidRoute, create_prospect: bool, remaining: float, uniqueid: str,
                        notes: list[str], counted: bool = True) -> tuple[Identity | None, str | None]:
        if self._directory is None and self._cache is None:
            return None, None
        if remaining <= 0:
            return None, self._fallback("timeout", uniqueid, notes, "no time left before the deadline")
        cache = self._cache
        queued: list[Deferred[None]] = []  # this call's place in the lookup queue while it waits for a slot
        bound = getattr(cache, "max_wait", None)
        if counted and cache is not None and bound is not None and bound < remaining:
            # The cache bounds its own wait well inside the budget (its client's timeout): awaited directly — a
            # hit, most calls, needs no timer and no extra Deferred. Only the SQL lookup is raced.
            started = self._clock.seconds()
            identity, count, cache_ok = await self._from_cache(cache, e164, uniqueid, notes)
            if _settled(identity, create_prospect) or self._directory is None:
                return self._identified(identity, count, notes), None
            remaining -= self._clock.seconds() - started
            if remaining <= 0:
                return None, self._fallback("timeout", uniqueid, notes, "no time left after the cache")
            pending = self._directory_deferred(e164, did, create_prospect, cache if cache_ok else None, count,
                                               queued)
        else:
            pending = drive(self._lookup(e164, did, create_prospect, uniqueid, notes, queued, counted))
        outcome = (await race(pending, remaining, self._clock))[0]
        if outcome is TIMED_OUT:
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
    def _identified(identity: Identity | None, count: int | None, notes: list[str]) -> Identity | None:
        if identity is not None and count is not None:
            identity = with_calls(identity, count)  # the counter includes this call; routing wants earlier ones
        if identity is not None and identity.created_prospect:
            notes.append("new prospect recorded for this number")
        return identity

    def _fallback(self, reason: str, uniqueid: str, notes: list[str], detail: str) -> str:
        FALLBACKS.inc(reason=reason)
        log.warning("routing uniqueid=%s without customer data (%s): %s", _clean(uniqueid), reason,
                    _clean(detail, 300))
        notes.append(f"customer lookup {reason}: routed as unidentified")
        return reason

    async def _lookup(self, e164: str, did: DidRoute, create_prospect: bool, uniqueid: str, notes: list[str],
                      queued: list[Deferred[None]], counted: bool = True) -> tuple[Identity | None, int | None]:
        """Cache, then (on a miss) SQL: the whole lookup, when it is raced as one against the deadline."""
        cache = self._cache
        if cache is None:
            return await self._from_directory(e164, did, create_prospect, None, None, queued)
        identity, count, cache_ok = await self._from_cache(cache, e164, uniqueid, notes, counted)
        if _settled(identity, create_prospect) or self._directory is None:
            return identity, count
        return await self._from_directory(e164, did, create_prospect, cache if cache_ok else None, count, queued)

    async def _from_cache(self, cache: SummaryCache, e164: str, uniqueid: str, notes: list[str],
                          counted: bool = True) -> tuple[Identity | None, int | None, bool]:
        """(identity or None, 24-hour call count, whether the cache answered). Redis down is not a lost customer:
        the caller goes on to SQL. ``counted`` False: a look-up without a call (``peek``; no count)."""
        try:
            if not counted:
                return await await_cache(cache, cache.peek(e164)), None, True
            fast = getattr(cache, "lookup_deferred", None)  # Redis: a Deferred, no asyncio hop
            if fast is not None:
                identity, count = await fast(e164, self._wall())
            else:
                identity, count = await await_cache(cache, cache.lookup(e164, self._wall()))
            return identity, count, True
        except Exception as exc:  # noqa: BLE001 - Redis down: go to SQL
            self._fallback_cache(uniqueid, notes, exc)
            return None, None, False

    def _directory_deferred(self, e164: str, did: DidRoute, create_prospect: bool, cache: SummaryCache | None,
                            count: int | None, queued: list[Deferred[None]]) -> Deferred[Any]:
        """``_from_directory`` as a Deferred. The usual cache miss — a loop lookup (PostgreSQL) and a lookup slot
        free — is chained on the lookup's own Deferred, without a coroutine and its runner; anything else (a
        slot to wait for, no loop lookup, a prospect to create) is ``_from_directory`` driven as before."""
        lookup = self._loop_lookup
        if lookup is None or self._directory is None or not self._slots.take_now():
            return drive(self._from_directory(e164, did, create_prospect, cache, count, queued))
        def in_thread() -> Deferred[Any]:
            """The directory in a worker thread, in the lookup slot already taken."""
            return drive(self._in_thread(e164, did, create_prospect, cache, count))

        try:
            found = lookup.identify_deferred(e164)
        except Exception as exc:  # noqa: BLE001 - busy or broken: the worker-thread path
            _loop_lookup_failed(exc)
            return in_thread()

        def identified(identity: Identity | None) -> Any:
            if identity is None or (identity.customer is None and create_prospect):
                return in_thread()  # unknown: the directory creates the prospect (a transaction, in a thread)
            self._slots.give_back()
            if cache is not None:
                self._store(cache, e164, identity)
            return identity, count

        def failed(failure: Failure) -> Any:
            _loop_lookup_failed(failure.value)
            return in_thread()

        return found.addCallbacks(identified, failed)

    async def _in_thread(self, e164: str, did: DidRoute, create_prospect: bool, cache: SummaryCache | None,
                         count: int | None) -> tuple[Identity | None, int | None]:
        """The directory's identify in a worker thread, in a lookup slot already taken (given back here)."""
        try:
            assert self._directory is not None
            store_id = int(did.store_id) if did.store_id.isdigit() else None
            identity = await self._run_blocking(self._directory.identify, e164, store_id=store_id, line=did.line,
                                                create_prospect=create_prospect)
        finally:
            self._slots.give_back()
        if cache is not None and identity is not None:
            self._store(cache, e164, identity)
        return identity, count

    @staticmethod
    def _store(cache: SummaryCache, e164: str, identity: Identity) -> None:
        """Cache a SQL answer, fire and forget. Redis: a Deferred through the call-path client, no asyncio hop."""
        store = getattr(cache, "store_deferred", None)
        stored = store(e164, identity) if store is not None else await_cache(cache, cache.store(e164, identity))
        stored.addErrback(_store_failed)

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
                try:
                    identity = await self._loop_lookup.identify_deferred(e164)  # resumed from its reader
                except Exception as exc:  # noqa: BLE001 - busy or broken: the worker-thread path below
                    _loop_lookup_failed(exc)
                if identity is not None and identity.customer is None and create_prospect:
                    identity = None  # unknown: the directory creates the prospect (a transaction, in a thread)
            if identity is None:
                store_id = int(did.store_id) if did.store_id.isdigit() else None
                identity = await self._run_blocking(self._directory.identify, e164, store_id=store_id,
                                                    line=did.line, create_prospect=create_prospect)
        finally:
            self._slots.give_back()
        if cache is not None and identity is not None:
            self._store(cache, e164, identity)
        return identity, count

    def _fallback_cache(self, uniqueid: str, notes: list[str], exc: BaseException) -> None:
        FALLBACKS.inc(reason="cache_error")
        log.warning("routing uniqueid=%s: summary cache unavailable (%s); asking SQL", _clean(uniqueid),
                    _clean(exc, 300))
        notes.append("summary cache unavailable: looked up in SQL")



def _loop_lookup_failed(exc: BaseException) -> None:
    log.debug("customer lookup on the loop failed (%s); through a worker thread", type(exc).__name__)


def _store_failed(failure: Failure) -> None:
    log.debug("summary cache store failed: %s", failure.getErrorMessage())


async def _as_future(coro: Any) -> Any:
    """Run a service coroutine (which may await Deferreds and asyncio futures) from an asyncio task."""
    return await wait(drive(coro))
