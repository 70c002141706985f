"""Business hours: weekdays, per-line hours, holidays, make-up working days (调休), overnight hours.

The holiday and make-up sets below are *test fixtures constructed for these tests* around 2026's National Day
week, not an assertion of the official State Council calendar: the real list is configuration data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.calendar import OpeningHours, is_open, next_opening

SH = ZoneInfo("Asia/Shanghai")
TZ = "Asia/Shanghai"

# Sales: Mon–Fri 08:30–18:00, Sat–Sun 09:00–17:00. Service line: Mon–Sat 08:00–12:00 and 13:30–17:30.
HOURS = [
    *(OpeningHours(d, time(8, 30), time(18, 0)) for d in range(5)),
    *(OpeningHours(d, time(9, 0), time(17, 0)) for d in (5, 6)),
    *(OpeningHours(d, time(8, 0), time(12, 0), "service") for d in range(6)),
    *(OpeningHours(d, time(13, 30), time(17, 30), "service") for d in range(6)),
]

# Fixture: National Day closure Thu 1 Oct – Thu 8 Oct 2026; make-up working days Sun 20 Sep and Sat 10 Oct.
HOLIDAYS = {date(2026, 10, 1) + timedelta(days=i) for i in range(8)}
MAKEUP = {date(2026, 9, 20), date(2026, 10, 10)}


def at(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


TABLE = [
    # when, line, open?   (comments give the weekday)
    (at(2026, 9, 28, 8, 29), None, False),  # Mon before opening
    (at(2026, 9, 28, 8, 30), None, True),  # Mon opening instant (inclusive)
    (at(2026, 9, 28, 17, 59), None, True),
    (at(2026, 9, 28, 18, 0), None, False),  # closing instant (exclusive)
    (at(2026, 9, 26, 10, 0), None, True),  # Sat weekend hours
    (at(2026, 9, 26, 8, 45), None, False),  # Sat: weekday opening time does not apply
    (at(2026, 10, 1, 10, 0), None, False),  # National Day
    (at(2026, 10, 4, 10, 0), None, False),  # Sunday inside the holiday
    (at(2026, 10, 8, 10, 0), None, False),  # last holiday day
    (at(2026, 10, 9, 10, 0), None, True),  # Fri back to work
    (at(2026, 10, 10, 8, 45), None, True),  # make-up Saturday: Monday's hours (08:30–18:00) …
    (at(2026, 10, 10, 17, 30), None, True),  # … so open after the weekend closing time
    (at(2026, 9, 20, 8, 40), None, True),  # make-up Sunday
    (at(2026, 10, 10, 9, 0), "service", True),  # service line on the make-up Saturday: Monday service hours
    (at(2026, 10, 10, 12, 30), "service", False),  # lunch break
    (at(2026, 9, 27, 10, 0), "service", False),  # ordinary Sunday: service closed
    (at(2026, 9, 26, 14, 0), "service", True),  # Saturday afternoon
    (at(2026, 9, 28, 17, 45), "service", False),  # after service closing, sales still open
    (at(2026, 9, 28, 17, 45), "sales", True),  # a line without its own hours uses the general hours
    (at(2026, 10, 2, 9, 0), "service", False),
]


@pytest.mark.parametrize(("when", "line", "expected"), TABLE)
def test_is_open_table(when, line, expected):
    assert is_open(when, HOURS, HOLIDAYS, MAKEUP, TZ, line) is expected


def test_other_zone_instants_are_converted():
    # 2026-09-28 01:00 UTC = 09:00 Shanghai (Mon) → open; 11:00 UTC = 19:00 → closed
    assert is_open(datetime(2026, 9, 28, 1, 0, tzinfo=UTC), HOURS, HOLIDAYS, MAKEUP, TZ)
    assert not is_open(datetime(2026, 9, 28, 11, 0, tzinfo=UTC), HOURS, HOLIDAYS, MAKEUP, TZ)
    assert is_open(datetime(2026, 9, 28, 1, 0, tzinfo=UTC), HOURS, HOLIDAYS, MAKEUP, SH)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        is_open(datetime(2026, 9, 28, 9, 0), HOURS, HOLIDAYS, MAKEUP, TZ)


def test_makeup_hours_from_another_weekday():
    hours = [OpeningHours(0, time(9, 0), time(12, 0)), OpeningHours(4, time(9, 0), time(20, 0))]
    sat = at(2026, 10, 10, 15, 0)
    assert not is_open(sat, hours, set(), MAKEUP, TZ)
    assert is_open(sat, hours, set(), MAKEUP, TZ, makeup_hours_from=4)


def test_holiday_wins_over_makeup():
    d = date(2026, 10, 10)
    assert not is_open(at(2026, 10, 10, 10, 0), HOURS, {d}, {d}, TZ)


OVERNIGHT = [OpeningHours(4, time(22, 0), time(6, 0)), OpeningHours(0, time(0, 0), time(0, 0), "roadside")]


@pytest.mark.parametrize(
    ("when", "line", "expected"),
    [
        (at(2026, 9, 25, 21, 59), None, False),  # Fri
        (at(2026, 9, 25, 22, 0), None, True),
        (at(2026, 9, 26, 3, 0), None, True),  # Sat early morning: Friday's interval
        (at(2026, 9, 26, 6, 0), None, False),
        (at(2026, 10, 2, 23, 0), None, False),  # Fri 2 Oct is a holiday: no overnight shift starts
        (at(2026, 10, 3, 2, 0), None, False),
        (at(2026, 9, 28, 0, 0), "roadside", True),  # opens == closes → 24 h from Monday 00:00
        (at(2026, 9, 28, 23, 59), "roadside", True),
        (at(2026, 9, 29, 0, 0), "roadside", False),
    ],
)
def test_overnight_and_24h(when, line, expected):
    assert is_open(when, OVERNIGHT, HOLIDAYS, MAKEUP, TZ, line) is expected


def test_overnight_tail_runs_into_a_holiday():
    hours = [OpeningHours(2, time(22, 0), time(6, 0))]  # Wed 30 Sep 22:00 → Thu 1 Oct 06:00
    assert is_open(at(2026, 10, 1, 5, 0), hours, HOLIDAYS, MAKEUP, TZ)


@pytest.mark.parametrize(
    ("when", "line", "expected"),
    [
        (at(2026, 9, 28, 10, 0), None, at(2026, 9, 28, 10, 0)),  # open now → now
        (at(2026, 9, 28, 19, 0), None, at(2026, 9, 29, 8, 30)),  # evening → next morning
        (at(2026, 9, 30, 19, 0), None, at(2026, 10, 9, 8, 30)),  # into the National Day closure
        (at(2026, 10, 9, 19, 0), None, at(2026, 10, 10, 8, 30)),  # make-up Saturday uses Monday's 08:30
        (at(2026, 10, 10, 12, 0), "service", at(2026, 10, 10, 13, 30)),  # lunch break
        (at(2026, 9, 26, 18, 0), "service", at(2026, 9, 28, 8, 0)),  # Sat evening → Monday
        (at(2026, 9, 20, 7, 0), None, at(2026, 9, 20, 8, 30)),  # make-up Sunday morning
    ],
)
def test_next_opening(when, line, expected):
    got = next_opening(when, HOURS, HOLIDAYS, MAKEUP, TZ, line)
    assert got == expected
    assert got is not None and got.utcoffset() == timedelta(hours=8)
    assert is_open(got, HOURS, HOLIDAYS, MAKEUP, TZ, line)


def test_next_opening_none_and_horizon():
    assert next_opening(at(2026, 9, 28, 10, 0), [], HOLIDAYS, MAKEUP, TZ) is None
    closed_month = {date(2026, 11, 1) + timedelta(days=i) for i in range(60)}
    assert next_opening(at(2026, 11, 1, 10, 0), HOURS, closed_month, set(), TZ) is None
    assert next_opening(at(2026, 11, 1, 10, 0), HOURS, closed_month, set(), TZ, horizon_days=90) == \
        at(2026, 12, 31, 8, 30)


def test_next_opening_inside_overnight_tail():
    when = at(2026, 9, 26, 3, 0)
    assert next_opening(when, OVERNIGHT, set(), set(), TZ) == when
    assert next_opening(at(2026, 9, 26, 7, 0), OVERNIGHT, set(), set(), TZ) == at(2026, 10, 2, 22, 0)


def test_bad_weekday():
    with pytest.raises(ValueError):
        OpeningHours(7, time(9, 0), time(17, 0))
