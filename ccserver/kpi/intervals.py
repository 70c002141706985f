"""Reporting intervals: 15 minutes of local wall-clock time (``server.time_zone``), and the local day they belong to.

Pure functions over epoch seconds. Intervals start on the local quarter hour (09:00, 09:15 …), so a report reads the
same as the clock on the wall; an interval is always ``INTERVAL_SECONDS`` long in real time (DST changes happen on a
quarter hour, so no interval is cut in two).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["INTERVAL_SECONDS", "interval_start", "local_day", "zone"]

INTERVAL_SECONDS = 900


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def interval_start(t: float, tz: str, seconds: int = INTERVAL_SECONDS) -> float:
    """The epoch start of the interval holding ``t``: the local time floored to a multiple of ``seconds``."""
    local = datetime.fromtimestamp(t, zone(tz))
    into_day = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    floored = int(into_day // seconds) * seconds
    start = local.replace(hour=floored // 3600, minute=floored % 3600 // 60, second=0, microsecond=0)
    return start.timestamp()


def local_day(t: float, tz: str) -> date:
    """The local calendar day of ``t``."""
    return datetime.fromtimestamp(t, zone(tz)).date()


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def iso_local(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, zone(tz)).isoformat()
