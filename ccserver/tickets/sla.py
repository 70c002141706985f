"""SLA due times in a store's business hours (pure).

A clock (``SlaSpec``) is a duration of opening time (``"2h"``: time while the store is closed does not count, so
a complaint at 17:30 with two hours is due at 09:30 the next working day; ``"0"``: at once, or when the line next
opens) or ``close``: the end of the working day. The hours are the store's for the ticket's department when that
is a line with its own hours (``service``), else the store's general hours. A ticket without a store, or a store
without hours, counts wall-clock time (``close``: the end of the local day).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ccserver.callrouting.directory_data import StoreCalendar
from ccserver.tickets.settings import SlaSpec
from routing.calendar import add_open_time, working_day_close

__all__ = ["due_at"]


def due_at(spec: SlaSpec | None, start: datetime, calendar: StoreCalendar | None, line: str | None,
           time_zone: str) -> datetime | None:
    """When a clock started at ``start`` is due (aware UTC), or None for no such clock."""
    if spec is None:
        return None
    found: datetime | None = None
    if calendar is not None and calendar.hours:
        if spec.mode == "close":
            found = working_day_close(start, calendar.hours, calendar.holidays, calendar.makeup_workdays,
                                      calendar.time_zone, line)
        else:
            found = add_open_time(start, spec.duration, calendar.hours, calendar.holidays, calendar.makeup_workdays,
                                  calendar.time_zone, line)
    if found is None:
        if spec.mode == "close":
            local = start.astimezone(ZoneInfo(time_zone))
            found = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            found = start + spec.duration
    return found.astimezone(start.tzinfo)
