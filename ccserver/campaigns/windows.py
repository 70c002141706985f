"""Calling windows in the callee's local time — pure logic, no I/O.

A window is a daily span (``start`` ≤ local time < ``end``, so a call may *start* until just before ``end``),
the weekdays it applies on and the holidays it is closed. The callee's time zone comes from the number
(phonenumbers' ``time_zones_for_number``); when the number gives none (``Etc/Unknown``) the store's zone is used.
A number may map to several zones (a US toll-free number, a Russian mobile): then the window must be open in
*every* one of them — we never guess the friendlier zone.

Campaign and global windows are combined with :func:`intersect` (latest start, earliest end, the weekdays both
allow, the holidays of either).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from ccserver.texts import T

__all__ = ["CallingWindow", "WindowError", "callee_zones", "intersect", "is_open", "next_open", "parse_window"]

ALL_DAYS = frozenset(range(7))  # Monday = 0, as datetime.weekday()
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class WindowError(ValueError):
    """A window that does not parse or makes no sense (the message names the field)."""


@dataclass(frozen=True)
class CallingWindow:
    start: dtime = dtime(9, 0)
    end: dtime = dtime(20, 0)
    weekdays: frozenset[int] = ALL_DAYS
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.weekdays <= ALL_DAYS:
            raise WindowError(T("window.weekdays: each must be 0 (Monday) … 6 (Sunday)"))

    @property
    def empty(self) -> bool:
        return self.start >= self.end or not self.weekdays

    def open_at_local(self, local: datetime) -> bool:
        """Open at this wall-clock moment of the callee's zone."""
        if self.empty or local.weekday() not in self.weekdays or local.date() in self.holidays:
            return False
        t = local.time().replace(tzinfo=None)
        return self.start <= t < self.end


def _hhmm(value: Any, name: str) -> dtime:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise WindowError(T("window.{name}: expected \"HH:MM\" (00:00–23:59), got {value}", name=name,
                            value=repr(value)))
    return dtime(int(value[:2]), int(value[3:]))


def parse_window(data: Mapping[str, Any] | None, holidays: Iterable[date] = (),
                 default: CallingWindow | None = None) -> CallingWindow:
    """``{"start": "09:00", "end": "20:00", "weekdays": [0, …, 6]}`` → a window; missing keys (or no window at all)
    take ``default``'s (the configured global window), else 09:00–20:00 every day."""
    base = default if default is not None else CallingWindow()
    if data is None:
        return CallingWindow(base.start, base.end, base.weekdays, frozenset(holidays))
    if not isinstance(data, Mapping):
        raise WindowError(T("window: expected an object like {\"start\": \"09:00\", \"end\": \"20:00\"}"))
    unknown = set(data) - {"start", "end", "weekdays"}
    if unknown:
        raise WindowError(T("window: unknown key(s) {unknown}", unknown=sorted(unknown)))
    start = _hhmm(data["start"], "start") if "start" in data else base.start
    end = _hhmm(data["end"], "end") if "end" in data else base.end
    if start >= end:
        raise WindowError(T("window: start must be before end (windows do not cross midnight)"))
    days = data.get("weekdays", sorted(base.weekdays))
    if (not isinstance(days, list) or not days
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)):
        raise WindowError(T("window.weekdays: expected a non-empty list of 0 (Monday) … 6 (Sunday)"))
    return CallingWindow(start, end, frozenset(days), frozenset(holidays))


def intersect(a: CallingWindow, b: CallingWindow) -> CallingWindow:
    """Open only when both are (the campaign's window inside the global one)."""
    return CallingWindow(max(a.start, b.start), min(a.end, b.end), a.weekdays & b.weekdays,
                         a.holidays | b.holidays)


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def callee_zones(e164: str, fallback: str) -> tuple[ZoneInfo, ...]:
    """The callee's candidate time zones: from the number, else ``fallback`` (the store's zone)."""
    names: tuple[str, ...] = ()
    try:
        number = phonenumbers.parse(e164, None)
        names = tuple(n for n in pn_timezone.time_zones_for_number(number) if n != "Etc/Unknown")
    except phonenumbers.NumberParseException:
        names = ()
    zones = []
    for name in names:
        try:
            zones.append(_zone(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # a zone the local tz database lacks: the others (or the fallback) decide
    return tuple(zones) if zones else (_zone(fallback),)


def is_open(window: CallingWindow, zones: Iterable[ZoneInfo], at: datetime) -> bool:
    """May a call start at ``at`` (aware) for a callee in ``zones``? Open in every zone, or not at all."""
    if at.tzinfo is None:
        raise ValueError(T("is_open needs an aware datetime"))
    zones = tuple(zones)
    return bool(zones) and all(window.open_at_local(at.astimezone(z)) for z in zones)


def next_open(window: CallingWindow, zones: Iterable[ZoneInfo], at: datetime, *,
              horizon_days: int = 400) -> datetime | None:
    """The first moment ≥ ``at`` when :func:`is_open`; None if the window never opens within the horizon.

    The answer is ``at`` itself or some zone's local ``start`` on some day (the only moments a closed window
    can open), so only those are tried, in time order.
    """
    zones = tuple(zones)
    if window.empty or not zones:
        return None
    if is_open(window, zones, at):
        return at
    at_utc = at.astimezone(UTC)
    candidates: set[datetime] = set()
    for zone in zones:
        first = at.astimezone(zone).date() - timedelta(days=1)
        for offset in range(horizon_days + 2):
            day = first + timedelta(days=offset)
            local = datetime.combine(day, window.start, tzinfo=zone)
            # A start inside a DST gap does not exist: the next real minute (fold handled by zoneinfo).
            instant = local.astimezone(UTC)
            if instant > at_utc:
                candidates.add(instant)
    for instant in sorted(candidates):
        if is_open(window, zones, instant):
            return instant.astimezone(at.tzinfo)
    return None
