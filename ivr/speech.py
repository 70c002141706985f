"""Dates, times, plates and vehicles as lists of catalogue prompts, in each language's own word order (pure).

Asterisk ships no Mandarin number prompts, and its ``SAY DATETIME`` knows no Mandarin either, so the IVR reads
data back from pieces rendered by ``ccserver prompts build`` (see :mod:`ivr.catalogue`):

    zh  三月 十六日 星期一 上午 十点 三十分      (month, day, weekday, a.m./p.m., hour, minute)
    en  Monday March sixteenth ten thirty a.m.   (weekday, month, day, hour, minute, a.m./p.m.)

A plate reads character by character (``京A12345`` → 京 A 一 二 三 四 五); characters with no piece are skipped.
"""

from __future__ import annotations

from datetime import date, datetime, time

from ivr.catalogue import PROVINCES, model_prompt

__all__ = ["say_date", "say_plate", "say_slot", "say_time", "say_vehicle"]


def say_time(at: time, language: str) -> list[str]:
    """``10:30`` → zh ``[cc-am, cc-hour-10, cc-minute-30]``, en ``[cc-hour-10, cc-minute-30, cc-am]``."""
    half = "cc-am" if at.hour < 12 else "cc-pm"
    hour = f"cc-hour-{at.hour % 12 or 12}"
    minute = f"cc-minute-{at.minute}" if at.minute else "cc-oclock"
    return [half, hour, minute] if language == "zh" else [hour, minute, half]


def say_date(day: date, language: str, today: date | None = None) -> list[str]:
    """The date, prefixed by "today" / "tomorrow" when it is one of those."""
    near: list[str] = []
    if today is not None:
        if day == today:
            near = ["cc-today"]
        elif (day - today).days == 1:
            near = ["cc-tomorrow"]
    month, dom, weekday = f"cc-month-{day.month}", f"cc-day-{day.day}", f"cc-weekday-{day.weekday()}"
    return near + ([month, dom, weekday] if language == "zh" else [weekday, month, dom])


def say_slot(starts_at: datetime, language: str, today: date | None = None) -> list[str]:
    """An appointment time (aware, already in the store's zone): date, then time."""
    return say_date(starts_at.date(), language, today) + say_time(starts_at.timetz(), language)


def say_plate(plate: str) -> list[str]:
    out: list[str] = []
    for char in plate.strip().upper():
        if char.isascii() and char.isdigit():
            out.append(f"cc-digit-{char}")
        elif char.isascii() and char.isalpha():
            out.append(f"cc-letter-{char.lower()}")
        elif char in PROVINCES:
            out.append(f"cc-province-{PROVINCES[char]}")
    return out


def say_vehicle(model: str, plate: str | None) -> list[str]:
    """The model's own prompt, then the plate."""
    return [model_prompt(model), *say_plate(plate or "")]
