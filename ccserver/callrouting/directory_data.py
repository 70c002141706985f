"""The routing reference data, held in memory so a call is routed with SQL down.

What a call needs besides the caller's identity is small and changes rarely: the DID table (number → store,
line, default queue), each store's area code (for callers that send a local number without it), time zone,
business hours, holidays and make-up workdays. :meth:`RoutingData.load` reads all of it in one blocking pass
(run it in a worker thread); :class:`RoutingDataRefresher` reloads it periodically and keeps the last good copy
when SQL fails, so an outage freezes the data instead of dropping it.

Calendars: a DID that belongs to a store uses that store's hours for its line. A group-wide DID (no store, the
400 numbers) is open when **any** store is open on that line (each store with its own holidays). A store with
no hours at all is treated as always open: routing cannot know better, and the live view (nobody logged in →
callback) still protects the caller.

Store area codes are derived from the store's own landline DIDs (``02112345678`` → ``21``), so the data model
needs no extra column; group DIDs use ``default_area_code``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers

from ccserver.metrics import REGISTRY
from routing.calendar import OpeningHours, is_open
from routing.decision import DidRoute
from routing.numbers import CallerNumber, normalize

__all__ = ["RoutingData", "RoutingDataRefresher", "StoreCalendar"]

log = logging.getLogger("ccserver.callrouting")

REFRESH_FAILURES = REGISTRY.counter(
    "ccserver_routing_data_refresh_failures_total",
    "Failed reloads of the in-memory routing data (DIDs, hours, holidays); the last good copy stays in use",
)


@dataclass(frozen=True, slots=True)
class StoreCalendar:
    """One store's opening calendar (hours for all lines and per line, holidays, make-up workdays)."""

    store_id: int
    time_zone: str
    hours: tuple[OpeningHours, ...] = ()
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    # line -> (epoch minute or second, open?): every call asks, and the answer can only change on a boundary of
    # the finest unit the hours use (zone offsets are whole minutes, holidays start at local midnight).
    _last: dict[str | None, tuple[int, bool]] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _step: int = field(init=False, compare=False, hash=False, repr=False)  # 60, 1, or 0 (sub-second: no memo)

    def __post_init__(self) -> None:
        times = [t for h in self.hours for t in (h.opens, h.closes)]
        step = 60 if all(t.second == 0 and t.microsecond == 0 for t in times) else 1
        if any(t.microsecond for t in times):
            step = 0
        object.__setattr__(self, "_step", step)

    def is_open(self, at: datetime, line: str | None) -> bool:
        if not self.hours:
            return True
        if not self._step:
            return is_open(at, self.hours, self.holidays, self.makeup_workdays, self.time_zone, line)
        unit = int(at.timestamp() // self._step)
        known = self._last.get(line)
        if known is not None and known[0] == unit:
            return known[1]
        state = is_open(at, self.hours, self.holidays, self.makeup_workdays, self.time_zone, line)
        self._last[line] = (unit, state)
        return state


@dataclass(frozen=True)
class RoutingData:
    """An immutable snapshot; replaced whole on refresh (readers never see a half-loaded table)."""

    dids: Mapping[str, DidRoute] = field(default_factory=dict)  # by number as dialled and by E.164
    calendars: Mapping[int, StoreCalendar] = field(default_factory=dict)
    own_numbers: frozenset[str] = frozenset()  # our DIDs, as dialled and as E.164
    region: str = "CN"
    loaded_at: float = 0.0

    @classmethod
    def empty(cls, region: str = "CN") -> RoutingData:
        """No data (SQL was never reachable): every DID is unknown and takes the configured fallback route."""
        return cls(region=region)

    @classmethod
    def load(cls, session_factory: Callable[[], Any], *, region: str = "CN", default_time_zone: str = "Asia/Shanghai",
             default_area_code: str | None = None, default_language: str = "zh") -> RoutingData:
        """Read DIDs, queues, stores and calendars in one session. Blocking: run it in a worker thread."""
        from sqlalchemy import select

        from ccserver.db.models import BusinessHours, Did, Holiday, MakeupWorkday, Queue, Store

        with session_factory() as session:
            stores = {s.id: s.time_zone or default_time_zone for s in session.scalars(select(Store))}
            queues: dict[int, str] = {qid: name for qid, name in session.execute(select(Queue.id, Queue.name))}
            did_rows = list(session.execute(select(Did.number, Did.store_id, Did.line, Did.default_queue_id)))
            hours_rows = list(session.execute(select(BusinessHours.store_id, BusinessHours.line,
                                                     BusinessHours.weekday, BusinessHours.opens_at,
                                                     BusinessHours.closes_at)))
            holiday_rows = list(session.execute(select(Holiday.store_id, Holiday.day)))
            makeup_rows = list(session.execute(select(MakeupWorkday.store_id, MakeupWorkday.day)))

        area_codes: dict[int, str] = {}
        for number, store_id, _line, _queue in did_rows:
            if store_id is not None and store_id not in area_codes:
                area = _area_code(number, region)
                if area:
                    area_codes[store_id] = area

        dids: dict[str, DidRoute] = {}
        own: set[str] = set()
        for number, store_id, line, queue_id in did_rows:
            route = DidRoute(
                did=number,
                store_id=str(store_id) if store_id is not None else "",
                line=line,
                default_queue=queues.get(queue_id) or line,
                area_code=area_codes.get(store_id, default_area_code) if store_id is not None else default_area_code,
                language=default_language,
            )
            dids[number] = route
            own.add(number)
            e164 = normalize(number, region=region, local_area_code=route.area_code).e164
            if e164:
                dids.setdefault(e164, route)
                own.add(e164)

        calendars = {
            sid: StoreCalendar(
                store_id=sid,
                time_zone=tz,
                hours=tuple(OpeningHours(wd, opens, closes, line)
                            for s, line, wd, opens, closes in hours_rows if s == sid),
                holidays=frozenset(day for s, day in holiday_rows if s is None or s == sid),
                makeup_workdays=frozenset(day for s, day in makeup_rows if s is None or s == sid),
            )
            for sid, tz in stores.items()
        }
        return cls(dids=dids, calendars=calendars, own_numbers=frozenset(own), region=region, loaded_at=time.time())

    # -- per call ------------------------------------------------------------------------------------------
    def did(self, extension: str) -> DidRoute | None:
        """The DID for Asterisk's ``${EXTEN}``: as dialled, else by its E.164 form (``+864008001000``)."""
        route = self.dids.get(extension)
        if route is None and extension:
            e164 = normalize(extension, region=self.region).e164
            if e164:
                route = self.dids.get(e164)
        return route

    def is_own_number(self, caller: CallerNumber) -> bool:
        """The caller ID is one of our own DIDs (a campaign leg re-entering the inbound dialplan)."""
        return caller.raw in self.own_numbers or (caller.e164 is not None and caller.e164 in self.own_numbers)

    def is_open(self, did: DidRoute, at: datetime) -> bool:
        """Is ``did``'s line open at the aware instant ``at`` (see the module docstring for group DIDs)."""
        if did.store_id:
            calendar = self.calendars.get(int(did.store_id)) if did.store_id.isdigit() else None
            return True if calendar is None else calendar.is_open(at, did.line)
        if not self.calendars:
            return True
        return any(c.is_open(at, did.line) for c in self.calendars.values())


def _area_code(number: str, region: str) -> str | None:
    """The geographic area code of a landline DID (``02112345678`` → ``21``), or None."""
    parsed = normalize(number, region=region)
    if not parsed.ok or parsed.kind != "landline" or parsed.e164 is None:
        return None
    try:
        numobj = phonenumbers.parse(parsed.e164, None)
    except phonenumbers.NumberParseException:
        return None
    length = phonenumbers.length_of_geographical_area_code(numobj)
    if length <= 0:
        return None
    return str(numobj.national_number)[:length]


class RoutingDataRefresher:
    """Holds the current :class:`RoutingData` and reloads it every ``interval`` seconds in the thread pool.

    ``run_blocking(fn)`` returns an awaitable (``BlockingPool.run``); ``clock`` is a :class:`ccserver.clock.Clock`
    (``ManualClock`` in tests). A failed load keeps the previous copy, logs a warning and counts
    ``ccserver_routing_data_refresh_failures_total``.
    """

    def __init__(self, loader: Callable[[], RoutingData], run_blocking: Callable[..., Any], clock: Any = None,
                 interval: float = 60.0, initial: RoutingData | None = None) -> None:
        from ccserver.clock import LoopClock

        self._loader = loader
        self._run_blocking = run_blocking
        self._clock = clock if clock is not None else LoopClock()
        self.interval = interval
        self.current = initial if initial is not None else RoutingData.empty()
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._again = False

    async def reload_now(self) -> bool:
        """An admin changed the data: reload at once (a load already running loads once more when it ends)."""
        if self._busy:
            self._again = True
            return False
        return await self.refresh()

    async def refresh(self) -> bool:
        """Reload now; True when the new copy is in use."""
        if self._busy:
            return False
        self._busy = True
        try:
            data = await self._run_blocking(self._loader)
            while self._again:  # an admin's change arrived during this load: it may have missed it
                self._again = False
                data = await self._run_blocking(self._loader)
        except Exception as exc:  # noqa: BLE001 - any failure: keep the last good copy
            self.failures += 1
            REFRESH_FAILURES.inc()
            age = time.time() - self.current.loaded_at if self.current.loaded_at else None
            log.warning("routing data reload failed (%s); keeping the copy loaded %s", exc,
                        f"{age:.0f} s ago" if age is not None else "never (no data: fallback routes)")
            return False
        finally:
            self._busy = False
        self.current = data
        return True

    async def start(self) -> None:
        """Load now, then every ``interval`` s in the background until :meth:`stop`."""
        await self.refresh()
        self._task = asyncio.ensure_future(self._every_interval())

    async def _every_interval(self) -> None:
        while True:
            await self._clock.sleep(self.interval)
            await self.refresh()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
