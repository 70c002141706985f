"""Dates and times from requests kept within years any arithmetic on them survives.

``date.fromisoformat("9999-12-31")`` parses, and the next day, a time zone conversion or a window's end then
overflows (``OverflowError``: a 500). Every date or time a request names is checked here first: 1970 to 9000.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from ccserver.texts import Field, T
from ccserver.web.http import HTTPError

FIRST_YEAR, LAST_YEAR = 1970, 9000
When = TypeVar("When", dt.date, dt.datetime)


def bounded(value: When, name: str) -> When:
    """``value`` if its year is within FIRST_YEAR..LAST_YEAR, else HTTPError 400 naming the field ``name``."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise HTTPError(400, T("{name} must be a date between the years {first} and {last}", name=Field(name),
                               first=FIRST_YEAR, last=LAST_YEAR), field=name)
    return value
