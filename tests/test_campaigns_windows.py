"""Calling windows in the callee's local time (ccserver.campaigns.windows), pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccserver.campaigns.windows import (
    CallingWindow,
    WindowError,
    callee_zones,
    intersect,
    is_open,
    next_open,
    parse_window,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def test_zone_from_the_number_store_zone_as_fallback() -> None:
    assert callee_zones("+8613800138000", "UTC") == (SH,)
    assert callee_zones("+12125551234", "Asia/Shanghai") == (NY,)
    # No zone known for the number (invalid / unassigned range): the store's.
    assert callee_zones("+15555555555", "Europe/Berlin") == (ZoneInfo("Europe/Berlin"),)
    assert callee_zones("not a number", "Asia/Shanghai") == (SH,)
    # A toll-free NANP number spans many zones: all of them are kept.
    assert len(callee_zones("+18005550100", "UTC")) > 10


def test_default_window_is_9_to_20_local() -> None:
    w = CallingWindow()
    # 08:59 and 20:00 Shanghai are closed; 09:00 and 19:59 open.
    assert not is_open(w, (SH,), datetime(2026, 6, 2, 8, 59, tzinfo=SH))
    assert is_open(w, (SH,), datetime(2026, 6, 2, 9, 0, tzinfo=SH))
    assert is_open(w, (SH,), datetime(2026, 6, 2, 19, 59, 59, tzinfo=SH))
    assert not is_open(w, (SH,), datetime(2026, 6, 2, 20, 0, tzinfo=SH))
    # The same instant is evening in Shanghai and morning in New York.
    instant = datetime(2026, 6, 2, 21, 0, tzinfo=SH)
    assert not is_open(w, (SH,), instant)
    assert is_open(w, (NY,), instant)
    assert not is_open(w, (SH, NY), instant)  # several zones: open in every one or not at all


def test_holidays_and_weekdays_close_the_day() -> None:
    w = CallingWindow(weekdays=frozenset(range(5)), holidays=frozenset({date(2026, 10, 1)}))
    assert not is_open(w, (SH,), datetime(2026, 10, 1, 10, 0, tzinfo=SH))  # National Day (a Thursday)
    assert not is_open(w, (SH,), datetime(2026, 10, 3, 10, 0, tzinfo=SH))  # Saturday
    assert is_open(w, (SH,), datetime(2026, 10, 2, 10, 0, tzinfo=SH))


def test_next_open_skips_night_holiday_and_weekend() -> None:
    w = CallingWindow(weekdays=frozenset(range(5)), holidays=frozenset({date(2026, 10, 2)}))
    # Thursday 1 Oct 21:00 → Friday is a holiday → Monday 5 Oct 09:00.
    got = next_open(w, (SH,), datetime(2026, 10, 1, 21, 0, tzinfo=SH))
    assert got == datetime(2026, 10, 5, 9, 0, tzinfo=SH)
    at = datetime(2026, 10, 1, 10, 0, tzinfo=SH)
    assert next_open(w, (SH,), at) == at
    assert next_open(CallingWindow(dtime(10), dtime(9)), (SH,), at) is None


def test_next_open_across_a_dst_change() -> None:
    w = CallingWindow()
    # Saturday 7 March 2026 22:00 in New York; clocks go forward on the 8th: 09:00 EDT = 13:00 UTC.
    got = next_open(w, (NY,), datetime(2026, 3, 7, 22, 0, tzinfo=NY))
    assert got is not None and got.astimezone(UTC) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_parse_window_errors_are_clear() -> None:
    assert parse_window({"start": "08:30", "end": "21:00"}) == CallingWindow(dtime(8, 30), dtime(21, 0))
    assert parse_window(None) == CallingWindow()
    for bad, words in [({"start": "9:00"}, "window.start"), ({"end": "24:00"}, "window.end"),
                       ({"start": "20:00", "end": "09:00"}, "before end"), ({"weekdays": [7]}, "weekdays"),
                       ({"weekdays": []}, "weekdays"), ({"begin": "09:00"}, "unknown"), ("09-20", "object")]:
        with pytest.raises(WindowError, match=words):
            parse_window(bad)  # type: ignore[arg-type]


def test_intersect_is_the_narrower_window() -> None:
    a = CallingWindow(dtime(8), dtime(18), frozenset({0, 1, 2}), frozenset({date(2026, 1, 1)}))
    b = CallingWindow(dtime(9), dtime(20), frozenset({1, 2, 3}), frozenset({date(2026, 5, 1)}))
    w = intersect(a, b)
    assert (w.start, w.end, w.weekdays) == (dtime(9), dtime(18), frozenset({1, 2}))
    assert w.holidays == {date(2026, 1, 1), date(2026, 5, 1)}


ZONES = st.sampled_from(["Asia/Shanghai", "America/New_York", "America/Los_Angeles", "Europe/London",
                         "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland", "America/St_Johns", "UTC"])


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow:
    start = draw(st.integers(0, 23 * 60))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    holidays = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=20))
    return CallingWindow(dtime(start // 60, start % 60), dtime(end // 60, end % 60), days, holidays)


@settings(max_examples=150, deadline=None)
@given(w=windows(), zones=st.lists(ZONES, min_size=1, max_size=3, unique=True),
       at=st.datetimes(datetime(2026, 1, 1), datetime(2027, 6, 1), timezones=st.just(UTC)))
def test_next_open_is_open_and_nothing_earlier_is(w: CallingWindow, zones: list[str], at: datetime) -> None:
    zs = tuple(ZoneInfo(z) for z in zones)
    got = next_open(w, zs, at, horizon_days=60)
    if got is None:
        return
    assert got >= at and is_open(w, zs, got)
    # Sample the minutes before it: none is open (the window is closed until `got`).
    step = max(timedelta(minutes=1), (got - at) / 200)
    t = at
    while t < got - timedelta(seconds=1):
        assert not is_open(w, zs, t)
        t += step


def test_a_campaign_without_its_own_window_takes_the_configured_one() -> None:
    """Seen on a live Asterisk: with campaigns.window_* at 00:00–23:59, a campaign created without a window sat
    idle at night because it was taken as 09:00–20:00."""
    from datetime import time as dtime

    configured = CallingWindow(dtime(0, 0), dtime(23, 59), frozenset({0, 1, 2, 3, 4}))
    assert parse_window(None, default=configured) == configured
    partial = parse_window({"end": "18:00"}, default=configured)
    assert (partial.start, partial.end, partial.weekdays) == (dtime(0, 0), dtime(18, 0), configured.weekdays)
    assert parse_window(None) == CallingWindow()  # no configured window: 09:00–20:00 every day
