"""Business hours: is a store's line open at an instant, and when does it open next.

Pure: the instant is an argument; the only "I/O" is zoneinfo reading its tz database once per zone name
(cached by the standard library).

Rules (``hours`` is a list of :class:`OpeningHours`):

* **Which entries apply.** Entries with ``line == line`` when there is at least one such entry for the
  requested line; otherwise the entries with ``line is None`` (the store's general hours). So a store can
  give its service line its own hours and let every other line share the general ones.
* **Several entries per weekday** are allowed (e.g. a lunch break: 08:30–12:00 and 13:30–18:00).
* **Holidays** (``holidays``: dates) close the store for the whole day: the day's own intervals do not happen.
  An overnight interval that *started* on the previous (working) day still runs to its end.
* **Make-up working days** (调休 ``makeup_workdays``: usually a Saturday or Sunday that is officially a working
  day) use the hours of the weekday given by ``makeup_hours_from`` (default 0 = **Monday's hours**, i.e. a
  normal weekday), whatever weekday they fall on. A date in both sets is a holiday (closed).
* **Overnight hours**: ``closes < opens`` means the interval ends on the next day (Fri 22:00–06:00 runs to
  Saturday 06:00). ``closes == opens`` means 24 hours from ``opens``. ``closes == 00:00`` is midnight.
* Times are wall-clock times in the store's zone ``tz`` (an IANA name such as ``Asia/Shanghai`` or a tzinfo).

Holidays are data, not code: the caller passes the official list for the year (State Council notice) merged with
the store's own closures. Nothing in this module knows the Chinese calendar.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["OpeningHours", "add_open_time", "is_open", "next_opening", "working_day_close"]

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """One opening interval: ``weekday`` 0 = Monday … 6 = Sunday, wall-clock ``opens``/``closes`` (see module
    docstring for overnight and 24 h), ``line`` = the line it belongs to (``"service"``) or None for all lines."""

    weekday: int
    opens: time
    closes: time
    line: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.weekday, int) and 0 <= self.weekday <= 6):
            raise ValueError(f"weekday must be 0..6 (Monday..Sunday), got {self.weekday!r}")
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opens/closes are wall-clock times: no tzinfo")


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def _resolve_zone(tz: str | tzinfo) -> tzinfo:
    return _zone(tz) if isinstance(tz, str) else tz


def _applicable(hours: Iterable[OpeningHours], line: str | None) -> list[list[tuple[time, time]]]:
    """Per weekday, the sorted (opens, closes) intervals that apply to ``line``."""
    chosen = [h for h in hours if line is not None and h.line == line]
    if not chosen:
        chosen = [h for h in hours if h.line is None]
    week: list[list[tuple[time, time]]] = [[] for _ in range(7)]
    for h in chosen:
        week[h.weekday].append((h.opens, h.closes))
    for day in week:
        day.sort()
    return week


def _intervals(day: date, week: list[list[tuple[time, time]]], holidays: Collection[date],
               makeup_workdays: Collection[date], makeup_hours_from: int) -> list[tuple[datetime, datetime]]:
    """The day's opening intervals as naive wall-clock datetimes, sorted by start."""
    if day in holidays:
        return []
    weekday = makeup_hours_from if day in makeup_workdays else day.weekday()
    out = []
    for opens, closes in week[weekday]:
        start = datetime.combine(day, opens)
        end = datetime.combine(day if closes > opens else day + _DAY, closes)
        out.append((start, end))
    return out


def _local_naive(at: datetime, zone: tzinfo) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be an aware datetime")
    return at.astimezone(zone).replace(tzinfo=None)


def is_open(at: datetime, hours: Iterable[OpeningHours], holidays: Collection[date],
            makeup_workdays: Collection[date], tz: str | tzinfo, line: str | None = None, *,
            makeup_hours_from: int = 0) -> bool:
    """True when ``line`` (or the store, for ``line=None``) is open at the aware instant ``at``."""
    zone = _resolve_zone(tz)
    local = _local_naive(at, zone)
    week = _applicable(hours, line)
    today = local.date()
    for day in (today - _DAY, today):
        for start, end in _intervals(day, week, holidays, makeup_workdays, makeup_hours_from):
            if start <= local < end:
                return True
    return False


def next_opening(at: datetime, hours: Iterable[OpeningHours], holidays: Collection[date],
                 makeup_workdays: Collection[date], tz: str | tzinfo, line: str | None = None, *,
                 makeup_hours_from: int = 0, horizon_days: int = 31) -> datetime | None:
    """The earliest instant ≥ ``at`` at which the line is open: ``at`` itself when open now, else the next
    opening time as an aware datetime in the store's zone. None when nothing opens within ``horizon_days``
    (no hours configured, or a long closure)."""
    zone = _resolve_zone(tz)
    local = _local_naive(at, zone)
    week = _applicable(hours, line)
    if not any(week):
        return None
    today = local.date()
    # Days in order, intervals sorted by start within a day → starts in chronological order. Any interval that
    # contains `local` starts no later than it, so it is met before the first interval starting after `local`.
    for offset in range(-1, horizon_days + 1):
        day = today + offset * _DAY
        for start, end in _intervals(day, week, holidays, makeup_workdays, makeup_hours_from):
            if start <= local < end:
                return at
            if start > local:
                return start.replace(tzinfo=zone)
    return None


def _open_spans(local: datetime, week: list[list[tuple[time, time]]], holidays: Collection[date],
                makeup_workdays: Collection[date], makeup_hours_from: int,
                horizon_days: int) -> Iterable[tuple[date, datetime, datetime]]:
    """(day, start, end) of every opening interval that ends after ``local``, in time order, within the horizon."""
    today = local.date()
    for offset in range(-1, horizon_days + 1):
        day = today + offset * _DAY
        for start, end in _intervals(day, week, holidays, makeup_workdays, makeup_hours_from):
            if end > local:
                yield day, start, end


def add_open_time(at: datetime, duration: timedelta, hours: Iterable[OpeningHours], holidays: Collection[date],
                  makeup_workdays: Collection[date], tz: str | tzinfo, line: str | None = None, *,
                  makeup_hours_from: int = 0, horizon_days: int = 366) -> datetime | None:
    """The instant ``duration`` of opening time after ``at`` (time while closed does not count): an SLA "in
    business hours". A zero duration is ``at`` when open, else the next opening. Aware, in the store's zone. None
    when the hours never open within ``horizon_days``."""
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    zone = _resolve_zone(tz)
    local = _local_naive(at, zone)
    week = _applicable(hours, line)
    if not any(week):
        return None
    remaining = duration
    for _day, start, end in _open_spans(local, week, holidays, makeup_workdays, makeup_hours_from, horizon_days):
        begin = max(start, local)
        if remaining <= end - begin:
            if remaining == timedelta(0) and begin == local:
                return at
            return (begin + remaining).replace(tzinfo=zone)
        remaining -= end - begin
    return None


def working_day_close(at: datetime, hours: Iterable[OpeningHours], holidays: Collection[date],
                      makeup_workdays: Collection[date], tz: str | tzinfo, line: str | None = None, *,
                      makeup_hours_from: int = 0, horizon_days: int = 31) -> datetime | None:
    """When the working day of ``at`` ends: the close of the day's last interval when the line is open at ``at``
    or opens again later that day, else the close of the next working day ("fixed the same working day").
    Aware, in the store's zone; None when nothing opens within ``horizon_days``."""
    zone = _resolve_zone(tz)
    local = _local_naive(at, zone)
    week = _applicable(hours, line)
    if not any(week):
        return None
    for day, _start, _end in _open_spans(local, week, holidays, makeup_workdays, makeup_hours_from, horizon_days):
        last = max(end for _s, end in _intervals(day, week, holidays, makeup_workdays, makeup_hours_from))
        return last.replace(tzinfo=zone)
    return None
