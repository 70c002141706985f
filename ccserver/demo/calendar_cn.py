"""Mainland China public holidays and make-up working days (调休), by year.

2025 and 2026 follow the State Council's published notices. 2027 had not been published when this table
was written: it is a provisional schedule built from the lunar dates and the usual pattern, so replace it
with the official notice once out. Other years fall back to the fixed-date holidays only (no lunar
holidays, no make-up days): good enough for demo data, never for production calendars.
"""

from __future__ import annotations

from datetime import date, timedelta

# year -> (holidays: list of (first day, last day, name), make-up working days: list of (day, name))
_Span = tuple[tuple[int, int], tuple[int, int], str]
_TABLE: dict[int, tuple[list[_Span], list[tuple[tuple[int, int], str]]]] = {
    2025: (
        [
            ((1, 1), (1, 1), "元旦 New Year's Day"),
            ((1, 28), (2, 4), "春节 Spring Festival"),
            ((4, 4), (4, 6), "清明节 Qingming Festival"),
            ((5, 1), (5, 5), "劳动节 Labour Day"),
            ((5, 31), (6, 2), "端午节 Dragon Boat Festival"),
            ((10, 1), (10, 8), "国庆节、中秋节 National Day and Mid-Autumn Festival"),
        ],
        [
            ((1, 26), "春节调休 Spring Festival make-up day"),
            ((2, 8), "春节调休 Spring Festival make-up day"),
            ((4, 27), "劳动节调休 Labour Day make-up day"),
            ((9, 28), "国庆节调休 National Day make-up day"),
            ((10, 11), "国庆节调休 National Day make-up day"),
        ],
    ),
    2026: (
        [
            ((1, 1), (1, 3), "元旦 New Year's Day"),
            ((2, 15), (2, 23), "春节 Spring Festival"),
            ((4, 4), (4, 6), "清明节 Qingming Festival"),
            ((5, 1), (5, 5), "劳动节 Labour Day"),
            ((6, 19), (6, 21), "端午节 Dragon Boat Festival"),
            ((9, 25), (9, 27), "中秋节 Mid-Autumn Festival"),
            ((10, 1), (10, 7), "国庆节 National Day"),
        ],
        [
            ((1, 4), "元旦调休 New Year make-up day"),
            ((2, 14), "春节调休 Spring Festival make-up day"),
            ((2, 28), "春节调休 Spring Festival make-up day"),
            ((5, 9), "劳动节调休 Labour Day make-up day"),
            ((9, 20), "国庆节调休 National Day make-up day"),
            ((10, 10), "国庆节调休 National Day make-up day"),
        ],
    ),
    2027: (  # provisional, see the module docstring
        [
            ((1, 1), (1, 3), "元旦 New Year's Day"),
            ((2, 5), (2, 12), "春节 Spring Festival"),
            ((4, 3), (4, 5), "清明节 Qingming Festival"),
            ((5, 1), (5, 5), "劳动节 Labour Day"),
            ((6, 9), (6, 9), "端午节 Dragon Boat Festival"),
            ((9, 15), (9, 15), "中秋节 Mid-Autumn Festival"),
            ((10, 1), (10, 7), "国庆节 National Day"),
        ],
        [
            ((2, 20), "春节调休 Spring Festival make-up day"),
            ((4, 25), "劳动节调休 Labour Day make-up day"),
            ((5, 8), "劳动节调休 Labour Day make-up day"),
            ((9, 26), "国庆节调休 National Day make-up day"),
            ((10, 9), "国庆节调休 National Day make-up day"),
        ],
    ),
}

# Fixed-date statutory days, used for years without a table.
_FALLBACK: list[_Span] = [
    ((1, 1), (1, 1), "元旦 New Year's Day"),
    ((5, 1), (5, 2), "劳动节 Labour Day"),
    ((10, 1), (10, 3), "国庆节 National Day"),
]

PROVISIONAL_YEARS = frozenset({2027})


def has_official_table(year: int) -> bool:
    return year in _TABLE and year not in PROVISIONAL_YEARS


def holidays(year: int) -> list[tuple[date, str]]:
    """Every day off (date, name) in ``year``, sorted."""
    spans = _TABLE[year][0] if year in _TABLE else _FALLBACK
    days: list[tuple[date, str]] = []
    for (m1, d1), (m2, d2), name in spans:
        day, last = date(year, m1, d1), date(year, m2, d2)
        while day <= last:
            days.append((day, name))
            day += timedelta(days=1)
    return days


def makeup_workdays(year: int) -> list[tuple[date, str]]:
    """Weekend dates that are working days in ``year`` (empty when unknown)."""
    if year not in _TABLE:
        return []
    return [(date(year, m, d), name) for (m, d), name in _TABLE[year][1]]
